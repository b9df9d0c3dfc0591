// Command quickstart walks one user's budget from green to red and shows the
// call that is refused once the budget is spent.
//
//	go run ./examples/quickstart               # budgets in memory
//	go run ./examples/quickstart -db budget.db # budgets in a SQLite file
//
// It needs no set-up: by default budgets live in memory and the clock is
// fixed, so the output is the same on every run. With -db they persist in a
// SQLite file, so a second run finds alice's month already spent.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"time"

	"github.com/shopspring/decimal"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/memory"
	"github.com/llmbudget/budget/store/sqlite"
)

func main() {
	ctx := context.Background()

	// A fixed clock that moves one minute per call keeps the output
	// deterministic. Real programs leave Options.Now unset.
	now := time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time {
		now = now.Add(time.Minute)
		return now
	}

	db := flag.String("db", "", "persist budgets in this SQLite file (default: in memory)")
	flag.Parse()

	// Budgets live in memory and are lost on exit, unless -db names a file.
	var store budget.Store = memory.New()
	if *db != "" {
		s, err := sqlite.Open(ctx, *db, sqlite.Options{})
		if err != nil {
			log.Fatal(err)
		}
		store = s
	}
	defer store.Close()

	plan := budget.DefaultUserPlan() // monthly, enforced, alerts at 75/90/100%
	plan.Limit = budget.MustAmount("1.00")

	m := budget.NewManager(store, budget.Options{
		Now:      clock,
		UserPlan: &plan,
		OnAlert: func(a budget.Alert) {
			fmt.Printf("    ALERT: %s reached %s (%s%% of the limit)\n", a.UserID, a.Level, a.Status.Percent)
		},
	})

	fmt.Println("alice: $1.00 a month, enforced, alerts at 75%, 90% and 100%")
	fmt.Println()

	// Each call reserves its worst-case cost first, then settles the
	// actual cost once the model has answered.
	calls := []struct{ estimate, actual string }{
		{"0.50", "0.40"},
		{"0.50", "0.40"},
		{"0.20", "0.15"},
		{"0.05", "0.05"},
		{"0.10", "0.10"}, // nothing left: refused
	}
	for i, c := range calls {
		fmt.Printf("call %d: estimate $%s\n", i+1, c.estimate)
		r, err := m.Reserve(ctx, "alice", budget.MustAmount(c.estimate))
		var lim *budget.LimitError
		if errors.As(err, &lim) { // errors.Is(err, budget.ErrBudgetExceeded) also holds
			fmt.Println("    refused:", err)
			fmt.Println("    user:     ", lim.UserID)
			fmt.Println("    limit:    ", money(lim.Limit))
			fmt.Println("    spent:    ", money(lim.Spent))
			fmt.Println("    reserved: ", money(lim.Reserved))
			fmt.Println("    requested:", money(lim.Requested))
			fmt.Println("    frees up: ", lim.PeriodEnd.Format(time.RFC3339))
			continue
		}
		if err != nil {
			log.Print(err)
			return
		}
		// ... the model call happens here ...
		st, err := r.Settle(ctx, budget.Usage{
			Provider: "openai", Model: "gpt-4o",
			InputTokens: 1200, OutputTokens: 300,
			Cost: budget.MustAmount(c.actual),
		})
		if err != nil {
			log.Print(err)
			return
		}
		fmt.Printf("    cost %s  spent %s  remaining %s  level %s\n",
			money(budget.MustAmount(c.actual)), money(st.Spent), money(st.Remaining), st.Level)
	}
}

// money formats dollars with two decimals, e.g. "$0.40".
func money(d decimal.Decimal) string { return "$" + d.StringFixed(2) }
