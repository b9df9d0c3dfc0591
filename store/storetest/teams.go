package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/shopspring/decimal"
)

// The cases in this file drive budgets at every scope through the Manager:
// users in teams and orgs, and model caps, held in one atomic step.

// team makes a team (or org) budget with the given limit, monthly in UTC
// unless u says otherwise.
func makeBudget(t testing.TB, m *budget.Manager, scope budget.Scope, limitUSD string, u budget.SettingsUpdate) budget.Settings {
	t.Helper()
	u.Limit = ptr(amt(limitUSD))
	s, err := m.UpdateBudget(ctx, admin, scope, u)
	if err != nil {
		t.Fatalf("UpdateBudget(%v): %v", scope, err)
	}
	return s
}

func join(t testing.TB, m *budget.Manager, user string, ms budget.Membership) {
	t.Helper()
	if _, err := m.SetMembership(ctx, admin, user, ms); err != nil {
		t.Fatalf("SetMembership(%s, %+v): %v", user, ms, err)
	}
}

func limitErr(t testing.TB, err error) *budget.LimitError {
	t.Helper()
	var le *budget.LimitError
	if !errors.As(err, &le) {
		t.Fatalf("got %v, want a *LimitError", err)
	}
	return le
}

// testTeamBindsConcurrent: three users with $30 each in a team of $10: 400
// concurrent reserves of $0.10 spread over them, exactly 100 succeed.
func testTeamBindsConcurrent(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	makeBudget(t, m, budget.Team("research"), "10", budget.SettingsUpdate{})
	users := []string{"u0", "u1", "u2"}
	for _, u := range users {
		configure(t, m, u, limit("30"))
		join(t, m, u, budget.Membership{Teams: []string{"research"}})
	}
	errs := parallel(400, func(i int) error {
		_, err := m.Reserve(ctx, users[i%3], amt("0.10"))
		return err
	})
	if n := succeeded(t, errs, budget.ErrBudgetExceeded); n != 100 {
		t.Errorf("%d of 400 reserves of 0.10 succeeded on a $10 team, want exactly 100", n)
	}
	st, err := m.BudgetStatus(ctx, budget.Team("research"))
	if err != nil {
		t.Fatal(err)
	}
	wantMoney(t, "the team's reserved", st.Reserved, "10")
	for _, e := range errs {
		if e != nil {
			if le := limitErr(t, e); le.Scope != budget.Team("research") {
				t.Fatalf("a refusal names %v, want the team", le.Scope)
			}
		}
	}
}

// testOwnAndTeamBothBind: the user's own budget refuses although the team
// has room, and the team refuses although the user has room.
func testOwnAndTeamBothBind(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	makeBudget(t, m, budget.Team("t"), "10", budget.SettingsUpdate{})
	makeBudget(t, m, budget.Org("o"), "100", budget.SettingsUpdate{})
	configure(t, m, "small", limit("1"))
	configure(t, m, "big", limit("50"))
	join(t, m, "small", budget.Membership{Teams: []string{"t"}, Org: "o"})
	join(t, m, "big", budget.Membership{Teams: []string{"t"}, Org: "o"})
	_, err := m.Reserve(ctx, "small", amt("2"))
	if le := limitErr(t, err); le.Scope != budget.User("small") || !le.Limit.Equal(amt("1")) {
		t.Errorf("the user's own limit binds: refusal names %v with limit %s", le.Scope, le.Limit)
	}
	_, err = m.Reserve(ctx, "big", amt("11"))
	if le := limitErr(t, err); le.Scope != budget.Team("t") || !le.Limit.Equal(amt("10")) || !strings.Contains(le.Error(), `team "t"`) {
		t.Errorf("the team binds: refusal %v names %v with limit %s", le, le.Scope, le.Limit)
	}
	// Nothing was held by either refusal.
	for _, sc := range []budget.Scope{budget.User("small"), budget.User("big"), budget.Team("t"), budget.Org("o")} {
		st, err := m.BudgetStatus(ctx, sc)
		if err != nil {
			t.Fatal(err)
		}
		wantMoney(t, sc.String()+" reserved after refusals", st.Reserved, "0")
	}
	r := reserve(t, m, "big", "4")
	st := status(t, m, "big")
	if len(st.Budgets) != 3 {
		t.Fatalf("big's status lists %d budgets, want own, team, org", len(st.Budgets))
	}
	for i, want := range []struct {
		scope    budget.Scope
		reserved string
		binding  bool
	}{{budget.User("big"), "4", false}, {budget.Team("t"), "4", true}, {budget.Org("o"), "4", false}} {
		b := st.Budgets[i]
		if b.Scope != want.scope || !b.Reserved.Equal(amt(want.reserved)) || b.Binding != want.binding {
			t.Errorf("budget %d: %v reserved %s binding %v; want %v %s %v", i, b.Scope, b.Reserved, b.Binding, want.scope, want.reserved, want.binding)
		}
	}
	if _, err := r.Settle(ctx, budget.Usage{Cost: amt("3")}); err != nil {
		t.Fatal(err)
	}
	tst, err := m.BudgetStatus(ctx, budget.Team("t"))
	if err != nil {
		t.Fatal(err)
	}
	wantTotals(t, tst, "3", "0")
}

// testModelCapPools: a claude-opus-* cap of $5 on a team is shared by every
// Opus model and not touched by Sonnet; refusals name the cap; a call that
// names no model is refused while a cap applies.
func testModelCapPools(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	makeBudget(t, m, budget.Team("t"), "100", budget.SettingsUpdate{
		ModelCaps: &[]budget.ModelCap{{Pattern: "claude-opus-*", Limit: amt("5")}},
	})
	configure(t, m, "u", limit("100"))
	join(t, m, "u", budget.Membership{Teams: []string{"t"}})
	spend := func(model, cost string) error {
		r, err := m.Reserve(ctx, "u", amt(cost), budget.WithModel(model))
		if err != nil {
			return err
		}
		_, err = r.Settle(ctx, budget.Usage{Provider: "anthropic", Cost: amt(cost)})
		return err
	}
	for _, c := range []struct{ model, cost string }{{"claude-opus-4-1", "2"}, {"claude-opus-4-5", "2"}, {"claude-sonnet-4", "20"}} {
		if err := spend(c.model, c.cost); err != nil {
			t.Fatalf("%s for %s: %v", c.model, c.cost, err)
		}
	}
	err := spend("claude-opus-4-5", "2")
	if le := limitErr(t, err); le.Scope != budget.Team("t") || le.Pattern != "claude-opus-*" || !le.Spent.Equal(amt("4")) || !strings.Contains(le.Error(), "claude-opus-*") {
		t.Errorf("the cap binds: refusal %v names %v %q spent %s", le, le.Scope, le.Pattern, le.Spent)
	}
	if err := spend("claude-sonnet-4", "2"); err != nil {
		t.Errorf("sonnet is not capped: %v", err)
	}
	if _, err := m.Reserve(ctx, "u", amt("1")); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("a reserve without a model under a cap: %v, want ErrInvalid", err)
	}
	r, err := m.Reserve(ctx, "u", amt("0.5"), budget.WithModel("claude-opus-4-1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Settle(ctx, budget.Usage{Model: "claude-sonnet-4", Cost: amt("0.5")}); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("a settle naming another model: %v, want ErrInvalid", err)
	}
	st, err := m.BudgetStatus(ctx, budget.Team("t"))
	if err != nil {
		t.Fatal(err)
	}
	wantTotals(t, st, "26", "0.5")
	if len(st.Budgets) != 2 || st.Budgets[1].Pattern != "claude-opus-*" {
		t.Fatalf("the team's status lists %+v, want its own and the cap", st.Budgets)
	}
	wantTotals(t, st.Budgets[1], "4", "0.5")
	if _, err := r.Settle(ctx, budget.Usage{Cost: amt("0.5")}); err != nil {
		t.Fatalf("the settle with the reservation's model: %v", err)
	}
}

// testMembershipChangeWithHolds: a user leaves a team while a hold is in
// flight: the hold settles on the team; the next reserve does not touch it.
func testMembershipChangeWithHolds(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	makeBudget(t, m, budget.Team("t"), "10", budget.SettingsUpdate{})
	configure(t, m, "u", limit("30"))
	join(t, m, "u", budget.Membership{Teams: []string{"t"}})
	r := reserve(t, m, "u", "3")
	released := reserve(t, m, "u", "2")
	join(t, m, "u", budget.Membership{})
	if _, err := r.Settle(ctx, budget.Usage{Cost: amt("2.5")}); err != nil {
		t.Fatal(err)
	}
	if err := released.Release(ctx); err != nil {
		t.Fatal(err)
	}
	team, err := m.BudgetStatus(ctx, budget.Team("t"))
	if err != nil {
		t.Fatal(err)
	}
	wantTotals(t, team, "2.5", "0")
	if _, err := m.Reserve(ctx, "u", amt("20")); err != nil {
		t.Errorf("after leaving the $10 team, a reserve of 20 within the user's 30: %v", err)
	}
	team, _ = m.BudgetStatus(ctx, budget.Team("t"))
	wantTotals(t, team, "2.5", "0")
	es := auditOf(t, m, "u")
	var seen bool
	for _, e := range es {
		for _, c := range e.Changes() {
			if c.Field == "teams" && c.Before == "t" && c.After == "" && e.Actor == "root" {
				seen = true
			}
		}
	}
	if !seen {
		t.Errorf("leaving the team is not audited with teams t → (none): %+v", es)
	}
}

// testTeamRollsOverOnItsOwn: a team monthly in America/New_York, a member
// daily in Asia/Tokyo: each rolls over at its own boundary, audited once.
func testTeamRollsOverOnItsOwn(t *testing.T, s budget.Store) {
	c := NewClock(start)
	m := newManager(s, c, budget.Options{})
	makeBudget(t, m, budget.Team("t"), "10", budget.SettingsUpdate{Timezone: ptr("America/New_York")})
	configure(t, m, "u", budget.SettingsUpdate{Limit: ptr(amt("5")), Period: ptr(budget.Daily), Timezone: ptr("Asia/Tokyo")})
	join(t, m, "u", budget.Membership{Teams: []string{"t"}})
	record(t, m, "u", "a", "1")
	// 2026-12-01 04:59 UTC is still November in New York; the team keeps
	// its spend while the member has rolled over several Tokyo days.
	c.Set(time.Date(2026, 12, 1, 4, 59, 0, 0, time.UTC))
	st := status(t, m, "u")
	wantTotals(t, st, "0", "0")
	wantTotals(t, st.Budgets[1], "1", "0")
	c.Set(time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC)) // midnight in New York
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { _, _ = m.Status(ctx, "u") })
	}
	wg.Wait()
	st = status(t, m, "u")
	wantTotals(t, st.Budgets[1], "0", "0")
	es, err := m.AuditLog(ctx, admin, budget.AuditLogQuery{Scope: budget.Team("t"), Type: budget.AuditAutomaticReset})
	if err != nil {
		t.Fatal(err)
	}
	if len(es.Entries) != 1 || !es.Entries[0].PreviousSpent.Equal(amt("1")) {
		t.Errorf("the team's rollovers: %+v, want one with 1 spent", es.Entries)
	}
}

// testScopeBadInput: each bad input is a clear error that changes nothing.
func testScopeBadInput(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	makeBudget(t, m, budget.Team("t"), "10", budget.SettingsUpdate{})
	makeBudget(t, m, budget.Org("o"), "10", budget.SettingsUpdate{})
	makeBudget(t, m, budget.Org("p"), "10", budget.SettingsUpdate{})
	configure(t, m, "u", limit("30"))
	before, _ := m.Settings(ctx, "u")
	tooMany := make([]string, budget.MaxTeamsPerUser+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprint("team", i)
	}
	user := budget.Principal{UserID: "u"}
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"unknown team", fst(m.SetMembership(ctx, admin, "u", budget.Membership{Teams: []string{"t", "nope"}})), budget.ErrInvalid},
		{"unknown org", fst(m.SetMembership(ctx, admin, "u", budget.Membership{Org: "nope"})), budget.ErrInvalid},
		{"too many teams", fst(m.SetMembership(ctx, admin, "u", budget.Membership{Teams: tooMany})), budget.ErrInvalid},
		{"not an admin", fst(m.SetMembership(ctx, user, "u", budget.Membership{Teams: []string{"t"}})), budget.ErrForbidden},
		{"invalid glob", fst(m.UpdateBudget(ctx, admin, budget.Team("t"), budget.SettingsUpdate{ModelCaps: &[]budget.ModelCap{{Pattern: "gpt-[4]o", Limit: amt("1")}}})), budget.ErrInvalid},
		{"bad cap amount", fst(m.UpdateBudget(ctx, admin, budget.Team("t"), budget.SettingsUpdate{ModelCaps: &[]budget.ModelCap{{Pattern: "gpt-4o", Limit: decimal.NewFromInt(-1)}}})), budget.ErrInvalidAmount},
		{"a user's own caps", fst(m.UpdateSettings(ctx, user, "u", budget.SettingsUpdate{ModelCaps: &[]budget.ModelCap{}})), budget.ErrForbidden},
		{"a team by a user", fst(m.UpdateBudget(ctx, user, budget.Team("t"), limit("99"))), budget.ErrForbidden},
		{"bad team ID", fst(m.UpdateBudget(ctx, admin, budget.Team("a\x01"), limit("1"))), budget.ErrInvalid},
		{"a missing team to an org", fst(m.SetTeamOrg(ctx, admin, "nope", "o")), budget.ErrNotFound},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
	if _, err := m.SetTeamOrg(ctx, admin, "t", "o"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetTeamOrg(ctx, admin, "t", "p"); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("a team in a second org: %v, want ErrInvalid", err)
	}
	after, _ := m.Settings(ctx, "u")
	if after.Version != before.Version || len(after.Teams) != 0 || after.Org != "" {
		t.Errorf("refused changes changed the user: %+v", after)
	}
	team, err := m.BudgetSettings(ctx, admin, budget.Team("t"))
	if err != nil || team.Org != "o" || len(team.ModelCaps) != 0 || !team.Limit.Equal(amt("10")) {
		t.Errorf("the team after refused changes: %+v, %v", team, err)
	}
	members, err := m.Members(ctx, admin, budget.Org("o"))
	if err != nil || fmt.Sprint(members) != "[team:t]" {
		t.Errorf("org o's members: %v, %v", members, err)
	}
}

// testTeamAlerts: OnAlert reports a team's level with its scope and the
// user whose call crossed it.
func testTeamAlerts(t *testing.T, s budget.Store) {
	var mu sync.Mutex
	var got []budget.Alert
	m := newManager(s, NewClock(start), budget.Options{OnAlert: func(a budget.Alert) {
		mu.Lock()
		got = append(got, a)
		mu.Unlock()
	}})
	makeBudget(t, m, budget.Team("t"), "10", budget.SettingsUpdate{})
	configure(t, m, "u", limit("100"))
	join(t, m, "u", budget.Membership{Teams: []string{"t"}})
	record(t, m, "u", "a", "8")
	mu.Lock()
	defer mu.Unlock()
	var team []budget.Level
	for _, a := range got {
		if a.Scope == budget.Team("t") {
			if a.UserID != "u" || a.Status.Scope != budget.Team("t") {
				t.Errorf("a team alert: %+v", a)
			}
			team = append(team, a.Level)
		}
	}
	if fmt.Sprint(team) != fmt.Sprint([]budget.Level{budget.Yellow}) {
		t.Errorf("the team's alerts at 80%%: %v, want yellow", team)
	}
}

func fst[T any](_ T, err error) error { return err }

// testTeamQueries: admins list teams with their status and summary, read
// the usage and breakdown charged to a team, and its audit entries.
func testTeamQueries(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	makeBudget(t, m, budget.Team("alpha"), "10", budget.SettingsUpdate{})
	makeBudget(t, m, budget.Team("beta"), "20", budget.SettingsUpdate{})
	makeBudget(t, m, budget.Org("o"), "100", budget.SettingsUpdate{})
	for _, u := range []string{"ann", "bob"} {
		configure(t, m, u, limit("30"))
		join(t, m, u, budget.Membership{Teams: []string{"alpha"}, Org: "o"})
	}
	for _, c := range []struct{ user, id, model, cost string }{{"ann", "x", "gpt-4o", "9"}, {"bob", "x", "claude-sonnet-4", "1.5"}} {
		if _, err := m.Record(ctx, c.user, budget.Usage{ID: c.id, Provider: "p", Model: c.model, Cost: amt(c.cost)}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := m.ListBudgets(ctx, admin, budget.TeamScope, budget.UserQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Users) != 2 || page.Users[0].Settings.Scope() != budget.Team("alpha") || page.Users[0].Status.Level != budget.Red ||
		!page.Users[0].Status.Spent.Equal(amt("10.5")) || page.Summary.Users != 2 || !page.Summary.TotalLimit.Equal(amt("30")) || page.Summary.OverBudget != 1 {
		t.Errorf("ListBudgets(teams): %+v", page)
	}
	if p, err := m.ListBudgets(ctx, admin, budget.TeamScope, budget.UserQuery{Search: "BET"}); err != nil || len(p.Users) != 1 || p.Users[0].Settings.Scope() != budget.Team("beta") {
		t.Errorf("ListBudgets(teams, search BET): %+v, %v", p.Users, err)
	}
	if _, err := m.ListBudgets(ctx, budget.Principal{UserID: "ann"}, budget.TeamScope, budget.UserQuery{}); !errors.Is(err, budget.ErrForbidden) {
		t.Errorf("ListBudgets by a user: %v, want ErrForbidden", err)
	}
	if users, err := m.ListUsers(ctx, admin, budget.UserQuery{}); err != nil || len(users.Users) != 2 {
		t.Errorf("ListUsers lists teams or orgs: %+v, %v", users.Users, err)
	}
	h, err := m.History(ctx, budget.UsageQuery{Scope: budget.Org("o")})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Records) != 2 || h.Records[0].UserID != "bob" || h.Records[0].ID != "x" || h.Records[1].UserID != "ann" {
		t.Errorf("the org's history: %+v", h.Records)
	}
	b, err := m.BudgetBreakdown(ctx, budget.Team("alpha"), time.Time{}, time.Time{})
	if err != nil || !b.Total.Cost.Equal(amt("10.5")) || len(b.ByModel) != 2 || b.ByModel[0].Model != "gpt-4o" {
		t.Errorf("the team's breakdown: %+v, %v", b, err)
	}
	if _, err := m.History(ctx, budget.UsageQuery{UserID: "ann", Scope: budget.Team("alpha")}); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("a history query with a user and a scope: %v, want ErrInvalid", err)
	}
	es, err := m.AuditLog(ctx, admin, budget.AuditLogQuery{Scope: budget.Team("beta")})
	if err != nil || len(es.Entries) != 1 || es.Entries[0].Type != budget.AuditSettings {
		t.Errorf("the team's audit: %+v, %v", es.Entries, err)
	}
}
