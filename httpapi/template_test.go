package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/llmbudget/budget/httpapi"
)

// TestTemplates reads, creates, changes and deletes templates, with ETags
// and If-Match as for the defaults.
func TestTemplates(t *testing.T) {
	f := newFixture(t)
	r := f.do(req{method: "GET", path: "/admin/templates/intern", token: "tok-root"})
	got := r.json(t)
	want := map[string]any{
		"name": "intern", "limit_usd": "5", "budget_period": "weekly", "timezone": "UTC",
		"enforce_budget": true, "budget_visible_to_user": true, "user_can_modify_limit": false,
		"user_can_reset_budget": false, "alert_threshold_yellow": "75", "alert_threshold_orange": "90",
		"alert_threshold_red": "100", "version": json.Number("1"), "updated_at": "2025-03-14T09:00:00Z",
	}
	if d := cmp.Diff(want, got); d != "" || r.header.Get("ETag") != `"1"` {
		t.Errorf("GET /admin/templates/intern, ETag %s (-want +got):\n%s", r.header.Get("ETag"), d)
	}
	list := f.do(req{method: "GET", path: "/admin/templates", token: "tok-root"}).json(t)
	if d := cmp.Diff(map[string]any{"templates": []any{want}}, list); d != "" {
		t.Errorf("GET /admin/templates (-want +got):\n%s", d)
	}

	put := func(name, ifMatch, body string) response {
		h := map[string]string{}
		if ifMatch != "" {
			h["If-Match"] = ifMatch
		}
		return f.do(req{method: "PUT", path: "/admin/templates/" + name, token: "tok-root", body: body, header: h})
	}
	// A new template starts from the defaults; its name may have spaces
	// and dots, escaped in the path.
	r = put("researcher%20v1.0", "", `{"limit_usd": "200", "user_can_modify_limit": true}`)
	got = r.json(t)
	if got["name"] != "researcher v1.0" || got["limit_usd"] != "200" || got["budget_period"] != "monthly" ||
		got["user_can_modify_limit"] != true || r.header.Get("ETag") != `"1"` {
		t.Errorf("new template: %s %s", r.header.Get("ETag"), r.body)
	}
	if r = put("intern", `"1"`, `{"limit_usd": "6"}`); r.status != 200 || r.header.Get("ETag") != `"2"` {
		t.Fatalf("PUT with the current ETag: %d %s %s", r.status, r.header.Get("ETag"), r.body)
	}
	before := f.state()
	for _, stale := range []string{`"1"`, `"0"`, `W/"2"`} {
		if r = put("intern", stale, `{"limit_usd": "7"}`); r.status != http.StatusPreconditionFailed || r.problem(t).Type != httpapi.ProblemPreconditionFailed {
			t.Errorf("PUT with If-Match %s: %d %s", stale, r.status, r.body)
		}
		r = f.do(req{method: "DELETE", path: "/admin/templates/intern", token: "tok-root", header: map[string]string{"If-Match": stale}})
		if r.status != http.StatusPreconditionFailed {
			t.Errorf("DELETE with If-Match %s: %d %s", stale, r.status, r.body)
		}
	}
	// If-Match on a template that does not exist fails: there is no
	// version to match.
	if r = put("ghost", `"1"`, `{"limit_usd": "7"}`); r.status != http.StatusPreconditionFailed {
		t.Errorf("PUT a new template with If-Match: %d %s", r.status, r.body)
	}
	if d := diff(before, f.state()); d != "" {
		t.Errorf("refused template writes changed the state:\n%s", d)
	}
	r = f.do(req{method: "DELETE", path: "/admin/templates/intern", token: "tok-root", header: map[string]string{"If-Match": `"2"`}})
	if r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	checkHeaders(t, r)
	if r = f.do(req{method: "GET", path: "/admin/templates/intern", token: "tok-root"}); r.status != 404 {
		t.Errorf("GET after DELETE: %d", r.status)
	}
	names := []string{}
	for _, tm := range f.do(req{method: "GET", path: "/admin/templates", token: "tok-root"}).json(t)["templates"].([]any) {
		names = append(names, tm.(map[string]any)["name"].(string))
	}
	if d := cmp.Diff([]string{"researcher v1.0"}, names); d != "" {
		t.Errorf("templates after DELETE (-want +got):\n%s", d)
	}
	// Saving, changing and deleting are audited, with the template's name.
	entries := f.do(req{method: "GET", path: "/admin/audit?type=template", token: "tok-root"}).json(t)["entries"].([]any)
	if len(entries) != 4 {
		t.Fatalf("template entries: %v", entries)
	}
	del, change := entries[0].(map[string]any), entries[1].(map[string]any)
	if del["template"] != "intern" || del["after"] != nil || del["user_id"] != nil {
		t.Errorf("deletion entry %v", del)
	}
	if d := cmp.Diff([]any{map[string]any{"field": "limit_usd", "before": "5", "after": "6"}}, change["changes"]); d != "" || change["template"] != "intern" {
		t.Errorf("change entry %v (-want +got):\n%s", change, d)
	}
}
