package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/sqlite"
)

// testdata/v1.db was written by this package at schema version 1 (before
// templates), with a Manager whose clock started at 2025-03-14 09:00 UTC and
// whose only admin is "root":
//
//   - root set the defaults' limit to $20 (defaults version 2);
//   - root set alice's limit to $50 with the notes "research team";
//   - alice settled a reservation as usage u1 (openai/gpt-4o, 1000 in, 200
//     out, $1.25); at 10:00 recorded u2 (anthropic/claude, 10 in, 20 out,
//     $0.000000001);
//   - at 11:00 root reset alice's budget with the reason "new project";
//   - at 12:00 alice recorded u3 (openai/gpt-4o-mini, 5 in, 6 out, $3.50)
//     and bob, on the defaults, recorded b1 (openai/gpt-4o, $0.10);
//   - at 2025-04-02 08:00 bob's status rolled his period over, and bob
//     reserved $0.30, left open (it expires at 08:10).
//
// The file was then vacuumed with 1 KiB pages, to keep it small.
const v1Fixture = "testdata/v1.db"

// copyFixture copies the version 1 fixture into a fresh directory and
// returns the copy's path.
func copyFixture(t *testing.T) string {
	t.Helper()
	return copyFixtureFrom(t, v1Fixture)
}

// copyFixtureFrom copies the fixture at src into a fresh directory and
// returns the copy's path.
func copyFixtureFrom(t *testing.T, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "budget.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func userVersion(t *testing.T, path string) int {
	t.Helper()
	var v int
	if err := ftRaw(t, path).QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMigrateV1 opens a database written at schema version 1 and checks
// that the migration keeps every setting, usage row and audit entry, and
// that what version 2 adds (templates, the audit log's bulk ID, template
// and type filter) works on it.
func TestMigrateV1(t *testing.T) {
	ctx := context.Background()
	path := copyFixture(t)
	if v := userVersion(t, path); v != 1 {
		t.Fatalf("fixture at version %d, want 1", v)
	}
	s := open(t, path, sqlite.Options{})
	if v := userVersion(t, path); v != sqlite.SchemaVersion {
		t.Fatalf("migrated file at version %d, want %d", v, sqlite.SchemaVersion)
	}
	now := time.Date(2025, time.April, 2, 8, 5, 0, 0, time.UTC)
	m := budget.NewManager(s, budget.Options{Now: func() time.Time { return now }, IsAdmin: func(u string) bool { return u == "root" }})
	root := budget.Principal{UserID: "root", Admin: true}

	// Settings and defaults.
	d, err := m.Defaults(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Limit.Equal(budget.MustAmount("20")) || d.Version != 2 || d.Period != budget.Monthly || !d.Enforce {
		t.Errorf("defaults %+v, want $20 monthly enforced, version 2", d)
	}
	alice, err := m.Lookup(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !alice.Limit.Equal(budget.MustAmount("50")) || alice.AdminNotes != "research team" || alice.Version != 3 ||
		!alice.ResetAt.Equal(time.Date(2025, time.March, 14, 11, 0, 0, 0, time.UTC)) || alice.CanModify {
		t.Errorf("alice %+v, want $50, notes, version 3, reset at 11:00", alice)
	}
	bob, err := m.Lookup(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if !bob.Limit.Equal(budget.MustAmount("20")) || bob.Version != 1 {
		t.Errorf("bob %+v, want $20 at version 1", bob)
	}
	st, err := m.Status(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Spent.IsZero() || !st.Reserved.Equal(budget.MustAmount("0.3")) {
		t.Errorf("bob's status %+v, want nothing spent in April and $0.30 reserved", st)
	}

	// Usage history and breakdowns.
	h, err := m.History(ctx, budget.UsageQuery{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, r := range h.Records {
		rows = append(rows, fmt.Sprintf("%s %s/%s %d/%d %s", r.ID, r.Provider, r.Model, r.InputTokens, r.OutputTokens, r.Cost))
	}
	if got := fmt.Sprint(rows); got != "[u3 openai/gpt-4o-mini 5/6 3.5 u2 anthropic/claude 10/20 0.000000001 u1 openai/gpt-4o 1000/200 1.25]" {
		t.Errorf("alice's history %s", got)
	}
	march := time.Date(2025, time.March, 1, 0, 0, 0, 0, time.UTC)
	b, err := m.Breakdown(ctx, "alice", march, march.AddDate(0, 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !b.Total.Cost.Equal(budget.MustAmount("4.750000001")) || b.Total.Requests != 3 || len(b.ByModel) != 3 {
		t.Errorf("alice's March breakdown %+v, want $4.750000001 in 3 requests of 3 models", b.Total)
	}

	// The audit log: the old entries, with an empty bulk ID and template.
	es, err := s.Audit(ctx, budget.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, fmt.Sprintf("%d %s %s %s %q %s->%s spent %s bulk %q template %q",
			e.ID, e.Type, e.UserID, e.Actor, e.Reason, e.PreviousLimit, e.NewLimit, e.PreviousSpent, e.BulkID, e.Template))
	}
	want := []string{
		`4 automatic bob system "period ended" 20->20 spent 0.1 bulk "" template ""`,
		`3 manual alice root "new project" 50->50 spent 1.250000001 bulk "" template ""`,
		`2 settings alice root "" 20->50 spent 0 bulk "" template ""`,
		`1 defaults  root "" 30->20 spent 0 bulk "" template ""`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("audit log:\n%s\nwant:\n%s", got, want)
	}
	if len(es) == 4 && (es[2].After == nil || es[2].After.AdminNotes != "research team" || es[0].PeriodEnd.IsZero()) {
		t.Errorf("old entries lost their snapshots or periods: %+v", es)
	}

	// What version 2 adds: templates, and entries with a bulk ID and a
	// template, filtered by type.
	plan := budget.DefaultUserPlan()
	plan.Limit = budget.MustAmount("5")
	err = s.SaveTemplate(ctx, budget.TemplateRequest{
		Template: budget.Template{Name: "intern", Plan: plan, Version: 1, UpdatedAt: now},
		Audit: budget.AuditEntry{Type: budget.AuditTemplate, Actor: "root", ActorAdmin: true, Template: "intern",
			NewLimit: plan.Limit, After: &budget.Settings{Plan: plan, Version: 1}, At: now},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.UpdateSettings(ctx, root, "bob", budget.SettingsUpdate{Limit: &plan.Limit}); err != nil {
		t.Fatal(err)
	}
	ts, err := s.Templates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || ts[0].Name != "intern" || !ts[0].Limit.Equal(plan.Limit) || ts[0].Version != 1 {
		t.Errorf("templates %+v, want intern at $5", ts)
	}
	tes, err := s.Audit(ctx, budget.AuditQuery{Type: budget.AuditTemplate})
	if err != nil {
		t.Fatal(err)
	}
	if len(tes) != 1 || tes[0].Template != "intern" || tes[0].ID <= 4 {
		t.Errorf("template entries %+v, want the one just saved", tes)
	}
	manual, err := s.Audit(ctx, budget.AuditQuery{UserID: "alice", Type: budget.AuditManualReset})
	if err != nil {
		t.Fatal(err)
	}
	if len(manual) != 1 || manual[0].ID != 3 {
		t.Errorf("alice's manual resets %+v, want entry 3", manual)
	}
	if _, err := m.Record(ctx, "alice", budget.Usage{ID: "u4", Cost: budget.MustAmount("1")}); err != nil {
		t.Fatal(err)
	}

	// Opened again, the file is current: nothing migrates twice, and what
	// was written stays.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, sqlite.Options{})
	if v := userVersion(t, path); v != sqlite.SchemaVersion {
		t.Errorf("reopened file at version %d", v)
	}
	if ts, err := s.Templates(ctx); err != nil || len(ts) != 1 {
		t.Errorf("templates after reopening: %+v, %v", ts, err)
	}
	if es, err := s.Audit(ctx, budget.AuditQuery{UserID: "bob", Type: budget.AuditSettings}); err != nil || len(es) != 1 {
		t.Errorf("bob's settings entries after reopening: %d, %v; want 1", len(es), err)
	}
}

// testdata/v2.db was written by this package at schema version 2 (commit
// 2f99ca0, before budgets at every scope), with a Manager whose clock
// started at 2025-03-14 09:00 UTC and whose only admin is "root":
//
//   - root set the defaults' limit to $20 (defaults version 2) and saved
//     the template "intern" with a limit of $5;
//   - root set alice's limit to $50 with the notes "research team";
//   - alice reserved $2 and settled it as usage u1 (openai/gpt-4o, 1000
//     in, 200 out, $1.25); at 10:00 recorded u2 (anthropic/claude-sonnet,
//     10 in, 20 out, $0.50);
//   - at 11:00 carol's status created her on the defaults, and root
//     applied the template "intern" to her (a bulk change);
//   - at 12:00 bob, on the defaults, recorded b1 (openai/gpt-4o, $0.10);
//   - at 2025-04-02 08:00 bob's status rolled his period over, then bob
//     reserved $0.30 and alice $1, both left open (they expire at 08:10).
//
// The file was then vacuumed with 1 KiB pages, to keep it small.
const v2Fixture = "testdata/v2.db"

// TestMigrateV2 opens a database written at schema version 2 and checks
// that the migration to version 3 keeps every setting, counter, hold, usage
// row and audit entry; that the holds left open settle and release; and
// that what version 3 adds (teams, orgs, model caps, each budget held in
// the same step as the user's) works on the old users.
func TestMigrateV2(t *testing.T) {
	ctx := context.Background()
	path := copyFixtureFrom(t, v2Fixture)
	if v := userVersion(t, path); v != 2 {
		t.Fatalf("fixture at version %d, want 2", v)
	}
	// The holds left open, read before the store opens the file.
	open2 := map[string]string{}
	rows, err := ftRaw(t, path).Query(`SELECT user_id, hold_id FROM holds WHERE state = 0`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var u, h string
		if err := rows.Scan(&u, &h); err != nil {
			t.Fatal(err)
		}
		open2[u] = h
	}
	rows.Close()
	if len(open2) != 2 || open2["alice"] == "" || open2["bob"] == "" {
		t.Fatalf("the fixture's open holds: %v, want alice's and bob's", open2)
	}

	s := open(t, path, sqlite.Options{})
	if v := userVersion(t, path); v != sqlite.SchemaVersion || v < 3 {
		t.Fatalf("migrated file at version %d, want %d (3 or later)", v, sqlite.SchemaVersion)
	}
	now := time.Date(2025, time.April, 2, 8, 5, 0, 0, time.UTC)
	m := budget.NewManager(s, budget.Options{Now: func() time.Time { return now }, IsAdmin: func(u string) bool { return u == "root" }})
	root := budget.Principal{UserID: "root", Admin: true}
	amt := budget.MustAmount

	// Settings, with no membership and no caps.
	for _, w := range []struct {
		user, limit, notes string
		version            int64
	}{{"alice", "50", "research team", 2}, {"bob", "20", "", 1}, {"carol", "5", "", 2}} {
		set, err := s.Settings(ctx, w.user)
		if err != nil {
			t.Fatal(err)
		}
		if !set.Limit.Equal(amt(w.limit)) || set.AdminNotes != w.notes || set.Version != w.version ||
			set.Teams != nil || set.Org != "" || set.ModelCaps != nil {
			t.Errorf("%s's settings %+v, want $%s, notes %q, version %d, no teams, org or caps", w.user, set, w.limit, w.notes, w.version)
		}
	}
	if d, err := m.Defaults(ctx); err != nil || !d.Limit.Equal(amt("20")) || d.Version != 2 {
		t.Errorf("defaults %+v, %v; want $20 at version 2", d, err)
	}
	if ts, err := s.Templates(ctx); err != nil || len(ts) != 1 || ts[0].Name != "intern" || !ts[0].Limit.Equal(amt("5")) {
		t.Errorf("templates %+v, %v; want intern at $5", ts, err)
	}

	// History, breakdowns and the audit log, before any call rolls a
	// period over.
	h, err := m.History(ctx, budget.UsageQuery{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range h.Records {
		got = append(got, fmt.Sprintf("%s %s/%s %d/%d %s", r.ID, r.Provider, r.Model, r.InputTokens, r.OutputTokens, r.Cost))
	}
	if fmt.Sprint(got) != "[u2 anthropic/claude-sonnet 10/20 0.5 u1 openai/gpt-4o 1000/200 1.25]" {
		t.Errorf("alice's history %s", got)
	}
	march := time.Date(2025, time.March, 1, 0, 0, 0, 0, time.UTC)
	b, err := m.Breakdown(ctx, "alice", march, march.AddDate(0, 1, 0))
	if err != nil || !b.Total.Cost.Equal(amt("1.75")) || b.Total.Requests != 2 || len(b.ByModel) != 2 {
		t.Errorf("alice's March breakdown %+v, %v; want $1.75 in 2 requests of 2 models", b.Total, err)
	}
	es, err := s.Audit(ctx, budget.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, e := range es {
		got = append(got, fmt.Sprintf("%d %s %s %s spent %s template %q bulk %v", e.ID, e.Type, e.UserID, e.Actor, e.PreviousSpent, e.Template, e.BulkID != ""))
	}
	want := []string{
		`6 automatic alice system spent 1.75 template "" bulk false`,
		`5 automatic bob system spent 0.1 template "" bulk false`,
		`4 settings carol root spent 0 template "intern" bulk true`,
		`3 settings alice root spent 0 template "" bulk false`,
		`2 template  root spent 0 template "intern" bulk false`,
		`1 defaults  root spent 0 template "" bulk false`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("audit log:\n%s\nwant:\n%s", got, want)
	}
	if len(es) == 6 && (es[3].After == nil || es[3].After.AdminNotes != "research team" || es[3].After.Teams != nil) {
		t.Errorf("alice's settings entry lost its snapshot: %+v", es[3].After)
	}

	// Counters and open holds.
	for user, reserved := range map[string]string{"alice": "1", "bob": "0.3", "carol": "0"} {
		st, err := m.Status(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Spent.IsZero() || !st.Reserved.Equal(amt(reserved)) || len(st.Budgets) != 0 {
			t.Errorf("%s's status %+v, want nothing spent in April, %s reserved, one budget", user, st, reserved)
		}
	}

	// The holds placed before the migration settle and release.
	april := budget.PeriodWindow(budget.Monthly, 0, time.Time{}, time.UTC, now)
	policy := func(version int64, limit string) budget.Policy {
		l := budget.Nanos(amt(limit).Shift(9).IntPart())
		return budget.Policy{Version: version, Window: april, Limit: l, Enforce: true, Levels: [3]budget.Nanos{l, l, l}}
	}
	tot, err := s.Settle(ctx, budget.SettleRequest{HoldID: open2["bob"], Policy: policy(1, "20"), Now: now,
		Usage: budget.UsageRow{ID: "b2", UserID: "bob", HoldID: open2["bob"], Provider: "openai", Model: "gpt-4o", Cost: 25e7, At: now}})
	if err != nil || tot.Spent != 25e7 || tot.Held != 0 {
		t.Errorf("settling bob's old hold: %+v, %v; want 0.25 spent, nothing held", tot, err)
	}
	if tot, err := s.Release(ctx, budget.ReleaseRequest{UserID: "alice", HoldID: open2["alice"], Policy: policy(2, "50"), Now: now}); err != nil || tot.Held != 0 {
		t.Errorf("releasing alice's old hold: %+v, %v", tot, err)
	}

	// What version 3 adds, on the old users: a team with a model cap and
	// an org, alice in both.
	opus := []budget.ModelCap{{Pattern: "claude-opus-*", Limit: amt("1")}}
	if _, err := m.UpdateBudget(ctx, root, budget.Team("research"), budget.SettingsUpdate{Limit: ptr(amt("10")), ModelCaps: &opus}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.UpdateBudget(ctx, root, budget.Org("acme"), budget.SettingsUpdate{Limit: ptr(amt("100"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetMembership(ctx, root, "alice", budget.Membership{Teams: []string{"research"}, Org: "acme"}); err != nil {
		t.Fatal(err)
	}
	r, err := m.Reserve(ctx, "alice", amt("0.8"), budget.WithModel("claude-opus-4-5"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Reserve(ctx, "alice", amt("0.3"), budget.WithModel("claude-opus-4-1")); !errors.Is(err, budget.ErrBudgetExceeded) {
		t.Errorf("a reserve past the team's $1 opus cap: %v, want ErrBudgetExceeded", err)
	}
	if _, err := r.Settle(ctx, budget.Usage{ID: "a1", Provider: "anthropic", Cost: amt("0.6")}); err != nil {
		t.Fatal(err)
	}
	st, err := m.Status(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	var budgets []string
	for _, b := range st.Budgets {
		budgets = append(budgets, fmt.Sprintf("%v %q %s/%s", b.Scope, b.Pattern, b.Spent, b.Reserved))
	}
	if fmt.Sprint(budgets) != `[user:alice "" 0.6/0 team:research "" 0.6/0 team:research "claude-opus-*" 0.6/0 org:acme "" 0.6/0]` {
		t.Errorf("alice's budgets after the migration: %s", budgets)
	}
	team, err := m.BudgetStatus(ctx, budget.Team("research"))
	if err != nil || len(team.Budgets) != 2 || !team.Budgets[1].Spent.Equal(amt("0.6")) || team.Budgets[1].Pattern != "claude-opus-*" {
		t.Errorf("the team's status %+v, %v; want 0.6 spent on its opus cap", team.Budgets, err)
	}
	for kind, want := range map[budget.ScopeKind]string{
		"": "[alice bob carol]", budget.TeamScope: "[" + budget.Team("research").Key() + "]", budget.OrgScope: "[" + budget.Org("acme").Key() + "]",
	} {
		as, err := s.Accounts(ctx, budget.AccountsQuery{Kind: kind, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, a := range as {
			keys = append(keys, a.Settings.UserID)
		}
		if fmt.Sprint(keys) != want {
			t.Errorf("Accounts of kind %q: %q, want %s", kind, keys, want)
		}
	}
	ftCheckCounters(t, path)
	ftIntegrity(t, path)

	// Opened again, the file is current and keeps what was written.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, sqlite.Options{})
	if v := userVersion(t, path); v != sqlite.SchemaVersion {
		t.Errorf("reopened file at version %d", v)
	}
	set, err := s.Settings(ctx, "alice")
	if err != nil || fmt.Sprint(set.Teams) != "[research]" || set.Org != "acme" {
		t.Errorf("alice after reopening: %+v, %v", set, err)
	}
	tset, err := s.Settings(ctx, budget.Team("research").Key())
	if err != nil || len(tset.ModelCaps) != 1 || !tset.ModelCaps[0].Limit.Equal(amt("1")) {
		t.Errorf("the team after reopening: %+v, %v", tset, err)
	}
}

func ptr[T any](v T) *T { return &v }
