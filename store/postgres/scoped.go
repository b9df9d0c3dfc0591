package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/internal/sqlcodec"
)

// Budgets at every scope.
//
// A team's or an org's budget is a row of users under its key, like a
// user's, with its own holds, usage and daily rollups under that key; a
// model cap's counters are a row under the cap's key marked cap, with
// placeholder settings (see migrate_v3.sql). A call whose request carries
// Also is one locking transaction over all its budgets (never the fast
// path, see fast.go):
//
//  1. It locks every key, the user's and Also's, in increasing key order
//     (byte order: the keys are COLLATE "C"), one SELECT ... FOR UPDATE
//     per key, all sent in one round trip with BEGIN, and reads the hold
//     under each key in the same round trip. Every transaction that locks
//     several rows of users takes them in that order (group commit sorts
//     its batches by user, Prune locks pages in key order), so two of them
//     never wait on each other in a cycle, whichever replicas they come
//     from.
//  2. A cap's row is created on first use: when the locking read finds a
//     cap's row missing, the transaction rolls back, one statement inserts
//     the missing rows in key order (INSERT ... ON CONFLICT DO NOTHING,
//     outside any transaction, so it holds no lock while it waits for a
//     concurrent insert of the same key) and the transaction runs again.
//  3. It applies the contract's steps to every budget (the version check
//     but for caps, the window advance, the expiry), the method's work to
//     every budget, then Finish to every budget. Reserve decides on every
//     counter before it holds on any.
//
// Any error rolls the whole transaction back: nothing changes on any key.

// errCapsMissing ends a locking transaction that found a cap's counters
// missing: they are created, and the transaction runs again.
var errCapsMissing = errors.New("budget/postgres: model cap counters missing")

// scopedCall is the state of one step over the user's budget and the
// budgets of the request's Also.
type scopedCall struct {
	keys  []budget.KeyPolicy // the user's (index 0), then Also's in its order
	order []int              // indices of keys, in increasing key order
	as    []*acct            // the counters of keys, as locked
	hs    []heldHold         // the hold read under each key, if any
}

// newScopedCall returns the call over user's budget with policy p and the
// budgets of also, or an error when a key is named twice.
func newScopedCall(user string, p budget.Policy, also []budget.KeyPolicy) (*scopedCall, error) {
	keys := make([]budget.KeyPolicy, 1, 1+len(also))
	keys[0] = budget.KeyPolicy{Key: user, Policy: p}
	keys = append(keys, also...)
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(keys[a].Key, keys[b].Key) })
	for j := 1; j < len(order); j++ {
		if k := keys[order[j]].Key; k == keys[order[j-1]].Key {
			return nil, fmt.Errorf("%w: budget %q twice in one request", budget.ErrInvalid, k)
		}
	}
	return &scopedCall{keys: keys, order: order}, nil
}

// advances reports whether a, the counters of budget i of c, moves to its
// policy's window, given as, the counters of every budget of c: a cap
// follows its holder's lateness (Counter.AdvancesCap).
func (c *scopedCall) advances(i int, a *acct, as []*acct) bool {
	k := c.keys[i]
	if !k.Cap || a.c.Window.Equal(k.Policy.Window) {
		return a.c.Advances(k.Policy)
	}
	hk := budget.HolderKey(k.Key)
	for j, h := range c.keys {
		if h.Key == hk && as[j] != nil {
			return a.c.AdvancesCap(k.Policy, &as[j].c)
		}
	}
	return a.c.Advances(k.Policy)
}

// rowFor returns the usage row r as budget i records it: r itself for the
// user, else under the budget's key with a user-qualified ID.
func (c *scopedCall) rowFor(i int, r budget.UsageRow) budget.UsageRow {
	if i > 0 {
		r.ID = budget.UsageKeyID(r.UserID, r.ID)
		r.UserID = c.keys[i].Key
	}
	return r
}

// scopedStep runs one policy-carrying operation over the user's budget and
// the budgets of also, in one locking transaction: lock every key in key
// order, reading the hold holdID under each if it is set and whatever more
// queues for each key (in key order) in the same round trip; then the
// version checks, window advances and expiry on every budget; then do (may
// be nil); then Finish on every budget. Once it commits, the cache
// remembers the user's counters, as after any locking step.
func (s *Store) scopedStep(ctx context.Context, user string, p budget.Policy, also []budget.KeyPolicy, now time.Time,
	holdID string, more func(b *pgx.Batch, i int, key string), do func(*txn, *scopedCall) error) (budget.Totals, error) {
	if err := s.check(ctx); err != nil {
		return budget.Totals{}, err
	}
	c, err := newScopedCall(user, p, also)
	if err != nil {
		return budget.Totals{}, err
	}
	var (
		tot     budget.Totals
		ops     intents
		missing []budget.KeyPolicy
	)
	// Caps are never deleted: once created, the second run finds them.
	for try := 0; ; try++ {
		err = s.transact(ctx, func(t *txn) error {
			var err error
			tot, err = s.scopedRun(t, c, now, holdID, more, do, &missing)
			ops = t.ops
			return err
		})
		if err != errCapsMissing || try == 2 {
			break
		}
		if err = s.createCaps(ctx, missing); err != nil {
			break
		}
	}
	if err != nil {
		return budget.Totals{}, interpret(err)
	}
	s.cache.save(user, c.as[0], &ops, now)
	return tot, nil
}

// scopedRun is one attempt of scopedStep's transaction. When caps' counters
// are missing it appends them to missing, in key order, and returns
// errCapsMissing.
func (s *Store) scopedRun(t *txn, c *scopedCall, now time.Time, holdID string,
	more func(*pgx.Batch, int, string), do func(*txn, *scopedCall) error, missing *[]budget.KeyPolicy) (budget.Totals, error) {
	n := len(c.keys)
	*missing = (*missing)[:0]
	c.as, c.hs = make([]*acct, n), make([]heldHold, n)
	found := make([]bool, n)
	b := t.batch()
	for _, i := range c.order {
		a := &acct{user: c.keys[i].Key, cap: c.keys[i].Cap}
		c.as[i] = a
		b.Queue(s.q.counters, a.user).QueryRow(func(r pgx.Row) error {
			err := a.scan(r)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			found[i] = err == nil
			return err
		})
	}
	for _, i := range c.order {
		if holdID != "" {
			s.readHold(&c.hs[i], c.keys[i].Key, holdID)(b)
		}
		if more != nil {
			more(b, i, c.keys[i].Key)
		}
	}
	if err := t.send(b); err != nil {
		return budget.Totals{}, err
	}
	for _, i := range c.order {
		switch k := c.keys[i]; {
		case found[i]:
		case !k.Cap:
			return budget.Totals{}, noSettings(k.Key)
		default:
			*missing = append(*missing, k)
		}
	}
	if len(*missing) > 0 {
		return budget.Totals{}, errCapsMissing
	}
	if s.locked != nil {
		s.locked(t.ctx, t.conn.PgConn().PID())
	}
	// A cap's holder is in the same request: only holders are checked.
	for i, k := range c.keys {
		if !k.Cap {
			if err := c.as[i].c.Check(k.Key, c.as[i].version, k.Policy); err != nil {
				return budget.Totals{}, err
			}
		}
	}
	for i, k := range c.keys {
		a := c.as[i]
		if c.advances(i, a, c.as) {
			if err := s.moveTo(t, a, k.Policy, now); err != nil {
				return budget.Totals{}, err
			}
		}
		if err := s.expire(t, a, now); err != nil {
			return budget.Totals{}, err
		}
	}
	if do != nil {
		if err := do(t, c); err != nil {
			return budget.Totals{}, err
		}
	}
	tot := s.finish(t, c.as[0], c.keys[0].Policy)
	tot.Also = make([]budget.Totals, n-1)
	for i := 1; i < n; i++ {
		tot.Also[i-1] = s.finish(t, c.as[i], c.keys[i].Policy)
	}
	return tot, nil
}

// createCaps creates the counters of caps (in key order) that no one has
// created yet, each starting in its policy's window. It is one statement
// of its own, which commits at once: it holds no lock while it waits for
// a concurrent insert of the same key.
func (s *Store) createCaps(ctx context.Context, caps []budget.KeyPolicy) error {
	keys := make([]string, len(caps))
	starts, ends := make([]int64, len(caps)), make([]int64, len(caps))
	for i, k := range caps {
		ws, err1 := unix(k.Policy.Window.Start)
		we, err2 := unix(k.Policy.Window.End)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		keys[i], starts[i], ends[i] = k.Key, ws, we
	}
	if err := s.check(ctx); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, s.q.createCaps, keys, starts, ends)
	return err
}

// reserveScoped is Reserve with Also: it tries the hold on every counter
// first, and places it on all of them only when every policy allows it.
func (s *Store) reserveScoped(ctx context.Context, req budget.ReserveRequest, exp int64) (budget.Totals, bool, error) {
	var allowed bool
	tot, err := s.scopedStep(ctx, req.UserID, req.Policy, req.Also, req.Now, "", nil, func(t *txn, c *scopedCall) error {
		allowed = false
		for i, a := range c.as {
			trial := a.c
			ok, err := trial.Hold(a.user, c.keys[i].Policy, req.Amount)
			if err != nil || !ok {
				return err
			}
		}
		for i, a := range c.as {
			a.c.Hold(a.user, c.keys[i].Policy, req.Amount) // allowed, as tried above
			// A hold ID taken under any key is a unique violation: ErrDuplicate.
			t.write(s.q.insertHold, a.user, req.HoldID, int64(req.Amount), exp)
			if a.nextExp == nil || exp < *a.nextExp {
				next := exp
				a.nextExp = &next
			}
		}
		t.ops.newHold, t.ops.holdArgs = req.HoldID, []any{req.HoldID, int64(req.Amount), exp}
		allowed = true
		return nil
	})
	return tot, allowed && err == nil, err
}

// settleScoped is Settle with Also: the hold closes under every key, and
// the usage is recorded under every key (see scopedCall.rowFor).
func (s *Store) settleScoped(ctx context.Context, req budget.SettleRequest) (budget.Totals, error) {
	return s.scopedStep(ctx, req.Usage.UserID, req.Policy, req.Also, req.Now, req.HoldID, nil, func(t *txn, c *scopedCall) error {
		for i, a := range c.as {
			if err := s.closeHold(t, a, req.HoldID, &c.hs[i], 1, req.Now); err != nil {
				return err
			}
			// A usage ID the user has is a unique violation: ErrDuplicate.
			if err := s.addUsage(t, a, c.rowFor(i, req.Usage)); err != nil {
				return err
			}
		}
		return nil
	})
}

// releaseScoped is Release with Also.
func (s *Store) releaseScoped(ctx context.Context, req budget.ReleaseRequest) (budget.Totals, error) {
	return s.scopedStep(ctx, req.UserID, req.Policy, req.Also, req.Now, req.HoldID, nil, func(t *txn, c *scopedCall) error {
		for i, a := range c.as {
			if err := s.closeHold(t, a, req.HoldID, &c.hs[i], 2, req.Now); err != nil {
				return err
			}
		}
		return nil
	})
}

// extendScoped is Extend with Also: the hold must still count under every
// key, and its expiry moves under every key, which keeps next_expiry exact
// under each as Extend does for the user alone.
func (s *Store) extendScoped(ctx context.Context, req budget.ExtendRequest, exp int64) (budget.Totals, error) {
	n := req.Now.UnixNano()
	others := make([]*int64, 1+len(req.Also))
	more := func(b *pgx.Batch, i int, key string) {
		others[i] = nil
		b.Queue(s.q.otherExpiry, key, req.HoldID, n).QueryRow(func(r pgx.Row) error { return r.Scan(&others[i]) })
	}
	return s.scopedStep(ctx, req.UserID, req.Policy, req.Also, req.Now, req.HoldID, more, func(t *txn, c *scopedCall) error {
		for i, a := range c.as {
			switch h := &c.hs[i]; {
			case !h.found:
				return fmt.Errorf("%w: no hold %q for %q", budget.ErrNotFound, req.HoldID, a.user)
			case h.state != 0:
				return fmt.Errorf("%w: hold %q", budget.ErrReservationClosed, req.HoldID)
			case !h.counted || h.expires <= n:
				return fmt.Errorf("%w: hold %q of %q", budget.ErrHoldExpired, req.HoldID, a.user)
			}
		}
		for i, a := range c.as {
			if exp <= c.hs[i].expires {
				continue
			}
			t.write(s.q.extendHold, a.user, req.HoldID, exp)
			next := exp
			if others[i] != nil && *others[i] < next {
				next = *others[i]
			}
			a.nextExp = &next
		}
		t.ops.extendHold, t.ops.extendTo = req.HoldID, exp
		return nil
	})
}

// recordScoped is Record with Also.
func (s *Store) recordScoped(ctx context.Context, req budget.RecordRequest) (budget.Totals, error) {
	return s.scopedStep(ctx, req.Usage.UserID, req.Policy, req.Also, req.Now, "", nil, func(t *txn, c *scopedCall) error {
		for i, a := range c.as {
			if err := s.addUsage(t, a, c.rowFor(i, req.Usage)); err != nil {
				return err
			}
		}
		return nil
	})
}

// totalsScoped is Totals with Also. When the step would change nothing on
// any budget (every counter exists at its policy's version and window, no
// hold has expired and no alert is due), it answers from one read of all
// the counters, without a transaction or a lock; otherwise it runs the
// locking step.
func (s *Store) totalsScoped(ctx context.Context, req budget.TotalsRequest) (budget.Totals, error) {
	if err := s.check(ctx); err != nil {
		return budget.Totals{}, err
	}
	c, err := newScopedCall(req.UserID, req.Policy, req.Also)
	if err != nil {
		return budget.Totals{}, err
	}
	keys := make([]string, len(c.keys))
	for i, k := range c.keys {
		keys[i] = k.Key
	}
	rows, err := s.pool.Query(ctx, s.q.countersRead, keys)
	if err != nil {
		return budget.Totals{}, interpret(err)
	}
	read := make(map[string]*acct, len(keys))
	for rows.Next() {
		var (
			key                 string
			ws, we, spent, held int64
			marked              int16
			a                   acct
		)
		if err := rows.Scan(&key, &a.version, &ws, &we, &spent, &held, &a.nextExp, &marked); err != nil {
			rows.Close()
			return budget.Totals{}, interpret(err)
		}
		a.c = budget.Counter{Window: window(ws, we), Spent: budget.Nanos(spent), Held: budget.Nanos(held), Marked: budget.LevelSet(marked)}
		read[key] = &a
	}
	if err := rows.Err(); err != nil {
		return budget.Totals{}, interpret(err)
	}
	n := req.Now.UnixNano()
	readAll := make([]*acct, len(c.keys))
	for i, k := range c.keys {
		readAll[i] = read[k.Key]
	}
	var tot budget.Totals
	for i, k := range c.keys {
		a := read[k.Key]
		if a == nil || (!k.Cap && a.c.Check(k.Key, a.version, k.Policy) != nil) || c.advances(i, a, readAll) ||
			(a.nextExp != nil && *a.nextExp <= n) || a.c.Due(k.Policy) {
			return s.scopedStep(ctx, req.UserID, req.Policy, req.Also, req.Now, "", nil, nil)
		}
		if i == 0 {
			tot = a.c.Totals()
			tot.Also = make([]budget.Totals, len(c.keys)-1)
		} else {
			tot.Also[i-1] = a.c.Totals()
		}
	}
	return tot, nil
}

// window returns the window of stored bounds.
func window(ws, we int64) budget.Window {
	return budget.Window{Start: sqlcodec.FromUnix(ws), End: sqlcodec.FromUnix(we)}
}
