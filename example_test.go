package budget_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/memory"
	"github.com/shopspring/decimal"
)

// exampleStart is the fixed instant the examples' clocks begin at.
var exampleStart = time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC)

// newExampleManager returns a Manager over a fresh memory store whose clock
// reads *now, so an example can move time by hand. New users get the
// built-in default plan: $30 a month, enforced, visible and view-only.
func newExampleManager(now *time.Time) *budget.Manager {
	return budget.NewManager(memory.New(), budget.Options{
		Now: func() time.Time { return *now },
	})
}

func ExampleManager_Reserve() {
	ctx := context.Background()
	now := exampleStart
	m := newExampleManager(&now)

	// Before the model call: hold the most it can cost.
	r, err := m.Reserve(ctx, "alice", budget.MustAmount("0.50"))
	if errors.Is(err, budget.ErrBudgetExceeded) {
		fmt.Println("refused:", err)
		return
	}
	if err != nil {
		panic(err)
	}
	defer r.Release(ctx) // a no-op once settled

	st, _ := m.Status(ctx, "alice")
	fmt.Println("held:", st.Reserved, "remaining:", st.Remaining)

	// After the model call: record what it actually cost.
	st, err = r.Settle(ctx, budget.Usage{
		Provider: "openai", Model: "gpt-4o",
		InputTokens: 1200, OutputTokens: 350,
		Cost: budget.MustAmount("0.42"),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("spent:", st.Spent, "held:", st.Reserved, "remaining:", st.Remaining)
	fmt.Println("limit:", st.Limit, st.Period, "until", st.PeriodEnd.Format(time.DateOnly))
	// Output:
	// held: 0.5 remaining: 29.5
	// spent: 0.42 held: 0 remaining: 29.58
	// limit: 30 monthly until 2025-04-01
}

func ExampleReservation_Release() {
	ctx := context.Background()
	now := exampleStart
	m := newExampleManager(&now)

	// callModel reserves the estimate and defers Release, so the hold is
	// freed on every path that does not reach Settle.
	callModel := func(estimate string, fail bool) error {
		r, err := m.Reserve(ctx, "alice", budget.MustAmount(estimate))
		if err != nil {
			return err // refused or failed: do not call the model
		}
		defer r.Release(ctx)
		if fail {
			return errors.New("model timed out")
		}
		_, err = r.Settle(ctx, budget.Usage{Cost: budget.MustAmount(estimate)})
		return err
	}

	fmt.Println("call 1:", callModel("5", true))
	st, _ := m.Status(ctx, "alice")
	fmt.Println("spent:", st.Spent, "held:", st.Reserved)

	fmt.Println("call 2:", callModel("5", false))
	err := callModel("26", false)
	fmt.Println("call 3 exceeds the budget:", errors.Is(err, budget.ErrBudgetExceeded))
	var lim *budget.LimitError
	if errors.As(err, &lim) {
		fmt.Println("limit:", lim.Limit, "spent:", lim.Spent, "requested:", lim.Requested)
	}
	// Output:
	// call 1: model timed out
	// spent: 0 held: 0
	// call 2: <nil>
	// call 3 exceeds the budget: true
	// limit: 30 spent: 5 requested: 26
}

func ExampleManager_Record() {
	ctx := context.Background()
	now := exampleStart
	m := newExampleManager(&now)

	// Usage reported after the fact, e.g. from a provider's billing
	// webhook that may deliver the same event twice.
	u := budget.Usage{ID: "evt_123", Provider: "anthropic", Model: "claude", Cost: budget.MustAmount("2.50")}
	st, err := m.Record(ctx, "alice", u)
	fmt.Println("first:", st.Spent, err)

	_, err = m.Record(ctx, "alice", u)
	fmt.Println("again is a duplicate:", errors.Is(err, budget.ErrDuplicate))

	st, _ = m.Status(ctx, "alice")
	fmt.Println("spent:", st.Spent)
	// Output:
	// first: 2.5 <nil>
	// again is a duplicate: true
	// spent: 2.5
}

func ExampleManager_Status() {
	ctx := context.Background()
	now := exampleStart
	m := budget.NewManager(memory.New(), budget.Options{
		Now: func() time.Time { return now },
		OnAlert: func(a budget.Alert) {
			fmt.Println("alert:", a.UserID, "reached", a.Level)
		},
	})

	for _, cost := range []string{"20", "5", "3"} {
		if _, err := m.Record(ctx, "alice", budget.Usage{Cost: budget.MustAmount(cost)}); err != nil {
			panic(err)
		}
		st, _ := m.Status(ctx, "alice")
		fmt.Printf("spent %s of %s (%s%%): %s\n", st.Spent, st.Limit, st.Percent, st.Level)
	}
	// Output:
	// spent 20 of 30 (66.66%): green
	// alert: alice reached yellow
	// spent 25 of 30 (83.33%): yellow
	// alert: alice reached orange
	// spent 28 of 30 (93.33%): orange
}

func ExampleManager_Reset() {
	ctx := context.Background()
	now := exampleStart
	m := newExampleManager(&now)
	admin := budget.Principal{UserID: "root", Admin: true}

	if _, err := m.Record(ctx, "alice", budget.Usage{ID: "call-1", Cost: budget.MustAmount("12.5")}); err != nil {
		panic(err)
	}

	now = now.Add(time.Hour)
	e, err := m.Reset(ctx, admin, "alice", budget.ResetOptions{Reason: "approved extra work"})
	if err != nil {
		panic(err)
	}
	fmt.Println("reset by", e.Actor, "ended a period with", e.PreviousSpent, "spent")

	now = now.Add(time.Minute)
	st, _ := m.Status(ctx, "alice")
	fmt.Println("new period:", st.PeriodStart.Format(time.DateTime), "to", st.PeriodEnd.Format(time.DateTime))
	fmt.Println("spent:", st.Spent, "remaining:", st.Remaining)

	// Nothing is deleted: the usage stays in the history.
	h, _ := m.History(ctx, budget.UsageQuery{UserID: "alice"})
	for _, r := range h.Records {
		fmt.Println("history:", r.ID, r.Cost, r.At.Format(time.DateTime))
	}
	// Output:
	// reset by root ended a period with 12.5 spent
	// new period: 2025-03-14 10:00:00 to 2025-04-01 00:00:00
	// spent: 0 remaining: 30
	// history: call-1 12.5 2025-03-14 09:00:00
}

func ExampleManager_UpdateSettings() {
	ctx := context.Background()
	now := exampleStart
	m := newExampleManager(&now)

	// New users are view-only by default: bob may not raise his own limit.
	limit := budget.MustAmount("50")
	bob := budget.Principal{UserID: "bob"}
	_, err := m.UpdateSettings(ctx, bob, "bob", budget.SettingsUpdate{Limit: &limit})
	fmt.Println("forbidden:", errors.Is(err, budget.ErrForbidden))
	var perr *budget.PermissionError
	if errors.As(err, &perr) {
		fmt.Println("field:", perr.Field, "-", perr.Reason)
	}

	// An admin may, and may let bob change it himself from now on.
	admin := budget.Principal{UserID: "root", Admin: true}
	yes := true
	s, err := m.UpdateSettings(ctx, admin, "bob", budget.SettingsUpdate{Limit: &limit, CanModify: &yes})
	if err != nil {
		panic(err)
	}
	fmt.Println("limit:", s.Limit, "can modify:", s.CanModify, "version:", s.Version)

	page, _ := m.AuditLog(ctx, admin, budget.AuditLogQuery{UserID: "bob"})
	for _, e := range page.Entries {
		fmt.Println("audit:", e.Type, "by", e.Actor, e.PreviousLimit, "->", e.NewLimit)
	}
	// Output:
	// forbidden: true
	// field: limit_usd - your administrator has not allowed you to modify this budget
	// limit: 50 can modify: true version: 2
	// audit: settings by root 30 -> 50
}

func ExampleManager_SetAccess() {
	ctx := context.Background()
	now := exampleStart
	m := budget.NewManager(memory.New(), budget.Options{
		Now:     func() time.Time { return now },
		IsAdmin: func(id string) bool { return id == "root" }, // the host knows its admins
	})
	admin := budget.Principal{UserID: "root", Admin: true}
	for _, id := range []string{"root", "alice", "bob"} {
		if _, err := m.Status(ctx, id); err != nil {
			panic(err)
		}
	}

	// One switch for every regular user, existing and new.
	ch, err := m.SetAccess(ctx, admin, false)
	if err != nil {
		panic(err)
	}
	fmt.Printf("budgets for regular users: on=%v, %d changed, %d of %d see theirs\n", ch.Enabled, ch.Changed, ch.Visible, ch.Users)

	_, err = m.StatusFor(ctx, budget.Principal{UserID: "alice"}, "alice")
	fmt.Println("alice sees hers:", err == nil)
	_, err = m.StatusFor(ctx, budget.Principal{UserID: "carol"}, "carol") // new since
	fmt.Println("carol sees hers:", err == nil)
	_, err = m.StatusFor(ctx, admin, "root")
	fmt.Println("the admin sees his:", err == nil)

	// Hidden is not unlimited: the limit is still enforced.
	_, err = m.Reserve(ctx, "alice", budget.MustAmount("31"))
	fmt.Println("alice over her limit:", errors.Is(err, budget.ErrBudgetExceeded))
	// Output:
	// budgets for regular users: on=false, 2 changed, 0 of 2 see theirs
	// alice sees hers: false
	// carol sees hers: false
	// the admin sees his: true
	// alice over her limit: true
}

func ExampleManager_ApplyTemplate() {
	ctx := context.Background()
	now := exampleStart
	m := newExampleManager(&now)
	admin := budget.Principal{UserID: "root", Admin: true}
	for _, id := range []string{"ann", "ben"} {
		if _, err := m.Status(ctx, id); err != nil {
			panic(err)
		}
	}

	// A template starts from the defaults: give what differs.
	limit, weekly := budget.MustAmount("5"), budget.Weekly
	if _, err := m.SaveTemplate(ctx, admin, "intern", budget.SettingsUpdate{Limit: &limit, Period: &weekly}); err != nil {
		panic(err)
	}
	res, err := m.ApplyTemplate(ctx, admin, "intern", budget.Selection{UserIDs: []string{"ann", "ben", "nobody"}})
	if err != nil {
		panic(err)
	}
	for _, r := range res.Results {
		if r.Err != nil {
			fmt.Println(r.UserID, "failed:", errors.Is(r.Err, budget.ErrNotFound))
			continue
		}
		fmt.Println(r.UserID, r.Settings.Limit, r.Settings.Period)
	}

	page, _ := m.AuditLog(ctx, admin, budget.AuditLogQuery{UserID: "ann"})
	for _, c := range page.Entries[0].Changes() {
		fmt.Printf("ann's %s: %s → %s (template %s)\n", c.Field, c.Before, c.After, page.Entries[0].Template)
	}
	// Output:
	// ann 5 weekly
	// ben 5 weekly
	// nobody failed: true
	// ann's limit_usd: 30 → 5 (template intern)
	// ann's budget_period: monthly → weekly (template intern)
}

func ExampleManager_SetMembership() {
	ctx := context.Background()
	now := exampleStart
	m := newExampleManager(&now)
	admin := budget.Principal{UserID: "root", Admin: true}
	limit := func(s string) *decimal.Decimal { d := budget.MustAmount(s); return &d }

	// A team of $10 a month, with at most $2 on Claude Opus models, in an
	// org of $100. Alice keeps her own $30.
	opus := []budget.ModelCap{{Pattern: "claude-opus-*", Limit: budget.MustAmount("2")}}
	if _, err := m.UpdateBudget(ctx, admin, budget.Team("research"), budget.SettingsUpdate{Limit: limit("10"), ModelCaps: &opus}); err != nil {
		panic(err)
	}
	if _, err := m.UpdateBudget(ctx, admin, budget.Org("acme"), budget.SettingsUpdate{Limit: limit("100")}); err != nil {
		panic(err)
	}
	if _, err := m.SetMembership(ctx, admin, "alice", budget.Membership{Teams: []string{"research"}, Org: "acme"}); err != nil {
		panic(err)
	}

	// Every budget that applies is held at once: alice's, the team's, the
	// org's and the Opus cap.
	r, err := m.Reserve(ctx, "alice", budget.MustAmount("1.50"), budget.WithModel("claude-opus-4-5"))
	if err != nil {
		panic(err)
	}
	if _, err := r.Settle(ctx, budget.Usage{Provider: "anthropic", Cost: budget.MustAmount("1.20")}); err != nil {
		panic(err)
	}

	// The cap binds the next Opus call; a Sonnet call is not capped.
	_, err = m.Reserve(ctx, "alice", budget.MustAmount("1"), budget.WithModel("claude-opus-4-1"))
	var le *budget.LimitError
	if errors.As(err, &le) {
		fmt.Println("refused by", le.Scope, le.Pattern, "with", le.Limit.Sub(le.Spent), "left")
	}
	if _, err := m.Reserve(ctx, "alice", budget.MustAmount("1"), budget.WithModel("claude-sonnet-4")); err == nil {
		fmt.Println("sonnet allowed")
	}

	st, _ := m.Status(ctx, "alice")
	for _, b := range st.Budgets {
		mark := ""
		if b.Binding {
			mark = " (binding)"
		}
		fmt.Printf("%s %s: spent %s of %s%s\n", b.Scope, b.Pattern, b.Spent, b.Limit, mark)
	}
	// Output:
	// refused by team:research claude-opus-* with 0.8 left
	// sonnet allowed
	// user:alice : spent 1.2 of 30
	// team:research : spent 1.2 of 10
	// team:research claude-opus-*: spent 1.2 of 2 (binding)
	// org:acme : spent 1.2 of 100
}
