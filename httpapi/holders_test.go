package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/httpapi"
)

// The routes of teams and orgs, and what users see of them. The fixture
// is newTeamFixture's: research ($100, a $1 cap on gpt-4o*, in acme) with
// tina, ops ($50) with otto, acme ($1000) with tina and research.

// get answers a GET as token, decoded; it fails the test on anything but
// a 200.
func (f *fixture) get(path, token string) map[string]any {
	f.t.Helper()
	return f.do(req{method: "GET", path: path, token: token}).json(f.t)
}

// TestTeamShape pins the JSON of one team as admins read it.
func TestTeamShape(t *testing.T) {
	f := newTeamFixture(t)
	r := f.do(req{method: "GET", path: "/admin/teams/research", token: "tok-root"})
	got := r.json(t)
	want := map[string]any{
		"scope": "team", "id": "research", "limit_usd": "100",
		// tina's 0.30 on gpt-4o and 0.20 on claude.
		"spent_usd": "0.5", "reserved_usd": "0", "remaining_usd": "99.5", "percent_used": "0.5", "alert_level": "green",
		"enforce_budget": true, "budget_period": "monthly", "timezone": "UTC",
		"alert_threshold_yellow": "75", "alert_threshold_orange": "90", "alert_threshold_red": "100",
		"current_period_start": "2025-03-01T00:00:00Z", "current_period_end": "2025-04-01T00:00:00Z",
		"org": "acme",
		"model_caps": []any{map[string]any{
			"pattern": "gpt-4o*", "limit_usd": "1", "spent_usd": "0.3", "reserved_usd": "0",
			"remaining_usd": "0.7", "percent_used": "30", "alert_level": "green",
		}},
		"members": json.Number("1"), "version": json.Number("3"), "admin_notes": "the lab",
		"created_at": "2025-03-14T09:01:18Z", "updated_at": "2025-03-14T09:01:18Z",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("GET /admin/teams/research (-want +got):\n%s", d)
	}
	if r.header.Get("ETag") != `"3"` {
		t.Errorf("ETag %q, want the version", r.header.Get("ETag"))
	}
	// The list has the same entry, caps' figures included, without the
	// members count.
	delete(want, "members")
	list := f.get("/admin/budgets?kind=team&q=RES", "tok-root")
	if bs := list["budgets"].([]any); len(bs) != 1 {
		t.Errorf("q=RES: %v", list)
	} else if d := cmp.Diff(want, bs[0]); d != "" {
		t.Errorf("research in the list (-want +got):\n%s", d)
	}
	wantSummary := map[string]any{"budgets": json.Number("2"), "total_limit_usd": "150", "total_spent_usd": "0.65", "over_budget": json.Number("0")}
	if d := cmp.Diff(wantSummary, list["summary"]); d != "" {
		t.Errorf("summary (-want +got):\n%s", d)
	}
	// An org counts its users and its teams; it has no org of its own.
	got = f.get("/admin/orgs/acme", "tok-root")
	if got["scope"] != "org" || got["id"] != "acme" || got["members"] != json.Number("2") || got["org"] != nil ||
		got["spent_usd"] != "0.5" || len(got["model_caps"].([]any)) != 0 {
		t.Errorf("GET /admin/orgs/acme: %v", got)
	}
	// A team without members or caps.
	f.do(req{method: "PUT", path: "/admin/users/otto/membership", token: "tok-root", body: `{}`})
	if got = f.get("/admin/teams/ops", "tok-root"); got["members"] != nil || got["org"] != nil {
		t.Errorf("an empty team: %v", got)
	}
}

// TestTeamCreateAndUpdate: PUT creates a team or org (201) from the
// defaults, then updates it (200); model caps are replaced whole.
func TestTeamCreateAndUpdate(t *testing.T) {
	f := newTeamFixture(t)
	for _, kind := range []string{"teams", "orgs"} {
		path := "/admin/" + kind + "/design"
		r := f.do(req{method: "PUT", path: path, token: "tok-root",
			body: `{"limit_usd": "20", "budget_period": "weekly", "timezone": "Europe/Paris", "admin_notes": "new",
				"model_caps": [{"pattern": "claude-opus-*", "limit_usd": "5"}, {"pattern": "gpt-4o", "limit_usd": 1.5}]}`})
		if r.status != http.StatusCreated {
			t.Fatalf("PUT %s: %d %s", path, r.status, r.body)
		}
		got := decode(t, r)
		caps, _ := got["model_caps"].([]any)
		if got["limit_usd"] != "20" || got["budget_period"] != "weekly" || got["timezone"] != "Europe/Paris" ||
			got["admin_notes"] != "new" || len(caps) != 2 || caps[1].(map[string]any)["limit_usd"] != "1.5" ||
			caps[1].(map[string]any)["remaining_usd"] != "1.5" || r.header.Get("ETag") != `"`+toString(got["version"])+`"` {
			t.Errorf("PUT %s: %s, ETag %s", path, r.body, r.header.Get("ETag"))
		}
		// A team created from the defaults has no user permissions.
		set, err := f.m.BudgetSettings(context.Background(), rootP, budget.Scope{Kind: budget.ScopeKind(strings.TrimSuffix(kind, "s")), ID: "design"})
		if err != nil || set.Visible || set.CanModify || set.CanReset {
			t.Errorf("%s/design: %+v %v", kind, set.Permissions, err)
		}
		// Again: an update, 200; caps replaced, [] removes them.
		r = f.do(req{method: "PUT", path: path, token: "tok-root", body: `{"model_caps": [{"pattern": "o?-*", "limit_usd": "2"}]}`})
		if got := r.json(t); len(got["model_caps"].([]any)) != 1 || got["limit_usd"] != "20" {
			t.Errorf("update caps: %v", got)
		}
		if got := f.do(req{method: "PUT", path: path, token: "tok-root", body: `{"model_caps": []}`}).json(t); len(got["model_caps"].([]any)) != 0 {
			t.Errorf("remove caps: %v", got)
		}
	}
	// The new team is listed, in ID order.
	got := f.get("/admin/budgets?kind=team", "tok-root")
	var ids []string
	for _, b := range got["budgets"].([]any) {
		ids = append(ids, b.(map[string]any)["id"].(string))
	}
	if d := cmp.Diff([]string{"design", "ops", "research"}, ids); d != "" {
		t.Errorf("teams (-want +got):\n%s", d)
	}
}

// TestTeamETag: team and org settings carry an ETag; a stale If-Match is
// 412 and changes nothing, on an update and on a create.
func TestTeamETag(t *testing.T) {
	f := newTeamFixture(t)
	for _, path := range []string{"/admin/teams/research", "/admin/orgs/acme"} {
		etag := f.do(req{method: "GET", path: path, token: "tok-root"}).header.Get("ETag")
		put := func(ifMatch, body string) response {
			return f.do(req{method: "PUT", path: path, token: "tok-root", body: body, header: map[string]string{"If-Match": ifMatch}})
		}
		r := put(etag, `{"limit_usd": "300"}`)
		if r.status != 200 || r.header.Get("ETag") == etag {
			t.Fatalf("PUT %s with its ETag: %d %s, ETag %s", path, r.status, r.body, r.header.Get("ETag"))
		}
		before := f.state()
		r = put(etag, `{"limit_usd": "400", "admin_notes": "mine"}`) // the other admin's stale tag
		if r.status != http.StatusPreconditionFailed {
			t.Fatalf("stale If-Match on %s: %d %s", path, r.status, r.body)
		}
		if p := r.problem(t); p.Type != httpapi.ProblemPreconditionFailed || p.Field != "If-Match" || r.header.Get("ETag") != "" {
			t.Errorf("stale If-Match: %+v", p)
		}
		if d := diff(before, f.state()); d != "" {
			t.Errorf("a 412 changed the state:\n%s", d)
		}
		if r := put(`W/"1"`, `{}`); r.status != http.StatusPreconditionFailed {
			t.Errorf("a weak tag: %d", r.status)
		}
		if r := put("*", `{"limit_usd": "500"}`); r.status != 200 {
			t.Errorf("If-Match *: %d", r.status)
		}
	}
	// On a create, If-Match is honoured: a new budget is at version 1.
	before := f.state()
	r := f.do(req{method: "PUT", path: "/admin/teams/design", token: "tok-root", body: `{}`, header: map[string]string{"If-Match": `"2"`}})
	if r.status != http.StatusPreconditionFailed {
		t.Errorf("create with a stale If-Match: %d %s", r.status, r.body)
	}
	if d := diff(before, f.state()); d != "" {
		t.Errorf("a refused create changed the state:\n%s", d)
	}
	r = f.do(req{method: "PUT", path: "/admin/teams/design", token: "tok-root", body: `{}`, header: map[string]string{"If-Match": `"1"`}})
	if r.status != http.StatusCreated {
		t.Errorf("create with If-Match 1: %d %s", r.status, r.body)
	}
}

// TestMembers: an admin creates a team, adds two users and caps gpt-4o* at
// $1; spend recorded for one user shows on the other user's team line;
// the team is red once its limit is reached; removing a user takes them
// out.
func TestMembers(t *testing.T) {
	f := newTeamFixture(t)
	if r := f.do(req{method: "PUT", path: "/admin/teams/design", token: "tok-root",
		body: `{"limit_usd": "2", "model_caps": [{"pattern": "gpt-4o*", "limit_usd": "1"}]}`}); r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	for _, user := range []string{"pete", "nora", "pete"} { // adding twice changes nothing
		r := f.do(req{method: "POST", path: "/admin/teams/design/members", token: "tok-root", body: `{"user_id": "` + user + `"}`})
		got := r.json(t)
		if got["user_id"] != user || !slicesContain(got["teams"], "design") || r.header.Get("ETag") != `"`+toString(got["version"])+`"` {
			t.Errorf("add %s: %v, ETag %s", user, got, r.header.Get("ETag"))
		}
	}
	if v := f.settingsOf("pete").Version; v != 3 {
		t.Errorf("pete at version %d after two adds, want 3 (one change)", v)
	}
	// otto keeps ops when he joins design.
	got := f.do(req{method: "POST", path: "/admin/teams/design/members", token: "tok-root", body: `{"user_id": "otto"}`}).json(t)
	if d := cmp.Diff([]any{"design", "ops"}, got["teams"]); d != "" || got["org"] != "" {
		t.Errorf("otto's membership (-want +got):\n%s\n%v", d, got)
	}
	got = f.get("/admin/teams/design/members", "tok-root")
	want := map[string]any{"members": []any{
		map[string]any{"user_id": "nora"}, map[string]any{"user_id": "otto"}, map[string]any{"user_id": "pete"},
	}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("members (-want +got):\n%s", d)
	}
	if n := f.get("/admin/teams/design", "tok-root")["members"]; n != json.Number("3") {
		t.Errorf("members count %v", n)
	}

	// pete spends on gpt-4o; nora sees it on the team's lines.
	if _, err := f.m.Record(context.Background(), "pete", budget.Usage{Provider: "openai", Model: "gpt-4o-mini", Cost: budget.MustAmount("0.4")}); err != nil {
		t.Fatal(err)
	}
	lines := budgetLines(t, f.get("/status", "tok-nora"))
	team, cp := lines["team:design"], lines["team:design:gpt-4o*"]
	if team == nil || team["spent_usd"] != "0.4" || cp == nil || cp["spent_usd"] != "0.4" || cp["remaining_usd"] != "0.6" {
		t.Errorf("nora's lines: %v", lines)
	}
	// The team reaches its limit: red in the admin list.
	if _, err := f.m.Record(context.Background(), "nora", budget.Usage{Provider: "anthropic", Model: "claude", Cost: budget.MustAmount("1.6")}); err != nil {
		t.Fatal(err)
	}
	got = f.get("/admin/budgets?kind=team&level=red", "tok-root")
	if bs := got["budgets"].([]any); len(bs) != 1 || bs[0].(map[string]any)["id"] != "design" || bs[0].(map[string]any)["alert_level"] != "red" ||
		got["summary"].(map[string]any)["over_budget"] != json.Number("1") {
		t.Errorf("level=red: %v", got)
	}

	// Out again.
	if r := f.do(req{method: "DELETE", path: "/admin/teams/design/members/nora", token: "tok-root"}); r.status != 204 {
		t.Fatalf("remove nora: %d %s", r.status, r.body)
	}
	if s := f.settingsOf("nora"); len(s.Teams) != 0 {
		t.Errorf("nora's teams after removal: %v", s.Teams)
	}
	if s := f.settingsOf("otto"); len(s.Teams) != 2 {
		t.Errorf("otto's teams: %v", s.Teams)
	}
	if r := f.do(req{method: "DELETE", path: "/admin/teams/design/members/nora", token: "tok-root"}); r.status != 404 {
		t.Errorf("remove nora twice: %d", r.status)
	}
	if _, ok := budgetLines(t, f.get("/status", "tok-nora"))["team:design"]; ok {
		t.Error("nora still sees the team")
	}
}

// TestTooManyTeams: a user in budget.MaxTeamsPerUser teams joins no more,
// through either route, and nothing changes.
func TestTooManyTeams(t *testing.T) {
	f := newTeamFixture(t)
	var teams []string
	for i := range budget.MaxTeamsPerUser + 1 {
		id := "t" + strconv.Itoa(i)
		if r := f.do(req{method: "PUT", path: "/admin/teams/" + id, token: "tok-root", body: `{}`}); r.status != 201 {
			t.Fatalf("team %s: %d", id, r.status)
		}
		teams = append(teams, `"`+id+`"`)
	}
	body := `{"teams": [` + strings.Join(teams[:budget.MaxTeamsPerUser], ", ") + `]}`
	if r := f.do(req{method: "PUT", path: "/admin/users/pete/membership", token: "tok-root", body: body}); r.status != 200 {
		t.Fatalf("pete in %d teams: %d %s", budget.MaxTeamsPerUser, r.status, r.body)
	}
	before := f.state()
	for _, q := range []req{
		{method: "POST", path: "/admin/teams/t8/members", token: "tok-root", body: `{"user_id": "pete"}`},
		{method: "PUT", path: "/admin/users/pete/membership", token: "tok-root", body: `{"teams": [` + strings.Join(teams, ", ") + `]}`},
	} {
		r := f.do(q)
		if r.status != 400 {
			t.Fatalf("%s %s: %d %s", q.method, q.path, r.status, r.body)
		}
		if p := r.problem(t); p.Type != httpapi.ProblemInvalidField || p.Field != "teams" || !strings.Contains(p.Detail, "8") {
			t.Errorf("%s %s: %+v", q.method, q.path, p)
		}
	}
	if d := diff(before, f.state()); d != "" {
		t.Errorf("refused joins changed the state:\n%s", d)
	}
}

// TestMembership: PUT /admin/users/{user_id}/membership sets the whole
// membership, with the user's settings ETag.
func TestMembership(t *testing.T) {
	f := newTeamFixture(t)
	etag := f.do(req{method: "GET", path: "/admin/users/pete", token: "tok-root"}).header.Get("ETag")
	put := func(ifMatch, body string) response {
		h := map[string]string{}
		if ifMatch != "" {
			h["If-Match"] = ifMatch
		}
		return f.do(req{method: "PUT", path: "/admin/users/pete/membership", token: "tok-root", body: body, header: h})
	}
	r := put(etag, `{"teams": ["research", "ops", "ops"], "org": "acme"}`)
	got := r.json(t)
	want := map[string]any{"user_id": "pete", "teams": []any{"ops", "research"}, "org": "acme", "version": json.Number("3")}
	if d := cmp.Diff(want, got); d != "" || r.header.Get("ETag") != `"3"` {
		t.Errorf("membership (-want +got):\n%s\nETag %s", d, r.header.Get("ETag"))
	}
	// The admin views show it.
	u := f.get("/admin/users/pete", "tok-root")
	if d := cmp.Diff([]any{"ops", "research"}, u["teams"]); d != "" || u["org"] != "acme" {
		t.Errorf("GET /admin/users/pete: %v", u)
	}
	// A stale tag: 412, nothing changed.
	before := f.state()
	if r := put(etag, `{}`); r.status != http.StatusPreconditionFailed || r.problem(t).Field != "If-Match" {
		t.Errorf("stale If-Match: %d %s", r.status, r.body)
	}
	if d := diff(before, f.state()); d != "" {
		t.Errorf("a 412 changed the state:\n%s", d)
	}
	// Left out is none: the whole membership is the body.
	got = put(`"3"`, `{"teams": ["ops"]}`).json(t)
	if d := cmp.Diff(map[string]any{"user_id": "pete", "teams": []any{"ops"}, "org": "", "version": json.Number("4")}, got); d != "" {
		t.Errorf("membership without org (-want +got):\n%s", d)
	}
	// Repeats count once: nine entries, two teams.
	got = put("", `{"teams": ["ops", "ops", "ops", "ops", "ops", "ops", "ops", "research", "research"]}`).json(t)
	if d := cmp.Diff([]any{"ops", "research"}, got["teams"]); d != "" {
		t.Errorf("repeated teams: %v", got)
	}
	got = put("", `{}`).json(t)
	if d := cmp.Diff([]any{}, got["teams"]); d != "" {
		t.Errorf("no teams: %v", got)
	}
	u = f.get("/admin/users/pete", "tok-root")
	if _, ok := u["teams"]; ok {
		t.Errorf("a user in no team has teams: %v", u)
	}
	// The audit log says what changed.
	entries := f.get("/admin/audit?scope=user:pete&limit=1", "tok-root")["entries"].([]any)
	if cs := entries[0].(map[string]any)["changes"]; !strings.Contains(toJSON(cs), `{"after":"","before":"ops, research","field":"teams"}`) {
		t.Errorf("the audit of pete's last change: %s", toJSON(entries[0]))
	}
}

// TestTeamOrg: a team is put in an org and taken out; it is in one org at
// most.
func TestTeamOrg(t *testing.T) {
	f := newTeamFixture(t)
	r := f.do(req{method: "PUT", path: "/admin/teams/ops/org", token: "tok-root", body: `{"org": "acme"}`})
	if got := r.json(t); got["org"] != "acme" || got["id"] != "ops" || r.header.Get("ETag") != `"`+toString(got["version"])+`"` {
		t.Errorf("ops into acme: %v", got)
	}
	if n := f.get("/admin/orgs/acme", "tok-root")["members"]; n != json.Number("3") { // tina, ops, research
		t.Errorf("acme's members: %v", n)
	}
	// otto, in ops, now spends acme's budget too.
	if _, ok := budgetLines(t, f.get("/status", "tok-otto"))["org:acme"]; !ok {
		t.Error("otto does not see acme")
	}
	f.do(req{method: "PUT", path: "/admin/orgs/globex", token: "tok-root", body: `{}`})
	before := f.state()
	r = f.do(req{method: "PUT", path: "/admin/teams/ops/org", token: "tok-root", body: `{"org": "globex"}`})
	if r.status != 400 || r.problem(t).Field != "org" {
		t.Errorf("ops from acme to globex: %d %s", r.status, r.body)
	}
	if d := diff(before, f.state()); d != "" {
		t.Errorf("a refused move changed the state:\n%s", d)
	}
	if got := f.do(req{method: "PUT", path: "/admin/teams/ops/org", token: "tok-root", body: `{"org": ""}`}).json(t); got["org"] != nil {
		t.Errorf("ops out of acme: %v", got)
	}
	if got := f.do(req{method: "PUT", path: "/admin/teams/ops/org", token: "tok-root", body: `{"org": "globex"}`}).json(t); got["org"] != "globex" {
		t.Errorf("ops into globex: %v", got)
	}
}

// budgetLines returns a status's "budgets" by "scope:id" (and ":pattern"
// for a cap), checking that the binding one comes first and is the only
// one marked.
func budgetLines(t *testing.T, status map[string]any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for i, l := range status["budgets"].([]any) {
		m := l.(map[string]any)
		key := m["scope"].(string) + ":" + m["id"].(string)
		if p, ok := m["pattern"]; ok {
			key += ":" + p.(string)
		}
		if b, ok := m["binding"]; ok && (b != true || i != 0) {
			t.Errorf("line %d %s marked binding %v: binding is first and true", i, key, b)
		}
		out[key] = m
	}
	return out
}

// TestStatusBudgets: GET /status lists every budget that applies, the
// binding one first and marked, caps with their pattern; the user's own
// line has the status's figures.
func TestStatusBudgets(t *testing.T) {
	f := newTeamFixture(t)
	st := f.get("/status", "tok-tina")
	ls := st["budgets"].([]any)
	var order []string
	for _, l := range ls {
		m := l.(map[string]any)
		order = append(order, m["scope"].(string)+":"+m["id"].(string)+":"+toString(m["pattern"])+":"+toString(m["binding"]))
	}
	// The $1 cap has the least room (0.70): it binds.
	want := []string{"team:research:gpt-4o*:true", "user:tina::", "team:research::", "org:acme::"}
	if d := cmp.Diff(want, order); d != "" {
		t.Errorf("tina's budgets (-want +got):\n%s", d)
	}
	lines := budgetLines(t, st)
	own := lines["user:tina"]
	for _, k := range []string{"limit_usd", "spent_usd", "reserved_usd", "remaining_usd", "percent_used", "alert_level", "enforce_budget", "budget_period", "current_period_start", "current_period_end"} {
		if own[k] != st[k] {
			t.Errorf("tina's own line %s = %v, status %v", k, own[k], st[k])
		}
	}
	if cp := lines["team:research:gpt-4o*"]; cp["limit_usd"] != "1" || cp["spent_usd"] != "0.3" || cp["remaining_usd"] != "0.7" || cp["alert_level"] != "green" {
		t.Errorf("the cap's line: %v", cp)
	}
	// The team's limit under tina's room: the team binds.
	f.do(req{method: "PUT", path: "/admin/teams/research", token: "tok-root", body: `{"limit_usd": "0.6", "model_caps": []}`})
	lines = budgetLines(t, f.get("/status", "tok-tina"))
	if l := lines["team:research"]; l["binding"] != true || l["remaining_usd"] != "0.1" || l["alert_level"] != "yellow" || len(lines) != 3 {
		t.Errorf("the team binds: %v", lines)
	}
	// An enforced budget binds before one that is not.
	f.do(req{method: "PUT", path: "/admin/teams/research", token: "tok-root", body: `{"enforce_budget": false}`})
	if l := budgetLines(t, f.get("/status", "tok-tina"))["user:tina"]; l["binding"] != true {
		t.Errorf("tina's own budget binds when the team's is not enforced: %v", l)
	}
	// A user whose own budget is the only one, and not enforced: one line,
	// which does not bind.
	f.do(req{method: "PUT", path: "/admin/configure", token: "tok-root", body: `{"user_id": "pete", "enforce_budget": false}`})
	if ls := f.get("/status", "tok-pete")["budgets"].([]any); len(ls) != 1 || ls[0].(map[string]any)["binding"] != nil ||
		ls[0].(map[string]any)["enforce_budget"] != false {
		t.Errorf("pete's unenforced budget: %v", ls)
	}
	// A hidden budget is hidden, whatever the teams.
	f.do(req{method: "PUT", path: "/admin/users/hank/membership", token: "tok-root", body: `{"teams": ["research"]}`})
	if r := f.do(req{method: "GET", path: "/status", token: "tok-hank"}); r.status != 403 || !r.problem(t).Hidden {
		t.Errorf("hank's status: %d %s", r.status, r.body)
	}
}

// TestNoOtherTeamsFigures: a user reads a team's or an org's figures only
// on their own status; no route shows otto research's or acme's, or tina
// ops'.
func TestNoOtherTeamsFigures(t *testing.T) {
	f := newTeamFixture(t)
	userRoutes := []string{"/me", "/status", "/settings", "/usage/history", "/usage/breakdown",
		"/usage/breakdown?from=2025-03-01T00:00:00Z&to=2025-04-01T00:00:00Z"}
	adminRoutes := []string{"/admin/budgets?kind=team", "/admin/budgets?kind=org", "/admin/list",
		"/admin/audit?scope=team:research", "/admin/users/tina", "/admin/users/tina/usage/history"}
	for _, kind := range []string{"teams/research", "teams/ops", "orgs/acme"} {
		for _, tail := range []string{"", "/members", "/usage/history", "/usage/breakdown"} {
			adminRoutes = append(adminRoutes, "/admin/"+kind+tail)
		}
	}
	for _, c := range []struct {
		token  string
		others []string // what the user must not see
	}{
		{"tok-otto", []string{"research", "acme", "gpt-4o*", "tina"}},
		{"tok-tina", []string{"ops", "otto", "0.15"}},
		{"tok-pete", []string{"research", "acme", "ops", "team", "org"}},
	} {
		for _, p := range userRoutes {
			r := f.do(req{method: "GET", path: p, token: c.token})
			if r.status != 200 {
				t.Errorf("%s as %s: %d", p, c.token, r.status)
			}
			for _, o := range c.others {
				if strings.Contains(string(r.body), o) {
					t.Errorf("%s as %s shows %q: %s", p, c.token, o, r.body)
				}
			}
		}
		for _, p := range adminRoutes {
			if r := f.do(req{method: "GET", path: p, token: c.token}); r.status != 403 {
				t.Errorf("%s as %s: %d %s", p, c.token, r.status, r.body)
			}
		}
	}
	// otto sees his own team.
	if _, ok := budgetLines(t, f.get("/status", "tok-otto"))["team:ops"]; !ok {
		t.Error("otto does not see ops")
	}
}

// TestTeamUsage: a team's or an org's usage has the shapes of a user's,
// each record naming the member who spent, and no store key anywhere.
func TestTeamUsage(t *testing.T) {
	f := newTeamFixture(t)
	h := f.get("/admin/teams/research/usage/history?limit=1", "tok-root")
	us := h["usage"].([]any)
	if len(us) != 1 || us[0].(map[string]any)["user_id"] != "tina" || us[0].(map[string]any)["model"] != "claude" || h["next_cursor"] == nil {
		t.Fatalf("research's history: %v", h)
	}
	h = f.get("/admin/teams/research/usage/history?limit=1&cursor="+url.QueryEscape(h["next_cursor"].(string)), "tok-root")
	if us := h["usage"].([]any); len(us) != 1 || us[0].(map[string]any)["cost_usd"] != "0.3" || h["next_cursor"] != nil {
		t.Errorf("research's second page: %v", h)
	}
	b := f.get("/admin/orgs/acme/usage/breakdown", "tok-root")
	if b["scope"] != "org" || b["id"] != "acme" || b["user_id"] != nil || b["total"].(map[string]any)["cost_usd"] != "0.5" ||
		len(b["by_model"].([]any)) != 2 {
		t.Errorf("acme's breakdown: %v", b)
	}
	// A user's own records keep their shape: no user_id.
	if u := f.get("/usage/history", "tok-tina")["usage"].([]any)[0].(map[string]any); u["user_id"] != nil {
		t.Errorf("tina's own record: %v", u)
	}
	if u := f.get("/usage/breakdown", "tok-tina"); u["user_id"] != "tina" || u["scope"] != nil {
		t.Errorf("tina's own breakdown: %v", u)
	}
	for _, p := range []string{"/admin/teams/research/usage/history", "/admin/teams/research/usage/breakdown",
		"/admin/orgs/acme/usage/history", "/admin/audit?limit=500", "/admin/budgets?kind=team", "/admin/budgets?kind=org"} {
		if r := f.do(req{method: "GET", path: p, token: "tok-root"}); strings.Contains(string(r.body), `\u001f`) {
			t.Errorf("%s shows a store key: %s", p, r.body)
		}
	}
}

// TestAuditScope: GET /admin/audit?scope= keeps one holder's entries;
// "user:tina" is user_id=tina; a team's entries name it by scope and
// budget_id, with its settings before and after.
func TestAuditScope(t *testing.T) {
	f := newTeamFixture(t)
	es := f.get("/admin/audit?scope=team:research", "tok-root")["entries"].([]any)
	if len(es) != 2 {
		t.Fatalf("research's entries: %v", es)
	}
	for _, e := range es {
		m := e.(map[string]any)
		if m["scope"] != "team" || m["budget_id"] != "research" || m["user_id"] != nil {
			t.Errorf("entry %v", m)
		}
	}
	first := es[1].(map[string]any) // the oldest: the creation with its cap
	after := first["after"].(map[string]any)
	if after["id"] != "research" || after["limit_usd"] != "100" || after["spent_usd"] != nil ||
		toJSON(after["model_caps"]) != `[{"limit_usd":"1","pattern":"gpt-4o*"}]` || after["budget_visible_to_user"] != nil {
		t.Errorf("research's settings after: %v", after)
	}
	if cs := toJSON(first["changes"]); !strings.Contains(cs, `{"after":"gpt-4o*: 1","before":"","field":"model_caps"}`) {
		t.Errorf("research's changes: %s", cs)
	}
	byScope := f.get("/admin/audit?scope=user:tina", "tok-root")
	byID := f.get("/admin/audit?user_id=tina", "tok-root")
	if d := cmp.Diff(byID, byScope); d != "" || len(byID["entries"].([]any)) == 0 {
		t.Errorf("scope=user:tina against user_id=tina (-user_id +scope):\n%s", d)
	}
	if es := f.get("/admin/audit?scope=org:ghost", "tok-root")["entries"].([]any); len(es) != 0 {
		t.Errorf("an unknown org's entries: %v", es)
	}
}

// TestUserTeamsInLists: GET /admin/list shows each user's teams and org,
// and nothing for a user in none.
func TestUserTeamsInLists(t *testing.T) {
	f := newTeamFixture(t)
	users := map[string]map[string]any{}
	for _, u := range f.get("/admin/list", "tok-root")["users"].([]any) {
		users[u.(map[string]any)["user_id"].(string)] = u.(map[string]any)
	}
	if tina := users["tina"]; toJSON(tina["teams"]) != `["research"]` || tina["org"] != "acme" {
		t.Errorf("tina: %v", tina)
	}
	if otto := users["otto"]; toJSON(otto["teams"]) != `["ops"]` || otto["org"] != nil {
		t.Errorf("otto: %v", otto)
	}
	if _, ok := users["pete"]["teams"]; ok {
		t.Errorf("pete: %v", users["pete"])
	}
	// A user's own model caps show to admins, and bind the user.
	caps := []budget.ModelCap{{Pattern: "claude*", Limit: budget.MustAmount("0.25")}}
	if _, err := f.m.UpdateSettings(context.Background(), rootP, "tina", budget.SettingsUpdate{ModelCaps: &caps}); err != nil {
		t.Fatal(err)
	}
	if u := f.get("/admin/users/tina", "tok-root"); toJSON(u["model_caps"]) != `[{"limit_usd":"0.25","pattern":"claude*"}]` {
		t.Errorf("tina's caps: %v", u["model_caps"])
	}
	// (A new cap counts from when it is set: its room is whole.)
	if l := budgetLines(t, f.get("/status", "tok-tina"))["user:tina:claude*"]; l["binding"] != true || l["remaining_usd"] != "0.25" {
		t.Errorf("tina's own cap: %v", l)
	}
	// The user's own settings do not list them.
	if s := f.get("/settings", "tok-tina"); s["teams"] != nil || s["org"] != nil {
		t.Errorf("tina's own settings: %v", s)
	}
}

// decode decodes a JSON body of any status, numbers as json.Number.
func decode(t *testing.T, r response) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(string(r.body)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	return m
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func slicesContain(v any, s string) bool {
	for _, x := range v.([]any) {
		if x == s {
			return true
		}
	}
	return false
}
