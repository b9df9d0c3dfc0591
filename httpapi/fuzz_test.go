package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/llmbudget/budget/httpapi"
)

// fuzzStatuses are the answers a request may get from arbitrary input.
var fuzzStatuses = map[int]bool{200: true, 400: true, 403: true, 404: true, 412: true, 413: true, 415: true}

// checkFuzzResponse fails on a 5xx, an unexpected status, or a body that is
// not the JSON its Content-Type says.
func checkFuzzResponse(t *testing.T, what string, r response) {
	t.Helper()
	if !fuzzStatuses[r.status] {
		t.Fatalf("%s: status %d; body %s", what, r.status, r.body)
	}
	if r.status == http.StatusOK {
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
// that takes one (settings, resets, the access switch, bulk changes and
// templates): the handler must never panic or answer 5xx, whatever the
// decoders and the core make of them. The seed corpus is in
// testdata/fuzz/FuzzDecodeSettings.
func FuzzDecodeSettings(f *testing.F) {
	f.Add([]byte(`{"limit_usd": "12.5", "alert_threshold_yellow": 50}`))
	f.Add([]byte(`{"user_id": "tess", "budget_period": "custom", "custom_period_days": 7, "admin_notes": ""}`))
	f.Add([]byte(`{"user_ids": ["pete", "ghost"], "changes": {"limit_usd": "45"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fx := newFixture(t)
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
	f.Fuzz(func(t *testing.T, rawQuery string) {
		fx := newFixture(t)
		for _, q := range []req{
			{method: "GET", path: "/usage/history", token: "tok-pete"},
			{method: "GET", path: "/usage/breakdown", token: "tok-pete"},
			{method: "GET", path: "/admin/list", token: "tok-root"},
			{method: "GET", path: "/admin/audit", token: "tok-root"},
			{method: "GET", path: "/admin/users/pete/usage/history", token: "tok-root"},
			{method: "GET", path: "/admin/users/pete/usage/breakdown", token: "tok-root"},
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
