package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/sqlite"
)

// Open a budget file once at startup and share the Manager; a second Open
// of the same file, by this process or another, sees the same budgets.
func ExampleOpen() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "budget-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "budget.db")
	now := func() time.Time { return time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC) }

	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		panic(err)
	}
	m := budget.NewManager(s, budget.Options{Now: now})
	r, err := m.Reserve(ctx, "alice", budget.MustAmount("0.50"))
	if err != nil {
		panic(err)
	}
	if _, err := r.Settle(ctx, budget.Usage{Provider: "openai", Model: "gpt-4o", Cost: budget.MustAmount("0.42")}); err != nil {
		panic(err)
	}
	if err := s.Close(); err != nil {
		panic(err)
	}

	// After a restart: the spend is still there.
	s, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	st, err := budget.NewManager(s, budget.Options{Now: now}).Status(ctx, "alice")
	if err != nil {
		panic(err)
	}
	fmt.Println("spent:", st.Spent, "remaining:", st.Remaining)
	// Output:
	// spent: 0.42 remaining: 29.58
}
