package postgres

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Test-only hooks into the store's internals, for the fault tests.

// SetLocked makes every write transaction that locks a user's row call f
// right after the lock, with the PostgreSQL backend's process ID, and go on
// when f returns: a test can pause a transaction that holds the lock, or
// kill its backend. Set it before the store is used concurrently; nil
// removes it.
func SetLocked(s *Store, f func(ctx context.Context, pid uint32)) { s.locked = f }

// SetFast turns the fast path on (the default) or off. Set it before the
// store is used concurrently.
func SetFast(s *Store, on bool) { s.noFast = !on }

// FastCounts returns how many fast steps answered, and how many found the
// counters stale and fell back to the transaction.
func FastCounts(s *Store) (done, stale int64) { return s.fastDone.Load(), s.fastStale.Load() }

// BatchCounts returns how many batches of fast statements the store sent,
// how many statements they held, and how many batches were rolled back for
// their statements to be sent alone.
func BatchCounts(s *Store) (batches, statements, rolledBack int64) {
	return s.group.batches.Load(), s.group.statements.Load(), s.group.rolledBack.Load()
}

// SetFlushing makes the store call f before it sends each batch of fast
// statements (one alone included), with the backend's process ID and the number of
// statements, and send it when f returns. Set it before the store is used
// concurrently; nil removes it.
func SetFlushing(s *Store, f func(ctx context.Context, pid uint32, n int)) { s.flushing = f }

// Pending returns how many fast statements wait for a batch.
func Pending(s *Store) int {
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	return len(s.group.pending)
}

// MaxFlushers is how many batches a store sends at once.
const MaxFlushers = maxFlushers

// MigrateTo creates or migrates schema up to version v, as Open does up to
// SchemaVersion: a test builds an older schema with it.
func MigrateTo(ctx context.Context, pool *pgxpool.Pool, schema string, v int) error {
	return migrate(ctx, pool, schema, v)
}
