package memory_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/internal/interleave"
	"github.com/llmbudget/budget/store/memory"
)

// benchStart is mid-month, so no benchmark crosses a period boundary: even
// a billion calls move the clock by under 20 minutes.
var benchStart = time.Date(2025, time.March, 10, 12, 0, 0, 0, time.UTC)

var (
	benchEstimate = budget.MustAmount("0.01")
	benchCost     = budget.MustAmount("0.007")
	benchLimit    = budget.MustAmount("1000000000")
)

// newBenchManager returns a Manager over a fresh memory store with a clock
// that advances 1µs per reading.
func newBenchManager() *budget.Manager {
	var ticks atomic.Int64
	return budget.NewManager(memory.New(), budget.Options{
		Now: func() time.Time { return benchStart.Add(time.Duration(ticks.Add(1)) * time.Microsecond) },
	})
}

// benchUnlimited gives userID a limit no benchmark reaches, so nothing is
// refused.
func benchUnlimited(b *testing.B, m *budget.Manager, userID string) {
	b.Helper()
	admin := budget.Principal{UserID: "admin", Admin: true}
	if _, err := m.UpdateSettings(context.Background(), admin, userID, budget.SettingsUpdate{Limit: &benchLimit}); err != nil {
		b.Fatal(err)
	}
}

// benchReserveSettle is one model call's worth of budget work.
func benchReserveSettle(ctx context.Context, m *budget.Manager, userID string) error {
	r, err := m.Reserve(ctx, userID, benchEstimate)
	if err != nil {
		return err
	}
	_, err = r.Settle(ctx, budget.Usage{Provider: "openai", Model: "gpt-4o", InputTokens: 1000, OutputTokens: 200, Cost: benchCost})
	return err
}

func BenchmarkReserveSettle(b *testing.B) {
	ctx := context.Background()
	m := newBenchManager()
	benchUnlimited(b, m, "alice")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := benchReserveSettle(ctx, m, "alice"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReserveSettleParallel runs Reserve+Settle on every P, each
// goroutine for its own user, so the only shared state is the Manager's
// and store's indexes and counters, not a user lock.
func BenchmarkReserveSettleParallel(b *testing.B) {
	m := newBenchManager()
	n := runtime.GOMAXPROCS(0) // RunParallel starts this many goroutines
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("user-%d", i)
		benchUnlimited(b, m, users[i])
	}
	benchParallel(b, m, users, benchReserveSettle)
}

// benchParallel runs call on every P, each goroutine for its own user of
// users (one per P).
func benchParallel(b *testing.B, m *budget.Manager, users []string, call func(context.Context, *budget.Manager, string) error) {
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		user := users[int(next.Add(1)-1)%len(users)]
		for pb.Next() {
			if err := call(ctx, m, user); err != nil {
				b.Error(err) // not Fatal: this is not the benchmark's goroutine
				return
			}
		}
	})
}

// benchHistorySizes are the sub-benchmarks of the history benchmarks: how
// many usages the user already has in the current period. "fresh" has none,
// so its Status shows zero spend, whose decimals take fewer allocations.
var benchHistorySizes = []struct {
	name string
	n    int
}{{"fresh", 0}, {"100k", 100_000}}

// benchWithHistory returns a Manager whose user "alice" has an unlimited
// budget and n usages recorded in the current period.
func benchWithHistory(b *testing.B, n int) *budget.Manager {
	b.Helper()
	ctx := context.Background()
	m := newBenchManager()
	benchUnlimited(b, m, "alice")
	for i := range n {
		if _, err := m.Record(ctx, "alice", budget.Usage{Provider: "openai", Model: "gpt-4o", Cost: benchCost}); err != nil {
			b.Fatalf("record %d: %v", i, err)
		}
	}
	return m
}

func BenchmarkStatusHistory(b *testing.B) {
	for _, h := range benchHistorySizes {
		b.Run(h.name, func(b *testing.B) {
			ctx := context.Background()
			m := benchWithHistory(b, h.n)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := m.Status(ctx, "alice"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReserveSettleHistory(b *testing.B) {
	for _, h := range benchHistorySizes {
		b.Run(h.name, func(b *testing.B) {
			ctx := context.Background()
			m := benchWithHistory(b, h.n)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := benchReserveSettle(ctx, m, "alice"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchScoped puts each of users in the team "t" and the org "o", whose
// limits no benchmark reaches, with a cap on "gpt-4o*" on the team.
func benchScoped(b *testing.B, m *budget.Manager, users ...string) {
	b.Helper()
	ctx := context.Background()
	admin := budget.Principal{UserID: "admin", Admin: true}
	caps := []budget.ModelCap{{Pattern: "gpt-4o*", Limit: benchLimit}}
	for _, u := range []struct {
		scope budget.Scope
		up    budget.SettingsUpdate
	}{{budget.Team("t"), budget.SettingsUpdate{Limit: &benchLimit, ModelCaps: &caps}}, {budget.Org("o"), budget.SettingsUpdate{Limit: &benchLimit}}} {
		if _, err := m.UpdateBudget(ctx, admin, u.scope, u.up); err != nil {
			b.Fatal(err)
		}
	}
	for _, user := range users {
		benchUnlimited(b, m, user)
		if _, err := m.SetMembership(ctx, admin, user, budget.Membership{Teams: []string{"t"}, Org: "o"}); err != nil {
			b.Fatal(err)
		}
	}
}

// benchScopedReserveSettle is benchReserveSettle naming the model, as a
// call under a model cap must.
func benchScopedReserveSettle(ctx context.Context, m *budget.Manager, userID string) error {
	r, err := m.Reserve(ctx, userID, benchEstimate, budget.WithModel("gpt-4o"))
	if err != nil {
		return err
	}
	_, err = r.Settle(ctx, budget.Usage{Provider: "openai", InputTokens: 1000, OutputTokens: 200, Cost: benchCost})
	return err
}

// BenchmarkScopes compares, in one run, Reserve+Settle for a user alone
// ("user") with the same for a user in a team and an org with a matching
// model cap on the team ("team+org+cap": four budgets held in one step),
// serially and with every P on its own user; "hot-team" has every P's user
// in the one team.
func BenchmarkScopes(b *testing.B) {
	ctx := context.Background()
	n := runtime.GOMAXPROCS(0)
	for _, c := range []struct {
		name   string
		scoped bool
	}{{"user", false}, {"team+org+cap", true}} {
		call := benchReserveSettle
		if c.scoped {
			call = benchScopedReserveSettle
		}
		setup := func(b *testing.B, users ...string) *budget.Manager {
			m := newBenchManager()
			if c.scoped {
				benchScoped(b, m, users...)
			} else {
				for _, u := range users {
					benchUnlimited(b, m, u)
				}
			}
			return m
		}
		b.Run(c.name+"/serial", func(b *testing.B) {
			m := setup(b, "alice")
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := call(ctx, m, "alice"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			users := make([]string, n)
			for i := range users {
				users[i] = fmt.Sprintf("user-%d", i)
			}
			benchParallel(b, setup(b, users...), users, call)
		})
	}
}

// BenchmarkScopesInterleaved measures BenchmarkScopes' serial ratio with
// the user alone and the user in a team and an org with a matching cap
// taking turns every 50 ms, each on its own Manager and store, so that
// both see the same machine however loaded it is: "x-own" is the scoped
// pair's time over the user-only one's. Target: at most 2.
func BenchmarkScopesInterleaved(b *testing.B) {
	ctx := context.Background()
	own, scoped := newBenchManager(), newBenchManager()
	benchUnlimited(b, own, "alice")
	benchScoped(b, scoped, "alice")
	ownSide := &interleave.Side{Goroutines: 1, Unit: "own-pairs/s", Op: func(int) error { return benchReserveSettle(ctx, own, "alice") }}
	scopedSide := &interleave.Side{Goroutines: 1, Unit: "scoped-pairs/s", Op: func(int) error { return benchScopedReserveSettle(ctx, scoped, "alice") }}
	interleave.Alternate(b, 50*time.Millisecond, ownSide, scopedSide)
	b.ReportMetric(ownSide.Rate()/scopedSide.Rate(), "x-own")
}
