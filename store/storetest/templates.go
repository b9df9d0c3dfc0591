package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/llmbudget/budget"
)

// The template cases call the store directly: the Store contract says what
// SaveTemplate and DeleteTemplate compare and write, whatever the Manager
// does around them.

// templatePlan is a plan that uses every field, so that a round trip that
// drops one shows.
func templatePlan(limit string) budget.Plan {
	return budget.Plan{
		Limit: amt(limit), Period: budget.Custom, CustomDays: 10,
		CustomAnchor: time.Date(2026, 11, 1, 4, 30, 0, 123456789, time.UTC), Timezone: "Asia/Kolkata",
		Thresholds:  budget.Thresholds{Yellow: amt("12.5"), Orange: amt("50"), Red: amt("99.9")},
		Permissions: budget.Permissions{Visible: true, CanModify: true},
	}
}

// templateReq is a request to save or delete name, expecting version
// expect, audited as the Manager audits it: Before is nil for a creation,
// After for a deletion (plan nil).
func templateReq(name string, plan *budget.Plan, version, expect int64, at time.Time) budget.TemplateRequest {
	req := budget.TemplateRequest{
		Template:      budget.Template{Name: name, Version: version, UpdatedAt: at},
		ExpectVersion: expect,
		Audit:         budget.AuditEntry{Type: budget.AuditTemplate, Actor: admin.UserID, ActorAdmin: true, Template: name, At: at},
	}
	if expect != 0 {
		req.Audit.Before = &budget.Settings{Version: expect}
	}
	if plan != nil {
		req.Template.Plan = *plan
		req.Audit.After = &budget.Settings{Plan: *plan, Version: version}
		req.Audit.NewLimit = plan.Limit
	}
	return req
}

// samePlan reports whether two plans are equal field by field.
func samePlan(a, b budget.Plan) bool {
	return refSamePlan(a, b) && a.Timezone == b.Timezone
}

// templatesOf returns the store's templates, in the order it lists them.
func templatesOf(t *testing.T, s budget.Store) []budget.Template {
	t.Helper()
	ts, err := s.Templates(ctx)
	if err != nil {
		t.Fatalf("templates: %v", err)
	}
	return ts
}

// templateNames shows templates as "name@version".
func templateNames(ts []budget.Template) string {
	var out []string
	for _, t := range ts {
		out = append(out, fmt.Sprintf("%s@%d", t.Name, t.Version))
	}
	return fmt.Sprint(out)
}

// templateAudit returns the template entries of the audit log, newest first.
func templateAudit(t *testing.T, s budget.Store) []budget.AuditEntry {
	t.Helper()
	es, err := s.Audit(ctx, budget.AuditQuery{Type: budget.AuditTemplate})
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	return es
}

func testTemplates(t *testing.T, s budget.Store) {
	if ts := templatesOf(t, s); len(ts) != 0 {
		t.Fatalf("a new store has templates %s", templateNames(ts))
	}
	at := start.Add(123456789)
	intern, intern2 := templatePlan("5"), templatePlan("7.123456789")
	intern2.Period, intern2.CustomDays, intern2.CustomAnchor, intern2.Timezone = budget.Weekly, 0, time.Time{}, ""
	intern2.Enforce, intern2.Permissions = true, budget.Permissions{CanReset: true}
	audited := 0
	ok := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		audited++
	}
	refused := func(what string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", what, err, want)
		}
		if n := len(templateAudit(t, s)); n != audited {
			t.Errorf("%s: %d template entries audited, want %d", what, n, audited)
		}
	}

	ok("create intern", s.SaveTemplate(ctx, templateReq("intern", &intern, 1, 0, at)))
	refused("create intern again", s.SaveTemplate(ctx, templateReq("intern", &intern2, 1, 0, at)), budget.ErrConflict)
	refused("update intern at a version it is not at", s.SaveTemplate(ctx, templateReq("intern", &intern2, 3, 2, at)), budget.ErrConflict)
	refused("update a template that does not exist", s.SaveTemplate(ctx, templateReq("ghost", &intern2, 2, 1, at)), budget.ErrConflict)
	ts := templatesOf(t, s)
	if len(ts) != 1 || ts[0].Name != "intern" || ts[0].Version != 1 || !samePlan(ts[0].Plan, intern) || !ts[0].UpdatedAt.Equal(at) {
		t.Fatalf("templates after creating intern: %+v, want intern@1 with its plan, updated %v", ts, at)
	}

	later := at.Add(time.Hour)
	ok("update intern", s.SaveTemplate(ctx, templateReq("intern", &intern2, 2, 1, later)))
	ts = templatesOf(t, s)
	if len(ts) != 1 || ts[0].Version != 2 || !samePlan(ts[0].Plan, intern2) || !ts[0].UpdatedAt.Equal(later) {
		t.Fatalf("templates after updating intern: %+v, want intern@2 with the new plan, updated %v", ts, later)
	}

	refused("delete a template that does not exist", s.DeleteTemplate(ctx, templateReq("ghost", nil, 0, 1, later)), budget.ErrNotFound)
	refused("delete intern at a version it is not at", s.DeleteTemplate(ctx, templateReq("intern", nil, 0, 1, later)), budget.ErrConflict)
	if ts := templatesOf(t, s); templateNames(ts) != "[intern@2]" {
		t.Fatalf("refused deletions changed the templates: %s", templateNames(ts))
	}
	ok("delete intern", s.DeleteTemplate(ctx, templateReq("intern", nil, 0, 2, later)))
	if ts := templatesOf(t, s); len(ts) != 0 {
		t.Fatalf("templates after deleting intern: %s", templateNames(ts))
	}
	refused("delete intern twice", s.DeleteTemplate(ctx, templateReq("intern", nil, 0, 2, later)), budget.ErrNotFound)
	refused("update a deleted template", s.SaveTemplate(ctx, templateReq("intern", &intern, 3, 2, later)), budget.ErrConflict)
	// A name is free again once its template is deleted.
	ok("create intern again", s.SaveTemplate(ctx, templateReq("intern", &intern, 1, 0, later)))

	es := templateAudit(t, s)
	want := []struct { // oldest first
		version int64 // of After; 0 for a deletion
		before  bool
		limit   string
	}{{1, false, "5"}, {2, true, "7.123456789"}, {0, true, "0"}, {1, false, "5"}}
	if len(es) != len(want) {
		t.Fatalf("%d template entries, want %d", len(es), len(want))
	}
	for i, e := range es {
		w := want[len(want)-1-i] // newest first
		if e.Type != budget.AuditTemplate || e.Template != "intern" || e.UserID != "" || e.Actor != admin.UserID || !e.ActorAdmin || e.BulkID != "" {
			t.Errorf("template entry %d: %+v, want intern's, by root", i, e)
		}
		if (e.After == nil) != (w.version == 0) || (e.After != nil && (e.After.Version != w.version || !e.After.Limit.Equal(amt(w.limit)))) ||
			(e.Before != nil) != w.before || !e.NewLimit.Equal(amt(w.limit)) {
			t.Errorf("template entry %d: before %+v after %+v new limit %s, want after at version %d, limit %s", i, e.Before, e.After, e.NewLimit, w.version, w.limit)
		}
		if i > 0 && e.ID >= es[i-1].ID {
			t.Errorf("template entries out of order: %d after %d", e.ID, es[i-1].ID)
		}
	}
	// Template entries are no user's: they are in the whole log only.
	all, err := s.Audit(ctx, budget.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(es) || all[0].ID != es[0].ID {
		t.Errorf("whole log has %d entries, newest %d; want the %d template entries", len(all), all[0].ID, len(es))
	}
}

// testTemplateOrder checks that templates are listed in byte order of
// name, whatever the order they were saved in: upper case before lower,
// punctuation by its code.
func testTemplateOrder(t *testing.T, s budget.Store) {
	names := []string{"researcher", "b", "B", "a_b", "a-b", "a.b", "a b", "a1", "Intern", "intern", "z", "A", "ab"}
	for i, n := range names {
		p := templatePlan(fmt.Sprint(i + 1))
		if err := s.SaveTemplate(ctx, templateReq(n, &p, 1, 0, start)); err != nil {
			t.Fatalf("create %q: %v", n, err)
		}
	}
	want := slices.Clone(names)
	slices.Sort(want)
	ts := templatesOf(t, s)
	var got []string
	for _, tm := range ts {
		got = append(got, tm.Name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("templates listed %q, want byte order %q", got, want)
	}
	for _, tm := range ts {
		i := slices.Index(names, tm.Name)
		if !tm.Limit.Equal(amt(fmt.Sprint(i + 1))) {
			t.Errorf("template %q has limit %s, want %d", tm.Name, tm.Limit, i+1)
		}
	}
}

// testTemplatesConcurrent: of concurrent saves or deletions expecting one
// version, exactly one succeeds, and only it is audited.
func testTemplatesConcurrent(t *testing.T, s budget.Store) {
	const n = 8
	steps := []struct {
		name   string
		req    func(i int) budget.TemplateRequest
		delete bool
	}{
		{"create", func(i int) budget.TemplateRequest {
			p := templatePlan(fmt.Sprint(i + 1))
			return templateReq("shared", &p, 1, 0, start)
		}, false},
		{"update", func(i int) budget.TemplateRequest {
			p := templatePlan(fmt.Sprint(100 + i))
			return templateReq("shared", &p, 2, 1, start)
		}, false},
		{"delete", func(int) budget.TemplateRequest { return templateReq("shared", nil, 0, 2, start) }, true},
	}
	for k, st := range steps {
		errs := parallel(n, func(i int) error {
			if st.delete {
				return s.DeleteTemplate(ctx, st.req(i))
			}
			return s.SaveTemplate(ctx, st.req(i))
		})
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case errors.Is(err, budget.ErrConflict), st.delete && errors.Is(err, budget.ErrNotFound):
			default:
				t.Fatalf("%s: %v", st.name, err)
			}
		}
		if won != 1 {
			t.Fatalf("%d concurrent %ss succeeded, want 1", won, st.name)
		}
		if es := templateAudit(t, s); len(es) != k+1 {
			t.Fatalf("after the concurrent %ss: %d template entries, want %d", st.name, len(es), k+1)
		}
		ts := templatesOf(t, s)
		switch {
		case st.delete && len(ts) != 0:
			t.Errorf("after the concurrent deletions: %s", templateNames(ts))
		case !st.delete && (len(ts) != 1 || ts[0].Version != int64(k+1)):
			t.Errorf("after the concurrent %ss: %s, want shared@%d", st.name, templateNames(ts), k+1)
		case !st.delete:
			// The winner's plan is stored whole: its limit and its
			// audit entry's agree.
			if e := templateAudit(t, s)[0]; !e.After.Limit.Equal(ts[0].Limit) {
				t.Errorf("stored limit %s, audited %s", ts[0].Limit, e.After.Limit)
			}
		}
	}
}
