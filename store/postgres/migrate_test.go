package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/postgres"
)

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
	versions := func() string {
		t.Helper()
		var v []int
		rows, err := db.Query(ctx, qualify(schema, `SELECT version FROM {s}.schema_version ORDER BY version`))
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
