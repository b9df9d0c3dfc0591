package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/httpapi"
)

// fuzzStatuses are the answers a request may get from arbitrary input.
var fuzzStatuses = map[int]bool{200: true, 201: true, 400: true, 403: true, 404: true, 412: true, 413: true, 415: true}

// checkFuzzResponse fails on a 5xx, an unexpected status, or a body that is
// not the JSON its Content-Type says.
func checkFuzzResponse(t *testing.T, what string, r response) {
	t.Helper()
	if !fuzzStatuses[r.status] {
		t.Fatalf("%s: status %d; body %s", what, r.status, r.body)
	}
	if r.status == http.StatusOK || r.status == http.StatusCreated {
		var v map[string]any
		if err := json.Unmarshal(r.body, &v); err != nil {
			t.Fatalf("%s: 200 with body %q: %v", what, r.body, err)
		}
		return
	}
	var p httpapi.Problem
	if err := json.Unmarshal(r.body, &p); err != nil || p.Status != r.status || p.Type == "" {
		t.Fatalf("%s: %d with problem %q: %v", what, r.status, r.body, err)
	}
}

// FuzzDecodeSettings sends arbitrary bytes as the body of every endpoint
// that takes one (settings, resets, the access switch, bulk changes,
// templates, teams' and orgs' budgets with their model caps, members and
// memberships): the handler must never panic or answer 5xx, whatever the
// decoders and the core make of them. The seed corpus is in
// testdata/fuzz/FuzzDecodeSettings.
func FuzzDecodeSettings(f *testing.F) {
	f.Add([]byte(`{"limit_usd": "12.5", "alert_threshold_yellow": 50}`))
	f.Add([]byte(`{"user_id": "tess", "budget_period": "custom", "custom_period_days": 7, "admin_notes": ""}`))
	f.Add([]byte(`{"user_ids": ["pete", "ghost"], "changes": {"limit_usd": "45"}}`))
	f.Add([]byte(`{"limit_usd": "500", "model_caps": [{"pattern": "claude-opus-*", "limit_usd": "50"}]}`))
	f.Add([]byte(`{"teams": ["research", "ops"], "org": "acme", "user_id": "pete"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fx := newTeamFixture(t)
		for _, q := range []req{
			{method: "PUT", path: "/settings", token: "tok-pete"},
			{method: "PUT", path: "/settings", token: "tok-carol"},
			{method: "PUT", path: "/admin/configure", token: "tok-root"},
			{method: "PUT", path: "/admin/defaults", token: "tok-root"},
			{method: "POST", path: "/reset", token: "tok-pete"},
			{method: "POST", path: "/admin/reset/tess", token: "tok-root"},
			{method: "PUT", path: "/admin/access", token: "tok-root"},
			{method: "POST", path: "/admin/bulk", token: "tok-root"},
			{method: "PUT", path: "/admin/templates/intern", token: "tok-root"},
			{method: "PUT", path: "/admin/templates/new", token: "tok-root"},
			{method: "PUT", path: "/admin/teams/research", token: "tok-root"},
			{method: "PUT", path: "/admin/orgs/new", token: "tok-root"},
			{method: "POST", path: "/admin/teams/research/members", token: "tok-root"},
			{method: "PUT", path: "/admin/users/pete/membership", token: "tok-root"},
			{method: "PUT", path: "/admin/teams/ops/org", token: "tok-root"},
		} {
			q.body = string(body)
			q.contentType = "application/json"
			checkFuzzResponse(t, q.method+" "+q.path, fx.do(q))
		}
	})
}

// FuzzQuery sends arbitrary query strings to every endpoint that takes
// query parameters.
func FuzzQuery(f *testing.F) {
	f.Add("limit=2&cursor=abc")
	f.Add("from=2025-03-01T00:00:00Z&to=2025-04-01T00:00:00Z")
	f.Add("q=te&level=red&limit=500")
	f.Add("user_id=tess&cursor=1")
	f.Add("type=template")
	f.Add("kind=team&q=re&level=green")
	f.Add("scope=team:research&limit=1")
	f.Fuzz(func(t *testing.T, rawQuery string) {
		fx := newTeamFixture(t)
		for _, q := range []req{
			{method: "GET", path: "/usage/history", token: "tok-pete"},
			{method: "GET", path: "/usage/breakdown", token: "tok-pete"},
			{method: "GET", path: "/admin/list", token: "tok-root"},
			{method: "GET", path: "/admin/audit", token: "tok-root"},
			{method: "GET", path: "/admin/users/pete/usage/history", token: "tok-root"},
			{method: "GET", path: "/admin/users/pete/usage/breakdown", token: "tok-root"},
			{method: "GET", path: "/admin/budgets", token: "tok-root"},
			{method: "GET", path: "/admin/teams/research/usage/history", token: "tok-root"},
			{method: "GET", path: "/admin/orgs/acme/usage/breakdown", token: "tok-root"},
		} {
			r := httptest.NewRequest(q.method, q.path, nil)
			r.URL.RawQuery = rawQuery
			r.Header.Set("Authorization", "Bearer "+q.token)
			w := httptest.NewRecorder()
			fx.h.ServeHTTP(w, r)
			checkFuzzResponse(t, q.path+"?"+rawQuery, response{status: w.Code, header: w.Header(), body: w.Body.Bytes()})
		}
	})
}

// FuzzAuditScope sends arbitrary text as GET /admin/audit's scope: text
// budget.ParseScope reads is answered with that holder's entries and no
// one else's, anything else with a 400 naming scope. The seed corpus is in
// testdata/fuzz/FuzzAuditScope.
func FuzzAuditScope(f *testing.F) {
	for _, s := range []string{"team:research", "org:acme", "user:tina", "team:ghost", "team", "team:", ":x", "planet:x", "Team:research", "team:a:b", "team:..", "user:a\x01b", "org:\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, scope string) {
		fx := newTeamFixture(t)
		r := fx.do(req{method: "GET", path: "/admin/audit?limit=500&scope=" + url.QueryEscape(scope), token: "tok-root"})
		sc, err := budget.ParseScope(scope)
		switch {
		case scope == "": // the same as no scope
			r.json(t)
		case err != nil:
			if r.status != http.StatusBadRequest {
				t.Fatalf("scope %q: %d %s, want 400", scope, r.status, r.body)
			}
			if p := r.problem(t); p.Field != "scope" || p.Type != httpapi.ProblemInvalidField || p.Detail == "" {
				t.Fatalf("scope %q: %+v", scope, p)
			}
		default:
			for _, e := range r.json(t)["entries"].([]any) {
				m := e.(map[string]any)
				if sc.Kind == budget.UserScope && m["user_id"] != sc.ID ||
					sc.Kind != budget.UserScope && (m["scope"] != string(sc.Kind) || m["budget_id"] != sc.ID) {
					t.Fatalf("scope %q: entry %v", scope, m)
				}
			}
		}
	})
}
