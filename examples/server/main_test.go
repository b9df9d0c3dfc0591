package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/httpapi"
	"github.com/llmbudget/budget/store/memory"
	"github.com/llmbudget/budget/store/sqlite"
)

// output is a concurrency-safe stdout for run that wakes waiters on every
// write.
type output struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newOutput() *output { return &output{changed: make(chan struct{}, 1)} }

func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	select {
	case o.changed <- struct{}{}:
	default:
	}
	return o.buf.Write(b)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// wait returns the first match of re in the output, waiting for it to be
// written; it fails the test if s's run returns first.
func (o *output) wait(t *testing.T, re *regexp.Regexp, s *server) []string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		if m := re.FindStringSubmatch(o.String()); m != nil {
			return m
		}
		select {
		case <-o.changed:
		case <-s.done:
			t.Fatalf("run returned %v before printing %s; output:\n%s", s.err, re, o.String())
		case <-timeout:
			t.Fatalf("timed out waiting for %s; output:\n%s", re, o.String())
		}
	}
}

var listening = regexp.MustCompile(`budget API at (http://127\.0\.0\.1:\d+)/api/v1/budget/`)

// server is a run in the background.
type server struct {
	base   string             // e.g. http://127.0.0.1:41234
	out    *output            // what run printed
	cancel context.CancelFunc // starts the shutdown
	done   chan struct{}      // closed when run returns
	err    error              // what run returned, once done is closed
}

// startServer runs the server with args in the background, on a random
// loopback port, and waits until it listens. The test's cleanup stops it.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{out: newOutput(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), s.out)
	}()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	s.base = s.out.wait(t, listening, s)[1]
	return s
}

// stop cancels the server and returns run's error.
func (s *server) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	select {
	case <-s.done:
		return s.err
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not return after cancel; output:\n%s", s.out.String())
		return nil
	}
}

func get(t *testing.T, url, token string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

const (
	userToken  = "user-token-0123456789abcdef"
	adminToken = "admin-token-0123456789abcdef"
)

func writeTokens(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "tokens.json")
	b, _ := json.Marshal(map[string]tokenEntry{
		userToken:  {UserID: "alice"},
		adminToken: {UserID: "root", Admin: true},
	})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestServer(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "budget.db")
	secret := "whsec-test"

	// A webhook receiver that checks every signature.
	var (
		mu     sync.Mutex
		alerts []httpapi.WebhookPayload
		bad    []error
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := httpapi.VerifyWebhook(r, body, []byte(secret), time.Minute, time.Now()); err != nil {
			bad = append(bad, err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var p httpapi.WebhookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			bad = append(bad, err)
		}
		alerts = append(alerts, p)
	}))
	defer hook.Close()

	srv := startServer(t, "-db", db, "-demo", "-tokens", writeTokens(t, dir),
		"-webhook", hook.URL, "-webhook-secret", secret)
	api, out := srv.base+"/api/v1/budget", srv.out

	// The user's own status.
	resp, body := get(t, api+"/status", userToken)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /status: %s %s: %s", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	var status map[string]any
	if err := json.Unmarshal(body, &status); err != nil {
		t.Fatalf("GET /status: %v: %s", err, body)
	}
	if status["user_id"] != "alice" {
		t.Errorf("GET /status: user_id = %v: %s", status["user_id"], body)
	}

	// No token, a wrong token, a wrong scheme.
	for _, tok := range []string{"", "not-a-known-token-at-all"} {
		if resp, body := get(t, api+"/status", tok); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /status with token %q: %s: %s", tok, resp.Status, body)
		}
	}

	// The admin list shows the demo users; a user may not see it.
	resp, body = get(t, api+"/admin/list", adminToken)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/list: %s: %s", resp.Status, body)
	}
	var list struct {
		Users []struct {
			UserID     string `json:"user_id"`
			AlertLevel string `json:"alert_level"`
		} `json:"users"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("GET /admin/list: %v: %s", err, body)
	}
	levels := map[string]string{}
	for _, u := range list.Users {
		levels[u.UserID] = u.AlertLevel
	}
	if want := map[string]string{"alice": "green", "bob": "yellow", "carol": "orange", "dave": "red"}; !maps.Equal(levels, want) {
		t.Errorf("GET /admin/list: levels %v, want %v", levels, want)
	}
	if resp, body := get(t, api+"/admin/list", userToken); resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET /admin/list as a user: %s: %s", resp.Status, body)
	}

	// Requests are logged.
	if !regexp.MustCompile(`method=GET path=/api/v1/budget/status status=200 duration=`).MatchString(out.String()) {
		t.Errorf("no request log line in the output:\n%s", out.String())
	}

	// Shut down: run returns nil, the webhook has delivered the demo's
	// alerts, and the store is closed.
	if err := srv.stop(t); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	for _, s := range []string{"shutting down", "http server stopped", "webhook closed", "store closed"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q:\n%s", s, out.String())
		}
	}
	mu.Lock()
	if len(bad) > 0 {
		t.Errorf("webhook deliveries failed verification: %v", bad)
	}
	got := map[string]bool{}
	for _, a := range alerts {
		got[a.UserID+":"+a.Level.String()] = true
	}
	mu.Unlock()
	if !got["dave:red"] || !got["carol:orange"] || !got["bob:yellow"] {
		t.Errorf("webhook alerts %v, want at least dave:red, carol:orange and bob:yellow", got)
	}

	// The database was closed cleanly: the last connection's checkpoint
	// removed the WAL, and the file opens again with the demo data.
	if _, err := os.Stat(db + "-wal"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WAL file still present after shutdown (err %v)", err)
	}
	ctx := context.Background()
	s, err := sqlite.Open(ctx, db, sqlite.Options{})
	if err != nil {
		t.Fatalf("reopening the database: %v", err)
	}
	defer s.Close()
	m := budget.NewManager(s, budget.Options{})
	st, err := m.Status(ctx, "dave")
	if err != nil {
		t.Fatal(err)
	}
	if st.Level != budget.Red {
		t.Errorf("dave after the demo: %+v, want red", st)
	}
	page, err := m.History(ctx, budget.UsageQuery{UserID: "alice", Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) < 30 {
		t.Errorf("alice has %d usage records, want a week of them", len(page.Records))
	}
	ts, err := m.Templates(ctx, budget.Principal{UserID: "root", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].Name != "intern" || ts[1].Name != "researcher" {
		t.Errorf("templates after the demo: %+v, want intern and researcher", ts)
	}
}

func TestServerGeneratedTokens(t *testing.T) {
	db := filepath.Join(t.TempDir(), "budget.db")
	srv := startServer(t, "-db", db)
	base, out := srv.base, srv.out

	// The printed curl commands work as printed.
	re := regexp.MustCompile(`curl -H 'Authorization: Bearer (bgt_[A-Za-z0-9_-]{43})' (http://\S+)`)
	cmds := re.FindAllStringSubmatch(out.String(), -1)
	if len(cmds) < 2 {
		t.Fatalf("no curl commands printed:\n%s", out.String())
	}
	for _, c := range cmds {
		if !strings.HasPrefix(c[2], base+"/api/v1/budget/") {
			t.Errorf("curl command for %s, want one under %s", c[2], base)
		}
		if resp, body := get(t, c[2], c[1]); resp.StatusCode != http.StatusOK {
			t.Errorf("curl %s: %s: %s", c[2], resp.Status, body)
		}
	}
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	db := filepath.Join(dir, "budget.db")
	for name, args := range map[string][]string{
		"webhook without secret": {"-webhook", "http://127.0.0.1:9/hook"},
		"bad webhook URL":        {"-webhook", "ftp://x", "-webhook-secret", "s"},
		"missing tokens file":    {"-tokens", filepath.Join(dir, "nope.json")},
		"malformed tokens":       {"-tokens", write("bad.json", `{"abc`)},
		"empty tokens":           {"-tokens", write("empty.json", `{}`)},
		"short token":            {"-tokens", write("short.json", `{"abc": {"user_id": "u"}}`)},
		"bad user id":            {"-tokens", write("badid.json", `{"0123456789abcdef0": {"user_id": ""}}`)},
		"unknown field":          {"-tokens", write("field.json", `{"0123456789abcdef0": {"user": "u"}}`)},
		"stray argument":         {"extra"},
		"bad address":            {"-addr", "127.0.0.1:-1"},
		"bad log format":         {"-log-format", "yaml"},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := run(ctx, append([]string{"-db", db}, args...), io.Discard); err == nil {
				t.Errorf("run(%q) succeeded", args)
			}
		})
	}
}

func TestAuthenticate(t *testing.T) {
	gen, g, err := loadTokens("")
	if err != nil {
		t.Fatal(err)
	}
	if !gen.isAdmin(g.adminUser) || gen.isAdmin(g.userUser) {
		t.Error("generated tokens: isAdmin does not follow the admin flags")
	}
	for tok, want := range map[string]budget.Principal{
		g.admin: {UserID: "admin", Admin: true},
		g.user:  {UserID: "alice"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/status", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		if p, err := gen.authenticate(r); err != nil || p != want {
			t.Errorf("generated token: authenticate = %+v, %v; want %+v", p, err, want)
		}
	}

	tt2, g2, err := loadTokens(writeTokens(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if g2 != nil || !tt2.isAdmin("root") || tt2.isAdmin("alice") {
		t.Error("tokens file: isAdmin does not follow the admin flags")
	}
	for _, c := range []struct {
		header string
		want   budget.Principal
		ok     bool
	}{
		{"Bearer " + userToken, budget.Principal{UserID: "alice"}, true},
		{"bearer " + adminToken, budget.Principal{UserID: "root", Admin: true}, true},
		{"Bearer  " + userToken + " ", budget.Principal{UserID: "alice"}, true},
		{"", budget.Principal{}, false},
		{"Bearer", budget.Principal{}, false},
		{"Bearer ", budget.Principal{}, false},
		{"Basic " + userToken, budget.Principal{}, false},
		{"Bearer " + userToken + "x", budget.Principal{}, false},
	} {
		r := httptest.NewRequest(http.MethodGet, "/status", nil)
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		p, err := tt2.authenticate(r)
		if (err == nil) != c.ok || p != c.want {
			t.Errorf("authenticate(%q) = %+v, %v; want %+v, ok %v", c.header, p, err, c.want, c.ok)
		}
	}
}

// TestDemoLevels checks that -demo leaves each user at their level
// whatever the time it runs: just after a month starts, just after
// midnight in New York (carol's daily budget), across a DST change.
func TestDemoLevels(t *testing.T) {
	want := map[string]budget.Level{"alice": budget.Green, "bob": budget.Yellow, "carol": budget.Orange, "dave": budget.Red}
	for _, now := range []time.Time{
		time.Date(2026, time.March, 1, 0, 0, 30, 0, time.UTC),
		time.Date(2026, time.March, 8, 5, 5, 0, 0, time.UTC), // New York springs forward at 07:00 UTC
		time.Date(2026, time.November, 1, 4, 0, 1, 0, time.UTC),
		time.Date(2026, time.November, 27, 5, 30, 0, 0, time.UTC),
		time.Date(2027, time.January, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, time.June, 15, 13, 17, 0, 0, time.UTC),
	} {
		store := memory.New()
		clock := &demoClock{}
		m := budget.NewManager(store, budget.Options{Now: clock.Now})
		logger := slog.New(slog.DiscardHandler)
		if err := seedDemo(context.Background(), m, clock, now, logger); err != nil {
			t.Fatal(err)
		}
		clock.Set(now)
		for user, level := range want {
			st, err := m.Status(context.Background(), user)
			if err != nil {
				t.Fatal(err)
			}
			if st.Level != level {
				t.Errorf("at %s: %s is %s at %s%% of %s, want %s", now, user, st.Level, st.Percent, st.Limit, level)
			}
		}
		store.Close()
	}
}

// TestDemoGroups: -demo creates a team and an org with a model cap each,
// their members see them on their status, and a later start with -demo
// keeps an admin's edits to them.
func TestDemoGroups(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	defer store.Close()
	clock := &demoClock{}
	m := budget.NewManager(store, budget.Options{Now: clock.Now})
	admin := budget.Principal{UserID: "root", Admin: true}
	logger := slog.New(slog.DiscardHandler)
	now := time.Date(2026, time.June, 15, 13, 17, 0, 0, time.UTC)
	if err := seedDemo(ctx, m, clock, now, logger); err != nil {
		t.Fatal(err)
	}
	clock.Set(now)
	defer clock.Set(time.Time{})
	team, err := m.BudgetSettings(ctx, admin, budget.Team("research"))
	if err != nil {
		t.Fatal(err)
	}
	if team.Org != "acme" || len(team.ModelCaps) != 1 || team.ModelCaps[0].Pattern != "gpt-4o*" || !team.ModelCaps[0].Limit.Equal(budget.MustAmount("12")) {
		t.Errorf("the demo team: org %q, caps %+v", team.Org, team.ModelCaps)
	}
	org, err := m.BudgetSettings(ctx, admin, budget.Org("acme"))
	if err != nil {
		t.Fatal(err)
	}
	if len(org.ModelCaps) != 1 || org.ModelCaps[0].Pattern != "claude-sonnet-*" {
		t.Errorf("the demo org's caps: %+v", org.ModelCaps)
	}
	members, err := m.Members(ctx, admin, budget.Team("research"))
	if err != nil || len(members) != 2 || members[0] != budget.User("alice") || members[1] != budget.User("bob") {
		t.Errorf("the demo team's members: %v, %v", members, err)
	}
	// The binding budget: alice's is the team's cap on gpt-4o*, which has
	// the least room left; the others' their own.
	type binding struct {
		scope   budget.Scope
		pattern string
	}
	for user, want := range map[string]struct {
		n    int
		bind binding
	}{
		"alice": {5, binding{budget.Team("research"), "gpt-4o*"}},
		"bob":   {5, binding{budget.User("bob"), ""}},
		"dave":  {3, binding{budget.User("dave"), ""}},
		"carol": {0, binding{}},
	} {
		st, err := m.Status(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Budgets) != want.n {
			t.Errorf("%s has %d budgets, want %d: %+v", user, len(st.Budgets), want.n, st.Budgets)
		}
		for _, b := range st.Budgets {
			if b.Binding != (binding{b.Scope, b.Pattern} == want.bind) {
				t.Errorf("%s: %s %q binding %v; want %v binding", user, b.Scope, b.Pattern, b.Binding, want.bind)
			}
			if b.Scope != budget.User(user) && b.Spent.IsZero() {
				t.Errorf("%s: nothing spent on %s %q", user, b.Scope, b.Pattern)
			}
		}
	}

	// An admin raises the team's limit; the next -demo start keeps it.
	fifty := budget.MustAmount("50")
	if _, err := m.UpdateBudget(ctx, admin, budget.Team("research"), budget.SettingsUpdate{Limit: &fifty}); err != nil {
		t.Fatal(err)
	}
	if err := seedDemo(ctx, m, clock, now, logger); err != nil {
		t.Fatal(err)
	}
	if s, err := m.BudgetSettings(ctx, admin, budget.Team("research")); err != nil || !s.Limit.Equal(fifty) {
		t.Errorf("the team after a second -demo start: %v, %v; want the admin's $50", s.Limit, err)
	}
}

// TestDemoTemplates: -demo saves the two templates the admin page offers,
// and a later start with -demo keeps an admin's edits to them.
func TestDemoTemplates(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	defer store.Close()
	clock := &demoClock{}
	m := budget.NewManager(store, budget.Options{Now: clock.Now})
	admin := budget.Principal{UserID: "root", Admin: true}
	logger := slog.New(slog.DiscardHandler)
	now := time.Date(2026, time.June, 15, 13, 17, 0, 0, time.UTC)
	if err := seedDemo(ctx, m, clock, now, logger); err != nil {
		t.Fatal(err)
	}
	ts, err := m.Templates(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	type plan struct {
		limit                           string
		period                          budget.Period
		enforce, visible, modify, reset bool
	}
	got := map[string]plan{}
	for _, tp := range ts {
		got[tp.Name] = plan{tp.Limit.String(), tp.Period, tp.Enforce, tp.Visible, tp.CanModify, tp.CanReset}
	}
	want := map[string]plan{
		"intern":     {"5", budget.Weekly, true, true, false, false},
		"researcher": {"200", budget.Monthly, true, true, true, false},
	}
	if !maps.Equal(got, want) {
		t.Errorf("demo templates %+v, want %+v", got, want)
	}

	// An admin changes the intern's limit; the next -demo start keeps it.
	seven := budget.MustAmount("7")
	if _, err := m.SaveTemplate(ctx, admin, "intern", budget.SettingsUpdate{Limit: &seven}); err != nil {
		t.Fatal(err)
	}
	if err := seedDemo(ctx, m, clock, now, logger); err != nil {
		t.Fatal(err)
	}
	if tp, err := m.Template(ctx, admin, "intern"); err != nil || !tp.Limit.Equal(seven) {
		t.Errorf("intern after a second -demo start: %v, %v; want the admin's $7", tp.Limit, err)
	}
}

// TestShutdownFinishesRequests checks the graceful shutdown: a request in
// flight when the signal comes is answered, new connections are refused,
// and run returns only after that.
func TestShutdownFinishesRequests(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, "-db", filepath.Join(dir, "budget.db"), "-tokens", writeTokens(t, dir))

	// A PUT whose body the client holds back: with Expect: 100-continue,
	// the server's 100 Continue says the handler is reading the body. The
	// admin changes their own thresholds (a regular user needs "can
	// modify" for that).
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPut, srv.base+"/api/v1/budget/settings", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Expect", "100-continue")
	reading := make(chan struct{})
	var once sync.Once
	req = req.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got100Continue: func() { once.Do(func() { close(reading) }) },
	}))
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	type result struct {
		resp *http.Response
		body []byte
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := client.Do(req)
		var body []byte
		if err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		res <- result{resp, body, err}
	}()
	select {
	case <-reading:
	case r := <-res:
		t.Fatalf("PUT /settings finished early: %v", r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("no 100 Continue")
	}

	srv.cancel()
	srv.out.wait(t, regexp.MustCompile(`msg="shutting down"`), srv)

	// New connections are soon refused (the listener closes once Shutdown
	// starts, just after the log line), while the request is in flight.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		resp, err := fresh.Get(srv.base + "/api/v1/budget/status")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("new requests still served during shutdown: %s", resp.Status)
		}
	}
	select {
	case <-srv.done:
		t.Fatalf("run returned %v with a request in flight", srv.err)
	default:
	}

	// The request completes, then run returns.
	if _, err := io.WriteString(pw, `{"alert_threshold_yellow": "70"}`); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	r := <-res
	if r.err != nil || r.resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /settings during shutdown: %v %v: %s", r.resp, r.err, r.body)
	}
	if !strings.Contains(string(r.body), `"alert_threshold_yellow":"70"`) {
		t.Errorf("PUT /settings: %s", r.body)
	}
	select {
	case <-srv.done:
		if srv.err != nil {
			t.Fatalf("run: %v", srv.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after the last request")
	}
}

// TestServerDashboard: the dashboard is mounted at /dashboard/, its pages
// load without a token (they ask for one) and never put one in a URL.
func TestServerDashboard(t *testing.T) {
	srv := startServer(t, "-db", filepath.Join(t.TempDir(), "budget.db"))
	if !strings.Contains(srv.out.String(), srv.base+"/dashboard/budget") {
		t.Errorf("the welcome text does not give the dashboard's address:\n%s", srv.out.String())
	}
	if regexp.MustCompile(`/dashboard/\S*bgt_`).MatchString(srv.out.String()) {
		t.Errorf("a token is printed in a dashboard URL:\n%s", srv.out.String())
	}
	for _, tc := range []struct{ path, ctype string }{
		{"/dashboard/budget", "text/html"},
		{"/dashboard/admin/budget", "text/html"},
		{"/dashboard/assets/user.js", "text/javascript"},
		{"/dashboard/assets/style.css", "text/css"},
	} {
		resp, body := get(t, srv.base+tc.path, "")
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) {
			t.Errorf("GET %s: %s %s", tc.path, resp.Status, resp.Header.Get("Content-Type"))
			continue
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: CSP %q", tc.path, csp)
		}
		if tc.ctype == "text/html" && !strings.Contains(string(body), `content="/api/v1/budget"`) {
			t.Errorf("GET %s: the page does not point at /api/v1/budget", tc.path)
		}
	}
	if resp, _ := get(t, srv.base+"/dashboard/nope", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /dashboard/nope: %s", resp.Status)
	}

	// The site's root sends a browser to the user's page; nothing else
	// outside the API and the dashboard is served.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, _ := http.NewRequest(method, srv.base+"/", nil)
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/dashboard/budget" {
			t.Errorf("%s /: %s to %q, want 302 to /dashboard/budget", method, resp.Status, resp.Header.Get("Location"))
		}
	}
	if resp, body := get(t, srv.base+"/", ""); resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/dashboard/budget" || !strings.Contains(string(body), "user.js") {
		t.Errorf("GET / followed: %s at %s", resp.Status, resp.Request.URL)
	}
	for _, p := range []string{"/index.html", "/nope", "/dashboard"} {
		resp, err := noFollow.Get(srv.base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusFound && resp.Header.Get("Location") == "/dashboard/budget" {
			t.Errorf("GET %s redirects to the user's page; only / should", p)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, srv.base+"/", nil)
	if resp, err := noFollow.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %s, want 405", resp.Status)
	}
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkDashboardLoad measures what opening a populated dashboard costs
// the server with -demo data: each op fetches a page, its assets and the API
// calls its script makes on load, one after another as a browser's first
// paint needs them. The target is populated pages within a second.
//
//	go test -run '^$' -bench DashboardLoad ./examples/server/
func BenchmarkDashboardLoad(b *testing.B) {
	dir := b.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	out := newOutput()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-db", filepath.Join(dir, "budget.db"), "-demo", "-tokens", writeTokens(b, dir)}, out)
	}()
	defer func() {
		cancel()
		<-done
	}()
	var base string
	for deadline := time.Now().Add(30 * time.Second); base == "" && time.Now().Before(deadline); {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
			break
		}
		select {
		case <-out.changed:
		case <-time.After(100 * time.Millisecond):
		}
	}
	if base == "" {
		b.Fatalf("the server did not start:\n%s", out.String())
	}
	pages := []struct {
		token string
		paths []string
	}{
		{userToken, []string{"/dashboard/budget", "/dashboard/assets/style.css", "/dashboard/assets/common.js",
			"/dashboard/assets/charts.js", "/dashboard/assets/usage.js", "/dashboard/assets/user.js",
			"/api/v1/budget/status", "/api/v1/budget/me", "/api/v1/budget/settings",
			"/api/v1/budget/usage/breakdown", "/api/v1/budget/usage/history?limit=20"}},
		{adminToken, []string{"/dashboard/admin/budget", "/dashboard/assets/style.css", "/dashboard/assets/common.js",
			"/dashboard/assets/charts.js", "/dashboard/assets/usage.js", "/dashboard/assets/fields.js", "/dashboard/assets/groups.js",
			"/dashboard/assets/admin.js", "/api/v1/budget/admin/list?limit=25", "/api/v1/budget/admin/access",
			"/api/v1/budget/admin/budgets?kind=team&limit=25", "/api/v1/budget/admin/audit?limit=25",
			"/api/v1/budget/admin/defaults", "/api/v1/budget/admin/templates"}},
	}
	fetch := func(path, token string) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %s", path, resp.Status)
		}
	}
	for _, p := range pages {
		name := "user"
		if p.token == adminToken {
			name = "admin"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, path := range p.paths {
					fetch(path, p.token)
				}
			}
		})
	}
}
