package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/httpapi"
	"github.com/llmbudget/budget/store/sqlite"
	"github.com/llmbudget/budget/store/storetest"
)

// TestEndToEndSQLite drives the API over a real loopback listener on the
// SQLite store: an admin configures a user, the service spends through the
// Manager, the user reads their status and history, resets, and the admin
// reads the audit log.
func TestEndToEndSQLite(t *testing.T) {
	ctx := context.Background()
	srv := startSQLite(t, budget.Options{})
	m, clock, call := srv.m, srv.clock, srv.call

	// An admin configures pete: $20 a week in Paris, allowed to reset.
	code, hdr, set := call("PUT", "/admin/configure", "tok-root",
		`{"user_id": "pete", "limit_usd": "20", "budget_period": "weekly", "timezone": "Europe/Paris",
		  "user_can_reset_budget": true, "alert_threshold_yellow": 50, "admin_notes": "pilot"}`)
	if code != 200 || hdr.Get("ETag") != `"2"` || set["admin_notes"] != "pilot" {
		t.Fatalf("configure: %d %s %v", code, hdr.Get("ETag"), set)
	}
	// 2025-03-14 is a Friday; the week began Monday 10 March, 00:00 in Paris.
	if set["current_period_start"] != "2025-03-09T23:00:00Z" || set["current_period_end"] != "2025-03-16T23:00:00Z" {
		t.Errorf("period %v – %v", set["current_period_start"], set["current_period_end"])
	}

	// The service spends through the Manager: a reservation settled, and a
	// record of ten tenths.
	res, err := m.Reserve(ctx, "pete", budget.MustAmount("5"))
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if _, err := res.Settle(ctx, budget.Usage{Provider: "openai", Model: "gpt-4o", InputTokens: 1000, OutputTokens: 200, Cost: budget.MustAmount("4.25")}); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		clock.Advance(time.Second)
		if _, err := m.Record(ctx, "pete", budget.Usage{Provider: "anthropic", Model: "claude", Cost: budget.MustAmount("0.1")}); err != nil {
			t.Fatal(err)
		}
	}
	held, err := m.Reserve(ctx, "pete", budget.MustAmount("0.75"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release(ctx)

	// pete reads his status.
	code, _, st := call("GET", "/status", "tok-pete", "")
	want := map[string]any{"spent_usd": "5.25", "reserved_usd": "0.75", "remaining_usd": "14", "percent_used": "26.25", "alert_level": "green", "timezone": "Europe/Paris", "budget_period": "weekly"}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("status %s = %v, want %v", k, st[k], v)
		}
	}
	if code != 200 {
		t.Fatalf("status: %d", code)
	}
	code, _, hist := call("GET", "/usage/history?limit=5", "tok-pete", "")
	if us := hist["usage"].([]any); code != 200 || len(us) != 5 || hist["next_cursor"] == nil {
		t.Errorf("history: %d %v", code, hist)
	}
	code, _, bd := call("GET", "/usage/breakdown", "tok-pete", "")
	if code != 200 || bd["total"].(map[string]any)["cost_usd"] != "5.25" || len(bd["by_model"].([]any)) != 2 {
		t.Errorf("breakdown: %d %v", code, bd)
	}
	// He may not raise his own limit.
	if code, _, p := call("PUT", "/settings", "tok-pete", `{"limit_usd": "100"}`); code != 403 || p["field"] != "limit_usd" {
		t.Errorf("raise own limit: %d %v", code, p)
	}

	// He resets.
	clock.Advance(time.Minute)
	code, _, out := call("POST", "/reset", "tok-pete", `{"reason": "new sprint"}`)
	if code != 200 || out["reset"].(map[string]any)["previous_spent_usd"] != "5.25" ||
		out["status"].(map[string]any)["spent_usd"] != "0" || out["status"].(map[string]any)["reserved_usd"] != "0.75" {
		t.Fatalf("reset: %d %v", code, out)
	}

	// The admin reads the audit log: the reset, then the configuration.
	code, _, audit := call("GET", "/admin/audit?user_id=pete", "tok-root", "")
	entries := audit["entries"].([]any)
	if code != 200 || len(entries) != 2 {
		t.Fatalf("audit: %d %v", code, audit)
	}
	reset, conf := entries[0].(map[string]any), entries[1].(map[string]any)
	if reset["type"] != "manual" || reset["actor"] != "pete" || reset["reason"] != "new sprint" || reset["actor_admin"] != false {
		t.Errorf("reset entry %v", reset)
	}
	if conf["type"] != "settings" || conf["actor"] != "root" || conf["new_limit_usd"] != "20" ||
		conf["after"].(map[string]any)["admin_notes"] != "pilot" || conf["before"].(map[string]any)["limit_usd"] != "30" {
		t.Errorf("settings entry %v", conf)
	}

	// And sees pete in the list, with the reset period.
	code, _, list := call("GET", "/admin/list?q=pet", "tok-root", "")
	if u := list["users"].([]any); code != 200 || len(u) != 1 || u[0].(map[string]any)["last_reset_at"] == nil {
		t.Errorf("list: %d %v", code, list)
	}
	// A stale If-Match from before the reset is refused.
	if code, _, _ := call("PUT", "/admin/configure", "tok-root", `{"user_id": "pete", "limit_usd": "25"}`, "If-Match", `"2"`); code != 412 {
		t.Errorf("stale configure: %d", code)
	}
}

// sqliteServer is the API over the SQLite store, mounted under
// /api/v1/budget/ on a loopback listener.
type sqliteServer struct {
	t     *testing.T
	m     *budget.Manager
	clock *storetest.Clock
	srv   *httptest.Server
}

func startSQLite(t *testing.T, opts budget.Options) *sqliteServer {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "b.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	clock := storetest.NewClock(apiStart)
	opts.Now = clock.Now
	m := budget.NewManager(store, opts)
	h, err := httpapi.New(m, httpapi.Options{Authenticate: bearerAuth})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/budget/", http.StripPrefix("/api/v1/budget", h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &sqliteServer{t: t, m: m, clock: clock, srv: srv}
}

// call sends a request with a bearer token and an optional JSON body and
// extra headers (name, value, ...), and decodes the JSON answer.
func (s *sqliteServer) call(method, path, token, body string, header ...string) (int, http.Header, map[string]any) {
	t := s.t
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r, err := http.NewRequestWithContext(context.Background(), method, s.srv.URL+"/api/v1/budget"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	r.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	resp, err := s.srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, out
}

// raw writes a request as bytes on a new connection and returns the
// status line of the answer, so that nothing between the test and the
// server rewrites the path or the framing.
func (s *sqliteServer) raw(request string) string {
	t := s.t
	t.Helper()
	conn, err := net.Dial("tcp", s.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line)
}

// TestEndToEndAccessAndBulk drives the admin flows over a real
// listener on SQLite: budgets turned off for regular users, a bulk limit
// change on three users read back one by one and in the audit log, a
// template applied by filter, user IDs that are path steps reached
// through the mount point, and an empty chunked reset.
func TestEndToEndAccessAndBulk(t *testing.T) {
	ctx := context.Background()
	srv := startSQLite(t, budget.Options{IsAdmin: func(id string) bool { return id == "root" }})
	m, call := srv.m, srv.call
	for _, id := range []string{"carol", "nora", "pete", "tess", "root"} {
		if _, err := m.Record(ctx, id, budget.Usage{Provider: "openai", Model: "gpt-4o", Cost: budget.MustAmount("1")}); err != nil {
			t.Fatal(err)
		}
	}

	// Budgets off for regular users.
	code, _, out := call("PUT", "/admin/access", "tok-root", `{"enabled": false}`)
	if code != 200 || out["changed"] != 4.0 || out["visible_users"] != 0.0 || out["enabled"] != false {
		t.Fatalf("access off: %d %v", code, out)
	}
	code, _, p := call("GET", "/status", "tok-carol", "")
	if code != 403 || p["type"] != httpapi.ProblemBudgetHidden || p["hidden"] != true {
		t.Errorf("carol's status with access off: %d %v", code, p)
	}
	if code, _, _ := call("GET", "/status", "tok-root", ""); code != 200 {
		t.Errorf("the admin's status with access off: %d", code)
	}
	code, _, out = call("GET", "/admin/access", "tok-root", "")
	if code != 200 || out["enabled"] != false || out["users"] != 4.0 || out["visible_users"] != 0.0 {
		t.Errorf("GET /admin/access: %d %v", code, out)
	}

	// A bulk limit change on three selected users.
	code, _, out = call("POST", "/admin/bulk", "tok-root", `{"user_ids": ["carol", "nora", "pete"], "changes": {"limit_usd": "45"}}`)
	if code != 200 || out["changed"] != 3.0 {
		t.Fatalf("bulk: %d %v", code, out)
	}
	bulkID := out["bulk_id"]
	for id, want := range map[string]string{"carol": "45", "nora": "45", "pete": "45", "tess": "30"} {
		if code, _, u := call("GET", "/admin/users/"+id, "tok-root", ""); code != 200 || u["limit_usd"] != want {
			t.Errorf("GET /admin/users/%s: %d limit %v, want %s", id, code, u["limit_usd"], want)
		}
	}
	code, _, audit := call("GET", "/admin/audit?type=settings&limit=3", "tok-root", "")
	if code != 200 || len(audit["entries"].([]any)) != 3 {
		t.Fatalf("audit: %d %v", code, audit)
	}
	for _, e := range audit["entries"].([]any) {
		e := e.(map[string]any)
		want := []any{map[string]any{"field": "limit_usd", "before": "30", "after": "45"}}
		if e["bulk_id"] != bulkID || cmp.Diff(want, e["changes"]) != "" {
			t.Errorf("bulk audit entry: %v", e)
		}
	}

	// A template, applied to the users a filter selects.
	if code, hdr, _ := call("PUT", "/admin/templates/intern", "tok-root", `{"limit_usd": "5", "budget_period": "weekly"}`); code != 200 || hdr.Get("ETag") != `"1"` {
		t.Fatalf("save template: %d", code)
	}
	code, _, out = call("POST", "/admin/bulk", "tok-root", `{"match": {"q": "TESS"}, "template": "intern"}`)
	if res := out["results"].([]any); code != 200 || len(res) != 1 || res[0].(map[string]any)["settings"].(map[string]any)["budget_period"] != "weekly" {
		t.Errorf("apply template: %d %v", code, out)
	}

	// User IDs that are path steps, percent-encoded through the mount.
	for id, seg := range map[string]string{"./a": "%2E%2Fa", "team/../root": "team%2F..%2Froot", "a/.": "a%2F%2E"} {
		body, _ := json.Marshal(map[string]string{"user_id": id})
		if code, _, _ := call("PUT", "/admin/configure", "tok-root", string(body)); code != 200 {
			t.Fatalf("configure %q: %d", id, code)
		}
		if code, _, u := call("GET", "/admin/users/"+seg, "tok-root", ""); code != 200 || u["user_id"] != id {
			t.Errorf("GET /admin/users/%s: %d %v", seg, code, u["user_id"])
		}
		if code, _, u := call("POST", "/admin/reset/"+seg, "tok-root", ""); code != 200 || u["reset"].(map[string]any)["user_id"] != id {
			t.Errorf("POST /admin/reset/%s: %d %v", seg, code, u)
		}
		if code, _, u := call("GET", "/admin/users/"+seg+"/usage/history", "tok-root", ""); code != 200 || u["usage"] == nil {
			t.Errorf("GET /admin/users/%s/usage/history: %d %v", seg, code, u)
		}
	}
	// Unencoded, the same path is not canonical: the host's mux redirects
	// it, or the handler answers 404; never the user.
	if line := srv.raw("GET /api/v1/budget/admin/users/team/../root HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-root\r\nConnection: close\r\n\r\n"); strings.Contains(line, " 200 ") {
		t.Errorf("unencoded team/../root: %s", line)
	}

	// An empty reset body, sent chunked.
	if _, err := m.UpdateSettings(ctx, budget.Principal{UserID: "root", Admin: true}, "pete", budget.SettingsUpdate{Visible: ptr(true), CanReset: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	line := srv.raw("POST /api/v1/budget/reset HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-pete\r\n" +
		"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n")
	if line != "HTTP/1.1 200 OK" {
		t.Errorf("empty chunked reset: %s", line)
	}
}
