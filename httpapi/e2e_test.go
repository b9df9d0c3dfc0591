package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "b.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	clock := storetest.NewClock(apiStart)
	m := budget.NewManager(store, budget.Options{Now: clock.Now})
	h, err := httpapi.New(m, httpapi.Options{Authenticate: bearerAuth})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/budget/", http.StripPrefix("/api/v1/budget", h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	call := func(method, path, token, body string, header ...string) (int, http.Header, map[string]any) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		r, err := http.NewRequestWithContext(ctx, method, srv.URL+"/api/v1/budget"+path, rd)
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
		resp, err := srv.Client().Do(r)
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
