// Package storetest is the conformance suite for budget.Store
// implementations: the executable form of the Store contract.
//
// A store package runs it from its tests:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(tb testing.TB) budget.Store {
//			s := mystore.New(...)
//			tb.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Every case gets a fresh, empty store from newStore and runs in parallel
// with the others. Most cases drive the store through budget.Manager, with
// an injected clock and no sleeps, and check the promises the library
// makes: no overspend under concurrency, exact money, idempotent usage,
// periods and rollovers, resets that keep history, alerts exactly once,
// permissions, defaults, and the queries. The cases of templates and of the
// audit log's filters and bulk fields (templates.go, audit.go) call the
// store directly, as the Store contract words them.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/shopspring/decimal"
)

// Run runs the conformance suite against stores made by newStore, which
// must return a new, empty store each time it is called and arrange for it
// to be closed when tb ends.
func Run(t *testing.T, newStore func(testing.TB) budget.Store) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			makers.Store(s, newStore) // for cases that need a second store
			t.Cleanup(func() { makers.Delete(s) })
			c.run(t, s)
		})
	}
	t.Run("TwoManagers", func(t *testing.T) {
		t.Parallel()
		testTwoManagers(t, newStore(t))
	})
}

var cases = []struct {
	name string
	run  func(*testing.T, budget.Store)
}{
	{"ReserveConcurrentNoOverspend", testReserveConcurrent},
	{"FirstUseConcurrent", testFirstUseConcurrent},
	{"SettleBelowEstimate", testSettleBelow},
	{"SettleAboveEstimate", testSettleAbove},
	{"SettleTwice", testSettleTwice},
	{"SettleAfterRelease", testSettleAfterRelease},
	{"StoreHoldStates", testStoreHoldStates},
	{"HoldExpiry", testHoldExpiry},
	{"ExtendKeepsHoldCounting", testExtendKeepsCounting},
	{"ExtendNeverShortens", testExtendNeverShortens},
	{"ExtendClosed", testExtendClosed},
	{"ExtendExpired", testExtendExpired},
	{"ExtendUnknown", testExtendUnknown},
	{"ExtendRefusedChangesNothing", testExtendRefused},
	{"ExtendRunsTheUsualSteps", testExtendSteps},
	{"ExtendSettleConcurrent", testExtendSettleConcurrent},
	{"RecordIdempotent", testRecordIdempotent},
	{"SettleDuplicateUsageID", testSettleDuplicateID},
	{"ExactMoney", testExactMoney},
	{"Unenforced", testUnenforced},
	{"DailyRolloverInTimezone", testDailyRollover},
	{"RolloverAuditedOnce", testRolloverOnce},
	{"PeriodChangeCountsWindow", testPeriodChange},
	{"TimezoneChange", testTimezoneChange},
	{"ManualReset", testManualReset},
	{"Alerts", testAlerts},
	{"AlertsConcurrent", testAlertsConcurrent},
	{"Permissions", testPermissions},
	{"Defaults", testDefaults},
	{"SettingsChangeBetweenReserveAndSettle", testSettingsChangeMidCall},
	{"StaleIfVersion", testStaleIfVersion},
	{"History", testHistory},
	{"Breakdown", testBreakdown},
	{"ListUsers", testListUsers},
	{"AuditLog", testAuditLog},
	{"AuditFilter", testAuditFilter},
	{"AuditBulkFields", testAuditBulkFields},
	{"Templates", testTemplates},
	{"TemplateOrder", testTemplateOrder},
	{"TemplatesConcurrent", testTemplatesConcurrent},
	{"ResultsAreCopies", testCopies},
	{"Closed", testClosed},
	{"LateResetAndUpdate", testLateResetAndUpdate},
	{"ScopesAllOrNothing", testScopesAllOrNothing},
	{"ScopesAlsoTotals", testScopesAlsoTotals},
	{"ScopesSettleRelease", testScopesSettleRelease},
	{"ScopesRefusalsChangeNothing", testScopesRefusalsChangeNothing},
	{"ScopesExpiry", testScopesExpiry},
	{"ScopesRollover", testScopesRollover},
	{"ScopesConcurrent", testScopesConcurrent},
	{"ScopesSettingsStored", testScopesSettingsStored},
	{"TeamBindsConcurrent", testTeamBindsConcurrent},
	{"OwnAndTeamBothBind", testOwnAndTeamBothBind},
	{"ModelCapPools", testModelCapPools},
	{"MembershipChangeWithHolds", testMembershipChangeWithHolds},
	{"TeamRollsOverOnItsOwn", testTeamRollsOverOnItsOwn},
	{"ScopeBadInput", testScopeBadInput},
	{"TeamAlerts", testTeamAlerts},
	{"TeamQueries", testTeamQueries},
}

var (
	ctx   = context.Background()
	admin = budget.Principal{UserID: "root", Admin: true}
	// start is a Thursday, 10:00 UTC.
	start = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
)

// Clock is a settable clock for Options.Now.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock reading t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func amt(s string) decimal.Decimal { return budget.MustAmount(s) }

func newManager(s budget.Store, c *Clock, opts budget.Options) *budget.Manager {
	opts.Now = c.Now
	return budget.NewManager(s, opts)
}

// configure sets a user's plan as an admin.
func configure(t testing.TB, m *budget.Manager, user string, u budget.SettingsUpdate) budget.Settings {
	t.Helper()
	s, err := m.UpdateSettings(ctx, admin, user, u)
	if err != nil {
		t.Fatalf("configure %s: %v", user, err)
	}
	return s
}

func limit(s string) budget.SettingsUpdate {
	d := amt(s)
	return budget.SettingsUpdate{Limit: &d}
}

func status(t testing.TB, m *budget.Manager, user string) budget.Status {
	t.Helper()
	st, err := m.Status(ctx, user)
	if err != nil {
		t.Fatalf("status %s: %v", user, err)
	}
	return st
}

func record(t testing.TB, m *budget.Manager, user, id, cost string) budget.Status {
	t.Helper()
	st, err := m.Record(ctx, user, budget.Usage{ID: id, Provider: "openai", Model: "gpt-4o", Cost: amt(cost)})
	if err != nil {
		t.Fatalf("record %s %s: %v", user, cost, err)
	}
	return st
}

func reserve(t testing.TB, m *budget.Manager, user, est string) *budget.Reservation {
	t.Helper()
	r, err := m.Reserve(ctx, user, amt(est))
	if err != nil {
		t.Fatalf("reserve %s %s: %v", user, est, err)
	}
	return r
}

func wantMoney(t testing.TB, what string, got decimal.Decimal, want string) {
	t.Helper()
	if !got.Equal(amt(want)) {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}

func wantTotals(t testing.TB, st budget.Status, spent, reserved string) {
	t.Helper()
	wantMoney(t, "spent", st.Spent, spent)
	wantMoney(t, "reserved", st.Reserved, reserved)
}

func historyLen(t testing.TB, m *budget.Manager, user string) int {
	t.Helper()
	n, cursor := 0, ""
	for {
		p, err := m.History(ctx, budget.UsageQuery{UserID: user, Cursor: cursor, Limit: budget.MaxPageSize})
		if err != nil {
			t.Fatalf("history %s: %v", user, err)
		}
		n += len(p.Records)
		if p.Next == "" {
			return n
		}
		cursor = p.Next
	}
}

func auditOf(t testing.TB, m *budget.Manager, user string) []budget.AuditEntry {
	t.Helper()
	p, err := m.AuditLog(ctx, admin, budget.AuditLogQuery{UserID: user, Limit: budget.MaxPageSize})
	if err != nil {
		t.Fatalf("audit %s: %v", user, err)
	}
	return p.Entries
}

func countAudit(es []budget.AuditEntry, typ budget.AuditType) int {
	n := 0
	for _, e := range es {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// parallel runs f(i) for i in [0, n) on n goroutines and returns their
// errors, for the caller to check on the test goroutine.
func parallel(n int, f func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			errs[i] = f(i)
		}()
	}
	close(gate)
	wg.Wait()
	return errs
}

// succeeded counts the nil errors among errs, and fails t at the first one
// that is not refusal (matched with errors.Is).
func succeeded(t *testing.T, errs []error, refusal error) int {
	t.Helper()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, refusal):
			t.Fatalf("%v, want nil or %v", err, refusal)
		}
	}
	return ok
}

func testReserveConcurrent(t *testing.T, s budget.Store) {
	c := NewClock(start)
	m := newManager(s, c, budget.Options{})
	configure(t, m, "alice", limit("10"))
	var mu sync.Mutex
	var held []*budget.Reservation
	errs := parallel(200, func(int) error {
		r, err := m.Reserve(ctx, "alice", amt("0.10"))
		if err == nil {
			mu.Lock()
			held = append(held, r)
			mu.Unlock()
		}
		return err
	})
	refused := 0
	for _, err := range errs {
		if err == nil {
			continue
		}
		refused++
		var le *budget.LimitError
		if !errors.Is(err, budget.ErrBudgetExceeded) || !errors.As(err, &le) {
			t.Fatalf("refusal is %v, want ErrBudgetExceeded with *LimitError", err)
		}
		wantMoney(t, "LimitError.Limit", le.Limit, "10")
		wantMoney(t, "LimitError.Requested", le.Requested, "0.10")
		wantMoney(t, "LimitError.Spent", le.Spent, "0")
		wantMoney(t, "LimitError.Reserved", le.Reserved, "10")
		if want := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC); !le.PeriodEnd.Equal(want) {
			t.Errorf("LimitError.PeriodEnd = %v, want %v", le.PeriodEnd, want)
		}
		if le.UserID != "alice" {
			t.Errorf("LimitError.UserID = %q", le.UserID)
		}
	}
	if len(held) != 100 || refused != 100 {
		t.Fatalf("%d reserves succeeded and %d were refused, want 100 and 100", len(held), refused)
	}
	st := status(t, m, "alice")
	wantTotals(t, st, "0", "10")
	wantMoney(t, "remaining", st.Remaining, "0")
	errs = parallel(len(held), func(i int) error {
		_, err := held[i].Settle(ctx, budget.Usage{Cost: amt("0.10")})
		return err
	})
	for _, err := range errs {
		if err != nil {
			t.Fatalf("settle: %v", err)
		}
	}
	wantTotals(t, status(t, m, "alice"), "10", "0")
	if n := historyLen(t, m, "alice"); n != 100 {
		t.Errorf("history has %d rows, want 100", n)
	}
}

func testFirstUseConcurrent(t *testing.T, s budget.Store) {
	c := NewClock(start)
	plan := budget.DefaultUserPlan()
	plan.Limit = amt("1")
	m := newManager(s, c, budget.Options{UserPlan: &plan})
	errs := parallel(50, func(int) error {
		_, err := m.Reserve(ctx, "newcomer", amt("0.10"))
		return err
	})
	ok := succeeded(t, errs, budget.ErrBudgetExceeded)
	if ok != 10 {
		t.Fatalf("%d first reserves succeeded, want 10", ok)
	}
	set, err := m.Settings(ctx, "newcomer")
	if err != nil {
		t.Fatal(err)
	}
	if set.Version != 1 || !set.Limit.Equal(amt("1")) {
		t.Errorf("settings version %d limit %s, want one creation at limit 1", set.Version, set.Limit)
	}
	page, err := m.ListUsers(ctx, admin, budget.UserQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Users) != 1 {
		t.Errorf("%d users listed, want 1", len(page.Users))
	}
}

func testSettleBelow(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	configure(t, m, "u", limit("10"))
	r := reserve(t, m, "u", "5")
	wantTotals(t, status(t, m, "u"), "0", "5")
	st, err := r.Settle(ctx, budget.Usage{Provider: "openai", Model: "gpt-4o", InputTokens: 812, OutputTokens: 95, Cost: amt("2")})
	if err != nil {
		t.Fatal(err)
	}
	wantTotals(t, st, "2", "0")
	wantMoney(t, "remaining", st.Remaining, "8")
	wantTotals(t, status(t, m, "u"), "2", "0")
}

func testSettleAbove(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	configure(t, m, "u", limit("10"))
	r := reserve(t, m, "u", "1")
	st, err := r.Settle(ctx, budget.Usage{Cost: amt("12")})
	if err != nil {
		t.Fatal(err)
	}
	wantTotals(t, st, "12", "0")
	wantMoney(t, "remaining", st.Remaining, "0")
	if st.Level != budget.Red {
		t.Errorf("level %v, want red", st.Level)
	}
	if _, err := m.Reserve(ctx, "u", amt("0")); !errors.Is(err, budget.ErrBudgetExceeded) {
		t.Errorf("reserve over the limit: %v, want ErrBudgetExceeded", err)
	}
}

func testSettleTwice(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	configure(t, m, "u", limit("10"))
	r := reserve(t, m, "u", "1")
	if _, err := r.Settle(ctx, budget.Usage{Cost: amt("1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Settle(ctx, budget.Usage{Cost: amt("1")}); !errors.Is(err, budget.ErrReservationClosed) {
		t.Errorf("second settle: %v, want ErrReservationClosed", err)
	}
	if err := r.Release(ctx); err != nil {
		t.Errorf("release after settle: %v, want nil", err)
	}
	wantTotals(t, status(t, m, "u"), "1", "0")
	if n := historyLen(t, m, "u"); n != 1 {
		t.Errorf("history has %d rows, want 1", n)
	}
}

func testSettleAfterRelease(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	configure(t, m, "u", limit("10"))
	r := reserve(t, m, "u", "4")
	if err := r.Release(ctx); err != nil {
		t.Fatal(err)
	}
	wantTotals(t, status(t, m, "u"), "0", "0")
	if _, err := r.Settle(ctx, budget.Usage{Cost: amt("1")}); !errors.Is(err, budget.ErrReservationClosed) {
		t.Errorf("settle after release: %v, want ErrReservationClosed", err)
	}
	if err := r.Release(ctx); err != nil {
		t.Errorf("second release: %v", err)
	}
	wantTotals(t, status(t, m, "u"), "0", "0")
}

// policyOf computes the policy a Manager would send for a monthly UTC user
// with default thresholds, for calling the store directly.
func policyOf(set budget.Settings, now time.Time) budget.Policy {
	l, _ := budget.ToNanos(set.Limit)
	return budget.Policy{
		Version: set.Version, Limit: l, Enforce: set.Enforce,
		Window: budget.PeriodWindow(budget.Monthly, 0, time.Time{}, time.UTC, now),
		Levels: [3]budget.Nanos{l * 3 / 4, l * 9 / 10, l},
	}
}

// testStoreHoldStates checks the store's own guarantees for a retried call
// whose first reply was lost: the hold is closed exactly once.
func testStoreHoldStates(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	set := configure(t, m, "u", limit("10"))
	p := policyOf(set, start)
	hold := func(id string) {
		t.Helper()
		if _, ok, err := s.Reserve(ctx, budget.ReserveRequest{UserID: "u", HoldID: id, Amount: 1e9, Policy: p, Now: start, ExpiresAt: start.Add(time.Hour)}); err != nil || !ok {
			t.Fatalf("store reserve %s: %v %v", id, ok, err)
		}
	}
	settle := func(id, usage string) error {
		_, err := s.Settle(ctx, budget.SettleRequest{HoldID: id, Policy: p, Now: start,
			Usage: budget.UsageRow{ID: usage, UserID: "u", HoldID: id, Cost: 2e9, At: start}})
		return err
	}
	release := func(id string) error {
		_, err := s.Release(ctx, budget.ReleaseRequest{UserID: "u", HoldID: id, Policy: p, Now: start})
		return err
	}
	hold("a")
	hold("b")
	if err := settle("a", "a"); err != nil {
		t.Fatal(err)
	}
	if err := settle("a", "a2"); !errors.Is(err, budget.ErrReservationClosed) {
		t.Errorf("store settle twice: %v, want ErrReservationClosed", err)
	}
	if err := release("a"); !errors.Is(err, budget.ErrReservationClosed) {
		t.Errorf("store release after settle: %v, want ErrReservationClosed", err)
	}
	if err := release("b"); err != nil {
		t.Fatal(err)
	}
	if err := settle("b", "b"); !errors.Is(err, budget.ErrReservationClosed) {
		t.Errorf("store settle after release: %v, want ErrReservationClosed", err)
	}
	if err := settle("nope", "n"); !errors.Is(err, budget.ErrNotFound) {
		t.Errorf("store settle of unknown hold: %v, want ErrNotFound", err)
	}
	stale := p
	stale.Version++
	if _, err := s.Totals(ctx, budget.TotalsRequest{UserID: "u", Policy: stale, Now: start}); !errors.Is(err, budget.ErrConflict) {
		t.Errorf("store totals with a stale version: %v, want ErrConflict", err)
	}
	if _, _, err := s.Reserve(ctx, budget.ReserveRequest{UserID: "ghost", HoldID: "g", Amount: 1, Policy: p, Now: start, ExpiresAt: start.Add(time.Hour)}); !errors.Is(err, budget.ErrNotFound) {
		t.Errorf("store reserve for a user without settings: %v, want ErrNotFound", err)
	}
	tot, err := s.Totals(ctx, budget.TotalsRequest{UserID: "u", Policy: p, Now: start})
	if err != nil {
		t.Fatal(err)
	}
	if tot.Spent != 2e9 || tot.Held != 0 {
		t.Errorf("store totals spent %v held %v, want 2 and 0", tot.Spent, tot.Held)
	}
}

func testHoldExpiry(t *testing.T, s budget.Store) {
	c := NewClock(start)
	m := newManager(s, c, budget.Options{})
	configure(t, m, "u", limit("10"))
	first := reserve(t, m, "u", "6")
	if _, err := m.Reserve(ctx, "u", amt("6")); !errors.Is(err, budget.ErrBudgetExceeded) {
		t.Fatalf("second reserve while the first is live: %v", err)
	}
	c.Advance(10*time.Minute - time.Nanosecond)
	wantTotals(t, status(t, m, "u"), "0", "6")
	c.Advance(time.Nanosecond) // exactly the TTL: the hold has expired
	wantTotals(t, status(t, m, "u"), "0", "0")
	second := reserve(t, m, "u", "6")
	// A late settle still records the spend.
	st, err := first.Settle(ctx, budget.Usage{Cost: amt("6")})
	if err != nil {
		t.Fatalf("late settle: %v", err)
	}
	wantTotals(t, st, "6", "6")
	if err := second.Release(ctx); err != nil {
		t.Fatal(err)
	}
	wantTotals(t, status(t, m, "u"), "6", "0")
}

func testRecordIdempotent(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	record(t, m, "u", "req-7f3a", "1.25")
	before := status(t, m, "u")
	if _, err := m.Record(ctx, "u", budget.Usage{ID: "req-7f3a", Cost: amt("9")}); !errors.Is(err, budget.ErrDuplicate) {
		t.Fatalf("second record: %v, want ErrDuplicate", err)
	}
	wantTotals(t, status(t, m, "u"), before.Spent.String(), "0")
	errs := parallel(20, func(int) error {
		_, err := m.Record(ctx, "u", budget.Usage{ID: "req-race", Cost: amt("1")})
		return err
	})
	ok := succeeded(t, errs, budget.ErrDuplicate)
	if ok != 1 {
		t.Fatalf("%d concurrent records of one ID succeeded, want 1", ok)
	}
	wantTotals(t, status(t, m, "u"), "2.25", "0")
	// IDs are per user.
	record(t, m, "other", "req-7f3a", "1")
	if n := historyLen(t, m, "u"); n != 2 {
		t.Errorf("history has %d rows, want 2", n)
	}
}

func testSettleDuplicateID(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	configure(t, m, "u", limit("10"))
	record(t, m, "u", "x", "1")
	r := reserve(t, m, "u", "2")
	if _, err := r.Settle(ctx, budget.Usage{ID: "x", Cost: amt("2")}); !errors.Is(err, budget.ErrDuplicate) {
		t.Fatalf("settle with a recorded usage ID: %v, want ErrDuplicate", err)
	}
	wantTotals(t, status(t, m, "u"), "1", "2")
	if err := r.Release(ctx); err != nil {
		t.Fatal(err)
	}
	wantTotals(t, status(t, m, "u"), "1", "0")
}

func testExactMoney(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	for i := range 10 {
		record(t, m, "u", fmt.Sprint("tenth-", i), "0.1")
	}
	st := status(t, m, "u")
	if st.Spent.String() != "1" {
		t.Errorf("ten records of 0.1 = %s, want exactly 1", st.Spent)
	}
	record(t, m, "u", "nano", "0.000000001")
	wantMoney(t, "spent", status(t, m, "u").Spent, "1.000000001")
	for _, bad := range []decimal.Decimal{decimal.RequireFromString("-1"), decimal.RequireFromString("0.0000000001"), decimal.New(1, 30)} {
		if _, err := m.Record(ctx, "u", budget.Usage{Cost: bad}); !errors.Is(err, budget.ErrInvalidAmount) {
			t.Errorf("record %s: %v, want ErrInvalidAmount", bad, err)
		}
		if _, err := m.Reserve(ctx, "u", bad); !errors.Is(err, budget.ErrInvalidAmount) {
			t.Errorf("reserve %s: %v, want ErrInvalidAmount", bad, err)
		}
	}
	wantTotals(t, status(t, m, "u"), "1.000000001", "0")
	if n := historyLen(t, m, "u"); n != 11 {
		t.Errorf("history has %d rows, want 11", n)
	}
}

func testUnenforced(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	off := false
	configure(t, m, "u", budget.SettingsUpdate{Limit: ptr(amt("1")), Enforce: &off})
	r := reserve(t, m, "u", "5")
	st, err := r.Settle(ctx, budget.Usage{Cost: amt("5")})
	if err != nil {
		t.Fatal(err)
	}
	if st.Enforced || st.Level != budget.Red {
		t.Errorf("enforced %v level %v, want false and red", st.Enforced, st.Level)
	}
	wantTotals(t, st, "5", "0")
}

func ptr[T any](v T) *T { return &v }

func testDailyRollover(t *testing.T, s budget.Store) {
	ny, _ := time.LoadLocation("America/New_York")
	c := NewClock(time.Date(2026, 11, 26, 23, 30, 0, 0, ny))
	m := newManager(s, c, budget.Options{})
	configure(t, m, "u", budget.SettingsUpdate{Limit: ptr(amt("10")), Period: ptr(budget.Daily), Timezone: ptr("America/New_York")})
	st := record(t, m, "u", "late", "4")
	if want := time.Date(2026, 11, 26, 0, 0, 0, 0, ny); !st.PeriodStart.Equal(want) {
		t.Errorf("period start %v, want %v", st.PeriodStart, want)
	}
	c.Set(time.Date(2026, 11, 27, 0, 30, 0, 0, ny))
	st = status(t, m, "u")
	wantTotals(t, st, "0", "0")
	if want := time.Date(2026, 11, 27, 0, 0, 0, 0, ny); !st.PeriodStart.Equal(want) || !st.PeriodEnd.Equal(want.AddDate(0, 0, 1)) {
		t.Errorf("period [%v, %v), want the local day of %v", st.PeriodStart, st.PeriodEnd, want)
	}
	if n := historyLen(t, m, "u"); n != 1 {
		t.Errorf("rollover left %d history rows, want 1", n)
	}
	es := auditOf(t, m, "u")
	if countAudit(es, budget.AuditAutomaticReset) != 1 {
		t.Fatalf("audit has %d automatic resets, want 1: %+v", countAudit(es, budget.AuditAutomaticReset), es)
	}
	e := es[0]
	if e.Type != budget.AuditAutomaticReset || e.Actor != budget.SystemActor || !e.PreviousSpent.Equal(amt("4")) ||
		!e.PreviousLimit.Equal(amt("10")) || !e.NewLimit.Equal(amt("10")) || !e.At.Equal(c.Now()) ||
		!e.PeriodStart.Equal(time.Date(2026, 11, 26, 0, 0, 0, 0, ny)) || !e.PeriodEnd.Equal(time.Date(2026, 11, 27, 0, 0, 0, 0, ny)) {
		t.Errorf("rollover entry %+v", e)
	}
}

func testRolloverOnce(t *testing.T, s budget.Store) {
	c := NewClock(start)
	m1 := newManager(s, c, budget.Options{})
	m2 := newManager(s, c, budget.Options{})
	configure(t, m1, "u", budget.SettingsUpdate{Period: ptr(budget.Daily)})
	record(t, m1, "u", "", "1")
	status(t, m2, "u")
	c.Advance(24 * time.Hour)
	errs := parallel(40, func(i int) error {
		m := m1
		if i%2 == 1 {
			m = m2
		}
		if i%4 < 2 {
			_, err := m.Status(ctx, "u")
			return err
		}
		r, err := m.Reserve(ctx, "u", amt("0.01"))
		if err != nil {
			return err
		}
		return r.Release(ctx)
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := countAudit(auditOf(t, m1, "u"), budget.AuditAutomaticReset); n != 1 {
		t.Errorf("%d automatic resets audited for one boundary, want 1", n)
	}
}

func testPeriodChange(t *testing.T, s budget.Store) {
	c := NewClock(time.Date(2026, 10, 30, 12, 0, 0, 0, time.UTC))
	m := newManager(s, c, budget.Options{})
	configure(t, m, "u", limit("100"))
	record(t, m, "u", "oct", "1")
	for _, u := range []struct {
		day  int
		cost string
	}{{20, "2"}, {23, "4"}, {24, "8"}, {25, "16"}} { // Mon 23 .. Wed 25
		c.Set(time.Date(2026, 11, u.day, 12, 0, 0, 0, time.UTC))
		record(t, m, "u", fmt.Sprint("nov-", u.day), u.cost)
	}
	c.Set(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)) // Thursday
	wantMoney(t, "monthly spent", status(t, m, "u").Spent, "30")
	configure(t, m, "u", budget.SettingsUpdate{Period: ptr(budget.Weekly)})
	st := status(t, m, "u")
	wantMoney(t, "weekly spent", st.Spent, "28")
	if want := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC); !st.PeriodStart.Equal(want) {
		t.Errorf("weekly period starts %v, want %v", st.PeriodStart, want)
	}
	configure(t, m, "u", budget.SettingsUpdate{Period: ptr(budget.Custom), CustomDays: ptr(2)})
	wantMoney(t, "custom 2-day spent", status(t, m, "u").Spent, "0")
	configure(t, m, "u", budget.SettingsUpdate{Period: ptr(budget.Monthly)})
	wantMoney(t, "monthly spent again", status(t, m, "u").Spent, "30")
}

func testTimezoneChange(t *testing.T, s budget.Store) {
	c := NewClock(time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC))
	m := newManager(s, c, budget.Options{})
	configure(t, m, "u", budget.SettingsUpdate{Period: ptr(budget.Daily)})
	record(t, m, "u", "early", "3")
	c.Set(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	record(t, m, "u", "later", "5")
	wantMoney(t, "UTC day spent", status(t, m, "u").Spent, "8")
	// In Los Angeles (UTC−8) the day began at 08:00 UTC: the 02:00 usage
	// belongs to the previous local day.
	configure(t, m, "u", budget.SettingsUpdate{Timezone: ptr("America/Los_Angeles")})
	st := status(t, m, "u")
	wantMoney(t, "Los Angeles day spent", st.Spent, "5")
	if want := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC); !st.PeriodStart.Equal(want) {
		t.Errorf("period starts %v, want %v", st.PeriodStart, want)
	}
	if _, err := m.UpdateSettings(ctx, admin, "u", budget.SettingsUpdate{Timezone: ptr("Mars/Olympus")}); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("unknown timezone: %v, want ErrInvalid", err)
	}
}

func testManualReset(t *testing.T, s budget.Store) {
	c := NewClock(start)
	m := newManager(s, c, budget.Options{})
	configure(t, m, "u", limit("10"))
	record(t, m, "u", "a", "7")
	// A user without "can reset" is refused, and nothing changes.
	if _, err := m.Reset(ctx, budget.Principal{UserID: "u"}, "u", budget.ResetOptions{Reason: "mine"}); !errors.Is(err, budget.ErrForbidden) {
		t.Fatalf("reset without permission: %v, want ErrForbidden", err)
	}
	wantMoney(t, "spent after refused reset", status(t, m, "u").Spent, "7")
	c.Advance(time.Hour)
	e, err := m.Reset(ctx, admin, "u", budget.ResetOptions{Reason: "new billing cycle"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Type != budget.AuditManualReset || e.Actor != "root" || !e.ActorAdmin || e.Reason != "new billing cycle" ||
		!e.PreviousSpent.Equal(amt("7")) || !e.PreviousLimit.Equal(amt("10")) || !e.NewLimit.Equal(amt("10")) ||
		!e.At.Equal(c.Now()) || e.ID == 0 {
		t.Errorf("reset entry %+v", e)
	}
	st := status(t, m, "u")
	wantTotals(t, st, "0", "0")
	if !st.PeriodStart.Equal(c.Now()) || !st.PeriodEnd.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("period after reset [%v, %v), want [now, Dec 1)", st.PeriodStart, st.PeriodEnd)
	}
	if n := historyLen(t, m, "u"); n != 1 {
		t.Errorf("reset left %d history rows, want 1", n)
	}
	c.Advance(time.Minute)
	record(t, m, "u", "b", "2")
	wantMoney(t, "spent after reset", status(t, m, "u").Spent, "2")
	// At the regular boundary the reset period rolls over as usual.
	c.Set(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	wantMoney(t, "spent in December", status(t, m, "u").Spent, "0")
	es := auditOf(t, m, "u")
	if countAudit(es, budget.AuditManualReset) != 1 || countAudit(es, budget.AuditAutomaticReset) != 1 {
		t.Fatalf("audit %+v, want one manual and one automatic reset", es)
	}
	if !es[0].PreviousSpent.Equal(amt("2")) {
		t.Errorf("rollover after reset recorded previous spent %s, want 2", es[0].PreviousSpent)
	}
}

// alertLog collects alerts; inside the callback it reads the user's status,
// which would deadlock if the store still held the user's lock, and checks
// that the spend that crossed the level is already visible.
type alertLog struct {
	mu     sync.Mutex
	m      *budget.Manager
	alerts []budget.Alert
	errs   []error
}

func (l *alertLog) on(a budget.Alert) {
	st, err := l.m.Status(ctx, a.UserID)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.alerts = append(l.alerts, a)
	if err != nil {
		l.errs = append(l.errs, err)
	} else if st.Spent.LessThan(a.Status.Spent) && st.PeriodStart.Equal(a.Status.PeriodStart) {
		l.errs = append(l.errs, fmt.Errorf("alert %v for spend %s, but status shows %s", a.Level, a.Status.Spent, st.Spent))
	}
}

func (l *alertLog) levels() []budget.Level {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []budget.Level
	for _, a := range l.alerts {
		out = append(out, a.Level)
	}
	return out
}

func (l *alertLog) check(t *testing.T, want ...budget.Level) {
	t.Helper()
	got := l.levels()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("alerts %v, want %v", got, want)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, err := range l.errs {
		t.Error(err)
	}
}

func testAlerts(t *testing.T, s budget.Store) {
	c := NewClock(start)
	log := &alertLog{}
	m := newManager(s, c, budget.Options{OnAlert: log.on})
	log.m = m
	configure(t, m, "u", limit("10"))
	record(t, m, "u", "", "7")
	log.check(t)
	record(t, m, "u", "", "0.5") // 75%
	log.check(t, budget.Yellow)
	record(t, m, "u", "", "1") // 85%
	log.check(t, budget.Yellow)
	r := reserve(t, m, "u", "1")
	if _, err := r.Settle(ctx, budget.Usage{Cost: amt("0.5")}); err != nil { // 90%
		t.Fatal(err)
	}
	log.check(t, budget.Yellow, budget.Orange)
	record(t, m, "u", "", "1") // 100%
	record(t, m, "u", "", "1") // 110%
	log.check(t, budget.Yellow, budget.Orange, budget.Red)
	// A new period alerts again; a jump crosses every level at once.
	c.Set(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC))
	record(t, m, "u", "", "10")
	log.check(t, budget.Yellow, budget.Orange, budget.Red, budget.Yellow, budget.Orange, budget.Red)
	// So does a reset. (A usage at the very instant of a reset counts in
	// the new period, which starts at that instant, so move on first.)
	c.Advance(time.Second)
	if _, err := m.Reset(ctx, admin, "u", budget.ResetOptions{}); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Second)
	record(t, m, "u", "", "8")
	log.check(t, budget.Yellow, budget.Orange, budget.Red, budget.Yellow, budget.Orange, budget.Red, budget.Yellow)
	// Lowering the limit raises the level without new spend.
	configure(t, m, "u", limit("8.5"))
	log.check(t, budget.Yellow, budget.Orange, budget.Red, budget.Yellow, budget.Orange, budget.Red, budget.Yellow, budget.Orange)
	// A zero limit is red as soon as anything is spent.
	configure(t, m, "z", limit("0"))
	if st := status(t, m, "z"); st.Level != budget.Green {
		t.Errorf("zero limit, nothing spent: %v, want green", st.Level)
	}
	if st := record(t, m, "z", "", "0.000000001"); st.Level != budget.Red {
		t.Errorf("zero limit after spend: %v, want red", st.Level)
	}
}

func testAlertsConcurrent(t *testing.T, s budget.Store) {
	log := &alertLog{}
	m := newManager(s, NewClock(start), budget.Options{OnAlert: log.on})
	log.m = m
	configure(t, m, "u", limit("10"))
	errs := parallel(120, func(int) error {
		_, err := m.Record(ctx, "u", budget.Usage{Cost: amt("0.1")})
		return err
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Callbacks run on the goroutines that crossed each level, in any
	// order; each level must come exactly once.
	log.mu.Lock()
	slices.SortFunc(log.alerts, func(a, b budget.Alert) int { return int(a.Level) - int(b.Level) })
	log.mu.Unlock()
	log.check(t, budget.Yellow, budget.Orange, budget.Red)
}

func testPermissions(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	user := budget.Principal{UserID: "u"}
	wantAudits := 0
	before, err := m.Settings(ctx, "u") // a regular user: visible, view-only
	if err != nil {
		t.Fatal(err)
	}
	unchanged := func(what string) {
		t.Helper()
		now, err := m.Settings(ctx, "u")
		if err != nil {
			t.Fatal(err)
		}
		if now.Version != before.Version || !now.Limit.Equal(before.Limit) || now.Permissions != before.Permissions || now.AdminNotes != before.AdminNotes {
			t.Errorf("%s changed the settings: %+v", what, now)
		}
		if n := countAudit(auditOf(t, m, "u"), budget.AuditSettings); n != wantAudits {
			t.Errorf("%s: %d settings entries audited, want %d", what, n, wantAudits)
		}
	}
	refused := []struct {
		name string
		p    budget.Principal
		u    budget.SettingsUpdate
	}{
		{"limit without can-modify", user, limit("1000")},
		{"enforcement without can-modify", user, budget.SettingsUpdate{Enforce: ptr(false)}},
		{"thresholds without can-modify", user, budget.SettingsUpdate{Yellow: ptr(amt("50"))}},
		{"admin notes", user, budget.SettingsUpdate{AdminNotes: ptr("vip")}},
		{"own permissions", user, budget.SettingsUpdate{CanModify: ptr(true)}},
		{"someone else's budget", budget.Principal{UserID: "v"}, budget.SettingsUpdate{Yellow: ptr(amt("50"))}},
	}
	for _, c := range refused {
		if _, err := m.UpdateSettings(ctx, c.p, "u", c.u); !errors.Is(err, budget.ErrForbidden) {
			t.Errorf("%s: %v, want ErrForbidden", c.name, err)
		}
		unchanged(c.name)
	}
	// An admin grants can-modify; then the user changes their limit and
	// their alert thresholds.
	configure(t, m, "u", budget.SettingsUpdate{CanModify: ptr(true)})
	wantAudits++
	if _, err := m.UpdateSettings(ctx, user, "u", limit("45")); err != nil {
		t.Fatalf("user with can-modify sets limit: %v", err)
	}
	wantAudits++
	if _, err := m.UpdateSettings(ctx, user, "u", budget.SettingsUpdate{Yellow: ptr(amt("50"))}); err != nil {
		t.Fatalf("user with can-modify sets own threshold: %v", err)
	}
	wantAudits++
	// A hidden budget: the user can change nothing, not even thresholds.
	configure(t, m, "u", budget.SettingsUpdate{Visible: ptr(false)})
	wantAudits++
	before, _ = m.Settings(ctx, "u")
	var pe *budget.PermissionError
	if _, err := m.UpdateSettings(ctx, user, "u", budget.SettingsUpdate{Yellow: ptr(amt("60"))}); !errors.As(err, &pe) || !pe.Hidden {
		t.Errorf("threshold change on a hidden budget: %v, want a hidden *PermissionError", err)
	}
	unchanged("change on a hidden budget")
	// Invalid input is refused and changes nothing either.
	for _, u := range []budget.SettingsUpdate{
		{Yellow: ptr(amt("95"))}, // above orange
		{Limit: ptr(decimal.RequireFromString("-5"))},
		{Period: ptr(budget.Period("hourly"))},
		{Period: ptr(budget.Custom), CustomDays: ptr(0)},
	} {
		if _, err := m.UpdateSettings(ctx, admin, "u", u); !errors.Is(err, budget.ErrInvalid) && !errors.Is(err, budget.ErrInvalidAmount) {
			t.Errorf("invalid update %+v: %v, want ErrInvalid", u, err)
		}
		unchanged("invalid update")
	}
	es := auditOf(t, m, "u")
	last := es[0]
	if last.Type != budget.AuditSettings || last.Actor != "root" || last.Before == nil || last.After == nil ||
		last.Before.Visible != true || last.After.Visible != false {
		t.Errorf("last settings entry %+v, want the admin hiding the budget with before and after", last)
	}
}

func testDefaults(t *testing.T, s budget.Store) {
	isAdmin := func(id string) bool { return id == "boss" }
	m := newManager(s, NewClock(start), budget.Options{IsAdmin: isAdmin})
	early, err := m.Settings(ctx, "early")
	if err != nil {
		t.Fatal(err)
	}
	if !early.Limit.Equal(amt("30")) || !early.Visible || early.CanModify || early.CanReset || early.Period != budget.Monthly || !early.Enforce {
		t.Errorf("regular user's defaults %+v, want $30 monthly, visible, view-only", early.Plan)
	}
	boss, err := m.Settings(ctx, "boss")
	if err != nil {
		t.Fatal(err)
	}
	if !boss.Limit.Equal(amt("100")) || !boss.Visible || !boss.CanModify || !boss.CanReset {
		t.Errorf("admin's defaults %+v, want $100 with every permission", boss.Plan)
	}
	if _, err := m.UpdateDefaults(ctx, budget.Principal{UserID: "early"}, limit("5")); !errors.Is(err, budget.ErrForbidden) {
		t.Errorf("UpdateDefaults by a user: %v, want ErrForbidden", err)
	}
	d, err := m.UpdateDefaults(ctx, admin, budget.SettingsUpdate{Limit: ptr(amt("5")), Visible: ptr(false)})
	if err != nil {
		t.Fatal(err)
	}
	if d.Version != 2 || !d.Limit.Equal(amt("5")) { // the built-in defaults are version 1
		t.Errorf("defaults %+v", d)
	}
	late, err := m.Settings(ctx, "late")
	if err != nil {
		t.Fatal(err)
	}
	if !late.Limit.Equal(amt("5")) || late.Visible {
		t.Errorf("new user after the change: limit %s visible %v, want 5 and hidden", late.Limit, late.Visible)
	}
	if again, _ := m.Settings(ctx, "early"); !again.Limit.Equal(amt("30")) {
		t.Errorf("existing user's limit changed to %s", again.Limit)
	}
	// A second Manager on the same store sees the stored defaults.
	m2 := newManager(s, NewClock(start), budget.Options{})
	if got, err := m2.Defaults(ctx); err != nil || !got.Limit.Equal(amt("5")) || got.Version != 2 {
		t.Errorf("defaults from another manager: %+v %v", got, err)
	}
	if _, err := m.UpdateDefaults(ctx, admin, budget.SettingsUpdate{Limit: ptr(amt("6")), IfVersion: 7}); !errors.Is(err, budget.ErrConflict) {
		t.Errorf("stale defaults update: %v, want ErrConflict", err)
	}
	es := auditOf(t, m, "")
	if countAudit(es, budget.AuditDefaults) != 1 {
		t.Fatalf("audit %+v, want one defaults entry", es)
	}
	for _, e := range es {
		if e.Type == budget.AuditDefaults && (e.Actor != "root" || !e.PreviousLimit.Equal(amt("30")) || !e.NewLimit.Equal(amt("5")) || e.After == nil || e.After.Visible) {
			t.Errorf("defaults entry %+v", e)
		}
	}
}

func testSettingsChangeMidCall(t *testing.T, s budget.Store) {
	c := NewClock(start)
	m := newManager(s, c, budget.Options{})
	configure(t, m, "u", limit("10"))
	r := reserve(t, m, "u", "3")
	configure(t, m, "u", limit("20"))
	st, err := r.Settle(ctx, budget.Usage{Cost: amt("2")})
	if err != nil {
		t.Fatalf("settle after a settings change: %v", err)
	}
	wantTotals(t, st, "2", "0")
	wantMoney(t, "limit", st.Limit, "20")
}

func testStaleIfVersion(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	set := configure(t, m, "u", limit("10"))
	configure(t, m, "u", limit("11"))
	if _, err := m.UpdateSettings(ctx, admin, "u", budget.SettingsUpdate{Limit: ptr(amt("12")), IfVersion: set.Version}); !errors.Is(err, budget.ErrConflict) {
		t.Fatalf("update with a stale version: %v, want ErrConflict", err)
	}
	now, _ := m.Settings(ctx, "u")
	if !now.Limit.Equal(amt("11")) {
		t.Errorf("limit %s after a refused update, want 11", now.Limit)
	}
	if _, err := m.UpdateSettings(ctx, admin, "u", budget.SettingsUpdate{Limit: ptr(amt("12")), IfVersion: now.Version}); err != nil {
		t.Errorf("update with the current version: %v", err)
	}
}

func testHistory(t *testing.T, s budget.Store) {
	c := NewClock(start)
	m := newManager(s, c, budget.Options{})
	for i := range 23 {
		record(t, m, "u", fmt.Sprint("r", i), "1")
		if i%5 != 4 { // several rows share an instant
			c.Advance(time.Minute)
		}
	}
	record(t, m, "other", "x", "1")
	var ids []string
	cursor := ""
	for pages := 0; ; pages++ {
		p, err := m.History(ctx, budget.UsageQuery{UserID: "u", Limit: 10, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Records {
			ids = append(ids, r.ID)
		}
		if p.Next == "" {
			if pages != 2 {
				t.Errorf("%d pages, want 3", pages+1)
			}
			break
		}
		cursor = p.Next
	}
	if len(ids) != 23 {
		t.Fatalf("history returned %d rows, want 23: %v", len(ids), ids)
	}
	for i, id := range ids {
		if want := fmt.Sprint("r", 22-i); id != want {
			t.Fatalf("row %d is %s, want %s (newest first): %v", i, id, want, ids)
		}
	}
	// A time range: [start+5m, start+10m) holds rows recorded in those minutes.
	p, err := m.History(ctx, budget.UsageQuery{UserID: "u", From: start.Add(5 * time.Minute), To: start.Add(8 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range p.Records {
		got = append(got, r.ID)
		if r.At.Before(start.Add(5*time.Minute)) || !r.At.Before(start.Add(8*time.Minute)) {
			t.Errorf("row %s at %v outside the range", r.ID, r.At)
		}
	}
	if fmt.Sprint(got) != "[r8 r7 r6]" {
		t.Errorf("range rows %v, want [r8 r7 r6]", got)
	}
	for _, q := range []budget.UsageQuery{
		{UserID: "u", Limit: 501},
		{UserID: "u", Limit: -1},
		{UserID: "u", Cursor: "not-a-cursor"},
		{UserID: "u", From: start, To: start},
		{UserID: ""},
	} {
		if _, err := m.History(ctx, q); !errors.Is(err, budget.ErrInvalid) {
			t.Errorf("history %+v: %v, want ErrInvalid", q, err)
		}
	}
}

func testBreakdown(t *testing.T, s budget.Store) {
	c := NewClock(start)
	m := newManager(s, c, budget.Options{})
	use := func(provider, model, cost string, in, out int64) {
		t.Helper()
		if _, err := m.Record(ctx, "u", budget.Usage{Provider: provider, Model: model, Cost: amt(cost), InputTokens: in, OutputTokens: out}); err != nil {
			t.Fatal(err)
		}
		c.Advance(time.Hour)
	}
	use("openai", "gpt-4o", "1.5", 100, 10)
	use("openai", "gpt-4o", "0.25", 50, 5)
	use("openai", "gpt-4o-mini", "0.01", 10, 1)
	use("anthropic", "claude", "3", 300, 30)
	b, err := m.Breakdown(ctx, "u", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	wantMoney(t, "total", b.Total.Cost, "4.76")
	if b.Total.Requests != 4 || b.Total.InputTokens != 460 || b.Total.OutputTokens != 46 {
		t.Errorf("total %+v", b.Total)
	}
	got := fmt.Sprint(items(b.ByProvider))
	if want := "[anthropic/:3:1 openai/:1.76:3]"; got != want {
		t.Errorf("by provider %s, want %s", got, want)
	}
	got = fmt.Sprint(items(b.ByModel))
	if want := "[anthropic/claude:3:1 openai/gpt-4o:1.75:2 openai/gpt-4o-mini:0.01:1]"; got != want {
		t.Errorf("by model %s, want %s", got, want)
	}
	// A range holding only the first two calls.
	b, err = m.Breakdown(ctx, "u", start, start.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(items(b.ByModel)); got != "[openai/gpt-4o:1.75:2]" {
		t.Errorf("ranged breakdown %s", got)
	}
}

func items(is []budget.BreakdownItem) []string {
	var out []string
	for _, i := range is {
		out = append(out, fmt.Sprintf("%s/%s:%s:%d", i.Provider, i.Model, i.Cost, i.Requests))
	}
	return out
}

func testListUsers(t *testing.T, s budget.Store) {
	c := NewClock(start)
	m := newManager(s, c, budget.Options{})
	spend := map[string]string{"Alice": "1", "bob": "8", "carol": "10", "dave": "0", "alina": "9.5"}
	for u, cost := range spend {
		configure(t, m, u, limit("10"))
		if cost != "0" {
			record(t, m, u, "", cost)
		}
	}
	p, err := m.ListUsers(ctx, admin, budget.UserQuery{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for {
		for _, u := range p.Users {
			names = append(names, u.Settings.UserID)
		}
		if p.Next == "" {
			break
		}
		if p, err = m.ListUsers(ctx, admin, budget.UserQuery{Limit: 2, Cursor: p.Next}); err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprint(names); got != "[Alice alina bob carol dave]" {
		t.Errorf("users %s, want all five in ID order", got)
	}
	sum := p.Summary
	if sum.Users != 5 || !sum.TotalLimit.Equal(amt("50")) || !sum.TotalSpent.Equal(amt("28.5")) || sum.OverBudget != 1 {
		t.Errorf("summary %+v, want 5 users, 50 allocated, 28.5 spent, 1 over budget", sum)
	}
	p, err = m.ListUsers(ctx, admin, budget.UserQuery{Search: "AL"})
	if err != nil {
		t.Fatal(err)
	}
	if got := names2(p); got != "[Alice alina]" {
		t.Errorf("search AL: %s", got)
	}
	orange := budget.Orange
	if p, err = m.ListUsers(ctx, admin, budget.UserQuery{Level: &orange}); err != nil {
		t.Fatal(err)
	}
	if got := names2(p); got != "[alina]" {
		t.Errorf("orange users: %s", got)
	}
	if p.Users[0].Status.Level != budget.Orange || !p.Users[0].Status.Spent.Equal(amt("9.5")) {
		t.Errorf("alina's status %+v", p.Users[0].Status)
	}
	// Statuses are current: after a rollover nobody has spent anything.
	c.Set(time.Date(2027, 1, 5, 0, 0, 0, 0, time.UTC))
	if p, err = m.ListUsers(ctx, admin, budget.UserQuery{}); err != nil {
		t.Fatal(err)
	}
	if !p.Summary.TotalSpent.IsZero() || p.Summary.OverBudget != 0 {
		t.Errorf("summary after rollover %+v", p.Summary)
	}
	if _, err := m.ListUsers(ctx, budget.Principal{UserID: "bob"}, budget.UserQuery{}); !errors.Is(err, budget.ErrForbidden) {
		t.Errorf("list by a user: %v, want ErrForbidden", err)
	}
	if _, err := m.ListUsers(ctx, admin, budget.UserQuery{Cursor: "%%%"}); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("bad cursor: %v, want ErrInvalid", err)
	}
}

func names2(p budget.UserPage) string {
	var out []string
	for _, u := range p.Users {
		out = append(out, u.Settings.UserID)
	}
	return fmt.Sprint(out)
}

func testAuditLog(t *testing.T, s budget.Store) {
	c := NewClock(start)
	m := newManager(s, c, budget.Options{})
	for i := range 7 {
		configure(t, m, "u", limit(fmt.Sprint(10+i)))
		c.Advance(time.Second)
	}
	configure(t, m, "v", limit("3"))
	var limits []string
	cursor := ""
	for {
		p, err := m.AuditLog(ctx, admin, budget.AuditLogQuery{UserID: "u", Cursor: cursor, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Entries {
			if e.UserID != "u" {
				t.Errorf("entry of %q in u's log", e.UserID)
			}
			limits = append(limits, e.NewLimit.String())
		}
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	if got := fmt.Sprint(limits); got != "[16 15 14 13 12 11 10]" {
		t.Errorf("u's audit limits %s, want newest first", got)
	}
	all, err := m.AuditLog(ctx, admin, budget.AuditLogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Entries) != 8 || all.Entries[0].UserID != "v" {
		t.Errorf("whole log has %d entries, newest of %q; want 8, newest v's", len(all.Entries), all.Entries[0].UserID)
	}
	if _, err := m.AuditLog(ctx, budget.Principal{UserID: "u"}, budget.AuditLogQuery{UserID: "u"}); !errors.Is(err, budget.ErrForbidden) {
		t.Errorf("audit by a user: %v, want ErrForbidden", err)
	}
}

func testCopies(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	configure(t, m, "u", limit("10"))
	es := auditOf(t, m, "u")
	es[0].After.Limit = amt("999")
	es[0].After.AdminNotes = "tampered"
	es[0].Reason = "tampered"
	again := auditOf(t, m, "u")
	if again[0].After.Limit.Equal(amt("999")) || again[0].After.AdminNotes == "tampered" || again[0].Reason == "tampered" {
		t.Errorf("changing a returned audit entry changed the store: %+v", again[0])
	}
	set, _ := s.Settings(ctx, "u")
	set.Limit = amt("999")
	if again, _ := s.Settings(ctx, "u"); again.Limit.Equal(amt("999")) {
		t.Error("changing returned settings changed the store")
	}
}

func testClosed(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	configure(t, m, "u", limit("10"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := m.Reserve(ctx, "u", amt("1"))
	if err == nil || errors.Is(err, budget.ErrBudgetExceeded) {
		t.Fatalf("reserve on a closed store: %v, want a failure", err)
	}
	if _, err := m.Status(ctx, "new-user"); !errors.Is(err, budget.ErrClosed) {
		t.Errorf("status on a closed store: %v, want ErrClosed", err)
	}
	if _, err := s.Templates(ctx); !errors.Is(err, budget.ErrClosed) {
		t.Errorf("templates on a closed store: %v, want ErrClosed", err)
	}
	p := templatePlan("5")
	if err := s.SaveTemplate(ctx, templateReq("t", &p, 1, 0, start)); !errors.Is(err, budget.ErrClosed) {
		t.Errorf("save template on a closed store: %v, want ErrClosed", err)
	}
}

// testTwoManagers runs the concurrency case across two Managers sharing the
// store, as two processes would, and checks that one Manager's settings
// change binds the other at once.
func testTwoManagers(t *testing.T, s budget.Store) {
	c := NewClock(start)
	a := newManager(s, c, budget.Options{})
	b := newManager(s, c, budget.Options{})
	configure(t, a, "u", limit("10"))
	status(t, b, "u") // b caches the settings
	errs := parallel(200, func(i int) error {
		m := a
		if i%2 == 1 {
			m = b
		}
		r, err := m.Reserve(ctx, "u", amt("0.10"))
		if err != nil {
			return err
		}
		_, err = r.Settle(ctx, budget.Usage{Cost: amt("0.10")})
		return err
	})
	ok := succeeded(t, errs, budget.ErrBudgetExceeded)
	if ok != 100 {
		t.Fatalf("%d calls passed across two managers, want 100", ok)
	}
	wantTotals(t, status(t, b, "u"), "10", "0")
	configure(t, a, "u", limit("10.5"))
	if _, err := b.Reserve(ctx, "u", amt("0.6")); !errors.Is(err, budget.ErrBudgetExceeded) {
		t.Errorf("reserve 0.6 on b after a set the limit to 10.5: %v, want ErrBudgetExceeded", err)
	}
	if r, err := b.Reserve(ctx, "u", amt("0.5")); err != nil {
		t.Errorf("reserve 0.5 on b after a raised the limit to 10.5: %v", err)
	} else {
		_ = r.Release(ctx)
	}
}

// testLateResetAndUpdate: a Manager whose clock lags resets and reconfigures
// a user just after another Manager saw the period end. The store refuses
// the stale period (a *budget.LateError) and the Manager retries from the
// stored period's start, so the window never moves back and the period's
// end is audited once.
func testLateResetAndUpdate(t *testing.T, s budget.Store) {
	day2 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	ahead := NewClock(day2.Add(-time.Minute))
	behind := func() time.Time { return ahead.Now().Add(-2 * time.Second) }
	a := newManager(s, ahead, budget.Options{})
	b := budget.NewManager(s, budget.Options{Now: behind})
	configure(t, a, "u", budget.SettingsUpdate{Limit: ptr(amt("10")), Period: ptr(budget.Daily)})
	record(t, a, "u", "", "4")
	ahead.Set(day2.Add(time.Second))
	record(t, a, "u", "", "1") // a moves the store to the new day
	e, err := b.Reset(ctx, admin, "u", budget.ResetOptions{Reason: "late"})
	if err != nil {
		t.Fatalf("reset from a lagging clock: %v", err)
	}
	if e.At.Before(day2) {
		t.Errorf("reset at %v, before the period the store is in began (%v)", e.At, day2)
	}
	if _, err := b.UpdateSettings(ctx, admin, "u", limit("12")); err != nil {
		t.Fatalf("update from a lagging clock: %v", err)
	}
	st := status(t, a, "u")
	if st.PeriodStart.Before(day2) {
		t.Errorf("period starts %v after late calls, before the new day", st.PeriodStart)
	}
	if n := countAudit(auditOf(t, a, "u"), budget.AuditAutomaticReset); n != 1 {
		t.Errorf("the day's end audited %d times, want once", n)
	}
}
