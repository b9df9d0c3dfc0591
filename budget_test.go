package budget_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/memory"
)

var (
	ctx   = context.Background()
	admin = budget.Principal{UserID: "root", Admin: true}
	t0    = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
)

// faulty wraps a store and fails the named operations with err.
type faulty struct {
	budget.Store
	fail map[string]error
}

func (f *faulty) Settings(ctx context.Context, id string) (budget.Settings, error) {
	if err := f.fail["settings"]; err != nil {
		return budget.Settings{}, err
	}
	return f.Store.Settings(ctx, id)
}

func (f *faulty) Reserve(ctx context.Context, r budget.ReserveRequest) (budget.Totals, bool, error) {
	if err := f.fail["reserve"]; err != nil {
		return budget.Totals{}, true, err // "allowed" with an error must not count as allowed
	}
	return f.Store.Reserve(ctx, r)
}

func (f *faulty) Settle(ctx context.Context, r budget.SettleRequest) (budget.Totals, error) {
	if err := f.fail["settle"]; err != nil {
		return budget.Totals{}, err
	}
	return f.Store.Settle(ctx, r)
}

func testManager(s budget.Store, now *time.Time, opts budget.Options) *budget.Manager {
	opts.Now = func() time.Time { return *now }
	return budget.NewManager(s, opts)
}

func TestReserveFailsClosed(t *testing.T) {
	boom := errors.New("disk on fire")
	for _, op := range []string{"settings", "reserve"} {
		t.Run(op, func(t *testing.T) {
			now := t0
			f := &faulty{Store: memory.New(), fail: map[string]error{}}
			m := testManager(f, &now, budget.Options{})
			if _, err := m.Status(ctx, "u"); err != nil {
				t.Fatal(err)
			}
			f.fail[op] = boom
			m = testManager(f, &now, budget.Options{}) // no cached settings
			r, err := m.Reserve(ctx, "u", budget.MustAmount("1"))
			if r != nil || !errors.Is(err, boom) || errors.Is(err, budget.ErrBudgetExceeded) {
				t.Fatalf("Reserve with a failing store = %v, %v; want no reservation and the store's error", r, err)
			}
			delete(f.fail, op)
			if st, _ := m.Status(ctx, "u"); !st.Reserved.IsZero() {
				t.Errorf("a failed reserve left %s reserved", st.Reserved)
			}
		})
	}
}

func TestSettleFailureKeepsReservationOpen(t *testing.T) {
	now := t0
	f := &faulty{Store: memory.New(), fail: map[string]error{}}
	m := testManager(f, &now, budget.Options{})
	r, err := m.Reserve(ctx, "u", budget.MustAmount("2"))
	if err != nil {
		t.Fatal(err)
	}
	f.fail["settle"] = errors.New("timeout")
	if _, err := r.Settle(ctx, budget.Usage{Cost: budget.MustAmount("1")}); err == nil {
		t.Fatal("settle succeeded on a failing store")
	}
	delete(f.fail, "settle")
	st, err := r.Settle(ctx, budget.Usage{Cost: budget.MustAmount("1")})
	if err != nil {
		t.Fatalf("retried settle: %v", err)
	}
	if !st.Spent.Equal(budget.MustAmount("1")) || !st.Reserved.IsZero() {
		t.Errorf("after retry spent %s reserved %s, want 1 and 0", st.Spent, st.Reserved)
	}
}

// conflicting always reports a lost compare-and-set.
type conflicting struct{ budget.Store }

func (conflicting) Reserve(context.Context, budget.ReserveRequest) (budget.Totals, bool, error) {
	return budget.Totals{}, false, budget.ErrConflict
}

func TestConflictRetriesAreBounded(t *testing.T) {
	now := t0
	m := testManager(conflicting{memory.New()}, &now, budget.Options{})
	if _, err := m.Reserve(ctx, "u", budget.MustAmount("1")); !errors.Is(err, budget.ErrConflict) {
		t.Fatalf("Reserve against endless conflicts: %v, want ErrConflict", err)
	}
}

func TestHoldTTLOption(t *testing.T) {
	now := t0
	m := testManager(memory.New(), &now, budget.Options{HoldTTL: time.Minute})
	r, err := m.Reserve(ctx, "u", budget.MustAmount("1"))
	if err != nil {
		t.Fatal(err)
	}
	if !r.ExpiresAt().Equal(t0.Add(time.Minute)) {
		t.Errorf("expires %v, want a minute from now", r.ExpiresAt())
	}
	now = now.Add(time.Minute)
	if st, _ := m.Status(ctx, "u"); !st.Reserved.IsZero() {
		t.Errorf("reserved %s after the TTL, want 0", st.Reserved)
	}
}

func TestInvalidInputChangesNothing(t *testing.T) {
	now := t0
	m := testManager(memory.New(), &now, budget.Options{})
	long := strings.Repeat("x", 300)
	if _, err := m.Reserve(ctx, "", budget.MustAmount("1")); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("empty user: %v", err)
	}
	if _, err := m.Status(ctx, "a\x00b"); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("control character in user: %v", err)
	}
	for _, u := range []budget.Usage{
		{Cost: budget.MustAmount("1"), InputTokens: -1},
		{Cost: budget.MustAmount("1"), Model: long},
		{Cost: budget.MustAmount("1"), Provider: "\xff"},
	} {
		if _, err := m.Record(ctx, "u", u); !errors.Is(err, budget.ErrInvalid) {
			t.Errorf("record %+v: %v, want ErrInvalid", u, err)
		}
	}
	if _, err := m.Reset(ctx, admin, "u", budget.ResetOptions{Reason: long + long + long + long}); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("long reason: %v", err)
	}
	custom, days, ancient := budget.Custom, 3, time.Date(1200, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := m.UpdateSettings(ctx, admin, "u", budget.SettingsUpdate{Period: &custom, CustomDays: &days, CustomAnchor: &ancient}); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("anchor in 1200: %v", err)
	}
	notes := strings.Repeat("n", budget.MaxNotesLen+1)
	if _, err := m.UpdateSettings(ctx, admin, "u", budget.SettingsUpdate{AdminNotes: &notes}); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("long notes: %v", err)
	}
	st, err := m.Status(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Spent.IsZero() {
		t.Errorf("spent %s after refused input", st.Spent)
	}
	p, _ := m.AuditLog(ctx, admin, budget.AuditLogQuery{UserID: "u"})
	if len(p.Entries) != 0 {
		t.Errorf("refused input was audited: %+v", p.Entries)
	}
}

func TestCustomPeriodAnchorsAtLocalMidnight(t *testing.T) {
	now := time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC)
	m := testManager(memory.New(), &now, budget.Options{})
	custom, days, tz := budget.Custom, 10, "Asia/Tokyo"
	s, err := m.UpdateSettings(ctx, admin, "u", budget.SettingsUpdate{Period: &custom, CustomDays: &days, Timezone: &tz})
	if err != nil {
		t.Fatal(err)
	}
	tokyo, _ := time.LoadLocation(tz)
	want := time.Date(2026, 11, 27, 0, 0, 0, 0, tokyo) // 15:00 UTC is already the 27th in Tokyo
	if !s.CustomAnchor.Equal(want) || !s.PeriodStart.Equal(want) || !s.PeriodEnd.Equal(want.AddDate(0, 0, 10)) {
		t.Errorf("anchor %v period [%v, %v), want anchored at %v for 10 days", s.CustomAnchor, s.PeriodStart, s.PeriodEnd, want)
	}
	// Leaving custom drops the anchor and the length.
	monthly := budget.Monthly
	if s, err = m.UpdateSettings(ctx, admin, "u", budget.SettingsUpdate{Period: &monthly}); err != nil {
		t.Fatal(err)
	}
	if !s.CustomAnchor.IsZero() || s.CustomDays != 0 {
		t.Errorf("monthly plan kept anchor %v days %d", s.CustomAnchor, s.CustomDays)
	}
}

func TestUnchangedUpdateIsNotAudited(t *testing.T) {
	now := t0
	m := testManager(memory.New(), &now, budget.Options{})
	l := budget.MustAmount("30.000")
	s, err := m.UpdateSettings(ctx, admin, "u", budget.SettingsUpdate{Limit: &l})
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != 1 {
		t.Errorf("version %d after a no-op update, want 1", s.Version)
	}
	if p, _ := m.AuditLog(ctx, admin, budget.AuditLogQuery{UserID: "u"}); len(p.Entries) != 0 {
		t.Errorf("a no-op update was audited")
	}
}

func TestNewManagerRefusesInvalidOptions(t *testing.T) {
	for name, f := range map[string]func(){
		"nil store": func() { budget.NewManager(nil, budget.Options{}) },
		"bad plan": func() {
			p := budget.DefaultUserPlan()
			p.Timezone = "Nowhere/Land"
			budget.NewManager(memory.New(), budget.Options{UserPlan: &p})
		},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}

func TestLookupNeverCreates(t *testing.T) {
	now := t0
	m := testManager(memory.New(), &now, budget.Options{})
	if _, err := m.Lookup(ctx, "ghost"); !errors.Is(err, budget.ErrNotFound) {
		t.Fatalf("Lookup of an unknown user: %v, want ErrNotFound", err)
	}
	if p, _ := m.ListUsers(ctx, admin, budget.UserQuery{}); p.Summary.Users != 0 {
		t.Errorf("Lookup created a user")
	}
	if _, err := m.Settings(ctx, "ghost"); err != nil {
		t.Fatal(err)
	}
	s, err := m.Lookup(ctx, "ghost")
	if err != nil || s.PeriodEnd.IsZero() {
		t.Errorf("Lookup after creation: %+v, %v", s, err)
	}
}

func TestRefusedWritesDoNotEnrol(t *testing.T) {
	now := t0
	m := testManager(memory.New(), &now, budget.Options{})
	big := budget.MustAmount("1000")
	if _, err := m.UpdateSettings(ctx, budget.Principal{UserID: "new"}, "new", budget.SettingsUpdate{Limit: &big}); !errors.Is(err, budget.ErrForbidden) {
		t.Fatalf("view-only user raising own limit: %v", err)
	}
	high := budget.MustAmount("95")
	if _, err := m.UpdateSettings(ctx, admin, "new", budget.SettingsUpdate{Yellow: &high}); !errors.Is(err, budget.ErrInvalid) {
		t.Fatalf("yellow above the default orange: %v", err)
	}
	if _, err := m.Reset(ctx, budget.Principal{UserID: "new"}, "new", budget.ResetOptions{}); !errors.Is(err, budget.ErrForbidden) {
		t.Fatalf("reset without permission: %v", err)
	}
	if _, err := m.Lookup(ctx, "new"); !errors.Is(err, budget.ErrNotFound) {
		t.Errorf("a refused write created settings: %v", err)
	}
	// An accepted admin update on a new user creates and updates it.
	s, err := m.UpdateSettings(ctx, admin, "new", budget.SettingsUpdate{Limit: &big})
	if err != nil || !s.Limit.Equal(big) || s.Version != 2 {
		t.Fatalf("configure a new user: %+v, %v", s, err)
	}
}

func TestStatusForChecksVisibilityAcrossManagers(t *testing.T) {
	now := t0
	store := memory.New()
	a := testManager(store, &now, budget.Options{})
	b := testManager(store, &now, budget.Options{})
	alice := budget.Principal{UserID: "alice"}
	if _, err := a.StatusFor(ctx, alice, "alice"); err != nil { // a caches visible settings
		t.Fatal(err)
	}
	hidden, visible := false, true
	if _, err := b.UpdateSettings(ctx, admin, "alice", budget.SettingsUpdate{Visible: &hidden}); err != nil {
		t.Fatal(err)
	}
	var pe *budget.PermissionError
	if _, err := a.StatusFor(ctx, alice, "alice"); !errors.As(err, &pe) || !pe.Hidden {
		t.Fatalf("status of a budget another manager hid: %v, want a hidden *PermissionError", err)
	}
	if _, err := b.UpdateSettings(ctx, admin, "alice", budget.SettingsUpdate{Visible: &visible}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.StatusFor(ctx, alice, "alice"); err != nil { // a still caches hidden settings
		t.Fatalf("status after another manager showed the budget again: %v", err)
	}
	if _, err := a.StatusFor(ctx, budget.Principal{UserID: "bob"}, "alice"); !errors.Is(err, budget.ErrForbidden) {
		t.Errorf("bob reading alice's status: %v", err)
	}
}

func TestBreakdownNeedsBothBounds(t *testing.T) {
	now := t0
	m := testManager(memory.New(), &now, budget.Options{})
	if _, err := m.Breakdown(ctx, "u", t0.Add(-time.Hour), time.Time{}); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("breakdown with only from: %v", err)
	}
}

// alertingRelease is a store whose Release reports that it marked a level,
// as a store may when the Release is the first call of a period.
type alertingRelease struct{ budget.Store }

func (s alertingRelease) Release(ctx context.Context, r budget.ReleaseRequest) (budget.Totals, error) {
	t, err := s.Store.Release(ctx, r)
	t.Alerts = t.Alerts.With(budget.Yellow)
	return t, err
}

func TestReleaseReportsAlerts(t *testing.T) {
	now := t0
	var got []budget.Level
	m := testManager(alertingRelease{memory.New()}, &now, budget.Options{OnAlert: func(a budget.Alert) { got = append(got, a.Level) }})
	r, err := m.Reserve(ctx, "u", budget.MustAmount("1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != budget.Yellow {
		t.Errorf("alerts after a Release whose store call marked yellow: %v", got)
	}
}

// TestReservationExtend: a hold extended while its call runs keeps
// counting past its first expiry; a lapsed one is never revived.
func TestReservationExtend(t *testing.T) {
	now := t0
	m := testManager(memory.New(), &now, budget.Options{HoldTTL: time.Minute})
	r, err := m.Reserve(ctx, "u", budget.MustAmount("20"))
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(40 * time.Second)
	at, err := r.Extend(ctx)
	if want := now.Add(time.Minute); err != nil || !at.Equal(want) || !r.ExpiresAt().Equal(want) {
		t.Fatalf("Extend = %v, %v; ExpiresAt %v; want %v", at, err, r.ExpiresAt(), want)
	}
	now = now.Add(30 * time.Second) // past the first expiry, inside the second
	if _, err := m.Reserve(ctx, "u", budget.MustAmount("20")); !errors.Is(err, budget.ErrBudgetExceeded) {
		t.Fatalf("a second $20 hold beside the extended one = %v, want refused", err)
	}
	if st, _ := m.Status(ctx, "u"); !st.Reserved.Equal(budget.MustAmount("20")) {
		t.Errorf("reserved %s, want 20", st.Reserved)
	}
	if _, err := r.Settle(ctx, budget.Usage{Cost: budget.MustAmount("3")}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Extend(ctx); !errors.Is(err, budget.ErrReservationClosed) {
		t.Errorf("Extend after Settle = %v, want ErrReservationClosed", err)
	}

	lapsed, err := m.Reserve(ctx, "u", budget.MustAmount("20"))
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	if _, err := lapsed.Extend(ctx); !errors.Is(err, budget.ErrHoldExpired) {
		t.Errorf("Extend of a lapsed hold = %v, want ErrHoldExpired", err)
	}
	if st, _ := m.Status(ctx, "u"); !st.Reserved.IsZero() {
		t.Errorf("a lapsed hold counts again: reserved %s", st.Reserved)
	}
	if _, err := lapsed.Settle(ctx, budget.Usage{Cost: budget.MustAmount("1")}); err != nil {
		t.Errorf("a late Settle still records spend: %v", err)
	}
}
