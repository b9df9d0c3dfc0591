package dashboard_test

// The admin flows in the browser: the switch for regular users' budgets,
// view-only users, bulk changes, templates, the audit log, one user's
// usage and the narrow layout. TestBrowser runs them, each on a server of
// its own.

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/llmbudget/budget"
)

var root = budget.Principal{UserID: "root", Admin: true}

// js quotes s as a JavaScript string literal.
func js(s string) string { return strconv.Quote(s) }

// click clicks what sel matches, once it is visible. A page that
// re-renders a list (after a reset, say) can replace the node between the
// query and the click; the click is then retried on the new node, until
// waitTimeout.
func (tb *tab) click(sel string) {
	tb.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		err := chromedp.Do(tb.ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
		if err == nil {
			return
		}
		if !staleNode(err) || time.Now().After(deadline) || tb.ctx.Err() != nil {
			tb.t.Fatalf("clicking %s: %v", sel, err)
		}
		time.Sleep(40 * time.Millisecond)
	}
}

// staleNode reports whether err is the browser saying that a node it was
// given is gone from the document.
func staleNode(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Could not find node with given id") ||
		strings.Contains(msg, "No node with given id") || strings.Contains(msg, "Node is detached")
}

// typeInto replaces the text of the field #id by typing text.
func (tb *tab) typeInto(id, text string) {
	tb.t.Helper()
	eval[any](tb, `void document.getElementById(`+js(id)+`).select()`)
	tb.run(chromedp.SendKeys(chromedp.ID(id), text, chromedp.NodeVisible))
}

// choose picks value in the <select> #id, as a user would.
func (tb *tab) choose(id, value string) {
	tb.t.Helper()
	ok := eval[bool](tb, `(() => {
  const s = document.getElementById(`+js(id)+`);
  if (![...s.options].some((o) => o.value === `+js(value)+`)) return false;
  s.value = `+js(value)+`;
  s.dispatchEvent(new Event("change", {bubbles: true}));
  return true;
})()`)
	if !ok {
		tb.t.Fatalf("#%s has no option %q", id, value)
	}
}

// rows returns the text of each cell of each row of the table body #id.
func (tb *tab) rows(id string) [][]string {
	tb.t.Helper()
	return eval[[][]string](tb, `[...document.getElementById(`+js(id)+`).rows].map((r) => [...r.cells].map((c) => c.innerText.trim()))`)
}

// reachable scrolls a control into view and checks that it is inside the
// viewport and not covered (at the phone's width, in the tests that use
// it).
func (tb *tab) reachable(sel string) {
	tb.t.Helper()
	ok := eval[bool](tb, `(() => {
  const e = document.querySelector(`+js(sel)+`);
  if (!e) return false;
  e.scrollIntoView({block: "center"});
  const r = e.getBoundingClientRect();
  if (r.width === 0 || r.left < 0 || r.right > document.documentElement.clientWidth || r.top < 0 || r.bottom > innerHeight) return false;
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return hit === e || e.contains(hit);
})()`)
	if !ok {
		w := eval[int](tb, `document.documentElement.clientWidth`)
		tb.t.Errorf("%s is out of reach at %d px", sel, w)
	}
}

// settings reads a user's settings through the Manager.
func settingsOf(t *testing.T, srv *browserServer, user string) budget.Settings {
	t.Helper()
	s, err := srv.m.Settings(context.Background(), user)
	if err != nil {
		t.Fatalf("settings of %s: %v", user, err)
	}
	return s
}

// testAccessSwitch: the admin turns budgets off for every regular user
// at once; an existing user's page is off on its next load, the admin's
// own page is not, and Configure still shows one user their budget.
func testAccessSwitch(t *testing.T, browser context.Context) {
	srv := newBrowserServer(t)
	user := newTab(t, browser, srv)
	user.open("/dashboard/budget", "tok-alice")
	if !eval[bool](user, `!shown("nav-admin")`) {
		t.Error("a regular user's page links to the admin page")
	}

	admin := newTab(t, browser, srv)
	admin.open("/dashboard/admin/budget", "tok-root")
	admin.waitFor("the switch", `document.getElementById("access-count").textContent !== ""`)
	if got := admin.text("#access-h"); got != "Budgets for regular users" {
		t.Errorf("the switch's heading: %q", got)
	}
	if got := admin.text("#access-count"); got != "6 of 6 regular users see their budget." {
		t.Errorf("the switch's count: %q", got)
	}
	for _, want := range []string{
		"Regular users don't see their budgets; limits stay enforced as you set them. Admins always see theirs. You can still show or hide one user in Configure.",
	} {
		if got := admin.text("#access-explain"); !strings.Contains(got, want) {
			t.Errorf("the switch does not say %q: %s", want, got)
		}
	}
	if got := eval[string](admin, `document.getElementById("access-switch").getAttribute("aria-checked")`); got != "true" {
		t.Errorf("the switch is %q, want on", got)
	}
	if eval[bool](admin, `!shown("nav-user")`) {
		t.Error("the admin page does not link to the admin's own budget")
	}
	// The switch is the first control after the header's.
	if !eval[bool](admin, `!!(document.getElementById("access").compareDocumentPosition(document.querySelector(".overview")) & Node.DOCUMENT_POSITION_FOLLOWING)`) {
		t.Error("the switch is not at the top of the admin page")
	}

	// Off: the switch asks first, then says what it did.
	admin.click("#access-switch")
	admin.waitFor("the confirmation", `shown("access-confirm")`)
	if got := admin.text("#access-confirm-text"); !strings.Contains(got, "6 regular users who see their budget now will no longer see it") || !strings.Contains(got, "Limits stay enforced") {
		t.Errorf("the confirmation says %q", got)
	}
	if s := settingsOf(t, srv, "alice"); !s.Visible {
		t.Fatal("the switch acted before it was confirmed")
	}
	admin.click("#access-apply")
	admin.waitFor("the result", `document.getElementById("access-result").textContent !== ""`)
	if got := admin.text("#access-result"); got != "Budgets for regular users are now off: 6 users changed." {
		t.Errorf("after the switch: %q", got)
	}
	admin.waitFor("the count", `document.getElementById("access-count").textContent === "0 of 6 regular users see their budget."`)
	if got := eval[string](admin, `document.getElementById("access-switch").getAttribute("aria-checked")`); got != "false" {
		t.Errorf("the switch is %q after turning it off", got)
	}
	ctx := context.Background()
	for _, id := range []string{"alice", "bob", "carol", "dave", "erin", "frank"} {
		if s := settingsOf(t, srv, id); s.Visible || !s.Enforce {
			t.Errorf("%s after the switch: visible %v, enforced %v; want hidden and still enforced", id, s.Visible, s.Enforce)
		}
	}
	if d, err := srv.m.Defaults(ctx); err != nil || d.Visible {
		t.Errorf("the defaults after the switch: visible %v, %v", d.Visible, err)
	}

	// The user's next load shows the off state, and nothing of the budget.
	user.expectFailedLoad("/api/v1/budget/status")
	user.run(chromedp.Reload())
	user.waitFor("the off state", `shown("hidden-page")`)
	if got := user.text("#hidden-page"); !strings.Contains(got, "Your administrator has turned budgets off for your account") {
		t.Errorf("the off state says %q", got)
	}
	if !eval[bool](user, `!shown("app") && !shown("login")`) {
		t.Error("the off state shows the budget or the login box")
	}

	// The admin's own page is not off, and links to the admin page.
	own := newTab(t, browser, srv)
	own.open("/dashboard/budget", "tok-root")
	own.waitFor("the link to the admin page", `shown("nav-admin")`)
	if !eval[bool](own, `!shown("hidden-page")`) {
		t.Error("the admin's own budget is off")
	}
	own.click("#nav-admin")
	own.waitFor("the admin page", `location.pathname === "/dashboard/admin/budget" && shown("app")`)

	// Configure shows one user their budget: the override of the switch.
	admin.click(`button[aria-label="Configure alice"]`)
	admin.waitFor("the configure dialog", `document.getElementById("configure").open && document.getElementById("c-budget_visible_to_user")`)
	if got := admin.text("#c-budget_visible_to_user-label"); !strings.Contains(got, "overrides “Budgets for regular users”") {
		t.Errorf("the per-user checkbox is labelled %q", got)
	}
	if got := admin.text("#c-budget_visible_to_user-hint"); !strings.Contains(got, "is off") {
		t.Errorf("the per-user checkbox's hint: %q", got)
	}
	if eval[bool](admin, `document.getElementById("c-budget_visible_to_user").checked`) {
		t.Error("alice's budget is shown after the switch turned it off")
	}
	admin.click("#c-budget_visible_to_user")
	admin.click(`#configure-form button[type="submit"]`)
	admin.waitFor("the save", `document.getElementById("message").textContent === "Saved the budget of alice."`)
	admin.waitFor("the count", `document.getElementById("access-count").textContent === "1 of 6 regular users sees their budget. 1 shown one by one in Configure."`)
	user.run(chromedp.Reload())
	user.waitFor("alice's budget", `shown("app") && document.querySelector("#status-body dl")`)
	if !eval[bool](user, `!shown("hidden-page")`) {
		t.Error("the off state stays after the admin showed alice her budget")
	}

	// The audit log says what the switch changed, as one bulk change.
	admin.choose("a-type", "defaults")
	admin.waitFor("the defaults entries", `[...document.getElementById("audit-body").rows].every((r) => r.cells[2] && r.cells[2].textContent === "Defaults")`)
	rows := admin.rows("audit-body")
	if len(rows) != 1 || !strings.Contains(rows[0][5], "budget_visible_to_user: true → false") || !strings.Contains(rows[0][5], "bulk change b-") || rows[0][6] != "" {
		t.Errorf("the defaults entries: %q", rows)
	}
}

// testViewOnlyThresholds: a view-only user changes nothing, alert
// thresholds included; with "can reset" and "can modify" a reset can set
// a new limit.
func testViewOnlyThresholds(t *testing.T, browser context.Context) {
	srv := newBrowserServer(t)
	ctx := context.Background()
	yes, no := true, false
	if _, err := srv.m.UpdateSettings(ctx, root, "dave", budget.SettingsUpdate{CanReset: &yes, CanModify: &no}); err != nil {
		t.Fatal(err)
	}
	tb := newTab(t, browser, srv)
	tb.open("/dashboard/budget", "tok-dave")
	for _, id := range []string{"s-yellow", "s-orange", "s-red", "s-limit"} {
		if !eval[bool](tb, `document.getElementById(`+js(id)+`).disabled`) {
			t.Errorf("#%s is editable by a view-only user", id)
		}
		if got := eval[string](tb, `(document.getElementById(`+js(id)+`).closest(".field").querySelector(".locked") || {}).textContent || ""`); got != "Only your administrator can change this." {
			t.Errorf("#%s's note: %q", id, got)
		}
	}
	if !eval[bool](tb, `!shown("settings-actions")`) {
		t.Error("a view-only user is offered to save settings")
	}
	if got := tb.text("#settings-permission"); !strings.HasPrefix(got, "View only") {
		t.Errorf("the permission line: %q", got)
	}
	// May reset, may not modify: a reset, but no new limit with it.
	if eval[bool](tb, `!shown("reset-area")`) {
		t.Error("a user who may reset is not offered a reset")
	}
	if !eval[bool](tb, `!shown("reset-limit-box")`) {
		t.Error("a user who may not modify is offered a new limit with the reset")
	}

	// With "can modify" too, the thresholds open, and a reset may start
	// the new period with a new limit.
	if _, err := srv.m.UpdateSettings(ctx, root, "dave", budget.SettingsUpdate{CanModify: &yes}); err != nil {
		t.Fatal(err)
	}
	tb.run(chromedp.Reload())
	tb.waitFor("editable thresholds", `document.querySelector("#status-body dl") && !document.getElementById("s-red").disabled`)
	tb.click("#reset-open")
	tb.waitFor("the reset form", `shown("reset-form") && shown("reset-limit-box")`)
	tb.typeInto("reset-reason", "new project")
	tb.typeInto("reset-limit", "50")
	tb.click(`#reset-form button[type="submit"]`)
	tb.waitFor("the reset", `document.getElementById("message").textContent === "Budget reset. A new period has started with a limit of $50.00."`)
	tb.waitFor("the new limit in the status", `document.getElementById("status-body").textContent.includes("$50.00")`)
	if s := settingsOf(t, srv, "dave"); !s.Limit.Equal(budget.MustAmount("50")) {
		t.Errorf("dave's limit after the reset: %v", s.Limit)
	}
}

// testBulkLimit: the admin selects three users and changes their limit in
// one request; the audit log shows each change; a filter selects users
// by level; failures are listed by user.
func testBulkLimit(t *testing.T, browser context.Context) {
	srv := newBrowserServer(t)
	ctx := context.Background()
	if _, err := srv.m.Reset(ctx, root, "carol", budget.ResetOptions{Reason: "month-end"}); err != nil {
		t.Fatal(err)
	}
	tb := newTab(t, browser, srv)
	tb.open("/dashboard/admin/budget", "tok-root")
	if !eval[bool](tb, `!shown("bulk")`) {
		t.Error("the bulk form shows with nothing selected")
	}
	for _, id := range []string{"alice", "dave", "frank"} {
		tb.click(`input[aria-label="Select ` + id + `"]`)
	}
	tb.waitFor("the bulk form", `shown("bulk")`)
	if got := tb.text("#select-status"); !strings.HasPrefix(got, "3 users selected.") {
		t.Errorf("the selection says %q", got)
	}
	if got := tb.text("#bulk-apply"); got != "Apply to 3 users" {
		t.Errorf("the bulk button says %q", got)
	}
	tb.typeInto("b-limit", "45")
	tb.click("#bulk-apply")
	tb.waitFor("the result", `document.getElementById("bulk-result").textContent !== ""`)
	if got := tb.text("#bulk-result p"); got != "changed 3 of 3 users." {
		t.Errorf("the bulk result: %q", got)
	}
	for _, id := range []string{"alice", "dave", "frank"} {
		if s := settingsOf(t, srv, id); !s.Limit.Equal(budget.MustAmount("45")) {
			t.Errorf("%s's limit after the bulk change: %v", id, s.Limit)
		}
	}
	if s := settingsOf(t, srv, "bob"); !s.Limit.Equal(budget.MustAmount("12")) {
		t.Errorf("bob, not selected, has the limit %v", s.Limit)
	}

	// The audit log: what changed, for each user, as one bulk change;
	// nothing under "spent before", which is for resets.
	tb.waitFor("the change in the audit log", `document.getElementById("audit-body").innerText.includes("limit_usd: 30 → 45")`)
	var seen int
	for _, r := range tb.rows("audit-body") {
		if len(r) == 7 && (r[1] == "alice" || r[1] == "dave") && strings.Contains(r[5], "limit_usd: 30 → 45") {
			seen++
			if r[2] != "Settings" || !strings.Contains(r[5], "bulk change b-") || r[6] != "" {
				t.Errorf("the audit row of %s: %q", r[1], r)
			}
		}
	}
	if seen != 2 {
		t.Errorf("%d audit rows show alice's and dave's limit_usd: 30 → 45, want 2: %q", seen, tb.rows("audit-body"))
	}
	// The type filter: resets only, with what was spent.
	tb.choose("a-type", "manual")
	tb.waitFor("the resets", `[...document.getElementById("audit-body").rows].every((r) => r.cells.length === 7 && r.cells[2].textContent === "Manual reset")`)
	if rows := tb.rows("audit-body"); len(rows) != 1 || rows[0][1] != "carol" || rows[0][6] != "$3.45" {
		t.Errorf("the manual resets: %q", rows)
	}

	// Every user matching a filter, on every page.
	tb.click("#bulk-clear")
	tb.waitFor("no selection", `!shown("bulk")`)
	tb.choose("f-level", "red")
	tb.waitFor("the red users", `[...document.getElementById("users-body").rows].every((r) => r.cells.length === 7 && r.cells[2].textContent.includes("Over limit"))`)
	red := eval[[]string](tb, `[...document.querySelectorAll("#users-body .uid")].map((e) => e.textContent)`)
	tb.click("#select-matching")
	tb.waitFor("the match selection", `shown("bulk")`)
	if got := tb.text("#select-status"); !strings.HasPrefix(got, "Every user matching the level Over limit is selected") {
		t.Errorf("the selection says %q", got)
	}
	if !eval[bool](tb, `[...document.querySelectorAll("#users-body input.pick")].every((b) => b.checked && b.disabled)`) {
		t.Error("with every matching user selected, a row's box is unchecked or can be changed")
	}
	tb.choose("b-enforce", "false")
	tb.click("#bulk-apply")
	tb.waitFor("the result", `document.getElementById("bulk-result").textContent !== ""`)
	if want := "changed " + strconv.Itoa(len(red)) + " of " + strconv.Itoa(len(red)) + " user"; !strings.HasPrefix(tb.text("#bulk-result p"), want) {
		t.Errorf("the bulk result: %q, want %q…", tb.text("#bulk-result p"), want)
	}
	if len(red) == 0 {
		t.Fatal("no red users to select")
	}
	for _, id := range red {
		if s := settingsOf(t, srv, id); s.Enforce {
			t.Errorf("%s (red) is still enforced", id)
		}
	}
	if s := settingsOf(t, srv, "bob"); !s.Enforce {
		t.Error("bob, not red, lost enforcement")
	}

	// A user a change fails for is listed by name with the reason. (The
	// API's answer is stubbed: the users the list shows all have
	// settings, so none of them fails for real.)
	tb.click("#bulk-clear")
	tb.choose("f-level", "")
	tb.waitFor("every user", `document.querySelector('input[aria-label="Select bob"]')`)
	eval[any](tb, `void (() => {
  const real = window.fetch;
  window.fetch = (url, init) => String(url).endsWith("/admin/bulk")
    ? Promise.resolve(new Response(JSON.stringify({bulk_id: "b-test", changed: 1, results: [
        {user_id: "bob", ok: true, changed: true, settings: {}},
        {user_id: "ghost", ok: false, problem: {title: "Not found", status: 404, detail: "ghost has no budget"}}]}),
      {status: 200, headers: {"Content-Type": "application/json"}}))
    : real(url, init);
})()`)
	tb.click(`input[aria-label="Select bob"]`)
	tb.waitFor("the bulk form", `shown("bulk")`)
	tb.typeInto("b-limit", "13")
	tb.click("#bulk-apply")
	tb.waitFor("the result", `document.getElementById("bulk-result").textContent !== ""`)
	got := tb.text("#bulk-result")
	for _, want := range []string{"changed 1 of 2 users.", "Failed for 1 user (left unchanged):", "ghost: ghost has no budget"} {
		if !strings.Contains(got, want) {
			t.Errorf("the bulk result lacks %q: %s", want, got)
		}
	}
}

// testTemplates: the admin creates a template, applies it to one user
// from Configure and to two from the bulk form, edits and deletes it.
func testTemplates(t *testing.T, browser context.Context) {
	srv := newBrowserServer(t)
	ctx := context.Background()
	tb := newTab(t, browser, srv)
	tb.open("/dashboard/admin/budget", "tok-root")
	tb.waitFor("the templates", `document.getElementById("templates-body").textContent === "No templates yet."`)

	tb.click("#template-new")
	tb.waitFor("the template dialog", `document.getElementById("template").open && document.getElementById("t-limit_usd")`)
	tb.typeInto("t-name", "intern")
	tb.typeInto("t-limit_usd", "5")
	tb.choose("t-budget_period", "weekly")
	if eval[bool](tb, `document.getElementById("t-user_can_modify_limit").checked`) {
		tb.click("#t-user_can_modify_limit")
	}
	tb.click(`#template-form button[type="submit"]`)
	tb.waitFor("the save", `document.getElementById("message").textContent === "Saved the template “intern”."`)
	tb.waitFor("the template in the list", `document.getElementById("templates-body").textContent.includes("intern")`)
	if rows := tb.rows("templates-body"); len(rows) != 1 || rows[0][0] != "intern" || rows[0][1] != "$5.00" || rows[0][2] != "a week" || !strings.Contains(rows[0][4], "view-only") {
		t.Errorf("the templates: %q", rows)
	}

	// One user, from Configure.
	tb.click(`button[aria-label="Configure carol"]`)
	tb.waitFor("the configure dialog", `document.getElementById("configure").open && document.getElementById("c-limit_usd").value === "4"`)
	tb.choose("c-template", "intern")
	tb.click("#c-template-apply")
	tb.waitFor("the template applied", `document.getElementById("c-template-hint").textContent.startsWith("Applied “intern” to carol.")`)
	if got := eval[string](tb, `document.getElementById("c-limit_usd").value`); got != "5" {
		t.Errorf("the dialog shows the limit %q after the template", got)
	}
	tb.click("#configure-cancel")
	if s := settingsOf(t, srv, "carol"); !s.Limit.Equal(budget.MustAmount("5")) || s.Period != budget.Weekly || s.CanModify || s.Timezone != "" && s.Timezone != "UTC" {
		t.Errorf("carol after the template: %+v", s.Plan)
	}

	// Two users, from the bulk form.
	for _, id := range []string{"bob", "erin"} {
		tb.click(`input[aria-label="Select ` + id + `"]`)
	}
	tb.choose("b-template", "intern")
	if !eval[bool](tb, `document.getElementById("b-limit").disabled`) {
		t.Error("the bulk form's fields stay editable with a template chosen")
	}
	tb.click("#bulk-apply")
	tb.waitFor("the result", `document.getElementById("bulk-result").textContent !== ""`)
	if got := tb.text("#bulk-result p"); got != "Applied the template “intern”: changed 2 of 2 users." {
		t.Errorf("the bulk result: %q", got)
	}
	for _, id := range []string{"bob", "erin"} {
		if s := settingsOf(t, srv, id); !s.Limit.Equal(budget.MustAmount("5")) || s.Period != budget.Weekly {
			t.Errorf("%s after the template: %v %s", id, s.Limit, s.Period)
		}
	}
	tb.waitFor("the template in the audit log", `[...document.getElementById("audit-body").rows].some((r) => r.cells[1].textContent === "bob" && r.cells[5].textContent.includes("template “intern” applied"))`)

	// Edit, then delete.
	tb.click(`button[aria-label="Edit template intern"]`)
	tb.waitFor("the template dialog", `document.getElementById("template").open && document.getElementById("t-limit_usd").value === "5"`)
	if !eval[bool](tb, `document.getElementById("t-name").readOnly`) {
		t.Error("a template's name can be edited")
	}
	tb.typeInto("t-limit_usd", "6")
	tb.click(`#template-form button[type="submit"]`)
	tb.waitFor("the edit", `document.getElementById("templates-body").textContent.includes("$6.00")`)
	if tp, err := srv.m.Template(ctx, root, "intern"); err != nil || !tp.Limit.Equal(budget.MustAmount("6")) {
		t.Errorf("the template after the edit: %v, %v", tp.Limit, err)
	}
	tb.click(`button[aria-label="Delete template intern"]`)
	tb.waitFor("the confirmation", `document.getElementById("confirm").open`)
	tb.click("#confirm-ok")
	tb.waitFor("the deletion", `document.getElementById("templates-body").textContent === "No templates yet."`)
	if _, err := srv.m.Template(ctx, root, "intern"); !errors.Is(err, budget.ErrNotFound) {
		t.Errorf("the template after the deletion: %v", err)
	}
	tb.choose("a-type", "template")
	tb.waitFor("the template entries", `[...document.getElementById("audit-body").rows].length === 3 && [...document.getElementById("audit-body").rows].every((r) => r.cells[2].textContent === "Template")`)
	var what []string
	for _, r := range tb.rows("audit-body") {
		what = append(what, r[5])
	}
	if len(what) != 3 || !strings.Contains(what[0], "deleted") || !strings.Contains(what[1], "limit_usd: 5 → 6") || !strings.Contains(what[2], "created") {
		t.Errorf("the template entries say %q", what)
	}
}

// testUserUsage: from a user's row, the admin sees their usage; user IDs
// a path would misread work too.
func testUserUsage(t *testing.T, browser context.Context) {
	srv := newBrowserServer(t)
	ctx := context.Background()
	seven := budget.MustAmount("7")
	odd := []string{"x//y", "team/../root", "a.b"}
	for _, id := range odd {
		if _, err := srv.m.UpdateSettings(ctx, root, id, budget.SettingsUpdate{Limit: &seven}); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.m.Record(ctx, id, budget.Usage{Provider: "openai", Model: "gpt-4o", InputTokens: 100, Cost: budget.MustAmount("0.5")}); err != nil {
			t.Fatal(err)
		}
	}
	tb := newTab(t, browser, srv)
	tb.open("/dashboard/admin/budget", "tok-root")

	// How the page puts a user ID in a path.
	enc, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]string](`import("/dashboard/assets/common.js").then((m) =>
  ["x.y", "x//y", "team/../root", "a b", "ü?#"].map(m.segment))`, chromedp.EvalAwaitPromise))
	if want := []string{"x%2Ey", "x%2F%2Fy", "team%2F%2E%2E%2Froot", "a%20b", "%C3%BC%3F%23"}; err != nil || strings.Join(enc, " ") != strings.Join(want, " ") {
		t.Errorf("segment: %q, %v; want %q", enc, err, want)
	}

	tb.click(`button[aria-label="Usage of bob"]`)
	tb.waitFor("bob's usage", `document.getElementById("usage").open && document.getElementById("usage-body").rows.length === 2 && document.querySelector("#u-by-model svg")`)
	if got := tb.text("#usage-h"); got != "Usage of bob" {
		t.Errorf("the usage dialog's title: %q", got)
	}
	if got := tb.text("#usage-summary"); !strings.Contains(got, "$9.15 over 2 calls") {
		t.Errorf("bob's usage summary: %q", got)
	}
	tb.click("#usage-close")
	tb.waitFor("the dialog to close", `!document.getElementById("usage").open`)

	for _, id := range odd {
		tb.click(`button[aria-label="Usage of ` + id + `"]`)
		tb.waitFor(id+"'s usage", `document.getElementById("usage").open && document.getElementById("usage-body").rows.length === 1 && document.getElementById("usage-summary").textContent.includes("$0.50")`)
		tb.click("#usage-close")
		tb.click(`button[aria-label="Configure ` + id + `"]`)
		tb.waitFor(id+"'s settings", `document.getElementById("configure").open && document.getElementById("c-limit_usd").value === "7"`)
		tb.click("#configure-cancel")
		tb.click(`button[aria-label="Reset ` + id + `"]`)
		tb.waitFor("the reset dialog", `document.getElementById("reset").open`)
		tb.typeInto("r-reason", "path test")
		tb.click(`#reset-form button[type="submit"]`)
		tb.waitFor("the reset of "+id, `document.getElementById("message").textContent === `+js("Reset the budget of "+id+"."))
		if st, err := srv.m.Status(ctx, id); err != nil || !st.Spent.IsZero() {
			t.Errorf("%s after the reset: spent %v, %v", id, st.Spent, err)
		}
	}
}

// testNarrowLastUser: at 375 px the users are cards, and every action of
// the last one is within reach.
func testNarrowLastUser(t *testing.T, browser context.Context) {
	srv := newBrowserServer(t)
	tb := newTab(t, browser, srv)
	tb.run(chromedp.EmulateViewport(narrowW, narrowH))
	tb.open("/dashboard/admin/budget", "tok-root")
	tb.waitFor("the narrow layout", "document.documentElement.clientWidth === "+strconv.Itoa(narrowW))
	if got := eval[string](tb, `getComputedStyle(document.querySelector("#users-body tr")).display`); got != "grid" {
		t.Errorf("a user's row is displayed as %q at %d px, want a card (grid)", got, narrowW)
	}
	last := eval[string](tb, `[...document.querySelectorAll("#users-body .uid")].pop().textContent`)
	if last == "" {
		t.Fatal("no users")
	}
	reachable := tb.reachable
	for _, action := range []string{"Select", "Configure", "Reset", "Usage of", "Audit log of"} {
		reachable(`[aria-label="` + action + ` ` + last + `"]`)
	}

	tb.click(`button[aria-label="Configure ` + last + `"]`)
	tb.waitFor("the configure dialog", `document.getElementById("configure").open && document.getElementById("c-limit_usd").value !== ""`)
	if got := tb.text("#configure-h"); got != "Configure "+last {
		t.Errorf("the dialog's title: %q", got)
	}
	reachable(`#configure-form button[type="submit"]`)
	tb.click("#configure-cancel")
	tb.waitFor("the dialog to close", `!document.getElementById("configure").open`)

	tb.click(`button[aria-label="Reset ` + last + `"]`)
	tb.waitFor("the reset dialog", `document.getElementById("reset").open`)
	reachable(`#reset-form button[type="submit"]`)
	tb.typeInto("r-reason", "phone test")
	tb.typeInto("r-limit", "25")
	tb.click(`#reset-form button[type="submit"]`)
	tb.waitFor("the reset", `document.getElementById("message").textContent === `+js("Reset the budget of "+last+", with a limit of $25.00."))
	if s := settingsOf(t, srv, last); !s.Limit.Equal(budget.MustAmount("25")) {
		t.Errorf("%s's limit after the reset: %v", last, s.Limit)
	}

	tb.click(`button[aria-label="Usage of ` + last + `"]`)
	tb.waitFor("the usage dialog", `document.getElementById("usage").open && document.getElementById("usage-body").rows.length > 0`)
	reachable("#usage-close")
	tb.click("#usage-close")

	tb.click(`input[aria-label="Select ` + last + `"]`)
	tb.waitFor("the bulk form", `shown("bulk")`)
	reachable("#bulk-apply")
	tb.run(chromedp.EmulateViewport(desktopW, desktopH))
	tb.noHorizontalOverflow("the admin page with a selection")
}
