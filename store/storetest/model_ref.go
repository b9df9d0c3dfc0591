package storetest

// The reference model of RunModel: a small, single-threaded implementation
// of what a Manager over a correct Store does, written apart from every
// store and from the Manager's internals. It keeps plain maps and slices,
// computes money with decimal arithmetic, and recounts spend from the usage
// rows instead of keeping counters. It uses budget.PeriodWindow for the
// calendar (periods are the domain's public function) and nothing else of
// the library's rules: limits, holds and their expiry, windows with resets,
// rollover audit entries and alerts are written out here again.

import (
	"cmp"
	"fmt"
	"sort"
	"time"

	"github.com/llmbudget/budget"
	"github.com/shopspring/decimal"
)

// refKind is the outcome of one operation, as the caller sees it.
type refKind string

const (
	refOK        refKind = "ok"
	refExceeded  refKind = "exceeded"  // ErrBudgetExceeded
	refClosed    refKind = "closed"    // ErrReservationClosed
	refExpired   refKind = "expired"   // ErrHoldExpired
	refDuplicate refKind = "duplicate" // ErrDuplicate
	refNotFound  refKind = "notfound"  // ErrNotFound
	refInvalid   refKind = "invalid"   // ErrInvalid or ErrInvalidAmount
	refInjected  refKind = "injected"  // ErrInjected
	refCanceled  refKind = "canceled"  // context.Canceled
)

var (
	refHundred = decimal.NewFromInt(100)
	refBP      = decimal.NewFromInt(10000)
)

type refHoldState uint8

const (
	refPending refHoldState = iota
	refSettled
	refReleased
)

type refHold struct {
	amount  decimal.Decimal
	expires time.Time
	state   refHoldState
	// also are the budgets beyond the user's own the hold was placed on,
	// with the cap limits of that moment; one refHold is shared by all.
	also []refHeld
}

type refRow struct {
	id       string // "" when the Manager made the ID up
	holdID   string
	provider string
	model    string
	in, out  int64
	cost     decimal.Decimal
	at       time.Time
	// owner is the user whose row this is, for a row under another
	// budget's key (a team's, an org's, a cap's); empty for a user's own.
	owner string
}

type refAudit struct {
	user          string // "" for the defaults
	typ           budget.AuditType
	actor         string
	prevLimit     decimal.Decimal
	newLimit      decimal.Decimal
	prevSpent     decimal.Decimal
	periodStart   time.Time
	periodEnd     time.Time
	at            time.Time
	reason        string
	beforeVersion int64 // settings entries: the versions around the change
	afterVersion  int64
	// before and after are a settings entry's memberships and caps.
	before, after refScopes
}

type refAlert struct {
	user    string // the user whose call crossed the level; "" for none
	scope   budget.Scope
	pattern string
	level   budget.Level
	status  budget.Status
	at      time.Time
}

// refUser is one user: settings, the window last seen, the usage rows, the
// holds and the levels alerted in the window.
type refUser struct {
	id      string
	plan    budget.Plan
	resetAt time.Time
	version int64

	window budget.Window
	marked map[budget.Level]bool
	rows   []refRow
	ids    map[string]bool // usage IDs
	holds  map[string]*refHold
	live   map[string]*refHold // the holds that still count
	audit  []refAudit

	// sumWin, sumN and sum memoize spentIn: the sum of the first sumN rows
	// inside sumWin. Rows are only ever appended, so it stays valid.
	// sorted says the rows are in time order (the clock never went back).
	sorted bool
	sumWin budget.Window
	sumN   int
	sum    decimal.Decimal

	// Budgets at every scope (model_scopes_ref.go). scope is the holder
	// of this budget (a user's own, a team's or an org's, whose id is
	// then its key); a cap's record has its holder and pattern, its id
	// being the cap's key. teams, org and caps are the settings that
	// place a user (teams, org) or a team (org) and cap a holder.
	scope   budget.Scope
	holder  *refUser
	pattern string
	scopes  refScopes
}

// refModel is the whole reference state.
type refModel struct {
	ttl       time.Duration
	adminPlan budget.Plan
	userPlan  budget.Plan
	defaults  *budget.Plan // stored by UpdateDefaults
	defVer    int64
	isAdmin   func(string) bool
	users     map[string]*refUser
	log       []refAudit // every entry, in order
	zones     map[string]*time.Location

	alerts []refAlert // expected to be reported by the current operation

	holders map[string]*refUser // teams and orgs, by key
	caps    map[string]*refUser // caps' counters, by key
}

func newRefModel(ttl time.Duration, adminPlan, userPlan budget.Plan, isAdmin func(string) bool) *refModel {
	return &refModel{
		ttl: ttl, adminPlan: adminPlan, userPlan: userPlan, isAdmin: isAdmin, defVer: 1,
		users: map[string]*refUser{}, zones: map[string]*time.Location{},
		holders: map[string]*refUser{}, caps: map[string]*refUser{},
	}
}

func (m *refModel) loc(name string) *time.Location {
	if name == "" || name == "UTC" {
		return time.UTC
	}
	if l, ok := m.zones[name]; ok {
		return l
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(fmt.Sprintf("storetest: reference model: zone %q: %v", name, err))
	}
	m.zones[name] = l
	return l
}

// localMidnight is the start of now's local day, for zones whose midnight
// no DST change touches (the generator only asks for those).
func localMidnight(now time.Time, loc *time.Location) time.Time {
	y, mo, d := now.In(loc).Date()
	return time.Date(y, mo, d, 0, 0, 0, 0, loc)
}

// window is the window of u's settings that holds now: the regular period,
// starting at the last manual reset instead when that happened inside it.
func (m *refModel) window(u *refUser, now time.Time) budget.Window {
	w := budget.PeriodWindow(u.plan.Period, u.plan.CustomDays, u.plan.CustomAnchor, m.loc(u.plan.Timezone), now)
	if !u.resetAt.IsZero() && !u.resetAt.Before(w.Start) && !u.resetAt.After(now) {
		w.Start = u.resetAt
	}
	return w
}

// spentIn is the cost of u's usage whose time is in w.
func (u *refUser) spentIn(w budget.Window) decimal.Decimal {
	if !u.sumWin.Equal(w) || u.sumN > len(u.rows) {
		u.sumWin, u.sumN, u.sum = w, 0, decimal.Zero
		if u.sorted {
			// Rows are in time order: skip those before the window.
			u.sumN = sort.Search(len(u.rows), func(i int) bool { return !u.rows[i].at.Before(w.Start) })
		}
	}
	for _, r := range u.rows[u.sumN:] {
		if w.Contains(r.at) {
			u.sum = u.sum.Add(r.cost)
		}
	}
	u.sumN = len(u.rows)
	return u.sum
}

func (u *refUser) spent() decimal.Decimal { return u.spentIn(u.window) }

// held is the sum of the holds that still count.
func (u *refUser) held() decimal.Decimal {
	sum := decimal.Zero
	for _, h := range u.live {
		sum = sum.Add(h.amount)
	}
	return sum
}

// uncount stops counting a hold.
func (u *refUser) uncount(id string) {
	delete(u.live, id)
}

// level is the alert level of spent: the highest threshold reached, where
// spent reaches t percent of limit when spent × 100 ≥ limit × t.
func refLevel(p budget.Plan, spent decimal.Decimal) budget.Level {
	if spent.Sign() <= 0 {
		return budget.Green
	}
	l := budget.Green
	for i, t := range []decimal.Decimal{p.Thresholds.Yellow, p.Thresholds.Orange, p.Thresholds.Red} {
		if spent.Mul(refHundred).Cmp(p.Limit.Mul(t)) >= 0 {
			l = budget.Level(i + 1)
		}
	}
	return l
}

// status is what Status returns for u now.
func (m *refModel) status(u *refUser) budget.Status {
	spent, held := u.spent(), u.held()
	rem := u.plan.Limit.Sub(spent).Sub(held)
	if rem.Sign() < 0 {
		rem = decimal.Zero
	}
	pct := decimal.Zero
	switch {
	case spent.Sign() <= 0:
	case u.plan.Limit.Sign() <= 0:
		pct = refHundred
	default:
		q, _ := spent.Mul(refBP).QuoRem(u.plan.Limit, 0) // whole basis points, rounded down
		pct = q.Shift(-2)
	}
	userID, scope := u.whose()
	return budget.Status{
		UserID: userID, Scope: scope, Pattern: u.pattern,
		Limit: u.plan.Limit, Spent: spent, Reserved: held, Remaining: rem, Percent: pct,
		Level: refLevel(u.plan, spent), Enforced: u.plan.Enforce, Period: u.plan.Period,
		CustomDays: u.plan.CustomDays, Timezone: cmp.Or(u.plan.Timezone, "UTC"),
		PeriodStart: u.window.Start, PeriodEnd: u.window.End,
	}
}

func (m *refModel) plan(userID string) budget.Plan {
	switch {
	case m.isAdmin != nil && m.isAdmin(userID):
		return m.adminPlan
	case m.defaults != nil:
		return *m.defaults
	}
	return m.userPlan
}

// user returns the user, creating their settings from the defaults on
// first use, as every Manager entry point that touches a user does.
func (m *refModel) user(id string, now time.Time) *refUser {
	if u := m.users[id]; u != nil {
		return u
	}
	p := m.plan(id)
	if p.Period == budget.Custom && p.CustomAnchor.IsZero() {
		p.CustomAnchor = localMidnight(now, m.loc(p.Timezone))
	}
	u := &refUser{
		id: id, plan: p, version: 1, marked: map[budget.Level]bool{},
		ids: map[string]bool{}, holds: map[string]*refHold{}, live: map[string]*refHold{}, sorted: true,
		scope: budget.User(id),
	}
	u.window = m.window(u, now)
	m.users[id] = u
	return u
}

// advance moves u to window w, auditing an automatic rollover when w starts
// at or after the end of the window u was in; limit is the new policy's.
func (m *refModel) advance(u *refUser, w budget.Window, limit decimal.Decimal, now time.Time) {
	if u.window.Start.Equal(w.Start) && u.window.End.Equal(w.End) {
		return
	}
	if !w.Start.Before(u.window.End) {
		m.appendAudit(u, refAudit{
			typ: budget.AuditAutomaticReset, actor: budget.SystemActor, reason: "period ended",
			prevLimit: limit, newLimit: limit, prevSpent: u.spent(),
			periodStart: u.window.Start, periodEnd: u.window.End, at: now,
		})
	}
	u.window = w
	u.marked = map[budget.Level]bool{}
}

// appendAudit appends e to u's log (u may be nil) and to the whole log.
func (m *refModel) appendAudit(u *refUser, e refAudit) {
	if u != nil {
		e.user = u.id
		u.audit = append(u.audit, e)
	}
	m.log = append(m.log, e)
}

// expire stops counting the holds whose time is up.
func (m *refModel) expire(u *refUser, now time.Time) {
	for id, h := range u.live {
		if !now.Before(h.expires) {
			u.uncount(id)
		}
	}
}

// begin is what every call carrying a policy does first: advance to the
// window of now, then expire holds.
func (m *refModel) begin(u *refUser, now time.Time) {
	m.advance(u, m.window(u, now), u.plan.Limit, now)
	m.expire(u, now)
}

// finish marks the levels reached and not yet alerted in the window, and
// expects the Manager to report them when report is set.
func (m *refModel) finish(u *refUser, now time.Time, report bool) {
	caller, _ := u.whose()
	m.finishFor(u, caller, now, report)
}

// finishFor is finish for a budget that a call by caller ("" for none)
// touched.
func (m *refModel) finishFor(u *refUser, caller string, now time.Time, report bool) {
	lv := refLevel(u.plan, u.spent())
	var fire []budget.Level
	for l := budget.Yellow; l <= lv; l++ {
		if !u.marked[l] {
			u.marked[l] = true
			fire = append(fire, l)
		}
	}
	if !report || len(fire) == 0 {
		return
	}
	st := m.status(u)
	for _, l := range fire {
		m.alerts = append(m.alerts, refAlert{user: caller, scope: st.Scope, pattern: u.pattern, level: l, status: st, at: now})
	}
}

// takeAlerts returns and forgets the alerts expected so far.
func (m *refModel) takeAlerts() []refAlert {
	a := m.alerts
	m.alerts = nil
	return a
}

// The store operations. Each first decides whether the store refuses the
// request with an error, in which case nothing changes; otherwise it
// applies the request. report says whether the Manager gets the reply
// (false when the reply is lost), which decides whether alerts are
// reported.

// reserve places a hold on u's budget and every budget of hs, or on none
// when one of them cannot take it; a refusal returns the status of the
// budget that refused (see refuser).
func (m *refModel) reserve(u *refUser, hs []refHeld, holdID string, amount decimal.Decimal, now time.Time, report bool) (refKind, budget.Status) {
	m.begin(u, now)
	m.beginHeld(hs, now)
	no := m.refuser(u, hs, amount)
	if no == nil {
		h := &refHold{amount: amount, expires: now.Add(m.ttl), also: hs}
		u.holds[holdID], u.live[holdID] = h, h
		for _, x := range hs {
			x.b.holds[holdID], x.b.live[holdID] = h, h
		}
	}
	m.finish(u, now, report)
	m.finishHeld(u, hs, now, report)
	if no != nil {
		return refExceeded, m.status(no)
	}
	return refOK, m.status(u)
}

// closable says why a hold cannot be closed, or refOK.
func (u *refUser) closable(holdID string) refKind {
	h := u.holds[holdID]
	switch {
	case h == nil:
		return refNotFound
	case h.state != refPending:
		return refClosed
	}
	return refOK
}

// settle settles the hold on u's budget and on hs, the budgets it was
// placed on (see heldOf), recording row under each.
func (m *refModel) settle(u *refUser, hs []refHeld, holdID string, row refRow, now time.Time, report bool) refKind {
	if k := u.closable(holdID); k != refOK {
		return k
	}
	if row.id != "" && u.ids[row.id] {
		return refDuplicate
	}
	m.begin(u, now)
	m.beginHeld(hs, now)
	m.addRow(u, row)
	u.holds[holdID].state = refSettled
	u.uncount(holdID)
	for _, x := range hs {
		m.addRow(x.b, row.under(u.id))
		x.b.uncount(holdID)
	}
	m.finish(u, now, report)
	m.finishHeld(u, hs, now, report)
	return refOK
}

// release releases the hold on u's budget and on hs, the budgets it was
// placed on. The levels it marks (a release can be the first call of a
// new window) are reported unless the reply is lost.
func (m *refModel) release(u *refUser, hs []refHeld, holdID string, now time.Time, report bool) refKind {
	if k := u.closable(holdID); k != refOK {
		return k
	}
	m.begin(u, now)
	m.beginHeld(hs, now)
	u.holds[holdID].state = refReleased
	u.uncount(holdID)
	for _, x := range hs {
		x.b.uncount(holdID)
	}
	m.finish(u, now, report)
	m.finishHeld(u, hs, now, report)
	return refOK
}

// extend moves a hold that still counts to expire at expires, never
// earlier. A hold that stopped counting (its expiry came, whether or not a
// call saw it yet) is never revived.
func (m *refModel) extend(u *refUser, hs []refHeld, holdID string, expires, now time.Time, report bool) refKind {
	if k := u.closable(holdID); k != refOK {
		return k
	}
	h := u.live[holdID]
	if h == nil || !now.Before(h.expires) {
		return refExpired
	}
	for _, x := range hs {
		if x.b.live[holdID] != h {
			return refExpired
		}
	}
	m.begin(u, now)
	m.beginHeld(hs, now)
	if expires.After(h.expires) {
		h.expires = expires
	}
	m.finish(u, now, report)
	m.finishHeld(u, hs, now, report)
	return refOK
}

func (m *refModel) record(u *refUser, hs []refHeld, row refRow, now time.Time, report bool) refKind {
	if row.id != "" && u.ids[row.id] {
		return refDuplicate
	}
	m.begin(u, now)
	m.beginHeld(hs, now)
	m.addRow(u, row)
	for _, x := range hs {
		m.addRow(x.b, row.under(u.id))
	}
	m.finish(u, now, report)
	m.finishHeld(u, hs, now, report)
	return refOK
}

func (m *refModel) addRow(u *refUser, r refRow) {
	if r.id != "" && r.owner == "" {
		u.ids[r.id] = true
	}
	if n := len(u.rows); n > 0 && r.at.Before(u.rows[n-1].at) {
		u.sorted = false
	}
	u.rows = append(u.rows, r)
}

// totals is a Totals call on u's budget and hs.
func (m *refModel) totals(u *refUser, hs []refHeld, now time.Time, report bool) {
	m.begin(u, now)
	m.beginHeld(hs, now)
	m.finish(u, now, report)
	m.finishHeld(u, hs, now, report)
}

// reset is a manual reset by actor; it returns the audit entry.
func (m *refModel) reset(u *refUser, actor, reason string, now time.Time, report bool) refAudit {
	m.begin(u, now)
	e := refAudit{
		typ: budget.AuditManualReset, actor: actor, reason: reason,
		prevLimit: u.plan.Limit, newLimit: u.plan.Limit, prevSpent: u.spent(),
		periodStart: u.window.Start, periodEnd: now, at: now,
	}
	m.appendAudit(u, e)
	u.resetAt = now
	u.version++
	m.advance(u, m.window(u, now), u.plan.Limit, now)
	m.finish(u, now, report)
	return e
}

// refUpdate is a settings change, with nil fields unchanged.
type refUpdate struct {
	limit      *decimal.Decimal
	period     *budget.Period
	days       *int
	anchor     *time.Time
	tz         *string
	enforce    *bool
	thresholds *budget.Thresholds
	caps       *[]budget.ModelCap // a holder's model caps, replaced (admins only)
}

func (r refUpdate) settingsUpdate() budget.SettingsUpdate {
	u := budget.SettingsUpdate{
		Limit: r.limit, Period: r.period, CustomDays: r.days, CustomAnchor: r.anchor,
		Timezone: r.tz, Enforce: r.enforce, ModelCaps: r.caps,
	}
	if r.thresholds != nil {
		u.Yellow, u.Orange, u.Red = &r.thresholds.Yellow, &r.thresholds.Orange, &r.thresholds.Red
	}
	return u
}

// apply is the plan after the update: a period other than custom has no
// length in days (unless given) and no anchor; a plan that becomes custom
// without an anchor is anchored at the start of now's local day.
func (m *refModel) apply(p budget.Plan, r refUpdate, now time.Time) budget.Plan {
	return m.applyPlan(p, r, now, true)
}

func (m *refModel) applyPlan(p budget.Plan, r refUpdate, now time.Time, anchor bool) budget.Plan {
	if r.limit != nil {
		p.Limit = *r.limit
	}
	if r.period != nil {
		p.Period = *r.period
		if p.Period != budget.Custom && r.days == nil {
			p.CustomDays = 0
		}
	}
	if r.days != nil {
		p.CustomDays = *r.days
	}
	if r.anchor != nil {
		p.CustomAnchor = *r.anchor
	}
	if p.Period != budget.Custom {
		p.CustomAnchor = time.Time{}
	}
	if r.tz != nil {
		p.Timezone = *r.tz
	}
	if r.enforce != nil {
		p.Enforce = *r.enforce
	}
	if r.thresholds != nil {
		p.Thresholds = *r.thresholds
	}
	if anchor && p.Period == budget.Custom && p.CustomAnchor.IsZero() {
		p.CustomAnchor = localMidnight(now, m.loc(p.Timezone))
	}
	return p
}

// applyDefaults is apply for the defaults, which stay unanchored: each
// new user on a custom period is anchored when created.
func (m *refModel) applyDefaults(p budget.Plan, r refUpdate) budget.Plan {
	return m.applyPlan(p, r, time.Time{}, false)
}

// refSamePlan reports whether a and b are the same budget, as the Manager
// decides whether an update changes anything: "" and "UTC" are one zone.
func refSamePlan(a, b budget.Plan) bool {
	return a.Limit.Equal(b.Limit) && a.Period == b.Period && a.CustomDays == b.CustomDays &&
		a.CustomAnchor.Equal(b.CustomAnchor) && cmp.Or(a.Timezone, "UTC") == cmp.Or(b.Timezone, "UTC") && a.Enforce == b.Enforce &&
		a.Thresholds.Yellow.Equal(b.Thresholds.Yellow) && a.Thresholds.Orange.Equal(b.Thresholds.Orange) &&
		a.Thresholds.Red.Equal(b.Thresholds.Red) && a.Permissions == b.Permissions
}

// update changes u's plan to next and its memberships and caps to sc (a
// change to one of them at least).
func (m *refModel) update(u *refUser, next budget.Plan, sc refScopes, actor string, now time.Time, report bool) {
	m.begin(u, now)
	before := u.version
	prev, prevScopes := u.plan.Limit, u.scopes
	u.plan, u.scopes = next, sc
	u.version++
	m.advance(u, m.window(u, now), next.Limit, now)
	m.appendAudit(u, refAudit{
		typ: budget.AuditSettings, actor: actor, prevLimit: prev, newLimit: next.Limit, at: now,
		beforeVersion: before, afterVersion: u.version, before: prevScopes, after: sc,
	})
	m.finish(u, now, report)
}

// listed is what ListUsers shows for u: a user whose stored window is not
// the current one gets fresh totals (with alerts); the others are shown
// from their stored counters with holds expired.
func (m *refModel) listed(u *refUser, now time.Time) budget.Status {
	if w := m.window(u, now); !u.window.Start.Equal(w.Start) || !u.window.End.Equal(w.End) {
		m.totals(u, nil, now, true)
	} else {
		m.expire(u, now)
	}
	return m.status(u)
}

// sortedUsers returns the users in ID order.
func (m *refModel) sortedUsers() []*refUser {
	out := make([]*refUser, 0, len(m.users))
	for _, u := range m.users {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// refGroup is one provider and model of a breakdown.
type refGroup struct {
	cost          decimal.Decimal
	requests      int64
	input, output int64
}

// breakdown groups u's usage in w by provider and model.
func (u *refUser) breakdown(w budget.Window) map[[2]string]*refGroup {
	out := map[[2]string]*refGroup{}
	for _, r := range u.rows {
		if !w.Contains(r.at) {
			continue
		}
		k := [2]string{r.provider, r.model}
		g := out[k]
		if g == nil {
			g = &refGroup{cost: decimal.Zero}
			out[k] = g
		}
		g.cost = g.cost.Add(r.cost)
		g.requests++
		g.input += r.in
		g.output += r.out
	}
	return out
}
