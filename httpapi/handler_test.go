package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/httpapi"
	"github.com/llmbudget/budget/store/memory"
	"github.com/shopspring/decimal"
)

func TestNewRefusesMissingPieces(t *testing.T) {
	m := budget.NewManager(memory.New(), budget.Options{})
	if _, err := httpapi.New(m, httpapi.Options{}); err == nil {
		t.Error("New accepted a nil Authenticate")
	}
	if _, err := httpapi.New(nil, httpapi.Options{Authenticate: bearerAuth}); err == nil {
		t.Error("New accepted a nil Manager")
	}
}

func TestRoutingProblems(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		method, path string
		status       int
		typ, allow   string
	}{
		{"GET", "/nope", 404, httpapi.ProblemNotFound, ""},
		{"GET", "/", 404, httpapi.ProblemNotFound, ""},
		{"GET", "/status/", 404, httpapi.ProblemNotFound, ""},
		{"GET", "/admin/users/", 404, httpapi.ProblemNotFound, ""},
		{"GET", "/admin/users/a/b", 404, httpapi.ProblemNotFound, ""},
		{"GET", "/usage/../status", 404, httpapi.ProblemNotFound, ""},
		{"GET", "//status", 404, httpapi.ProblemNotFound, ""},
		{"POST", "/status", 405, httpapi.ProblemMethodNotAllowed, "GET, HEAD"},
		{"DELETE", "/settings", 405, httpapi.ProblemMethodNotAllowed, "GET, HEAD, PUT"},
		{"GET", "/reset", 405, httpapi.ProblemMethodNotAllowed, "POST"},
		{"GET", "/admin/configure", 405, httpapi.ProblemMethodNotAllowed, "PUT"},
		{"DELETE", "/admin/users/tess", 405, httpapi.ProblemMethodNotAllowed, "GET, HEAD"},
		{"GET", "/me/", 404, httpapi.ProblemNotFound, ""},
		{"PUT", "/me", 405, httpapi.ProblemMethodNotAllowed, "GET, HEAD"},
		{"POST", "/admin/access", 405, httpapi.ProblemMethodNotAllowed, "GET, HEAD, PUT"},
		{"GET", "/admin/bulk", 405, httpapi.ProblemMethodNotAllowed, "POST"},
		{"GET", "/admin/templates/", 404, httpapi.ProblemNotFound, ""},
		{"POST", "/admin/templates", 405, httpapi.ProblemMethodNotAllowed, "GET, HEAD"},
		{"POST", "/admin/templates/intern", 405, httpapi.ProblemMethodNotAllowed, "DELETE, GET, HEAD, PUT"},
		{"GET", "/admin/templates/a/b", 404, httpapi.ProblemNotFound, ""},
		{"GET", "/admin/users/tess/usage", 404, httpapi.ProblemNotFound, ""},
		{"POST", "/admin/users/tess/usage/history", 405, httpapi.ProblemMethodNotAllowed, "GET, HEAD"},
		{"GET", "/admin/users/tess/usage/../usage/history", 404, httpapi.ProblemNotFound, ""},
		{"GET", "/admin/users/%2E%2E/defaults", 404, httpapi.ProblemNotFound, ""},
	}
	for _, c := range cases {
		for _, tok := range []string{"", "tok-root"} {
			r := f.do(req{method: c.method, path: c.path, token: tok})
			if r.status != c.status {
				t.Errorf("%s %s: status %d, want %d; body %s", c.method, c.path, r.status, c.status, r.body)
				continue
			}
			if p := r.problem(t); p.Type != c.typ {
				t.Errorf("%s %s: type %q, want %q", c.method, c.path, p.Type, c.typ)
			}
			if got := r.header.Get("Allow"); got != c.allow {
				t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
			}
			checkHeaders(t, r)
		}
	}
}

// TestStatusShape pins the JSON of GET /status.
func TestStatusShape(t *testing.T) {
	f := newFixture(t)
	r := f.do(req{method: "GET", path: "/status", token: "tok-pete"})
	got := r.json(t)
	// pete is the fourth user: 0.40 + 0.41 + 0.42 spent of 40.
	want := map[string]any{
		"user_id": "pete", "limit_usd": "40", "spent_usd": "1.23", "reserved_usd": "0",
		"remaining_usd": "38.77", "percent_used": "3.07", "alert_level": "green",
		"enforce_budget": true, "budget_period": "monthly", "timezone": "UTC",
		"current_period_start": "2025-03-01T00:00:00Z", "current_period_end": "2025-04-01T00:00:00Z",
		// Only pete's own budget applies: it is the one line, binding.
		"budgets": []any{map[string]any{
			"scope": "user", "id": "pete", "limit_usd": "40", "spent_usd": "1.23", "reserved_usd": "0",
			"remaining_usd": "38.77", "percent_used": "3.07", "alert_level": "green",
			"enforce_budget": true, "budget_period": "monthly", "binding": true,
			"current_period_start": "2025-03-01T00:00:00Z", "current_period_end": "2025-04-01T00:00:00Z",
		}},
		// pete's settings are 78 seconds old: the pace is $1.23 over a
		// window of one day (the least), projected over the 16.6 days left.
		"forecast": map[string]any{
			"method": "recent_pace", "pace_days": json.Number("7"),
			"pace_from": "2025-03-14T09:00:00Z", "pace_to": "2025-03-14T09:01:18Z",
			"pace_spent_usd": "1.23", "spend_per_day_usd": "1.23", "projected_spent_usd": "22.907639583",
			"limit_reached_at": nil, "projected_over_limit": false,
		},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("GET /status (-want +got):\n%s", d)
	}
}

// TestSettingsShape pins the JSON of the settings, as the user and as an
// admin sees them.
func TestSettingsShape(t *testing.T) {
	f := newFixture(t)
	r := f.do(req{method: "GET", path: "/settings", token: "tok-nora"})
	got := r.json(t)
	want := map[string]any{
		"user_id": "nora", "limit_usd": "10", "budget_period": "monthly", "timezone": "UTC",
		"enforce_budget": true, "budget_visible_to_user": true, "user_can_modify_limit": false,
		"user_can_reset_budget": false, "alert_threshold_yellow": "75", "alert_threshold_orange": "90",
		"alert_threshold_red": "100", "current_period_start": "2025-03-01T00:00:00Z",
		"current_period_end": "2025-04-01T00:00:00Z", "version": json.Number("2"),
		"created_at": "2025-03-14T09:00:00Z", "updated_at": "2025-03-14T09:00:00Z",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("GET /settings (-want +got):\n%s", d)
	}
	if r.header.Get("ETag") != `"2"` {
		t.Errorf("ETag %q", r.header.Get("ETag"))
	}

	r = f.do(req{method: "GET", path: "/admin/users/tess", token: "tok-root"})
	got = r.json(t)
	if got["admin_notes"] != "watch her" || got["spent_usd"] != "1.53" || got["alert_level"] != "green" || got["user_id"] != "tess" {
		t.Errorf("GET /admin/users/tess: %v", got)
	}
	if us := got["recent_usage"].([]any); len(us) != 3 || us[0].(map[string]any)["cost_usd"] != "0.52" {
		t.Errorf("recent usage %v", us)
	}
	if r.header.Get("ETag") != `"2"` {
		t.Errorf("ETag %q", r.header.Get("ETag"))
	}
}

func TestIfMatch(t *testing.T) {
	f := newFixture(t)
	etag := f.do(req{method: "GET", path: "/settings", token: "tok-pete"}).header.Get("ETag")
	put := func(ifMatch, limit string) response {
		h := map[string]string{}
		if ifMatch != "" {
			h["If-Match"] = ifMatch
		}
		return f.do(req{method: "PUT", path: "/settings", token: "tok-pete", body: `{"limit_usd": "` + limit + `"}`, header: h})
	}
	r := put(etag, "41")
	if r.status != 200 || r.header.Get("ETag") != `"3"` || r.json(t)["version"] != json.Number("3") {
		t.Fatalf("PUT with the current ETag %s: %d %s %s", etag, r.status, r.header.Get("ETag"), r.body)
	}
	for _, stale := range []string{etag, `W/"3"`, `"abc"`, `"0"`, `"-1"`, `"03"`} {
		before := f.state()
		r = put(stale, "42")
		if r.status != http.StatusPreconditionFailed {
			t.Fatalf("PUT with If-Match %s: %d %s", stale, r.status, r.body)
		}
		if p := r.problem(t); p.Type != httpapi.ProblemPreconditionFailed || r.header.Get("ETag") != "" {
			t.Errorf("stale If-Match: %+v, ETag %q", p, r.header.Get("ETag"))
		}
		if d := diff(before, f.state()); d != "" {
			t.Errorf("a stale PUT changed the state:\n%s", d)
		}
	}
	if r = put("*", "43"); r.status != 200 {
		t.Errorf("If-Match *: %d", r.status)
	}
	if r = put(" \"4\" ", "44"); r.status != 200 {
		t.Errorf("If-Match with spaces: %d %s", r.status, r.body)
	}
	// A refused permission beats a stale tag: nora may not change her limit.
	r = f.do(req{method: "PUT", path: "/settings", token: "tok-nora", body: `{"limit_usd": "1"}`, header: map[string]string{"If-Match": `"1"`}})
	if r.status != 403 {
		t.Errorf("nora with a stale tag: %d", r.status)
	}
}

// TestTwoAdmins: two admins read the same user; the first write wins and
// the second, sent with the ETag it read, is refused instead of silently
// overwriting the first.
func TestTwoAdmins(t *testing.T) {
	f := newFixture(t)
	a := f.do(req{method: "GET", path: "/admin/users/tess", token: "tok-root"}).header.Get("ETag")
	b := f.do(req{method: "GET", path: "/admin/users/tess", token: "tok-root2"}).header.Get("ETag")
	r := f.do(req{method: "PUT", path: "/admin/configure", token: "tok-root", header: map[string]string{"If-Match": a},
		body: `{"user_id": "tess", "limit_usd": "70"}`})
	if r.status != 200 {
		t.Fatalf("first admin: %d %s", r.status, r.body)
	}
	r = f.do(req{method: "PUT", path: "/admin/configure", token: "tok-root2", header: map[string]string{"If-Match": b},
		body: `{"user_id": "tess", "limit_usd": "80", "admin_notes": "mine"}`})
	if r.status != http.StatusPreconditionFailed {
		t.Fatalf("second admin: %d %s", r.status, r.body)
	}
	if s := f.settingsOf("tess"); !s.Limit.Equal(budget.MustAmount("70")) || s.AdminNotes != "watch her" {
		t.Errorf("tess after the race: limit %s, notes %q", s.Limit, s.AdminNotes)
	}
}

func TestDefaults(t *testing.T) {
	f := newFixture(t)
	r := f.do(req{method: "GET", path: "/admin/defaults", token: "tok-root"})
	got := r.json(t)
	if r.header.Get("ETag") != `"1"` || got["limit_usd"] != "30" || got["version"] != json.Number("1") || got["user_id"] != nil {
		t.Fatalf("GET /admin/defaults: %s %s", r.header.Get("ETag"), r.body)
	}
	put := func(ifMatch, body string) response {
		return f.do(req{method: "PUT", path: "/admin/defaults", token: "tok-root", body: body, header: map[string]string{"If-Match": ifMatch}})
	}
	if r = put(`"1"`, `{"limit_usd": "25", "user_can_reset_budget": true}`); r.status != 200 || r.header.Get("ETag") != `"2"` {
		t.Fatalf("PUT defaults: %d %s", r.status, r.body)
	}
	if r = put(`"1"`, `{"limit_usd": "26"}`); r.status != http.StatusPreconditionFailed {
		t.Fatalf("PUT defaults with the built-in version: %d %s", r.status, r.body)
	}
	// A new user starts with the new defaults.
	got = f.do(req{method: "GET", path: "/settings", token: "tok-newbie"}).json(t)
	if got["limit_usd"] != "25" || got["user_can_reset_budget"] != true {
		t.Errorf("a new user's settings: %v", got)
	}
	audit := f.do(req{method: "GET", path: "/admin/audit", token: "tok-root"}).json(t)["entries"].([]any)
	e := audit[0].(map[string]any)
	if e["type"] != "defaults" || e["actor"] != "root" || e["before"].(map[string]any)["limit_usd"] != "30" ||
		e["after"].(map[string]any)["limit_usd"] != "25" || e["user_id"] != nil {
		t.Errorf("defaults audit entry: %v", e)
	}
}

func init() { apiTokens["tok-newbie"] = budget.Principal{UserID: "newbie"} }

func TestAdminUnknownUser(t *testing.T) {
	f := newFixture(t)
	before := f.state()
	for _, q := range []req{
		{method: "GET", path: "/admin/users/ghost", token: "tok-root"},
		{method: "POST", path: "/admin/reset/ghost", token: "tok-root", body: `{"reason": "x"}`},
		{method: "POST", path: "/admin/reset/ghost", token: "tok-root", body: `{"limit_usd": "5"}`},
		{method: "GET", path: "/admin/users/ghost/usage/history", token: "tok-root"},
		{method: "GET", path: "/admin/users/ghost/usage/breakdown", token: "tok-root"},
		// IDs containing another user's ID are not that user.
		{method: "GET", path: "/admin/users/tes", token: "tok-root"},
		{method: "GET", path: "/admin/users/TESS", token: "tok-root"},
	} {
		r := f.do(q)
		if r.status != 404 {
			t.Fatalf("%s %s: %d %s", q.method, q.path, r.status, r.body)
		}
		if p := r.problem(t); p.Type != httpapi.ProblemNotFound || p.Field != "user_id" {
			t.Errorf("%s: %+v", q.path, p)
		}
	}
	if d := diff(before, f.state()); d != "" {
		t.Errorf("looking up unknown users changed the state:\n%s", d)
	}
}

// TestUserIDsInPaths: a user ID with a slash, a percent sign or spaces is
// addressed by escaping it.
func TestUserIDsInPaths(t *testing.T) {
	f := newFixture(t)
	for _, id := range []string{"team/alice", "50% off", "émile", "a+b", "x.y"} {
		body, _ := json.Marshal(map[string]string{"user_id": id, "limit_usd": "9"})
		if r := f.do(req{method: "PUT", path: "/admin/configure", token: "tok-root", body: string(body)}); r.status != 200 {
			t.Fatalf("configure %q: %d %s", id, r.status, r.body)
		}
		p := "/admin/users/" + url.PathEscape(id)
		r := f.do(req{method: "GET", path: p, token: "tok-root"})
		if got := r.json(t)["user_id"]; got != id {
			t.Errorf("GET %s: user_id %v, want %q", p, got, id)
		}
		r = f.do(req{method: "POST", path: "/admin/reset/" + url.PathEscape(id), token: "tok-root"})
		if got := r.json(t)["reset"].(map[string]any)["user_id"]; got != id {
			t.Errorf("reset %s: user_id %v", p, got)
		}
	}
}

func TestListAndSummary(t *testing.T) {
	f := newFixture(t)
	got := f.do(req{method: "GET", path: "/admin/list?limit=2", token: "tok-root"}).json(t)
	users := got["users"].([]any)
	// carol, hank, nora, pete, root, tess: 30 + 20 + 10 + 40 + 100 + 50.
	want := map[string]any{"users": json.Number("6"), "total_limit_usd": "250", "total_spent_usd": "6.48", "users_over_budget": json.Number("0")}
	if d := cmp.Diff(want, got["summary"]); d != "" {
		t.Errorf("summary (-want +got):\n%s", d)
	}
	if len(users) != 2 || users[0].(map[string]any)["user_id"] != "carol" || got["next_cursor"] == nil {
		t.Fatalf("first page: %v", got)
	}
	first := users[0].(map[string]any)
	for _, k := range []string{"limit_usd", "spent_usd", "alert_level", "admin_notes", "budget_visible_to_user", "current_period_end"} {
		if _, ok := first[k]; !ok {
			t.Errorf("list entry lacks %s: %v", k, first)
		}
	}
	var ids []string
	cursor := ""
	for {
		p := "/admin/list?limit=2"
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		page := f.do(req{method: "GET", path: p, token: "tok-root"}).json(t)
		for _, u := range page["users"].([]any) {
			ids = append(ids, u.(map[string]any)["user_id"].(string))
		}
		next, _ := page["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if d := cmp.Diff([]string{"carol", "hank", "nora", "pete", "root", "tess"}, ids); d != "" {
		t.Errorf("paged list (-want +got):\n%s", d)
	}
	// projected=over keeps exactly the users whose forecast passes their
	// limit: nora spends her 10 in a day of a month.
	if _, err := f.m.Record(context.Background(), "nora", budget.Usage{Cost: budget.MustAmount("9")}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(24 * time.Hour)
	var over, forecastOver []string
	for _, u := range f.do(req{method: "GET", path: "/admin/list?projected=over", token: "tok-root"}).json(t)["users"].([]any) {
		over = append(over, u.(map[string]any)["user_id"].(string))
	}
	for _, id := range ids {
		fc, _ := f.do(req{method: "GET", path: "/admin/users/" + id, token: "tok-root"}).json(t)["forecast"].(map[string]any)
		if fc["projected_over_limit"] == true {
			forecastOver = append(forecastOver, id)
		}
	}
	if !slices.Contains(over, "nora") || !slices.Equal(over, forecastOver) {
		t.Errorf("projected=over: %v; the users whose forecast passes their limit: %v", over, forecastOver)
	}
	// Filters.
	got = f.do(req{method: "GET", path: "/admin/list?q=E", token: "tok-root"}).json(t)
	if n := len(got["users"].([]any)); n != 2 { // pete, tess
		t.Errorf("q=E: %d users", n)
	}
	f.do(req{method: "PUT", path: "/admin/configure", token: "tok-root", body: `{"user_id": "nora", "limit_usd": "0.5"}`})
	got = f.do(req{method: "GET", path: "/admin/list?level=red", token: "tok-root"}).json(t)
	if us := got["users"].([]any); len(us) != 1 || us[0].(map[string]any)["user_id"] != "nora" ||
		got["summary"].(map[string]any)["users_over_budget"] != json.Number("1") {
		t.Errorf("level=red: %v", got)
	}
}

func TestHistoryAndBreakdown(t *testing.T) {
	f := newFixture(t)
	var costs []string
	cursor := ""
	for range 5 {
		p := "/usage/history?limit=2"
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		page := f.do(req{method: "GET", path: p, token: "tok-pete"}).json(t)
		for _, u := range page["usage"].([]any) {
			costs = append(costs, u.(map[string]any)["cost_usd"].(string))
		}
		cursor, _ = page["next_cursor"].(string)
		if cursor == "" {
			break
		}
	}
	if d := cmp.Diff([]string{"0.42", "0.41", "0.4"}, costs); d != "" {
		t.Errorf("history, newest first (-want +got):\n%s", d)
	}
	got := f.do(req{method: "GET", path: "/usage/breakdown", token: "tok-pete"}).json(t)
	want := map[string]any{
		"user_id": "pete", "from": "2025-03-01T00:00:00Z", "to": "2025-04-01T00:00:00Z",
		"total": map[string]any{"cost_usd": "1.23", "requests": json.Number("3"), "input_tokens": json.Number("300"), "output_tokens": json.Number("30")},
		"by_provider": []any{
			map[string]any{"provider": "openai", "cost_usd": "0.82", "requests": json.Number("2"), "input_tokens": json.Number("200"), "output_tokens": json.Number("20")},
			map[string]any{"provider": "anthropic", "cost_usd": "0.41", "requests": json.Number("1"), "input_tokens": json.Number("100"), "output_tokens": json.Number("10")},
		},
		"by_model": []any{
			map[string]any{"provider": "openai", "model": "gpt-4o", "cost_usd": "0.82", "requests": json.Number("2"), "input_tokens": json.Number("200"), "output_tokens": json.Number("20")},
			map[string]any{"provider": "anthropic", "model": "claude", "cost_usd": "0.41", "requests": json.Number("1"), "input_tokens": json.Number("100"), "output_tokens": json.Number("10")},
		},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("breakdown (-want +got):\n%s", d)
	}
	got = f.do(req{method: "GET", path: "/usage/breakdown?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00%2B01:00", token: "tok-pete"}).json(t)
	if got["total"].(map[string]any)["cost_usd"] != "0" || len(got["by_model"].([]any)) != 0 || got["to"] != "2020-01-31T23:00:00Z" {
		t.Errorf("empty range: %v", got)
	}
}

// failingStore fails every status read with an internal error.
type failingStore struct{ budget.Store }

func (failingStore) Totals(context.Context, budget.TotalsRequest) (budget.Totals, error) {
	return budget.Totals{}, errors.New("disk on fire at /var/lib/budget.db")
}

func TestInternalErrorsAreLoggedNotSent(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	f := newFixtureOn(t, failingStore{memory.New()}, httpapi.Options{Logger: logger})
	r := f.do(req{method: "GET", path: "/status", token: "tok-pete"})
	if r.status != 500 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	if p := r.problem(t); p.Type != httpapi.ProblemInternal || strings.Contains(string(r.body), "fire") {
		t.Errorf("500 body %s", r.body)
	}
	if !strings.Contains(logs.String(), "disk on fire") || !strings.Contains(logs.String(), "/status") {
		t.Errorf("log %q lacks the error", logs.String())
	}
}

func TestAuthenticateInvalidPrincipal(t *testing.T) {
	var logs bytes.Buffer
	f := newFixtureOn(t, memory.New(), httpapi.Options{
		Authenticate: func(*http.Request) (budget.Principal, error) { return budget.Principal{Admin: true}, nil },
		Logger:       slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if r := f.do(req{method: "GET", path: "/admin/list"}); r.status != 500 || !strings.Contains(logs.String(), "invalid user ID") {
		t.Errorf("empty user ID: %d, log %q", r.status, logs.String())
	}
}

func TestChallenge(t *testing.T) {
	f := newFixtureOn(t, memory.New(), httpapi.Options{Challenge: `Bearer realm="budget"`})
	r := f.do(req{method: "GET", path: "/status"})
	if r.status != 401 || r.header.Get("WWW-Authenticate") != `Bearer realm="budget"` {
		t.Errorf("401: %d %q", r.status, r.header.Get("WWW-Authenticate"))
	}
}

// TestResetFlow: a user with "can reset" resets; the audit log has it; the
// spend starts over while the history stays.
func TestResetFlow(t *testing.T) {
	f := newFixture(t)
	r := f.do(req{method: "POST", path: "/reset", token: "tok-pete", body: `{"reason": "new sprint"}`})
	got := r.json(t)
	reset, st := got["reset"].(map[string]any), got["status"].(map[string]any)
	if reset["type"] != "manual" || reset["actor"] != "pete" || reset["reason"] != "new sprint" ||
		reset["previous_spent_usd"] != "1.23" || reset["before"] != nil {
		t.Errorf("reset entry %v", reset)
	}
	if st["spent_usd"] != "0" || st["current_period_start"] != apiStart.Add(18*time.Second+time.Minute).Format(time.RFC3339) {
		t.Errorf("status after reset %v", st)
	}
	if n := len(f.do(req{method: "GET", path: "/usage/history", token: "tok-pete"}).json(t)["usage"].([]any)); n != 3 {
		t.Errorf("history after reset: %d records", n)
	}
	entries := f.do(req{method: "GET", path: "/admin/audit?user_id=pete&limit=1", token: "tok-root"}).json(t)
	if e := entries["entries"].([]any)[0].(map[string]any); e["type"] != "manual" || entries["next_cursor"] == nil {
		t.Errorf("audit %v", entries)
	}
}

// escapeAll escapes a user ID for a path segment, dots included, so that
// "." and ".." reach the handler as %2E and %2E%2E.
func escapeAll(id string) string { return strings.ReplaceAll(url.PathEscape(id), ".", "%2E") }

// TestDotUserIDsInPaths: user IDs that make empty or dot segments once a
// slash is unescaped are valid user IDs, so every route that names a user
// reaches them when the ID is percent-encoded; the same paths unencoded are
// not canonical and get the 404 problem. "." and ".." themselves, which
// URL parsers remove from a path even encoded, are refused everywhere.
func TestDotUserIDsInPaths(t *testing.T) {
	f := newFixture(t)
	before := f.state()
	for _, id := range []string{".", ".."} {
		body, _ := json.Marshal(map[string]string{"user_id": id, "limit_usd": "9"})
		r := f.do(req{method: "PUT", path: "/admin/configure", token: "tok-root", body: string(body)})
		if pr := r.problem(t); r.status != 400 || pr.Field != "user_id" {
			t.Errorf("configure %q: %d %s", id, r.status, r.body)
		}
		for _, p := range []string{"/admin/users/" + escapeAll(id), "/admin/audit?user_id=" + url.QueryEscape(id)} {
			if r := f.do(req{method: "GET", path: p, token: "tok-root"}); r.status != 400 && r.status != 404 {
				t.Errorf("GET %s: %d %s", p, r.status, r.body)
			}
		}
	}
	if d := diff(before, f.state()); d != "" {
		t.Errorf("refused IDs changed the state:\n%s", d)
	}
	ids := []string{"x//y", "team/../root", "a/.", "a/..", "./a"}
	for _, id := range ids {
		body, _ := json.Marshal(map[string]string{"user_id": id, "limit_usd": "9"})
		if r := f.do(req{method: "PUT", path: "/admin/configure", token: "tok-root", body: string(body)}); r.status != 200 {
			t.Fatalf("configure %q: %d %s", id, r.status, r.body)
		}
	}
	for _, id := range ids {
		for _, seg := range []string{escapeAll(id), url.PathEscape(id)} {
			if seg == id || seg == "." || seg == ".." {
				continue // not escaped: that is the non-canonical case below
			}
			for _, c := range []struct {
				method, path, body string
				userID             func(map[string]any) any
			}{
				{"GET", "/admin/users/" + seg, "", func(m map[string]any) any { return m["user_id"] }},
				{"POST", "/admin/reset/" + seg, `{"reason": "dots"}`, func(m map[string]any) any { return m["reset"].(map[string]any)["user_id"] }},
				{"GET", "/admin/users/" + seg + "/usage/history", "", func(m map[string]any) any { return m["usage"] != nil }},
				{"GET", "/admin/users/" + seg + "/usage/breakdown", "", func(m map[string]any) any { return m["user_id"] }},
				{"GET", "/admin/audit?user_id=" + url.QueryEscape(id), "", func(m map[string]any) any { return m["entries"].([]any)[0].(map[string]any)["user_id"] }},
			} {
				r := f.do(req{method: c.method, path: c.path, token: "tok-root", body: c.body})
				if r.status != 200 {
					t.Errorf("%s %s (user %q): %d %s", c.method, c.path, id, r.status, r.body)
					continue
				}
				if got := c.userID(r.json(t)); got != id && got != true {
					t.Errorf("%s %s: user %v, want %q", c.method, c.path, got, id)
				}
			}
		}
	}
	// Unencoded, the same IDs make paths that are not canonical: 404, never
	// a redirect, and never another user.
	before = f.state()
	for _, id := range ids {
		for _, p := range []string{"/admin/users/" + id, "/admin/reset/" + id, "/admin/users/" + id + "/usage/history"} {
			method := "GET"
			if strings.HasPrefix(p, "/admin/reset/") {
				method = "POST"
			}
			r := f.do(req{method: method, path: p, token: "tok-root"})
			if r.status != 404 {
				t.Errorf("%s %s: %d %s", method, p, r.status, r.body)
				continue
			}
			if pr := r.problem(t); pr.Type != httpapi.ProblemNotFound {
				t.Errorf("%s: %+v", p, pr)
			}
		}
	}
	if d := diff(before, f.state()); d != "" {
		t.Errorf("non-canonical paths changed the state:\n%s", d)
	}
}

// TestMe answers who is calling, whatever their budget.
func TestMe(t *testing.T) {
	f := newFixture(t)
	for tok, want := range map[string]map[string]any{
		"tok-root":   {"user_id": "root", "admin": true},
		"tok-carol":  {"user_id": "carol", "admin": false},
		"tok-hank":   {"user_id": "hank", "admin": false}, // hidden
		"tok-newbie": {"user_id": "newbie", "admin": false},
	} {
		if d := cmp.Diff(want, f.do(req{method: "GET", path: "/me", token: tok}).json(t)); d != "" {
			t.Errorf("GET /me as %s (-want +got):\n%s", tok, d)
		}
	}
	// Asking is not enrolling: newbie still has no settings.
	if _, err := f.m.Lookup(context.Background(), "newbie"); !errors.Is(err, budget.ErrNotFound) {
		t.Errorf("GET /me created settings: %v", err)
	}
}

// TestAdminUsage: an admin reads any user's history and breakdown with the
// parameters of the user's own routes, and gets the same JSON, hidden
// users included.
func TestAdminUsage(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct{ own, admin, token string }{
		{"/usage/history?limit=2", "/admin/users/pete/usage/history?limit=2", "tok-pete"},
		{"/usage/history", "/admin/users/pete/usage/history", "tok-pete"},
		{"/usage/breakdown", "/admin/users/pete/usage/breakdown", "tok-pete"},
		{"/usage/breakdown?from=2025-03-14T00:00:00Z&to=2025-03-15T00:00:00Z", "/admin/users/nora/usage/breakdown?from=2025-03-14T00:00:00Z&to=2025-03-15T00:00:00Z", "tok-nora"},
	} {
		own := f.do(req{method: "GET", path: c.own, token: c.token})
		adm := f.do(req{method: "GET", path: c.admin, token: "tok-root"})
		if d := cmp.Diff(own.json(t), adm.json(t)); d != "" {
			t.Errorf("%s against %s (-own +admin):\n%s", c.own, c.admin, d)
		}
	}
	// Pages continue with the cursor.
	page := f.do(req{method: "GET", path: "/admin/users/pete/usage/history?limit=2", token: "tok-root"}).json(t)
	next := f.do(req{method: "GET", path: "/admin/users/pete/usage/history?limit=2&cursor=" + url.QueryEscape(page["next_cursor"].(string)), token: "tok-root"}).json(t)
	if us := next["usage"].([]any); len(us) != 1 || us[0].(map[string]any)["cost_usd"] != "0.4" || next["next_cursor"] != nil {
		t.Errorf("second page: %v", next)
	}
	// hank cannot see his own usage; the admin can.
	if r := f.do(req{method: "GET", path: "/usage/history", token: "tok-hank"}); r.status != 403 {
		t.Errorf("hank's own history: %d", r.status)
	}
	if us := f.do(req{method: "GET", path: "/admin/users/hank/usage/history", token: "tok-root"}).json(t)["usage"].([]any); len(us) != 3 {
		t.Errorf("hank's history for the admin: %v", us)
	}
}

// TestResetWithLimit: a reset may start the new period with a new limit,
// recorded in its audit entry; a user needs "can reset" and "can modify".
func TestResetWithLimit(t *testing.T) {
	f := newFixture(t)
	got := f.do(req{method: "POST", path: "/reset", token: "tok-pete", body: `{"reason": "raise", "limit_usd": "45"}`}).json(t)
	reset, st := got["reset"].(map[string]any), got["status"].(map[string]any)
	if reset["previous_limit_usd"] != "40" || reset["new_limit_usd"] != "45" || st["limit_usd"] != "45" || st["spent_usd"] != "0" {
		t.Errorf("reset with a new limit: %v", got)
	}
	if d := cmp.Diff([]any{map[string]any{"field": "limit_usd", "before": "40", "after": "45"}}, reset["changes"]); d != "" {
		t.Errorf("reset changes (-want +got):\n%s", d)
	}
	if s := f.settingsOf("pete"); !s.Limit.Equal(budget.MustAmount("45")) {
		t.Errorf("pete's limit after the reset: %s", s.Limit)
	}
	// A reset without a limit keeps it, and changes nothing but the period.
	got = f.do(req{method: "POST", path: "/reset", token: "tok-pete"}).json(t)
	if r := got["reset"].(map[string]any); r["new_limit_usd"] != "45" || r["changes"] != nil {
		t.Errorf("reset without a limit: %v", r)
	}
	// carol may reset but not modify: a reset with a limit is refused,
	// naming the field, and changes nothing.
	yes := true
	if _, err := f.m.UpdateSettings(context.Background(), rootP, "carol", budget.SettingsUpdate{CanReset: &yes}); err != nil {
		t.Fatal(err)
	}
	before := f.state()
	r := f.do(req{method: "POST", path: "/reset", token: "tok-carol", body: `{"limit_usd": "45"}`})
	if r.status != 403 {
		t.Fatalf("carol resets with a limit: %d %s", r.status, r.body)
	}
	if p := r.problem(t); p.Type != httpapi.ProblemForbidden || p.Field != "limit_usd" {
		t.Errorf("carol's problem: %+v", p)
	}
	if d := diff(before, f.state()); d != "" {
		t.Errorf("a refused reset changed the state:\n%s", d)
	}
	if r := f.do(req{method: "POST", path: "/reset", token: "tok-carol", body: `{}`}); r.status != 200 {
		t.Errorf("carol resets: %d %s", r.status, r.body)
	}
	// An admin resets anyone with a new limit.
	got = f.do(req{method: "POST", path: "/admin/reset/nora", token: "tok-root", body: `{"limit_usd": 12.5}`}).json(t)
	if got["reset"].(map[string]any)["new_limit_usd"] != "12.5" || got["status"].(map[string]any)["limit_usd"] != "12.5" {
		t.Errorf("admin reset with a new limit: %v", got)
	}
}

// TestAuditChanges: each entry says what changed, field by field, and can
// be filtered by type.
func TestAuditChanges(t *testing.T) {
	f := newFixture(t)
	f.do(req{method: "PUT", path: "/admin/configure", token: "tok-root", body: `{"user_id": "tess", "limit_usd": "60", "user_can_reset_budget": true, "admin_notes": ""}`})
	e := f.do(req{method: "GET", path: "/admin/audit?limit=1", token: "tok-root"}).json(t)["entries"].([]any)[0].(map[string]any)
	want := []any{
		map[string]any{"field": "limit_usd", "before": "50", "after": "60"},
		map[string]any{"field": "user_can_reset_budget", "before": "false", "after": "true"},
		map[string]any{"field": "admin_notes", "before": "watch her", "after": ""},
	}
	if d := cmp.Diff(want, e["changes"]); d != "" {
		t.Errorf("changes (-want +got):\n%s", d)
	}
	if _, ok := e["bulk_id"]; ok {
		t.Errorf("a change made alone has a bulk_id: %v", e)
	}
	if _, ok := e["template"]; ok {
		t.Errorf("a change without a template names one: %v", e)
	}
	f.do(req{method: "POST", path: "/admin/reset/tess", token: "tok-root", body: `{}`})
	for _, typ := range []string{"settings", "manual", "template", "defaults", "automatic", ""} {
		entries := f.do(req{method: "GET", path: "/admin/audit?type=" + typ, token: "tok-root"}).json(t)["entries"].([]any)
		for _, e := range entries {
			if got := e.(map[string]any)["type"]; typ != "" && got != typ {
				t.Errorf("?type=%s: an entry of type %v", typ, got)
			}
		}
		if n := map[string]int{"settings": 5, "manual": 1, "template": 1, "defaults": 0, "automatic": 0, "": 7}[typ]; len(entries) != n {
			t.Errorf("?type=%s: %d entries, want %d", typ, len(entries), n)
		}
	}
	if n := len(f.do(req{method: "GET", path: "/admin/audit?type=settings&user_id=tess", token: "tok-root"}).json(t)["entries"].([]any)); n != 2 {
		t.Errorf("?type=settings&user_id=tess: %d entries", n)
	}
}

// TestListHugeLimits: the summary adds limits exactly, however large
// (defect 1: the sum of two maximal limits overflowed into a 500).
func TestListHugeLimits(t *testing.T) {
	f := newFixture(t)
	const max = "9223372036.854775807"
	if r := f.do(req{method: "PUT", path: "/settings", token: "tok-pete", body: `{"limit_usd": "` + max + `"}`}); r.status != 200 {
		t.Fatalf("pete sets the largest limit: %d %s", r.status, r.body)
	}
	f.do(req{method: "PUT", path: "/admin/configure", token: "tok-root", body: `{"user_id": "tess", "limit_usd": "` + max + `"}`})
	r := f.do(req{method: "GET", path: "/admin/list", token: "tok-root"})
	// carol, hank, nora and root: 30 + 20 + 10 + 100.
	want := budget.MustAmount(max).Mul(decimal.NewFromInt(2)).Add(decimal.NewFromInt(160)).String()
	if got := r.json(t)["summary"].(map[string]any)["total_limit_usd"]; got != want || want != "18446744233.709551614" {
		t.Errorf("total_limit_usd %v, want %s", got, want)
	}
}

// TestSummaryIgnoresFilters: the summary describes every user whatever
// the filters (defect 3: it changed with q).
func TestSummaryIgnoresFilters(t *testing.T) {
	f := newFixture(t)
	all := f.do(req{method: "GET", path: "/admin/list", token: "tok-root"}).json(t)["summary"]
	for _, q := range []string{"q=te", "q=TESS", "q=nobody", "level=red", "q=e&level=green&limit=1"} {
		if d := cmp.Diff(all, f.do(req{method: "GET", path: "/admin/list?" + q, token: "tok-root"}).json(t)["summary"]); d != "" {
			t.Errorf("summary with %s (-all +filtered):\n%s", q, d)
		}
	}
}

// TestViewOnlyThresholds: a view-only user cannot redefine their level by
// moving their alert thresholds (the seed's permission rule).
func TestViewOnlyThresholds(t *testing.T) {
	f := newFixture(t)
	before := f.state()
	for _, tok := range []string{"tok-carol", "tok-nora"} {
		r := f.do(req{method: "PUT", path: "/settings", token: tok, body: `{"alert_threshold_red": "1000"}`})
		if r.status != 403 {
			t.Fatalf("%s: %d %s", tok, r.status, r.body)
		}
		if p := r.problem(t); p.Type != httpapi.ProblemForbidden || p.Field != "alert_threshold_red" {
			t.Errorf("%s: %+v", tok, p)
		}
	}
	if d := diff(before, f.state()); d != "" {
		t.Errorf("refused thresholds changed the state:\n%s", d)
	}
	if r := f.do(req{method: "PUT", path: "/settings", token: "tok-pete", body: `{"alert_threshold_red": "1000"}`}); r.status != 200 {
		t.Errorf("pete, who may modify: %d %s", r.status, r.body)
	}
}
