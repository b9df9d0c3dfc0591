package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmbudget/budget"
)

// TestRefusalProblem: a LimitError, however wrapped, is a 429 naming the
// budget that refused (scope, budget_id and, for a cap, pattern) and when
// it frees up, with no amounts.
func TestRefusalProblem(t *testing.T) {
	end := time.Date(2025, time.April, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		le                     budget.LimitError
		scope, id, pattern, in string
	}{
		{budget.LimitError{UserID: "alice", Scope: budget.User("alice")}, "user", "alice", "", `the user "alice" budget`},
		{budget.LimitError{UserID: "alice"}, "user", "alice", "", `the user "alice" budget`}, // no Scope: the user's own
		{budget.LimitError{UserID: "alice", Scope: budget.Team("research")}, "team", "research", "", `the team "research" budget`},
		{budget.LimitError{UserID: "alice", Scope: budget.Org("acme"), Pattern: "gpt-4o*"}, "org", "acme", "gpt-4o*", `the gpt-4o* cap of the org "acme" budget`},
	} {
		c.le.Limit, c.le.Spent, c.le.Requested, c.le.PeriodEnd = budget.MustAmount("500"), budget.MustAmount("499.5"), budget.MustAmount("1.25"), end
		p, internal := problemFor(fmt.Errorf("reserving: %w", &c.le))
		if internal || p.Status != http.StatusTooManyRequests || p.Type != ProblemBudgetExceeded || p.Title != "Budget exceeded" {
			t.Fatalf("%v: %+v internal %v", c.le, p, internal)
		}
		if p.Scope != c.scope || p.BudgetID != c.id || p.Pattern != c.pattern {
			t.Errorf("%v: scope %q budget_id %q pattern %q", c.le, p.Scope, p.BudgetID, p.Pattern)
		}
		if !strings.Contains(p.Detail, c.in) || !strings.Contains(p.Detail, "2025-04-01T00:00:00Z") ||
			strings.Contains(p.Detail, "499.5") || strings.Contains(p.Detail, "1.25") {
			t.Errorf("detail %q, want %q and the reset time, and no amounts", p.Detail, c.in)
		}
	}
}
