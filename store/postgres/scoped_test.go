package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/postgres"
	"github.com/llmbudget/budget/store/storetest"
	"github.com/shopspring/decimal"
)

// TestTeamInstances runs four Managers, each on a store with its own pool
// (four replicas), on three users with $30 each in a team of $10: of 400
// concurrent reserves of $0.10 spread over the users, exactly 100 succeed,
// each refusal names the team, and the counters of every budget equal the
// sums of their rows.
func TestTeamInstances(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	const instances, calls = 4, 400
	c := storetest.NewClock(storetestStart)
	managers := make([]*budget.Manager, instances)
	for i := range managers {
		managers[i] = budget.NewManager(open(t, schema), budget.Options{Now: c.Now})
	}
	ten := budget.MustAmount("10")
	if _, err := managers[0].UpdateBudget(ctx, admin, budget.Team("t"), budget.SettingsUpdate{Limit: &ten}); err != nil {
		t.Fatal(err)
	}
	users := []string{"u0", "u1", "u2"}
	for _, u := range users {
		setLimit(t, managers[0], u, "30")
		if _, err := managers[0].SetMembership(ctx, admin, u, budget.Membership{Teams: []string{"t"}}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		wg     sync.WaitGroup
		gate   = make(chan struct{})
		mu     sync.Mutex
		passed int
		errs   []error
	)
	for i := range calls {
		m := managers[i%instances]
		wg.Go(func() {
			<-gate
			_, err := m.Reserve(ctx, users[i%len(users)], budget.MustAmount("0.10"))
			var le *budget.LimitError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				passed++
			case !errors.As(err, &le) || le.Scope != budget.Team("t"):
				errs = append(errs, err)
			}
		})
	}
	close(gate)
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if passed != 100 {
		t.Errorf("%d of %d reserves of 0.10 passed on a $10 team across %d instances, want 100", passed, calls, instances)
	}
	for i, m := range managers {
		st, err := m.BudgetStatus(ctx, budget.Team("t"))
		if err != nil {
			t.Fatal(err)
		}
		if !st.Reserved.Equal(ten) || !st.Spent.IsZero() {
			t.Errorf("instance %d: the team has %s reserved and %s spent, want 10 and 0", i, st.Reserved, st.Spent)
		}
	}
	var held int64
	for _, u := range users {
		st, err := managers[0].Status(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		held += st.Reserved.Shift(9).IntPart()
	}
	if held != 10e9 {
		t.Errorf("the users hold %d nano-dollars in all, want the team's 10e9", held)
	}
	checkCounters(t, schema)
}

// TestScopedNoDeadlock runs two Managers, each on a store with its own pool
// and no retries (so a deadlock would be an error), for two users whose
// calls name the same budgets in opposite orders: alice is in team a (in
// org p) and in org q, bob in team b (in org q) and in org p, so that
// alice's calls list org p (and its model cap) before org q, and bob's org
// q (and its cap) before org p, and neither shares a budget listed before
// those. The caps are created by the first calls, at once. Concurrent
// Reserve and Settle pairs of both, from both Managers, all complete (the
// store locks keys in key order, whatever the request's order), and every
// budget's counters balance.
func TestScopedNoDeadlock(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	c := storetest.NewClock(storetestStart)
	managers := make([]*budget.Manager, 2)
	for i := range managers {
		s, err := postgres.Open(ctx, testDSN(t), postgres.Options{Schema: schema, MaxRetries: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		managers[i] = budget.NewManager(s, budget.Options{Now: c.Now})
	}
	m := managers[0]
	lots := budget.MustAmount("1000")
	caps := []budget.ModelCap{{Pattern: "gpt-*", Limit: lots}}
	for _, sc := range []budget.Scope{budget.Org("p"), budget.Org("q"), budget.Team("a"), budget.Team("b")} {
		u := budget.SettingsUpdate{Limit: &lots}
		if sc.Kind == budget.OrgScope {
			u.ModelCaps = &caps
		}
		if _, err := m.UpdateBudget(ctx, admin, sc, u); err != nil {
			t.Fatal(err)
		}
	}
	for team, org := range map[string]string{"a": "p", "b": "q"} {
		if _, err := m.SetTeamOrg(ctx, admin, team, org); err != nil {
			t.Fatal(err)
		}
	}
	for user, ms := range map[string]budget.Membership{
		"alice": {Teams: []string{"a"}, Org: "q"},
		"bob":   {Teams: []string{"b"}, Org: "p"},
	} {
		setLimit(t, m, user, "1000")
		if _, err := m.SetMembership(ctx, admin, user, ms); err != nil {
			t.Fatal(err)
		}
	}
	goroutines, pairs := 8, 40 // per Manager and user; each pair is two transactions
	if storetest.RaceEnabled {
		pairs = 15
	}
	var (
		wg   sync.WaitGroup
		gate = make(chan struct{})
		mu   sync.Mutex
		errs []error
	)
	for i := range 2 * 2 * goroutines {
		m, user := managers[i%2], []string{"alice", "bob"}[i/2%2]
		wg.Go(func() {
			<-gate
			for j := range pairs {
				r, err := m.Reserve(ctx, user, budget.MustAmount("0.02"), budget.WithModel("gpt-4o"))
				if err == nil {
					_, err = r.Settle(ctx, budget.Usage{ID: fmt.Sprint(i, "-", j), Cost: budget.MustAmount("0.01")})
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	close(gate)
	wg.Wait()
	for _, err := range errs {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "40P01" {
			t.Errorf("deadlock: %v", err)
		} else {
			t.Error(err)
		}
	}
	// Each user made goroutines×2 (Managers) × pairs pairs of 0.01.
	each := budget.MustAmount("0.01").Mul(budget.MustAmount(fmt.Sprint(2 * goroutines * pairs)))
	for sc, want := range map[budget.Scope]decimal.Decimal{
		budget.User("alice"): each, budget.User("bob"): each, budget.Team("a"): each, budget.Team("b"): each,
		budget.Org("p"): each.Add(each), budget.Org("q"): each.Add(each),
	} {
		st, err := m.BudgetStatus(ctx, sc)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Spent.Equal(want) || !st.Reserved.IsZero() {
			t.Errorf("%v: spent %s reserved %s, want %s and 0", sc, st.Spent, st.Reserved, want)
		}
		if sc.Kind == budget.OrgScope && (len(st.Budgets) != 2 || !st.Budgets[1].Spent.Equal(want)) {
			t.Errorf("%v's cap: %+v, want %s spent", sc, st.Budgets, want)
		}
	}
	checkCounters(t, schema)
}

// TestScopedKeys checks what the store keeps under keys beyond users': a
// cap's counters are created by the first call that spends the cap, even
// many at once, and are neither settings nor listed, a user's own caps
// included; a key named twice in one request is refused, changing nothing.
func TestScopedKeys(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	s := open(t, schema)
	now := storetestStart
	month := budget.PeriodWindow(budget.Monthly, 0, time.Time{}, time.UTC, now)
	policy := func(limit budget.Nanos) budget.Policy {
		return budget.Policy{Version: 1, Window: month, Limit: limit, Enforce: true, Levels: [3]budget.Nanos{limit, limit, limit}}
	}
	for _, key := range []string{"alice", budget.Team("t").Key()} {
		set := budget.Settings{UserID: key, Plan: budget.DefaultUserPlan(), Version: 1, CreatedAt: now, UpdatedAt: now,
			ModelCaps: []budget.ModelCap{{Pattern: "gpt-*", Limit: budget.MustAmount("1")}}}
		if _, _, err := s.CreateSettings(ctx, budget.CreateRequest{Settings: set, Policy: policy(30e9), Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	aliceCap := budget.User("alice").CapKey("gpt-*")
	team := budget.KeyPolicy{Key: budget.Team("t").Key(), Policy: policy(30e9)}
	teamCap := budget.KeyPolicy{Key: budget.Team("t").CapKey("gpt-*"), Cap: true, Policy: policy(1e9)}
	also := []budget.KeyPolicy{{Key: aliceCap, Cap: true, Policy: policy(1e9)}, team, teamCap}
	// Twenty first uses of both caps at once: each creates them or finds
	// them created, and ten holds of 0.1 fill the caps of 1.
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed int
	)
	for i := range 20 {
		wg.Go(func() {
			_, ok, err := s.Reserve(ctx, budget.ReserveRequest{UserID: "alice", HoldID: fmt.Sprint("h", i), Amount: 1e8,
				Policy: policy(30e9), Now: now, ExpiresAt: now.Add(time.Hour), Also: also})
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				allowed++
			}
		})
	}
	wg.Wait()
	if allowed != 10 {
		t.Errorf("%d holds of 0.1 on caps of 1, want 10", allowed)
	}
	for _, key := range []string{aliceCap, teamCap.Key} {
		if _, err := s.Settings(ctx, key); !errors.Is(err, budget.ErrNotFound) {
			t.Errorf("Settings of the cap %q: %v, want ErrNotFound", key, err)
		}
	}
	for kind, want := range map[budget.ScopeKind]string{"": "[alice]", budget.TeamScope: "[\x1fteam:t]", budget.OrgScope: "[]"} {
		as, err := s.Accounts(ctx, budget.AccountsQuery{Kind: kind, Now: now})
		var keys []string
		for _, a := range as {
			keys = append(keys, a.Settings.UserID)
		}
		if err != nil || fmt.Sprint(keys) != want {
			t.Errorf("accounts of kind %q: %q, %v; want %s", kind, keys, err, want)
		}
	}
	dup := []budget.KeyPolicy{team, teamCap, team}
	if _, _, err := s.Reserve(ctx, budget.ReserveRequest{UserID: "alice", HoldID: "dup", Amount: 1, Policy: policy(30e9), Now: now,
		ExpiresAt: now.Add(time.Hour), Also: dup}); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("a key twice in a request: %v, want ErrInvalid", err)
	}
	tot, err := s.Totals(ctx, budget.TotalsRequest{UserID: "alice", Policy: policy(30e9), Now: now, Also: also})
	if err != nil {
		t.Fatal(err)
	}
	if tot.Held != 1e9 || len(tot.Also) != 3 || tot.Also[0].Held != 1e9 || tot.Also[1].Held != 1e9 || tot.Also[2].Held != 1e9 {
		t.Errorf("totals %+v, want 1 held on every budget", tot)
	}
	checkCounters(t, schema)
}
