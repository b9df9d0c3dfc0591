package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/llmbudget/budget"
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
	ids := make([]string, budget.MaxBulkUsers+1)
	for i := range ids {
		ids[i] = `"u` + strconv.Itoa(i) + `"`
	}
	tooMany := `{"user_ids": [` + strings.Join(ids, ",") + `], "changes": {"limit_usd": "1"}}`
	bulk := func(body string) req { return req{method: "POST", path: "/admin/bulk", token: "tok-root", body: body} }
	tmpl := func(method, name, body string) req {
		return req{method: method, path: "/admin/templates/" + name, token: "tok-root", body: body}
	}
	bigNotes := `{"user_id": "tess", "admin_notes": "` + strings.Repeat("x", httpapi.MaxBodyBytes) + `"}`
	admin := func(method, path, body string) req {
		return req{method: method, path: path, token: "tok-root", body: body}
	}
	notFound := httpapi.ProblemNotFound
	caps := func(json string) req { return admin("PUT", "/admin/teams/research", `{"model_caps": `+json+`}`) }
	newCaps := func(json string) req { return admin("PUT", "/admin/teams/design", `{"model_caps": `+json+`}`) }
	seventeen := make([]string, budget.MaxModelCaps+1)
	for i := range seventeen {
		seventeen[i] = `{"pattern": "m` + strconv.Itoa(i) + `", "limit_usd": "1"}`
	}
	nineTeams := `{"teams": ["research", "ops", "t2", "t3", "t4", "t5", "t6", "t7", "t8"]}`
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
		{"list projected under", req{method: "GET", path: "/admin/list?projected=under", token: "tok-root"}, 400, invalid, "projected"},
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

		// Searches: control characters are refused, not matched.
		{"list q NUL", req{method: "GET", path: "/admin/list?q=%00", token: "tok-root"}, 400, invalid, "q"},
		{"list q escape", req{method: "GET", path: "/admin/list?q=a%1Bb", token: "tok-root"}, 400, invalid, "q"},

		// GET /me.
		{"me unknown parameter", req{method: "GET", path: "/me?user_id=tess"}, 400, unknown, "user_id"},

		// Resets with a new limit: nothing changes.
		{"reset limit 10 places", req{method: "POST", path: "/reset", body: `{"limit_usd": "0.0000000001"}`}, 400, amount, "limit_usd"},
		{"reset limit negative", req{method: "POST", path: "/reset", body: `{"limit_usd": "-1"}`}, 400, amount, "limit_usd"},
		{"reset limit negative number", req{method: "POST", path: "/reset", body: `{"reason": "x", "limit_usd": -5}`}, 400, amount, "limit_usd"},
		{"reset limit too large", req{method: "POST", path: "/reset", body: `{"limit_usd": "10000000000"}`}, 400, amount, "limit_usd"},
		{"reset limit null", req{method: "POST", path: "/reset", body: `{"limit_usd": null}`}, 400, amount, "limit_usd"},
		{"reset limit bool", req{method: "POST", path: "/reset", body: `{"limit_usd": true}`}, 400, amount, "limit_usd"},
		{"admin reset limit 10 places", req{method: "POST", path: "/admin/reset/tess", token: "tok-root", body: `{"limit_usd": "0.0000000001"}`}, 400, amount, "limit_usd"},
		{"admin reset limit negative", req{method: "POST", path: "/admin/reset/tess", token: "tok-root", body: `{"limit_usd": "-0.01"}`}, 400, amount, "limit_usd"},

		// GET /admin/audit?type=.
		{"audit type purple", req{method: "GET", path: "/admin/audit?type=purple", token: "tok-root"}, 400, invalid, "type"},
		{"audit type in capitals", req{method: "GET", path: "/admin/audit?type=Settings", token: "tok-root"}, 400, invalid, "type"},
		{"audit type twice", req{method: "GET", path: "/admin/audit?type=settings&type=manual", token: "tok-root"}, 400, invalid, "type"},

		// One user's usage, for admins: the user routes' parameters.
		{"user history limit 0", req{method: "GET", path: "/admin/users/pete/usage/history?limit=0", token: "tok-root"}, 400, invalid, "limit"},
		{"user history bad cursor", req{method: "GET", path: "/admin/users/pete/usage/history?cursor=x", token: "tok-root"}, 400, invalid, "cursor"},
		{"user history unknown parameter", req{method: "GET", path: "/admin/users/pete/usage/history?user_id=tess", token: "tok-root"}, 400, unknown, "user_id"},
		{"user breakdown from only", req{method: "GET", path: "/admin/users/pete/usage/breakdown?from=2025-03-10T00:00:00Z", token: "tok-root"}, 400, invalid, "to"},
		{"user breakdown year 9999", req{method: "GET", path: "/admin/users/pete/usage/breakdown?from=2025-03-01T00:00:00Z&to=9999-01-01T00:00:00Z", token: "tok-root"}, 400, invalid, "to"},
		{"user breakdown bad user", req{method: "GET", path: "/admin/users/a%01b/usage/breakdown", token: "tok-root"}, 400, invalid, "user_id"},
		{"user history unknown user", req{method: "GET", path: "/admin/users/ghost/usage/history", token: "tok-root"}, 404, httpapi.ProblemNotFound, "user_id"},
		{"user breakdown unknown user", req{method: "GET", path: "/admin/users/ghost/usage/breakdown", token: "tok-root"}, 404, httpapi.ProblemNotFound, "user_id"},

		// PUT /admin/access.
		{"access without enabled", req{method: "PUT", path: "/admin/access", token: "tok-root", body: `{}`}, 400, invalid, "enabled"},
		{"access enabled string", req{method: "PUT", path: "/admin/access", token: "tok-root", body: `{"enabled": "no"}`}, 400, invalid, "enabled"},
		{"access enabled null", req{method: "PUT", path: "/admin/access", token: "tok-root", body: `{"enabled": null}`}, 400, invalid, "enabled"},
		{"access read-only field", req{method: "PUT", path: "/admin/access", token: "tok-root", body: `{"enabled": false, "visible_users": 0}`}, 400, unknown, "visible_users"},
		{"access no body", req{method: "PUT", path: "/admin/access", token: "tok-root", contentType: "application/json"}, 400, body, "body"},
		{"access parameter", req{method: "GET", path: "/admin/access?enabled=true", token: "tok-root"}, 400, unknown, "enabled"},

		// POST /admin/bulk: the whole request is refused, nobody changes.
		{"bulk ids and match", bulk(`{"user_ids": ["tess"], "match": {}, "changes": {"limit_usd": "1"}}`), 400, invalid, "user_ids"},
		{"bulk no selection", bulk(`{"changes": {"limit_usd": "1"}}`), 400, invalid, "user_ids"},
		{"bulk no ids", bulk(`{"user_ids": [], "changes": {"limit_usd": "1"}}`), 400, invalid, "user_ids"},
		{"bulk duplicate ids", bulk(`{"user_ids": ["tess", "pete", "tess"], "changes": {"limit_usd": "1"}}`), 400, invalid, "user_ids"},
		{"bulk 1001 ids", bulk(tooMany), 400, invalid, "user_ids"},
		{"bulk ids string", bulk(`{"user_ids": "tess", "changes": {"limit_usd": "1"}}`), 400, invalid, "user_ids"},
		{"bulk ids numbers", bulk(`{"user_ids": [1, 2], "changes": {"limit_usd": "1"}}`), 400, invalid, "user_ids"},
		{"bulk id null", bulk(`{"user_ids": ["tess", null], "changes": {"limit_usd": "1"}}`), 400, invalid, "user_ids"},
		{"bulk id empty", bulk(`{"user_ids": ["tess", ""], "changes": {"limit_usd": "1"}}`), 400, invalid, "user_ids"},
		{"bulk id control", bulk(`{"user_ids": ["tess", "a\u0001b"], "changes": {"limit_usd": "1"}}`), 400, invalid, "user_ids"},
		{"bulk ids null", bulk(`{"user_ids": null, "changes": {"limit_usd": "1"}}`), 400, invalid, "user_ids"},
		{"bulk match string", bulk(`{"match": "tess", "changes": {"limit_usd": "1"}}`), 400, invalid, "match"},
		{"bulk match unknown member", bulk(`{"match": {"user_id": "tess"}, "changes": {"limit_usd": "1"}}`), 400, unknown, "match.user_id"},
		{"bulk match level purple", bulk(`{"match": {"level": "purple"}, "changes": {"limit_usd": "1"}}`), 400, invalid, "match.level"},
		{"bulk match q NUL", bulk(`{"match": {"q": "\u0000"}, "changes": {"limit_usd": "1"}}`), 400, invalid, "match.q"},
		{"bulk match q number", bulk(`{"match": {"q": 5}, "changes": {"limit_usd": "1"}}`), 400, invalid, "match.q"},
		{"bulk match q twice", bulk(`{"match": {"q": "a", "q": "b"}, "changes": {"limit_usd": "1"}}`), 400, invalid, "match.q"},
		{"bulk changes and template", bulk(`{"user_ids": ["tess"], "changes": {"limit_usd": "1"}, "template": "intern"}`), 400, invalid, "changes"},
		{"bulk no action", bulk(`{"user_ids": ["tess"]}`), 400, invalid, "changes"},
		{"bulk no changes", bulk(`{"user_ids": ["tess"], "changes": {}}`), 400, invalid, "changes"},
		{"bulk changes array", bulk(`{"user_ids": ["tess"], "changes": [{"limit_usd": "1"}]}`), 400, invalid, "changes"},
		{"bulk changes null", bulk(`{"user_ids": ["tess"], "changes": null}`), 400, invalid, "changes"},
		{"bulk changes notes", bulk(`{"user_ids": ["tess"], "changes": {"admin_notes": "x"}}`), 400, unknown, "changes.admin_notes"},
		{"bulk changes user id", bulk(`{"user_ids": ["tess"], "changes": {"user_id": "x"}}`), 400, unknown, "changes.user_id"},
		{"bulk changes negative", bulk(`{"user_ids": ["tess"], "changes": {"limit_usd": "-1"}}`), 400, amount, "changes.limit_usd"},
		{"bulk changes 10 places", bulk(`{"user_ids": ["tess"], "changes": {"limit_usd": "0.0000000001"}}`), 400, amount, "changes.limit_usd"},
		{"bulk changes null limit", bulk(`{"user_ids": ["tess"], "changes": {"limit_usd": null}}`), 400, invalid, "changes.limit_usd"},
		{"bulk changes twice", bulk(`{"user_ids": ["tess"], "changes": {"limit_usd": "1", "limit_usd": "2"}}`), 400, invalid, "changes.limit_usd"},
		{"bulk changes thresholds", bulk(`{"user_ids": ["tess"], "changes": {"alert_threshold_yellow": "95", "alert_threshold_orange": "90", "alert_threshold_red": "100"}}`), 400, invalid, "changes.alert_threshold_orange"},
		{"bulk changes timezone", bulk(`{"user_ids": ["tess"], "changes": {"timezone": "Mars/Base"}}`), 400, invalid, "changes.timezone"},
		{"bulk changes anchor", bulk(`{"user_ids": ["tess"], "changes": {"custom_period_anchor": "1800-01-01T00:00:00Z"}}`), 400, invalid, "changes.custom_period_anchor"},
		{"bulk template empty", bulk(`{"user_ids": ["tess"], "template": ""}`), 400, invalid, "template"},
		{"bulk template bad name", bulk(`{"user_ids": ["tess"], "template": "../intern"}`), 400, invalid, "template"},
		{"bulk template number", bulk(`{"user_ids": ["tess"], "template": 1}`), 400, invalid, "template"},
		{"bulk unknown template", bulk(`{"user_ids": ["tess"], "template": "ghost"}`), 404, httpapi.ProblemNotFound, "template"},
		{"bulk unknown template by match", bulk(`{"match": {}, "template": "Intern"}`), 404, httpapi.ProblemNotFound, "template"},
		{"bulk unknown member", bulk(`{"users": ["tess"], "changes": {"limit_usd": "1"}}`), 400, unknown, "users"},
		{"bulk malformed", bulk(`{"user_ids": ["tess"],}`), 400, body, "body"},
		{"bulk empty body", req{method: "POST", path: "/admin/bulk", token: "tok-root", contentType: "application/json"}, 400, body, "body"},
		{"bulk parameter", req{method: "POST", path: "/admin/bulk?dry_run=1", token: "tok-root", body: `{"user_ids": ["tess"], "changes": {"limit_usd": "1"}}`}, 400, unknown, "dry_run"},
		{"bulk text", req{method: "POST", path: "/admin/bulk", token: "tok-root", body: `{}`, contentType: "text/plain"}, 415, httpapi.ProblemUnsupportedMediaType, "Content-Type"},

		// Templates.
		{"template unknown", tmpl("GET", "ghost", ""), 404, httpapi.ProblemNotFound, "name"},
		{"template unknown case", tmpl("GET", "Intern", ""), 404, httpapi.ProblemNotFound, "name"},
		{"delete unknown template", tmpl("DELETE", "ghost", ""), 404, httpapi.ProblemNotFound, "name"},
		{"template name dash", tmpl("PUT", "-x", `{"limit_usd": "1"}`), 400, invalid, "name"},
		{"template name space first", tmpl("PUT", "%20x", `{"limit_usd": "1"}`), 400, invalid, "name"},
		{"template name slash", tmpl("PUT", "a%2Fb", `{"limit_usd": "1"}`), 400, invalid, "name"},
		{"template name dots", tmpl("PUT", "%2E%2E", `{"limit_usd": "1"}`), 400, invalid, "name"},
		{"template name accent", tmpl("GET", "%C3%A9t%C3%A9", ""), 400, invalid, "name"},
		{"template name control", tmpl("DELETE", "a%00", ""), 400, invalid, "name"},
		{"template name 65", tmpl("PUT", strings.Repeat("n", 65), `{"limit_usd": "1"}`), 400, invalid, "name"},
		{"template admin notes", tmpl("PUT", "intern", `{"admin_notes": "x"}`), 400, unknown, "admin_notes"},
		{"template user id", tmpl("PUT", "intern", `{"user_id": "x"}`), 400, unknown, "user_id"},
		{"template name member", tmpl("PUT", "intern", `{"name": "other"}`), 400, unknown, "name"},
		{"template negative", tmpl("PUT", "intern", `{"limit_usd": "-1"}`), 400, amount, "limit_usd"},
		{"template new negative", tmpl("PUT", "newbie", `{"limit_usd": "-1"}`), 400, amount, "limit_usd"},
		{"template thresholds", tmpl("PUT", "intern", `{"alert_threshold_red": "50"}`), 400, invalid, "alert_threshold_red"},
		{"template If-Match", req{method: "PUT", path: "/admin/templates/intern", token: "tok-root", body: `{}`, header: map[string]string{"If-Match": "1"}}, 400, invalid, "If-Match"},
		{"delete template If-Match", req{method: "DELETE", path: "/admin/templates/intern", token: "tok-root", header: map[string]string{"If-Match": `"1", "2"`}}, 400, invalid, "If-Match"},
		{"templates parameter", req{method: "GET", path: "/admin/templates?limit=5", token: "tok-root"}, 400, unknown, "limit"},

		// Teams and orgs: an unknown team or org.
		{"unknown team", admin("GET", "/admin/teams/ghost", ""), 404, notFound, "team_id"},
		{"unknown org", admin("GET", "/admin/orgs/ghost", ""), 404, notFound, "org_id"},
		{"team is no org", admin("GET", "/admin/orgs/research", ""), 404, notFound, "org_id"},
		{"unknown team members", admin("GET", "/admin/teams/ghost/members", ""), 404, notFound, "team_id"},
		{"unknown org members", admin("GET", "/admin/orgs/ghost/members", ""), 404, notFound, "org_id"},
		{"add to unknown team", admin("POST", "/admin/teams/ghost/members", `{"user_id": "pete"}`), 404, notFound, "team_id"},
		{"remove from unknown team", admin("DELETE", "/admin/teams/ghost/members/tina", ""), 404, notFound, "team_id"},
		{"unknown team history", admin("GET", "/admin/teams/ghost/usage/history", ""), 404, notFound, "team_id"},
		{"unknown team breakdown", admin("GET", "/admin/teams/ghost/usage/breakdown", ""), 404, notFound, "team_id"},
		{"unknown org history", admin("GET", "/admin/orgs/ghost/usage/history", ""), 404, notFound, "org_id"},
		{"unknown org breakdown", admin("GET", "/admin/orgs/ghost/usage/breakdown", ""), 404, notFound, "org_id"},
		{"org of unknown team", admin("PUT", "/admin/teams/ghost/org", `{"org": "acme"}`), 404, notFound, "team_id"},
		{"unknown org of a team", admin("PUT", "/admin/teams/ops/org", `{"org": "ghost"}`), 404, notFound, "org"},
		{"membership unknown team", admin("PUT", "/admin/users/pete/membership", `{"teams": ["research", "ghost"]}`), 404, notFound, "teams[1]"},
		{"membership unknown org", admin("PUT", "/admin/users/pete/membership", `{"teams": ["ops"], "org": "ghost"}`), 404, notFound, "org"},
		{"membership org is a team", admin("PUT", "/admin/users/pete/membership", `{"org": "research"}`), 404, notFound, "org"},
		{"bad team id", admin("PUT", "/admin/teams/a%01b", `{"limit_usd": "1"}`), 400, invalid, "team_id"},
		{"team id dots", admin("GET", "/admin/teams/%2E%2E", ""), 400, invalid, "team_id"},
		{"bad org id", admin("GET", "/admin/orgs/a%7Fb/members", ""), 400, invalid, "org_id"},
		{"long team id", admin("PUT", "/admin/teams/"+strings.Repeat("t", 257), `{}`), 400, invalid, "team_id"},

		// A member that does not exist.
		{"add user without settings", admin("POST", "/admin/teams/research/members", `{"user_id": "ghost"}`), 404, notFound, "user_id"},
		{"remove user without settings", admin("DELETE", "/admin/teams/research/members/ghost", ""), 404, notFound, "user_id"},
		{"remove user not in the team", admin("DELETE", "/admin/teams/research/members/otto", ""), 404, notFound, "user_id"},
		{"membership of user without settings", admin("PUT", "/admin/users/ghost/membership", `{"teams": ["ops"]}`), 404, notFound, "user_id"},
		{"add without user", admin("POST", "/admin/teams/research/members", `{}`), 400, invalid, "user_id"},
		{"add user number", admin("POST", "/admin/teams/research/members", `{"user_id": 7}`), 400, invalid, "user_id"},
		{"add bad user", admin("POST", "/admin/teams/research/members", `{"user_id": "a\u0001"}`), 400, invalid, "user_id"},
		{"add unknown member", admin("POST", "/admin/teams/research/members", `{"user": "pete"}`), 400, unknown, "user"},
		{"remove bad user", admin("DELETE", "/admin/teams/research/members/a%01b", ""), 400, invalid, "user_id"},

		// Too many teams.
		{"membership nine teams", admin("PUT", "/admin/users/pete/membership", nineTeams), 400, invalid, "teams"},
		{"membership teams string", admin("PUT", "/admin/users/pete/membership", `{"teams": "ops"}`), 400, invalid, "teams"},
		{"membership teams null", admin("PUT", "/admin/users/pete/membership", `{"teams": null}`), 400, invalid, "teams"},
		{"membership team number", admin("PUT", "/admin/users/pete/membership", `{"teams": [1]}`), 400, invalid, "teams"},
		{"membership team empty", admin("PUT", "/admin/users/pete/membership", `{"teams": ["ops", ""]}`), 400, invalid, "teams[1]"},
		{"membership team null", admin("PUT", "/admin/users/pete/membership", `{"teams": [null]}`), 400, invalid, "teams[0]"},
		{"membership org number", admin("PUT", "/admin/users/pete/membership", `{"org": 5}`), 400, invalid, "org"},
		{"membership bad org", admin("PUT", "/admin/users/pete/membership", `{"org": ".."}`), 400, invalid, "org"},
		{"membership unknown member", admin("PUT", "/admin/users/pete/membership", `{"team": "ops"}`), 400, unknown, "team"},
		{"membership If-Match", req{method: "PUT", path: "/admin/users/pete/membership", token: "tok-root", body: `{}`, header: map[string]string{"If-Match": "2"}}, 400, invalid, "If-Match"},
		{"team org missing", admin("PUT", "/admin/teams/ops/org", `{}`), 400, invalid, "org"},
		{"team org null", admin("PUT", "/admin/teams/ops/org", `{"org": null}`), 400, invalid, "org"},
		{"team org bad", admin("PUT", "/admin/teams/ops/org", `{"org": "a\u0000"}`), 400, invalid, "org"},

		// A bad glob.
		{"cap glob class", caps(`[{"pattern": "gpt-[45]o", "limit_usd": "1"}]`), 400, invalid, "model_caps[0].pattern"},
		{"cap glob escape", caps(`[{"pattern": "gpt\\*", "limit_usd": "1"}]`), 400, invalid, "model_caps[0].pattern"},
		{"cap glob space", caps(`[{"pattern": "gpt 4o", "limit_usd": "1"}]`), 400, invalid, "model_caps[0].pattern"},
		{"cap glob control", caps(`[{"pattern": "gpt\u0001", "limit_usd": "1"}]`), 400, invalid, "model_caps[0].pattern"},
		{"cap glob empty", caps(`[{"pattern": "", "limit_usd": "1"}]`), 400, invalid, "model_caps[0].pattern"},
		{"cap glob long", caps(`[{"pattern": "` + strings.Repeat("g", budget.MaxPatternLen+1) + `", "limit_usd": "1"}]`), 400, invalid, "model_caps[0].pattern"},
		{"cap glob twice", caps(`[{"pattern": "gpt-*", "limit_usd": "1"}, {"pattern": "gpt-*", "limit_usd": "2"}]`), 400, invalid, "model_caps[1].pattern"},
		{"cap glob number", caps(`[{"pattern": 4, "limit_usd": "1"}]`), 400, invalid, "model_caps[0].pattern"},
		{"cap without glob", caps(`[{"limit_usd": "1"}]`), 400, invalid, "model_caps[0].pattern"},
		{"new team bad glob", newCaps(`[{"pattern": "o[1]", "limit_usd": "1"}]`), 400, invalid, "model_caps[0].pattern"},

		// A bad amount.
		{"cap negative", caps(`[{"pattern": "gpt-4o*", "limit_usd": "-1"}]`), 400, amount, "model_caps[0].limit_usd"},
		{"cap 10 places", caps(`[{"pattern": "a", "limit_usd": "1"}, {"pattern": "b", "limit_usd": "0.0000000001"}]`), 400, amount, "model_caps[1].limit_usd"},
		{"cap not a number", caps(`[{"pattern": "gpt-4o*", "limit_usd": "ten"}]`), 400, amount, "model_caps[0].limit_usd"},
		{"cap 1e400", caps(`[{"pattern": "gpt-4o*", "limit_usd": 1e400}]`), 400, amount, "model_caps[0].limit_usd"},
		{"cap null limit", caps(`[{"pattern": "gpt-4o*", "limit_usd": null}]`), 400, amount, "model_caps[0].limit_usd"},
		{"cap without limit", caps(`[{"pattern": "gpt-4o*"}]`), 400, amount, "model_caps[0].limit_usd"},
		{"new team cap negative", newCaps(`[{"pattern": "gpt-4o*", "limit_usd": "-0.01"}]`), 400, amount, "model_caps[0].limit_usd"},
		{"team limit negative", admin("PUT", "/admin/teams/research", `{"limit_usd": "-1"}`), 400, amount, "limit_usd"},
		{"new org limit too large", admin("PUT", "/admin/orgs/globex", `{"limit_usd": "10000000000"}`), 400, amount, "limit_usd"},

		// The shape of model_caps and of a team's body.
		{"caps object", caps(`{"pattern": "gpt-4o*", "limit_usd": "1"}`), 400, invalid, "model_caps"},
		{"caps null", caps(`null`), 400, invalid, "model_caps"},
		{"caps 17", caps(`[` + strings.Join(seventeen, ",") + `]`), 400, invalid, "model_caps"},
		{"cap string", caps(`["gpt-4o*"]`), 400, invalid, "model_caps[0]"},
		{"cap unknown member", caps(`[{"pattern": "gpt-4o*", "limit_usd": "1", "provider": "openai"}]`), 400, unknown, "model_caps[0].provider"},
		{"cap member twice", caps(`[{"pattern": "a", "pattern": "b", "limit_usd": "1"}]`), 400, invalid, "model_caps[0].pattern"},
		{"team permission", admin("PUT", "/admin/teams/research", `{"budget_visible_to_user": true}`), 400, invalid, "budget_visible_to_user"},
		{"new team permission", admin("PUT", "/admin/teams/design", `{"limit_usd": "5", "user_can_reset_budget": false}`), 400, invalid, "user_can_reset_budget"},
		{"org permission", admin("PUT", "/admin/orgs/acme", `{"user_can_modify_limit": true}`), 400, invalid, "user_can_modify_limit"},
		{"team user id", admin("PUT", "/admin/teams/research", `{"user_id": "tina"}`), 400, unknown, "user_id"},
		{"team org member", admin("PUT", "/admin/teams/research", `{"org": "acme"}`), 400, unknown, "org"},
		{"team period", admin("PUT", "/admin/teams/research", `{"budget_period": "yearly"}`), 400, invalid, "budget_period"},
		{"team thresholds", admin("PUT", "/admin/teams/research", `{"alert_threshold_red": "50"}`), 400, invalid, "alert_threshold_red"},
		{"team long notes", admin("PUT", "/admin/teams/research", `{"admin_notes": "`+strings.Repeat("n", 4097)+`"}`), 400, invalid, "admin_notes"},
		{"team empty body", req{method: "PUT", path: "/admin/teams/research", token: "tok-root", contentType: "application/json"}, 400, body, "body"},
		{"team text", req{method: "PUT", path: "/admin/teams/research", token: "tok-root", body: `{}`, contentType: "text/plain"}, 415, httpapi.ProblemUnsupportedMediaType, "Content-Type"},
		{"team parameter", admin("PUT", "/admin/teams/research?dry_run=1", `{}`), 400, unknown, "dry_run"},
		{"team If-Match", req{method: "PUT", path: "/admin/teams/research", token: "tok-root", body: `{}`, header: map[string]string{"If-Match": `"1`}}, 400, invalid, "If-Match"},

		// GET /admin/budgets.
		{"budgets without kind", admin("GET", "/admin/budgets", ""), 400, invalid, "kind"},
		{"budgets kind empty", admin("GET", "/admin/budgets?kind=", ""), 400, invalid, "kind"},
		{"budgets kind user", admin("GET", "/admin/budgets?kind=user", ""), 400, invalid, "kind"},
		{"budgets kind teams", admin("GET", "/admin/budgets?kind=teams", ""), 400, invalid, "kind"},
		{"budgets kind twice", admin("GET", "/admin/budgets?kind=team&kind=org", ""), 400, invalid, "kind"},
		{"budgets level purple", admin("GET", "/admin/budgets?kind=team&level=purple", ""), 400, invalid, "level"},
		{"budgets limit 0", admin("GET", "/admin/budgets?kind=org&limit=0", ""), 400, invalid, "limit"},
		{"budgets bad cursor", admin("GET", "/admin/budgets?kind=team&cursor=!!", ""), 400, invalid, "cursor"},
		{"budgets user cursor", admin("GET", "/admin/budgets?kind=team&cursor=dGVzcw", ""), 400, invalid, "cursor"},
		{"budgets q NUL", admin("GET", "/admin/budgets?kind=team&q=%00", ""), 400, invalid, "q"},
		{"budgets unknown parameter", admin("GET", "/admin/budgets?kind=team&scope=x", ""), 400, unknown, "scope"},

		// GET /admin/audit?scope=.
		{"audit scope kind only", admin("GET", "/admin/audit?scope=team", ""), 400, invalid, "scope"},
		{"audit scope planet", admin("GET", "/admin/audit?scope=planet:x", ""), 400, invalid, "scope"},
		{"audit scope no id", admin("GET", "/admin/audit?scope=team:", ""), 400, invalid, "scope"},
		{"audit scope bad id", admin("GET", "/admin/audit?scope=org:a%01b", ""), 400, invalid, "scope"},
		{"audit scope capitals", admin("GET", "/admin/audit?scope=Team:research", ""), 400, invalid, "scope"},
		{"audit scope and user", admin("GET", "/admin/audit?scope=user:tess&user_id=tess", ""), 400, invalid, "scope"},

		// Insights: spend per day.
		{"daily from only", req{method: "GET", path: "/usage/daily?from=2025-03-10T00:00:00Z"}, 400, invalid, "to"},
		{"daily from after to", req{method: "GET", path: "/usage/daily?from=2025-03-10T00:00:00Z&to=2025-03-01T00:00:00Z"}, 400, invalid, "from"},
		{"daily bad to", req{method: "GET", path: "/usage/daily?from=2025-03-01T00:00:00Z&to=tomorrow"}, 400, invalid, "to"},
		{"daily year 9999", req{method: "GET", path: "/usage/daily?from=2025-03-01T00:00:00Z&to=9999-01-01T00:00:00Z"}, 400, invalid, "to"},
		{"daily unknown parameter", req{method: "GET", path: "/usage/daily?days=7"}, 400, unknown, "days"},
		{"daily limit", req{method: "GET", path: "/usage/daily?limit=7"}, 400, unknown, "limit"},
		{"user daily unknown user", admin("GET", "/admin/users/ghost/usage/daily", ""), 404, notFound, "user_id"},
		{"unknown team daily", admin("GET", "/admin/teams/ghost/usage/daily", ""), 404, notFound, "team_id"},
		{"unknown org daily", admin("GET", "/admin/orgs/ghost/usage/daily", ""), 404, notFound, "org_id"},
		{"team daily to only", admin("GET", "/admin/teams/research/usage/daily?to=2025-03-10T00:00:00Z", ""), 400, invalid, "from"},
		{"user daily bad user id", admin("GET", "/admin/users/a%01b/usage/daily", ""), 400, invalid, "user_id"},
		{"user daily from only", admin("GET", "/admin/users/pete/usage/daily?from=2025-03-10T00:00:00Z", ""), 400, invalid, "to"},

		// CSV exports.
		{"history format xml", req{method: "GET", path: "/usage/history?format=xml"}, 400, invalid, "format"},
		{"history format empty", req{method: "GET", path: "/usage/history?format="}, 400, invalid, "format"},
		{"history format twice", req{method: "GET", path: "/usage/history?format=csv&format=csv"}, 400, invalid, "format"},
		{"history csv with limit", req{method: "GET", path: "/usage/history?format=csv&limit=5"}, 400, invalid, "limit"},
		{"history csv with cursor", req{method: "GET", path: "/usage/history?cursor=x", header: map[string]string{"Accept": "text/csv"}}, 400, invalid, "cursor"},
		{"history csv from only", req{method: "GET", path: "/usage/history?format=csv&from=2025-03-10T00:00:00Z"}, 400, invalid, "to"},
		{"history json to only", req{method: "GET", path: "/usage/history?to=2025-03-10T00:00:00Z"}, 400, invalid, "from"},
		{"user history csv unknown user", admin("GET", "/admin/users/ghost/usage/history?format=csv", ""), 404, notFound, "user_id"},
		{"audit csv with cursor", admin("GET", "/admin/audit?format=csv&cursor=5", ""), 400, invalid, "cursor"},
		{"audit csv bad type", admin("GET", "/admin/audit?format=csv&type=nope", ""), 400, invalid, "type"},
		{"audit format pdf", admin("GET", "/admin/audit?format=pdf", ""), 400, invalid, "format"},

		// CSV imports: the request's shape. Rows in error are in TestImport*.
		{"import settings as JSON", admin("POST", "/admin/import/settings", `{"user_id": "tess"}`), 415, httpapi.ProblemUnsupportedMediaType, "Content-Type"},
		{"import settings no content type", req{method: "POST", path: "/admin/import/settings", token: "tok-root", body: "user_id\ntess\n", contentType: "-"}, 415, httpapi.ProblemUnsupportedMediaType, "Content-Type"},
		{"import settings latin-1", req{method: "POST", path: "/admin/import/settings", token: "tok-root", body: "user_id\ntess\n", contentType: "text/csv; charset=iso-8859-1"}, 415, httpapi.ProblemUnsupportedMediaType, "Content-Type"},
		{"import settings dry run maybe", req{method: "POST", path: "/admin/import/settings?dry_run=maybe", token: "tok-root", body: "user_id\ntess\n", contentType: "text/csv"}, 400, invalid, "dry_run"},
		{"import settings dry run empty", req{method: "POST", path: "/admin/import/settings?dry_run=", token: "tok-root", body: "user_id\ntess\n", contentType: "text/csv"}, 400, invalid, "dry_run"},
		{"import settings unknown parameter", req{method: "POST", path: "/admin/import/settings?force=1", token: "tok-root", body: "user_id\ntess\n", contentType: "text/csv"}, 400, unknown, "force"},
		{"import settings long reason", req{method: "POST", path: "/admin/import/settings?reason=" + strings.Repeat("r", 1025), token: "tok-root", body: "user_id\ntess\n", contentType: "text/csv"}, 400, invalid, "reason"},
		{"import settings bad amount", req{method: "POST", path: "/admin/import/settings", token: "tok-root", body: "user_id,limit_usd\ntess,-1\n", contentType: "text/csv"}, 400, httpapi.ProblemImportRejected, "body"},
		{"import settings empty", req{method: "POST", path: "/admin/import/settings", token: "tok-root", body: "", contentType: "text/csv"}, 400, httpapi.ProblemImportRejected, "body"},
		{"import seed as CSV", req{method: "POST", path: "/admin/import/seed", token: "tok-root", body: "user_id\ntess\n", contentType: "text/csv"}, 415, httpapi.ProblemUnsupportedMediaType, "Content-Type"},
		{"import seed no boundary", req{method: "POST", path: "/admin/import/seed", token: "tok-root", body: "x", contentType: "multipart/form-data"}, 415, httpapi.ProblemUnsupportedMediaType, "Content-Type"},
		{"import seed not multipart", req{method: "POST", path: "/admin/import/seed", token: "tok-root", body: "garbage", contentType: "multipart/form-data; boundary=b"}, 400, body, "body"},
		{"import seed no parts", req{method: "POST", path: "/admin/import/seed", token: "tok-root", body: "--b--\r\n", contentType: "multipart/form-data; boundary=b"}, 400, invalid, "user_budget_settings"},
		{"import seed unknown part", req{method: "POST", path: "/admin/import/seed", token: "tok-root", body: multipartBody("b", "users", "user_id\ntess\n"), contentType: "multipart/form-data; boundary=b"}, 400, unknown, "users"},
		{"import seed part twice", req{method: "POST", path: "/admin/import/seed", token: "tok-root", body: multipartBody("b", "budget_reset_log", "user_id\n", "budget_reset_log", "user_id\n"), contentType: "multipart/form-data; boundary=b"}, 400, invalid, "budget_reset_log"},
		{"import seed bad reset", req{method: "POST", path: "/admin/import/seed", token: "tok-root", body: multipartBody("b", "budget_reset_log", "user_id,reset_type,previous_limit,new_limit,previous_spent,reset_at\ntess,sometimes,1,1,1,2025-01-01 00:00:00\n"), contentType: "multipart/form-data; boundary=b"}, 400, httpapi.ProblemImportRejected, "budget_reset_log"},
		{"audit scope twice", admin("GET", "/admin/audit?scope=team:ops&scope=team:research", ""), 400, invalid, "scope"},
		{"team history parameter", admin("GET", "/admin/teams/research/usage/history?scope=team:ops", ""), 400, unknown, "scope"},
		{"team history limit 0", admin("GET", "/admin/teams/research/usage/history?limit=0", ""), 400, invalid, "limit"},
		{"org breakdown from only", admin("GET", "/admin/orgs/acme/usage/breakdown?from=2025-03-01T00:00:00Z", ""), 400, invalid, "to"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newTeamFixture(t)
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

// TestEmptyResetBodyChunked accepts an empty reset body sent chunked (no
// Content-Length) as it does one sent with Content-Length: 0, with or
// without a Content-Type; a chunked body with content still needs JSON.
func TestEmptyResetBodyChunked(t *testing.T) {
	for _, ct := range []string{"-", "application/json", "text/plain"} {
		f := newFixture(t)
		r := httptest.NewRequest("POST", "/reset", strings.NewReader(""))
		r.ContentLength = -1
		r.TransferEncoding = []string{"chunked"}
		if ct != "-" {
			r.Header.Set("Content-Type", ct)
		}
		r.Header.Set("Authorization", "Bearer tok-pete")
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Errorf("chunked empty reset, Content-Type %s: %d %s", ct, w.Code, w.Body)
		}
	}
	f := newFixture(t)
	r := f.do(req{method: "POST", path: "/reset", token: "tok-pete", body: `{"reason": "x"}`, chunked: true, contentType: "-"})
	if r.status != http.StatusUnsupportedMediaType {
		t.Errorf("chunked body without a Content-Type: %d %s", r.status, r.body)
	}
	r = f.do(req{method: "POST", path: "/reset", token: "tok-pete", body: `{"reason": "chunked"}`, chunked: true})
	if got := r.json(t)["reset"].(map[string]any)["reason"]; got != "chunked" {
		t.Errorf("chunked reset reason %v", got)
	}
}

// TestAnchorRange: a custom period's anchor has one rule, the core's
// (budget.MinAnchorYear to budget.MaxAnchorYear, in UTC), and one message
// for every anchor outside it; from and to keep the range a store can hold.
func TestAnchorRange(t *testing.T) {
	put := func(f *fixture, anchor string) response {
		return f.do(req{method: "PUT", path: "/settings", token: "tok-pete",
			body: `{"budget_period": "custom", "custom_period_days": 7, "custom_period_anchor": "` + anchor + `"}`})
	}
	for _, ok := range []string{"1900-01-01T00:00:00Z", "1950-06-01T00:00:00Z", "2200-12-31T23:59:59Z", "2201-01-01T00:30:00+01:00"} {
		f := newFixture(t)
		if r := put(f, ok); r.status != 200 {
			t.Errorf("anchor %s: %d %s", ok, r.status, r.body)
		}
	}
	want := "must be between the years " + strconv.Itoa(budget.MinAnchorYear) + " and " + strconv.Itoa(budget.MaxAnchorYear)
	for _, bad := range []string{"1899-12-31T23:59:59Z", "1900-01-01T00:30:00+01:00", "2201-01-01T00:00:00Z", "2261-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-01-01T00:00:00Z"} {
		f := newFixture(t)
		for _, q := range []req{
			{method: "PUT", path: "/settings", token: "tok-pete", body: `{"budget_period": "custom", "custom_period_days": 7, "custom_period_anchor": "` + bad + `"}`},
			{method: "PUT", path: "/admin/defaults", token: "tok-root", body: `{"budget_period": "custom", "custom_period_days": 7, "custom_period_anchor": "` + bad + `"}`},
		} {
			r := f.do(q)
			if r.status != 400 {
				t.Errorf("%s anchor %s: %d %s", q.path, bad, r.status, r.body)
				continue
			}
			if p := r.problem(t); p.Field != "custom_period_anchor" || p.Detail != want {
				t.Errorf("%s anchor %s: field %q detail %q, want %q", q.path, bad, p.Field, p.Detail, want)
			}
		}
	}
	// from and to are instants a store keeps as nanoseconds since 1970.
	f := newFixture(t)
	for _, c := range []struct {
		from, to string
		status   int
	}{
		{"1970-01-01T00:00:00Z", "2261-12-31T00:00:00Z", 200},
		{"1969-12-31T23:59:59Z", "2025-01-01T00:00:00Z", 400},
		{"2025-01-01T00:00:00Z", "2262-01-01T00:00:00Z", 400},
	} {
		r := f.do(req{method: "GET", path: "/usage/breakdown?from=" + url.QueryEscape(c.from) + "&to=" + url.QueryEscape(c.to), token: "tok-pete"})
		if r.status != c.status {
			t.Errorf("breakdown %s – %s: %d %s", c.from, c.to, r.status, r.body)
		}
	}
}

// multipartBody builds a multipart/form-data body with the boundary b of
// the parts given as name, content pairs.
func multipartBody(b string, parts ...string) string {
	var sb strings.Builder
	for i := 0; i+1 < len(parts); i += 2 {
		sb.WriteString("--" + b + "\r\nContent-Disposition: form-data; name=\"" + parts[i] + "\"; filename=\"" + parts[i] + ".csv\"\r\n")
		sb.WriteString("Content-Type: text/csv\r\n\r\n" + parts[i+1] + "\r\n")
	}
	sb.WriteString("--" + b + "--\r\n")
	return sb.String()
}
