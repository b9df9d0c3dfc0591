package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/sqlite"
)

// TestTeamTwoStoresOneFile: three users with $30 limits in one team limited
// to $10, on two Store handles of one file, each with its own Manager: 400
// concurrent reserves of $0.10 spread over the three users and the two
// handles, and exactly 100 succeed. The writers of the two handles
// serialize through SQLite's file lock, so the team's counters, read and
// written in each step, never lose a hold.
func TestTeamTwoStoresOneFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "budget.db")
	a, b := ftManager(ftOpen(t, path)), ftManager(ftOpen(t, path))
	ten := budget.MustAmount("10")
	if _, err := a.UpdateBudget(ctx, ftAdmin, budget.Team("t"), budget.SettingsUpdate{Limit: &ten}); err != nil {
		t.Fatal(err)
	}
	users := []string{"u0", "u1", "u2"}
	for _, u := range users {
		ftLimit(t, a, u, "30")
		if _, err := a.SetMembership(ctx, ftAdmin, u, budget.Membership{Teams: []string{"t"}}); err != nil {
			t.Fatal(err)
		}
		// b reads the settings a wrote, membership included.
		if st, err := b.Status(ctx, u); err != nil || len(st.Budgets) != 2 || st.Budgets[1].Scope != budget.Team("t") {
			t.Fatalf("%s's status on the second handle: %+v, %v; want its own budget and the team's", u, st.Budgets, err)
		}
	}
	var ok atomic.Int64
	held := make([]*budget.Reservation, 400)
	errs := make([]error, 400)
	var wg sync.WaitGroup
	for i := range 400 {
		m := a
		if i%2 == 1 {
			m = b
		}
		wg.Go(func() {
			r, err := m.Reserve(ctx, users[i%3], budget.MustAmount("0.10"))
			var le *budget.LimitError
			switch {
			case err == nil:
				ok.Add(1)
				held[i] = r
			case errors.As(err, &le) && le.Scope == budget.Team("t"):
			default:
				errs[i] = err
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("reserves failed other than by the team's limit: %v", err)
	}
	if ok.Load() != 100 {
		t.Errorf("%d of 400 reserves of 0.10 succeeded on a $10 team across two store handles, want exactly 100", ok.Load())
	}
	for _, m := range []*budget.Manager{a, b} {
		st, err := m.BudgetStatus(ctx, budget.Team("t"))
		if err != nil {
			t.Fatal(err)
		}
		if !st.Reserved.Equal(ten) || !st.Spent.IsZero() {
			t.Errorf("the team: spent %s reserved %s, want 0 and 10", st.Spent, st.Reserved)
		}
	}
	// Settle every hold through the handle that placed it.
	for i, r := range held {
		if r == nil {
			continue
		}
		wg.Go(func() {
			if _, err := r.Settle(ctx, budget.Usage{Cost: budget.MustAmount("0.10")}); err != nil {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	st, err := b.BudgetStatus(ctx, budget.Team("t"))
	if err != nil || !st.Spent.Equal(ten) || !st.Reserved.IsZero() {
		t.Errorf("the team after the settles: %+v, %v; want 10 spent, nothing reserved", st, err)
	}
	spent := budget.MustAmount("0")
	for _, u := range users {
		st, err := a.Status(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		spent = spent.Add(st.Spent)
	}
	if !spent.Equal(ten) {
		t.Errorf("the users spent %s in all, want 10", spent)
	}
	if n := ftCheckCounters(t, path); n != 4 {
		t.Errorf("%d budgets in the file, want 3 users and the team", n)
	}
	ftIntegrity(t, path)
}

// scopeFixture is a store with user u ($100) in team t ($50) and org o
// ($100), the team with a cap on claude-* ($5), driven directly.
type scopeFixture struct {
	t    *testing.T
	path string
	s    *sqlite.Store
	now  time.Time
	p    budget.Policy // u's
	also []budget.KeyPolicy
}

func newScopeFixture(t *testing.T) *scopeFixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "budget.db")
	f := &scopeFixture{t: t, path: path, s: ftOpen(t, path), now: ftStart}
	month := budget.PeriodWindow(budget.Monthly, 0, time.Time{}, time.UTC, ftStart)
	policy := func(limit budget.Nanos) budget.Policy {
		return budget.Policy{Version: 1, Window: month, Limit: limit, Enforce: true, Levels: [3]budget.Nanos{limit, limit, limit}}
	}
	create := func(key string, p budget.Policy) {
		set := budget.Settings{UserID: key, Version: 1, CreatedAt: ftStart, UpdatedAt: ftStart,
			Plan: budget.Plan{Limit: p.Limit.Decimal(), Period: budget.Monthly, Enforce: true, Thresholds: budget.DefaultThresholds()}}
		if _, _, err := f.s.CreateSettings(context.Background(), budget.CreateRequest{Settings: set, Policy: p, Now: ftStart}); err != nil {
			t.Fatal(err)
		}
	}
	f.p = policy(100e9)
	create("u", f.p)
	team, org := budget.Team("t").Key(), budget.Org("o").Key()
	create(team, policy(50e9))
	create(org, policy(100e9))
	f.also = []budget.KeyPolicy{
		{Key: team, Policy: policy(50e9)},
		{Key: budget.Team("t").CapKey("claude-*"), Cap: true, Policy: policy(5e9)},
		{Key: org, Policy: policy(100e9)},
	}
	return f
}

func (f *scopeFixture) record(id string, cost budget.Nanos, also []budget.KeyPolicy) (budget.Totals, error) {
	return f.s.Record(context.Background(), budget.RecordRequest{Policy: f.p, Now: f.now, Also: also,
		Usage: budget.UsageRow{ID: id, UserID: "u", Provider: "anthropic", Model: "claude-x", Cost: cost, At: f.now}})
}

func (f *scopeFixture) caps() int {
	f.t.Helper()
	var n int
	if err := ftRaw(f.t, f.path).QueryRow(`SELECT COUNT(*) FROM users WHERE cap = 1`).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// TestScopesStoreDetails checks what storetest leaves to each store: usage
// IDs of any bytes under other budgets' keys, caps' rows kept out of
// Settings and Accounts, and refused steps leaving no cap row behind.
func TestScopesStoreDetails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newScopeFixture(t)

	// A key twice, or a team without settings, refuses the whole step and
	// creates no cap row.
	if _, err := f.record("x", 1e9, append(f.also, f.also[0])); err == nil {
		t.Error("a step naming the team twice succeeded")
	}
	ghost := budget.KeyPolicy{Key: budget.Team("ghost").Key(), Policy: f.also[0].Policy}
	if _, err := f.record("x", 1e9, append(f.also, ghost)); !errors.Is(err, budget.ErrNotFound) {
		t.Errorf("a step with a team without settings: %v, want ErrNotFound", err)
	}
	if n := f.caps(); n != 0 {
		t.Errorf("refused steps left %d cap rows", n)
	}

	// A usage ID with control characters, a quote and a NUL round-trips
	// under every key.
	id := "a\x00b\"c\\d\x1fe\x7f\u00e9"
	tot, err := f.record(id, 2e9, f.also)
	if err != nil {
		t.Fatal(err)
	}
	if tot.Spent != 2e9 || len(tot.Also) != 3 || tot.Also[0].Spent != 2e9 || tot.Also[1].Spent != 2e9 || tot.Also[2].Spent != 2e9 {
		t.Errorf("totals after a record on four budgets: %+v", tot)
	}
	if _, err := f.record(id, 1, f.also); !errors.Is(err, budget.ErrDuplicate) {
		t.Errorf("the same usage ID again: %v, want ErrDuplicate", err)
	}
	for _, kp := range f.also {
		page, err := f.s.History(ctx, budget.HistoryQuery{UserID: kp.Key})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Rows) != 1 {
			t.Fatalf("history of %q: %d rows, want 1", kp.Key, len(page.Rows))
		}
		user, got, ok := budget.SplitUsageKeyID(page.Rows[0].ID)
		if !ok || user != "u" || got != id || page.Rows[0].UserID != kp.Key {
			t.Errorf("history of %q: %+v, want u's %q", kp.Key, page.Rows[0], id)
		}
	}
	page, err := f.s.History(ctx, budget.HistoryQuery{UserID: "u"})
	if err != nil || len(page.Rows) != 1 || page.Rows[0].ID != id {
		t.Errorf("u's own history: %+v, %v", page.Rows, err)
	}

	// The cap has a row now, which is no holder's settings and no account.
	capKey := f.also[1].Key
	if n := f.caps(); n != 1 {
		t.Errorf("%d cap rows, want 1", n)
	}
	if _, err := f.s.Settings(ctx, capKey); !errors.Is(err, budget.ErrNotFound) {
		t.Errorf("Settings of a cap's key: %v, want ErrNotFound", err)
	}
	// A user's own cap sorts among users.
	own := budget.KeyPolicy{Key: budget.User("u").CapKey("claude-*"), Cap: true, Policy: f.also[1].Policy}
	if _, err := f.record("y", 1e9, []budget.KeyPolicy{own}); err != nil {
		t.Fatal(err)
	}
	for kind, want := range map[budget.ScopeKind]string{
		budget.UserScope: `["u"]`, budget.TeamScope: fmt.Sprintf("[%q]", budget.Team("t").Key()), budget.OrgScope: fmt.Sprintf("[%q]", budget.Org("o").Key()),
	} {
		as, err := f.s.Accounts(ctx, budget.AccountsQuery{Kind: kind, Now: f.now})
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, a := range as {
			keys = append(keys, fmt.Sprintf("%q", a.Settings.UserID))
		}
		if got := fmt.Sprint(keys); got != want {
			t.Errorf("Accounts of kind %q: %s, want %s", kind, got, want)
		}
	}
	// Paging the teams from a key before them all, and after them all.
	if as, err := f.s.Accounts(ctx, budget.AccountsQuery{Kind: budget.TeamScope, After: "\x1f", Now: f.now}); err != nil || len(as) != 1 {
		t.Errorf("teams after \\x1f: %d, %v", len(as), err)
	}
	if as, err := f.s.Accounts(ctx, budget.AccountsQuery{Kind: budget.TeamScope, After: budget.Team("t").Key(), Now: f.now}); err != nil || len(as) != 0 {
		t.Errorf("teams after the last: %d, %v", len(as), err)
	}
	if n := ftCheckCounters(t, f.path); n != 5 {
		t.Errorf("%d budgets in the file, want the user, team, org and two caps", n)
	}
	ftIntegrity(t, f.path)
}

// TestScopesBatchIsolatesFailures commits one batch of steps over several
// budgets, some refused (a usage ID the user has, an unknown hold), some on
// a cap's first use: the writer runs such a batch twice (plainly, then
// with each operation in a savepoint), and what each step read in the
// first run must not leak into the second.
func TestScopesBatchIsolatesFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newScopeFixture(t)
	if _, err := f.record("old", 1e9, f.also); err != nil {
		t.Fatal(err)
	}
	release, err := sqlite.BlockWriter(f.s)
	if err != nil {
		t.Fatal(err)
	}
	other := budget.KeyPolicy{Key: budget.Org("o").CapKey("gpt-*"), Cap: true, Policy: f.also[1].Policy}
	type op struct {
		name string
		fn   func() error
		want error
	}
	var ops []op
	for i := range 10 {
		ops = append(ops, op{fmt.Sprintf("record new-%d", i), func() error {
			_, err := f.record(fmt.Sprintf("new-%d", i), 1e8, append(f.also, other))
			return err
		}, nil})
		ops = append(ops, op{fmt.Sprintf("record old #%d", i), func() error {
			_, err := f.record("old", 1e8, f.also)
			return err
		}, budget.ErrDuplicate})
		ops = append(ops, op{fmt.Sprintf("settle a missing hold #%d", i), func() error {
			_, err := f.s.Settle(ctx, budget.SettleRequest{HoldID: "nope", Policy: f.p, Now: f.now, Also: f.also,
				Usage: budget.UsageRow{ID: fmt.Sprintf("s-%d", i), UserID: "u", HoldID: "nope", Cost: 1, At: f.now}})
			return err
		}, budget.ErrNotFound})
		ops = append(ops, op{fmt.Sprintf("reserve %d", i), func() error {
			_, ok, err := f.s.Reserve(ctx, budget.ReserveRequest{UserID: "u", HoldID: fmt.Sprintf("h-%d", i), Amount: 1e8,
				Policy: f.p, Now: f.now, ExpiresAt: f.now.Add(time.Hour), Also: append(f.also, other)})
			if err == nil && !ok {
				err = fmt.Errorf("refused")
			}
			return err
		}, nil})
	}
	errs := make([]error, len(ops))
	var wg sync.WaitGroup
	for i, o := range ops {
		wg.Go(func() { errs[i] = o.fn() })
	}
	ftWaitQueued(t, f.s, len(ops))
	release()
	wg.Wait()
	for i, o := range ops {
		if (o.want == nil && errs[i] != nil) || (o.want != nil && !errors.Is(errs[i], o.want)) {
			t.Errorf("%s: %v, want %v", o.name, errs[i], o.want)
		}
	}
	tot, err := f.s.Totals(ctx, budget.TotalsRequest{UserID: "u", Policy: f.p, Now: f.now, Also: append(f.also, other)})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(int64(tot.Spent), " ", int64(tot.Held))
	for _, a := range tot.Also {
		got += fmt.Sprint(" ", int64(a.Spent), " ", int64(a.Held))
	}
	// Spent: "old" (1) and ten new (0.1 each), but not "old" on the gpt-*
	// cap; held: ten reserves of 0.1.
	if want := "2000000000 1000000000 2000000000 1000000000 2000000000 1000000000 2000000000 1000000000 1000000000 1000000000"; got != want {
		t.Errorf("spent and held of the user, team, cap, org, org's cap:\n%s, want\n%s", got, want)
	}
	ftCheckCounters(t, f.path)
}
