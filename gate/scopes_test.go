package gate_test

import (
	"encoding/json"
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

// With RefuseWithStatus, the 429 names the budget that refused in fields a
// program can read, in each API's error shape: a team's cap here, the
// user's own budget below.
func TestRefusalNamesBudget(t *testing.T) {
	h := newHarness(t, "100", gate.Options{RefuseWithStatus: true})
	admin := budget.Principal{UserID: "root", Admin: true}
	limit := budget.MustAmount("50")
	tiny := budget.MustAmount("0.000001")
	caps := []budget.ModelCap{{Pattern: "gpt-4o", Limit: tiny}, {Pattern: "claude-*", Limit: tiny}, {Pattern: "gemini-*", Limit: tiny}}
	if _, err := h.m.UpdateBudget(h.ctx, admin, budget.Team("research"), budget.SettingsUpdate{Limit: &limit, ModelCaps: &caps}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.SetMembership(h.ctx, admin, "alice", budget.Membership{Teams: []string{"research"}}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, path, body, pattern string
		named                     func(map[string]any) any
	}{
		{"openai", "/v1/chat/completions", chatBody, "gpt-4o", func(v map[string]any) any { return dig(v, "error", "budget") }},
		{"anthropic", "/v1/messages", claudeBody, "claude-*", func(v map[string]any) any { return dig(v, "error", "details") }},
		{"gemini", "/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":[{"parts":[{"text":"hi"}]}]}`, "gemini-*", func(v map[string]any) any {
			d, _ := dig(v, "error", "details").([]any)
			if len(d) != 1 {
				return nil
			}
			m, _ := d[0].(map[string]any)
			return m["metadata"]
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := h.call(t, tt.path, tt.body)
			var v map[string]any
			if err := json.Unmarshal([]byte(body), &v); err != nil || status != 429 {
				t.Fatalf("%d %s (%v), want a 429 with a JSON body", status, body, err)
			}
			named, _ := tt.named(v).(map[string]any)
			if named["scope"] != "team" || named["budget_id"] != "research" || named["pattern"] != tt.pattern || named["resets_at"] == nil {
				t.Errorf("the budget named in %s: %v, want team research's %s cap and its reset", body, named, tt.pattern)
			}
		})
	}
	// The user's own budget: no pattern.
	u := newHarness(t, "0.000001", gate.Options{RefuseWithStatus: true})
	status, body := u.call(t, "/v1/chat/completions", chatBody)
	var v map[string]any
	if err := json.Unmarshal([]byte(body), &v); err != nil || status != 429 {
		t.Fatalf("%d %s (%v)", status, body, err)
	}
	named, _ := dig(v, "error", "budget").(map[string]any)
	if _, hasPattern := named["pattern"]; named["scope"] != "user" || named["budget_id"] != "alice" || hasPattern {
		t.Errorf("the budget named in %s: %v, want user alice's own", body, named)
	}
}

// dig returns v[keys[0]][keys[1]]..., or nil.
func dig(v map[string]any, keys ...string) any {
	var cur any = v
	for _, k := range keys {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}
