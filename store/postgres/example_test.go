package postgres_test

import (
	"context"
	"log"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/postgres"
)

// Every replica of a service opens the same database and schema at
// startup: the first creates the tables, and all of them enforce one
// budget per user between them. (Not run: it needs a server.)
func ExampleOpen() {
	ctx := context.Background()
	s, err := postgres.Open(ctx, "postgres://app@db.internal:5432/app?pool_max_conns=16", postgres.Options{Schema: "budget"})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	m := budget.NewManager(s, budget.Options{})

	r, err := m.Reserve(ctx, "alice", budget.MustAmount("0.50"))
	if err != nil {
		log.Fatal(err) // budget.ErrBudgetExceeded when alice has no room left
	}
	// ... the model call ...
	if _, err := r.Settle(ctx, budget.Usage{Provider: "openai", Model: "gpt-4o", Cost: budget.MustAmount("0.42")}); err != nil {
		log.Fatal(err)
	}
}

// An application that already has a pool hands it to New; the pool stays
// the application's to close. (Not run: it needs a server.)
func ExampleNew() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://app@db.internal:5432/app")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	s, err := postgres.New(ctx, pool, postgres.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	_ = budget.NewManager(s, budget.Options{})
}
