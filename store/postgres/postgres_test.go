package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/postgres"
	"github.com/llmbudget/budget/store/storetest"
)

// The tests need a PostgreSQL server: they run when BUDGET_TEST_POSTGRES_DSN
// names a database, and skip otherwise. Each test works in a schema of its
// own, dropped when it ends, so runs never collide.

const dsnVar = "BUDGET_TEST_POSTGRES_DSN"

// testDSN returns the test database's DSN, or skips tb.
func testDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(dsnVar)
	if dsn == "" {
		tb.Skip("set " + dsnVar + "=postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run")
	}
	return dsn
}

// newSchema returns the name of a schema no other test uses, dropped with
// everything in it when tb ends (after the stores opened later close).
func newSchema(tb testing.TB) string {
	tb.Helper()
	dsn := testDSN(tb)
	var b [6]byte
	rand.Read(b[:])
	name := "budget_test_" + hex.EncodeToString(b[:])
	tb.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Errorf("dropping schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			tb.Errorf("dropping schema %s: %v", name, err)
		}
	})
	return name
}

// open opens a store in schema with its own pool, closed when tb ends.
func open(tb testing.TB, schema string) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(context.Background(), testDSN(tb), postgres.Options{Schema: schema})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// adminPool returns a pool for the test's own queries, closed when tb ends.
func adminPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	pool, err := pgxpool.New(context.Background(), testDSN(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// qualify replaces {s} in sql with the quoted schema.
func qualify(schema, sql string) string {
	return strings.ReplaceAll(sql, "{s}", pgx.Identifier{schema}.Sanitize())
}

func TestStore(t *testing.T) {
	testDSN(t)
	storetest.Run(t, func(tb testing.TB) budget.Store {
		return open(tb, newSchema(tb))
	})
}

// TestStoreLocking runs the suite with the fast path off: every call is
// the locking transaction, which must keep the whole contract on its own.
func TestStoreLocking(t *testing.T) {
	testDSN(t)
	storetest.Run(t, func(tb testing.TB) budget.Store {
		s := open(tb, newSchema(tb))
		postgres.SetFast(s, false)
		return s
	})
}

// TestMigrateConcurrently starts ten stores on a new schema at once: each
// opens, and the schema is migrated exactly once.
func TestMigrateConcurrently(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	const n = 10
	stores := make([]*postgres.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			stores[i], errs[i] = postgres.Open(ctx, testDSN(t), postgres.Options{Schema: schema})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	db := adminPool(t)
	var rows, version int
	if err := db.QueryRow(ctx, qualify(schema, `SELECT COUNT(*), MAX(version) FROM {s}.schema_version`)).Scan(&rows, &version); err != nil {
		t.Fatal(err)
	}
	if rows != postgres.SchemaVersion || version != postgres.SchemaVersion {
		t.Errorf("schema_version has %d rows up to version %d, want each migration once, up to %d", rows, version, postgres.SchemaVersion)
	}
	// Every store works on the one schema.
	for i, s := range stores {
		m := budget.NewManager(s, budget.Options{})
		if _, err := m.Status(ctx, "u"); err != nil {
			t.Errorf("store %d: %v", i, err)
		}
	}
	var users int
	if err := db.QueryRow(ctx, qualify(schema, `SELECT COUNT(*) FROM {s}.users`)).Scan(&users); err != nil {
		t.Fatal(err)
	}
	if users != 1 {
		t.Errorf("%d users, want 1", users)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	open(t, schema).Close()
	db := adminPool(t)
	if _, err := db.Exec(ctx, qualify(schema, `INSERT INTO {s}.schema_version (version) VALUES ($1)`), postgres.SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(ctx, testDSN(t), postgres.Options{Schema: schema})
	if err == nil {
		s.Close()
	}
	if !errors.Is(err, postgres.ErrNewerSchema) {
		t.Fatalf("open of a newer schema: %v, want ErrNewerSchema", err)
	}
	t.Log(err)
}

func TestSchemaName(t *testing.T) {
	ctx := context.Background()
	dsn := testDSN(t)
	for _, bad := range []string{"1abc", "a-b", `x"; DROP TABLE y; --`, "Budget Test", strings.Repeat("a", 64), "é"} {
		if s, err := postgres.Open(ctx, dsn, postgres.Options{Schema: bad}); err == nil {
			s.Close()
			t.Errorf("schema %q accepted", bad)
		}
	}
	// Mixed case is kept as given: the name is always quoted.
	schema := newSchema(t) + "_MiXed"
	t.Cleanup(func() {
		adminPool(t).Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	})
	s := open(t, schema)
	if s.Schema() != schema {
		t.Errorf("Schema() = %q", s.Schema())
	}
	var ok bool
	if err := adminPool(t).QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&ok); err != nil || !ok {
		t.Errorf("schema %q not created: %v", schema, err)
	}
}

// TestNewKeepsPool checks that a store made with New on the application's
// pool leaves the pool open when it closes, and fails with ErrClosed.
func TestNewKeepsPool(t *testing.T) {
	ctx := context.Background()
	pool := adminPool(t)
	s, err := postgres.New(ctx, pool, postgres.Options{Schema: newSchema(t)})
	if err != nil {
		t.Fatal(err)
	}
	m := budget.NewManager(s, budget.Options{})
	if _, err := m.Status(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Reserve(ctx, "u", budget.MustAmount("1")); !errors.Is(err, budget.ErrClosed) {
		t.Errorf("reserve after Close: %v, want ErrClosed", err)
	}
	if err := pool.Ping(ctx); err != nil {
		t.Errorf("the application's pool was closed: %v", err)
	}
}

// TestNanosecondTimes checks that times keep their nanoseconds, which
// timestamptz would round to microseconds.
func TestNanosecondTimes(t *testing.T) {
	ctx := context.Background()
	s := open(t, newSchema(t))
	c := storetest.NewClock(storetestStart.Add(123456789))
	m := budget.NewManager(s, budget.Options{Now: c.Now})
	if _, err := m.Record(ctx, "u", budget.Usage{ID: "a", Cost: budget.MustAmount("0.000000001")}); err != nil {
		t.Fatal(err)
	}
	p, err := m.History(ctx, budget.UsageQuery{UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Records) != 1 || !p.Records[0].At.Equal(c.Now()) || p.Records[0].At.Nanosecond()%1000 != 789 {
		t.Errorf("history %+v, want one record at %v", p.Records, c.Now())
	}
}
