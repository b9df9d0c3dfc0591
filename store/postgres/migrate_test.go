package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/postgres"
	"github.com/llmbudget/budget/store/storetest"
)

// schemaVersions returns the versions schema_version lists, in order.
func schemaVersions(t *testing.T, db *pgxpool.Pool, schema string) string {
	t.Helper()
	var v []int
	rows, err := db.Query(context.Background(), qualify(schema, `SELECT version FROM {s}.schema_version ORDER BY version`))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		v = append(v, n)
	}
	return fmt.Sprint(v)
}

// allVersions is what schemaVersions returns for a current schema.
func allVersions() string {
	var all []int
	for v := 1; v <= postgres.SchemaVersion; v++ {
		all = append(all, v)
	}
	return fmt.Sprint(all)
}

// TestMigrateV1 builds a schema at version 1 (before templates), fills it
// as version 1 of this package would have, then opens it: the migration
// keeps every setting, usage row and audit entry, and what version 2 adds
// (templates, the audit log's bulk ID, template and type filter) works on
// it.
func TestMigrateV1(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	db := adminPool(t)
	if err := postgres.MigrateTo(ctx, db, schema, 1); err != nil {
		t.Fatal(err)
	}
	at := func(day, hour int) int64 { return time.Date(2025, time.March, day, hour, 0, 0, 0, time.UTC).UnixNano() }
	march, april := at(1, 0), time.Date(2025, time.April, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	defaults := budget.DefaultUserPlan()
	defaults.Limit = budget.MustAmount("20")
	plan, err := json.Marshal(defaults)
	if err != nil {
		t.Fatal(err)
	}
	before := budget.Settings{UserID: "alice", Plan: defaults, Version: 1}
	after := before
	after.Limit, after.AdminNotes, after.Version = budget.MustAmount("50"), "research team", 2
	bj, _ := json.Marshal(before)
	aj, _ := json.Marshal(after)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE {s}.defaults SET plan = $1, version = 2, updated_at = $2`, []any{json.RawMessage(plan), at(14, 9)}},
		{`INSERT INTO {s}.users (user_id, limit_nanos, period, custom_days, custom_anchor, timezone, enforce,
			yellow, orange, red, visible, can_modify, can_reset, admin_notes, reset_at, version, created_at, updated_at,
			win_start, win_end, spent, held, next_expiry, marked)
			VALUES ('alice', 50000000000, 'monthly', 0, NULL, '', true, '75', '90', '100', true, false, false,
			'research team', NULL, 2, $1, $1, $2, $3, 1250000001, 0, NULL, 0)`, []any{at(14, 9), march, april}},
		{`INSERT INTO {s}.usage (user_id, id, hold_id, provider, model, input_tokens, output_tokens, cost, at) VALUES
			('alice', 'u1', 'h-1', 'openai', 'gpt-4o', 1000, 200, 1250000000, $1),
			('alice', 'u2', '', 'anthropic', 'claude', 10, 20, 1, $2)`, []any{at(14, 9), at(14, 10)}},
		{`INSERT INTO {s}.holds (user_id, hold_id, amount, expires, state, counted) VALUES ('alice', 'h-1', 2000000000, $1, 1, false)`,
			[]any{at(14, 10)}},
		{`INSERT INTO {s}.usage_daily (user_id, day, provider, model, cost, requests, input_tokens, output_tokens) VALUES
			('alice', $1, 'openai', 'gpt-4o', 1250000000, 1, 1000, 200),
			('alice', $1, 'anthropic', 'claude', 1, 1, 10, 20)`, []any{at(14, 0) / (24 * int64(time.Hour))}},
		{`INSERT INTO {s}.audit (user_id, type, actor, actor_admin, reason, previous_limit, new_limit, previous_spent,
			period_start, period_end, before, after, at) VALUES
			('', 'defaults', 'root', true, '', 30000000000, 20000000000, 0, NULL, NULL, NULL, NULL, $1),
			('alice', 'settings', 'root', true, '', 20000000000, 50000000000, 0, NULL, NULL, $2, $3, $1),
			('alice', 'manual', 'root', true, 'new project', 50000000000, 50000000000, 7, $4, $1, NULL, NULL, $1)`,
			[]any{at(14, 9), json.RawMessage(bj), json.RawMessage(aj), march}},
	} {
		if _, err := db.Exec(ctx, qualify(schema, q.sql), q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	versions := func() string { return schemaVersions(t, db, schema) }
	if got := versions(); got != "[1]" {
		t.Fatalf("schema versions %s before opening, want [1]", got)
	}

	s := open(t, schema)
	var all []int
	for v := 1; v <= postgres.SchemaVersion; v++ {
		all = append(all, v)
	}
	if got := versions(); got != fmt.Sprint(all) {
		t.Fatalf("schema versions %s after opening, want %v", got, all)
	}
	now := time.Date(2025, time.March, 20, 12, 0, 0, 0, time.UTC)
	m := budget.NewManager(s, budget.Options{Now: func() time.Time { return now }, IsAdmin: func(u string) bool { return u == "root" }})
	root := budget.Principal{UserID: "root", Admin: true}

	d, err := m.Defaults(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Limit.Equal(budget.MustAmount("20")) || d.Version != 2 {
		t.Errorf("defaults %+v, want $20 at version 2", d)
	}
	alice, err := m.Lookup(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !alice.Limit.Equal(budget.MustAmount("50")) || alice.AdminNotes != "research team" || alice.Version != 2 {
		t.Errorf("alice %+v, want $50 with notes at version 2", alice)
	}
	st, err := m.Status(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Spent.Equal(budget.MustAmount("1.250000001")) || !st.Reserved.IsZero() {
		t.Errorf("alice's status %+v, want $1.250000001 spent", st)
	}
	h, err := m.History(ctx, budget.UsageQuery{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Records) != 2 || h.Records[0].ID != "u2" || h.Records[1].ReservationID != "h-1" || h.Records[1].InputTokens != 1000 {
		t.Errorf("alice's history %+v", h.Records)
	}
	b, err := m.Breakdown(ctx, "alice", time.Unix(0, march), time.Unix(0, april))
	if err != nil {
		t.Fatal(err)
	}
	if !b.Total.Cost.Equal(budget.MustAmount("1.250000001")) || b.Total.Requests != 2 {
		t.Errorf("alice's March breakdown %+v", b.Total)
	}

	es, err := s.Audit(ctx, budget.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, fmt.Sprintf("%d %s %s %q %s->%s spent %s bulk %q template %q",
			e.ID, e.Type, e.UserID, e.Reason, e.PreviousLimit, e.NewLimit, e.PreviousSpent, e.BulkID, e.Template))
	}
	want := []string{
		`3 manual alice "new project" 50->50 spent 0.000000007 bulk "" template ""`,
		`2 settings alice "" 20->50 spent 0 bulk "" template ""`,
		`1 defaults  "" 30->20 spent 0 bulk "" template ""`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("audit log:\n%s\nwant:\n%s", got, want)
	}
	if es[1].After == nil || es[1].After.AdminNotes != "research team" || es[1].Before == nil || !es[0].PeriodStart.Equal(time.Unix(0, march)) {
		t.Errorf("old entries lost their snapshots or periods: %+v", es)
	}

	// What version 2 adds.
	tp := budget.DefaultUserPlan()
	tp.Limit = budget.MustAmount("5")
	err = s.SaveTemplate(ctx, budget.TemplateRequest{
		Template: budget.Template{Name: "intern", Plan: tp, Version: 1, UpdatedAt: now},
		Audit: budget.AuditEntry{Type: budget.AuditTemplate, Actor: "root", ActorAdmin: true, Template: "intern",
			BulkID: "b-1", NewLimit: tp.Limit, After: &budget.Settings{Plan: tp, Version: 1}, At: now},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := s.Templates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || ts[0].Name != "intern" || !ts[0].Limit.Equal(tp.Limit) || !ts[0].UpdatedAt.Equal(now) {
		t.Errorf("templates %+v, want intern at $5", ts)
	}
	tes, err := s.Audit(ctx, budget.AuditQuery{Type: budget.AuditTemplate})
	if err != nil {
		t.Fatal(err)
	}
	if len(tes) != 1 || tes[0].Template != "intern" || tes[0].BulkID != "b-1" || tes[0].ID != 4 {
		t.Errorf("template entries %+v, want entry 4, just saved", tes)
	}
	if _, err := m.UpdateSettings(ctx, root, "alice", budget.SettingsUpdate{Limit: &tp.Limit}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Record(ctx, "alice", budget.Usage{ID: "u3", Cost: budget.MustAmount("1")}); err != nil {
		t.Fatal(err)
	}
	settings, err := s.Audit(ctx, budget.AuditQuery{UserID: "alice", Type: budget.AuditSettings})
	if err != nil {
		t.Fatal(err)
	}
	if len(settings) != 2 || settings[0].ID != 5 || settings[1].ID != 2 {
		t.Errorf("alice's settings entries %+v, want 5 and 2", settings)
	}

	// Opened again, the schema is current: nothing migrates twice.
	s.Close()
	s = open(t, schema)
	if got := versions(); got != fmt.Sprint(all) {
		t.Errorf("schema versions %s after reopening", got)
	}
	if ts, err := s.Templates(ctx); err != nil || len(ts) != 1 {
		t.Errorf("templates after reopening: %+v, %v", ts, err)
	}
}

// TestMigrateV2 loads testdata/v2.sql, a schema at version 2 with its data
// as the code of that version made them (see testdata/v2fixture), and
// opens it: the migration to version 3 keeps every setting, counter, hold,
// usage row, rollup and audit entry; old users work as before (their
// pending hold settles); and what version 3 adds (teams, orgs, model caps)
// works with them.
func TestMigrateV2(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	dump, err := os.ReadFile("testdata/v2.sql")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	// No arguments: the simple protocol, which runs the script.
	if _, err := conn.Exec(ctx, strings.ReplaceAll(string(dump), "budget_v2_fixture", pgx.Identifier{schema}.Sanitize())); err != nil {
		t.Fatalf("loading the version 2 fixture: %v", err)
	}
	conn.Close(ctx)
	db := adminPool(t)
	if got := schemaVersions(t, db, schema); got != "[1 2]" {
		t.Fatalf("the fixture's schema versions are %s, want [1 2]", got)
	}

	s := open(t, schema)
	if got := schemaVersions(t, db, schema); got != allVersions() {
		t.Fatalf("schema versions %s after opening, want %s", got, allVersions())
	}
	// The fixture ran from 2026-03-10 12:00 UTC; alice's hold of 3, placed
	// at 12:02 with a TTL of an hour, is pending.
	const pendingHold = "h-8e2748d2ec91-2"
	c := storetest.NewClock(time.Date(2026, time.March, 10, 12, 30, 0, 0, time.UTC))
	m := budget.NewManager(s, budget.Options{Now: c.Now, IsAdmin: func(u string) bool { return u == "root" }})
	amt := budget.MustAmount

	alice, err := m.Lookup(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !alice.Limit.Equal(amt("50")) || alice.AdminNotes != "research team" || alice.Version != 2 ||
		alice.Teams != nil || alice.Org != "" || alice.ModelCaps != nil {
		t.Errorf("alice %+v, want $50 with notes at version 2, in no team", alice)
	}
	st, err := m.Status(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Spent.Equal(amt("2.750000001")) || !st.Reserved.Equal(amt("3")) {
		t.Errorf("alice's status: spent %s reserved %s, want 2.750000001 and 3", st.Spent, st.Reserved)
	}
	// The pending hold settles, through the store (its Reservation was the
	// old process's), with alice's policy as the Manager computes it.
	l := budget.Nanos(50e9)
	p := budget.Policy{Version: 2, Limit: l, Enforce: true, Levels: [3]budget.Nanos{l * 75 / 100, l * 90 / 100, l},
		Window: budget.PeriodWindow(budget.Monthly, 0, time.Time{}, time.UTC, c.Now())}
	tot, err := s.Settle(ctx, budget.SettleRequest{HoldID: pendingHold, Policy: p, Now: c.Now(), Usage: budget.UsageRow{
		ID: "u3", UserID: "alice", HoldID: pendingHold, Provider: "openai", Model: "gpt-4o", Cost: 1e9, At: c.Now()}})
	if err != nil {
		t.Fatalf("settling the old pending hold: %v", err)
	}
	if tot.Spent != 3_750_000_001 || tot.Held != 0 {
		t.Errorf("after the settle: %+v, want 3.750000001 spent and nothing held", tot)
	}
	h, err := m.History(ctx, budget.UsageQuery{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range h.Records {
		ids = append(ids, r.ID+"/"+r.ReservationID+"/"+r.Cost.String())
	}
	if want := "[u3/" + pendingHold + "/1 u2/h-8e2748d2ec91-1/1.500000001 u1//1.25]"; fmt.Sprint(ids) != want {
		t.Errorf("alice's history %v, want %s", ids, want)
	}
	b, err := m.Breakdown(ctx, "alice", time.Date(2026, time.March, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, time.April, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || !b.Total.Cost.Equal(amt("3.750000001")) || b.Total.Requests != 3 {
		t.Errorf("alice's March breakdown %+v, %v", b.Total, err)
	}
	// bob is daily in Paris, and was reset by hand on the fixture's second
	// day: the usage from the reset on counts.
	c.Set(time.Date(2026, time.March, 11, 13, 0, 0, 0, time.UTC))
	st, err = m.Status(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Spent.Equal(amt("0.25")) || !st.Limit.Equal(amt("3")) || st.PeriodEnd.Hour() != 23 {
		t.Errorf("bob's status %+v, want 0.25 of 3 until 23:00 UTC", st)
	}
	es, err := s.Audit(ctx, budget.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, fmt.Sprintf("%d %s %s %s", e.ID, e.Type, e.UserID, e.Template))
	}
	if want := "[6 manual bob  5 automatic bob  4 settings bob  3 settings alice  2 template  intern 1 defaults  ]"; fmt.Sprint(got) != want {
		t.Errorf("audit log %v, want %s", got, want)
	}
	if es[3].After == nil || es[3].After.AdminNotes != "research team" || es[3].After.Teams != nil {
		t.Errorf("an old settings entry's snapshot: %+v", es[3].After)
	}
	if ts, err := s.Templates(ctx); err != nil || len(ts) != 1 || ts[0].Name != "intern" || !ts[0].Limit.Equal(amt("5")) {
		t.Errorf("templates %+v, %v", ts, err)
	}
	if d, err := m.Defaults(ctx); err != nil || !d.Limit.Equal(amt("20")) || d.Version != 2 {
		t.Errorf("defaults %+v, %v", d, err)
	}

	// What version 3 adds, on the old users: alice joins a team of $4 in
	// an org whose claude-opus-* cap is $1.
	c.Set(time.Date(2026, time.March, 12, 9, 0, 0, 0, time.UTC))
	if _, err := m.UpdateBudget(ctx, admin, budget.Org("acme"), budget.SettingsUpdate{Limit: ptrTo(amt("100")),
		ModelCaps: &[]budget.ModelCap{{Pattern: "claude-opus-*", Limit: amt("1")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.UpdateBudget(ctx, admin, budget.Team("research"), budget.SettingsUpdate{Limit: ptrTo(amt("4"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetMembership(ctx, admin, "alice", budget.Membership{Teams: []string{"research"}, Org: "acme"}); err != nil {
		t.Fatal(err)
	}
	var le *budget.LimitError
	if _, err := m.Reserve(ctx, "alice", amt("2"), budget.WithModel("claude-opus-4-5")); !errors.As(err, &le) || le.Pattern != "claude-opus-*" {
		t.Errorf("a reserve past the org's cap: %v", err)
	}
	r, err := m.Reserve(ctx, "alice", amt("0.5"), budget.WithModel("claude-opus-4-5"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Settle(ctx, budget.Usage{Cost: amt("0.5")}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Reserve(ctx, "alice", amt("3.6"), budget.WithModel("gpt-4o")); !errors.As(err, &le) || le.Scope != budget.Team("research") {
		t.Errorf("a reserve past the team's limit: %v", err)
	}
	for scope, spent := range map[budget.Scope]string{budget.User("alice"): "4.250000001", budget.Team("research"): "0.5", budget.Org("acme"): "0.5"} {
		if st, err := m.BudgetStatus(ctx, scope); err != nil || !st.Spent.Equal(amt(spent)) || !st.Reserved.IsZero() {
			t.Errorf("%v: %+v, %v; want %s spent", scope, st, err, spent)
		}
	}
	for kind, want := range map[budget.ScopeKind]string{"": "[alice bob]", budget.TeamScope: "[\x1fteam:research]", budget.OrgScope: "[\x1forg:acme]"} {
		as, err := s.Accounts(ctx, budget.AccountsQuery{Kind: kind, Now: c.Now()})
		var keys []string
		for _, a := range as {
			keys = append(keys, a.Settings.UserID)
		}
		if err != nil || fmt.Sprint(keys) != want {
			t.Errorf("accounts of kind %q: %q, %v; want %q", kind, keys, err, want)
		}
	}
	checkCounters(t, schema)

	// Opened again, the schema is current: nothing migrates twice.
	s.Close()
	open(t, schema)
	if got := schemaVersions(t, db, schema); got != allVersions() {
		t.Errorf("schema versions %s after reopening", got)
	}
}

func ptrTo[T any](v T) *T { return &v }
