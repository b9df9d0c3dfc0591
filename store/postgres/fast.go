package postgres

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/llmbudget/budget"
)

// The fast path.
//
// A transaction that locks the user's row before deciding costs two round
// trips (BEGIN with the locking read; the writes with COMMIT), and on a
// busy server each round trip costs about as much as a whole one-statement
// commit. So a Store remembers, per user, the counters it last committed or
// read and the holds it placed that are still pending; Reserve, Settle,
// Release, Record and Totals first decide on those, with the very code the
// transaction runs (begin's checks, do, finish), and send the outcome as
// one statement: it updates the user's row only if its version, window and
// counters are still the remembered ones, which takes the row lock, and
// every other write in it runs after that update and only if it matched
// (for a hold, only if the hold is still pending and counted). Otherwise
// the statement fails as a whole with SQLSTATE staleCode, and the call runs
// the locking transaction, which refreshes the memory.
//
// That is as atomic as the transaction: the decision depends only on the
// values the statement checks under the row lock (the expiry step is a
// no-op when the remembered earliest expiry is after now, and nothing else
// reads the database), so a statement that succeeds writes what the
// transaction would have written. A remembered value that is stale, from
// this process or another, only costs a round trip. The fast path is not
// taken when the window must advance or a hold has expired (those read
// usage and holds), for holds this Store did not place, or while another
// call of this Store for the same user is in flight (they would invalidate
// each other's memory). Extend never takes it (see Extend for how it keeps
// next_expiry and the remembered holds right).
//
// Nor does a request that carries Also (a team's, an org's or a model
// cap's budget beside the user's): it runs the locking transaction over
// all its keys (scoped.go), which locks them in key order. Its statement
// would have to check and update several rows in one round trip, and
// those rows are shared by many users, so remembered counters would
// rarely still be fresh. A request without Also pays one length check for
// scopes, and its fast path is unchanged. A step over several keys still
// leaves the user's own counters (and the hold it placed or closed) in
// the memory, as any locking step does, for the user's next call
// without Also.

// staleCode is the SQLSTATE of expect_fresh (schema.sql).
const staleCode = "BGT01"

const (
	maxCachedUsers = 10_000 // users remembered; beyond, some are forgotten
	maxCachedHolds = 256    // pending holds remembered per user
)

// cache remembers, per user, what the fast path decides on.
type cache struct {
	users sync.Map // user ID → *cached
	n     atomic.Int64
}

// cached is one user's memory.
type cached struct {
	busy atomic.Int32 // calls of this Store for the user in flight

	mu    sync.Mutex
	valid bool // a holds the counters as last committed or read
	a     acct
	holds map[string]cachedHold // pending, counted holds this Store placed
}

type cachedHold struct{ amount, expires int64 }

// entry returns the user's memory, or nil.
func (c *cache) entry(user string) *cached {
	if v, ok := c.users.Load(user); ok {
		return v.(*cached)
	}
	return nil
}

// save remembers the counters a committed step left, and the hold it
// placed, closed or extended.
func (c *cache) save(user string, a *acct, ops *intents, now time.Time) {
	e := c.entry(user)
	if e == nil {
		if c.n.Load() >= maxCachedUsers {
			c.shrink()
		}
		v, loaded := c.users.LoadOrStore(user, &cached{holds: map[string]cachedHold{}})
		if !loaded {
			c.n.Add(1)
		}
		e = v.(*cached)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.valid, e.a = true, *a
	if a.nextExp != nil {
		next := *a.nextExp
		e.a.nextExp = &next
	}
	if ops.closeHold != "" {
		delete(e.holds, ops.closeHold)
	}
	// Only a hold still remembered takes its new expiry: one a concurrent
	// step closed (and forgot) stays forgotten.
	if ops.extendHold != "" {
		if h, ok := e.holds[ops.extendHold]; ok && h.expires < ops.extendTo {
			h.expires = ops.extendTo
			e.holds[ops.extendHold] = h
		}
	}
	if ops.newHold != "" {
		if len(e.holds) >= maxCachedHolds {
			for id, h := range e.holds {
				if h.expires <= now.UnixNano() {
					delete(e.holds, id)
				}
			}
		}
		if len(e.holds) < maxCachedHolds {
			e.holds[ops.newHold] = cachedHold{ops.holdArgs[1].(int64), ops.holdArgs[2].(int64)}
		}
	}
}

// forget drops the user's counters, keeping the holds.
func (c *cache) forget(user string) {
	if e := c.entry(user); e != nil {
		e.mu.Lock()
		e.valid = false
		e.mu.Unlock()
	}
}

// shrink forgets about a quarter of the users, those with no call in
// flight.
func (c *cache) shrink() {
	i := 0
	c.users.Range(func(k, v any) bool {
		if i++; i%4 == 0 && v.(*cached).busy.Load() == 0 {
			c.users.Delete(k)
			c.n.Add(-1)
		}
		return true
	})
}

// fastStep runs a step on the user's remembered counters as one statement.
// done is false when the fast path could not answer (nothing remembered, a
// window to advance, a hold expired or not remembered, stale counters, a
// statement aborted for a serialization failure or deadlock, or an error
// in do, which may come from stale counters): then nothing was written,
// and step runs the transaction.
func (s *Store) fastStep(ctx context.Context, e *cached, user string, p budget.Policy, now time.Time,
	holdID string, do func(*txn, *acct, *heldHold) error) (tot budget.Totals, done bool, err error) {
	n := now.UnixNano()
	e.mu.Lock()
	a := e.a
	// begin's steps, decided on the remembered counters: the version
	// check, then no window to move to and no hold to expire. (A late
	// request, which begin decides against the stored window, is decided
	// against it here too.)
	ok := e.valid && a.c.Check(user, a.version, p) == nil && !a.c.Advances(p) && (a.nextExp == nil || *a.nextExp > n)
	if a.nextExp != nil {
		next := *a.nextExp
		a.nextExp = &next
	}
	var h heldHold
	if holdID != "" {
		ch, found := e.holds[holdID]
		ok = ok && found && ch.expires > n
		h = heldHold{found: true, amount: ch.amount, expires: ch.expires, counted: true}
	}
	e.mu.Unlock()
	if !ok {
		return budget.Totals{}, false, nil
	}
	a.user, a.read = user, a.snap()
	t := &txn{ctx: ctx, fast: true}
	if do != nil {
		if err := do(t, &a, &h); err != nil {
			return budget.Totals{}, false, nil
		}
	}
	tot = s.finish(t, &a, p)
	sql, args := s.fastStatement(&a, &t.ops)
	err = s.commitFast(&fastWrite{ctx: ctx, user: user, sql: sql, args: args, done: make(chan struct{})})
	if err == errAlone {
		var fresh bool
		err = s.pool.QueryRow(ctx, sql, args...).Scan(&fresh)
	}
	var pe *pgconn.PgError
	switch {
	case err == nil:
		s.fastDone.Add(1)
		s.cache.save(user, &a, &t.ops, now)
		return tot, true, nil
	case errors.As(err, &pe) && pe.Code == staleCode, retryable(err):
		s.fastStale.Add(1)
		s.cache.forget(user)
		return budget.Totals{}, false, nil
	}
	return budget.Totals{}, true, err
}

// fastStatement returns the statement that writes a fast step's outcome,
// and its arguments.
func (s *Store) fastStatement(a *acct, ops *intents) (string, []any) {
	sn, old := a.snap(), a.read
	args := append(make([]any, 0, 24), a.user, int64(sn.spent), int64(sn.held), nullable(sn.next, sn.hasNext), int16(sn.marked),
		a.version, old.ws, old.we, int64(old.spent), int64(old.held), nullable(old.next, old.hasNext), int16(old.marked))
	switch {
	case ops.newHold != "":
		return s.q.fastReserve, append(args, ops.holdArgs...)
	case ops.closeHold != "" && ops.usage != nil:
		return s.q.fastSettle, append(append(args, ops.closeHold, ops.state), ops.usage...)
	case ops.closeHold != "":
		return s.q.fastRelease, append(args, ops.closeHold, ops.state)
	case ops.usage != nil:
		return s.q.fastRecord, append(args, ops.usage...)
	}
	return s.q.fastGuard, args
}

func nullable(n int64, ok bool) *int64 {
	if !ok {
		return nil
	}
	return &n
}
