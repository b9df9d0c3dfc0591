package sqlite

// The writer's counter cache: the counters of the budgets its steps touch,
// kept between steps, so that a step reads a budget's row only the first
// time and a batch writes each budget's row once, at its end, however many
// of its steps changed it. A team's, an org's or a model cap's row is in
// nearly every step of a busy batch; without the cache each step would
// read and write it.
//
// The cache is a copy of committed rows plus the changes of the open
// transaction, and is kept true as follows:
//
//   - Only the writer goroutine touches it, and only operations that change
//     counters through begin/finish (step and stepMany, flagged op.counters)
//     use it. Before any other operation (settings, membership, resets,
//     Prune, imports, which read and write rows directly), the writer saves
//     what the cache changed and empties it.
//   - Its changes are saved before the batch commits; if the batch's
//     transaction rolls back for any reason, the cache is emptied, so it
//     never holds a change the file lost. A batch run again with each
//     operation in a savepoint (Store.commit) runs without it.
//   - Other connections (other Stores on the file, other processes) may
//     commit between two batches. Each batch starts by reading PRAGMA
//     data_version, which changes when another connection has committed,
//     and empties the cache when it did. The writer's pool holds exactly one
//     connection, never closed or replaced (no lifetime, no idle timeout,
//     and the driver never reports a bad connection), so the value always
//     comes from the connection the cache was filled on.

import (
	"database/sql"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/internal/sqlcodec"
)

// maxCached bounds the cache: after a batch that leaves more budgets in it,
// it is emptied.
const maxCached = 8192

// cached is one budget's row as the cache keeps it.
type cached struct {
	version int64
	limit   int64
	c       budget.Counter
	nextExp sql.NullInt64
	dirty   bool // changed since it was read or saved
}

// counterCache is the writer's cache of counters (see above).
type counterCache struct {
	rows  map[string]*cached
	dirty []string // keys of the dirty rows, in the order they became dirty
	// dataVersion is the connection's PRAGMA data_version that rows are
	// true for; -1 when unknown.
	dataVersion int64
	on          bool // the running operation uses the cache
}

func newCounterCache() *counterCache {
	return &counterCache{rows: make(map[string]*cached), dataVersion: -1}
}

// load copies the cached row of a.user into a and reports whether there
// was one. It finds nothing when the cache is off.
func (cc *counterCache) load(a *acct) bool {
	if !cc.on {
		return false
	}
	e, ok := cc.rows[a.user]
	if !ok {
		return false
	}
	a.version, a.limit, a.c, a.nextExp = e.version, e.limit, e.c, e.nextExp
	return true
}

// keep caches a's row as read from the file (or just created). It does
// nothing when the cache is off.
func (cc *counterCache) keep(a *acct) {
	if cc.on {
		cc.rows[a.user] = &cached{version: a.version, limit: a.limit, c: stored(a.c), nextExp: a.nextExp}
	}
}

// save records a's counters as changed, to be written at the end of the
// batch, and reports whether it did: when the cache is off or does not
// hold a.user's row (a row it did not read), the caller writes them.
func (cc *counterCache) save(a *acct) bool {
	if !cc.on {
		return false
	}
	e, ok := cc.rows[a.user]
	if !ok {
		return false
	}
	e.c, e.nextExp = stored(a.c), a.nextExp
	if !e.dirty {
		e.dirty = true
		cc.dirty = append(cc.dirty, a.user)
	}
	return true
}

// stored returns c as the file gives it back: its window's instants in
// UTC.
func stored(c budget.Counter) budget.Counter {
	c.Window = budget.Window{Start: sqlcodec.FromUnix(c.Window.Start.UnixNano()), End: sqlcodec.FromUnix(c.Window.End.UnixNano())}
	return c
}

// reset empties the cache, dropping its unsaved changes.
func (cc *counterCache) reset() {
	clear(cc.rows)
	cc.dirty = cc.dirty[:0]
}

// flush writes the dirty rows in tx.
func (s *Store) flush(tx *sql.Tx) error {
	cc := s.cc
	if len(cc.dirty) == 0 {
		return nil
	}
	save := tx.Stmt(s.st.saveCounters)
	for _, key := range cc.dirty {
		e := cc.rows[key]
		c := &e.c
		if _, err := save.Exec(c.Window.Start.UnixNano(), c.Window.End.UnixNano(),
			int64(c.Spent), int64(c.Held), e.nextExp, int64(c.Marked), key); err != nil {
			return err
		}
		e.dirty = false
	}
	cc.dirty = cc.dirty[:0]
	return nil
}

// validate empties the cache if another connection committed since it was
// filled. Call it at the start of each batch's transaction.
func (s *Store) validate(tx *sql.Tx) error {
	var v int64
	if err := tx.Stmt(s.st.dataVersion).QueryRow().Scan(&v); err != nil {
		s.cc.reset()
		s.cc.dataVersion = -1
		return err
	}
	if v != s.cc.dataVersion {
		s.cc.reset()
		s.cc.dataVersion = v
	}
	return nil
}
