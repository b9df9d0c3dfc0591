package storetest

// Cases of Store.Import: several budgets' settings and audit entries
// written in one atomic step, through Manager.ImportSettings and
// ImportSeed and directly.

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmbudget/budget"
)

func init() {
	cases = append(cases, []struct {
		name string
		run  func(*testing.T, budget.Store)
	}{
		{"ImportSettingsAllOrNothing", testImportAllOrNothing},
		{"ImportStaleVersionChangesNothing", testImportStale},
		{"ImportSettingsRoundTrip", testImportRoundTrip},
		{"ImportSeed", testImportSeed},
		{"ImportConcurrentChange", testImportConcurrent},
	}...)
}

// exportSettings returns the settings CSV of every user.
func exportSettings(t testing.TB, m *budget.Manager) string {
	t.Helper()
	var b bytes.Buffer
	if err := m.ExportSettings(ctx, admin, &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// exportAudit returns the audit log as CSV.
func exportAudit(t testing.TB, m *budget.Manager) string {
	t.Helper()
	var b bytes.Buffer
	if err := m.ExportAudit(ctx, admin, &b, budget.AuditLogQuery{}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func testImportAllOrNothing(t *testing.T, s budget.Store) {
	c := NewClock(start)
	m := newManager(s, c, budget.Options{})
	configure(t, m, "alice", limit("10"))
	record(t, m, "alice", "x", "4")
	before, audit := exportSettings(t, m), exportAudit(t, m)
	good := "user_id,limit_usd,timezone,admin_notes\r\nalice,20,Europe/Paris,\"a, \"\"b\"\"\"\r\nbob,5,,'=1+1\r\n"
	for _, bad := range []string{
		good + "carol,abc,,\r\n",                         // a bad amount
		good + "carol,1,Mars/Olympus,\r\n",               // an unknown zone
		good + "carol,1\r\n",                             // a wrong number of cells
		good + "alice,30,,\r\n",                          // a user twice
		strings.Replace(good, "admin_notes", "notes", 1), // an unknown column
		good + "carol,1,\"UTC,\r\n",                      // a quote never closed
		good + "ca\"rol,1,,\r\n",                         // a stray quote
		good + "\uFEFFcarol,1,,\r\n",                     // a byte order mark inside
		"user_id,limit_usd,limit_usd\r\ncarol,1,1\r\n",
		"",
	} {
		for _, dry := range []bool{true, false} {
			res, err := m.ImportSettings(ctx, admin, strings.NewReader(bad), budget.ImportOptions{DryRun: dry})
			var ie *budget.ImportError
			if !errors.As(err, &ie) || !errors.Is(err, budget.ErrInvalid) || res.Applied {
				t.Errorf("%q: %+v, %v; want an *ImportError", bad, res, err)
			}
			if got := exportSettings(t, m); got != before {
				t.Errorf("%q changed the settings:\n%s", bad, got)
			}
			if got := exportAudit(t, m); got != audit {
				t.Errorf("%q changed the audit log", bad)
			}
		}
	}
	// The dry run of the good file reports and changes nothing.
	res, err := m.ImportSettings(ctx, admin, strings.NewReader(good), budget.ImportOptions{DryRun: true})
	if err != nil || res.Applied || res.Changed != 2 || res.Created != 1 || len(res.Rows) != 2 {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
	if got := exportSettings(t, m); got != before {
		t.Errorf("the dry run changed the settings")
	}
	if ch := res.Rows[0].Changes; len(ch) != 3 || ch[0] != (budget.Change{Field: "limit_usd", Before: "10", After: "20"}) {
		t.Errorf("alice's changes %+v", ch)
	}
	// The real run writes both.
	res, err = m.ImportSettings(ctx, admin, strings.NewReader(good), budget.ImportOptions{Reason: "move to Paris"})
	if err != nil || !res.Applied || res.Changed != 2 {
		t.Fatalf("import: %+v, %v", res, err)
	}
	a, b := status(t, m, "alice"), status(t, m, "bob")
	wantMoney(t, "alice's limit", a.Limit, "20")
	wantMoney(t, "alice's spent", a.Spent, "4")
	wantMoney(t, "bob's limit", b.Limit, "5")
	if a.Timezone != "Europe/Paris" {
		t.Errorf("alice's zone %q", a.Timezone)
	}
	set, err := m.Lookup(ctx, "bob")
	if err != nil || set.AdminNotes != "=1+1" {
		t.Errorf("bob's notes %q, %v", set.AdminNotes, err)
	}
	set, _ = m.Lookup(ctx, "alice")
	if set.AdminNotes != `a, "b"` {
		t.Errorf("alice's notes %q", set.AdminNotes)
	}
	es := auditOf(t, m, "alice")
	if es[0].Type != budget.AuditSettings || es[0].BulkID != res.BulkID || es[0].Reason != "move to Paris" {
		t.Errorf("alice's audit entry %+v", es[0])
	}
	// Again: nothing changes, nothing is written.
	res, err = m.ImportSettings(ctx, admin, strings.NewReader(good), budget.ImportOptions{})
	if err != nil || res.Changed != 0 || len(auditOf(t, m, "alice")) != len(es) {
		t.Errorf("a second import: %+v, %v", res, err)
	}
	if _, err := m.ImportSettings(ctx, budget.Principal{UserID: "alice"}, strings.NewReader(good), budget.ImportOptions{}); !errors.Is(err, budget.ErrForbidden) {
		t.Errorf("a user's import: %v", err)
	}
}

// testImportStale calls the store directly: one item whose version moved
// on makes the whole request fail, new budgets included.
func testImportStale(t *testing.T, s budget.Store) {
	c := NewClock(start)
	m := newManager(s, c, budget.Options{})
	a := configure(t, m, "a", limit("1"))
	b := configure(t, m, "b", limit("2"))
	pol := func(set budget.Settings) budget.Policy { return policyOf(set, start) }
	item := func(cur budget.Settings, lim string, create bool) budget.ImportItem {
		next := cur
		next.Limit, next.Version = amt(lim), cur.Version+1
		return budget.ImportItem{Create: create, Initial: cur, Settings: next, Current: pol(cur), Next: pol(next),
			Audit: budget.AuditEntry{UserID: cur.UserID, Type: budget.AuditSettings, Actor: "root", At: start}}
	}
	newUser := budget.Settings{UserID: "c", Plan: budget.DefaultUserPlan(), Version: 1, CreatedAt: start, UpdatedAt: start}
	stale := b
	stale.Version--
	extra := budget.AuditEntry{UserID: "a", Type: budget.AuditManualReset, Actor: "x", At: start.Add(-time.Hour)}
	_, err := s.Import(ctx, budget.ImportRequest{Items: []budget.ImportItem{item(a, "10", false), item(stale, "20", false), item(newUser, "30", true)},
		Audit: []budget.AuditEntry{extra}, Now: start})
	if !errors.Is(err, budget.ErrConflict) {
		t.Fatalf("stale import: %v, want ErrConflict", err)
	}
	if _, err := s.Settings(ctx, "c"); !errors.Is(err, budget.ErrNotFound) {
		t.Errorf("the failed import created c: %v", err)
	}
	if set, _ := s.Settings(ctx, "a"); !set.Limit.Equal(amt("1")) || set.Version != a.Version {
		t.Errorf("the failed import changed a: %+v", set)
	}
	if n := len(auditOf(t, m, "a")); n != 1 {
		t.Errorf("a has %d audit entries, want 1", n)
	}
	// A Create item for a budget that has settings is a conflict.
	if _, err := s.Import(ctx, budget.ImportRequest{Items: []budget.ImportItem{item(a, "10", true)}, Now: start}); !errors.Is(err, budget.ErrConflict) {
		t.Errorf("create over an existing budget: %v, want ErrConflict", err)
	}
	// An item of a budget without settings is ErrNotFound.
	if _, err := s.Import(ctx, budget.ImportRequest{Items: []budget.ImportItem{item(newUser, "10", false)}, Now: start}); !errors.Is(err, budget.ErrNotFound) {
		t.Errorf("update of a missing budget: %v, want ErrNotFound", err)
	}
	// The good request writes everything.
	ts, err := s.Import(ctx, budget.ImportRequest{Items: []budget.ImportItem{item(a, "10", false), item(b, "20", false), item(newUser, "30", true)},
		Audit: []budget.AuditEntry{extra}, Now: start})
	if err != nil || len(ts) != 3 {
		t.Fatalf("import: %v, %v", ts, err)
	}
	for user, want := range map[string]string{"a": "10", "b": "20", "c": "30"} {
		if set, err := s.Settings(ctx, user); err != nil || !set.Limit.Equal(amt(want)) {
			t.Errorf("%s: %+v, %v", user, set, err)
		}
	}
	es := auditOf(t, m, "a")
	if len(es) != 3 || es[0].Type != budget.AuditManualReset || !es[0].At.Equal(extra.At) {
		t.Errorf("a's audit log %+v", es)
	}
}

// testImportRoundTrip exports users with every kind of setting, imports
// the file into the same store (nothing changes) and into a fresh one
// (the same settings), and exports that again (the same file).
func testImportRoundTrip(t *testing.T, s budget.Store) {
	c := NewClock(start)
	m := newManager(s, c, budget.Options{})
	anchor := time.Date(2026, 1, 3, 4, 5, 6, 7, time.UTC)
	users := map[string]budget.SettingsUpdate{
		"plain":          {},
		"-dash":          {Limit: ptr(amt("0.000000001")), AdminNotes: ptr("line one\nline \"two\", three")},
		"=formula":       {AdminNotes: ptr("@SUM(A1)"), Visible: ptr(false), CanModify: ptr(true), CanReset: ptr(true)},
		"custom":         {Period: ptr(budget.Custom), CustomDays: ptr(10), CustomAnchor: &anchor, Timezone: ptr("Asia/Kathmandu")},
		"weekly, zoned":  {Period: ptr(budget.Weekly), Timezone: ptr("UTC"), Enforce: ptr(false)},
		"thresholds":     {Yellow: ptr(amt("50.25")), Orange: ptr(amt("99.99")), Red: ptr(amt("1000"))},
		"unicode zoë 中文": {Limit: ptr(amt("123456789.123456789")), AdminNotes: ptr("'quoted")},
		"tab":            {AdminNotes: ptr("\tindented")},
	}
	for u, up := range users {
		configure(t, m, u, up)
	}
	file := exportSettings(t, m)
	res, err := m.ImportSettings(ctx, admin, strings.NewReader(file), budget.ImportOptions{})
	if err != nil || res.Changed != 0 {
		t.Fatalf("import into the same store: %+v, %v", res, err)
	}
	if got := exportSettings(t, m); got != file {
		t.Fatalf("import into the same store changed:\n%s\nwas\n%s", got, file)
	}
	// A fresh store of the same kind: new users from other defaults.
	fresh := storeLike(t, s)
	if fresh == nil {
		return
	}
	m2 := newManager(fresh, c, budget.Options{UserPlan: &budget.Plan{Limit: amt("1"), Period: budget.Daily, Timezone: "Europe/Paris",
		Thresholds: budget.DefaultThresholds()}})
	if res, err := m2.ImportSettings(ctx, admin, strings.NewReader(file), budget.ImportOptions{}); err != nil || res.Created != len(users) {
		t.Fatalf("import into a fresh store: %+v, %v", res, err)
	}
	if got := exportSettings(t, m2); got != file {
		t.Fatalf("the round trip differs:\n%s\nwant\n%s", got, file)
	}
	for u := range users {
		a, _ := m.Lookup(ctx, u)
		b, _ := m2.Lookup(ctx, u)
		if !a.Plan.Limit.Equal(b.Plan.Limit) || a.Period != b.Period || a.CustomDays != b.CustomDays || !a.CustomAnchor.Equal(b.CustomAnchor) ||
			a.Timezone != b.Timezone || a.Enforce != b.Enforce || a.Permissions != b.Permissions || a.AdminNotes != b.AdminNotes ||
			!a.Thresholds.Yellow.Equal(b.Thresholds.Yellow) || !a.Thresholds.Orange.Equal(b.Thresholds.Orange) || !a.Thresholds.Red.Equal(b.Thresholds.Red) {
			t.Errorf("%s: %+v, imported as %+v", u, a.Plan, b.Plan)
		}
	}
}

// makers maps each store Run made to the function that made it.
var makers sync.Map // budget.Store → func(testing.TB) budget.Store

// storeLike returns a new empty store of s's kind, made as Run made s;
// nil, skipping what needs it, for a store Run did not make.
func storeLike(t *testing.T, s budget.Store) budget.Store {
	v, ok := makers.Load(s)
	if !ok {
		t.Log("no second store: the round trip into a fresh store is skipped")
		return nil
	}
	return v.(func(testing.TB) budget.Store)(t)
}

func testImportSeed(t *testing.T, s budget.Store) {
	c := NewClock(start)
	m := newManager(s, c, budget.Options{})
	configure(t, m, "existing", limit("7"))
	settings := "id,user_id,monthly_limit_usd,custom_limit_usd,budget_period,enforce_budget,budget_visible_to_user,user_can_modify_limit,user_can_reset_budget,alert_threshold_yellow,alert_threshold_orange,alert_threshold_red,current_period_start,current_period_end,admin_notes,created_at,updated_at\n" +
		"1,admin1,100.0,,monthly,1,1,1,1,75.0,90.0,100.0,2025-12-01 00:00:00,2026-01-01 00:00:00,,2025-12-14 10:30:00,2025-12-14 10:30:00\n" +
		"2,user2,29.999999999999996,45.5,MONTHLY,1,0,0,0,33.333333333333336,90.0,100.0,,,\"notes, with comma\",2025-12-14 10:30:00.123456,2025-12-14 10:30:00\n" +
		"3,user3,30.0,12.5,custom,0,1,0,1,75.0,90.0,100.0,2025-12-10 00:00:00,2025-12-24 00:00:00,,2025-12-14 10:30:00,2025-12-14 10:30:00\n"
	resets := "id,user_id,reset_type,reset_by,previous_limit,new_limit,previous_spent,reason,reset_at\n" +
		"1,user2,manual,admin1,30.0,30.0,12.340000000000001,monthly top-up,2025-12-15 08:00:00\n" +
		"2,existing,automatic,,7.0,7.0,0.1,,2025-12-01 00:00:00\n"
	res, err := m.ImportSeed(ctx, admin, strings.NewReader(settings), strings.NewReader(resets), budget.ImportOptions{})
	if err != nil || !res.Applied || res.Created != 3 || res.Audit != 2 {
		t.Fatalf("seed import: %+v, %v", res, err)
	}
	notes := ""
	for _, r := range res.Rows {
		notes += strings.Join(r.Notes, "; ") + "|"
	}
	for _, want := range []string{
		"monthly_limit_usd 29.999999999999996 rounded to 30.000000000",
		"alert_threshold_yellow 33.333333333333336 rounded to 33.33",
		"custom_limit_usd 45.5 not imported: the period is not custom",
		"previous_spent 12.340000000000001 rounded to 12.340000000",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes %q lack %q", notes, want)
		}
	}
	u2, _ := m.Lookup(ctx, "user2")
	if !u2.Limit.Equal(amt("30")) || u2.Visible || !u2.Thresholds.Yellow.Equal(amt("33.33")) || u2.AdminNotes != "notes, with comma" || !u2.Enforce {
		t.Errorf("user2 %+v", u2)
	}
	u3, _ := m.Lookup(ctx, "user3")
	if u3.Period != budget.Custom || u3.CustomDays != 14 || !u3.CustomAnchor.Equal(time.Date(2025, 12, 10, 0, 0, 0, 0, time.UTC)) ||
		!u3.Limit.Equal(amt("12.5")) || u3.Enforce || !u3.CanReset {
		t.Errorf("user3 %+v", u3)
	}
	es := auditOf(t, m, "user2")
	if len(es) != 2 || es[0].Type != budget.AuditManualReset || es[0].Actor != "admin1" || !es[0].PreviousSpent.Equal(amt("12.34")) ||
		!es[0].At.Equal(time.Date(2025, 12, 15, 8, 0, 0, 0, time.UTC)) || es[0].Reason != "monthly top-up" || es[0].BulkID != res.BulkID {
		t.Errorf("user2's audit log %+v", es)
	}
	if es := auditOf(t, m, "existing"); es[0].Type != budget.AuditAutomaticReset || es[0].Actor != budget.SystemActor {
		t.Errorf("existing's audit log %+v", es)
	}
	// A reset of a user with no settings anywhere, and a malformed row:
	// nothing is written.
	before := exportAudit(t, m)
	bad := resets + "3,ghost,manual,x,1,1,1,,2025-12-16 00:00:00\n4,user2,sideways,x,1,1,1,,2025-12-16 00:00:00\n"
	res, err = m.ImportSeed(ctx, admin, nil, strings.NewReader(bad), budget.ImportOptions{})
	var ie *budget.ImportError
	if !errors.As(err, &ie) || len(ie.Rows) != 2 || ie.Rows[0].Line != 4 || ie.Rows[1].Column != "reset_type" {
		t.Fatalf("bad resets: %+v, %v", res, err)
	}
	if exportAudit(t, m) != before {
		t.Errorf("a failed seed import wrote audit entries")
	}
}

// testImportConcurrent changes a user between an import's read and its
// write: the import reads again and still writes every row.
func testImportConcurrent(t *testing.T, s budget.Store) {
	c := NewClock(start)
	f := NewFaulty(s, nil)
	m := newManager(f, c, budget.Options{})
	configure(t, m, "a", limit("1"))
	other := newManager(s, c, budget.Options{})
	once := false
	f.SetRule(func(call Call) *Fault {
		if call.Method == "Import" && !once {
			once = true
			if _, err := other.UpdateSettings(ctx, admin, "a", budget.SettingsUpdate{AdminNotes: ptr("meanwhile")}); err != nil {
				t.Error(err)
			}
		}
		return nil
	})
	res, err := m.ImportSettings(ctx, admin, strings.NewReader("user_id,limit_usd\na,5\nb,6\n"), budget.ImportOptions{})
	if err != nil || !res.Applied {
		t.Fatalf("import: %+v, %v", res, err)
	}
	set, _ := m.Lookup(ctx, "a")
	if !set.Limit.Equal(amt("5")) || set.AdminNotes != "meanwhile" {
		t.Errorf("a: %+v", set)
	}
}
