package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/llmbudget/budget/httpapi"
)

// TestBadInput sends invalid bodies, query parameters and headers to every
// endpoint that takes them, as a principal allowed to make the request, and
// checks the status, the problem type, the field named, and that nothing
// changed.
func TestBadInput(t *testing.T) {
	const (
		invalid = httpapi.ProblemInvalidField
		amount  = httpapi.ProblemInvalidAmount
		unknown = httpapi.ProblemUnknownField
		body    = httpapi.ProblemMalformedBody
	)
	big := `{"timezone": "` + strings.Repeat("x", httpapi.MaxBodyBytes) + `"}`
	bigNotes := `{"user_id": "tess", "admin_notes": "` + strings.Repeat("x", httpapi.MaxBodyBytes) + `"}`
	cases := []struct {
		name string
		req
		status int
		typ    string
		field  string
	}{
		// Query parameters.
		{"history limit 0", req{method: "GET", path: "/usage/history?limit=0"}, 400, invalid, "limit"},
		{"history limit 501", req{method: "GET", path: "/usage/history?limit=501"}, 400, invalid, "limit"},
		{"history limit abc", req{method: "GET", path: "/usage/history?limit=abc"}, 400, invalid, "limit"},
		{"history limit -1", req{method: "GET", path: "/usage/history?limit=-1"}, 400, invalid, "limit"},
		{"history limit empty", req{method: "GET", path: "/usage/history?limit="}, 400, invalid, "limit"},
		{"history limit twice", req{method: "GET", path: "/usage/history?limit=1&limit=2"}, 400, invalid, "limit"},
		{"history bad cursor", req{method: "GET", path: "/usage/history?cursor=garbage"}, 400, invalid, "cursor"},
		{"history unknown parameter", req{method: "GET", path: "/usage/history?page=2"}, 400, unknown, "page"},
		{"history malformed query", req{method: "GET", path: "/usage/history?limit=%zz"}, 400, invalid, "query"},
		{"breakdown from after to", req{method: "GET", path: "/usage/breakdown?from=2025-03-10T00:00:00Z&to=2025-03-01T00:00:00Z"}, 400, invalid, "from"},
		{"breakdown from equals to", req{method: "GET", path: "/usage/breakdown?from=2025-03-10T00:00:00Z&to=2025-03-10T00:00:00Z"}, 400, invalid, "from"},
		{"breakdown from only", req{method: "GET", path: "/usage/breakdown?from=2025-03-10T00:00:00Z"}, 400, invalid, "to"},
		{"breakdown to only", req{method: "GET", path: "/usage/breakdown?to=2025-03-10T00:00:00Z"}, 400, invalid, "from"},
		{"breakdown bad from", req{method: "GET", path: "/usage/breakdown?from=yesterday&to=2025-03-01T00:00:00Z"}, 400, invalid, "from"},
		{"breakdown bad to", req{method: "GET", path: "/usage/breakdown?from=2025-03-01T00:00:00Z&to=2025-13-01T00:00:00Z"}, 400, invalid, "to"},
		{"breakdown date only", req{method: "GET", path: "/usage/breakdown?from=2025-03-01&to=2025-04-01"}, 400, invalid, "from"},
		{"breakdown year 9999", req{method: "GET", path: "/usage/breakdown?from=2025-03-01T00:00:00Z&to=9999-01-01T00:00:00Z"}, 400, invalid, "to"},
		{"status unknown parameter", req{method: "GET", path: "/status?verbose=1"}, 400, unknown, "verbose"},
		{"list level purple", req{method: "GET", path: "/admin/list?level=purple", token: "tok-root"}, 400, invalid, "level"},
		{"list limit 0", req{method: "GET", path: "/admin/list?limit=0", token: "tok-root"}, 400, invalid, "limit"},
		{"list limit 501", req{method: "GET", path: "/admin/list?limit=501", token: "tok-root"}, 400, invalid, "limit"},
		{"list bad cursor", req{method: "GET", path: "/admin/list?cursor=!!!", token: "tok-root"}, 400, invalid, "cursor"},
		{"list long q", req{method: "GET", path: "/admin/list?q=" + strings.Repeat("a", 257), token: "tok-root"}, 400, invalid, "q"},
		{"audit bad cursor", req{method: "GET", path: "/admin/audit?cursor=abc", token: "tok-root"}, 400, invalid, "cursor"},
		{"audit negative cursor", req{method: "GET", path: "/admin/audit?cursor=-5", token: "tok-root"}, 400, invalid, "cursor"},
		{"audit limit abc", req{method: "GET", path: "/admin/audit?limit=abc", token: "tok-root"}, 400, invalid, "limit"},
		{"audit user id control", req{method: "GET", path: "/admin/audit?user_id=a%01b", token: "tok-root"}, 400, invalid, "user_id"},
		{"user id control", req{method: "GET", path: "/admin/users/a%01b", token: "tok-root"}, 400, invalid, "user_id"},

		// PUT /settings bodies.
		{"unknown field", req{method: "PUT", path: "/settings", body: `{"limit_usd": "1", "colour": "red"}`}, 400, unknown, "colour"},
		{"field in another case", req{method: "PUT", path: "/settings", body: `{"LIMIT_USD": "1"}`}, 400, unknown, "LIMIT_USD"},
		{"read-only field", req{method: "PUT", path: "/settings", body: `{"version": 3}`}, 400, unknown, "version"},
		{"user id on /settings", req{method: "PUT", path: "/settings", body: `{"user_id": "tess"}`}, 400, unknown, "user_id"},
		{"admin notes on /settings", req{method: "PUT", path: "/settings", body: `{"admin_notes": "hi"}`}, 400, unknown, "admin_notes"},
		{"field twice", req{method: "PUT", path: "/settings", body: `{"limit_usd": "1", "limit_usd": "2"}`}, 400, invalid, "limit_usd"},
		{"trailing object", req{method: "PUT", path: "/settings", body: `{"limit_usd": "1"} {}`}, 400, body, "body"},
		{"trailing garbage", req{method: "PUT", path: "/settings", body: `{"limit_usd": "1"}x`}, 400, body, "body"},
		{"malformed JSON", req{method: "PUT", path: "/settings", body: `{"limit_usd": `}, 400, body, "body"},
		{"syntax error", req{method: "PUT", path: "/settings", body: `{"limit_usd" "1"}`}, 400, body, "body"},
		{"not an object", req{method: "PUT", path: "/settings", body: `["limit_usd"]`}, 400, body, "body"},
		{"a string", req{method: "PUT", path: "/settings", body: `"limit_usd"`}, 400, body, "body"},
		{"empty body", req{method: "PUT", path: "/settings", contentType: "application/json"}, 400, body, "body"},
		{"wrong content type", req{method: "PUT", path: "/settings", body: `{"limit_usd": "1"}`, contentType: "text/plain"}, 415, httpapi.ProblemUnsupportedMediaType, "Content-Type"},
		{"form content type", req{method: "PUT", path: "/settings", body: `limit_usd=1`, contentType: "application/x-www-form-urlencoded"}, 415, httpapi.ProblemUnsupportedMediaType, "Content-Type"},
		{"no content type", req{method: "PUT", path: "/settings", body: `{"limit_usd": "1"}`, contentType: "-"}, 415, httpapi.ProblemUnsupportedMediaType, "Content-Type"},
		{"latin-1", req{method: "PUT", path: "/settings", body: `{"limit_usd": "1"}`, contentType: "application/json; charset=iso-8859-1"}, 415, httpapi.ProblemUnsupportedMediaType, "Content-Type"},
		{"body over 64 KiB", req{method: "PUT", path: "/settings", body: big}, 413, httpapi.ProblemBodyTooLarge, "body"},
		{"body over 64 KiB chunked", req{method: "PUT", path: "/settings", body: big, chunked: true}, 413, httpapi.ProblemBodyTooLarge, "body"},
		{"negative money", req{method: "PUT", path: "/settings", body: `{"limit_usd": "-1"}`}, 400, amount, "limit_usd"},
		{"negative number", req{method: "PUT", path: "/settings", body: `{"limit_usd": -0.5}`}, 400, amount, "limit_usd"},
		{"10 decimal places", req{method: "PUT", path: "/settings", body: `{"limit_usd": "0.0000000001"}`}, 400, amount, "limit_usd"},
		{"10 decimal places number", req{method: "PUT", path: "/settings", body: `{"limit_usd": 1.0000000001}`}, 400, amount, "limit_usd"},
		{"1e400", req{method: "PUT", path: "/settings", body: `{"limit_usd": 1e400}`}, 400, amount, "limit_usd"},
		{"1e400 string", req{method: "PUT", path: "/settings", body: `{"limit_usd": "1e400"}`}, 400, amount, "limit_usd"},
		{"1e-400", req{method: "PUT", path: "/settings", body: `{"limit_usd": 1e-400}`}, 400, amount, "limit_usd"},
		{"too much money", req{method: "PUT", path: "/settings", body: `{"limit_usd": "10000000000"}`}, 400, amount, "limit_usd"},
		{"money not a number", req{method: "PUT", path: "/settings", body: `{"limit_usd": "ten"}`}, 400, amount, "limit_usd"},
		{"money with spaces", req{method: "PUT", path: "/settings", body: `{"limit_usd": " 10"}`}, 400, amount, "limit_usd"},
		{"money bool", req{method: "PUT", path: "/settings", body: `{"limit_usd": true}`}, 400, amount, "limit_usd"},
		{"money null", req{method: "PUT", path: "/settings", body: `{"limit_usd": null}`}, 400, invalid, "limit_usd"},
		{"thresholds out of order", req{method: "PUT", path: "/settings", body: `{"alert_threshold_yellow": "95", "alert_threshold_orange": "90", "alert_threshold_red": "100"}`}, 400, invalid, "alert_threshold_orange"},
		{"threshold past the stored next", req{method: "PUT", path: "/settings", body: `{"alert_threshold_yellow": "95"}`}, 400, invalid, "alert_threshold_orange"},
		{"threshold 0", req{method: "PUT", path: "/settings", body: `{"alert_threshold_yellow": 0}`}, 400, invalid, "alert_threshold_yellow"},
		{"threshold 1001", req{method: "PUT", path: "/settings", body: `{"alert_threshold_red": "1001"}`}, 400, invalid, "alert_threshold_red"},
		{"threshold 3 places", req{method: "PUT", path: "/settings", body: `{"alert_threshold_red": 99.999}`}, 400, invalid, "alert_threshold_red"},
		{"threshold 1e400", req{method: "PUT", path: "/settings", body: `{"alert_threshold_red": 1e400}`}, 400, invalid, "alert_threshold_red"},
		{"threshold object", req{method: "PUT", path: "/settings", body: `{"alert_threshold_red": {}}`}, 400, invalid, "alert_threshold_red"},
		{"unknown timezone", req{method: "PUT", path: "/settings", body: `{"timezone": "Mars/Olympus_Mons"}`}, 400, invalid, "timezone"},
		{"Local timezone", req{method: "PUT", path: "/settings", body: `{"timezone": "Local"}`}, 400, invalid, "timezone"},
		{"path timezone", req{method: "PUT", path: "/settings", body: `{"timezone": "../../etc/passwd"}`}, 400, invalid, "timezone"},
		{"timezone number", req{method: "PUT", path: "/settings", body: `{"timezone": 1}`}, 400, invalid, "timezone"},
		{"unknown period", req{method: "PUT", path: "/settings", body: `{"budget_period": "yearly"}`}, 400, invalid, "budget_period"},
		{"period in capitals", req{method: "PUT", path: "/settings", body: `{"budget_period": "Daily"}`}, 400, invalid, "budget_period"},
		{"custom period without days", req{method: "PUT", path: "/settings", body: `{"budget_period": "custom"}`}, 400, invalid, "custom_period_days"},
		{"custom days 0", req{method: "PUT", path: "/settings", body: `{"budget_period": "custom", "custom_period_days": 0}`}, 400, invalid, "custom_period_days"},
		{"custom days 3661", req{method: "PUT", path: "/settings", body: `{"budget_period": "custom", "custom_period_days": 3661}`}, 400, invalid, "custom_period_days"},
		{"custom days fraction", req{method: "PUT", path: "/settings", body: `{"budget_period": "custom", "custom_period_days": 7.5}`}, 400, invalid, "custom_period_days"},
		{"custom days string", req{method: "PUT", path: "/settings", body: `{"budget_period": "custom", "custom_period_days": "7"}`}, 400, invalid, "custom_period_days"},
		{"days on a monthly period", req{method: "PUT", path: "/settings", body: `{"budget_period": "monthly", "custom_period_days": 7}`}, 400, invalid, "custom_period_days"},
		{"days without custom", req{method: "PUT", path: "/settings", body: `{"custom_period_days": 7}`}, 400, invalid, "custom_period_days"},
		{"bad anchor", req{method: "PUT", path: "/settings", body: `{"budget_period": "custom", "custom_period_days": 7, "custom_period_anchor": "monday"}`}, 400, invalid, "custom_period_anchor"},
		{"anchor out of range", req{method: "PUT", path: "/settings", body: `{"budget_period": "custom", "custom_period_days": 7, "custom_period_anchor": "0001-01-01T00:00:00Z"}`}, 400, invalid, "custom_period_anchor"},
		{"enforce yes", req{method: "PUT", path: "/settings", body: `{"enforce_budget": "yes"}`}, 400, invalid, "enforce_budget"},
		{"enforce 1", req{method: "PUT", path: "/settings", body: `{"enforce_budget": 1}`}, 400, invalid, "enforce_budget"},
		{"If-Match unquoted", req{method: "PUT", path: "/settings", body: `{"limit_usd": "1"}`, header: map[string]string{"If-Match": "7"}}, 400, invalid, "If-Match"},
		{"If-Match two tags", req{method: "PUT", path: "/settings", body: `{"limit_usd": "1"}`, header: map[string]string{"If-Match": `"7", "8"`}}, 400, invalid, "If-Match"},
		{"If-Match unterminated", req{method: "PUT", path: "/settings", body: `{"limit_usd": "1"}`, header: map[string]string{"If-Match": `"7`}}, 400, invalid, "If-Match"},

		// POST /reset.
		{"reset unknown field", req{method: "POST", path: "/reset", body: `{"why": "x"}`}, 400, unknown, "why"},
		{"reset reason number", req{method: "POST", path: "/reset", body: `{"reason": 5}`}, 400, invalid, "reason"},
		{"reset reason too long", req{method: "POST", path: "/reset", body: `{"reason": "` + strings.Repeat("x", 1025) + `"}`}, 400, invalid, "reason"},
		{"reset trailing data", req{method: "POST", path: "/reset", body: `{} []`}, 400, body, "body"},
		{"reset wrong content type", req{method: "POST", path: "/reset", body: `{}`, contentType: "text/plain"}, 415, httpapi.ProblemUnsupportedMediaType, "Content-Type"},

		// Admin bodies.
		{"configure without user", req{method: "PUT", path: "/admin/configure", token: "tok-root", body: `{"limit_usd": "1"}`}, 400, invalid, "user_id"},
		{"configure empty user", req{method: "PUT", path: "/admin/configure", token: "tok-root", body: `{"user_id": ""}`}, 400, invalid, "user_id"},
		{"configure long user", req{method: "PUT", path: "/admin/configure", token: "tok-root", body: `{"user_id": "` + strings.Repeat("u", 257) + `"}`}, 400, invalid, "user_id"},
		{"configure user number", req{method: "PUT", path: "/admin/configure", token: "tok-root", body: `{"user_id": 7}`}, 400, invalid, "user_id"},
		{"configure long notes", req{method: "PUT", path: "/admin/configure", token: "tok-root", body: `{"user_id": "tess", "admin_notes": "` + strings.Repeat("n", 4097) + `"}`}, 400, invalid, "admin_notes"},
		{"configure notes number", req{method: "PUT", path: "/admin/configure", token: "tok-root", body: `{"user_id": "tess", "admin_notes": 5}`}, 400, invalid, "admin_notes"},
		{"configure unknown field", req{method: "PUT", path: "/admin/configure", token: "tok-root", body: `{"user_id": "tess", "limit": "5"}`}, 400, unknown, "limit"},
		{"configure over 64 KiB", req{method: "PUT", path: "/admin/configure", token: "tok-root", body: bigNotes}, 413, httpapi.ProblemBodyTooLarge, "body"},
		{"configure new user negative", req{method: "PUT", path: "/admin/configure", token: "tok-root", body: `{"user_id": "newbie", "limit_usd": "-5"}`}, 400, amount, "limit_usd"},
		{"configure new user timezone", req{method: "PUT", path: "/admin/configure", token: "tok-root", body: `{"user_id": "newbie", "timezone": "Nowhere/Land"}`}, 400, invalid, "timezone"},
		{"configure new user thresholds", req{method: "PUT", path: "/admin/configure", token: "tok-root", body: `{"user_id": "newbie", "alert_threshold_yellow": "50", "alert_threshold_orange": "40", "alert_threshold_red": "100"}`}, 400, invalid, "alert_threshold_orange"},
		{"configure new user days", req{method: "PUT", path: "/admin/configure", token: "tok-root", body: `{"user_id": "newbie", "budget_period": "weekly", "custom_period_days": 3}`}, 400, invalid, "custom_period_days"},
		{"configure malformed", req{method: "PUT", path: "/admin/configure", token: "tok-root", body: `{"user_id": "tess",}`}, 400, body, "body"},
		{"admin reset unknown field", req{method: "POST", path: "/admin/reset/tess", token: "tok-root", body: `{"reason": "x", "force": true}`}, 400, unknown, "force"},
		{"admin reset bad user", req{method: "POST", path: "/admin/reset/a%7Fb", token: "tok-root", body: `{}`}, 400, invalid, "user_id"},
		{"defaults admin notes", req{method: "PUT", path: "/admin/defaults", token: "tok-root", body: `{"admin_notes": "x"}`}, 400, unknown, "admin_notes"},
		{"defaults user id", req{method: "PUT", path: "/admin/defaults", token: "tok-root", body: `{"user_id": "x"}`}, 400, unknown, "user_id"},
		{"defaults negative", req{method: "PUT", path: "/admin/defaults", token: "tok-root", body: `{"limit_usd": -1}`}, 400, amount, "limit_usd"},
		{"defaults period", req{method: "PUT", path: "/admin/defaults", token: "tok-root", body: `{"budget_period": "fortnightly"}`}, 400, invalid, "budget_period"},
		{"defaults thresholds", req{method: "PUT", path: "/admin/defaults", token: "tok-root", body: `{"alert_threshold_red": "80"}`}, 400, invalid, "alert_threshold_red"},
		{"defaults If-Match", req{method: "PUT", path: "/admin/defaults", token: "tok-root", body: `{}`, header: map[string]string{"If-Match": "W/"}}, 400, invalid, "If-Match"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			q := c.req
			if q.token == "" {
				q.token = "tok-pete" // visible, may modify and reset
			}
			before := f.state()
			r := f.do(q)
			if r.status != c.status {
				t.Fatalf("status %d, want %d; body %s", r.status, c.status, r.body)
			}
			p := r.problem(t)
			if p.Type != c.typ || p.Field != c.field {
				t.Errorf("problem type %q field %q, want %q %q; detail %q", p.Type, p.Field, c.typ, c.field, p.Detail)
			}
			if p.Detail == "" {
				t.Error("no detail")
			}
			if d := diff(before, f.state()); d != "" {
				t.Errorf("refused input changed the state (-before +after):\n%s", d)
			}
			checkHeaders(t, r)
		})
	}
}

// TestGoodInputForms checks the accepted spellings of the same values.
func TestGoodInputForms(t *testing.T) {
	cases := []struct {
		body  string
		field string
		want  string
	}{
		{`{"limit_usd": "12.50"}`, "limit_usd", "12.5"},
		{`{"limit_usd": 12.50}`, "limit_usd", "12.5"},
		{`{"limit_usd": 0.1}`, "limit_usd", "0.1"},
		{`{"limit_usd": "0.000000001"}`, "limit_usd", "0.000000001"},
		{`{"limit_usd": 1.5e3}`, "limit_usd", "1500"},
		{`{"limit_usd": "9223372036.854775807"}`, "limit_usd", "9223372036.854775807"},
		{`{"limit_usd": 0}`, "limit_usd", "0"},
		{`{"alert_threshold_red": 150.25}`, "alert_threshold_red", "150.25"},
		{`{"alert_threshold_red": "1000"}`, "alert_threshold_red", "1000"},
		{`{"timezone": "America/New_York"}`, "timezone", "America/New_York"},
		{`{"budget_period": "custom", "custom_period_days": 14}`, "custom_period_days", "14"},
		{`{"budget_period": "custom", "custom_period_days": 14, "custom_period_anchor": "2025-03-03T08:00:00+01:00"}`, "custom_period_anchor", "2025-03-03T07:00:00Z"},
		{`{"budget_period": "weekly"}`, "budget_period", "weekly"},
		{`{"enforce_budget": false}`, "enforce_budget", "false"},
		{` {"limit_usd": "3"} ` + "\n\t", "limit_usd", "3"},
	}
	for _, c := range cases {
		t.Run(c.body, func(t *testing.T) {
			f := newFixture(t)
			r := f.do(req{method: "PUT", path: "/settings", token: "tok-pete", body: c.body,
				contentType: "application/json; charset=UTF-8"})
			got := r.json(t)[c.field]
			if s, _ := got.(string); s != c.want && strings.TrimSpace(toString(got)) != c.want {
				t.Errorf("%s = %v, want %s", c.field, got, c.want)
			}
		})
	}
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case bool:
		if v {
			return "true"
		}
		return "false"
	case interface{ String() string }:
		return v.String()
	}
	return ""
}

// TestEmptyResetBody accepts a reset with no body at all.
func TestEmptyResetBody(t *testing.T) {
	f := newFixture(t)
	r := f.do(req{method: "POST", path: "/reset", token: "tok-pete"})
	m := r.json(t)
	if st := m["status"].(map[string]any); st["spent_usd"] != "0" {
		t.Errorf("after reset: %v", st)
	}
	if r.status != http.StatusOK {
		t.Fatal(r.status)
	}
}
