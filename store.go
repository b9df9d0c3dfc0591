package budget

import (
	"context"
	"math"
	"strconv"
	"strings"
	"time"
)

// Store keeps budgets: settings, counters, holds, usage, alerts and the
// audit log. The Manager owns every rule (limit arithmetic, periods, levels,
// permissions) and hands a store everything it needs in each request,
// including the time: a store supplies atomicity and persistence, and never
// reads the clock.
//
// # Atomicity
//
// Each method is one atomic step for its user: whatever it reads and writes
// for that user happens in one critical section (a mutex, an immediate
// transaction, a row lock), so concurrent calls from any number of Managers
// on the same data behave as if run one at a time.
//
// # Policies and windows
//
// Requests that touch a user's money carry a Policy computed by the Manager
// from the user's settings. A store keeps, per user, the window it last saw,
// the settled spend in that window (a counter, never a scan), the sum of live
// holds, and the levels already alerted in the window. Before acting on a
// request with policy p, every such method:
//
//  1. returns ErrConflict, changing nothing, if p.Version is not the stored
//     settings' Version (the Manager re-reads the settings and retries);
//  2. advances the window, forward only. If p.Window starts before the
//     stored window, the request was computed at an earlier instant than a
//     call already applied (it was delayed, or its process's clock is
//     behind): the store keeps its window and counters and decides the
//     request against them. Otherwise, if p.Window differs from the stored
//     window, then when p.Window.Start is not before the stored window's End
//     it appends RolloverEntry(...) for the stored window to the audit log;
//     in any case it sets the spend counter to the sum of the user's usage
//     whose time is in p.Window, clears the alerted levels and stores
//     p.Window;
//  3. expires holds: a pending hold whose ExpiresAt is not after Now stops
//     counting in the live-hold sum (it stays pending, so a late Settle
//     still records its spend).
//
// On success, every method that takes a policy p (for UpdateSettings and
// Reset, the Next one) ends by marking the levels p.Alerts(marked, spent) as
// alerted and returning them in Totals.Alerts, so that each level is
// reported once per window however many callers race.
//
// # Budgets beyond the user's own
//
// Reserve, Settle, Release, Extend, Record and Totals may carry Also: the
// other budgets the call spends beside the user's own (the user's teams
// and org, and model caps), each under its key (Scope.Key, Scope.CapKey)
// with its own policy. Such a call is one atomic step over all of them:
// the store locks the user and every key of Also in increasing key order,
// so that two steps touching the same budgets never wait on each other in
// a cycle; it applies steps 1 to 3 to each budget, and the method's work to
// each. Reserve places the hold on every budget only when every policy
// allows it, and on none otherwise. A team's or org's key must have
// settings (else ErrNotFound), and its version is checked like the user's.
// A cap's key (KeyPolicy.Cap) has no settings: its counters start in its
// policy's window at their first use, only its holder's version is
// checked (the holder is in the same request), and its window moves are
// not audited. A cap's window follows its holder's, which UpdateSettings
// and Reset may move back: step 2 moves a cap's counters to its policy's
// window in either direction, unless its holder's request is late
// (Counter.AdvancesCap). Under each key of Also a hold keeps its ID, and a usage row
// is recorded with UserID set to that key and ID set to
// UsageKeyID(row.UserID, row.ID), so that rows of different users never
// collide; duplicate IDs are the user's to refuse. Totals.Also holds the
// totals of Also, in the same order, in the request's AlsoTotals when it
// has room and the store chooses to (AlsoInto), else in a new slice.
//
// # Errors
//
// Being over the limit is a result (Reserve's allowed is false), not an
// error. Errors are ErrNotFound, ErrConflict, ErrDuplicate,
// ErrReservationClosed and *LateError as each method documents, or a
// failure of the store itself, which the Manager returns wrapped and never
// treats as allowed. A call that returns an error changes nothing, not even
// the window advance or expiry of steps 2 and 3. Results are copies: the
// caller may keep and modify them.
//
// The package store/storetest is the executable form of this contract:
// every Store must pass storetest.Run unchanged, and should pass
// storetest.RunModel and storetest.RunFaults.
type Store interface {
	// Settings returns the user's settings, or ErrNotFound.
	Settings(ctx context.Context, userID string) (Settings, error)

	// CreateSettings stores req.Settings and starts the user's counters in
	// req.Policy.Window, unless the user already has settings. It returns
	// the stored settings and whether this call created them; concurrent
	// calls for a new user create exactly one.
	CreateSettings(ctx context.Context, req CreateRequest) (s Settings, created bool, err error)

	// UpdateSettings replaces the user's settings with req.Settings if the
	// stored version is still req.Current.Version (else ErrConflict) and
	// req.Current's window does not start before the stored one (else a
	// *LateError with the stored window's start, upon which the Manager
	// retries no earlier than it). It advances to req.Current's
	// window, then moves to req.Next's (in either direction: a new period
	// may start earlier), and appends req.Audit, all in one step.
	UpdateSettings(ctx context.Context, req UpdateRequest) (Totals, error)

	// Reserve places a hold of req.Amount for req.UserID if
	// req.Policy.Allows(spent, held, amount), and reports whether it did.
	// A refused reserve writes nothing but the window and expiry steps.
	// The user must have settings (else ErrNotFound).
	Reserve(ctx context.Context, req ReserveRequest) (t Totals, allowed bool, err error)

	// Settle closes the pending hold req.HoldID and records req.Usage: the
	// hold stops counting (if it still did) and the usage's cost is added
	// to spent when its time is in the window. An unknown hold is
	// ErrNotFound; a settled or released one is ErrReservationClosed; a
	// usage ID the user already has is ErrDuplicate. Errors change nothing.
	Settle(ctx context.Context, req SettleRequest) (Totals, error)

	// Release closes the pending hold req.HoldID without spend. An unknown
	// hold is ErrNotFound; a settled or released one ErrReservationClosed.
	Release(ctx context.Context, req ReleaseRequest) (Totals, error)

	// Extend moves the expiry of the pending hold req.HoldID to
	// req.ExpiresAt, when that is later than its expiry, so that a hold
	// whose call is still running keeps counting. It checks, before the
	// window and expiry steps, that the hold still counts: an unknown hold
	// is ErrNotFound, a settled or released one ErrReservationClosed, and
	// one whose expiry is not after req.Now ErrHoldExpired (an expired hold
	// is never revived: its amount may already be reserved by others).
	Extend(ctx context.Context, req ExtendRequest) (Totals, error)

	// Record records req.Usage with no hold and no limit check. A usage ID
	// the user already has is ErrDuplicate and changes nothing.
	Record(ctx context.Context, req RecordRequest) (Totals, error)

	// Totals returns the user's totals in req.Policy's window after the
	// advance and expiry steps.
	Totals(ctx context.Context, req TotalsRequest) (Totals, error)

	// Reset starts a new window by hand: if the stored version is
	// req.Current.Version (else ErrConflict) and req.Current's window does
	// not start before the stored one (else a *LateError), it advances to
	// req.Current's window, fills req.Audit.PreviousSpent with the spend in it, appends
	// req.Audit, stores req.Settings and advances to req.Next's window. It
	// returns the appended entry (with its ID) and the new totals.
	Reset(ctx context.Context, req ResetRequest) (AuditEntry, Totals, error)

	// Defaults returns the stored defaults for new regular users, or
	// ErrNotFound if none were ever stored.
	Defaults(ctx context.Context) (Defaults, error)

	// UpdateDefaults stores req.Defaults if the stored version is
	// req.ExpectVersion (0: none stored yet), else ErrConflict, and
	// appends req.Audit in the same step.
	UpdateDefaults(ctx context.Context, req DefaultsRequest) error

	// Templates returns every stored template, in increasing name order
	// (byte order), or none.
	Templates(ctx context.Context) ([]Template, error)

	// SaveTemplate stores req.Template under its name if the version
	// stored under that name is req.ExpectVersion (0: no template of that
	// name), else ErrConflict, and appends req.Audit in the same step.
	SaveTemplate(ctx context.Context, req TemplateRequest) error

	// DeleteTemplate deletes the template named req.Template.Name if its
	// stored version is req.ExpectVersion, and appends req.Audit in the
	// same step. No template of that name is ErrNotFound; another version
	// is ErrConflict.
	DeleteTemplate(ctx context.Context, req TemplateRequest) error

	// History returns the user's usage, newest first (by time, then by
	// insertion), in [q.From, q.To) where those are set, q.Limit at most,
	// continuing after q.Cursor. Next is empty on the last page; cursors are
	// opaque to callers and an invalid one is an error wrapping ErrInvalid.
	History(ctx context.Context, q HistoryQuery) (HistoryPage, error)

	// Breakdown returns the user's usage in [q.From, q.To) grouped by
	// provider and model, in any order.
	Breakdown(ctx context.Context, q BreakdownQuery) ([]UsageGroup, error)

	// Accounts returns the holders of kind q.Kind with settings (users
	// when q.Kind is empty), in increasing key order (byte order),
	// starting after q.After, q.Limit at most. Each comes with its stored
	// counters, holds expired as of q.Now; the window is the one last
	// stored, which the Manager checks against the current one.
	Accounts(ctx context.Context, q AccountsQuery) ([]Account, error)

	// Audit returns audit entries, newest first, of q.UserID (all users,
	// the defaults and the templates when empty), of type q.Type (every
	// type when empty), with IDs below q.Before when it is non-zero, q.Limit
	// at most.
	Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)

	// Daily returns q.UserID's usage in [q.From, q.To) summed per zone
	// span, local day, provider and model (see DayTotalsQuery), in any
	// order: nothing for a budget without usage. Its cost must not grow
	// with the usage rows of the range: a store keeps quarter-hour rollups
	// (or any finer grain that divides a quarter hour), written in the same
	// step as each usage row, and reads usage rows only for the pieces of
	// q.Parts of grain 0 (the pieces of grain 24 hours it may read from its
	// quarter-hour rollups too). Rollups outlive pruned rows, so whole
	// quarter hours stay exact after a prune.
	Daily(ctx context.Context, q DayTotalsQuery) ([]DayTotals, error)

	// Import writes the items of req in one atomic step over all of them:
	// for each item, in order, what CreateSettings does with Initial and
	// Current when Create is set, then what UpdateSettings does with its
	// Settings, Current, Next and Audit; then it appends req.Audit, in
	// order. If any item fails, nothing of the request is written: an item
	// whose version is no longer Current.Version, or, with Create, whose
	// budget has settings by then, is ErrConflict; a late one a
	// *LateError; an item that is not Create and has no settings
	// ErrNotFound. It returns each item's totals after its step, in the
	// items' order, with the alerts it marked.
	Import(ctx context.Context, req ImportRequest) ([]Totals, error)

	// Close releases the store's resources. Calls after Close fail.
	Close() error
}

// Policy is what a store needs to decide a request for one user, computed by
// the Manager from the user's settings at one instant. Its methods are the
// limit and level rules, written once here and called by every store inside
// its critical section.
type Policy struct {
	// Version is the settings version the policy was computed from.
	Version int64
	// Window is the period the request falls in.
	Window Window
	// Limit is the spend allowed in Window.
	Limit Nanos
	// Enforce makes Allows refuse spend beyond Limit.
	Enforce bool
	// Levels hold the spend at which Yellow, Orange and Red begin.
	Levels [3]Nanos
	// MarkProjection asks for ProjectedOver to be marked with the levels:
	// the Manager sets it, on a Totals request only, when the window's
	// forecast passes its limit (see Options.AlertOnProjection).
	MarkProjection bool
}

// Allows reports whether a hold of amount may be placed when spent is settled
// and held is on hold: always when not enforced, else when
// spent + held + amount ≤ limit (computed without overflow).
func (p Policy) Allows(spent, held, amount Nanos) bool {
	if !p.Enforce {
		return true
	}
	sum, ok := spent.Add(held)
	if !ok {
		return false
	}
	sum, ok = sum.Add(amount)
	return ok && sum <= p.Limit
}

// Level returns the alert level for settled spend.
func (p Policy) Level(spent Nanos) Level {
	if spent <= 0 {
		return Green
	}
	for l := Red; l > Green; l-- {
		if spent >= p.Levels[l-1] {
			return l
		}
	}
	return Green
}

// Alerts returns the levels that spent reaches and that are not in marked,
// with ProjectedOver when p.MarkProjection asks for it and it is not
// marked: the alerts to fire. The store stores marked|result as the new
// marks.
func (p Policy) Alerts(marked LevelSet, spent Nanos) LevelSet {
	var fire LevelSet
	for l := Yellow; l <= p.Level(spent); l++ {
		if !marked.Has(l) {
			fire = fire.With(l)
		}
	}
	if p.MarkProjection && marked&ProjectedOver == 0 {
		fire |= ProjectedOver
	}
	return fire
}

// RolloverEntry returns the audit entry a store appends when a user's window
// advances past its end on its own: an automatic reset, made by "system".
// prev is the window that closed and spent the settled spend in it; next is
// the policy of the new window.
func RolloverEntry(userID string, prev Window, spent Nanos, next Policy, at time.Time) AuditEntry {
	limit := next.Limit.Decimal()
	return AuditEntry{
		UserID: userID, Type: AuditAutomaticReset, Actor: SystemActor,
		Reason:        "period ended",
		PreviousLimit: limit, NewLimit: limit, PreviousSpent: spent.Decimal(),
		PeriodStart: prev.Start, PeriodEnd: prev.End, At: at,
	}
}

// KeyPolicy is one more budget a request touches beside the user's own:
// its key and its policy.
type KeyPolicy struct {
	// Key is Scope.Key of a team or org, or Scope.CapKey of a model cap.
	Key string
	// Cap marks a model cap's counters, which have no settings of their
	// own.
	Cap    bool
	Policy Policy
}

// UsageKeyID is the ID a usage row of userID with ID id has under the
// other budgets it is charged to (see Store): unique across users, and
// read back with SplitUsageKeyID.
func UsageKeyID(userID, id string) string { return userID + keySep + id }

// SplitUsageKeyID returns the user ID and usage ID that UsageKeyID joined,
// and false for an ID it did not make.
func SplitUsageKeyID(keyID string) (userID, id string, ok bool) {
	return strings.Cut(keyID, keySep)
}

// AlsoInto returns the slice a store puts the Totals.Also of a request
// with n budgets in Also into, given the request's AlsoTotals: buf[:n]
// when buf has room for n, else a new slice.
func AlsoInto(buf []Totals, n int) []Totals {
	if cap(buf) >= n {
		return buf[:n]
	}
	return make([]Totals, n)
}

// Totals are a user's counters as a store returns them.
type Totals struct {
	// Window is the window the counters are for.
	Window Window
	// Spent is the settled spend in Window.
	Spent Nanos
	// Held is the sum of live (pending, unexpired) holds.
	Held Nanos
	// Alerts are the levels this call marked first (and ProjectedOver,
	// when it marked that); the Manager reports them to Options.OnAlert.
	Alerts LevelSet
	// Also are the totals of the request's Also budgets, in its order.
	Also []Totals
}

// CreateRequest asks a store to create a user's settings if absent.
type CreateRequest struct {
	Settings Settings
	Policy   Policy
	Now      time.Time
}

// UpdateRequest asks a store to replace a user's settings.
type UpdateRequest struct {
	Settings Settings
	Current  Policy // from the settings being replaced
	Next     Policy // from req.Settings
	Audit    AuditEntry
	Now      time.Time
}

// ReserveRequest asks a store to place a hold.
type ReserveRequest struct {
	UserID    string
	HoldID    string
	Amount    Nanos
	Policy    Policy
	Now       time.Time
	ExpiresAt time.Time
	Also      []KeyPolicy // the other budgets the call spends
	// AlsoTotals is optional room for the result's Totals.Also: a store
	// may return AlsoTotals[:len(Also)] when its capacity allows (see
	// AlsoInto) instead of allocating. The caller lends it for the call
	// alone and reads the result before lending it again.
	AlsoTotals []Totals
}

// SettleRequest asks a store to settle a hold.
type SettleRequest struct {
	HoldID     string
	Usage      UsageRow // Usage.UserID names the user
	Policy     Policy
	Now        time.Time
	Also       []KeyPolicy // the other budgets the call spends
	AlsoTotals []Totals    // optional room for Totals.Also (see ReserveRequest)
}

// ReleaseRequest asks a store to release a hold.
type ReleaseRequest struct {
	UserID     string
	HoldID     string
	Policy     Policy
	Now        time.Time
	Also       []KeyPolicy // the other budgets the call spends
	AlsoTotals []Totals    // optional room for Totals.Also (see ReserveRequest)
}

// ExtendRequest asks a store to extend a pending hold.
type ExtendRequest struct {
	UserID     string
	HoldID     string
	ExpiresAt  time.Time
	Policy     Policy
	Now        time.Time
	Also       []KeyPolicy // the other budgets the call spends
	AlsoTotals []Totals    // optional room for Totals.Also (see ReserveRequest)
}

// RecordRequest asks a store to record usage without a hold.
type RecordRequest struct {
	Usage      UsageRow
	Policy     Policy
	Now        time.Time
	Also       []KeyPolicy // the other budgets the call spends
	AlsoTotals []Totals    // optional room for Totals.Also (see ReserveRequest)
}

// TotalsRequest asks a store for a user's totals.
type TotalsRequest struct {
	UserID     string
	Policy     Policy
	Now        time.Time
	Also       []KeyPolicy // the other budgets the call spends
	AlsoTotals []Totals    // optional room for Totals.Also (see ReserveRequest)
}

// ResetRequest asks a store to reset a user's budget by hand.
type ResetRequest struct {
	Settings Settings // with ResetAt and Version set
	Current  Policy
	Next     Policy
	Audit    AuditEntry
	Now      time.Time
}

// DefaultsRequest asks a store to replace the defaults for new users.
type DefaultsRequest struct {
	Defaults      Defaults
	ExpectVersion int64
	Audit         AuditEntry
}

// TemplateRequest asks a store to save or delete a template.
type TemplateRequest struct {
	Template      Template
	ExpectVersion int64
	Audit         AuditEntry
}

// UsageRow is one recorded usage as a store keeps it.
type UsageRow struct {
	ID           string
	UserID       string
	HoldID       string // empty for Record
	Provider     string
	Model        string
	InputTokens  int64
	OutputTokens int64
	Cost         Nanos
	At           time.Time
}

// UsageGroup is the usage of one provider and model summed over a range.
type UsageGroup struct {
	Provider     string
	Model        string
	Cost         Nanos
	Requests     int64
	InputTokens  int64
	OutputTokens int64
}

// Account is a user's settings with the counters a store holds for them.
type Account struct {
	Settings Settings
	Totals   Totals
}

// HistoryQuery selects a page of one user's usage history.
type HistoryQuery struct {
	UserID   string
	From, To time.Time // zero: unbounded
	Cursor   string
	Limit    int
}

// UsageCursor is a position in a user's history: the time (Unix
// nanoseconds) and insertion number of the last row a page returned. The
// stores in this module use it as their History cursor; a store may define
// its own, as cursors are opaque to callers.
type UsageCursor struct {
	At  int64
	Seq int64
}

// String encodes the cursor as "<at>.<seq>".
func (c UsageCursor) String() string {
	return strconv.FormatInt(c.At, 10) + "." + strconv.FormatInt(c.Seq, 10)
}

// ParseUsageCursor decodes a cursor String made; anything else is an error
// wrapping ErrInvalid.
func ParseUsageCursor(s string) (UsageCursor, error) {
	a, b, ok := strings.Cut(s, ".")
	at, err1 := strconv.ParseInt(a, 10, 64)
	seq, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return UsageCursor{}, &ValidationError{Field: "cursor", Reason: "not a cursor this query returned"}
	}
	return UsageCursor{at, seq}, nil
}

// Bounds returns q's range for a store that keeps times as Unix
// nanoseconds: From and To (the widest when unset), and the cursor the page
// continues before (the greatest when q.Cursor is empty). An invalid cursor
// is an error wrapping ErrInvalid.
func (q HistoryQuery) Bounds() (from, to int64, before UsageCursor, err error) {
	from, to = math.MinInt64, math.MaxInt64
	if !q.From.IsZero() {
		from = q.From.UnixNano()
	}
	if !q.To.IsZero() {
		to = q.To.UnixNano()
	}
	before = UsageCursor{math.MaxInt64, math.MaxInt64}
	if q.Cursor != "" {
		before, err = ParseUsageCursor(q.Cursor)
	}
	return from, to, before, err
}

// HistoryPage is a page of usage, newest first.
type HistoryPage struct {
	Rows []UsageRow
	Next string
}

// BreakdownQuery selects one user's usage in [From, To).
type BreakdownQuery struct {
	UserID   string
	From, To time.Time
}

// AccountsQuery selects a page of accounts.
type AccountsQuery struct {
	// Kind is the kind of holder listed: users when empty or UserScope,
	// else teams or orgs (their Settings.UserID is their Scope.Key).
	Kind  ScopeKind
	After string
	Limit int
	Now   time.Time
}

// AuditQuery selects a page of the audit log.
type AuditQuery struct {
	UserID string
	Type   AuditType // empty: every type
	Before int64
	Limit  int
}

// BeforeID returns the bound entry IDs must stay below: q.Before, or, when
// it is zero or negative (the first page), the largest int64.
func (q AuditQuery) BeforeID() int64 {
	if q.Before <= 0 {
		return math.MaxInt64
	}
	return q.Before
}
