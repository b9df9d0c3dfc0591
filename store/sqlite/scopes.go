package sqlite

// Budgets beyond the user's own: a request whose Also names the user's
// teams, org and model caps is one step over all of those budgets, in the
// one immediate transaction every write runs in (so no two steps
// interleave, and the order in which a step visits budgets can deadlock
// nothing; it visits them in increasing key order all the same, as the
// contract asks of every store).
//
// Each budget is a row of users under its key (see migrate_v3.sql), with
// its holds and rollups under that key, like a user's; the usage charged to
// it lives in usage_charged (migrate_v5.sql), the user's own in usage. The
// step reads each budget's counters with the single-budget statement, or
// from the writer's cache (cache.go), which also saves them once per
// batch; it reads the hold's rows under all of them with one read of the
// hold's range of the primary key, closes them with one UPDATE by hold,
// and inserts their holds, charged usage rows and rollups with one
// statement each, whatever their number: the statements name the budgets
// by a JSON array of their keys, the user's first, which json_each turns
// into rows (and its key column into each budget's index in the request).
// A request without Also takes the single-budget path of sqlite.go.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/internal/sqlcodec"
)

// countersManyCols are the columns call.load reads.
const countersManyCols = `users.user_id, version, win_start, win_end, spent, held, next_expiry, marked`

// call is one policy-carrying step over the user's budget and those of
// the request's Also.
type call struct {
	accts []*acct         // request order: the user's first, then Also's
	byKey []*acct         // the same, in increasing key order
	json  string          // the keys as a JSON array, in request order (see keys)
	into  []budget.Totals // the request's AlsoTotals
}

// newCall returns the step over user's budget (policy p) and also's. A
// key named twice is an error.
func newCall(user string, p budget.Policy, also []budget.KeyPolicy) (*call, error) {
	n := 1 + len(also)
	all := make([]acct, n)
	c := &call{accts: make([]*acct, n), byKey: make([]*acct, n)}
	all[0] = acct{user: user, p: p}
	for i, kp := range also {
		all[i+1] = acct{user: kp.Key, p: kp.Policy, cap: kp.Cap}
	}
	for i := range all {
		c.accts[i] = &all[i]
	}
	copy(c.byKey, c.accts)
	slices.SortFunc(c.byKey, func(a, b *acct) int { return strings.Compare(a.user, b.user) })
	for i := 1; i < n; i++ {
		if c.byKey[i].user == c.byKey[i-1].user {
			return nil, fmt.Errorf("budget/sqlite: budget %q twice in one request", c.byKey[i].user)
		}
	}
	return c, nil
}

// keys returns the keys of c as a JSON array, in request order.
func (c *call) keys() string {
	if c.json != "" {
		return c.json
	}
	b := append(make([]byte, 0, 2+len(c.accts)*(len(c.accts[0].user)+16)), '[')
	for i, a := range c.accts {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, a.user)
	}
	// A string, not []byte: SQLite reads a BLOB argument as JSONB.
	c.json = string(append(b, ']'))
	return c.json
}

// index returns the request index of the budget under key, or -1.
func (c *call) index(key string) int {
	a := c.find(key)
	if a == nil {
		return -1
	}
	return slices.Index(c.accts, a)
}

// find returns the budget of c under key, or nil.
func (c *call) find(key string) *acct {
	i, ok := slices.BinarySearchFunc(c.byKey, key, func(a *acct, k string) int { return strings.Compare(a.user, k) })
	if !ok {
		return nil
	}
	return c.byKey[i]
}

// advances reports whether budget a of c moves to its policy's window: a
// cap follows its holder's lateness (Counter.AdvancesCap).
func (c *call) advances(a *acct) bool {
	if !a.cap || a.c.Window.Equal(a.p.Window) {
		return a.c.Advances(a.p)
	}
	if h := c.find(budget.HolderKey(a.user)); h != nil {
		return a.c.AdvancesCap(a.p, &h.c)
	}
	return a.c.Advances(a.p)
}

// load reads rows of countersManyCols into the budgets they belong to, and
// closes rows.
func (c *call) load(rows *sql.Rows) error {
	defer rows.Close()
	for rows.Next() {
		var (
			key                          string
			version, ws, we, spent, held int64
			marked                       int64
			nextExp                      sql.NullInt64
		)
		if err := rows.Scan(&key, &version, &ws, &we, &spent, &held, &nextExp, &marked); err != nil {
			return err
		}
		a := c.find(key)
		if a == nil {
			continue
		}
		a.version, a.nextExp, a.found = version, nextExp, true
		a.c = budget.Counter{
			Window: budget.Window{Start: sqlcodec.FromUnix(ws), End: sqlcodec.FromUnix(we)},
			Spent:  budget.Nanos(spent), Held: budget.Nanos(held), Marked: budget.LevelSet(marked),
		}
	}
	return rows.Err()
}

// notFound is the error for a holder key without settings.
func notFound(key string) error {
	scope, _ := budget.ScopeOfKey(key)
	return fmt.Errorf("%w: no settings for %s %q", budget.ErrNotFound, scope.Kind, scope.ID)
}

// beginMany reads the counters of every budget of c, creating a cap's on
// its first use, and applies the steps every policy-carrying call starts
// with: the version checks (not for caps, whose holder is in the same
// request), then, budget by budget in key order, the window advance and
// hold expiry. It first forgets what an earlier run of the step read: the
// writer may run an operation twice (see Store.commit).
func (s *Store) beginMany(tx *sql.Tx, c *call, now time.Time) error {
	for _, a := range c.accts {
		a.version, a.c, a.nextExp, a.found = 0, budget.Counter{}, sql.NullInt64{}, false
	}
	// One prepared single-key read per budget: cheaper here, for the few
	// budgets of a call, than one join over json_each of their keys.
	var counters *sql.Stmt
	for _, a := range c.accts {
		if s.cc.load(a) {
			a.found = true
			continue
		}
		if counters == nil {
			counters = tx.Stmt(s.st.counters)
		}
		switch err := a.scan(counters.QueryRow(a.user)); {
		case err == nil:
			a.found = true
			s.cc.keep(a)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
	}
	for _, a := range c.accts {
		switch {
		case a.found && !a.cap:
			if err := a.c.Check(a.user, a.version, a.p); err != nil {
				return err
			}
		case a.cap && !a.found:
			if err := s.createCap(tx, a, now); err != nil {
				return err
			}
		case !a.found:
			return notFound(a.user)
		}
	}
	for _, a := range c.byKey {
		if c.advances(a) {
			if err := s.moveTo(tx, a, a.p, now); err != nil {
				return err
			}
		}
		if err := s.expire(tx, a, now); err != nil {
			return err
		}
	}
	return nil
}

// createCap creates the counters row of a model cap at its first use, in
// its policy's window: a row of users with placeholder settings and cap =
// 1, which nothing lists.
func (s *Store) createCap(tx *sql.Tx, a *acct, now time.Time) error {
	at, err1 := unix(now)
	ws, err2 := unix(a.p.Window.Start)
	we, err3 := unix(a.p.Window.End)
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	if _, err := tx.Stmt(s.st.createCap).Exec(a.user, at, at, ws, we); err != nil {
		return err
	}
	a.c, a.found = budget.Counter{Window: a.p.Window}, true
	s.cc.keep(a)
	return nil
}

// finishMany marks the alerts each budget's policy calls for, saves every
// budget's counters and returns the user's totals with Also's, in request
// order.
func (s *Store) finishMany(tx *sql.Tx, c *call) (budget.Totals, error) {
	t, err := s.finish(tx, c.accts[0], c.accts[0].p)
	if err != nil {
		return budget.Totals{}, err
	}
	t.Also = budget.AlsoInto(c.into, len(c.accts)-1)
	for i, a := range c.accts[1:] {
		if t.Also[i], err = s.finish(tx, a, a.p); err != nil {
			return budget.Totals{}, err
		}
	}
	return t, nil
}

// stepMany is step for a request with Also: one atomic step over the
// user's budget and every budget of also, whose totals go to into when it
// has room (budget.AlsoInto). do may be nil.
func (s *Store) stepMany(ctx context.Context, user string, p budget.Policy, also []budget.KeyPolicy, into []budget.Totals, now time.Time, do func(*sql.Tx, *call) error) (budget.Totals, error) {
	c, err := newCall(user, p, also)
	if err != nil {
		return budget.Totals{}, err
	}
	c.into = into
	var t budget.Totals
	err = s.writeCounters(ctx, func(tx *sql.Tx) error {
		if err := s.beginMany(tx, c, now); err != nil {
			return err
		}
		if do != nil {
			if err := do(tx, c); err != nil {
				return err
			}
		}
		t, err = s.finishMany(tx, c)
		return err
	})
	return t, interpret(err)
}

// reserveMany is Reserve with Also: it decides on copies of every counter
// first, so that the hold is placed on all the budgets or on none.
func (s *Store) reserveMany(ctx context.Context, req budget.ReserveRequest) (budget.Totals, bool, error) {
	exp, err := unix(req.ExpiresAt)
	if err != nil {
		return budget.Totals{}, false, err
	}
	var allowed bool
	t, err := s.stepMany(ctx, req.UserID, req.Policy, req.Also, req.AlsoTotals, req.Now, func(tx *sql.Tx, c *call) error {
		allowed = false
		for _, a := range c.accts {
			trial := a.c
			ok, err := trial.Hold(a.user, a.p, req.Amount)
			if err != nil || !ok {
				return err
			}
		}
		for _, a := range c.accts {
			a.c.Hold(a.user, a.p, req.Amount) // allowed, as tried above
			if !a.nextExp.Valid || exp < a.nextExp.Int64 {
				a.nextExp = sql.NullInt64{Int64: exp, Valid: true}
			}
		}
		res, err := tx.Stmt(s.st.insertHoldMany).Exec(req.HoldID, int64(req.Amount), exp, c.keys())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != int64(len(c.accts)) {
			return fmt.Errorf("%w: hold %q exists", budget.ErrDuplicate, req.HoldID)
		}
		allowed = true
		return nil
	})
	return t, allowed && err == nil, err
}

// openHolds reads the pending hold id on every budget of c, in request
// order, or says why it cannot be closed. only reports whether the hold
// has rows under no other budget.
func (s *Store) openHolds(tx *sql.Tx, c *call, id string) (hs []heldHold, only bool, err error) {
	rows, err := tx.Stmt(s.st.holdsMany).Query(id)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	only = true
	hs = make([]heldHold, len(c.accts))
	state := make([]int64, len(c.accts))
	for i := range state {
		state[i] = -1 // no row
	}
	for rows.Next() {
		var (
			key                          string
			amount, expires, st, counted int64
		)
		if err := rows.Scan(&key, &amount, &expires, &st, &counted); err != nil {
			return nil, false, err
		}
		if i := c.index(key); i >= 0 {
			hs[i], state[i] = heldHold{amount, expires, counted == 1}, st
		} else {
			only = false
		}
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	for i, a := range c.accts {
		switch state[i] {
		case 0:
		case -1:
			return nil, false, fmt.Errorf("%w: no hold %q for %q", budget.ErrNotFound, id, a.user)
		default:
			return nil, false, fmt.Errorf("%w: hold %q", budget.ErrReservationClosed, id)
		}
	}
	return hs, only, nil
}

// closeHolds gives the hold its final state on every budget of c, taking
// it out of the live sums where it still counted: with one statement when
// the hold has rows under c's budgets only (openHolds' only).
func (s *Store) closeHolds(tx *sql.Tx, c *call, id string, hs []heldHold, only bool, state int) error {
	if !only {
		for i, a := range c.accts {
			if err := s.closeHold(tx, a, id, hs[i], state); err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := tx.Stmt(s.st.closeHoldAll).Exec(state, id); err != nil {
		return err
	}
	for i, a := range c.accts {
		if hs[i].counted {
			a.c.Unhold(budget.Nanos(hs[i].amount))
		}
	}
	return nil
}

// addUsageMany records r on every budget of c, each row with its daily
// rollup: under the user's key as r, in usage; under the others' in
// usage_charged, with UserID set to the key, ID to
// budget.UsageKeyID(r.UserID, r.ID) and the user's row's seq. A usage ID
// the user already has is ErrDuplicate.
func (s *Store) addUsageMany(tx *sql.Tx, c *call, r budget.UsageRow) error {
	at, err := unix(r.At)
	if err != nil {
		return err
	}
	for _, a := range c.accts {
		if err := a.c.Charge(a.user, r.Cost, r.At); err != nil {
			return err
		}
	}
	res, err := tx.Stmt(s.st.insertUsage).Exec(r.UserID, r.ID, r.HoldID, r.Provider, r.Model, r.InputTokens, r.OutputTokens, int64(r.Cost), at)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: usage %q of user %q", budget.ErrDuplicate, r.ID, r.UserID)
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return err
	}
	keys := c.keys()
	if _, err := tx.Stmt(s.st.insertCharged).Exec(budget.UsageKeyID(r.UserID, r.ID), seq, at, r.HoldID, r.Provider, r.Model,
		r.InputTokens, r.OutputTokens, int64(r.Cost), keys); err != nil {
		return err
	}
	_, err = tx.Stmt(s.st.rollupMany).Exec(sqlcodec.DayOf(at), r.Provider, r.Model, int64(r.Cost), r.InputTokens, r.OutputTokens, keys)
	return err
}

// settleMany is Settle with Also.
func (s *Store) settleMany(ctx context.Context, req budget.SettleRequest) (budget.Totals, error) {
	return s.stepMany(ctx, req.Usage.UserID, req.Policy, req.Also, req.AlsoTotals, req.Now, func(tx *sql.Tx, c *call) error {
		hs, only, err := s.openHolds(tx, c, req.HoldID)
		if err != nil {
			return err
		}
		if err := s.addUsageMany(tx, c, req.Usage); err != nil {
			return err
		}
		return s.closeHolds(tx, c, req.HoldID, hs, only, 1)
	})
}

// releaseMany is Release with Also.
func (s *Store) releaseMany(ctx context.Context, req budget.ReleaseRequest) (budget.Totals, error) {
	return s.stepMany(ctx, req.UserID, req.Policy, req.Also, req.AlsoTotals, req.Now, func(tx *sql.Tx, c *call) error {
		hs, only, err := s.openHolds(tx, c, req.HoldID)
		if err != nil {
			return err
		}
		return s.closeHolds(tx, c, req.HoldID, hs, only, 2)
	})
}

// extendMany is Extend with Also: the hold must still count on every
// budget, and moves its expiry on each as Extend does on one.
func (s *Store) extendMany(ctx context.Context, req budget.ExtendRequest, exp int64) (budget.Totals, error) {
	return s.stepMany(ctx, req.UserID, req.Policy, req.Also, req.AlsoTotals, req.Now, func(tx *sql.Tx, c *call) error {
		hs, _, err := s.openHolds(tx, c, req.HoldID)
		if err != nil {
			return err
		}
		for i, a := range c.accts {
			if !hs[i].counted || hs[i].expires <= req.Now.UnixNano() {
				return fmt.Errorf("%w: hold %q of %q", budget.ErrHoldExpired, req.HoldID, a.user)
			}
		}
		for i, a := range c.accts {
			if err := s.extendOne(tx, a, req.HoldID, hs[i], exp); err != nil {
				return err
			}
		}
		return nil
	})
}

// recordMany is Record with Also.
func (s *Store) recordMany(ctx context.Context, req budget.RecordRequest) (budget.Totals, error) {
	return s.stepMany(ctx, req.Usage.UserID, req.Policy, req.Also, req.AlsoTotals, req.Now, func(tx *sql.Tx, c *call) error {
		return s.addUsageMany(tx, c, req.Usage)
	})
}

// totalsMany is Totals with Also. When the step would change none of the
// budgets, it answers from one statement on a read connection (one
// snapshot of all of them) without entering the write queue. A cap not
// used yet has nothing spent or held in its policy's window.
func (s *Store) totalsMany(ctx context.Context, req budget.TotalsRequest) (budget.Totals, error) {
	if err := s.reading(ctx); err != nil {
		return budget.Totals{}, err
	}
	c, err := newCall(req.UserID, req.Policy, req.Also)
	if err != nil {
		return budget.Totals{}, err
	}
	rows, err := s.st.countersManyR.QueryContext(ctx, c.keys())
	if err != nil {
		return budget.Totals{}, interpret(err)
	}
	if err := c.load(rows); err != nil {
		return budget.Totals{}, interpret(err)
	}
	now := req.Now.UnixNano()
	for _, a := range c.accts {
		switch {
		case a.found && !a.cap:
			if err := a.c.Check(a.user, a.version, a.p); err != nil {
				return budget.Totals{}, err
			}
		case a.cap && !a.found:
			a.c = budget.Counter{Window: a.p.Window}
		case !a.found:
			return budget.Totals{}, notFound(a.user)
		}
		if c.advances(a) || (a.nextExp.Valid && a.nextExp.Int64 <= now) || a.c.Due(a.p) {
			return s.stepMany(ctx, req.UserID, req.Policy, req.Also, req.AlsoTotals, req.Now, nil)
		}
	}
	t := c.accts[0].c.Totals()
	t.Also = budget.AlsoInto(req.AlsoTotals, len(c.accts)-1)
	for i, a := range c.accts[1:] {
		t.Also[i] = a.c.Totals()
	}
	return t, nil
}

// appendJSONString appends s to b as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '"' || ch == '\\':
			b = append(b, '\\', ch)
		case ch < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[ch>>4], hex[ch&0xf])
		default:
			b = append(b, ch)
		}
	}
	return append(b, '"')
}
