// Package memory is a budget.Store that keeps everything in process memory.
//
// Use it for tests, for examples, and for a single process that can afford
// to lose its budgets on restart. It is exact and atomic like every store,
// but nothing survives the process; store/sqlite persists, and
// store/postgres shares budgets across processes and hosts.
package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmbudget/budget"
)

// Store is an in-memory budget.Store. Each user has their own lock, so calls
// for different users never wait on each other; the user index is a
// sync.Map, which reads without locking. The zero Store is not usable: call
// New. A Store is safe for concurrent use.
type Store struct {
	users  sync.Map // user ID → *user
	closed atomic.Bool

	// mu guards the defaults, the templates, the global audit log, which
	// only settings, defaults and template changes, resets and rollovers
	// append to, and the user ID index, which only new users change.
	mu        sync.Mutex
	defaults  *budget.Defaults
	templates map[string]budget.Template
	audit     []budget.AuditEntry
	auditSeq  int64
	lists     map[budget.ScopeKind]*keyList // the keys of each kind of holder
}

// keyList is the keys of one kind of holder, sorted unless unsorted is set.
type keyList struct {
	keys     []string
	unsorted bool
}

var _ budget.Store = (*Store)(nil)

// New returns an empty Store.
func New() *Store { return &Store{} }

type holdState uint8

const (
	noHold holdState = iota
	pending
	settled
	released
)

// entry is what one ID names for a user: a hold, a usage, or both (Settle
// records the usage under the hold's ID unless told otherwise). Keeping both
// in one map makes the usual Reserve + Settle one map insertion, not two;
// keeping the entry to two bytes keeps that map, which grows with every
// call, small.
type entry struct {
	hold  holdState
	usage bool // a usage with this ID is recorded
}

// liveHold is a pending hold still counted in user.held.
type liveHold struct {
	id      string
	amount  budget.Nanos
	expires time.Time
}

// usage is a recorded row and its insertion number, the tie-break of equal
// times.
type usage struct {
	row budget.UsageRow
	seq int64
}

// chunkBits sets the usage log's chunk size (1024 rows): appending never
// copies old rows, as one growing slice would.
const chunkBits = 10

// usageLog is a user's usage in (At, seq) order, in fixed-size chunks.
type usageLog struct {
	chunks [][]usage
	n      int
}

func (l *usageLog) at(i int) *usage { return &l.chunks[i>>chunkBits][i&(1<<chunkBits-1)] }

func (l *usageLog) push(e usage) {
	if l.n&(1<<chunkBits-1) == 0 {
		l.chunks = append(l.chunks, make([]usage, 0, 1<<chunkBits))
	}
	c := &l.chunks[len(l.chunks)-1]
	*c = append(*c, e)
	l.n++
}

// insert puts e at index i, shifting later rows; only a clock that moved
// backwards needs it.
func (l *usageLog) insert(i int, e usage) {
	l.push(e)
	for j := l.n - 1; j > i; j-- {
		*l.at(j) = *l.at(j - 1)
	}
	*l.at(i) = e
}

// search returns the index of the first row for which after is true; after
// must be false for a prefix of the log and true for the rest.
func (l *usageLog) search(after func(*usage) bool) int {
	return sort.Search(l.n, func(i int) bool { return after(l.at(i)) })
}

// user is everything kept for one user, guarded by mu.
type user struct {
	mu       sync.Mutex
	key      string // the budget's key: the user ID, or Scope.Key, or Scope.CapKey
	cap      bool   // a model cap's counters: no settings, not listed
	s        budget.Settings
	c        budget.Counter
	ids      map[string]entry
	live     []liveHold // pending holds still counted in held
	nextExp  time.Time  // zero when live is empty, else at or before its earliest expiry (see expire)
	usage    usageLog
	usageSeq int64
	audit    []budget.AuditEntry
}

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return budget.ErrClosed
	}
	return ctx.Err()
}

// lock returns the user's record, locked, or ErrNotFound.
func (s *Store) lock(ctx context.Context, id string) (*user, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	v, ok := s.users.Load(id)
	if !ok {
		return nil, fmt.Errorf("%w: no settings for user %q", budget.ErrNotFound, id)
	}
	u := v.(*user)
	u.mu.Lock()
	return u, nil
}

// inline is how many budgets a call holds without allocating: the user's,
// a team's, an org's and a cap's.
const inline = 4

// call is one policy-carrying step over the user's budget and the budgets
// of the request's Also: their records and policies, the user's first,
// then Also's in its order. Up to inline budgets live in arrays, so that a
// call's state stays on the stack; it never points into itself, which
// would move it to the heap.
type call struct {
	n       int
	p       budget.Policy      // the user's
	also    []budget.KeyPolicy // the request's
	rec     [inline]*user
	recMore []*user         // all records, when more than inline
	into    []budget.Totals // the request's AlsoTotals
}

func (c *call) recs() []*user {
	if c.recMore != nil {
		return c.recMore
	}
	return c.rec[:c.n]
}

// policy returns the policy of budget i: the user's for 0, else Also's.
func (c *call) policy(i int) *budget.Policy {
	if i == 0 {
		return &c.p
	}
	return &c.also[i-1].Policy
}

// user returns the user's record.
func (c *call) user() *user { return c.recs()[0] }

// begin locks the user's record and those of also, in key order, and
// applies the steps every policy-carrying call starts with: the version
// checks, then refuse (may be nil) for each budget, then the window
// advance and hold expiry. refuse turns the call down (a closed hold, a
// duplicate usage ID) before anything changes, so that a refused call
// changes nothing, not even a window or the audit log. On success the
// caller unlocks c.
func (s *Store) begin(ctx context.Context, c *call, userID string, p budget.Policy, also []budget.KeyPolicy, now time.Time, refuse func(i int, u *user) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	c.n, c.p, c.also = 1+len(also), p, also
	if c.n > inline {
		c.recMore = make([]*user, c.n)
	}
	recs := c.recs()
	for i := range c.n {
		key, isCap := userID, false
		if i > 0 {
			key, isCap = also[i-1].Key, also[i-1].Cap
		}
		v, ok := s.users.Load(key)
		if !ok && isCap {
			v, _ = s.users.LoadOrStore(key, &user{key: key, cap: true, ids: map[string]entry{}})
		} else if !ok {
			scope, _ := budget.ScopeOfKey(key)
			return fmt.Errorf("%w: no settings for %s %q", budget.ErrNotFound, scope.Kind, scope.ID)
		}
		recs[i] = v.(*user)
	}
	if c.n == 1 {
		recs[0].mu.Lock()
	} else {
		var buf [inline]*user
		order := append(buf[:0], recs...)
		slices.SortFunc(order, func(a, b *user) int { return strings.Compare(a.key, b.key) })
		for i := 1; i < len(order); i++ {
			if order[i] == order[i-1] {
				return fmt.Errorf("budget/memory: budget %q twice in one request", order[i].key)
			}
		}
		for _, u := range order {
			u.mu.Lock()
		}
	}
	if err := s.prepare(c, now, refuse); err != nil {
		c.unlock()
		return err
	}
	return nil
}

func (c *call) unlock() {
	for _, u := range c.recs() {
		u.mu.Unlock()
	}
}

// prepare runs the version checks and refuse, which change nothing, then
// sums the spend of every window that moves (which can fail), and only then
// moves the windows and expires holds.
func (s *Store) prepare(c *call, now time.Time, refuse func(int, *user) error) error {
	recs := c.recs()
	for i, u := range recs {
		if u.cap {
			continue
		}
		if err := u.c.Check(u.key, u.s.Version, *c.policy(i)); err != nil {
			return err
		}
	}
	if refuse != nil {
		for i, u := range recs {
			if err := refuse(i, u); err != nil {
				return err
			}
		}
	}
	var buf [inline]budget.Nanos
	var moveBuf [inline]bool
	sums, moves := buf[:0], moveBuf[:0]
	for i, u := range recs {
		var sum budget.Nanos
		moves = append(moves, c.advances(i))
		if p := c.policy(i); moves[i] {
			var err error
			if sum, err = u.sumIn(p.Window); err != nil {
				return err
			}
		}
		sums = append(sums, sum)
	}
	for i, u := range recs {
		if p := c.policy(i); moves[i] {
			if e, ok := u.c.MoveTo(u.key, *p, sums[i], now); ok && !u.cap {
				s.appendAudit(u, e)
			}
		}
		u.expire(now)
	}
	return nil
}

// advances reports whether budget i of c moves to its policy's window;
// decided for every budget before any moves, as a cap follows its holder's
// lateness (Counter.AdvancesCap).
func (c *call) advances(i int) bool {
	recs, p := c.recs(), c.policy(i)
	u := recs[i]
	if !u.cap || u.c.Window.Equal(p.Window) {
		return u.c.Advances(*p)
	}
	holder := budget.HolderKey(u.key)
	for _, h := range recs {
		if h.key == holder {
			return u.c.AdvancesCap(*p, &h.c)
		}
	}
	return u.c.Advances(*p)
}

// finish ends a successful call: every budget marks its alerts; the user's
// totals come with Also's.
func (c *call) finish() budget.Totals {
	recs := c.recs()
	t := recs[0].c.Finish(c.p)
	if c.n > 1 {
		t.Also = budget.AlsoInto(c.into, c.n-1)
		for i, u := range recs[1:] {
			t.Also[i] = u.c.Finish(c.also[i].Policy)
		}
	}
	return t
}

// moveTo moves the user's counters to p's window, in either direction,
// recounting the spend in it and auditing a rollover when the counter says
// the stored window closed.
func (s *Store) moveTo(u *user, p budget.Policy, now time.Time) error {
	if u.c.Window.Equal(p.Window) {
		return nil
	}
	spent, err := u.sumIn(p.Window)
	if err != nil {
		return err
	}
	if e, ok := u.c.MoveTo(u.key, p, spent, now); ok {
		s.appendAudit(u, e)
	}
	return nil
}

// sumIn sums the cost of usage in w, reading only the rows inside it.
func (u *user) sumIn(w budget.Window) (budget.Nanos, error) {
	var sum budget.Nanos
	for i, end := u.search(w.Start), u.search(w.End); i < end; i++ {
		var ok bool
		if sum, ok = sum.Add(u.usage.at(i).row.Cost); !ok {
			return 0, fmt.Errorf("budget/memory: spend of %q in %s exceeds %s", u.key, w, budget.MaxNanos)
		}
	}
	return sum, nil
}

// search returns the index of the first usage at or after t.
func (u *user) search(t time.Time) int {
	return u.usage.search(func(e *usage) bool { return !e.row.At.Before(t) })
}

// expire stops counting holds whose expiry is not after now. It scans live
// only once now reaches nextExp, and then sets nextExp to the earliest
// expiry left. Between scans nextExp may be earlier than every live
// expiry, as close and Extend leave it alone (a hold closed or extended
// may have been the earliest): a bound that only costs one scan more.
func (u *user) expire(now time.Time) {
	if u.nextExp.IsZero() || now.Before(u.nextExp) {
		return
	}
	var next time.Time
	live := u.live[:0]
	for _, h := range u.live {
		if !now.Before(h.expires) {
			u.c.Unhold(h.amount)
			continue
		}
		live = append(live, h)
		if next.IsZero() || h.expires.Before(next) {
			next = h.expires
		}
	}
	clear(u.live[len(live):])
	u.live, u.nextExp = live, next
}

// appendAudit appends e to the user's and the global log, giving it an ID.
// The caller holds u's lock.
func (s *Store) appendAudit(u *user, e budget.AuditEntry) budget.AuditEntry {
	s.mu.Lock()
	e = s.appendGlobal(e)
	s.mu.Unlock()
	u.audit = append(u.audit, e)
	return e
}

// appendGlobal appends e, an entry of no user, to the global log, giving it
// an ID. The caller holds s.mu, so that the change e records and its entry
// are one step.
func (s *Store) appendGlobal(e budget.AuditEntry) budget.AuditEntry {
	s.auditSeq++
	e.ID = s.auditSeq
	e = e.Clone()
	s.audit = append(s.audit, e)
	return e
}

// Settings implements budget.Store.
func (s *Store) Settings(ctx context.Context, userID string) (budget.Settings, error) {
	u, err := s.lock(ctx, userID)
	if err != nil {
		return budget.Settings{}, err
	}
	defer u.mu.Unlock()
	return u.s.Clone(), nil
}

// CreateSettings implements budget.Store.
func (s *Store) CreateSettings(ctx context.Context, req budget.CreateRequest) (budget.Settings, bool, error) {
	if err := s.check(ctx); err != nil {
		return budget.Settings{}, false, err
	}
	nu := &user{
		key: req.Settings.UserID,
		s:   req.Settings.Clone(), c: budget.Counter{Window: req.Policy.Window},
		ids: map[string]entry{},
	}
	v, loaded := s.users.LoadOrStore(req.Settings.UserID, nu)
	if !loaded {
		scope, _ := budget.ScopeOfKey(req.Settings.UserID)
		s.mu.Lock()
		if s.lists == nil {
			s.lists = map[budget.ScopeKind]*keyList{}
		}
		l := s.lists[scope.Kind]
		if l == nil {
			l = &keyList{}
			s.lists[scope.Kind] = l
		}
		l.keys, l.unsorted = append(l.keys, req.Settings.UserID), true
		s.mu.Unlock()
		return req.Settings.Clone(), true, nil
	}
	u := v.(*user)
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.s.Clone(), false, nil
}

// UpdateSettings implements budget.Store.
func (s *Store) UpdateSettings(ctx context.Context, req budget.UpdateRequest) (budget.Totals, error) {
	var c call
	if err := s.begin(ctx, &c, req.Settings.UserID, req.Current, nil, req.Now, refuseLate(req.Current)); err != nil {
		return budget.Totals{}, err
	}
	defer c.unlock()
	u := c.user()
	if err := s.moveTo(u, req.Next, req.Now); err != nil {
		return budget.Totals{}, err
	}
	u.s = req.Settings.Clone()
	s.appendAudit(u, req.Audit)
	return u.c.Finish(req.Next), nil
}

// Reserve implements budget.Store. With budgets in Also, it decides on
// copies of every counter first, so that a hold is placed on all of them
// or on none.
//
// A hold's state (pending, settled, released) and a usage ID's are kept
// under the user's key alone: every call on a hold names the user, whose
// check refuses a closed hold or a duplicate before anything changes. Under
// the other keys a hold is only its entry in the live list, and a usage
// row is kept as the user's row; History gives it the key's form.
func (s *Store) Reserve(ctx context.Context, req budget.ReserveRequest) (budget.Totals, bool, error) {
	c := call{into: req.AlsoTotals}
	err := s.begin(ctx, &c, req.UserID, req.Policy, req.Also, req.Now, func(i int, u *user) error {
		if i == 0 && u.ids[req.HoldID].hold != noHold {
			return fmt.Errorf("%w: hold %q exists", budget.ErrDuplicate, req.HoldID)
		}
		return nil
	})
	if err != nil {
		return budget.Totals{}, false, err
	}
	defer c.unlock()
	for i, u := range c.recs() {
		trial := u.c
		allowed, err := trial.Hold(u.key, *c.policy(i), req.Amount)
		if err != nil {
			return budget.Totals{}, false, err
		}
		if !allowed {
			return c.finish(), false, nil
		}
	}
	for i, u := range c.recs() {
		u.c.Hold(u.key, *c.policy(i), req.Amount) // allowed, as tried above
		if i == 0 {
			e := u.ids[req.HoldID]
			e.hold = pending
			u.ids[req.HoldID] = e
		}
		u.live = append(u.live, liveHold{id: req.HoldID, amount: req.Amount, expires: req.ExpiresAt})
		if u.nextExp.IsZero() || req.ExpiresAt.Before(u.nextExp) {
			u.nextExp = req.ExpiresAt
		}
	}
	return c.finish(), true, nil
}

// charges reports whether every budget of c can count cost at time at
// without passing MaxNanos, so that a call charging several changes all or
// none.
func (c *call) charges(cost budget.Nanos, at time.Time) error {
	if c.n == 1 {
		return nil // add checks the lone budget itself, before changing it
	}
	for _, u := range c.recs() {
		trial := u.c
		if err := trial.Charge(u.key, cost, at); err != nil {
			return err
		}
	}
	return nil
}

// Settle implements budget.Store.
func (s *Store) Settle(ctx context.Context, req budget.SettleRequest) (budget.Totals, error) {
	// h is the hold's map entry, e the usage ID's when the usage does not
	// take the hold's ID (by default it does, and h records both).
	same := req.Usage.ID == req.HoldID
	var h, e entry
	c := call{into: req.AlsoTotals}
	err := s.begin(ctx, &c, req.Usage.UserID, req.Policy, req.Also, req.Now, func(i int, u *user) (err error) {
		if i > 0 {
			return nil
		}
		if h, err = u.openHold(req.HoldID); err != nil {
			return err
		}
		if !same {
			e = u.ids[req.Usage.ID]
		}
		if (same && h.usage) || e.usage {
			return fmt.Errorf("%w: usage %q of user %q", budget.ErrDuplicate, req.Usage.ID, u.key)
		}
		return nil
	})
	if err != nil {
		return budget.Totals{}, err
	}
	defer c.unlock()
	if err := c.charges(req.Usage.Cost, req.Usage.At); err != nil {
		return budget.Totals{}, err
	}
	for i, u := range c.recs() {
		if i > 0 {
			u.push(req.Usage) // charges checked above
			u.unlive(req.HoldID)
			continue
		}
		if same {
			if err := u.add(req.Usage, &h); err != nil {
				return budget.Totals{}, err
			}
		} else {
			if err := u.add(req.Usage, &e); err != nil {
				return budget.Totals{}, err
			}
			u.ids[req.Usage.ID] = e
		}
		u.close(req.HoldID, h, settled)
	}
	return c.finish(), nil
}

func (u *user) openHold(id string) (entry, error) {
	h := u.ids[id]
	switch h.hold {
	case noHold:
		return entry{}, fmt.Errorf("%w: no hold %q for %q", budget.ErrNotFound, id, u.key)
	case pending:
		return h, nil
	}
	return entry{}, fmt.Errorf("%w: hold %q", budget.ErrReservationClosed, id)
}

// close gives the user's hold id its final state and stops counting it.
func (u *user) close(id string, h entry, state holdState) {
	u.unlive(id)
	h.hold = state
	u.ids[id] = h
}

// unlive stops counting hold id, if it still counts.
func (u *user) unlive(id string) {
	if i := u.liveIndex(id); i >= 0 {
		u.c.Unhold(u.live[i].amount)
		last := len(u.live) - 1
		u.live[i] = u.live[last]
		u.live[last] = liveHold{}
		u.live = u.live[:last]
	}
}

// add records a usage row, refusing a duplicate ID, and counts its cost
// when it falls in the current window. e is the map entry of the row's ID,
// which add marks and the caller stores. On error nothing changes.
func (u *user) add(r budget.UsageRow, e *entry) error {
	if e.usage {
		return fmt.Errorf("%w: usage %q of user %q", budget.ErrDuplicate, r.ID, u.key)
	}
	if err := u.c.Charge(u.key, r.Cost, r.At); err != nil {
		return err
	}
	e.usage = true
	u.insert(r)
	return nil
}

// push records a usage row under a budget shared with the row's user,
// whose charge the caller has checked.
func (u *user) push(r budget.UsageRow) {
	_ = u.c.Charge(u.key, r.Cost, r.At)
	u.insert(r)
}

// insert adds r to the usage log in time order.
func (u *user) insert(r budget.UsageRow) {
	u.usageSeq++
	row := usage{row: r, seq: u.usageSeq}
	if n := u.usage.n; n == 0 || !r.At.Before(u.usage.at(n-1).row.At) {
		u.usage.push(row)
	} else {
		u.usage.insert(u.search(r.At.Add(1)), row)
	}
}

// Release implements budget.Store.
func (s *Store) Release(ctx context.Context, req budget.ReleaseRequest) (budget.Totals, error) {
	var h entry
	c := call{into: req.AlsoTotals}
	err := s.begin(ctx, &c, req.UserID, req.Policy, req.Also, req.Now, func(i int, u *user) (err error) {
		if i == 0 {
			h, err = u.openHold(req.HoldID)
		}
		return err
	})
	if err != nil {
		return budget.Totals{}, err
	}
	defer c.unlock()
	for i, u := range c.recs() {
		if i == 0 {
			u.close(req.HoldID, h, released)
		} else {
			u.unlive(req.HoldID)
		}
	}
	return c.finish(), nil
}

// Extend implements budget.Store. Its refuse step finds the hold in each
// budget's live list, with an expiry after req.Now, or says why it does not
// count: a hold missing from the list was closed or already expired by a
// call that saw a later time, and is never revived.
func (s *Store) Extend(ctx context.Context, req budget.ExtendRequest) (budget.Totals, error) {
	c := call{into: req.AlsoTotals}
	err := s.begin(ctx, &c, req.UserID, req.Policy, req.Also, req.Now, func(i int, u *user) error {
		if i == 0 {
			if _, err := u.openHold(req.HoldID); err != nil {
				return err
			}
		}
		if i := u.liveIndex(req.HoldID); i < 0 || !req.Now.Before(u.live[i].expires) {
			return fmt.Errorf("%w: hold %q of %q", budget.ErrHoldExpired, req.HoldID, u.key)
		}
		return nil
	})
	if err != nil {
		return budget.Totals{}, err
	}
	defer c.unlock()
	for _, u := range c.recs() {
		// The expiry step may have compacted live, but kept this hold:
		// its expiry is after req.Now.
		if i := u.liveIndex(req.HoldID); i >= 0 && req.ExpiresAt.After(u.live[i].expires) {
			u.live[i].expires = req.ExpiresAt // later: nextExp stays a lower bound
		}
	}
	return c.finish(), nil
}

// liveIndex returns the index of hold id in live, or -1.
func (u *user) liveIndex(id string) int {
	return slices.IndexFunc(u.live, func(l liveHold) bool { return l.id == id })
}

// Record implements budget.Store.
func (s *Store) Record(ctx context.Context, req budget.RecordRequest) (budget.Totals, error) {
	var e entry
	c := call{into: req.AlsoTotals}
	err := s.begin(ctx, &c, req.Usage.UserID, req.Policy, req.Also, req.Now, func(i int, u *user) error {
		if i > 0 {
			return nil
		}
		if e = u.ids[req.Usage.ID]; e.usage {
			return fmt.Errorf("%w: usage %q of user %q", budget.ErrDuplicate, req.Usage.ID, u.key)
		}
		return nil
	})
	if err != nil {
		return budget.Totals{}, err
	}
	defer c.unlock()
	if err := c.charges(req.Usage.Cost, req.Usage.At); err != nil {
		return budget.Totals{}, err
	}
	for i, u := range c.recs() {
		if i > 0 {
			u.push(req.Usage)
			continue
		}
		if err := u.add(req.Usage, &e); err != nil {
			return budget.Totals{}, err
		}
		u.ids[req.Usage.ID] = e
	}
	return c.finish(), nil
}

// Totals implements budget.Store.
func (s *Store) Totals(ctx context.Context, req budget.TotalsRequest) (budget.Totals, error) {
	c := call{into: req.AlsoTotals}
	if err := s.begin(ctx, &c, req.UserID, req.Policy, req.Also, req.Now, nil); err != nil {
		return budget.Totals{}, err
	}
	defer c.unlock()
	return c.finish(), nil
}

// Reset implements budget.Store.
func (s *Store) Reset(ctx context.Context, req budget.ResetRequest) (budget.AuditEntry, budget.Totals, error) {
	var c call
	if err := s.begin(ctx, &c, req.Settings.UserID, req.Current, nil, req.Now, refuseLate(req.Current)); err != nil {
		return budget.AuditEntry{}, budget.Totals{}, err
	}
	defer c.unlock()
	u := c.user()
	spent, err := u.sumIn(req.Next.Window)
	if err != nil {
		return budget.AuditEntry{}, budget.Totals{}, err
	}
	e := req.Audit
	e.PreviousSpent = u.c.Spent.Decimal()
	e = s.appendAudit(u, e)
	u.s = req.Settings.Clone()
	u.c.MoveTo(u.key, req.Next, spent, req.Now) // within the current window: no rollover
	return e.Clone(), u.c.Finish(req.Next), nil
}

// refuseLate refuses a settings change or reset computed at an earlier
// instant than the stored window, so that the Manager retries it with a
// fresh clock rather than move the window back to a period already over.
func refuseLate(p budget.Policy) func(int, *user) error {
	return func(_ int, u *user) error {
		return u.c.CheckLate(p)
	}
}

// Defaults implements budget.Store.
func (s *Store) Defaults(ctx context.Context) (budget.Defaults, error) {
	if err := s.check(ctx); err != nil {
		return budget.Defaults{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.defaults == nil {
		return budget.Defaults{}, budget.ErrNotFound
	}
	return *s.defaults, nil
}

// UpdateDefaults implements budget.Store.
func (s *Store) UpdateDefaults(ctx context.Context, req budget.DefaultsRequest) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	var version int64
	if s.defaults != nil {
		version = s.defaults.Version
	}
	if version != req.ExpectVersion {
		s.mu.Unlock()
		return fmt.Errorf("%w: defaults are at version %d, not %d", budget.ErrConflict, version, req.ExpectVersion)
	}
	d := req.Defaults
	s.defaults = &d
	s.appendGlobal(req.Audit)
	s.mu.Unlock()
	return nil
}

// Templates implements budget.Store.
func (s *Store) Templates(ctx context.Context) ([]budget.Template, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	var out []budget.Template
	for _, t := range s.templates {
		out = append(out, t)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b budget.Template) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// SaveTemplate implements budget.Store.
func (s *Store) SaveTemplate(ctx context.Context, req budget.TemplateRequest) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name := req.Template.Name
	if v := s.templates[name].Version; v != req.ExpectVersion {
		return fmt.Errorf("%w: template %q is at version %d, not %d", budget.ErrConflict, name, v, req.ExpectVersion)
	}
	if s.templates == nil {
		s.templates = map[string]budget.Template{}
	}
	s.templates[name] = req.Template
	s.appendGlobal(req.Audit)
	return nil
}

// DeleteTemplate implements budget.Store.
func (s *Store) DeleteTemplate(ctx context.Context, req budget.TemplateRequest) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name := req.Template.Name
	t, ok := s.templates[name]
	switch {
	case !ok:
		return fmt.Errorf("%w: no template %q", budget.ErrNotFound, name)
	case t.Version != req.ExpectVersion:
		return fmt.Errorf("%w: template %q is at version %d, not %d", budget.ErrConflict, name, t.Version, req.ExpectVersion)
	}
	delete(s.templates, name)
	s.appendGlobal(req.Audit)
	return nil
}

// History implements budget.Store, with budget.UsageCursor cursors.
func (s *Store) History(ctx context.Context, q budget.HistoryQuery) (budget.HistoryPage, error) {
	if err := s.check(ctx); err != nil {
		return budget.HistoryPage{}, err
	}
	var curAt, curSeq int64
	if q.Cursor != "" {
		c, err := budget.ParseUsageCursor(q.Cursor)
		if err != nil {
			return budget.HistoryPage{}, err
		}
		curAt, curSeq = c.At, c.Seq
	}
	v, ok := s.users.Load(q.UserID)
	if !ok {
		return budget.HistoryPage{}, nil
	}
	u := v.(*user)
	u.mu.Lock()
	defer u.mu.Unlock()
	lo, hi := 0, u.usage.n
	if !q.From.IsZero() {
		lo = u.search(q.From)
	}
	if !q.To.IsZero() {
		hi = u.search(q.To)
	}
	if q.Cursor != "" {
		hi = min(hi, searchCursor(&u.usage, curAt, curSeq))
	}
	var p budget.HistoryPage
	for i := hi - 1; i >= lo; i-- {
		if q.Limit > 0 && len(p.Rows) == q.Limit {
			last := u.usage.at(i + 1)
			p.Next = budget.UsageCursor{At: last.row.At.UnixNano(), Seq: last.seq}.String()
			break
		}
		r := u.usage.at(i).row
		if r.UserID != u.key { // a row shared with its user: the key's form
			r.ID, r.UserID = budget.UsageKeyID(r.UserID, r.ID), u.key
		}
		p.Rows = append(p.Rows, r)
	}
	return p, nil
}

// searchCursor returns the index of the first usage at or after (at, seq).
func searchCursor(l *usageLog, at, seq int64) int {
	return l.search(func(e *usage) bool {
		return cmp.Or(cmp.Compare(e.row.At.UnixNano(), at), cmp.Compare(e.seq, seq)) >= 0
	})
}

// Breakdown implements budget.Store.
func (s *Store) Breakdown(ctx context.Context, q budget.BreakdownQuery) ([]budget.UsageGroup, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	v, ok := s.users.Load(q.UserID)
	if !ok {
		return nil, nil
	}
	u := v.(*user)
	u.mu.Lock()
	defer u.mu.Unlock()
	type key struct{ provider, model string }
	groups := map[key]*budget.UsageGroup{}
	for i, end := u.search(q.From), u.search(q.To); i < end; i++ {
		e := u.usage.at(i)
		k := key{e.row.Provider, e.row.Model}
		g := groups[k]
		if g == nil {
			g = &budget.UsageGroup{Provider: k.provider, Model: k.model}
			groups[k] = g
		}
		c, ok := g.Cost.Add(e.row.Cost)
		if !ok {
			return nil, fmt.Errorf("budget/memory: breakdown of %q exceeds %s", q.UserID, budget.MaxNanos)
		}
		g.Cost, g.Requests = c, g.Requests+1
		g.InputTokens += e.row.InputTokens
		g.OutputTokens += e.row.OutputTokens
	}
	out := make([]budget.UsageGroup, 0, len(groups))
	for _, g := range groups {
		out = append(out, *g)
	}
	return out, nil
}

// Accounts implements budget.Store. It keeps each kind's keys sorted,
// sorting again only after new holders arrive.
func (s *Store) Accounts(ctx context.Context, q budget.AccountsQuery) ([]budget.Account, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	kind := cmp.Or(q.Kind, budget.UserScope)
	var ids []string
	s.mu.Lock()
	if l := s.lists[kind]; l != nil {
		if l.unsorted {
			slices.Sort(l.keys)
			l.unsorted = false
		}
		i, _ := slices.BinarySearch(l.keys, q.After)
		for ; i < len(l.keys) && (q.Limit <= 0 || len(ids) < q.Limit); i++ {
			if id := l.keys[i]; id > q.After {
				ids = append(ids, id)
			}
		}
	}
	s.mu.Unlock()
	out := make([]budget.Account, len(ids))
	for i, id := range ids {
		v, _ := s.users.Load(id)
		u := v.(*user)
		u.mu.Lock()
		u.expire(q.Now)
		out[i] = budget.Account{Settings: u.s.Clone(), Totals: u.c.Totals()}
		u.mu.Unlock()
	}
	return out, nil
}

// Audit implements budget.Store.
func (s *Store) Audit(ctx context.Context, q budget.AuditQuery) ([]budget.AuditEntry, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var log []budget.AuditEntry
	if q.UserID == "" {
		s.mu.Lock()
		defer s.mu.Unlock()
		log = s.audit
	} else {
		v, ok := s.users.Load(q.UserID)
		if !ok {
			return nil, nil
		}
		u := v.(*user)
		u.mu.Lock()
		defer u.mu.Unlock()
		log = u.audit
	}
	var out []budget.AuditEntry
	before := q.BeforeID()
	for i := len(log) - 1; i >= 0 && (q.Limit <= 0 || len(out) < q.Limit); i-- {
		if log[i].ID < before && (q.Type == "" || log[i].Type == q.Type) {
			out = append(out, log[i].Clone())
		}
	}
	return out, nil
}

// Close implements budget.Store. Calls after Close return budget.ErrClosed.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}
