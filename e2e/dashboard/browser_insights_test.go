package dashboard_test

// The insights in the browser: the chart of spend per day and the
// forecast sentence, the warning banner at orange and red, and the CSV
// downloads.

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/shopspring/decimal"

	"github.com/llmbudget/budget"
)

// testSpendPerDay: a user with a week of usage sees a bar per day of it
// in the current period, the previous period behind, the limit's pace
// line and the forecast in a sentence; an admin sees the same chart in
// the user's usage.
func testSpendPerDay(t *testing.T, b context.Context) {
	var offset atomic.Int64 // how far the Manager's clock is behind
	now := func() time.Time { return time.Now().Add(-time.Duration(offset.Load())) }
	srv := newBrowserServerAt(t, now)
	ctx := context.Background()
	day := 24 * time.Hour
	wall := time.Now()
	// wendy's periods are 14 days, the current one from 12 days ago.
	offset.Store(int64(20 * day))
	custom, days, anchor := budget.Custom, 14, wall.Add(-26*day).Truncate(time.Hour)
	if _, err := srv.m.UpdateSettings(ctx, root, "wendy", budget.SettingsUpdate{
		Limit: ptrTo(budget.MustAmount("20")), Period: &custom, CustomDays: &days, CustomAnchor: &anchor,
	}); err != nil {
		t.Fatal(err)
	}
	record := func(cost string) {
		t.Helper()
		if _, err := srv.m.Record(ctx, "wendy", budget.Usage{Provider: "openai", Model: "gpt-4o", InputTokens: 1000, OutputTokens: 100, Cost: budget.MustAmount(cost)}); err != nil {
			t.Fatal(err)
		}
	}
	record("3") // in the previous period
	for d := 7; d >= 1; d-- {
		offset.Store(int64(time.Duration(d) * day))
		record("1.25")
	}
	offset.Store(0)
	st, err := srv.m.Status(ctx, "wendy")
	if err != nil || !st.Spent.Equal(budget.MustAmount("8.75")) {
		t.Fatalf("wendy's status: %+v, %v", st, err)
	}

	tb := newTab(t, b, srv)
	tb.open("/dashboard/budget", "tok-wendy")
	tb.waitFor("the chart", `document.querySelectorAll("#daily-chart rect.chart-bar").length === 7`)
	if !eval[bool](tb, `!!document.querySelector("#daily-chart line.chart-pace") && document.querySelectorAll("#daily-chart rect.chart-prev").length === 1`) {
		t.Error("the chart has no pace line, or not the previous period's day")
	}
	titles := eval[[]string](tb, `[...document.querySelectorAll("#daily-chart rect.chart-bar title")].map((t) => t.textContent)`)
	for _, title := range titles {
		if !strings.HasSuffix(title, ": $1.25") {
			t.Errorf("a bar's title: %q", title)
		}
	}
	// One bar per day of the period: 14 days from an anchor that is not
	// on midnight UTC touch 15 dates.
	if n := eval[int](tb, `document.querySelectorAll("#daily-chart g.day").length`); n != 15 {
		t.Errorf("%d days on the chart, want 15", n)
	}
	fc := tb.text("#forecast")
	for _, want := range []string{"At your pace of the last 7 days", "a day", "at about", "of the limit of $20.00"} {
		if !strings.Contains(fc, want) {
			t.Errorf("the forecast sentence %q lacks %q", fc, want)
		}
	}
	if eval[bool](tb, `shown("level-banner")`) {
		t.Error("a banner at green")
	}
	tb.screenshot("insights-user.png")
	// On a phone, drawn again at its width: the page does not overflow.
	tb.run(chromedp.EmulateViewport(narrowW, narrowH))
	tb.open("/dashboard/budget", "tok-wendy")
	tb.waitFor("the narrow chart", `document.querySelectorAll("#daily-chart rect.chart-bar").length === 7`)
	if w := eval[int](tb, `document.querySelector("#daily-chart svg").viewBox.baseVal.width`); w > narrowW {
		t.Errorf("the chart is drawn %d units wide at %d px", w, narrowW)
	}
	tb.noHorizontalOverflow("insights-narrow.png")

	// The admin's view of wendy.
	tb.open("/dashboard/admin/budget", "tok-root")
	tb.click(`button[aria-label="Usage of wendy"]`)
	tb.waitFor("wendy's chart", `document.getElementById("usage").open && document.querySelectorAll("#u-daily rect.chart-bar").length === 7`)
	if got := tb.text("#u-forecast"); !strings.Contains(got, "wendy") || !strings.Contains(got, "a day") {
		t.Errorf("the admin's forecast sentence: %q", got)
	}
	tb.screenshotDialog("usage", "insights-admin.png")
	tb.click("#usage-close")

	// The admin's filter for the users projected over budget: not wendy
	// yet (her pace ends the period at 11.25 of 20), then wendy, once a
	// burst puts her pace past her limit.
	tb.click("#f-projected")
	tb.waitFor("the projected list without wendy", `document.getElementById("f-projected").checked && document.querySelectorAll("#users-body tr").length > 0 && !document.querySelector('button[aria-label="Usage of wendy"]')`)
	record("8") // 16.75 spent; the last week's pace takes her past 20
	tb.click(`#filter-form button[type="submit"]`)
	tb.waitFor("wendy, projected over", `!!document.querySelector('button[aria-label="Usage of wendy"]')`)
}

// testBanner: the banner warns at orange that calls will be refused, and
// at red that they are, with the reset time, above the fold; nothing at
// green.
func testBanner(t *testing.T, b context.Context) {
	srv := newBrowserServer(t)
	ctx := context.Background()
	for _, u := range []struct{ user, limit, spent string }{{"olga", "10", "9.3"}, {"rita", "1", "1.5"}} {
		if _, err := srv.m.UpdateSettings(ctx, root, u.user, budget.SettingsUpdate{Limit: ptrTo(budget.MustAmount(u.limit))}); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.m.Record(ctx, u.user, budget.Usage{Provider: "openai", Model: "gpt-4o", Cost: budget.MustAmount(u.spent)}); err != nil {
			t.Fatal(err)
		}
	}
	tb := newTab(t, b, srv)
	for _, c := range []struct{ token, level, want string }{
		{"tok-olga", "orange", "Calls will be refused when the $0.70 left of your budget (93.0% used) is spent"},
		{"tok-rita", "red", "Calls are being refused until "},
	} {
		tb.open("/dashboard/budget", c.token)
		tb.waitFor("the banner", `shown("level-banner")`)
		if got := tb.text("#level-banner"); !strings.Contains(got, c.want) {
			t.Errorf("%s's banner: %q, want %q", c.token, got, c.want)
		}
		if got := eval[string](tb, `document.getElementById("level-banner").dataset.level`); got != c.level {
			t.Errorf("%s's banner level %q", c.token, got)
		}
		// Visible without scrolling.
		if !eval[bool](tb, `(() => { const r = document.getElementById("level-banner").getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; })()`) {
			t.Errorf("%s's banner is below the fold", c.token)
		}
		tb.screenshot("banner-" + c.level + ".png")
	}
	// The reset time is in the red one.
	st, err := srv.m.Status(ctx, "rita")
	if err != nil {
		t.Fatal(err)
	}
	want := eval[string](tb, `new Date(`+js(st.PeriodEnd.UTC().Format(time.RFC3339))+`).toLocaleString()`)
	if got := tb.text("#level-banner"); !strings.Contains(got, want) {
		t.Errorf("the red banner %q does not say when the budget resets (%s)", got, want)
	}
	tb.open("/dashboard/budget", "tok-alice")
	if eval[bool](tb, `shown("level-banner")`) {
		t.Error("a banner at green")
	}
}

// testCSVDownloads: the download buttons save CSV files the tests parse,
// and the URL a button uses answers the same file.
func testCSVDownloads(t *testing.T, b context.Context) {
	srv := newBrowserServer(t)
	tb := newTab(t, b, srv)
	dir := t.TempDir()
	if _, err := chromedp.Call(tb.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir,
	}); err != nil {
		t.Fatal(err)
	}

	// bob's history: two calls, $9.15.
	tb.open("/dashboard/budget", "tok-bob")
	tb.click("#history-csv")
	rows := readDownload(t, dir, "usage-user-bob.csv")
	if !slices.Equal(rows[0], budget.UsageColumns) || len(rows) != 3 {
		t.Fatalf("bob's history: %q", rows)
	}
	sum := decimal.Zero
	for _, r := range rows[1:] {
		if r[slices.Index(rows[0], "user_id")] != "bob" {
			t.Errorf("row %q", r)
		}
		sum = sum.Add(decimal.RequireFromString(r[slices.Index(rows[0], "cost_usd")]))
	}
	if !sum.Equal(budget.MustAmount("9.15")) {
		t.Errorf("bob's costs sum to %s", sum)
	}
	// The URL the button uses, fetched as the page would.
	text, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`fetch("/api/v1/budget" + document.getElementById("history-csv").dataset.csv,
  {headers: {Authorization: "Bearer " + sessionStorage.getItem(`+js(tokenKey)+`)}}).then((r) => r.text())`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if again, err := csv.NewReader(strings.NewReader(text)).ReadAll(); err != nil || !slices.EqualFunc(again, rows, slices.Equal) {
		t.Errorf("the button's URL answers %q, %v; the download was %q", again, err, rows)
	}

	// The audit log, as the admin page downloads it.
	tb.open("/dashboard/admin/budget", "tok-root")
	tb.waitFor("the audit log", `document.querySelectorAll("#audit-body tr").length > 0`)
	tb.click("#audit-csv")
	rows = readDownload(t, dir, "audit.csv")
	if !slices.Equal(rows[0], budget.AuditColumns) || len(rows) < 5 {
		t.Fatalf("the audit log: %q", rows)
	}
	users := map[string]bool{}
	for _, r := range rows[1:] {
		users[r[slices.Index(rows[0], "user_id")]] = true
	}
	for _, u := range []string{"bob", "carol", "erin", "frank"} {
		if !users[u] {
			t.Errorf("the audit download has no entry of %s: %q", u, rows)
		}
	}
}

// readDownload waits for the file name to be downloaded into dir, and
// parses it as CSV.
func readDownload(t *testing.T, dir, name string) [][]string {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	path := filepath.Join(dir, name)
	for {
		b, err := os.ReadFile(path)
		if err == nil && len(b) > 0 {
			rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
			if err != nil {
				t.Fatalf("%s: %v\n%s", name, err, b)
			}
			os.Remove(path)
			return rows
		}
		if time.Now().After(deadline) {
			entries, _ := os.ReadDir(dir)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Fatalf("no %s downloaded; the directory has %q", name, names)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ptrTo[T any](v T) *T { return &v }
