package postgres_test

// Benchmarks of the PostgreSQL store, against the targets:
//
//   - throughput: with 16 goroutines over one pool, Reserve+Settle pairs per
//     second at least 0.4× the rate of a baseline of one plain
//     "UPDATE users SET spent = spent + $1 WHERE user_id = $2" per call
//     through the same pool. BenchmarkInterleaved runs the baseline and the
//     store in turns of 200ms, so both see the same disk, and reports
//     "x-baseline-rate" (pairs/s over updates/s; target ≥ 0.4), or for one
//     goroutine "x-baseline-ns" (time per pair over time per update), and
//     "batch-size", the fast statements per commit.
//   - O(1) in history: BenchmarkHistory runs Status and Reserve+Settle on
//     a schema with 200,000 usage rows (20,000 of them the user's own, in
//     the current period) and on an "empty" one (one row with the same
//     spend), in turns, and reports "x-empty", the ratio of their times per
//     op (target ≤ 1.5).
//
// Run them with
//
//	BUDGET_TEST_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  go test -run '^$' -bench . -benchtime 10x ./store/postgres/
//
// Every benchmark reads an injected clock that advances 1µs per reading
// from mid-month, so no run crosses a period boundary, and gives its users a
// limit of $1e9, so nothing is refused.

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/internal/interleave"
	"github.com/llmbudget/budget/store/postgres"
)

var (
	benchStart    = time.Date(2025, time.March, 10, 12, 0, 0, 0, time.UTC)
	benchMonth    = budget.Window{Start: time.Date(2025, time.March, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2025, time.April, 1, 0, 0, 0, 0, time.UTC)}
	benchEstimate = budget.MustAmount("0.01")
	benchCost     = budget.MustAmount("0.007")
	benchLimit    = budget.MustAmount("1000000000")
)

// benchClock returns a clock for Options.Now that starts at benchStart and
// advances 1µs per reading, safe for concurrent use.
func benchClock() func() time.Time {
	var ticks atomic.Int64
	return func() time.Time { return benchStart.Add(time.Duration(ticks.Add(1)) * time.Microsecond) }
}

// benchStore returns a pool of conns connections and a store on it in a
// fresh schema, all gone when b ends.
func benchStore(b *testing.B, conns int32) (*pgxpool.Pool, *postgres.Store) {
	b.Helper()
	ctx := context.Background()
	schema := newSchema(b)
	cfg, err := pgxpool.ParseConfig(testDSN(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = conns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	s, err := postgres.New(ctx, pool, postgres.Options{Schema: schema})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return pool, s
}

// benchUsers gives each user a limit no benchmark reaches.
func benchUsers(b *testing.B, m *budget.Manager, users ...string) {
	b.Helper()
	for _, u := range users {
		if _, err := m.UpdateSettings(context.Background(), admin, u, budget.SettingsUpdate{Limit: &benchLimit}); err != nil {
			b.Fatal(err)
		}
	}
}

// benchPair is one model call's worth of budget work.
func benchPair(ctx context.Context, m *budget.Manager, user string) error {
	r, err := m.Reserve(ctx, user, benchEstimate)
	if err != nil {
		return err
	}
	_, err = r.Settle(ctx, budget.Usage{Provider: "openai", Model: "gpt-4o", InputTokens: 1000, OutputTokens: 200, Cost: benchCost})
	return err
}

// benchSlice is how long each side of an interleaved round runs.
const benchSlice = 200 * time.Millisecond

// benchParallelism is the number of goroutines, and connections, of the
// parallel benchmark.
const benchParallelism = 16

// BenchmarkInterleaved compares Reserve+Settle with the baseline update.
// Each round (one op) runs the baseline and the store for benchSlice each,
// in alternating order, on the same pool; the ratios compare the sums, so
// both sides see the same disk, whose fsync latency drifts.
// The "-locking" variants turn the fast path off: every call is the
// two-round-trip locking transaction.
func BenchmarkInterleaved(b *testing.B) {
	for _, fast := range []bool{true, false} {
		for _, g := range []int{1, benchParallelism} {
			name := "serial"
			if g > 1 {
				name = fmt.Sprintf("parallel%d", g)
			}
			if !fast {
				name += "-locking"
			}
			b.Run(name, func(b *testing.B) { benchInterleaved(b, g, fast) })
		}
	}
}

func benchInterleaved(b *testing.B, goroutines int, fast bool) {
	ctx := context.Background()
	pool, s := benchStore(b, benchParallelism)
	postgres.SetFast(s, fast)
	m := budget.NewManager(s, budget.Options{Now: benchClock()})
	users, bases := make([]string, goroutines), make([]string, goroutines)
	for i := range users {
		users[i], bases[i] = "user-"+strconv.Itoa(i), "base-"+strconv.Itoa(i)
	}
	benchUsers(b, m, users...)
	benchUsers(b, m, bases...)
	update := `UPDATE ` + pgx.Identifier{s.Schema(), "users"}.Sanitize() + ` SET spent = spent + $1 WHERE user_id = $2`
	baseline := &interleave.Side{Goroutines: goroutines, Unit: "updates/s", Op: func(i int) error {
		_, err := pool.Exec(ctx, update, int64(7_000_000), bases[i])
		return err
	}}
	store := &interleave.Side{Goroutines: goroutines, Unit: "pairs/s", Op: func(i int) error {
		return benchPair(ctx, m, users[i])
	}}
	interleave.Compare(b, benchSlice, baseline, store)
	if nb, ns, _ := postgres.BatchCounts(s); nb > 0 {
		b.ReportMetric(float64(ns)/float64(nb), "batch-size")
	}
	if done, stale := postgres.FastCounts(s); done+stale > 0 {
		b.ReportMetric(float64(done)/float64(2*store.Count()), "fast-share")
	}
}

// ---- history ----

// The history schema: benchUsersN users created through the Manager, then
// benchRows usage rows loaded with COPY, every benchMineEvery-th one
// benchMe's, all in the current month before benchStart, interleaved in
// time order as real traffic would be; then their rollups and counters.
const (
	benchUsersN    = 100
	benchRows      = 200_000
	benchMineEvery = 10 // benchMe has benchRows/benchMineEvery = 20,000 rows
	benchMe        = "u000"
)

var benchModels = [...][2]string{
	{"openai", "gpt-4o"}, {"openai", "gpt-4o-mini"}, {"anthropic", "claude-sonnet"}, {"google", "gemini-pro"},
}

// historyRows returns the history's usage rows for COPY, and benchMe's
// spend in them.
func historyRows() ([][]any, int64) {
	var mine int64
	span := benchStart.Sub(benchMonth.Start)
	src := make([][]any, benchRows)
	for i := range src {
		user := "u000"
		if i%benchMineEvery != 0 {
			user = fmt.Sprintf("u%03d", 1+(i-i/benchMineEvery-1)%(benchUsersN-1))
		}
		at := benchMonth.Start.Add(time.Duration(int64(span) / int64(benchRows) * int64(i))).UnixNano()
		mi := (i / 3) % len(benchModels)
		in, out, cost := int64(500+i%1500), int64(100+i%400), int64(1_000_000+(i%50)*100_000)
		src[i] = []any{user, fmt.Sprintf("b%08d", i), "", benchModels[mi][0], benchModels[mi][1], in, out, cost, at}
		if user == benchMe {
			mine += cost
		}
	}
	return src, mine
}

// buildHistory fills the store's schema with the history's usage rows or,
// when !full, with one row of benchMe's carrying the same spend (so that the
// Manager computes the same statuses), and returns benchMe's spend.
func buildHistory(b *testing.B, pool *pgxpool.Pool, s *postgres.Store, full bool) budget.Nanos {
	b.Helper()
	ctx := context.Background()
	t0 := time.Now()
	m := budget.NewManager(s, budget.Options{Now: benchClock()})
	users := make([]string, benchUsersN)
	for i := range users {
		users[i] = fmt.Sprintf("u%03d", i)
	}
	benchUsers(b, m, users...)
	src, mine := historyRows()
	if !full {
		src = [][]any{{benchMe, "all", "", "openai", "gpt-4o", int64(1000), int64(200), mine, benchMonth.Start.UnixNano()}}
	}
	rows := len(src)
	n, err := pool.CopyFrom(ctx, pgx.Identifier{s.Schema(), "usage"},
		[]string{"user_id", "id", "hold_id", "provider", "model", "input_tokens", "output_tokens", "cost", "at"}, pgx.CopyFromRows(src))
	if err != nil || n != int64(rows) {
		b.Fatalf("copied %d rows: %v", n, err)
	}
	if _, err := pool.Exec(ctx, qualify(s.Schema(), `
		INSERT INTO {s}.usage_daily (user_id, day, provider, model, cost, requests, input_tokens, output_tokens)
			SELECT user_id, div(at, 86400000000000), provider, model, SUM(cost), COUNT(*), SUM(input_tokens), SUM(output_tokens)
			FROM {s}.usage GROUP BY 1, 2, 3, 4;
		UPDATE {s}.users u SET spent = (SELECT COALESCE(SUM(cost), 0) FROM {s}.usage x
			WHERE x.user_id = u.user_id AND x.at >= u.win_start AND x.at < u.win_end)`)); err != nil {
		b.Fatal(err)
	}
	// As autovacuum would, eventually: statistics, and no dead row versions.
	if _, err := pool.Exec(ctx, qualify(s.Schema(), `VACUUM (ANALYZE) {s}.usage, {s}.usage_daily, {s}.users`)); err != nil {
		b.Fatal(err)
	}
	b.Logf("built a %d-row history in %v", rows, time.Since(t0).Round(time.Millisecond))
	return budget.Nanos(mine)
}

// BenchmarkHistory shows Status and Reserve+Settle do not read history:
// benchMe's 20,000 rows and the other users' 180,000 cost them nothing.
// "empty" is the same schema with one usage row of benchMe's carrying the
// same spend. Each round (one op) runs the operation on each schema for
// benchSlice/2, in alternating order, so that both see the same machine;
// it reports the time per operation of each and "x-empty", the 200k one's
// over the empty one's (target ≤ 1.5).
func BenchmarkHistory(b *testing.B) {
	ctx := context.Background()
	type fixture struct {
		m    *budget.Manager
		mine budget.Nanos
	}
	var fx [2]fixture
	for i, full := range [2]bool{false, true} {
		pool, s := benchStore(b, 4)
		fx[i].mine = buildHistory(b, pool, s, full)
		fx[i].m = budget.NewManager(s, budget.Options{Now: benchClock()})
		st, err := fx[i].m.Status(ctx, benchMe)
		if err != nil {
			b.Fatal(err)
		}
		if !st.Spent.Equal(fx[i].mine.Decimal()) || !st.PeriodStart.Equal(benchMonth.Start) {
			b.Fatalf("%s has spent %s in the period from %v, want %s from %v", benchMe, st.Spent, st.PeriodStart, fx[i].mine.Decimal(), benchMonth.Start)
		}
	}
	for _, op := range []struct {
		name string
		run  func(m *budget.Manager) error
	}{
		{"Status", func(m *budget.Manager) error { _, err := m.Status(ctx, benchMe); return err }},
		{"ReserveSettle", func(m *budget.Manager) error { return benchPair(ctx, m, benchMe) }},
	} {
		b.Run(op.name, func(b *testing.B) {
			var (
				n     [2]int
				took  [2]time.Duration
				round int
			)
			b.ReportAllocs()
			for b.Loop() {
				for k := range 2 {
					i := (round + k) % 2
					t0 := time.Now()
					for time.Since(t0) < benchSlice/2 {
						if err := op.run(fx[i].m); err != nil {
							b.Fatal(err)
						}
						n[i]++
					}
					took[i] += time.Since(t0)
				}
				round++
			}
			empty, full := float64(took[0].Nanoseconds())/float64(n[0]), float64(took[1].Nanoseconds())/float64(n[1])
			b.ReportMetric(empty, "empty-ns/op")
			b.ReportMetric(full, "200k-ns/op")
			b.ReportMetric(full/empty, "x-empty")
		})
	}
}
