package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/httpapi"
)

// TestAccess turns budgets off and on for every regular user at once.
func TestAccess(t *testing.T) {
	f := newFixture(t)
	got := f.do(req{method: "GET", path: "/admin/access", token: "tok-root"}).json(t)
	// carol, hank, nora, pete and tess are regular users; hank is hidden.
	want := map[string]any{"enabled": true, "users": json.Number("5"), "visible_users": json.Number("4")}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("GET /admin/access (-want +got):\n%s", d)
	}

	got = f.do(req{method: "PUT", path: "/admin/access", token: "tok-root", body: `{"enabled": false}`}).json(t)
	bulkID, _ := got["bulk_id"].(string)
	if bulkID == "" {
		t.Fatalf("PUT /admin/access: no bulk_id: %v", got)
	}
	want = map[string]any{"enabled": false, "users": json.Number("5"), "visible_users": json.Number("0"),
		"changed": json.Number("4"), "bulk_id": bulkID, "failed": []any{}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("PUT /admin/access off (-want +got):\n%s", d)
	}
	// Regular users, existing and new, see their budgets hidden; the
	// admin's stays.
	for _, tok := range []string{"tok-carol", "tok-pete", "tok-newbie"} {
		r := f.do(req{method: "GET", path: "/status", token: tok})
		if r.status != http.StatusForbidden {
			t.Fatalf("%s GET /status with access off: %d %s", tok, r.status, r.body)
		}
		checkRefusal(t, true, r, r.problem(t))
	}
	if r := f.do(req{method: "GET", path: "/status", token: "tok-root"}); r.status != 200 {
		t.Errorf("the admin's status with access off: %d %s", r.status, r.body)
	}
	// Enforcement is unchanged: a hidden budget is still enforced.
	if s := f.settingsOf("pete"); !s.Enforce || s.Visible {
		t.Errorf("pete with access off: %+v", s.Plan)
	}
	// One settings entry per changed user and one defaults entry, all
	// sharing the bulk ID.
	entries := f.do(req{method: "GET", path: "/admin/audit?limit=6", token: "tok-root"}).json(t)["entries"].([]any)
	types := map[string]int{}
	for _, e := range entries {
		e := e.(map[string]any)
		if e["bulk_id"] != bulkID {
			continue
		}
		types[e["type"].(string)]++
		if d := cmp.Diff([]any{map[string]any{"field": "budget_visible_to_user", "before": "true", "after": "false"}}, e["changes"]); d != "" {
			t.Errorf("access entry %v: changes (-want +got):\n%s", e, d)
		}
	}
	if d := cmp.Diff(map[string]int{"settings": 4, "defaults": 1}, types); d != "" {
		t.Errorf("entries of the access change (-want +got):\n%s", d)
	}

	// On again: every regular user sees their budget, hank too.
	got = f.do(req{method: "PUT", path: "/admin/access", token: "tok-root", body: `{"enabled": true}`}).json(t)
	if got["enabled"] != true || got["visible_users"] != json.Number("6") || got["users"] != json.Number("6") || got["changed"] != json.Number("6") {
		t.Errorf("PUT /admin/access on: %v", got) // newbie has settings now
	}
	if r := f.do(req{method: "GET", path: "/status", token: "tok-hank"}); r.status != 200 {
		t.Errorf("hank with access on: %d %s", r.status, r.body)
	}
}

// TestBulk changes several users in one request; a user the change cannot
// apply to is reported with a problem and left as they were, and the
// others change.
func TestBulk(t *testing.T) {
	f := newFixture(t)
	before := f.state()
	r := f.do(req{method: "POST", path: "/admin/bulk", token: "tok-root",
		body: `{"user_ids": ["pete", "ghost", "tess"], "changes": {"limit_usd": "45"}}`})
	got := r.json(t)
	bulkID, _ := got["bulk_id"].(string)
	results := got["results"].([]any)
	if bulkID == "" || got["changed"] != json.Number("2") || len(results) != 3 {
		t.Fatalf("bulk: %s", r.body)
	}
	for i, id := range []string{"pete", "ghost", "tess"} {
		res := results[i].(map[string]any)
		if res["user_id"] != id {
			t.Errorf("result %d: %v, want user %s", i, res, id)
		}
		if id == "ghost" {
			p := res["problem"].(map[string]any)
			if res["ok"] != false || res["settings"] != nil || res["changed"] != nil ||
				p["status"] != json.Number("404") || p["type"] != httpapi.ProblemNotFound || p["field"] != "user_id" {
				t.Errorf("unknown user's result: %v", res)
			}
			continue
		}
		set := res["settings"].(map[string]any)
		if res["ok"] != true || res["changed"] != true || res["problem"] != nil || set["limit_usd"] != "45" || set["admin_notes"] == nil {
			t.Errorf("%s's result: %v", id, res)
		}
	}
	// The unknown user was not created; the others changed, audited with
	// the bulk ID.
	after := f.state()
	if len(after.Users) != len(before.Users) {
		t.Errorf("a bulk change created users: %d, then %d", len(before.Users), len(after.Users))
	}
	entries := f.do(req{method: "GET", path: "/admin/audit?type=settings&limit=2", token: "tok-root"}).json(t)["entries"].([]any)
	prev := map[string]string{"pete": "40", "tess": "50"}
	for _, e := range entries {
		e := e.(map[string]any)
		id := e["user_id"].(string)
		want := []any{map[string]any{"field": "limit_usd", "before": prev[id], "after": "45"}}
		if e["bulk_id"] != bulkID || e["template"] != nil || cmp.Diff(want, e["changes"]) != "" {
			t.Errorf("audit entry %v", e)
		}
	}

	// The same change again changes nobody.
	got = f.do(req{method: "POST", path: "/admin/bulk", token: "tok-root",
		body: `{"user_ids": ["pete", "tess"], "changes": {"limit_usd": 45}}`}).json(t)
	if got["changed"] != json.Number("0") || got["results"].([]any)[0].(map[string]any)["changed"] != false {
		t.Errorf("a bulk change that changes nothing: %v", got)
	}

	// A change that does not fit one user's settings fails for that user
	// alone: tess's orange threshold is above the new yellow, pete's not.
	f.do(req{method: "PUT", path: "/admin/configure", token: "tok-root", body: `{"user_id": "tess", "alert_threshold_orange": "96"}`})
	pete := f.settingsOf("pete")
	got = f.do(req{method: "POST", path: "/admin/bulk", token: "tok-root",
		body: `{"user_ids": ["pete", "tess"], "changes": {"alert_threshold_yellow": "95"}}`}).json(t)
	results = got["results"].([]any)
	if p, _ := results[0].(map[string]any)["problem"].(map[string]any); p == nil || p["status"] != json.Number("400") || p["field"] != "alert_threshold_orange" {
		t.Errorf("pete's result: %v", results[0])
	}
	if res := results[1].(map[string]any); res["ok"] != true || res["settings"].(map[string]any)["alert_threshold_yellow"] != "95" {
		t.Errorf("tess's result: %v", res)
	}
	if d := cmp.Diff(pete, f.settingsOf("pete"), cmpDecimal); d != "" {
		t.Errorf("a failed user changed (-before +after):\n%s", d)
	}

	// Selected by a filter: the users whose ID contains "E", any case.
	got = f.do(req{method: "POST", path: "/admin/bulk", token: "tok-root",
		body: `{"match": {"q": "E", "level": ""}, "changes": {"enforce_budget": false}}`}).json(t)
	var ids []string
	for _, res := range got["results"].([]any) {
		ids = append(ids, res.(map[string]any)["user_id"].(string))
	}
	if d := cmp.Diff([]string{"pete", "tess"}, ids); d != "" || got["changed"] != json.Number("2") {
		t.Errorf("bulk by match (-want +got):\n%s\n%v", d, got)
	}
}

// TestBulkTemplate applies a template to several users.
func TestBulkTemplate(t *testing.T) {
	f := newFixture(t)
	got := f.do(req{method: "POST", path: "/admin/bulk", token: "tok-root",
		body: `{"user_ids": ["nora", "tess"], "template": "intern"}`}).json(t)
	if got["changed"] != json.Number("2") {
		t.Fatalf("apply template: %v", got)
	}
	for _, id := range []string{"nora", "tess"} {
		s := f.settingsOf(id)
		if !s.Limit.Equal(budget.MustAmount("5")) || s.Period != budget.Weekly || s.CanModify {
			t.Errorf("%s after the template: %+v", id, s.Plan)
		}
	}
	if s := f.settingsOf("tess"); s.AdminNotes != "watch her" {
		t.Errorf("a template changed the admin notes: %q", s.AdminNotes)
	}
	e := f.do(req{method: "GET", path: "/admin/audit?user_id=tess&limit=1", token: "tok-root"}).json(t)["entries"].([]any)[0].(map[string]any)
	if e["template"] != "intern" || e["bulk_id"] != got["bulk_id"] || e["type"] != "settings" {
		t.Errorf("audit entry of a template: %v", e)
	}
}
