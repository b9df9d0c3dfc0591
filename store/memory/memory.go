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
	userIDs   []string // sorted unless unsorted is set
	unsorted  bool
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
	s        budget.Settings
	window   budget.Window
	spent    budget.Nanos
	held     budget.Nanos
	marked   budget.LevelSet
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

// begin locks the user and applies the steps every policy-carrying call
// starts with: the version check, the window advance and hold expiry.
func (s *Store) begin(ctx context.Context, id string, p budget.Policy, now time.Time) (*user, error) {
	u, err := s.lock(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.prepare(u, p, now); err != nil {
		u.mu.Unlock()
		return nil, err
	}
	return u, nil
}

// beginUnless is begin for a call that refuse may turn down (a closed
// hold, a duplicate usage ID): refuse runs after the version check and
// before the window advance and expiry, so that a refused call changes
// nothing, not even the window or the audit log.
func (s *Store) beginUnless(ctx context.Context, id string, p budget.Policy, now time.Time, refuse func(*user) error) (*user, error) {
	u, err := s.lock(ctx, id)
	if err != nil {
		return nil, err
	}
	if p.Version == u.s.Version {
		err = refuse(u)
	}
	if err == nil {
		err = s.prepare(u, p, now)
	}
	if err != nil {
		u.mu.Unlock()
		return nil, err
	}
	return u, nil
}

func (s *Store) prepare(u *user, p budget.Policy, now time.Time) error {
	if p.Version != u.s.Version {
		return fmt.Errorf("%w: settings of %q are at version %d, not %d", budget.ErrConflict, u.s.UserID, u.s.Version, p.Version)
	}
	if err := s.advance(u, p, now); err != nil {
		return err
	}
	u.expire(now)
	return nil
}

// advance moves the user's counters forward to p's window. A late request,
// whose window starts before the stored one, leaves the window alone.
func (s *Store) advance(u *user, p budget.Policy, now time.Time) error {
	if u.window.Equal(p.Window) || late(u.window, p) {
		return nil
	}
	return s.moveTo(u, p, now)
}

// late reports whether p was computed at an earlier instant than the window
// stored: its window starts before it.
func late(stored budget.Window, p budget.Policy) bool {
	return !stored.IsZero() && p.Window.Start.Before(stored.Start)
}

// moveTo moves the user's counters to p's window, in either direction,
// auditing a rollover when the new window starts at or after the old one's
// end.
func (s *Store) moveTo(u *user, p budget.Policy, now time.Time) error {
	if u.window.Equal(p.Window) {
		return nil
	}
	spent, err := u.sumIn(p.Window)
	if err != nil {
		return err
	}
	if !u.window.IsZero() && !p.Window.Start.Before(u.window.End) {
		s.appendAudit(u, budget.RolloverEntry(u.s.UserID, u.window, u.spent, p, now))
	}
	u.spent, u.marked, u.window = spent, 0, p.Window
	return nil
}

// finish marks and returns the alerts p's levels call for, and the totals.
func (u *user) finish(p budget.Policy) budget.Totals {
	fire := p.Alerts(u.marked, u.spent)
	u.marked |= fire
	return budget.Totals{Window: u.window, Spent: u.spent, Held: u.held, Alerts: fire}
}

// sumIn sums the cost of usage in w, reading only the rows inside it.
func (u *user) sumIn(w budget.Window) (budget.Nanos, error) {
	var sum budget.Nanos
	for i, end := u.search(w.Start), u.search(w.End); i < end; i++ {
		var ok bool
		if sum, ok = sum.Add(u.usage.at(i).row.Cost); !ok {
			return 0, fmt.Errorf("budget/memory: spend of %q in %s exceeds %s", u.s.UserID, w, budget.MaxNanos)
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
			u.held -= h.amount
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
	return u.s, nil
}

// CreateSettings implements budget.Store.
func (s *Store) CreateSettings(ctx context.Context, req budget.CreateRequest) (budget.Settings, bool, error) {
	if err := s.check(ctx); err != nil {
		return budget.Settings{}, false, err
	}
	nu := &user{
		s: req.Settings, window: req.Policy.Window,
		ids: map[string]entry{},
	}
	v, loaded := s.users.LoadOrStore(req.Settings.UserID, nu)
	if !loaded {
		s.mu.Lock()
		s.userIDs, s.unsorted = append(s.userIDs, req.Settings.UserID), true
		s.mu.Unlock()
		return req.Settings, true, nil
	}
	u := v.(*user)
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.s, false, nil
}

// UpdateSettings implements budget.Store.
func (s *Store) UpdateSettings(ctx context.Context, req budget.UpdateRequest) (budget.Totals, error) {
	u, err := s.beginUnless(ctx, req.Settings.UserID, req.Current, req.Now, refuseLate(req.Current))
	if err != nil {
		return budget.Totals{}, err
	}
	defer u.mu.Unlock()
	if err := s.moveTo(u, req.Next, req.Now); err != nil {
		return budget.Totals{}, err
	}
	u.s = req.Settings
	s.appendAudit(u, req.Audit)
	return u.finish(req.Next), nil
}

// Reserve implements budget.Store.
func (s *Store) Reserve(ctx context.Context, req budget.ReserveRequest) (budget.Totals, bool, error) {
	var e entry
	u, err := s.beginUnless(ctx, req.UserID, req.Policy, req.Now, func(u *user) error {
		if e = u.ids[req.HoldID]; e.hold != noHold {
			return fmt.Errorf("%w: hold %q exists", budget.ErrDuplicate, req.HoldID)
		}
		return nil
	})
	if err != nil {
		return budget.Totals{}, false, err
	}
	defer u.mu.Unlock()
	if !req.Policy.Allows(u.spent, u.held, req.Amount) {
		return u.finish(req.Policy), false, nil
	}
	held, ok := u.held.Add(req.Amount)
	if !ok {
		return budget.Totals{}, false, fmt.Errorf("budget/memory: holds of %q exceed %s", req.UserID, budget.MaxNanos)
	}
	e.hold = pending
	u.ids[req.HoldID] = e
	u.live = append(u.live, liveHold{id: req.HoldID, amount: req.Amount, expires: req.ExpiresAt})
	u.held = held
	if u.nextExp.IsZero() || req.ExpiresAt.Before(u.nextExp) {
		u.nextExp = req.ExpiresAt
	}
	return u.finish(req.Policy), true, nil
}

// Settle implements budget.Store.
func (s *Store) Settle(ctx context.Context, req budget.SettleRequest) (budget.Totals, error) {
	// h is the hold's map entry, e the usage ID's when the usage does not
	// take the hold's ID (by default it does, and h records both).
	same := req.Usage.ID == req.HoldID
	var h, e entry
	u, err := s.beginUnless(ctx, req.Usage.UserID, req.Policy, req.Now, func(u *user) (err error) {
		if h, err = u.openHold(req.HoldID); err != nil {
			return err
		}
		if !same {
			e = u.ids[req.Usage.ID]
		}
		if (same && h.usage) || e.usage {
			return fmt.Errorf("%w: usage %q of user %q", budget.ErrDuplicate, req.Usage.ID, u.s.UserID)
		}
		return nil
	})
	if err != nil {
		return budget.Totals{}, err
	}
	defer u.mu.Unlock()
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
	return u.finish(req.Policy), nil
}

func (u *user) openHold(id string) (entry, error) {
	h := u.ids[id]
	switch h.hold {
	case noHold:
		return entry{}, fmt.Errorf("%w: no hold %q for user %q", budget.ErrNotFound, id, u.s.UserID)
	case pending:
		return h, nil
	}
	return entry{}, fmt.Errorf("%w: hold %q", budget.ErrReservationClosed, id)
}

func (u *user) close(id string, h entry, state holdState) {
	if i := u.liveIndex(id); i >= 0 {
		u.held -= u.live[i].amount
		last := len(u.live) - 1
		u.live[i] = u.live[last]
		u.live[last] = liveHold{}
		u.live = u.live[:last]
	}
	h.hold = state
	u.ids[id] = h
}

// add records a usage row, refusing a duplicate ID, and counts its cost
// when it falls in the current window. e is the map entry of the row's ID,
// which add marks and the caller stores. On error nothing changes.
func (u *user) add(r budget.UsageRow, e *entry) error {
	if e.usage {
		return fmt.Errorf("%w: usage %q of user %q", budget.ErrDuplicate, r.ID, u.s.UserID)
	}
	spent := u.spent
	if u.window.Contains(r.At) {
		var ok bool
		if spent, ok = spent.Add(r.Cost); !ok {
			return fmt.Errorf("budget/memory: spend of %q exceeds %s", u.s.UserID, budget.MaxNanos)
		}
	}
	e.usage = true
	u.usageSeq++
	row := usage{row: r, seq: u.usageSeq}
	if n := u.usage.n; n == 0 || !r.At.Before(u.usage.at(n-1).row.At) {
		u.usage.push(row)
	} else {
		u.usage.insert(u.search(r.At.Add(1)), row)
	}
	u.spent = spent
	return nil
}

// Release implements budget.Store.
func (s *Store) Release(ctx context.Context, req budget.ReleaseRequest) (budget.Totals, error) {
	var h entry
	u, err := s.beginUnless(ctx, req.UserID, req.Policy, req.Now, func(u *user) (err error) {
		h, err = u.openHold(req.HoldID)
		return err
	})
	if err != nil {
		return budget.Totals{}, err
	}
	defer u.mu.Unlock()
	u.close(req.HoldID, h, released)
	return u.finish(req.Policy), nil
}

// Extend implements budget.Store. Its refuse step finds the hold in the
// live list, with an expiry after req.Now, or says why it does not count:
// a hold missing from the list was closed or already expired by a call
// that saw a later time, and is never revived.
func (s *Store) Extend(ctx context.Context, req budget.ExtendRequest) (budget.Totals, error) {
	u, err := s.beginUnless(ctx, req.UserID, req.Policy, req.Now, func(u *user) error {
		if _, err := u.openHold(req.HoldID); err != nil {
			return err
		}
		if i := u.liveIndex(req.HoldID); i < 0 || !req.Now.Before(u.live[i].expires) {
			return fmt.Errorf("%w: hold %q of user %q", budget.ErrHoldExpired, req.HoldID, u.s.UserID)
		}
		return nil
	})
	if err != nil {
		return budget.Totals{}, err
	}
	defer u.mu.Unlock()
	// The expiry step may have compacted live, but kept this hold: its
	// expiry is after req.Now.
	if i := u.liveIndex(req.HoldID); i >= 0 && req.ExpiresAt.After(u.live[i].expires) {
		u.live[i].expires = req.ExpiresAt // later: nextExp stays a lower bound
	}
	return u.finish(req.Policy), nil
}

// liveIndex returns the index of hold id in live, or -1.
func (u *user) liveIndex(id string) int {
	return slices.IndexFunc(u.live, func(l liveHold) bool { return l.id == id })
}

// Record implements budget.Store.
func (s *Store) Record(ctx context.Context, req budget.RecordRequest) (budget.Totals, error) {
	var e entry
	u, err := s.beginUnless(ctx, req.Usage.UserID, req.Policy, req.Now, func(u *user) error {
		if e = u.ids[req.Usage.ID]; e.usage {
			return fmt.Errorf("%w: usage %q of user %q", budget.ErrDuplicate, req.Usage.ID, u.s.UserID)
		}
		return nil
	})
	if err != nil {
		return budget.Totals{}, err
	}
	defer u.mu.Unlock()
	if err := u.add(req.Usage, &e); err != nil {
		return budget.Totals{}, err
	}
	u.ids[req.Usage.ID] = e
	return u.finish(req.Policy), nil
}

// Totals implements budget.Store.
func (s *Store) Totals(ctx context.Context, req budget.TotalsRequest) (budget.Totals, error) {
	u, err := s.begin(ctx, req.UserID, req.Policy, req.Now)
	if err != nil {
		return budget.Totals{}, err
	}
	defer u.mu.Unlock()
	return u.finish(req.Policy), nil
}

// Reset implements budget.Store.
func (s *Store) Reset(ctx context.Context, req budget.ResetRequest) (budget.AuditEntry, budget.Totals, error) {
	u, err := s.beginUnless(ctx, req.Settings.UserID, req.Current, req.Now, refuseLate(req.Current))
	if err != nil {
		return budget.AuditEntry{}, budget.Totals{}, err
	}
	defer u.mu.Unlock()
	spent, err := u.sumIn(req.Next.Window)
	if err != nil {
		return budget.AuditEntry{}, budget.Totals{}, err
	}
	e := req.Audit
	e.PreviousSpent = u.spent.Decimal()
	e = s.appendAudit(u, e)
	u.s = req.Settings
	if !u.window.Equal(req.Next.Window) {
		u.spent, u.marked, u.window = spent, 0, req.Next.Window
	}
	return e.Clone(), u.finish(req.Next), nil
}

// refuseLate refuses a settings change or reset computed at an earlier
// instant than the stored window, so that the Manager retries it with a
// fresh clock rather than move the window back to a period already over.
func refuseLate(p budget.Policy) func(*user) error {
	return func(u *user) error {
		if late(u.window, p) {
			return &budget.LateError{Start: u.window.Start}
		}
		return nil
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
		p.Rows = append(p.Rows, u.usage.at(i).row)
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

// Accounts implements budget.Store. It keeps the user IDs sorted, sorting
// again only after new users arrive.
func (s *Store) Accounts(ctx context.Context, q budget.AccountsQuery) ([]budget.Account, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var ids []string
	s.mu.Lock()
	if s.unsorted {
		slices.Sort(s.userIDs)
		s.unsorted = false
	}
	i, _ := slices.BinarySearch(s.userIDs, q.After)
	for ; i < len(s.userIDs) && (q.Limit <= 0 || len(ids) < q.Limit); i++ {
		if id := s.userIDs[i]; id > q.After {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	out := make([]budget.Account, len(ids))
	for i, id := range ids {
		v, _ := s.users.Load(id)
		u := v.(*user)
		u.mu.Lock()
		u.expire(q.Now)
		out[i] = budget.Account{Settings: u.s, Totals: budget.Totals{Window: u.window, Spent: u.spent, Held: u.held}}
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
