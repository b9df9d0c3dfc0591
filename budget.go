// Package budget enforces per-user spend limits on LLM calls.
//
// A service reserves an estimated cost before each model call and settles
// the actual cost after it:
//
//	r, err := m.Reserve(ctx, "alice", estimate)
//	if errors.Is(err, budget.ErrBudgetExceeded) { ... refuse the call ... }
//	defer r.Release(ctx) // no-op once settled
//	... call the model ...
//	st, err := r.Settle(ctx, budget.Usage{Provider: "openai", Model: "gpt-4o", Cost: actual})
//
// With enforcement on, no interleaving of Reserve calls, on one process or
// many sharing a store, lets settled plus reserved spend pass the limit. Only
// a Settle above its estimate can (the model was already called), and that
// spend is recorded, never hidden.
//
// Money is decimal.Decimal with at most 9 decimal places; periods are
// calendar periods in each user's timezone; alerts fire once per level per
// period; permissions are the rules in permissions.go; every reset and
// settings change goes to an audit log.
//
// Budgets are always there for admins. Whether regular users see theirs is
// the admin's call: SetAccess turns them on or off for every regular user
// at once, and an admin can still show or hide one user in their settings.
// Admins change many users at once with BulkUpdate and named plans
// (SaveTemplate, ApplyTemplate). A Store (store/memory, store/sqlite,
// store/postgres) supplies atomicity and persistence.
//
// # Observability
//
// A Manager reports through the OpenTelemetry API and log/slog, to the
// providers and logger in Options; without them it reports nothing and
// costs nothing. The library depends on the API only: the host picks the
// SDK and the exporter (for Prometheus, go.opentelemetry.io/otel/exporters/prometheus).
//
// Metrics, on the meter named "github.com/llmbudget/budget":
//
//	budget.spend            counter, unit {nanoUSD}: recorded spend, exact, in
//	                        nano-dollars (divide by 1e9 for USD), counted when
//	                        Settle or Record returns success; attributes
//	                        provider, model
//	budget.reserves         counter, unit {reserve}: Reserve calls; attribute
//	                        outcome = allowed | refused, and for refused, reason =
//	                        limit | invalid | store_error
//	budget.alerts           counter, unit {alert}: alert levels reached, once per
//	                        user, period and level; attribute level = yellow |
//	                        orange | red
//	budget.reserve.duration histogram, unit s: Reserve latency
//	budget.settle.duration  histogram, unit s: Settle latency
//
// A Settle or Record whose store commit lands but whose reply is lost (a
// context that ends during the commit) returns an error and is not counted
// in budget.spend: the counter may trail the store, never lead it.
//
// The counters are asynchronous (Int64ObservableCounter): a call adds to an
// atomic integer, and the SDK reads the totals when it collects, so
// counting costs the hot path next to nothing. A Manager's callback stays
// registered with the MeterProvider as long as the provider lives: make one
// Manager per store, not one per request. Several Managers on one provider
// add up.
//
// Cardinality: budget.spend has one series per provider×model pair seen,
// up to 1000 pairs; spend of pairs beyond those counts under provider and
// model "_other", so that model names a client makes up cannot grow the
// series without bound. budget.reserves has four series, budget.alerts
// three, the histograms one each. No metric carries a user ID, whatever
// Options.TraceUserIDs says. The SQL stores add budget.store.batch.size,
// and httpapi's Webhook budget.webhook.deliveries, on their own options.
//
// Traces, on the tracer named "github.com/llmbudget/budget": a span per
// public Manager and Reservation call, named "budget." and the method
// ("budget.Reserve", "budget.Settle", "budget.UpdateSettings", ...), and
// inside it a span per store call, named "budget.store." and the Store
// method ("budget.store.Reserve"). A call that returns an error sets the
// span's status to Error, except a refused Reserve, which is a result: its
// span has budget.allowed = false. Store spans of ErrNotFound and
// ErrConflict, which the Manager handles itself, keep status Unset.
// Spans carry the user ID as budget.user_id (and the acting principal as
// budget.actor_id) only with Options.TraceUserIDs. A Release of a closed
// reservation and Ping make no span.
//
// Logs, to Options.Logger: a conflicting change the Manager retries, at
// Debug; a late request (a settings change or reset computed before the
// user's current period began: a clock behind another process's, or a call
// delayed past a period's end) retried at the period's start, at Warn.
package budget

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Options configure a Manager. The zero value is valid: the real clock, a
// 10-minute hold TTL, nobody an admin, the built-in default plans, no alerts,
// no metrics, traces or logs.
type Options struct {
	// Now returns the current time. Defaults to time.Now. Tests inject a
	// clock here; nothing in the library reads the time any other way
	// (but for the latencies the metrics report, which are durations on
	// the monotonic clock).
	Now func() time.Time

	// HoldTTL is how long a reservation counts against the budget when it
	// is neither settled nor released, e.g. because its caller crashed.
	// Defaults to 10 minutes. A Settle after the TTL still records spend.
	HoldTTL time.Duration

	// IsAdmin says whether a user is an admin, for calls that carry only a
	// user ID (Reserve, Record, Status, Settings): it picks the plan a new
	// user starts with. Defaults to nobody. Calls made on someone's behalf
	// take a Principal instead.
	IsAdmin func(userID string) bool

	// AdminPlan is what a new admin starts with; nil means
	// DefaultAdminPlan(). UserPlan is what new regular users start with
	// until an admin stores other defaults with UpdateDefaults; nil means
	// DefaultUserPlan(). A Custom plan without an anchor anchors each user
	// at the start of the day they are created.
	AdminPlan *Plan
	UserPlan  *Plan

	// OnAlert is called once per user, per period, per level reached
	// upward, after the spend that reached it is committed and with no
	// store lock held. It runs on the goroutine that recorded the spend:
	// keep it fast or hand the alert off.
	OnAlert func(Alert)

	// AlertOnProjection also calls OnAlert, once per budget and period,
	// with Kind AlertProjection, when a Status (Status, StatusFor,
	// BudgetStatus) finds the budget's forecast passing its limit for the
	// first time in the period (see Forecast). Off by default.
	AlertOnProjection bool

	// MeterProvider receives the Manager's metrics: spend by provider and
	// model, reserves by outcome, alerts by level, Reserve and Settle
	// latency (see Observability in the package doc). No metric carries a
	// user ID. Defaults to none, which records nothing and costs nothing.
	MeterProvider metric.MeterProvider

	// TracerProvider receives a span per Manager call, with a child span
	// per store call. Defaults to none.
	TracerProvider trace.TracerProvider

	// TraceUserIDs puts the user ID on spans, as budget.user_id (and the
	// acting principal's as budget.actor_id). Off by default: user IDs
	// may identify people, and trace backends keep them. Metrics never
	// carry user IDs.
	TraceUserIDs bool

	// Logger receives what the Manager handles without returning it:
	// concurrent changes it retries (Debug) and late requests it retries
	// at the start of the current period (Warn). Defaults to discarding.
	Logger *slog.Logger
}

// Manager enforces budgets over a Store. Most callers need Reserve and
// Reservation.Settle around each model call, Record for spend that happened
// without a reservation, and Status to show where a user stands.
//
// A Manager is safe for concurrent use, and any number of Managers may share
// one store: the store's atomic steps, not the Manager, keep budgets exact.
type Manager struct {
	store     Store // raw, or wrapped in a tracedStore
	raw       Store // the store given to NewManager
	tel       *telemetry
	now       func() time.Time
	ttl       time.Duration
	isAdmin   func(string) bool
	adminPlan Plan
	userPlan  Plan
	onAlert   func(Alert)
	// alertProjection is Options.AlertOnProjection.
	alertProjection bool
	zones           zoneCache

	// cache holds the last settings and policy seen per user. A stale
	// entry is harmless: every store call carries the settings version,
	// and a store refuses a stale one with ErrConflict, upon which the
	// Manager reloads.
	cache sync.Map // budget key (a user ID, Scope.Key) → *cached

	// totals lends the stores room for Totals.Also (see
	// ReserveRequest.AlsoTotals), so that a call over several budgets
	// does not allocate it every time.
	totals sync.Pool // *[]Totals

	idPrefix string
	idSeq    atomic.Uint64
}

type cached struct {
	s    Settings
	p    Policy
	caps []capRule // s.ModelCaps as applied
	// teamKeys and orgKey are the keys of s.Teams and s.Org, built once.
	teamKeys []string
	orgKey   string
	// spends remembers the budgets the last call of one model spent, so
	// that the next such call, while every holder's entry is unchanged,
	// neither looks them up nor allocates their lists (see spentBy).
	spends atomic.Pointer[spends]
	// pace remembers the last forecast's read of the rollups (see
	// Manager.forecast).
	pace atomic.Pointer[paceMemo]
}

// maxRetries bounds how often a call re-reads settings after losing a
// compare-and-set race to a concurrent settings change.
const maxRetries = 16

// NewManager returns a Manager over store. It panics if store is nil or an
// Options plan is invalid, as those are programming errors.
func NewManager(store Store, opts Options) *Manager {
	if store == nil {
		panic("budget: NewManager with nil Store")
	}
	m := &Manager{
		store: store, raw: store, tel: newTelemetry(opts), now: opts.Now, ttl: opts.HoldTTL, isAdmin: opts.IsAdmin,
		adminPlan: DefaultAdminPlan(), userPlan: DefaultUserPlan(), onAlert: opts.OnAlert,
		alertProjection: opts.AlertOnProjection,
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.tel.tracer != nil {
		m.store = tracedStore{s: store, t: m.tel}
	}
	if m.ttl <= 0 {
		m.ttl = 10 * time.Minute
	}
	if opts.AdminPlan != nil {
		m.adminPlan = *opts.AdminPlan
	}
	if opts.UserPlan != nil {
		m.userPlan = *opts.UserPlan
	}
	for name, p := range map[string]Plan{"AdminPlan": m.adminPlan, "UserPlan": m.userPlan} {
		if err := p.validateDefault(&m.zones); err != nil {
			panic(fmt.Sprintf("budget: invalid Options.%s: %v", name, err))
		}
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	m.idPrefix = hex.EncodeToString(b[:]) + "-"
	return m
}

// validateDefault validates a plan that new users start from: a Custom plan
// may leave its anchor to each user's creation.
func (p Plan) validateDefault(zones *zoneCache) error {
	if p.Period == Custom && p.CustomAnchor.IsZero() {
		p.CustomAnchor = time.Unix(0, 0)
	}
	return p.validate(zones)
}

// newID returns an ID unique to this Manager's lifetime and, through its
// random prefix, across Managers.
func (m *Manager) newID(kind string) string {
	var buf [64]byte
	b := append(append(buf[:0], kind...), m.idPrefix...)
	return string(strconv.AppendUint(b, m.idSeq.Add(1), 36))
}

// Usage describes one model call's spend.
type Usage struct {
	// ID is an idempotency key, unique per user: recording an ID the user
	// already has changes nothing and returns ErrDuplicate. Empty means
	// the reservation's ID for Settle, and a fresh ID for Record.
	ID           string
	Provider     string
	Model        string
	InputTokens  int64
	OutputTokens int64
	// Cost is the call's actual cost in US dollars.
	Cost decimal.Decimal
}

const maxLabelLen = 256

// validLabel reports whether v can be a usage label such as a model name.
func validLabel(field, v string) error {
	if len(v) > maxLabelLen || !utf8.ValidString(v) {
		return &ValidationError{Field: field, Reason: "must be at most 256 bytes of UTF-8"}
	}
	return nil
}

func (m *Manager) usageRow(userID, defaultID string, u Usage, now time.Time) (UsageRow, error) {
	cost, err := ToNanos(u.Cost)
	if err != nil {
		return UsageRow{}, err
	}
	for _, f := range [...]struct{ name, v string }{{"id", u.ID}, {"provider", u.Provider}, {"model", u.Model}} {
		if err := validLabel(f.name, f.v); err != nil {
			return UsageRow{}, err
		}
	}
	if u.InputTokens < 0 || u.OutputTokens < 0 {
		return UsageRow{}, &ValidationError{Field: "tokens", Reason: "token counts must not be negative"}
	}
	id := u.ID
	if id == "" {
		id = defaultID
	}
	return UsageRow{
		ID: id, UserID: userID, Provider: u.Provider, Model: u.Model,
		InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, Cost: cost, At: now,
	}, nil
}

// Status is where a user's budget stands.
type Status struct {
	// UserID is the user's, for a user's own budget; empty for a team's
	// or org's.
	UserID string
	// Scope is the budget's holder: the user, a team or an org.
	Scope Scope
	// Pattern is the model cap's pattern when the budget is one of its
	// holder's model caps; empty for the holder's own budget.
	Pattern string
	Limit   decimal.Decimal
	// Spent is the settled spend in the current period.
	Spent decimal.Decimal
	// Reserved is the sum of live reservations.
	Reserved decimal.Decimal
	// Remaining is what a Reserve can still take: Limit − Spent −
	// Reserved, and never below zero.
	Remaining decimal.Decimal
	// Percent is Spent as a percentage of Limit, rounded down to two
	// places; 100 for a zero limit once anything is spent.
	Percent  decimal.Decimal
	Level    Level
	Enforced bool
	Period   Period
	// CustomDays is the length of a Custom period; zero otherwise.
	CustomDays int
	// Timezone is the IANA zone the period is computed in.
	Timezone    string
	PeriodStart time.Time
	PeriodEnd   time.Time
	// Binding marks, in Budgets, the budget that binds: the enforced one
	// with the least room left.
	Binding bool
	// Budgets lists every budget that applies to the user's calls when
	// any beyond their own does (their teams', their org's, model caps),
	// their own first, the binding one marked; nil when only their own
	// applies. Caps are listed whatever the model.
	Budgets []Status
	// Forecast projects the budget's spend to the end of the period at its
	// recent pace (see Forecast). Status, StatusFor and BudgetStatus fill
	// it in for the budget they are asked about (not for Budgets, nor on
	// the results of Reserve, Settle and Record, which stay cheap); nil
	// elsewhere.
	Forecast *Forecast
}

func newStatus(c *cached, t Totals) Status {
	s, p := &c.s, &c.p
	rem := p.Limit - t.Spent - t.Held
	if t.Spent > p.Limit || t.Held > p.Limit || rem < 0 {
		rem = 0
	}
	scope, _ := ScopeOfKey(s.UserID)
	userID := ""
	if scope.Kind == UserScope {
		userID = scope.ID
	}
	return Status{
		UserID: userID, Scope: scope, Limit: s.Limit, Spent: dec(t.Spent), Reserved: dec(t.Held),
		Remaining: dec(rem), Percent: percent(t.Spent, p.Limit), Level: p.Level(t.Spent),
		Enforced: p.Enforce, Period: s.Period, CustomDays: s.CustomDays, Timezone: cmp.Or(s.Timezone, "UTC"),
		PeriodStart: t.Window.Start, PeriodEnd: t.Window.End,
	}
}

// dec converts n, sharing decimal.Zero for zero: a Status is built on every
// Settle, and each non-zero decimal costs an allocation.
func dec(n Nanos) decimal.Decimal {
	if n == 0 {
		return decimal.Zero
	}
	return n.Decimal()
}

// percent returns spent/limit×100 rounded down to hundredths, exactly.
func percent(spent, limit Nanos) decimal.Decimal {
	switch {
	case spent <= 0:
		return decimal.Zero
	case limit <= 0:
		return decimal.NewFromInt(100)
	}
	bp := mulDiv(uint64(spent), 10000, uint64(limit))
	return decimal.New(int64(bp), -2)
}

// zoneCache caches loaded time zones: time.LoadLocation reads the zone
// database on every call.
type zoneCache struct{ m sync.Map }

func (z *zoneCache) load(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if v, ok := z.m.Load(name); ok {
		return v.(*time.Location), nil
	}
	if name == "Local" || len(name) > maxTZLen {
		return nil, &ValidationError{Field: "timezone", Reason: fmt.Sprintf("%q is not an IANA time zone name", name)}
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, &ValidationError{Field: "timezone", Reason: fmt.Sprintf("unknown time zone %q", name)}
	}
	z.m.Store(name, loc)
	return loc, nil
}

// policy computes the policy of settings s at now.
func (m *Manager) policy(s Settings, now time.Time) (Policy, error) {
	loc, err := m.zones.load(s.Timezone)
	if err != nil {
		return Policy{}, fmt.Errorf("budget: settings of %q: %w", s.UserID, err)
	}
	limit, err := ToNanos(s.Limit)
	if err != nil {
		return Policy{}, fmt.Errorf("budget: settings of %q: %w", s.UserID, err)
	}
	return Policy{Version: s.Version, Window: s.window(loc, now), Limit: limit, Enforce: s.Enforce, Levels: levels(s.Thresholds, limit)}, nil
}

// levels returns the spend at which each alert level begins for limit.
func levels(th Thresholds, limit Nanos) (l [3]Nanos) {
	for i, t := range [...]decimal.Decimal{th.Yellow, th.Orange, th.Red} {
		l[i] = thresholdNanos(limit, basisPoints(t))
	}
	return l
}

// account returns the user's settings and their policy at now, from the
// cache when it is fresh, else from the store, creating the settings from
// the defaults on first use. Pass reload after an ErrConflict.
func (m *Manager) account(ctx context.Context, userID string, now time.Time, reload bool) (*cached, error) {
	if !reload {
		if v, ok := m.cache.Load(userID); ok {
			c := v.(*cached)
			if c.p.Window.Contains(now) {
				return c, nil
			}
			p, err := m.policy(c.s, now)
			if err != nil {
				return nil, err
			}
			return m.remember(c.s, p), nil
		}
	}
	s, err := m.loadSettings(ctx, userID, now)
	if err != nil {
		return nil, err
	}
	p, err := m.policy(s, now)
	if err != nil {
		return nil, err
	}
	return m.remember(s, p), nil
}

// remember caches settings just read or written, with their policy.
func (m *Manager) remember(s Settings, p Policy) *cached {
	c := &cached{s: s, p: p, caps: capRules(&s)}
	if len(s.Teams) > 0 {
		c.teamKeys = make([]string, len(s.Teams))
		for i, t := range s.Teams {
			c.teamKeys[i] = Team(t).Key()
		}
	}
	if s.Org != "" {
		c.orgKey = Org(s.Org).Key()
	}
	m.cache.Store(s.UserID, c)
	return c
}

// loadSettings reads a user's settings, creating them from the defaults if
// the user has none.
func (m *Manager) loadSettings(ctx context.Context, userID string, now time.Time) (Settings, error) {
	s, stored, err := m.settingsOrNew(ctx, userID, now)
	if err != nil || stored {
		return s, err
	}
	if scope, _ := ScopeOfKey(userID); scope.Kind != UserScope {
		return Settings{}, fmt.Errorf("%w: no %s %q", ErrNotFound, scope.Kind, scope.ID)
	}
	s, _, err = m.create(ctx, s, now)
	return s, err
}

// settingsOrNew reads a user's settings, or returns (unstored) the settings
// a new user would start with, and whether they are stored.
func (m *Manager) settingsOrNew(ctx context.Context, userID string, now time.Time) (Settings, bool, error) {
	s, err := m.store.Settings(ctx, userID)
	if err == nil {
		return s, true, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return Settings{}, false, fmt.Errorf("budget: loading settings of %q: %w", userID, err)
	}
	plan := m.adminPlan
	scope, _ := ScopeOfKey(userID)
	if scope.Kind != UserScope || !m.admin(userID) {
		d, err := m.Defaults(ctx)
		if err != nil {
			return Settings{}, false, err
		}
		plan = d.Plan
	}
	if scope.Kind != UserScope {
		plan.Permissions = Permissions{} // admins manage teams' and orgs' budgets
	}
	loc, err := m.zones.load(plan.Timezone)
	if err != nil {
		return Settings{}, false, err
	}
	return Settings{UserID: userID, Plan: anchorCustom(plan, loc, now), Version: 1, CreatedAt: now, UpdatedAt: now}, false, nil
}

// create stores new settings unless the user already has some. Creation is
// create-if-absent in the store, so concurrent first calls all end up with
// the one row that won; created says whether it was this call's.
func (m *Manager) create(ctx context.Context, s Settings, now time.Time) (Settings, bool, error) {
	p, err := m.policy(s, now)
	if err != nil {
		return Settings{}, false, err
	}
	s, created, err := m.store.CreateSettings(ctx, CreateRequest{Settings: s, Policy: p, Now: now})
	if err != nil {
		return Settings{}, false, fmt.Errorf("budget: creating settings of %q: %w", s.UserID, err)
	}
	return s, created, nil
}

// withPolicy runs op with the user's current settings and policy, reloading
// and retrying when a concurrent settings change makes the store answer
// ErrConflict.
func (m *Manager) withPolicy(ctx context.Context, userID string, now time.Time, op func(*cached) error) (*cached, error) {
	return m.withPolicyFrom(ctx, userID, now, nil, op)
}

// withPolicyFrom is withPolicy that first tries c, the entry a Reservation
// kept from its Reserve, sparing a cache lookup; the store's version check
// makes a stale one harmless.
func (m *Manager) withPolicyFrom(ctx context.Context, userID string, now time.Time, c *cached, op func(*cached) error) (*cached, error) {
	reload := false
	for attempt := 0; ; attempt++ {
		var err error
		if attempt > 0 || c == nil || !c.p.Window.Contains(now) {
			if c, err = m.account(ctx, userID, now, reload); err != nil {
				return nil, err
			}
		}
		err = op(c)
		if errors.Is(err, ErrConflict) && attempt < maxRetries {
			m.tel.retrying(ctx, "policy", userID, err, attempt)
			reload = true
			continue
		}
		return c, err
	}
}

// fire counts newly marked levels of a user's own budget and reports them
// to OnAlert. It runs after the store call returned, so the spend is
// committed and no store lock is held.
func (m *Manager) fire(st Status, levels LevelSet, at time.Time) {
	m.fireFor(st.UserID, st, levels, at)
}

// fireFor is fire for the budget whose status is st, crossed by a call of
// userID (empty for a change no user's call made).
func (m *Manager) fireFor(userID string, st Status, levels LevelSet, at time.Time) {
	if levels == 0 {
		return
	}
	m.tel.alerted(levels)
	if m.onAlert == nil {
		return
	}
	for _, l := range levels.Levels() {
		m.onAlert(Alert{Kind: AlertLevel, UserID: userID, Scope: st.Scope, Pattern: st.Pattern, Level: l, Status: st, At: at})
	}
}

// Reserve holds estimate against userID's budget until the returned
// Reservation is settled or released, or its TTL passes. Call it before a
// model call, with the most the call can cost; if it fails, do not make the
// call.
//
// When enforcement is on and settled spend plus live holds plus estimate
// would pass the limit, Reserve returns an error matching ErrBudgetExceeded
// (errors.As gives the *LimitError). Any other error, including every store
// failure, also means "not reserved": Reserve fails closed.
//
// Every budget that applies is checked and held in one atomic step: the
// user's own, each of their teams', their org's and each team's org, and
// the model caps of each of those whose pattern matches the model named
// with WithModel. The hold is placed on all of them or on none, and the
// *LimitError of a refusal names the budget that refused.
func (m *Manager) Reserve(ctx context.Context, userID string, estimate decimal.Decimal, opts ...ReserveOption) (_ *Reservation, err error) {
	start := m.tel.clock()
	ctx, span := m.tel.start(ctx, spanReserve, userID, nil)
	defer m.tel.end(span, &err)
	defer m.tel.reserved(ctx, start, &err)
	if err := ValidateUserID(userID); err != nil {
		return nil, err
	}
	amount, err := ToNanos(estimate)
	if err != nil {
		return nil, err
	}
	var o ReserveOption
	for _, op := range opts {
		if op.model != "" {
			o.model = op.model
		}
	}
	if err := validLabel("model", o.model); err != nil {
		return nil, err
	}
	now := m.now()
	r := &Reservation{m: m, userID: userID, id: m.newID("h-"), amount: amount, expiresAt: now.Add(m.ttl), model: o.model}
	var (
		t       Totals
		allowed bool
		hs      []held
		also    []KeyPolicy
		tries   int
		room    *[]Totals // t.Also's, lent
	)
	defer func() { m.giveBack(room) }()
	c, err := m.withPolicy(ctx, userID, now, func(c *cached) (err error) {
		tries++
		if hs, also, err = m.spentBy(ctx, c, o.model, now, tries > 1); err != nil {
			return err
		}
		t, allowed, err = m.store.Reserve(ctx, ReserveRequest{
			UserID: userID, HoldID: r.id, Amount: amount, Policy: c.p, Now: now, ExpiresAt: r.expiresAt,
			Also: also, AlsoTotals: m.alsoRoom(&room, also),
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("budget: reserve for %q: %w", userID, err)
	}
	if t.Alerts != 0 {
		m.fire(newStatus(c, t), t.Alerts, now)
	}
	m.fireHeld(userID, hs, t, now)
	r.c, r.held, r.also = c, hs, also
	if !allowed {
		le := refusal(userID, c, hs, t, amount)
		le.Requested = estimate
		return nil, le
	}
	return r, nil
}

// Reservation is a hold on part of a user's budget, made by Reserve. Close
// it with exactly one Settle or Release; `defer r.Release(ctx)` right after
// Reserve is the safe pattern, as Release is a no-op once settled.
// A Reservation is safe for concurrent use.
type Reservation struct {
	m         *Manager
	userID    string
	id        string
	amount    Nanos
	expiresAt time.Time
	c         *cached // the settings and policy Reserve used
	model     string  // WithModel's
	held      []held  // the budgets beyond the user's own the hold is on
	also      []KeyPolicy

	mu     sync.Mutex
	closed bool
}

// ID returns the hold's ID, which is also the usage ID Settle records when
// Usage.ID is empty.
func (r *Reservation) ID() string { return r.id }

// UserID returns whose budget the reservation holds.
func (r *Reservation) UserID() string { return r.userID }

// Amount returns the amount held.
func (r *Reservation) Amount() decimal.Decimal { return r.amount.Decimal() }

// ExpiresAt returns when the hold stops counting if never closed or
// extended.
func (r *Reservation) ExpiresAt() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.expiresAt
}

// Settle records the call's actual spend and closes the reservation. The
// full cost is recorded even above the estimate, since the model was
// already called; below it, the rest of the hold is freed. After the TTL,
// Settle still records the spend.
//
// A second Settle, or Settle after Release, returns ErrReservationClosed and
// counts nothing; so does retrying a Settle whose first reply was lost but
// which committed. A Usage.ID the user already has returns ErrDuplicate and
// leaves the reservation open.
func (r *Reservation) Settle(ctx context.Context, u Usage) (_ Status, err error) {
	m := r.m
	start := m.tel.clock()
	ctx, span := m.tel.start(ctx, spanSettle, r.userID, nil)
	defer m.tel.end(span, &err)
	defer m.tel.settled(ctx, start)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return Status{}, ErrReservationClosed
	}
	if r.model != "" && u.Model != "" && u.Model != r.model {
		return Status{}, &ValidationError{Field: "model", Reason: fmt.Sprintf("the reservation is for %q, not %q", r.model, u.Model)}
	}
	if u.Model == "" {
		u.Model = r.model
	}
	now := m.now()
	row, err := m.usageRow(r.userID, r.id, u, now)
	if err != nil {
		return Status{}, err
	}
	row.HoldID = r.id
	var (
		t     Totals
		hs    = r.held
		also  = r.also
		tries int
		room  *[]Totals // t.Also's, lent
	)
	defer func() { m.giveBack(room) }()
	c, err := m.withPolicyFrom(ctx, r.userID, now, r.c, func(c *cached) (err error) {
		tries++
		if hs, also, err = m.current(ctx, r.held, r.also, now, tries > 1); err != nil {
			return err
		}
		t, err = m.store.Settle(ctx, SettleRequest{HoldID: r.id, Usage: row, Policy: c.p, Now: now, Also: also, AlsoTotals: m.alsoRoom(&room, also)})
		return err
	})
	if errors.Is(err, ErrReservationClosed) {
		r.closed = true
	}
	if err != nil {
		return Status{}, fmt.Errorf("budget: settle %s for %q: %w", r.id, r.userID, err)
	}
	r.closed = true
	m.tel.spent(&row)
	st := newStatus(c, t)
	m.fire(st, t.Alerts, now)
	m.fireHeld(r.userID, hs, t, now)
	return st, nil
}

// Extend keeps the hold counting while its call runs: it moves the hold's
// expiry to now plus Options.HoldTTL (never earlier) and returns the new
// expiry. Call it periodically, well within the TTL, while a model call or
// stream that may outlive the TTL is in progress (the gate does, every half
// TTL), so that a long call never lets other calls take the budget it holds.
//
// It returns ErrReservationClosed once the reservation is settled or
// released, and ErrHoldExpired when the hold already stopped counting (a
// lapsed hold is never revived, as its amount may have been reserved
// since); a later Settle still records the spend.
func (r *Reservation) Extend(ctx context.Context) (_ time.Time, err error) {
	m := r.m
	ctx, span := m.tel.start(ctx, spanExtend, r.userID, nil)
	defer m.tel.end(span, &err)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return time.Time{}, ErrReservationClosed
	}
	now := m.now()
	at := now.Add(m.ttl)
	if !at.After(r.expiresAt) {
		return r.expiresAt, nil
	}
	var (
		t     Totals
		hs    = r.held
		also  = r.also
		tries int
		room  *[]Totals // t.Also's, lent
	)
	defer func() { m.giveBack(room) }()
	c, err := m.withPolicyFrom(ctx, r.userID, now, r.c, func(c *cached) (err error) {
		tries++
		if hs, also, err = m.current(ctx, r.held, r.also, now, tries > 1); err != nil {
			return err
		}
		t, err = m.store.Extend(ctx, ExtendRequest{UserID: r.userID, HoldID: r.id, ExpiresAt: at, Policy: c.p, Now: now, Also: also,
			AlsoTotals: m.alsoRoom(&room, also)})
		return err
	})
	if errors.Is(err, ErrReservationClosed) {
		r.closed = true
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("budget: extend %s for %q: %w", r.id, r.userID, err)
	}
	r.expiresAt = at
	if t.Alerts != 0 {
		m.fire(newStatus(c, t), t.Alerts, now)
	}
	m.fireHeld(r.userID, hs, t, now)
	return at, nil
}

// Release frees the hold without recording spend. It is a no-op returning
// nil once the reservation is settled or released, so it can always be
// deferred.
func (r *Reservation) Release(ctx context.Context) (err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	m := r.m
	ctx, span := m.tel.start(ctx, spanRelease, r.userID, nil)
	defer m.tel.end(span, &err)
	now := m.now()
	var (
		t     Totals
		hs    = r.held
		also  = r.also
		tries int
		room  *[]Totals // t.Also's, lent
	)
	defer func() { m.giveBack(room) }()
	c, err := m.withPolicyFrom(ctx, r.userID, now, r.c, func(c *cached) (err error) {
		tries++
		if hs, also, err = m.current(ctx, r.held, r.also, now, tries > 1); err != nil {
			return err
		}
		t, err = m.store.Release(ctx, ReleaseRequest{UserID: r.userID, HoldID: r.id, Policy: c.p, Now: now, Also: also, AlsoTotals: m.alsoRoom(&room, also)})
		return err
	})
	if err != nil && !errors.Is(err, ErrReservationClosed) {
		return fmt.Errorf("budget: release %s for %q: %w", r.id, r.userID, err)
	}
	r.closed = true
	if err == nil && t.Alerts != 0 {
		// A Release can be the first call of a new period, whose
		// recount may already reach a level.
		m.fire(newStatus(c, t), t.Alerts, now)
	}
	if err == nil {
		m.fireHeld(r.userID, hs, t, now)
	}
	return nil
}

// Record records spend that happened without a reservation, such as usage
// reported after the fact. It never refuses for the limit. Usage.ID is an
// idempotency key: recording an ID the user already has returns
// ErrDuplicate and changes nothing.
func (m *Manager) Record(ctx context.Context, userID string, u Usage) (_ Status, err error) {
	ctx, span := m.tel.start(ctx, spanRecord, userID, nil)
	defer m.tel.end(span, &err)
	if err := ValidateUserID(userID); err != nil {
		return Status{}, err
	}
	now := m.now()
	row, err := m.usageRow(userID, "", u, now)
	if err != nil {
		return Status{}, err
	}
	if row.ID == "" {
		row.ID = m.newID("u-")
	}
	var (
		t     Totals
		hs    []held
		tries int
		room  *[]Totals // t.Also's, lent
	)
	defer func() { m.giveBack(room) }()
	c, err := m.withPolicy(ctx, userID, now, func(c *cached) (err error) {
		tries++
		var also []KeyPolicy
		if hs, also, err = m.spentBy(ctx, c, row.Model, now, tries > 1); err != nil {
			return err
		}
		t, err = m.store.Record(ctx, RecordRequest{Usage: row, Policy: c.p, Now: now, Also: also, AlsoTotals: m.alsoRoom(&room, also)})
		return err
	})
	if err != nil {
		return Status{}, fmt.Errorf("budget: record for %q: %w", userID, err)
	}
	m.tel.spent(&row)
	st := newStatus(c, t)
	m.fire(st, t.Alerts, now)
	m.fireHeld(userID, hs, t, now)
	return st, nil
}

// Status returns where userID's budget stands now. A period that ended
// since the user was last seen rolls over here (and is audited), so no
// scheduled job is needed.
func (m *Manager) Status(ctx context.Context, userID string) (_ Status, err error) {
	ctx, span := m.tel.start(ctx, spanStatus, userID, nil)
	defer m.tel.end(span, &err)
	if err := ValidateUserID(userID); err != nil {
		return Status{}, err
	}
	now := m.now()
	var (
		t     Totals
		hs    []held
		tries int
	)
	c, err := m.withPolicy(ctx, userID, now, func(c *cached) (err error) {
		tries++
		if hs, err = m.heldBy(ctx, c, "", true, now, tries > 1); err != nil {
			return err
		}
		t, err = m.store.Totals(ctx, TotalsRequest{UserID: userID, Policy: c.p, Now: now, Also: alsoOf(hs)})
		return err
	})
	if err != nil {
		return Status{}, fmt.Errorf("budget: status of %q: %w", userID, err)
	}
	st := newStatus(c, t)
	m.fire(st, t.Alerts, now)
	m.fireHeld(userID, hs, t, now)
	st.Budgets = budgetsOf(st, hs, t)
	if err := m.withForecast(ctx, c, t, &st, userID, now); err != nil {
		return Status{}, err
	}
	return st, nil
}

// StatusFor returns userID's status on behalf of actor, who must be allowed
// to see it (CanView): what an HTTP handler serving a user calls. It checks
// the permission against the same settings version the totals are read
// with, so a budget hidden a moment ago is not shown.
func (m *Manager) StatusFor(ctx context.Context, actor Principal, userID string) (_ Status, err error) {
	ctx, span := m.tel.start(ctx, spanStatusFor, userID, &actor)
	defer m.tel.end(span, &err)
	if err := ValidateUserID(userID); err != nil {
		return Status{}, err
	}
	now := m.now()
	reload := false
	for attempt := 0; ; attempt++ {
		c, err := m.account(ctx, userID, now, reload)
		if err != nil {
			return Status{}, err
		}
		if err := CanView(actor, c.s); err != nil {
			if !reload { // cached settings may be stale: ask the store
				reload = true
				continue
			}
			return Status{}, err
		}
		hs, err := m.heldBy(ctx, c, "", true, now, reload)
		if err != nil {
			return Status{}, fmt.Errorf("budget: status of %q: %w", userID, err)
		}
		t, err := m.store.Totals(ctx, TotalsRequest{UserID: userID, Policy: c.p, Now: now, Also: alsoOf(hs)})
		if errors.Is(err, ErrConflict) && attempt < maxRetries {
			m.tel.retrying(ctx, "status", userID, err, attempt)
			reload = true
			continue
		}
		if err != nil {
			return Status{}, fmt.Errorf("budget: status of %q: %w", userID, err)
		}
		st := newStatus(c, t)
		m.fire(st, t.Alerts, now)
		m.fireHeld(userID, hs, t, now)
		st.Budgets = budgetsOf(st, hs, t)
		if err := m.withForecast(ctx, c, t, &st, userID, now); err != nil {
			return Status{}, err
		}
		return st, nil
	}
}
