package budget_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/memory"
)

func scopedManager(t *testing.T) (*budget.Manager, budget.Principal) {
	t.Helper()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	m := budget.NewManager(memory.New(), budget.Options{Now: func() time.Time { return now }})
	return m, budget.Principal{UserID: "root", Admin: true}
}

func amount(s string) *budget.SettingsUpdate {
	d := budget.MustAmount(s)
	return &budget.SettingsUpdate{Limit: &d}
}

// TestRefusalNamesTheLeastRoom: when several budgets cannot hold a call,
// the refusal names the one with the least room left.
func TestRefusalNamesTheLeastRoom(t *testing.T) {
	ctx := context.Background()
	m, admin := scopedManager(t)
	for _, b := range []struct {
		scope budget.Scope
		limit string
	}{{budget.Team("wide"), "5"}, {budget.Team("narrow"), "3"}, {budget.Org("o"), "4"}, {budget.User("u"), "100"}} {
		if _, err := m.UpdateBudget(ctx, admin, b.scope, *amount(b.limit)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.SetMembership(ctx, admin, "u", budget.Membership{Teams: []string{"wide", "narrow"}, Org: "o"}); err != nil {
		t.Fatal(err)
	}
	_, err := m.Reserve(ctx, "u", budget.MustAmount("6"))
	var le *budget.LimitError
	if !errors.As(err, &le) || le.Scope != budget.Team("narrow") || !le.Limit.Equal(budget.MustAmount("3")) || !le.Requested.Equal(budget.MustAmount("6")) {
		t.Fatalf("refusal %v, want the narrow team's", err)
	}
	if msg := le.Error(); !strings.Contains(msg, `for "u" by the team "narrow" budget: limit 3`) {
		t.Errorf("message %q does not name the binding budget", msg)
	}
	// Within every budget: allowed, and held on all four.
	if _, err := m.Reserve(ctx, "u", budget.MustAmount("2")); err != nil {
		t.Fatal(err)
	}
	st, err := m.Status(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	var binding []budget.Scope
	for _, b := range st.Budgets {
		if b.Binding {
			binding = append(binding, b.Scope)
		}
	}
	if len(st.Budgets) != 4 || len(binding) != 1 || binding[0] != budget.Team("narrow") {
		t.Errorf("status budgets %+v, want 4 with the narrow team alone binding", st.Budgets)
	}
}

// TestMembershipAudited: membership and caps read in the audit as fields
// with before and after.
func TestMembershipAudited(t *testing.T) {
	ctx := context.Background()
	m, admin := scopedManager(t)
	caps := []budget.ModelCap{{Pattern: "gpt-4o*", Limit: budget.MustAmount("1.5")}}
	u := *amount("10")
	u.ModelCaps = &caps
	for _, s := range []budget.Scope{budget.Team("a"), budget.Team("b"), budget.Org("o")} {
		if _, err := m.UpdateBudget(ctx, admin, s, u); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.SetMembership(ctx, admin, "u", budget.Membership{Teams: []string{"b", "a", "b"}, Org: "o"}); err != nil {
		t.Fatal(err)
	}
	set, err := m.Settings(ctx, "u")
	if err != nil || strings.Join(set.Teams, ",") != "a,b" || set.Org != "o" {
		t.Fatalf("settings %+v, %v: teams sorted without repeats", set, err)
	}
	page, err := m.AuditLog(ctx, admin, budget.AuditLogQuery{UserID: "u", Type: budget.AuditSettings})
	if err != nil || len(page.Entries) == 0 {
		t.Fatal(err)
	}
	got := map[string]budget.Change{}
	for _, c := range page.Entries[0].Changes() {
		got[c.Field] = c
	}
	if got["teams"].After != "a, b" || got["org"].After != "o" || got["teams"].Before != "" {
		t.Errorf("membership changes: %+v", page.Entries[0].Changes())
	}
	tp, err := m.AuditLog(ctx, admin, budget.AuditLogQuery{Scope: budget.Team("a"), Type: budget.AuditSettings})
	if err != nil || len(tp.Entries) != 1 {
		t.Fatalf("team audit: %+v, %v", tp, err)
	}
	for _, c := range tp.Entries[0].Changes() {
		if c.Field == "model_caps" && c.After != "gpt-4o*: 1.5" {
			t.Errorf("caps change %+v", c)
		}
	}
	// The same membership again changes nothing and audits nothing.
	before := set.Version
	if s, err := m.SetMembership(ctx, admin, "u", budget.Membership{Teams: []string{"a", "b"}, Org: "o"}); err != nil || s.Version != before {
		t.Errorf("an unchanged membership moved the version: %d → %d, %v", before, s.Version, err)
	}
}

// TestModelCapsOnlyPerBudget: defaults, templates and bulk changes refuse
// model caps, which belong to one budget each.
func TestModelCapsOnlyPerBudget(t *testing.T) {
	ctx := context.Background()
	m, admin := scopedManager(t)
	caps := &[]budget.ModelCap{{Pattern: "gpt-4o", Limit: budget.MustAmount("1")}}
	if _, err := m.UpdateDefaults(ctx, admin, budget.SettingsUpdate{ModelCaps: caps}); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("defaults with caps: %v", err)
	}
	if _, err := m.SaveTemplate(ctx, admin, "t", budget.SettingsUpdate{ModelCaps: caps}); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("a template with caps: %v", err)
	}
	if _, err := m.BulkUpdate(ctx, admin, budget.Selection{UserIDs: []string{"u"}}, budget.SettingsUpdate{ModelCaps: caps}); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("a bulk change with caps: %v", err)
	}
}

// TestMembershipEditsCommute: AddToTeam and RemoveFromTeam change one team
// on the settings as stored when they commit, so that concurrent changes
// of one user's membership all count; SetMembership with IfVersion refuses
// a stale version in the same step and changes nothing.
func TestMembershipEditsCommute(t *testing.T) {
	ctx := context.Background()
	m, admin := scopedManager(t)
	teams := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for _, id := range append(teams, "i") {
		if _, err := m.UpdateBudget(ctx, admin, budget.Team(id), *amount("10")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.UpdateSettings(ctx, admin, "u", *amount("5")); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, len(teams))
	for _, id := range teams {
		go func() {
			_, err := m.AddToTeam(ctx, admin, "u", id)
			errs <- err
		}()
	}
	for range teams {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	s, err := m.Lookup(ctx, "u")
	if err != nil || !slices.Equal(s.Teams, teams) {
		t.Fatalf("after eight concurrent AddToTeam: teams %v (%v), want %v", s.Teams, err, teams)
	}
	if _, err := m.AddToTeam(ctx, admin, "u", "a"); err != nil {
		t.Errorf("adding a member again: %v, want no change", err)
	}
	var ve *budget.ValidationError
	if _, err := m.AddToTeam(ctx, admin, "u", "i"); !errors.As(err, &ve) || ve.Field != "teams" {
		t.Errorf("a ninth team: %v, want a *ValidationError on teams", err)
	}
	if _, err := m.AddToTeam(ctx, admin, "nobody", "a"); !errors.Is(err, budget.ErrNotFound) {
		t.Errorf("a user without settings: %v, want ErrNotFound", err)
	}
	if _, err := m.AddToTeam(ctx, budget.Principal{UserID: "u"}, "u", "a"); !errors.Is(err, budget.ErrForbidden) {
		t.Errorf("a user adding themself: %v, want ErrForbidden", err)
	}
	for _, id := range teams[:4] {
		go func() {
			_, err := m.RemoveFromTeam(ctx, admin, "u", id)
			errs <- err
		}()
	}
	for range teams[:4] {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.RemoveFromTeam(ctx, admin, "u", "a"); !errors.Is(err, budget.ErrNotFound) {
		t.Errorf("removing a non-member: %v, want ErrNotFound", err)
	}
	s, err = m.Lookup(ctx, "u")
	if err != nil || !slices.Equal(s.Teams, teams[4:]) {
		t.Fatalf("after four concurrent RemoveFromTeam: teams %v (%v), want %v", s.Teams, err, teams[4:])
	}
	if _, err := m.SetMembership(ctx, admin, "u", budget.Membership{Teams: []string{"a"}, IfVersion: s.Version - 1}); !errors.Is(err, budget.ErrConflict) {
		t.Errorf("SetMembership at a stale version: %v, want ErrConflict", err)
	}
	if after, _ := m.Lookup(ctx, "u"); after.Version != s.Version || !slices.Equal(after.Teams, s.Teams) {
		t.Errorf("a refused SetMembership changed the settings: %v at %d", after.Teams, after.Version)
	}
	if _, err := m.SetMembership(ctx, admin, "u", budget.Membership{Teams: []string{"a"}, IfVersion: s.Version}); err != nil {
		t.Errorf("SetMembership at the current version: %v", err)
	}
}
