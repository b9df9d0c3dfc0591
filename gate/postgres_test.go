package gate_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/postgres"
)

// openPostgres opens a store in a fresh schema of the database named by
// BUDGET_TEST_POSTGRES_DSN, dropped when t ends.
func openPostgres(t *testing.T) budget.Store {
	dsn := os.Getenv("BUDGET_TEST_POSTGRES_DSN")
	var b [6]byte
	rand.Read(b[:])
	schema := "gate_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
