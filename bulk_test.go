package budget_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/memory"
	"github.com/shopspring/decimal"
)

// auditCount returns how many audit entries the log holds.
func auditCount(t *testing.T, m *budget.Manager) int {
	t.Helper()
	p, err := m.AuditLog(ctx, admin, budget.AuditLogQuery{Limit: budget.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	return len(p.Entries)
}

// enrol gives each user settings, as their first call would.
func enrol(t *testing.T, m *budget.Manager, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, err := m.Settings(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestSetAccessSwitchesEveryRegularUser(t *testing.T) {
	now := t0
	m := testManager(memory.New(), &now, budget.Options{IsAdmin: func(id string) bool { return id == "root" }})
	enrol(t, m, "root", "alice", "bob", "carol")
	// An admin already hid carol alone: the switch counts only real changes.
	if _, err := m.UpdateSettings(ctx, admin, "carol", budget.SettingsUpdate{Visible: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	before := auditCount(t, m)

	if _, err := m.SetAccess(ctx, budget.Principal{UserID: "alice"}, false); !errors.Is(err, budget.ErrForbidden) {
		t.Fatalf("SetAccess by a user = %v, want ErrForbidden", err)
	}
	ch, err := m.SetAccess(ctx, admin, false)
	if err != nil {
		t.Fatal(err)
	}
	want := budget.AccessChange{Access: budget.Access{Enabled: false, Users: 3, Visible: 0}, Changed: 2, BulkID: ch.BulkID}
	if diff := cmp.Diff(want, ch); diff != "" || ch.BulkID == "" {
		t.Fatalf("SetAccess(false) (-want +got):\n%s", diff)
	}
	for _, id := range []string{"alice", "bob", "carol", "dave"} { // dave is new: the defaults changed too
		if _, err := m.StatusFor(ctx, budget.Principal{UserID: id}, id); !errors.Is(err, budget.ErrForbidden) {
			t.Errorf("StatusFor(%s) = %v, want hidden", id, err)
		}
	}
	if _, err := m.StatusFor(ctx, budget.Principal{UserID: "root", Admin: true}, "root"); err != nil {
		t.Errorf("the admin's own budget: %v", err)
	}
	if s, _ := m.Settings(ctx, "root"); !s.Visible {
		t.Error("the switch changed an admin's settings")
	}
	// Off hides; it does not stop enforcement.
	if _, err := m.Reserve(ctx, "alice", budget.MustAmount("31")); !errors.Is(err, budget.ErrBudgetExceeded) {
		t.Errorf("Reserve past a hidden budget's limit = %v, want ErrBudgetExceeded", err)
	}

	// One entry per changed user and one for the defaults, sharing the bulk ID.
	p, err := m.AuditLog(ctx, admin, budget.AuditLogQuery{Limit: budget.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range p.Entries[:len(p.Entries)-before] {
		if e.BulkID == ch.BulkID && e.Reason == "budgets for regular users turned off" {
			got = append(got, string(e.Type)+":"+e.UserID)
		}
	}
	slices.Sort(got)
	if diff := cmp.Diff([]string{"defaults:", "settings:alice", "settings:bob"}, got); diff != "" {
		t.Errorf("audit entries of the switch (-want +got):\n%s", diff)
	}

	// Again: nothing to change, nothing written.
	n := auditCount(t, m)
	if ch, err := m.SetAccess(ctx, admin, false); err != nil || ch.Changed != 0 {
		t.Fatalf("second SetAccess(false) = %+v, %v; want 0 changed", ch, err)
	}
	if auditCount(t, m) != n {
		t.Error("a switch that changed nothing was audited")
	}

	ch, err = m.SetAccess(ctx, admin, true)
	if err != nil || ch.Changed != 4 || !ch.Enabled || ch.Visible != 4 || ch.Users != 4 {
		t.Fatalf("SetAccess(true) = %+v, %v; want all 4 regular users (dave included) visible", ch, err)
	}
	if _, err := m.StatusFor(ctx, budget.Principal{UserID: "carol"}, "carol"); err != nil {
		t.Errorf("carol after the switch went on: %v", err)
	}
	a, err := m.Access(ctx, admin)
	if err != nil || a != (budget.Access{Enabled: true, Users: 4, Visible: 4}) {
		t.Errorf("Access = %+v, %v", a, err)
	}
	if _, err := m.Access(ctx, budget.Principal{UserID: "bob"}); !errors.Is(err, budget.ErrForbidden) {
		t.Errorf("Access by a user = %v, want ErrForbidden", err)
	}
}

func TestBulkUpdate(t *testing.T) {
	now := t0
	m := testManager(memory.New(), &now, budget.Options{})
	enrol(t, m, "ann", "ben", "cat", "dan")
	// cat's orange threshold is 95: a yellow of 92 fits her, not the others.
	if _, err := m.UpdateSettings(ctx, admin, "cat", budget.SettingsUpdate{Orange: ptr(decimal.NewFromInt(95))}); err != nil {
		t.Fatal(err)
	}

	res, err := m.BulkUpdate(ctx, admin, budget.Selection{UserIDs: []string{"ann", "ben", "ghost", "cat"}},
		budget.SettingsUpdate{Limit: ptr(decimal.NewFromInt(45)), Enforce: ptr(false)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed != 3 || len(res.Results) != 4 || res.BulkID == "" {
		t.Fatalf("BulkUpdate = %+v", res)
	}
	for i, id := range []string{"ann", "ben", "ghost", "cat"} {
		r := res.Results[i]
		if r.UserID != id {
			t.Fatalf("result %d is %q, want %q", i, r.UserID, id)
		}
		if id == "ghost" {
			if !errors.Is(r.Err, budget.ErrNotFound) {
				t.Errorf("unknown user: %v, want ErrNotFound", r.Err)
			}
			continue
		}
		if r.Err != nil || !r.Changed || !r.Settings.Limit.Equal(decimal.NewFromInt(45)) || r.Settings.Enforce {
			t.Errorf("%s: %+v", id, r)
		}
	}
	if _, err := m.Lookup(ctx, "ghost"); !errors.Is(err, budget.ErrNotFound) {
		t.Errorf("a bulk change enrolled an unknown user: %v", err)
	}
	if s, _ := m.Settings(ctx, "dan"); !s.Limit.Equal(decimal.NewFromInt(30)) {
		t.Errorf("dan was not selected but has limit %s", s.Limit)
	}
	p, _ := m.AuditLog(ctx, admin, budget.AuditLogQuery{Type: budget.AuditSettings})
	shared := 0
	for _, e := range p.Entries {
		if e.BulkID == res.BulkID {
			shared++
			if diff := cmp.Diff([]budget.Change{
				{Field: "limit_usd", Before: "30", After: "45"},
				{Field: "enforce_budget", Before: "true", After: "false"},
			}, e.Changes()); diff != "" {
				t.Errorf("changes of %s (-want +got):\n%s", e.UserID, diff)
			}
		}
	}
	if shared != 3 {
		t.Errorf("%d audit entries carry the bulk ID, want 3", shared)
	}

	// A change that fits some users and not others: each failure is
	// reported, and leaves that user as they were.
	res, err = m.BulkUpdate(ctx, admin, budget.Selection{UserIDs: []string{"ann", "cat"}},
		budget.SettingsUpdate{Yellow: ptr(decimal.NewFromInt(92))})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res.Results[0].Err, budget.ErrInvalid) || res.Results[1].Err != nil || res.Changed != 1 {
		t.Fatalf("partial failure: %+v", res)
	}
	if s, _ := m.Settings(ctx, "ann"); !s.Thresholds.Yellow.Equal(decimal.NewFromInt(75)) {
		t.Errorf("ann's failed change was applied: yellow %s", s.Thresholds.Yellow)
	}

	// A match selects by search and level.
	if _, err := m.Record(ctx, "ben", budget.Usage{Cost: budget.MustAmount("45")}); err != nil {
		t.Fatal(err)
	}
	red := budget.Red
	res, err = m.BulkUpdate(ctx, admin, budget.Selection{Match: &budget.UserQuery{Level: &red}},
		budget.SettingsUpdate{Limit: ptr(decimal.NewFromInt(90))})
	if err != nil || len(res.Results) != 1 || res.Results[0].UserID != "ben" {
		t.Fatalf("match by level: %+v, %v", res, err)
	}
	res, err = m.BulkUpdate(ctx, admin, budget.Selection{Match: &budget.UserQuery{Search: "N"}},
		budget.SettingsUpdate{CanReset: ptr(true)})
	if err != nil || len(res.Results) != 3 || res.Results[0].UserID != "ann" || res.Results[2].UserID != "dan" {
		t.Fatalf("match by search: %+v, %v", res, err)
	}
}

func TestBulkUpdateRefusesBadRequests(t *testing.T) {
	now := t0
	m := testManager(memory.New(), &now, budget.Options{})
	enrol(t, m, "a", "b")
	before := auditCount(t, m)
	many := make([]string, budget.MaxBulkUsers+1)
	for i := range many {
		many[i] = fmt.Sprint("u", i)
	}
	limit := ptr(decimal.NewFromInt(5))
	for _, tt := range []struct {
		name  string
		actor budget.Principal
		sel   budget.Selection
		u     budget.SettingsUpdate
		want  error
	}{
		{"not an admin", budget.Principal{UserID: "a"}, budget.Selection{UserIDs: []string{"a"}}, budget.SettingsUpdate{Limit: limit}, budget.ErrForbidden},
		{"nobody selected", admin, budget.Selection{}, budget.SettingsUpdate{Limit: limit}, budget.ErrInvalid},
		{"ids and match", admin, budget.Selection{UserIDs: []string{"a"}, Match: &budget.UserQuery{}}, budget.SettingsUpdate{Limit: limit}, budget.ErrInvalid},
		{"a user twice", admin, budget.Selection{UserIDs: []string{"a", "b", "a"}}, budget.SettingsUpdate{Limit: limit}, budget.ErrInvalid},
		{"an invalid id", admin, budget.Selection{UserIDs: []string{"a", ""}}, budget.SettingsUpdate{Limit: limit}, budget.ErrInvalid},
		{"too many", admin, budget.Selection{UserIDs: many}, budget.SettingsUpdate{Limit: limit}, budget.ErrInvalid},
		{"nothing to change", admin, budget.Selection{UserIDs: []string{"a"}}, budget.SettingsUpdate{}, budget.ErrInvalid},
		{"negative limit", admin, budget.Selection{UserIDs: []string{"a"}}, budget.SettingsUpdate{Limit: ptr(decimal.NewFromInt(-1))}, budget.ErrInvalidAmount},
		{"too precise", admin, budget.Selection{UserIDs: []string{"a"}}, budget.SettingsUpdate{Limit: ptr(decimal.RequireFromString("0.0000000001"))}, budget.ErrInvalidAmount},
		{"bad threshold", admin, budget.Selection{UserIDs: []string{"a"}}, budget.SettingsUpdate{Red: ptr(decimal.NewFromInt(2000))}, budget.ErrInvalid},
		{"bad timezone", admin, budget.Selection{UserIDs: []string{"a"}}, budget.SettingsUpdate{Timezone: ptr("Mars/Olympus")}, budget.ErrInvalid},
		{"conditional", admin, budget.Selection{UserIDs: []string{"a"}}, budget.SettingsUpdate{Limit: limit, IfVersion: 1}, budget.ErrInvalid},
		{"notes", admin, budget.Selection{UserIDs: []string{"a"}}, budget.SettingsUpdate{AdminNotes: ptr("x")}, budget.ErrInvalid},
		{"control character in a match", admin, budget.Selection{Match: &budget.UserQuery{Search: "\x00"}}, budget.SettingsUpdate{Limit: limit}, budget.ErrInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := m.BulkUpdate(ctx, tt.actor, tt.sel, tt.u); !errors.Is(err, tt.want) {
				t.Fatalf("BulkUpdate = %v, want %v", err, tt.want)
			}
		})
	}
	if auditCount(t, m) != before {
		t.Error("a refused bulk request changed something")
	}
	for _, id := range []string{"a", "b"} {
		if s, _ := m.Settings(ctx, id); s.Version != 1 {
			t.Errorf("%s is at version %d after refused requests", id, s.Version)
		}
	}
}

func TestTemplates(t *testing.T) {
	now := t0
	m := testManager(memory.New(), &now, budget.Options{})
	enrol(t, m, "ivy", "jon", "kim")
	user := budget.Principal{UserID: "ivy"}

	if _, err := m.SaveTemplate(ctx, user, "intern", budget.SettingsUpdate{}); !errors.Is(err, budget.ErrForbidden) {
		t.Fatalf("SaveTemplate by a user = %v", err)
	}
	for _, name := range []string{"", "-x", "a/b", "ünï", string(make([]byte, 65))} {
		if _, err := m.SaveTemplate(ctx, admin, name, budget.SettingsUpdate{}); !errors.Is(err, budget.ErrInvalid) {
			t.Errorf("SaveTemplate(%q) = %v, want ErrInvalid", name, err)
		}
	}
	weekly := budget.Weekly
	intern, err := m.SaveTemplate(ctx, admin, "intern", budget.SettingsUpdate{Limit: ptr(decimal.NewFromInt(5)), Period: &weekly})
	if err != nil {
		t.Fatal(err)
	}
	// A new template starts from the defaults: only what differs is given.
	want := budget.DefaultUserPlan()
	want.Limit, want.Period = decimal.NewFromInt(5), budget.Weekly
	if intern.Version != 1 || !intern.UpdatedAt.Equal(now) || cmp.Diff(want, intern.Plan) != "" {
		t.Fatalf("intern = %+v", intern)
	}
	researcher, err := m.SaveTemplate(ctx, admin, "Researcher", budget.SettingsUpdate{
		Limit: ptr(decimal.NewFromInt(200)), CanModify: ptr(true)})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := m.Templates(ctx, admin)
	if err != nil || len(ts) != 2 || ts[0].Name != "Researcher" || ts[1].Name != "intern" {
		t.Fatalf("Templates = %+v, %v; want byte order", ts, err)
	}
	// Conditional saves, and a save that changes nothing.
	if _, err := m.SaveTemplate(ctx, admin, "intern", budget.SettingsUpdate{Limit: ptr(decimal.NewFromInt(6)), IfVersion: 7}); !errors.Is(err, budget.ErrConflict) {
		t.Errorf("stale IfVersion = %v, want ErrConflict", err)
	}
	n := auditCount(t, m)
	if same, err := m.SaveTemplate(ctx, admin, "intern", budget.SettingsUpdate{Limit: ptr(decimal.NewFromInt(5))}); err != nil || same.Version != 1 {
		t.Errorf("unchanged save = %+v, %v", same, err)
	}
	if auditCount(t, m) != n {
		t.Error("an unchanged save was audited")
	}

	res, err := m.ApplyTemplate(ctx, admin, "intern", budget.Selection{UserIDs: []string{"ivy", "jon"}})
	if err != nil || res.Changed != 2 {
		t.Fatalf("ApplyTemplate = %+v, %v", res, err)
	}
	for _, id := range []string{"ivy", "jon"} {
		s, _ := m.Settings(ctx, id)
		if diff := cmp.Diff(intern.Plan, s.Plan); diff != "" {
			t.Errorf("%s after the template (-want +got):\n%s", id, diff)
		}
	}
	p, _ := m.AuditLog(ctx, admin, budget.AuditLogQuery{UserID: "jon", Type: budget.AuditSettings})
	if len(p.Entries) != 1 || p.Entries[0].Template != "intern" || p.Entries[0].BulkID != res.BulkID {
		t.Errorf("jon's audit = %+v", p.Entries)
	}
	if _, err := m.ApplyTemplate(ctx, admin, "nope", budget.Selection{UserIDs: []string{"kim"}}); !errors.Is(err, budget.ErrNotFound) {
		t.Errorf("unknown template = %v, want ErrNotFound", err)
	}

	// Deleting: conditional, audited, and users keep what they were given.
	if err := m.DeleteTemplate(ctx, admin, "intern", 9); !errors.Is(err, budget.ErrConflict) {
		t.Errorf("stale delete = %v", err)
	}
	if err := m.DeleteTemplate(ctx, admin, "intern", 1); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteTemplate(ctx, admin, "intern", 0); !errors.Is(err, budget.ErrNotFound) {
		t.Errorf("second delete = %v, want ErrNotFound", err)
	}
	if s, _ := m.Settings(ctx, "ivy"); !s.Limit.Equal(decimal.NewFromInt(5)) {
		t.Errorf("deleting the template changed ivy: %s", s.Limit)
	}
	p, _ = m.AuditLog(ctx, admin, budget.AuditLogQuery{Type: budget.AuditTemplate})
	var kinds []string
	for _, e := range p.Entries {
		kinds = append(kinds, fmt.Sprintf("%s:%v:%v", e.Template, e.Before != nil, e.After != nil))
	}
	if diff := cmp.Diff([]string{"intern:true:false", "Researcher:false:true", "intern:false:true"}, kinds); diff != "" {
		t.Errorf("template audit (-want +got):\n%s", diff)
	}
	if got := p.Entries[1].Changes(); !slices.Contains(got, budget.Change{Field: "limit_usd", Before: "", After: "200"}) {
		t.Errorf("a created template's changes = %+v", got)
	}
	_ = researcher
}

func TestResetWithNewLimit(t *testing.T) {
	now := t0
	m := testManager(memory.New(), &now, budget.Options{})
	if _, err := m.Record(ctx, "u", budget.Usage{Cost: budget.MustAmount("12")}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	e, err := m.Reset(ctx, admin, "u", budget.ResetOptions{Reason: "raise", Limit: ptr(decimal.NewFromInt(45))})
	if err != nil {
		t.Fatal(err)
	}
	if !e.PreviousLimit.Equal(decimal.NewFromInt(30)) || !e.NewLimit.Equal(decimal.NewFromInt(45)) || !e.PreviousSpent.Equal(decimal.NewFromInt(12)) {
		t.Errorf("reset entry = %+v", e)
	}
	if diff := cmp.Diff([]budget.Change{{Field: "limit_usd", Before: "30", After: "45"}}, e.Changes()); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	st, _ := m.Status(ctx, "u")
	if !st.Limit.Equal(decimal.NewFromInt(45)) || !st.Spent.IsZero() || !st.PeriodStart.Equal(now) {
		t.Errorf("status after the reset = %+v", st)
	}

	// A user needs both "can reset" and "can modify" to change the limit.
	self := budget.Principal{UserID: "u"}
	if _, err := m.UpdateSettings(ctx, admin, "u", budget.SettingsUpdate{CanReset: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Reset(ctx, self, "u", budget.ResetOptions{Limit: ptr(decimal.NewFromInt(100))}); !errors.Is(err, budget.ErrForbidden) {
		t.Errorf("reset with a limit without can modify = %v, want ErrForbidden", err)
	}
	if _, err := m.Reset(ctx, self, "u", budget.ResetOptions{}); err != nil {
		t.Errorf("plain reset with can reset: %v", err)
	}
	if _, err := m.UpdateSettings(ctx, admin, "u", budget.SettingsUpdate{CanModify: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Reset(ctx, self, "u", budget.ResetOptions{Limit: ptr(decimal.NewFromInt(100))}); err != nil {
		t.Errorf("reset with a limit with both permissions: %v", err)
	}

	// Bad limits change nothing.
	n, s := auditCount(t, m), mustSettings(t, m, "u")
	for _, bad := range []string{"-1", "0.0000000001", "9223372037"} {
		if _, err := m.Reset(ctx, admin, "u", budget.ResetOptions{Limit: ptr(decimal.RequireFromString(bad))}); !errors.Is(err, budget.ErrInvalidAmount) {
			t.Errorf("reset to %s = %v, want ErrInvalidAmount", bad, err)
		}
	}
	if auditCount(t, m) != n || mustSettings(t, m, "u").Version != s.Version {
		t.Error("a refused reset changed something")
	}
}

func mustSettings(t *testing.T, m *budget.Manager, id string) budget.Settings {
	t.Helper()
	s, err := m.Settings(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestUTCIsTheEmptyTimezone: switching between "" and "UTC" changes
// nothing, so it neither bumps the version nor writes an audit entry.
func TestUTCIsTheEmptyTimezone(t *testing.T) {
	now := t0
	m := testManager(memory.New(), &now, budget.Options{})
	s := mustSettings(t, m, "u")
	n := auditCount(t, m)
	for _, tz := range []string{"UTC", "", "UTC"} {
		got, err := m.UpdateSettings(ctx, admin, "u", budget.SettingsUpdate{Timezone: ptr(tz)})
		if err != nil || got.Version != s.Version {
			t.Fatalf("timezone %q: version %d, %v; want %d", tz, got.Version, err, s.Version)
		}
	}
	if auditCount(t, m) != n {
		t.Error("a timezone switch between \"\" and \"UTC\" was audited")
	}
	// Changed with another field, it is not reported as a change either.
	if _, err := m.UpdateSettings(ctx, admin, "u", budget.SettingsUpdate{Timezone: ptr("UTC"), Limit: ptr(decimal.NewFromInt(31))}); err != nil {
		t.Fatal(err)
	}
	p, _ := m.AuditLog(ctx, admin, budget.AuditLogQuery{UserID: "u"})
	if diff := cmp.Diff([]budget.Change{{Field: "limit_usd", Before: "30", After: "31"}}, p.Entries[0].Changes()); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}

func TestListUsersSummaryAndSearch(t *testing.T) {
	now := t0
	m := testManager(memory.New(), &now, budget.Options{})
	max := budget.MaxNanos.Decimal()
	for _, id := range []string{"Zoë", "zoe", "ZOË-2", "bob"} {
		if _, err := m.UpdateSettings(ctx, admin, id, budget.SettingsUpdate{Limit: &max}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := m.ListUsers(ctx, admin, budget.UserQuery{})
	if err != nil {
		t.Fatalf("ListUsers with limits summing past int64: %v", err)
	}
	if want := max.Mul(decimal.NewFromInt(4)); !all.Summary.TotalLimit.Equal(want) {
		t.Errorf("TotalLimit = %s, want %s", all.Summary.TotalLimit, want)
	}
	found, err := m.ListUsers(ctx, admin, budget.UserQuery{Search: "zoË"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, u := range found.Users {
		ids = append(ids, u.Settings.UserID)
	}
	if diff := cmp.Diff([]string{"ZOË-2", "Zoë"}, ids); diff != "" {
		t.Errorf("search folds case (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(all.Summary, found.Summary); diff != "" {
		t.Errorf("the summary changed with the search (-all +searched):\n%s", diff)
	}
	for _, q := range []string{"\x00", "a\nb", "\x7f", "\u0085"} {
		if _, err := m.ListUsers(ctx, admin, budget.UserQuery{Search: q}); !errors.Is(err, budget.ErrInvalid) {
			t.Errorf("search %q = %v, want ErrInvalid", q, err)
		}
	}
}
