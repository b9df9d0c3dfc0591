package dashboard_test

// Teams, orgs and model caps in the browser: the admin creates a team,
// puts two users in it and caps its spend on gpt-4o*; one member's spend
// shows on the other's page, the binding budget first; the team turns
// red on the admin page at its limit; at 375 px every new action is in
// reach. TestBrowser runs them, each on a server of its own.

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/llmbudget/budget"
)

// lastCapInput returns the id of the pattern (or limit) input of the
// last model cap row of the team dialog.
func (tb *tab) lastCapInput(class string) string {
	tb.t.Helper()
	id := eval[string](tb, `(() => { const l = [...document.querySelectorAll("#caps-list ."+`+js(class)+`)]; return l.length ? l[l.length - 1].id : ""; })()`)
	if id == "" {
		tb.t.Fatalf("no model cap row with a .%s input", class)
	}
	return id
}

// closeGroup closes the team or org dialog with its Close button. A click
// can land while the dialog's content still moves (its lists reload after
// each change) and miss the button, as it once did on a loaded CI machine:
// so it clicks again while the dialog stays open.
func (tb *tab) closeGroup() {
	tb.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		tb.click("#group-close")
		for range 10 {
			if eval[bool](tb, `!document.getElementById("group").open`) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			tb.t.Fatal("the team dialog stays open after clicking Close")
		}
	}
}

// addMember adds who to the team or org in the open dialog.
func (tb *tab) addMember(who string) {
	tb.t.Helper()
	tb.typeInto("m-user", who)
	tb.click("#member-add")
	tb.waitFor(who+" in the members", `[...document.querySelectorAll("#members-list .uid")].some((e) => e.textContent === `+js(who)+`)`)
}

// cards returns the user page's budget cards: heading and text.
func (tb *tab) cards() []string {
	tb.t.Helper()
	return eval[[]string](tb, `[...document.querySelectorAll("#status-body .budget-card")].map((c) => c.innerText)`)
}

// testTeamWithModelCap: the admin creates the team research ($5) from
// the admin page, adds alice and bob, then caps its spend on gpt-4o* at
// $1; alice's spend shows on bob's page, where the cap binds; at its
// limit the team is red on the admin page, and bob's page says which
// budget refuses his calls. An org takes the team in from its dialog.
func testTeamWithModelCap(t *testing.T, browser context.Context) {
	srv := newBrowserServer(t)
	ctx := context.Background()
	admin := newTab(t, browser, srv)
	admin.open("/dashboard/admin/budget", "tok-root")
	admin.waitFor("the empty team list", `document.getElementById("groups-body").textContent.startsWith("No teams yet")`)

	// Create the team.
	admin.click("#g-new")
	admin.waitFor("the team dialog", `document.getElementById("group").open && document.getElementById("g-limit_usd")`)
	if got := admin.text("#group-h"); got != "New team" {
		t.Errorf("the dialog's title: %q", got)
	}
	if eval[bool](admin, `!!document.getElementById("g-budget_visible_to_user") || !shown("g-org-box") || shown("group-more")`) {
		t.Error("a new team's dialog offers a user's permissions, lacks the org, or shows members before the team exists")
	}
	admin.typeInto("g-id", "research")
	admin.typeInto("g-limit_usd", "5")
	admin.click("#group-save")
	admin.waitFor("the team created", `document.getElementById("group-saved").textContent === "Created team “research”. Add its members below."`)
	admin.waitFor("the members section", `shown("group-more") && document.getElementById("members-list").textContent === "No members yet."`)
	if !eval[bool](admin, `document.getElementById("g-id").readOnly`) || admin.text("#group-h") != "Team research" {
		t.Errorf("after the creation the dialog is %q, its ID editable: %v", admin.text("#group-h"), !eval[bool](admin, `document.getElementById("g-id").readOnly`))
	}
	team, err := srv.m.BudgetSettings(ctx, root, budget.Team("research"))
	if err != nil || !team.Limit.Equal(budget.MustAmount("5")) {
		t.Fatalf("the team after its creation: %v, %v", team.Limit, err)
	}

	// Two members; a user without a budget is refused, next to the field.
	admin.expectFailedLoad("/api/v1/budget/admin/teams/research/members") // nobody: a 404
	admin.addMember("alice")
	admin.addMember("bob")
	admin.typeInto("m-user", "nobody")
	admin.click("#member-add")
	admin.waitFor("the refusal", `document.querySelector('#member-form [data-field="user_id"] .error').textContent !== ""`)
	if got := admin.text(`#member-form [data-field="user_id"] .error`); !strings.Contains(got, "nobody has no budget yet") {
		t.Errorf("adding a user without a budget says %q", got)
	}
	if members, err := srv.m.Members(ctx, root, budget.Team("research")); err != nil || len(members) != 2 {
		t.Errorf("the team's members: %v, %v", members, err)
	}

	// The cap: a bad pattern first, shown by its row; then gpt-4o* at $1.
	admin.expectFailedLoad("/api/v1/budget/admin/teams/research") // the bad pattern: a 400
	admin.click("#cap-add")
	admin.waitFor("a cap row", `document.querySelectorAll("#caps-list .cap-row").length === 1 && document.activeElement.classList.contains("cap-pattern")`)
	admin.typeInto(admin.lastCapInput("cap-pattern"), "gpt-[4o]")
	admin.typeInto(admin.lastCapInput("cap-limit"), "1")
	admin.click("#group-save")
	admin.waitFor("the pattern's error", `document.querySelector('[data-field="model_caps[0].pattern"] .error').textContent !== ""`)
	if !eval[bool](admin, `document.activeElement === document.querySelector('[data-field="model_caps[0].pattern"] input')`) {
		t.Error("the bad pattern's field does not have the focus")
	}
	admin.typeInto(admin.lastCapInput("cap-pattern"), "gpt-4o*")
	admin.click("#group-save")
	admin.waitFor("the cap saved", `document.getElementById("group-saved").textContent === "Saved team “research”."`)
	admin.waitFor("the cap's figures", `document.querySelector("#caps-list .cap-status") && document.querySelector("#caps-list .cap-status").textContent.includes("$1.00 left")`)
	if got := eval[string](admin, `document.querySelector("#caps-list .cap-remove").getAttribute("aria-label")`); got != "Remove the cap on gpt-4o*" {
		t.Errorf("the cap's remove button is labelled %q", got)
	}
	team, err = srv.m.BudgetSettings(ctx, root, budget.Team("research"))
	if err != nil || len(team.ModelCaps) != 1 || team.ModelCaps[0].Pattern != "gpt-4o*" || !team.ModelCaps[0].Limit.Equal(budget.MustAmount("1")) {
		t.Fatalf("the team's caps: %+v, %v", team.ModelCaps, err)
	}
	admin.waitFor("the team's audit entries", `document.getElementById("g-audit-body").rows.length >= 2 && document.getElementById("g-audit-body").textContent.includes("gpt-4o*")`)
	admin.closeGroup()

	// The list: the team with its cap; the users with their team.
	admin.waitFor("the team in the list", `document.querySelector('#groups-body tr[data-id="research"]') && document.querySelector('#groups-body tr[data-id="research"]').textContent.includes("gpt-4o* $0.00 of $1.00")`)
	for _, id := range []string{"alice", "bob"} {
		admin.waitFor(id+"'s team in the user list", `[...document.querySelectorAll("#users-body th")].some((c) => c.querySelector(".uid").textContent === `+js(id)+` && c.textContent.includes("Team: research"))`)
	}

	// "New team…" with the ID of one that exists changes nothing.
	admin.click("#g-new")
	admin.waitFor("the team dialog", `document.getElementById("group").open && document.getElementById("group-h").textContent === "New team"`)
	admin.typeInto("g-id", "research")
	admin.typeInto("g-limit_usd", "99")
	admin.click("#group-save")
	admin.waitFor("the refusal", `document.querySelector('#group-form [data-field="id"] .error').textContent !== ""`)
	if got := admin.text(`#group-form [data-field="id"] .error`); got != "A team “research” exists already: configure it from the list." {
		t.Errorf("creating a team that exists says %q", got)
	}
	admin.click("#group-cancel")
	if s, err := srv.m.BudgetSettings(ctx, root, budget.Team("research")); err != nil || !s.Limit.Equal(budget.MustAmount("5")) {
		t.Errorf("the team after a second creation: %v, %v", s.Limit, err)
	}

	// alice spends $0.60 on gpt-4o; bob's page shows it on the team's
	// cards, the cap first: it has the least room left.
	if _, err := srv.m.Record(ctx, "alice", budget.Usage{Provider: "openai", Model: "gpt-4o", InputTokens: 1000, Cost: budget.MustAmount("0.6")}); err != nil {
		t.Fatal(err)
	}
	bob := newTab(t, browser, srv)
	bob.open("/dashboard/budget", "tok-bob")
	bob.waitFor("bob's three budgets", `document.querySelectorAll("#status-body .budget-card").length === 3`)
	cards := bob.cards()
	if !strings.HasPrefix(cards[0], "Team “research”: cap on gpt-4o*") || !strings.Contains(cards[0], "Binding") ||
		!strings.Contains(cards[0], "$0.60") || !strings.Contains(cards[0], "Remaining\n$0.40") {
		t.Errorf("bob's first card (the binding cap): %q", cards[0])
	}
	var teamCard string
	for _, c := range cards[1:] {
		if strings.Contains(c, "Binding") {
			t.Errorf("a second card is marked binding: %q", c)
		}
		if strings.HasPrefix(c, "Team “research”\n") {
			teamCard = c
		}
	}
	if !strings.Contains(teamCard, "Spent\n$0.60") || !strings.Contains(teamCard, "Limit\n$5.00") || !strings.Contains(teamCard, "Remaining\n$4.40") || !strings.Contains(teamCard, "Resets ") {
		t.Errorf("bob's card of the team: %q (cards %q)", teamCard, cards)
	}
	if got := bob.text("#status-h"); got != "Budgets this period" {
		t.Errorf("the status heading with several budgets: %q", got)
	}
	if eval[bool](bob, `shown("refusal")`) {
		t.Error("bob's page says his calls are refused while every budget has room")
	}
	bob.screenshot("user-budgets.png")
	bob.noHorizontalOverflow("the user page with several budgets")

	// The team reaches its limit: red on the admin page, and bob's page
	// names the team as the budget refusing his calls.
	if _, err := srv.m.Record(ctx, "alice", budget.Usage{Provider: "anthropic", Model: "claude-sonnet-4", InputTokens: 1000, Cost: budget.MustAmount("4.5")}); err != nil {
		t.Fatal(err)
	}
	admin.click(`#g-filter button[type="submit"]`)
	admin.waitFor("the team in red", `document.querySelector('#groups-body tr[data-id="research"].lvl-red .badge-red')`)
	if got := admin.text(`#groups-body tr[data-id="research"] .status-cell`); !strings.Contains(got, "Over limit") {
		t.Errorf("the team's status: %q", got)
	}
	if got := admin.text("#g-summary"); !strings.Contains(got, "1 over budget") || !strings.HasPrefix(got, "1 team") {
		t.Errorf("the teams' summary: %q", got)
	}
	if c := eval[string](admin, `getComputedStyle(document.querySelector('#groups-body tr[data-id="research"] > th')).borderLeftColor`); c != "rgb(198, 40, 40)" {
		t.Errorf("the red team's row has the left border colour %s", c)
	}
	admin.choose("g-level", "green")
	admin.waitFor("no green team", `document.getElementById("groups-body").textContent === "No teams match."`)
	admin.choose("g-level", "red")
	admin.waitFor("the red team", `document.querySelectorAll('#groups-body tr[data-id="research"]').length === 1`)
	bob.run(chromedp.Reload())
	bob.waitFor("the refusal", `shown("refusal")`)
	if got := bob.text("#refusal"); !strings.Contains(got, "Calls are being refused.") || !strings.Contains(got, "Team “research” has nothing left") {
		t.Errorf("bob's page on the refusal: %q", got)
	}
	if cards := bob.cards(); !strings.HasPrefix(cards[0], "Team “research”\n") || !strings.Contains(cards[0], "Over limit") {
		t.Errorf("bob's first card at the team's limit: %q", cards[0])
	}

	// The team's dialog: what it spent by model, and who spent it.
	admin.click(`button[aria-label="Configure team research"]`)
	admin.waitFor("the team's usage", `document.getElementById("group").open && document.getElementById("g-usage-summary").textContent.includes("$5.10 over 2 calls") && document.querySelector("#g-by-model svg")`)
	if rows := admin.rows("g-history-body"); len(rows) != 2 || rows[0][1] != "alice" || rows[0][2] != "claude-sonnet-4" || rows[0][3] != "$4.50" {
		t.Errorf("the team's recent calls: %q", rows)
	}
	if got := eval[[]string](admin, `[...document.querySelectorAll("#g-by-model .chart-label")].map((e) => e.textContent)`); strings.Join(got, ",") != "claude-sonnet-4,gpt-4o" {
		t.Errorf("the team's spend by model: %q", got)
	}
	admin.screenshotDialog("group", "team.png")
	admin.closeGroup()

	// An org takes the team in, from the org's dialog.
	admin.click(`label[for="g-kind-org"]`)
	admin.waitFor("the empty org list", `document.getElementById("groups-body").textContent.startsWith("No orgs") && document.getElementById("g-new").textContent === "New org…"`)
	admin.click("#g-new")
	admin.waitFor("the org dialog", `document.getElementById("group").open && document.getElementById("group-h").textContent === "New org"`)
	if eval[bool](admin, `shown("g-org-box")`) {
		t.Error("an org's dialog offers an org")
	}
	admin.typeInto("g-id", "acme")
	admin.typeInto("g-limit_usd", "100")
	admin.click("#group-save")
	admin.waitFor("the org created", `shown("group-more")`)
	admin.choose("m-kind", "team")
	admin.addMember("research")
	if team, err := srv.m.BudgetSettings(ctx, root, budget.Team("research")); err != nil || team.Org != "acme" {
		t.Errorf("the team's org: %q, %v", team.Org, err)
	}
	admin.closeGroup()
	bob.run(chromedp.Reload())
	bob.waitFor("the org's card", `[...document.querySelectorAll("#status-body .budget-card h3")].some((h) => h.textContent === "Org “acme”")`)
}

// testNarrowTeams: at 375 px the teams' list, the team dialog's actions
// and the user's cards are in reach, and nothing scrolls sideways.
func testNarrowTeams(t *testing.T, browser context.Context) {
	srv := newBrowserServer(t)
	ctx := context.Background()
	five := budget.MustAmount("5")
	caps := []budget.ModelCap{{Pattern: "gpt-4o*", Limit: budget.MustAmount("1")}, {Pattern: "claude-sonnet-a-rather-long-model-family-name-*", Limit: budget.MustAmount("2.5")}}
	if _, err := srv.m.UpdateBudget(ctx, root, budget.Team("platform-infrastructure-and-tooling"), budget.SettingsUpdate{Limit: &five, ModelCaps: &caps}); err != nil {
		t.Fatal(err)
	}
	const team = "platform-infrastructure-and-tooling"
	for _, u := range []string{"bob", "carol"} {
		if _, err := srv.m.SetMembership(ctx, root, u, budget.Membership{Teams: []string{team}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.m.Record(ctx, "carol", budget.Usage{Provider: "openai", Model: "gpt-4o", InputTokens: 10, Cost: budget.MustAmount("0.25")}); err != nil {
		t.Fatal(err)
	}

	tb := newTab(t, browser, srv)
	tb.run(chromedp.EmulateViewport(narrowW, narrowH))
	tb.open("/dashboard/admin/budget", "tok-root")
	tb.waitFor("the narrow layout", "document.documentElement.clientWidth === "+strconv.Itoa(narrowW))
	tb.waitFor("the team", `document.querySelector('#groups-body tr[data-id="`+team+`"]')`)
	if got := eval[string](tb, `getComputedStyle(document.querySelector('#groups-body tr[data-id="`+team+`"]')).display`); got != "block" {
		t.Errorf("a team's row is displayed as %q at %d px, want a card (block)", got, narrowW)
	}
	for _, sel := range []string{`label[for="g-kind-team"]`, `label[for="g-kind-org"]`, "#g-q", "#g-level", `#g-filter button[type="submit"]`, "#g-new",
		`button[aria-label="Configure team ` + team + `"]`} {
		tb.reachable(sel)
	}
	// Users show their team on their card.
	tb.waitFor("bob's team", `[...document.querySelectorAll("#users-body th")].some((c) => c.textContent.includes("Team: `+team+`"))`)

	tb.click(`button[aria-label="Configure team ` + team + `"]`)
	tb.waitFor("the team dialog", `document.getElementById("group").open && document.querySelectorAll("#caps-list .cap-row").length === 2 && document.querySelectorAll("#members-list .uid").length === 2 && document.getElementById("g-audit-body").rows.length > 0`)
	for _, sel := range []string{"#g-limit_usd", "#g-org", `button[aria-label="Remove the cap on gpt-4o*"]`, `button[aria-label="Remove the cap on claude-sonnet-a-rather-long-model-family-name-*"]`,
		"#cap-add", "#group-save", "#group-cancel", "#m-user", "#member-add", `button[aria-label="Remove bob from team ` + team + `"]`,
		`button[aria-label="Remove carol from team ` + team + `"]`, "#g-audit-first", "#g-audit-next", "#group-close"} {
		tb.reachable(sel)
	}
	// The dialog itself scrolls, never sideways.
	if w := eval[[]int](tb, `[document.getElementById("group").scrollWidth, document.getElementById("group").clientWidth]`); w[0] > w[1] {
		t.Errorf("the team dialog at %d px: scrollWidth %d > clientWidth %d", narrowW, w[0], w[1])
	}

	// The actions work at this width: remove a cap and a member, add one.
	tb.click(`button[aria-label="Remove the cap on gpt-4o*"]`)
	tb.waitFor("one cap row", `document.querySelectorAll("#caps-list .cap-row").length === 1`)
	tb.reachable("#group-save")
	tb.click("#group-save")
	tb.waitFor("the save", `document.getElementById("group-saved").textContent === "Saved team “`+team+`”."`)
	if s, err := srv.m.BudgetSettings(ctx, root, budget.Team(team)); err != nil || len(s.ModelCaps) != 1 || s.ModelCaps[0].Pattern == "gpt-4o*" {
		t.Errorf("the caps after removing gpt-4o*: %+v, %v", s.ModelCaps, err)
	}
	tb.click(`button[aria-label="Remove carol from team ` + team + `"]`)
	tb.waitFor("carol removed", `![...document.querySelectorAll("#members-list .uid")].some((e) => e.textContent === "carol")`)
	tb.reachable("#member-add")
	tb.addMember("dave")
	if s := settingsOf(t, srv, "carol"); len(s.Teams) != 0 {
		t.Errorf("carol's teams after her removal: %v", s.Teams)
	}
	if s := settingsOf(t, srv, "dave"); len(s.Teams) != 1 || s.Teams[0] != team {
		t.Errorf("dave's teams after his addition: %v", s.Teams)
	}
	tb.closeGroup()
	tb.run(chromedp.EmulateViewport(desktopW, desktopH))
	tb.noHorizontalOverflow("the admin page with a team")

	user := newTab(t, browser, srv)
	user.run(chromedp.EmulateViewport(narrowW, narrowH))
	user.open("/dashboard/budget", "tok-bob")
	user.waitFor("bob's budgets", `document.querySelectorAll("#status-body .budget-card").length === 3`)
	user.run(chromedp.EmulateViewport(desktopW, desktopH))
	user.noHorizontalOverflow("the user page with a team's long cap")
}

// testTeamsKeyboard: the teams' section by keyboard alone: Tab reaches
// the kind switch, the arrows turn it, Tab goes on to a team's Configure
// button, Enter opens the dialog and Escape closes it, the focus back on
// the button; every stop shows a focus indicator.
func testTeamsKeyboard(t *testing.T, browser context.Context) {
	srv := newBrowserServer(t)
	ctx := context.Background()
	limit := budget.MustAmount("8")
	if _, err := srv.m.UpdateBudget(ctx, root, budget.Team("research"), budget.SettingsUpdate{Limit: &limit}); err != nil {
		t.Fatal(err)
	}
	tb := newTab(t, browser, srv)
	tb.open("/dashboard/admin/budget", "tok-root")
	tb.waitFor("the team", `document.querySelector('#groups-body tr[data-id="research"]')`)
	// Start from the last user's last action, just before the section.
	tb.click(`button[aria-label="Audit log of frank"]`)
	eval[any](tb, `void document.querySelector('button[aria-label="Audit log of frank"]').focus()`)
	path := tb.tabTo("the kind switch", func(f focused) bool { return f.ID == "g-kind-team" })
	t.Logf("Tab ×%d to the kind switch: %v", len(path), path)
	tb.run(chromedp.KeyEvent(kb.ArrowRight))
	tb.waitFor("the orgs", `document.getElementById("g-kind-org").checked && document.getElementById("g-new").textContent === "New org…" && document.getElementById("groups-body").textContent.startsWith("No orgs")`)
	if f := tb.focus(); f.ID != "g-kind-org" || !f.Indicator {
		t.Errorf("after the arrow, %s has the focus (indicator %v)", f, f.Indicator)
	}
	tb.run(chromedp.KeyEvent(kb.ArrowLeft))
	tb.waitFor("the teams", `document.getElementById("g-kind-team").checked && document.querySelector('#groups-body tr[data-id="research"]')`)
	const conf = "Configure team research"
	path = tb.tabTo("the "+conf+" button", func(f focused) bool { return f.Label == conf })
	t.Logf("Tab ×%d to %q: %v", len(path), conf, path)
	tb.run(chromedp.KeyEvent("\r"))
	tb.waitFor("the team dialog", `document.getElementById("group").open && document.getElementById("group").contains(document.activeElement) && document.getElementById("g-limit_usd").value === "8"`)
	if f := tb.focus(); !f.Indicator {
		t.Errorf("in the dialog, %s has the focus but shows no focus indicator (%s)", f, f.Style)
	}
	// Tab reaches the cap and member controls from the dialog's first field.
	tb.tabTo("the button that adds a cap", func(f focused) bool { return f.ID == "cap-add" })
	tb.run(chromedp.KeyEvent("\r"))
	tb.waitFor("a cap row, focused", `document.activeElement && document.activeElement.classList.contains("cap-pattern")`)
	tb.tabTo("the cap's Remove button", func(f focused) bool { return f.Label == "Remove model cap 1" })
	tb.run(chromedp.KeyEvent("\r"))
	tb.waitFor("no cap row, the focus on Add", `document.querySelectorAll("#caps-list .cap-row").length === 0 && document.activeElement === document.getElementById("cap-add")`)
	tb.tabTo("the member field", func(f focused) bool { return f.ID == "m-user" })
	tb.run(chromedp.KeyEvent("carol\r"))
	tb.waitFor("carol in the members", `[...document.querySelectorAll("#members-list .uid")].some((e) => e.textContent === "carol")`)
	tb.run(chromedp.KeyEvent(kb.Escape))
	tb.waitFor("the dialog to close", `!document.getElementById("group").open`)
	tb.waitFor("the focus back on "+conf, `document.activeElement && document.activeElement.getAttribute("aria-label") === `+js(conf))
	if f := tb.focus(); !f.Indicator {
		t.Errorf("back from the dialog, %s shows no focus indicator (%s)", f, f.Style)
	}
	if s := settingsOf(t, srv, "carol"); len(s.Teams) != 1 || s.Teams[0] != "research" {
		t.Errorf("carol's teams after the keyboard addition: %v", s.Teams)
	}
}
