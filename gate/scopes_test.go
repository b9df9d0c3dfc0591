package gate_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/gate"
)

// The gate names the model of every call it reserves for, so model caps
// apply, and a refusal says which budget refused: here, a team's cap.
func TestGateModelCapOfTeam(t *testing.T) {
	h := newHarness(t, "100", gate.Options{})
	admin := budget.Principal{UserID: "root", Admin: true}
	limit := budget.MustAmount("50")
	caps := []budget.ModelCap{{Pattern: "gpt-4o", Limit: budget.MustAmount("0.001")}}
	if _, err := h.m.UpdateBudget(h.ctx, admin, budget.Team("research"), budget.SettingsUpdate{Limit: &limit, ModelCaps: &caps}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.SetMembership(h.ctx, admin, "alice", budget.Membership{Teams: []string{"research"}}); err != nil {
		t.Fatal(err)
	}
	_, err := h.post(h.ctx, "/v1/chat/completions", chatBody)
	var le *budget.LimitError
	if !errors.As(err, &le) || le.Scope != budget.Team("research") || le.Pattern != "gpt-4o" {
		t.Fatalf("a gpt-4o call past the team's cap: %v, want a refusal by the cap", err)
	}
	if !strings.Contains(err.Error(), `the gpt-4o cap of team "research" has too little left`) {
		t.Errorf("refusal %q does not name the cap", err)
	}
	if n := h.up.calls.Load(); n != 0 {
		t.Errorf("upstream called %d times", n)
	}
	// gpt-4o-mini is not capped: it passes, and spends the team too.
	if status, body := h.call(t, "/v1/chat/completions", strings.Replace(chatBody, `"gpt-4o"`, `"gpt-4o-mini"`, 1)); status != 200 {
		t.Fatalf("a gpt-4o-mini call: %d %s", status, body)
	}
	st, err := h.m.BudgetStatus(h.ctx, budget.Team("research"))
	if err != nil {
		t.Fatal(err)
	}
	if !st.Spent.Equal(budget.MustAmount(costGPT4oMini)) || !st.Reserved.IsZero() {
		t.Errorf("the team spent %s with %s reserved, want %s and 0", st.Spent, st.Reserved, costGPT4oMini)
	}
}
