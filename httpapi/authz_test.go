package httpapi_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/llmbudget/budget/httpapi"
)

// roles are the columns of the authorization matrix: the token each sends.
var roles = []struct{ name, token string }{
	{"no token", ""},
	{"bad token", "tok-nobody"},
	{"user", "tok-carol"},
	{"hidden", "tok-hank"},
	{"no permission", "tok-nora"},
	{"permission", "tok-pete"},
	{"admin", "tok-root"},
	{"team member", "tok-tina"}, // in the team research and the org acme
	{"other team", "tok-otto"},  // in the team ops: a user of another team
}

// TestAuthorizationMatrix sends a valid request to every endpoint as every
// role, and checks the status code of each cell; that a refused request
// changed nothing (settings, versions, statuses, audit log, defaults, teams,
// orgs, memberships); and that an accepted write changed something.
func TestAuthorizationMatrix(t *testing.T) {
	const (
		read  = "200 403 200 200 200" // user, hidden, no permission, permission, admin
		admin = "403 403 403 403 200"
		// The team routes, with the two team roles: a member of the team
		// or org the path names, and a member of another team.
		teamAdmin   = "403 403 403 403 200 403 403"
		teamCreate  = "403 403 403 403 201 403 403"
		teamDelete  = "403 403 403 403 204 403 403"
		statusTeams = "200 403 200 200 200 200 200"
	)
	endpoints := []struct {
		name, method, path, body string
		write                    bool
		// want is the status for the authenticated roles, in the order of
		// roles; when it lists five, the two team roles (on the default
		// plan, as the user is) answer as the user does.
		want string
	}{
		{"status", "GET", "/status", "", false, read},
		{"settings", "GET", "/settings", "", false, read},
		{"settings limit", "PUT", "/settings", `{"limit_usd": "55"}`, true, "403 403 403 200 200"},
		{"settings thresholds", "PUT", "/settings", `{"alert_threshold_yellow": "60"}`, true, "403 403 403 200 200"},
		{"settings permissions", "PUT", "/settings", `{"user_can_reset_budget": false}`, true, "403 403 403 403 200"},
		{"reset", "POST", "/reset", `{"reason": "new project"}`, true, "403 403 403 200 200"},
		{"breakdown", "GET", "/usage/breakdown", "", false, read},
		{"breakdown range", "GET", "/usage/breakdown?from=2025-03-01T00:00:00Z&to=2025-04-01T00:00:00Z", "", false, read},
		{"history", "GET", "/usage/history?limit=2", "", false, read},
		{"configure", "PUT", "/admin/configure", `{"user_id": "tess", "limit_usd": "60", "admin_notes": "raised"}`, true, admin},
		{"configure new user", "PUT", "/admin/configure", `{"user_id": "newbie", "limit_usd": "5"}`, true, admin},
		{"list", "GET", "/admin/list?limit=2", "", false, admin},
		{"list empty filters", "GET", "/admin/list?q=&level=&cursor=", "", false, admin},
		{"admin reset", "POST", "/admin/reset/tess", `{"reason": "refund"}`, true, admin},
		{"audit", "GET", "/admin/audit?user_id=tess", "", false, admin},
		{"audit all", "GET", "/admin/audit?user_id=&cursor=", "", false, admin},
		{"user", "GET", "/admin/users/tess", "", false, admin},
		{"defaults", "GET", "/admin/defaults", "", false, admin},
		{"put defaults", "PUT", "/admin/defaults", `{"limit_usd": "25"}`, true, admin},
		{"me", "GET", "/me", "", false, "200 200 200 200 200"},
		{"reset new limit", "POST", "/reset", `{"reason": "raise", "limit_usd": "45"}`, true, "403 403 403 200 200"},
		{"admin reset new limit", "POST", "/admin/reset/tess", `{"limit_usd": "45"}`, true, admin},
		{"audit by type", "GET", "/admin/audit?type=settings", "", false, admin},
		// The user the path names is pete: as pete, the user themself; as
		// carol or nora, another user.
		{"user history", "GET", "/admin/users/pete/usage/history?limit=2", "", false, admin},
		{"user breakdown", "GET", "/admin/users/pete/usage/breakdown", "", false, admin},
		{"hidden user history", "GET", "/admin/users/hank/usage/history", "", false, admin},
		{"access", "GET", "/admin/access", "", false, admin},
		{"access off", "PUT", "/admin/access", `{"enabled": false}`, true, admin},
		{"access on", "PUT", "/admin/access", `{"enabled": true}`, true, admin},
		{"bulk", "POST", "/admin/bulk", `{"user_ids": ["pete", "tess"], "changes": {"limit_usd": "45"}}`, true, admin},
		{"bulk match", "POST", "/admin/bulk", `{"match": {"q": "e", "level": "green"}, "changes": {"enforce_budget": false}}`, true, admin},
		{"bulk template", "POST", "/admin/bulk", `{"user_ids": ["tess"], "template": "intern"}`, true, admin},
		{"templates", "GET", "/admin/templates", "", false, admin},
		{"template", "GET", "/admin/templates/intern", "", false, admin},
		{"put template", "PUT", "/admin/templates/intern", `{"limit_usd": "6"}`, true, admin},
		{"new template", "PUT", "/admin/templates/researcher", `{"limit_usd": "200", "user_can_modify_limit": true}`, true, admin},
		{"delete template", "DELETE", "/admin/templates/intern", "", true, "403 403 403 403 204"},

		// Teams and orgs. tina is in research and acme; otto in ops.
		{"status with teams", "GET", "/status", "", false, statusTeams},
		{"budgets of teams", "GET", "/admin/budgets?kind=team", "", false, teamAdmin},
		{"budgets of orgs", "GET", "/admin/budgets?kind=org&q=ac&level=green&limit=5&cursor=", "", false, teamAdmin},
		{"team", "GET", "/admin/teams/research", "", false, teamAdmin},
		{"org", "GET", "/admin/orgs/acme", "", false, teamAdmin},
		{"put team", "PUT", "/admin/teams/research", `{"limit_usd": "150", "model_caps": [{"pattern": "claude-*", "limit_usd": "5"}]}`, true, teamAdmin},
		{"new team", "PUT", "/admin/teams/design", `{"limit_usd": "20", "admin_notes": "new"}`, true, teamCreate},
		{"put org", "PUT", "/admin/orgs/acme", `{"limit_usd": "2000", "enforce_budget": false}`, true, teamAdmin},
		{"new org", "PUT", "/admin/orgs/globex", `{}`, true, teamCreate},
		{"team members", "GET", "/admin/teams/research/members", "", false, teamAdmin},
		{"org members", "GET", "/admin/orgs/acme/members", "", false, teamAdmin},
		{"add member", "POST", "/admin/teams/research/members", `{"user_id": "pete"}`, true, teamAdmin},
		{"add member of another team", "POST", "/admin/teams/research/members", `{"user_id": "otto"}`, true, teamAdmin},
		{"remove member", "DELETE", "/admin/teams/research/members/tina", "", true, teamDelete},
		{"membership", "PUT", "/admin/users/pete/membership", `{"teams": ["research", "ops"], "org": "acme"}`, true, teamAdmin},
		{"membership none", "PUT", "/admin/users/tina/membership", `{"teams": []}`, true, teamAdmin},
		{"team into org", "PUT", "/admin/teams/ops/org", `{"org": "acme"}`, true, teamAdmin},
		{"team out of org", "PUT", "/admin/teams/research/org", `{"org": ""}`, true, teamAdmin},
		{"team history", "GET", "/admin/teams/research/usage/history?limit=2", "", false, teamAdmin},
		{"team breakdown", "GET", "/admin/teams/research/usage/breakdown", "", false, teamAdmin},
		{"org history", "GET", "/admin/orgs/acme/usage/history", "", false, teamAdmin},
		{"org breakdown", "GET", "/admin/orgs/acme/usage/breakdown?from=2025-03-01T00:00:00Z&to=2025-04-01T00:00:00Z", "", false, teamAdmin},
		{"audit of a team", "GET", "/admin/audit?scope=team:research", "", false, teamAdmin},
		{"audit of a user by scope", "GET", "/admin/audit?scope=user:tina&type=settings", "", false, teamAdmin},

		// Insights: spend per day, CSV exports and imports.
		{"daily", "GET", "/usage/daily", "", false, read},
		{"daily range", "GET", "/usage/daily?from=2025-03-01T00:00:00Z&to=2025-04-01T00:00:00Z", "", false, read},
		{"history csv", "GET", "/usage/history?format=csv", "", false, read},
		{"history csv range", "GET", "/usage/history?format=csv&from=2025-03-01T00:00:00Z&to=2025-04-01T00:00:00Z", "", false, read},
		{"history json range", "GET", "/usage/history?format=json&from=2025-03-01T00:00:00Z&to=2025-04-01T00:00:00Z", "", false, read},
		{"user daily", "GET", "/admin/users/pete/usage/daily", "", false, admin},
		{"hidden user daily", "GET", "/admin/users/hank/usage/daily?from=2025-03-01T00:00:00Z&to=2025-04-01T00:00:00Z", "", false, admin},
		{"user history csv", "GET", "/admin/users/pete/usage/history?format=csv", "", false, admin},
		{"team history csv", "GET", "/admin/teams/research/usage/history?format=csv", "", false, teamAdmin},
		{"team daily", "GET", "/admin/teams/research/usage/daily", "", false, teamAdmin},
		{"org daily", "GET", "/admin/orgs/acme/usage/daily?from=2025-03-01T00:00:00Z&to=2025-04-01T00:00:00Z", "", false, teamAdmin},
		{"org history csv", "GET", "/admin/orgs/acme/usage/history?format=csv&from=2025-03-01T00:00:00Z&to=2025-04-01T00:00:00Z", "", false, teamAdmin},
		{"audit csv", "GET", "/admin/audit?format=csv", "", false, admin},
		{"audit csv of a user", "GET", "/admin/audit?format=csv&user_id=tess&type=settings", "", false, admin},
		{"import settings dry run", "POST", "/admin/import/settings?dry_run=true", importSettingsCSV, false, admin},
		{"import settings", "POST", "/admin/import/settings?reason=migration", importSettingsCSV, true, admin},
		{"import seed dry run", "POST", "/admin/import/seed?dry_run=true", seedBody, false, admin},
		{"import seed", "POST", "/admin/import/seed", seedBody, true, admin},
	}
	for _, ep := range endpoints {
		codes := strings.Fields(ep.want)
		if len(codes) == 5 {
			codes = append(codes, codes[0], codes[0])
		}
		want := append([]string{"401", "401"}, codes...)
		if len(want) != len(roles) {
			t.Fatalf("%s: %d statuses for %d roles", ep.name, len(want), len(roles))
		}
		for i, role := range roles {
			t.Run(ep.name+"/"+role.name, func(t *testing.T) {
				f := newTeamFixture(t)
				before := f.state()
				r := f.do(req{method: ep.method, path: ep.path, token: role.token, body: ep.body, contentType: contentTypeFor(ep.path)})
				if got := r.status; want[i] != strconv.Itoa(got) {
					t.Fatalf("%s %s as %s: status %d, want %s; body %s", ep.method, ep.path, role.name, got, want[i], r.body)
				}
				after := f.state()
				switch {
				case r.status >= 300:
					if d := diff(before, after); d != "" {
						t.Errorf("a refused %s changed the state (-before +after):\n%s", ep.name, d)
					}
					p := r.problem(t)
					checkRefusal(t, role.name == "hidden" && !strings.HasPrefix(ep.path, "/admin/"), r, p)
				case ep.write:
					if diff(before, after) == "" {
						t.Errorf("an accepted %s changed nothing", ep.name)
					}
				default:
					if d := diff(before, after); d != "" {
						t.Errorf("a read changed the state (-before +after):\n%s", d)
					}
				}
				checkHeaders(t, r)
			})
		}
	}
}

// checkRefusal checks the problem of a refused cell.
func checkRefusal(t *testing.T, hidden bool, r response, p httpapi.Problem) {
	t.Helper()
	switch r.status {
	case http.StatusUnauthorized:
		if p.Type != httpapi.ProblemUnauthenticated || r.header.Get("WWW-Authenticate") != "Bearer" {
			t.Errorf("401: type %q, WWW-Authenticate %q", p.Type, r.header.Get("WWW-Authenticate"))
		}
	case http.StatusForbidden:
		if hidden {
			if p.Type != httpapi.ProblemBudgetHidden || !p.Hidden || !strings.Contains(p.Detail, "hidden") {
				t.Errorf("hidden budget: problem %+v, want type %s, hidden true and a detail saying so", p, httpapi.ProblemBudgetHidden)
			}
		} else if p.Type != httpapi.ProblemForbidden || p.Hidden {
			t.Errorf("403: problem %+v, want type %s", p, httpapi.ProblemForbidden)
		}
	}
}

// checkHeaders checks the headers every response carries.
func checkHeaders(t *testing.T, r response) {
	t.Helper()
	if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q", got)
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q", got)
	}
	if r.status == http.StatusOK {
		want := "application/json; charset=utf-8"
		if r.header.Get("Content-Disposition") != "" { // a CSV download
			want = "text/csv; charset=utf-8"
		}
		if got := r.header.Get("Content-Type"); got != want {
			t.Errorf("Content-Type %q, want %q", got, want)
		}
	}
}

// The bodies of the imports in the matrix.
const (
	importSettingsCSV = "user_id,limit_usd,admin_notes\r\ntess,61,imported\r\n"
	seedBoundary      = "seedboundary"
	seedBody          = "--" + seedBoundary + "\r\n" +
		"Content-Disposition: form-data; name=\"user_budget_settings\"; filename=\"user_budget_settings.csv\"\r\n" +
		"Content-Type: text/csv\r\n\r\n" +
		"id,user_id,monthly_limit_usd,budget_period,enforce_budget\n1,carol,12.5,monthly,1\n\r\n" +
		"--" + seedBoundary + "\r\n" +
		"Content-Disposition: form-data; name=\"budget_reset_log\"; filename=\"budget_reset_log.csv\"\r\n" +
		"Content-Type: text/csv\r\n\r\n" +
		"id,user_id,reset_type,reset_by,previous_limit,new_limit,previous_spent,reset_at,reason\n" +
		"1,tess,manual,root,50,50,3.2,2025-02-01 00:00:00,seed reset\n\r\n" +
		"--" + seedBoundary + "--\r\n"
)

// contentTypeFor is the Content-Type of a matrix request's body: CSV for
// the settings import, multipart for the seed import, JSON elsewhere.
func contentTypeFor(path string) string {
	switch {
	case strings.HasPrefix(path, "/admin/import/settings"):
		return "text/csv"
	case strings.HasPrefix(path, "/admin/import/seed"):
		return "multipart/form-data; boundary=" + seedBoundary
	}
	return ""
}
