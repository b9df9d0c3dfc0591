package postgres

import "context"

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
