package budget_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbudget/budget"
)

// benchNopStore does the least a Store can for Reserve, Settle and Totals:
// one mutex and two counters, no holds, no history. Over it, a benchmark
// measures the Manager's own cost per call, which every real store adds to.
// Methods the benchmarks do not reach are left to the nil embedded Store.
type benchNopStore struct {
	budget.Store

	mu          sync.Mutex
	settings    map[string]budget.Settings
	spent, held budget.Nanos
}

func (s *benchNopStore) Settings(_ context.Context, id string) (budget.Settings, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.settings[id]; ok {
		return st, nil
	}
	return budget.Settings{}, budget.ErrNotFound
}

func (s *benchNopStore) CreateSettings(_ context.Context, req budget.CreateRequest) (budget.Settings, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.settings[req.Settings.UserID]; ok {
		return st, false, nil
	}
	s.settings[req.Settings.UserID] = req.Settings
	return req.Settings, true, nil
}

func (s *benchNopStore) Defaults(context.Context) (budget.Defaults, error) {
	return budget.Defaults{}, budget.ErrNotFound
}

func (s *benchNopStore) Reserve(_ context.Context, req budget.ReserveRequest) (budget.Totals, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held += req.Amount
	return budget.Totals{Window: req.Policy.Window, Spent: s.spent, Held: s.held}, true, nil
}

func (s *benchNopStore) Settle(_ context.Context, req budget.SettleRequest) (budget.Totals, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spent += req.Usage.Cost
	return budget.Totals{Window: req.Policy.Window, Spent: s.spent, Held: s.held}, nil
}

func (s *benchNopStore) Totals(_ context.Context, req budget.TotalsRequest) (budget.Totals, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return budget.Totals{Window: req.Policy.Window, Spent: s.spent, Held: s.held}, nil
}

// newBenchNopManager returns a Manager over a benchNopStore whose users
// start with a limit no benchmark reaches, and a clock that advances 1µs
// per reading from mid-month.
func newBenchNopManager() *budget.Manager {
	var ticks atomic.Int64
	start := time.Date(2025, time.March, 10, 12, 0, 0, 0, time.UTC)
	plan := budget.DefaultUserPlan()
	plan.Limit = budget.MustAmount("1000000000")
	return budget.NewManager(&benchNopStore{settings: map[string]budget.Settings{}}, budget.Options{
		Now:      func() time.Time { return start.Add(time.Duration(ticks.Add(1)) * time.Microsecond) },
		UserPlan: &plan,
	})
}

// BenchmarkManagerReserveSettle is the Manager's share of a Reserve+Settle
// pair: the memory store's BenchmarkReserveSettle minus this is the
// store's share.
func BenchmarkManagerReserveSettle(b *testing.B) {
	ctx := context.Background()
	m := newBenchNopManager()
	estimate, cost := budget.MustAmount("0.01"), budget.MustAmount("0.007")
	b.ReportAllocs()
	for b.Loop() {
		r, err := m.Reserve(ctx, "alice", estimate)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Settle(ctx, budget.Usage{Provider: "openai", Model: "gpt-4o", InputTokens: 1000, OutputTokens: 200, Cost: cost}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkManagerStatus is the Manager's share of a Status call.
func BenchmarkManagerStatus(b *testing.B) {
	ctx := context.Background()
	m := newBenchNopManager()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Status(ctx, "alice"); err != nil {
			b.Fatal(err)
		}
	}
}
