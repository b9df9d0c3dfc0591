package sqlite_test

import (
	"context"
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

// copyFixture copies the fixture into a fresh directory and returns the
// copy's path.
func copyFixture(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(v1Fixture)
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
