package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/sqlite"
)

// TestServerProbes: /healthz and /readyz answer without a token, a probe
// that succeeds stays out of the log, and without -metrics there is no
// /metrics.
func TestServerProbes(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, "-db", filepath.Join(dir, "budget.db"), "-tokens", writeTokens(t, dir))
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, body := get(t, srv.base+path, "")
		var b probeBody
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &b) != nil || b.Status != "ok" {
			t.Errorf("GET %s: %s: %s", path, resp.Status, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
	}
	if resp, body := get(t, srv.base+"/metrics", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics without -metrics: %s: %s", resp.Status, body)
	}
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}
	out := srv.out.String()
	if strings.Contains(out, "path=/healthz") || strings.Contains(out, "path=/readyz") {
		t.Errorf("a probe that succeeded is logged:\n%s", out)
	}
	if !strings.Contains(out, "path=/metrics status=404") {
		t.Errorf("the failed GET /metrics is not logged:\n%s", out)
	}
}

// TestReadyzStoreClosed: the server's /readyz handler answers 200 while the
// store is open and 503, with a short JSON body, once it is closed.
func TestReadyzStoreClosed(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "budget.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	h := readyz(budget.NewManager(store, budget.Options{}), slog.New(slog.NewTextHandler(&logs, nil)))
	probe := func() (int, probeBody) {
		t.Helper()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var b probeBody
		if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
			t.Fatalf("GET /readyz: %d: %v: %s", w.Code, err, w.Body)
		}
		return w.Code, b
	}
	if code, b := probe(); code != http.StatusOK || b != (probeBody{Status: "ok"}) {
		t.Errorf("GET /readyz with the store open: %d %+v", code, b)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	if code, b := probe(); code != http.StatusServiceUnavailable || b != (probeBody{Status: "unavailable", Reason: "store unreachable"}) {
		t.Errorf("GET /readyz with the store closed: %d %+v", code, b)
	}
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("the failed check is not logged as a warning: %q", logs.String())
	}
}

// TestServerMetrics: with -metrics, the demo's traffic shows in /metrics in
// the Prometheus text format, from the Manager, the store and the webhook
// sender, labelled by model and outcome and never by user.
func TestServerMetrics(t *testing.T) {
	dir := t.TempDir()
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer hook.Close()
	srv := startServer(t, "-db", filepath.Join(dir, "budget.db"), "-demo", "-tokens", writeTokens(t, dir), "-metrics",
		"-webhook", hook.URL, "-webhook-secret", "whsec-test")
	// Some API traffic too.
	if resp, body := get(t, srv.base+"/api/v1/budget/status", userToken); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /status: %s: %s", resp.Status, body)
	}
	// The webhook delivers the demo's alerts in the background: scrape
	// until the deliveries show.
	delivered := regexp.MustCompile(`(?m)^budget_webhook_deliveries_total\{[^}]*outcome="delivered"[^}]*\} [1-9]`)
	var scrape string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		resp, body := get(t, srv.base+"/metrics", "")
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("GET /metrics: %s %q", resp.Status, resp.Header.Get("Content-Type"))
		}
		scrape = string(body)
		if delivered.MatchString(scrape) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics shows no webhook delivery:\n%s", scrape)
		}
	}
	for _, re := range []string{
		// Spend by provider and model, for each of the demo's models.
		`(?m)^budget_spend_total\{[^}]*model="gpt-4o-mini"[^}]*\} [1-9]`,
		`(?m)^budget_spend_total\{[^}]*model="claude-sonnet-4"[^}]*provider="anthropic"[^}]*\} [1-9]`,
		// Reserves allowed and refused: dave's budget refuses the demo's
		// calls once it is spent.
		`(?m)^budget_reserves_total\{[^}]*outcome="allowed"[^}]*\} [1-9]`,
		`(?m)^budget_reserves_total\{[^}]*outcome="refused"[^}]*reason="limit"[^}]*\} [1-9]`,
		// Reserve latency, a histogram in seconds.
		`(?m)^budget_reserve_duration_seconds_bucket\{[^}]*le="\+Inf"[^}]*\} [1-9]`,
		`(?m)^budget_settle_duration_seconds_count\{[^}]*\} [1-9]`,
		// Alerts fired for the demo's users and the SQLite store's batches.
		`(?m)^budget_alerts_total\{[^}]*level="red"[^}]*\} [1-9]`,
		`(?m)^budget_store_batch_size_count\{[^}]*store="sqlite"[^}]*\} [1-9]`,
	} {
		if !regexp.MustCompile(re).MatchString(scrape) {
			t.Errorf("/metrics has no line matching %s", re)
		}
	}
	// No user id anywhere: not as a label, not as a value.
	for _, u := range []string{"alice", "bob", "carol", "dave", "root", "demo-setup", "user_id"} {
		if regexp.MustCompile(`\b` + regexp.QuoteMeta(u) + `\b`).MatchString(scrape) {
			t.Errorf("/metrics mentions %q", u)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", scrape)
	}
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestServerJSONLogs: with -log-format json every log line is a JSON
// object, request lines included; only the welcome text is plain.
func TestServerJSONLogs(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, "-db", filepath.Join(dir, "budget.db"), "-demo", "-tokens", writeTokens(t, dir), "-log-format", "json")
	if resp, body := get(t, srv.base+"/api/v1/budget/status", userToken); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /status: %s: %s", resp.Status, body)
	}
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}
	var welcome strings.Builder
	printWelcome(&welcome, srv.base, nil)
	out := srv.out.String()
	if !strings.Contains(out, welcome.String()) {
		t.Fatalf("no welcome text in the output:\n%s", out)
	}
	logs := strings.Replace(out, welcome.String(), "", 1)
	msgs := map[string]map[string]any{}
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Errorf("a log line is not JSON: %v: %q", err, sc.Text())
			continue
		}
		if rec["time"] == nil || rec["level"] == nil || rec["msg"] == nil {
			t.Errorf("a log line lacks time, level or msg: %q", sc.Text())
		}
		msg, _ := rec["msg"].(string)
		if msg == "request" {
			msg += " " + rec["path"].(string)
		}
		msgs[msg] = rec
	}
	for _, m := range []string{"listening", "demo: recorded simulated traffic", "request /api/v1/budget/status", "shutting down", "store closed"} {
		if msgs[m] == nil {
			t.Errorf("no JSON log line %q in:\n%s", m, logs)
		}
	}
	if r := msgs["request /api/v1/budget/status"]; r != nil && (r["method"] != "GET" || r["status"] != float64(200)) {
		t.Errorf("request log line: %v", r)
	}
}
