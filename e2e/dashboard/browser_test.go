package dashboard_test

// Browser tests: the dashboard's pages in a real (headless) Chromium,
// driven through github.com/chromedp/chromedp against an in-process
// server (the budget API over a SQLite store, and the dashboard).
//
// They need Chromium: /usr/bin/chromium, chromium-browser or $CHROME.
// Without one they skip, except on CI ($CI set), where they fail. They
// live in the e2e module, with chromedp, so that the library's go.mod
// does not need it; run them from e2e/ with go test ./dashboard.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/shopspring/decimal"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/dashboard"
	"github.com/llmbudget/budget/httpapi"
	"github.com/llmbudget/budget/store/sqlite"
)

// The tokens of the test server, by principal.
var browserTokens = map[string]budget.Principal{
	"tok-root":  {UserID: "root", Admin: true},
	"tok-alice": {UserID: "alice"},
	"tok-bob":   {UserID: "bob"},
	"tok-carol": {UserID: "carol"},
	"tok-dave":  {UserID: "dave"},
	"tok-grace": {UserID: "grace"},
	"tok-wendy": {UserID: "wendy"}, // a week of usage (browser_insights_test.go)
	"tok-olga":  {UserID: "olga"},  // at orange
	"tok-rita":  {UserID: "rita"},  // at red, refused
}

// The sessionStorage key of the token (common.js's TOKEN_KEY).
const tokenKey = "llmbudget.dashboard.token"

const (
	desktopW, desktopH = 1280, 900
	narrowW, narrowH   = 375, 812
	waitTimeout        = 10 * time.Second
)

// findChrome returns the path of a Chromium to drive, or skips the test
// (fails it on CI) when there is none.
func findChrome(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROME"); p != "" {
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
		t.Fatalf("$CHROME is %q, which is not an executable", p)
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium found on CI: install it (apt-get install -y chromium) or set CHROME")
	}
	t.Skip("no Chromium found: apt-get install -y chromium, or set CHROME")
	return ""
}

// browserServer is the test's server: the API at /api/v1/budget/ and the
// dashboard at /dashboard/, over a Manager the test can seed and inspect.
type browserServer struct {
	url string
	m   *budget.Manager
}

func newBrowserServer(t *testing.T) *browserServer {
	t.Helper()
	return newBrowserServerAt(t, nil)
}

// newBrowserServerAt is newBrowserServer with the Manager's clock now
// (nil: the time), for tests that record usage in the past.
func newBrowserServerAt(t *testing.T, now func() time.Time) *browserServer {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "budget.db"), sqlite.Options{Durability: sqlite.DurabilityNormal})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	m := budget.NewManager(st, budget.Options{Now: now, IsAdmin: func(id string) bool { return id == "root" }})
	api, err := httpapi.New(m, httpapi.Options{
		Authenticate: func(r *http.Request) (budget.Principal, error) {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if p, known := browserTokens[tok]; ok && known {
				return p, nil
			}
			return budget.Principal{}, errors.New("unknown token")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	dash, err := dashboard.New(dashboard.Options{APIBase: "/api/v1/budget"})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/budget/", http.StripPrefix("/api/v1/budget", api))
	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", dash))
	srv := httptest.NewServer(mux) // on loopback
	t.Cleanup(srv.Close)
	s := &browserServer{url: srv.URL, m: m}
	s.seed(t)
	return s
}

// seed gives a few users plans and usage, so that the pages look like a
// service in use.
func (s *browserServer) seed(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	root := budget.Principal{UserID: "root", Admin: true}
	amount := func(v string) *decimal.Decimal { a := budget.MustAmount(v); return &a }
	str := func(v string) *string { return &v }
	weekly := budget.Weekly
	for user, u := range map[string]budget.SettingsUpdate{
		"bob":   {Limit: amount("12"), Timezone: str("Europe/London"), AdminNotes: str("research team")},
		"carol": {Limit: amount("4"), Timezone: str("America/New_York")},
		"erin":  {Limit: amount("5"), AdminNotes: str("contractor, capped")},
		"frank": {Limit: amount("10"), Period: &weekly},
	} {
		if _, err := s.m.UpdateSettings(ctx, root, user, u); err != nil {
			t.Fatal(err)
		}
	}
	type call struct {
		provider, model string
		in, out         int64
		cost            string
	}
	usage := map[string][]call{
		"alice": {{"openai", "gpt-4o", 12000, 900, "0.039"}, {"anthropic", "claude-sonnet-4", 30000, 2000, "0.12"}, {"openai", "gpt-4o-mini", 8000, 700, "0.0016"}, {"anthropic", "claude-3-5-haiku", 50000, 4000, "0.056"}},
		"bob":   {{"openai", "gpt-4o", 900000, 60000, "2.85"}, {"anthropic", "claude-sonnet-4", 1400000, 140000, "6.30"}},
		"carol": {{"anthropic", "claude-sonnet-4", 700000, 90000, "3.45"}},
		"dave":  {{"openai", "gpt-4o-mini", 20000, 3000, "0.0048"}},
		"erin":  {{"openai", "gpt-4o", 1500000, 120000, "4.95"}, {"anthropic", "claude-sonnet-4", 150000, 10000, "0.60"}},
		"frank": {{"anthropic", "claude-3-5-haiku", 6000000, 500000, "6.80"}, {"openai", "gpt-4o-mini", 6000000, 800000, "1.38"}},
	}
	for user, calls := range usage {
		for _, c := range calls {
			if _, err := s.m.Record(ctx, user, budget.Usage{
				Provider: c.provider, Model: c.model, InputTokens: c.in, OutputTokens: c.out,
				Cost: budget.MustAmount(c.cost),
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// tab is one browser tab and what it has seen: console messages,
// exceptions, CSP violations and JavaScript dialogs.
type tab struct {
	t   *testing.T
	ctx context.Context
	srv *browserServer

	mu       sync.Mutex
	problems []string // CSP violations, exceptions, console errors
	dialogs  []string
	expected []string // URLs, in part, whose failed loads are expected
}

// expectFailedLoad tells the tab that the browser's "Failed to load
// resource" errors for URLs containing part are expected: an API answer
// of 403 or 404 that the page handles.
func (tb *tab) expectFailedLoad(part string) {
	tb.mu.Lock()
	tb.expected = append(tb.expected, part)
	tb.mu.Unlock()
}

// expectedFailure reports whether a network log entry is a failed load
// the test said to expect.
func (tb *tab) expectedFailure(e *log.Entry) bool {
	if e.Source != log.EntrySourceNetwork {
		return false
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, part := range tb.expected {
		if strings.Contains(e.URL, part) {
			return true
		}
	}
	return false
}

// newTab opens a tab that fails t, at the end, on any CSP violation,
// exception, console error or dialog.
func newTab(t *testing.T, browser context.Context, srv *browserServer) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, 30*time.Second)
	t.Cleanup(cancelT)
	tb := &tab{t: t, ctx: ctx, srv: srv}
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *page.EventJavascriptDialogOpening:
			tb.mu.Lock()
			tb.dialogs = append(tb.dialogs, string(ev.Type)+": "+ev.Message)
			tb.mu.Unlock()
			// Dismiss it, or the page stays blocked (not from the
			// listener: it must not run commands).
			go chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := cdp.Call(ctx, tg, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{})
				return err
			}))
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range ev.Args {
				if a.Value != nil {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			text := strings.Join(parts, " ")
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert || strings.Contains(text, "Content Security Policy") {
				tb.problem("console." + string(ev.Type) + ": " + text)
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil {
				text += " " + d.Exception.Description
			}
			tb.problem("exception: " + text)
		case *log.EventEntryAdded:
			e := ev.Entry
			if strings.HasSuffix(e.URL, "/favicon.ico") {
				break // asked for by the non-HTML document open uses
			}
			if tb.expectedFailure(e) {
				break
			}
			if e.Level == log.EntryLevelError || strings.Contains(e.Text, "Content Security Policy") || e.Source == log.EntrySourceSecurity {
				tb.problem("log (" + string(e.Source) + ", " + string(e.Level) + "): " + e.Text + " " + e.URL)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every document reports its CSP violations to the console, where the
	// listener above sees them (the browser logs most of them too, but not
	// necessarily all).
	tb.run(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `document.addEventListener("securitypolicyviolation", (e) => {
  console.error("Content Security Policy violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "(inline)"));
});
// shown(id) is for the tests: whether the element #id is rendered at all
// (its hidden attribute or its CSS can hide it).
window.shown = (id) => { const e = document.getElementById(id); return !!e && e.getClientRects().length > 0; };`,
		})
		return err
	}), chromedp.EmulateViewport(desktopW, desktopH))
	t.Cleanup(tb.check)
	return tb
}

func (tb *tab) problem(s string) {
	tb.mu.Lock()
	tb.problems = append(tb.problems, s)
	tb.mu.Unlock()
}

// check fails the test on what the tab saw that it should not have.
func (tb *tab) check() {
	tb.t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, p := range tb.problems {
		tb.t.Errorf("in the browser: %s", p)
	}
	for _, d := range tb.dialogs {
		tb.t.Errorf("a JavaScript dialog opened: %s", d)
	}
}

func (tb *tab) run(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		tb.t.Fatal(err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitFor waits until a JavaScript expression is true.
func (tb *tab) waitFor(what, expr string) {
	tb.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) || tb.ctx.Err() != nil {
			body, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
			tb.t.Fatalf("waiting for %s (%s): err %v; the page says:\n%s", what, expr, err, body)
		}
		time.Sleep(40 * time.Millisecond)
	}
}

// open loads a dashboard page signed in with token, set in
// sessionStorage the way the login box stores it, and waits for its data.
func (tb *tab) open(pagePath, token string) {
	tb.t.Helper()
	tb.load(pagePath, token)
	tb.waitFor("the page to load its data", `!document.getElementById("app").hidden && document.querySelector("#status-body dl, #users-body tr")`)
}

// load loads a dashboard page signed in with token, and does not wait.
func (tb *tab) load(pagePath, token string) {
	tb.t.Helper()
	tb.run(
		// Any document of the origin will do to reach its sessionStorage.
		chromedp.Navigate(tb.srv.url+"/dashboard/assets/style.css"),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[any]("sessionStorage.setItem("+strconv.Quote(tokenKey)+", "+strconv.Quote(token)+")")(ctx, tg)
			return err
		}),
		chromedp.Navigate(tb.srv.url+pagePath),
	)
}

func (tb *tab) text(sel string) string {
	tb.t.Helper()
	return eval[string](tb, "document.querySelector("+strconv.Quote(sel)+").textContent")
}

// noHorizontalOverflow checks the page at a phone's width.
func (tb *tab) noHorizontalOverflow(name string) {
	tb.t.Helper()
	tb.run(chromedp.EmulateViewport(narrowW, narrowH))
	defer tb.run(chromedp.EmulateViewport(desktopW, desktopH))
	tb.waitFor("the narrow layout", "document.documentElement.clientWidth === "+strconv.Itoa(narrowW))
	type widths struct {
		Scroll  int      `json:"scroll"`
		Client  int      `json:"client"`
		Culprit []string `json:"culprit"`
	}
	w := eval[widths](tb, `(() => {
  const d = document.documentElement;
  const culprit = [];
  for (const e of document.body.querySelectorAll("*")) {
    const r = e.getBoundingClientRect();
    if (r.width && r.right > d.clientWidth + 0.5) culprit.push(e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className && typeof e.className === "string" ? "." + e.className.split(" ").join(".") : "") + " right=" + Math.round(r.right));
  }
  return {scroll: d.scrollWidth, client: d.clientWidth, culprit: culprit.slice(0, 10)};
})()`)
	if w.Scroll > w.Client {
		tb.t.Errorf("%s at %d px: scrollWidth %d > clientWidth %d; past the edge: %v", name, narrowW, w.Scroll, w.Client, w.Culprit)
	}
}

// updateScreenshots makes the browser test write its screenshots over the
// README's, in the dashboard package's testdata/screenshots
// (screenshotDir); otherwise they go to $TMPDIR/budget-dashboard-screenshots,
// so that a test run leaves the tree as it found it. From e2e/:
//
//	go test ./dashboard -run Browser -update-screenshots
var updateScreenshots = flag.Bool("update-screenshots", false, "write the browser test's screenshots to dashboard/testdata/screenshots")

// screenshotDir is where the README's screenshots are: the dashboard
// package's testdata, from this directory (e2e/dashboard).
var screenshotDir = filepath.Join("..", "..", "dashboard", "testdata", "screenshots")

// screenshot saves the whole page, at the desktop width, as name: in
// screenshotDir with -update-screenshots, else outside the tree (logged).
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatal(err)
	}
	tb.savePNG(name, png)
}

// screenshotDialog saves the open dialog #id whole, at the desktop width,
// as name (where screenshot saves): the viewport grows for the time of
// the shot so that the dialog need not scroll.
func (tb *tab) screenshotDialog(id, name string) {
	tb.t.Helper()
	// The page at its top: the dialog is fixed, and the shot's clip is
	// the element's box in the page.
	h := eval[int](tb, `(() => { window.scrollTo(0, 0); const d = document.getElementById(`+strconv.Quote(id)+`); d.scrollTop = 0; return d.scrollHeight; })()`)
	tb.run(chromedp.EmulateViewport(desktopW, int64(max(desktopH, h+40))))
	defer tb.run(chromedp.EmulateViewport(desktopW, desktopH))
	tb.waitFor("the dialog unscrolled", `(() => { const d = document.getElementById(`+strconv.Quote(id)+`); return d.scrollHeight <= d.clientHeight; })()`)
	png, err := chromedp.Run(tb.ctx, chromedp.Screenshot(chromedp.ID(id)))
	if err != nil {
		tb.t.Fatal(err)
	}
	tb.savePNG(name, png)
}

// savePNG writes a screenshot: in screenshotDir with -update-screenshots,
// else outside the tree (logged).
func (tb *tab) savePNG(name string, png []byte) {
	tb.t.Helper()
	dir := screenshotDir
	if !*updateScreenshots {
		dir = filepath.Join(os.TempDir(), "budget-dashboard-screenshots")
		defer tb.t.Logf("screenshot: %s", filepath.Join(dir, name))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// focused describes the element that has the focus, and whether it shows
// a focus indicator (an outline or a box shadow).
type focused struct {
	ID        string `json:"id"`
	Label     string `json:"label"`
	Tag       string `json:"tag"`
	Indicator bool   `json:"indicator"`
	Style     string `json:"style"`
}

func (f focused) String() string {
	s := f.Tag
	if f.ID != "" {
		s += "#" + f.ID
	}
	if f.Label != "" {
		s += "[" + f.Label + "]"
	}
	return s
}

// focus returns what has the focus.
func (tb *tab) focus() focused {
	tb.t.Helper()
	return eval[focused](tb, `(() => {
  const e = document.activeElement;
  if (!e) return {id: "", label: "", tag: "", indicator: false, style: ""};
  const cs = getComputedStyle(e);
  const outline = cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) > 0;
  const shadow = cs.boxShadow !== "none" && cs.boxShadow !== "";
  return {id: e.id || "", label: e.getAttribute("aria-label") || "", tag: e.tagName.toLowerCase(),
    indicator: outline || shadow, style: "outline " + cs.outlineStyle + " " + cs.outlineWidth + " " + cs.outlineColor + ", box-shadow " + cs.boxShadow};
})()`)
}

// tabTo presses Tab, and only Tab, until what has the focus satisfies
// want, at most maxTabs times. Each control it passes must show a focus
// indicator. It returns the controls passed, the last one included.
func (tb *tab) tabTo(what string, want func(focused) bool) []focused {
	tb.t.Helper()
	const maxTabs = 60
	var path []focused
	for range maxTabs {
		tb.run(chromedp.KeyEvent(kb.Tab))
		f := tb.focus()
		path = append(path, f)
		if f.Tag != "body" && !f.Indicator {
			tb.t.Errorf("%s has the keyboard focus but shows no focus indicator (%s)", f, f.Style)
		}
		if want(f) {
			return path
		}
	}
	tb.t.Fatalf("%d presses of Tab did not reach %s; the focus went through %v", maxTabs, what, path)
	return nil
}

func TestBrowser(t *testing.T) {
	chrome := findChrome(t)
	start := time.Now()
	srv := newBrowserServer(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(desktopW, desktopH),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	// Start the browser now, so that its start-up is not charged to the
	// first subtest.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting %s: %v", chrome, err)
	}
	t.Logf("browser started in %v", time.Since(start).Round(time.Millisecond))

	t.Run("ViewOnlyUserSignsIn", func(t *testing.T) {
		tb := newTab(t, browser, srv)
		tb.run(chromedp.Navigate(srv.url + "/dashboard/budget"))
		tb.waitFor("the login box", `!document.getElementById("login").hidden`)
		// Sign in through the login box.
		tb.run(
			chromedp.SendKeys(chromedp.ID("login-token"), "tok-alice", chromedp.NodeVisible),
			chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`), chromedp.NodeVisible),
		)
		tb.waitFor("the status", `!document.getElementById("app").hidden && document.querySelector("#status-body dl")`)
		if got := eval[string](tb, "sessionStorage.getItem("+strconv.Quote(tokenKey)+")"); got != "tok-alice" {
			t.Errorf("sessionStorage holds %q, want the token", got)
		}
		status := tb.text("#status-body")
		for _, want := range []string{"Spent", "$0.22", "Limit", "$30.00", "Remaining", "Healthy"} {
			if !strings.Contains(status, want) {
				t.Errorf("the status lacks %q: %s", want, status)
			}
		}
		tb.waitFor("the history", `document.querySelectorAll("#history-body tr").length === 4`)
		// View-only: everything, alert thresholds included, needs "can
		// modify": disabled, and says so.
		for _, id := range []string{"s-limit", "s-period", "s-days", "s-tz", "s-enforce", "s-yellow", "s-orange", "s-red"} {
			if !eval[bool](tb, `document.getElementById("`+id+`").disabled`) {
				t.Errorf("#%s is editable by a view-only user", id)
			}
		}
		if !strings.Contains(tb.text("#settings-form"), "Only your administrator can change this.") {
			t.Error("the locked fields do not say why")
		}
		if eval[bool](tb, `shown("reset-area") || shown("settings-save")`) {
			t.Error("a view-only user without the reset permission is offered a reset or a save")
		}
		tb.screenshot("user.png")
		tb.noHorizontalOverflow("the user page")
	})

	t.Run("AdminGrantsModifyThenUserChangesLimit", func(t *testing.T) {
		admin := newTab(t, browser, srv)
		admin.open("/dashboard/admin/budget", "tok-root")
		admin.run(chromedp.Click(chromedp.CSS(`button[aria-label="Configure bob"]`), chromedp.NodeVisible))
		admin.waitFor("the configure dialog", `document.getElementById("configure").open && document.getElementById("c-user_can_modify_limit")`)
		if eval[bool](admin, `document.getElementById("c-user_can_modify_limit").checked`) {
			t.Fatal("bob can already modify his limit")
		}
		admin.run(
			chromedp.Click(chromedp.ID("c-user_can_modify_limit"), chromedp.NodeVisible),
			chromedp.Click(chromedp.CSS(`#configure-form button[type="submit"]`), chromedp.NodeVisible),
		)
		admin.waitFor("the save", `document.getElementById("message").textContent === "Saved the budget of bob."`)
		if s, err := srv.m.Settings(context.Background(), "bob"); err != nil || !s.Permissions.CanModify {
			t.Fatalf("after the grant: %+v, %v", s.Permissions, err)
		}

		user := newTab(t, browser, srv)
		user.open("/dashboard/budget", "tok-bob")
		if eval[bool](user, `document.getElementById("s-limit").disabled`) {
			t.Fatal("the limit is still disabled after the grant")
		}
		// Select what the field holds, so that typing replaces it.
		eval[any](user, `void document.getElementById("s-limit").select()`)
		user.run(
			chromedp.SendKeys(chromedp.ID("s-limit"), "45", chromedp.NodeVisible),
			chromedp.Click(chromedp.ID("settings-save"), chromedp.NodeVisible),
		)
		user.waitFor("the save", `document.getElementById("message").textContent === "Settings saved."`)
		user.waitFor("the new limit in the status", `document.getElementById("status-body").textContent.includes("$45.00")`)
		s, err := srv.m.Settings(context.Background(), "bob")
		if err != nil || !s.Limit.Equal(budget.MustAmount("45")) {
			t.Errorf("bob's limit after the save: %v, %v", s.Limit, err)
		}
	})

	t.Run("AdminResetInAuditLog", func(t *testing.T) {
		tb := newTab(t, browser, srv)
		tb.open("/dashboard/admin/budget", "tok-root")
		const reason = "browser test: refund of a runaway job"
		tb.run(chromedp.Click(chromedp.CSS(`button[aria-label="Reset carol"]`), chromedp.NodeVisible))
		tb.waitFor("the reset dialog", `document.getElementById("reset").open`)
		tb.run(
			chromedp.SendKeys(chromedp.ID("r-reason"), reason, chromedp.NodeVisible),
			chromedp.Click(chromedp.CSS(`#reset-form button[type="submit"]`), chromedp.NodeVisible),
		)
		tb.waitFor("the reset", `document.getElementById("message").textContent === "Reset the budget of carol."`)
		tb.waitFor("the audit entry", `[...document.querySelectorAll("#audit-body tr")].some((r) => r.textContent.includes(`+strconv.Quote(reason)+`))`)
		row := eval[[]string](tb, `[...[...document.querySelectorAll("#audit-body tr")].find((r) => r.textContent.includes(`+strconv.Quote(reason)+`)).cells].map((c) => c.textContent)`)
		if len(row) != 7 || row[1] != "carol" || row[2] != "Manual reset" || row[3] != "root (admin)" || row[4] != reason || row[5] != "new period, same limit" || row[6] != "$3.45" {
			t.Errorf("the audit row of the reset: %q", row)
		}
		// The list shows carol back at nothing spent.
		tb.waitFor("carol's row at $0.00", `[...document.querySelectorAll("#users-body tr")].some((r) => r.cells[1].textContent.startsWith("carol") && r.cells[3].textContent === "$0.00")`)
	})

	t.Run("AdminOverview", func(t *testing.T) {
		// After the subtests above the audit log has entries of each kind:
		// the admin page's screenshot, and its narrow layout. Two templates
		// show what the section looks like in use.
		ctx := context.Background()
		root := budget.Principal{UserID: "root", Admin: true}
		five, twoHundred := budget.MustAmount("5"), budget.MustAmount("200")
		weekly, monthly, yes, no := budget.Weekly, budget.Monthly, true, false
		for name, u := range map[string]budget.SettingsUpdate{
			"intern":     {Limit: &five, Period: &weekly, CanModify: &no},
			"researcher": {Limit: &twoHundred, Period: &monthly, CanModify: &yes},
		} {
			if _, err := srv.m.SaveTemplate(ctx, root, name, u); err != nil {
				t.Fatal(err)
			}
		}
		// A team, with bob in it and a cap he spent some of, for the
		// teams' section.
		forty := budget.MustAmount("40")
		caps := []budget.ModelCap{{Pattern: "gpt-4o*", Limit: budget.MustAmount("10")}}
		if _, err := srv.m.UpdateBudget(ctx, root, budget.Team("research"), budget.SettingsUpdate{Limit: &forty, ModelCaps: &caps}); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.m.SetMembership(ctx, root, "bob", budget.Membership{Teams: []string{"research"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.m.Record(ctx, "bob", budget.Usage{Provider: "openai", Model: "gpt-4o", InputTokens: 400000, OutputTokens: 20000, Cost: budget.MustAmount("1.2")}); err != nil {
			t.Fatal(err)
		}
		tb := newTab(t, browser, srv)
		tb.open("/dashboard/admin/budget", "tok-root")
		tb.waitFor("every user", `document.querySelectorAll("#users-body tr").length === 6 && document.querySelectorAll("#audit-body tr").length > 1`)
		tb.waitFor("the team", `document.querySelector('#groups-body tr[data-id="research"]')`)
		if got := tb.text("#sum-over"); got != "1" {
			t.Errorf("users over budget: %q, want 1 (erin)", got)
		}
		tb.screenshot("admin.png")
		tb.noHorizontalOverflow("the admin page")
	})

	t.Run("AdminNoteIsText", func(t *testing.T) {
		tb := newTab(t, browser, srv)
		tb.open("/dashboard/admin/budget", "tok-root")
		const note = `<img src=x onerror=alert(1)>`
		tb.run(chromedp.Click(chromedp.CSS(`button[aria-label="Configure dave"]`), chromedp.NodeVisible))
		tb.waitFor("the configure dialog", `document.getElementById("configure").open`)
		tb.run(
			chromedp.SendKeys(chromedp.ID("c-notes"), note, chromedp.NodeVisible),
			chromedp.Click(chromedp.CSS(`#configure-form button[type="submit"]`), chromedp.NodeVisible),
		)
		tb.waitFor("the save", `document.getElementById("message").textContent === "Saved the budget of dave."`)
		if s, err := srv.m.Settings(context.Background(), "dave"); err != nil || s.AdminNotes != note {
			t.Fatalf("dave's notes: %q, %v", s.AdminNotes, err)
		}
		tb.waitFor("the note in the list", `[...document.querySelectorAll("#users-body th")].some((c) => c.textContent.includes(`+strconv.Quote(note)+`))`)
		// Give an image's error handler, had one been created, time to run.
		time.Sleep(300 * time.Millisecond)
		visible := eval[bool](tb, `document.getElementById("users-body").innerText.includes(`+strconv.Quote(note)+`)`)
		if !visible {
			t.Error("the note's literal text is not visible in the list")
		}
		if n := eval[int](tb, `document.getElementsByTagName("img").length`); n != 0 {
			t.Errorf("the note made %d <img> elements", n)
		}
		// Reopened, the dialog shows the note as it was typed.
		tb.run(chromedp.Click(chromedp.CSS(`button[aria-label="Configure dave"]`), chromedp.NodeVisible))
		tb.waitFor("the configure dialog", `document.getElementById("configure").open && document.getElementById("c-notes").value === `+strconv.Quote(note))
		tb.run(chromedp.Click(chromedp.ID("configure-cancel"), chromedp.NodeVisible))
		tb.waitFor("the dialog to close", `!document.getElementById("configure").open`)
	})

	t.Run("ViolationsAreDetected", func(t *testing.T) {
		// The CSP check above means something only if a violation would
		// be seen: make one, on a tab whose problems are checked here.
		tb := newTab(t, browser, srv)
		tb.open("/dashboard/budget", "tok-dave")
		eval[any](tb, `void document.body.appendChild(Object.assign(document.createElement("script"), {textContent: "1"}))`)
		deadline := time.Now().Add(waitTimeout)
		for {
			tb.mu.Lock()
			seen := fmt.Sprint(tb.problems)
			n := len(tb.problems)
			if strings.Contains(seen, "Content Security Policy") {
				tb.problems = nil
			}
			tb.mu.Unlock()
			if strings.Contains(seen, "Content Security Policy") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("an inline script went unreported (%d problems: %s)", n, seen)
			}
			time.Sleep(40 * time.Millisecond)
		}
	})
	t.Run("KeyboardOnly", func(t *testing.T) {
		// grace may change her limit: set through the Manager.
		ctx := context.Background()
		root := budget.Principal{UserID: "root", Admin: true}
		limit, yes := budget.MustAmount("20"), true
		if _, err := srv.m.UpdateSettings(ctx, root, "grace", budget.SettingsUpdate{Limit: &limit, CanModify: &yes}); err != nil {
			t.Fatal(err)
		}
		tb := newTab(t, browser, srv)
		tb.open("/dashboard/budget", "tok-grace")
		tb.waitFor("the editable limit", `!document.getElementById("s-limit").disabled && document.getElementById("s-limit").value === "20"`)
		// From the top of the page: nothing focused.
		eval[any](tb, `void (document.activeElement && document.activeElement.blur())`)
		if f := tb.focus(); f.Tag != "body" {
			t.Fatalf("after blur, %s has the focus", f)
		}
		path := tb.tabTo("the limit", func(f focused) bool { return f.ID == "s-limit" })
		t.Logf("Tab ×%d to the limit: %v", len(path), path)
		if len(path) == 0 || path[0].String() != "a" {
			t.Errorf("the first Tab stop is %v, want the skip link", path[:1])
		}
		// Chromium selects a text field's content when Tab enters it;
		// make sure, so that typing replaces it.
		if !eval[bool](tb, `(() => { const e = document.getElementById("s-limit"); return e.selectionStart === 0 && e.selectionEnd === e.value.length; })()`) {
			t.Log("Tab left the limit's text unselected; selecting it")
			eval[any](tb, `void document.getElementById("s-limit").select()`)
		}
		tb.run(chromedp.KeyEvent("37.5"))
		if got := eval[string](tb, `document.getElementById("s-limit").value`); got != "37.5" {
			t.Fatalf("the limit field holds %q after typing, want 37.5", got)
		}
		path = tb.tabTo("the save button", func(f focused) bool { return f.ID == "settings-save" })
		t.Logf("Tab ×%d to save: %v", len(path), path)
		tb.run(chromedp.KeyEvent("\r"))
		tb.waitFor("the save", `document.getElementById("message").textContent === "Settings saved."`)
		tb.waitFor("the new limit in the status", `document.getElementById("status-body").textContent.includes("$37.50")`)
		if s, err := srv.m.Settings(ctx, "grace"); err != nil || !s.Limit.Equal(budget.MustAmount("37.5")) {
			t.Errorf("grace's limit after the keyboard save: %v, %v", s.Limit, err)
		}

		// The admin page's configure dialog, by keyboard: Enter opens it,
		// Escape closes it, and the focus goes back to its button.
		admin := newTab(t, browser, srv)
		admin.open("/dashboard/admin/budget", "tok-root")
		eval[any](admin, `void (document.activeElement && document.activeElement.blur())`)
		const conf = "Configure bob"
		path = admin.tabTo("the "+conf+" button", func(f focused) bool { return f.Label == conf })
		t.Logf("Tab ×%d to %q on the admin page", len(path), conf)
		admin.run(chromedp.KeyEvent("\r"))
		admin.waitFor("the configure dialog", `document.getElementById("configure").open && document.getElementById("configure").contains(document.activeElement)`)
		if f := admin.focus(); !f.Indicator {
			t.Errorf("in the dialog, %s has the focus but shows no focus indicator (%s)", f, f.Style)
		}
		if got := admin.text("#configure-h"); got != conf {
			t.Errorf("the dialog's title is %q, want %q", got, conf)
		}
		admin.run(chromedp.KeyEvent(kb.Escape))
		admin.waitFor("the dialog to close", `!document.getElementById("configure").open`)
		admin.waitFor("the focus back on "+conf, `document.activeElement && document.activeElement.getAttribute("aria-label") === `+strconv.Quote(conf))
		if f := admin.focus(); !f.Indicator {
			t.Errorf("back from the dialog, %s shows no focus indicator (%s)", f, f.Style)
		}
	})

	t.Run("StatusWithinASecond", func(t *testing.T) {
		// Signed in, the user page shows the seeded status within 1 s of
		// the navigation's start.
		tb := newTab(t, browser, srv)
		tb.run(
			chromedp.Navigate(srv.url+"/dashboard/assets/style.css"),
			chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := chromedp.Evaluate[any]("sessionStorage.setItem("+strconv.Quote(tokenKey)+", \"tok-alice\")")(ctx, tg)
				return err
			}),
		)
		const within = time.Second
		const spent = `(() => { const dt = [...document.querySelectorAll("#status-body dt")].find((d) => d.textContent === "Spent"); return dt ? dt.nextElementSibling.textContent : ""; })()`
		t0 := time.Now()
		tb.run(chromedp.Navigate(srv.url + "/dashboard/budget"))
		loaded := time.Since(t0)
		for {
			got, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](spent))
			if err == nil && got == "$0.22" {
				break
			}
			if time.Since(t0) > within {
				t.Fatalf("after %v (load event at %v) the spent value reads %q (err %v), want $0.22 within %v", time.Since(t0).Round(time.Millisecond), loaded.Round(time.Millisecond), got, err, within)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("the spent value showed %v after the navigation started (load event at %v)", time.Since(t0).Round(time.Millisecond), loaded.Round(time.Millisecond))
	})

	// The admin flows of browser_admin_test.go, each on a server of its
	// own: they change every user at once.
	t.Run("AccessSwitchOffForRegularUsers", func(t *testing.T) { testAccessSwitch(t, browser) })
	t.Run("ViewOnlyCannotChangeThresholds", func(t *testing.T) { testViewOnlyThresholds(t, browser) })
	t.Run("BulkLimitOnThreeUsers", func(t *testing.T) { testBulkLimit(t, browser) })
	t.Run("TemplateApplied", func(t *testing.T) { testTemplates(t, browser) })
	t.Run("AdminSeesOneUsersUsage", func(t *testing.T) { testUserUsage(t, browser) })
	t.Run("SpendPerDayAndForecast", func(t *testing.T) { testSpendPerDay(t, browser) })
	t.Run("BannerAtOrangeAndRed", func(t *testing.T) { testBanner(t, browser) })
	t.Run("CSVDownloads", func(t *testing.T) { testCSVDownloads(t, browser) })
	t.Run("NarrowAdminReachesLastUser", func(t *testing.T) { testNarrowLastUser(t, browser) })
	// Teams, orgs and model caps (browser_teams_test.go).
	t.Run("TeamWithModelCap", func(t *testing.T) { testTeamWithModelCap(t, browser) })
	t.Run("NarrowTeams", func(t *testing.T) { testNarrowTeams(t, browser) })
	t.Run("TeamsByKeyboard", func(t *testing.T) { testTeamsKeyboard(t, browser) })
	t.Logf("browser tests took %v", time.Since(start).Round(time.Millisecond))
}
