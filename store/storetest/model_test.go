package storetest

// Tests of RunModel itself: stores with a planted bug must fail the model
// check, and the shrinker must find a short failing sequence.

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/memory"
)

// mutant is a memory store with one planted bug.
type mutant struct {
	budget.Store
	bug string
}

func (m *mutant) Reserve(ctx context.Context, req budget.ReserveRequest) (budget.Totals, bool, error) {
	switch m.bug {
	case "no enforcement":
		req.Policy.Enforce = false
	case "late expiry":
		req.ExpiresAt = req.ExpiresAt.Add(1)
	case "one budget held short":
		// The last budget beyond the user's own is neither checked nor
		// held.
		if n := len(req.Also); n > 0 {
			req.Also = req.Also[:n-1]
		}
	case "racy reserve":
		// Check, then charge: the bug the library exists to avoid.
		t, err := m.Store.Totals(ctx, budget.TotalsRequest{UserID: req.UserID, Policy: req.Policy, Now: req.Now})
		if err != nil {
			return t, false, err
		}
		if !req.Policy.Allows(t.Spent, t.Held, req.Amount) {
			return t, false, nil
		}
		runtime.Gosched()
		req.Policy.Enforce = false
	}
	return m.Store.Reserve(ctx, req)
}

func (m *mutant) Release(ctx context.Context, req budget.ReleaseRequest) (budget.Totals, error) {
	if m.bug == "idle release" {
		return m.Store.Totals(ctx, budget.TotalsRequest{UserID: req.UserID, Policy: req.Policy, Now: req.Now})
	}
	return m.Store.Release(ctx, req)
}

func (m *mutant) Extend(ctx context.Context, req budget.ExtendRequest) (budget.Totals, error) {
	switch m.bug {
	case "extend moves nothing":
		req.ExpiresAt = req.Now // checks as it should, but never later
	case "extend advances first":
		// The window and expiry steps before the checks: a refused
		// extend still rolls the window over.
		if _, err := m.Store.Totals(ctx, budget.TotalsRequest{UserID: req.UserID, Policy: req.Policy, Now: req.Now}); err != nil {
			return budget.Totals{}, err
		}
	}
	return m.Store.Extend(ctx, req)
}

func (m *mutant) Settle(ctx context.Context, req budget.SettleRequest) (budget.Totals, error) {
	switch m.bug {
	case "settle a nanosecond late":
		req.Usage.At = req.Usage.At.Add(1)
	case "settle forgets the teams":
		// Spend the caps, not the teams' and orgs' own budgets.
		req.Also = slices.DeleteFunc(slices.Clone(req.Also), func(k budget.KeyPolicy) bool { return !k.Cap })
		t, err := m.Store.Settle(ctx, req)
		if err == nil {
			t.Also = nil
		}
		return t, err
	}
	return m.Store.Settle(ctx, req)
}

func (m *mutant) Record(ctx context.Context, req budget.RecordRequest) (budget.Totals, error) {
	if m.bug == "record twice" {
		dup := req
		dup.Usage.ID += "+"
		m.Store.Record(ctx, dup)
	}
	t, err := m.Store.Record(ctx, req)
	if m.bug == "lost alerts" {
		t.Alerts = 0
	}
	return t, err
}

func (m *mutant) Reset(ctx context.Context, req budget.ResetRequest) (budget.AuditEntry, budget.Totals, error) {
	e, t, err := m.Store.Reset(ctx, req)
	if m.bug == "reset forgets the spend" {
		e.PreviousSpent = budget.Nanos(0).Decimal()
	}
	return e, t, err
}

func (m *mutant) Audit(ctx context.Context, q budget.AuditQuery) ([]budget.AuditEntry, error) {
	es, err := m.Store.Audit(ctx, q)
	switch m.bug {
	case "no rollover audit":
		es = slices.DeleteFunc(es, func(e budget.AuditEntry) bool { return e.Type == budget.AuditAutomaticReset })
	case "no team rollover audit":
		es = slices.DeleteFunc(es, func(e budget.AuditEntry) bool {
			s, _ := budget.ScopeOfKey(e.UserID)
			return e.Type == budget.AuditAutomaticReset && s.Kind != budget.UserScope
		})
	}
	return es, err
}

func (m *mutant) History(ctx context.Context, q budget.HistoryQuery) (budget.HistoryPage, error) {
	p, err := m.Store.History(ctx, q)
	if m.bug == "history hides free calls" {
		p.Rows = slices.DeleteFunc(p.Rows, func(r budget.UsageRow) bool { return r.Cost == 0 })
	}
	return p, err
}

func mutantStore(bug string) func(testing.TB) budget.Store {
	return func(tb testing.TB) budget.Store {
		s := memory.New()
		tb.Cleanup(func() { s.Close() })
		return &mutant{Store: s, bug: bug}
	}
}

func TestModelCatchesPlantedBugs(t *testing.T) {
	bugs := []string{
		"no enforcement", "late expiry", "lost alerts", "idle release", "settle a nanosecond late",
		"record twice", "reset forgets the spend", "no rollover audit", "history hides free calls",
		"extend moves nothing", "extend advances first",
		"one budget held short", "settle forgets the teams", "no team rollover audit",
	}
	for _, bug := range bugs {
		t.Run(bug, func(t *testing.T) {
			t.Parallel()
			// A bug is caught by chance within a run: each must be caught
			// in three runs of the first five seeds.
			caught, seed := 0, int64(1)
			for ; seed <= 5 && caught < 3; seed++ {
				_, step, err, _ := modelSequential(t, mutantStore(bug), newModelConfig(seed), 3000, 0.05)
				if err == nil {
					t.Logf("seed %d: 3000 operations passed the model check", seed)
					continue
				}
				caught++
				t.Logf("seed %d: caught at step %d: %.200v", seed, step, err)
			}
			if caught < 3 {
				t.Errorf("caught in %d of %d runs of 3000 operations, want 3", caught, seed-1)
			}
		})
	}
}

func TestModelShrinks(t *testing.T) {
	cfg := newModelConfig(7)
	ops, step, err, _ := modelSequential(t, mutantStore("no enforcement"), cfg, 3000, 0.05)
	if err == nil {
		t.Fatal("no failure to shrink")
	}
	best, bestErr, replays := shrinkSequence(t, mutantStore("no enforcement"), cfg, ops[:step+1], time.Now().Add(20*time.Second))
	if bestErr == nil {
		t.Fatalf("the failure at step %d did not replay", step)
	}
	t.Log(modelReport(cfg, step, err, best, bestErr, replays, "TestX"))
	// Two reserves that together pass the limit are enough.
	if len(best) > 4 {
		t.Errorf("shortest failing sequence has %d operations, want at most 4", len(best))
	}
	if i, err := replaySequence(t, memoryStore, cfg, best); err != nil {
		t.Errorf("the shrunk sequence fails on a correct store too, at %d: %v", i, err)
	}
}

func memoryStore(tb testing.TB) budget.Store {
	s := memory.New()
	tb.Cleanup(func() { s.Close() })
	return s
}

// TestConcurrentCatchesHoldShort: a store that neither checks nor holds
// the last budget of a reserve's Also breaks the concurrent run's
// invariants on teams, orgs and caps.
func TestConcurrentCatchesHoldShort(t *testing.T) {
	opts := concDefaults(ModelOptions{Rounds: 20})
	for try := int64(1); try <= 3; try++ {
		if err := modelConcurrent(t, mutantStore("one budget held short"), try, opts); err != nil {
			t.Logf("try %d: %v", try, err)
			return
		}
	}
	t.Error("a store that leaves out a budget of each reserve kept every invariant in 3 runs")
}

func TestConcurrentCatchesRacyReserve(t *testing.T) {
	opts := concDefaults(ModelOptions{Rounds: 30, Goroutines: 16, RoundOps: 10})
	// The race is lost only when the scheduler interleaves two reserves
	// of one user between check and charge, which a loaded machine may
	// not do for a few runs; the test stops at the first catch.
	const tries = 25
	for try := int64(1); try <= tries; try++ {
		if err := modelConcurrent(t, mutantStore("racy reserve"), try, opts); err != nil {
			t.Logf("try %d: %v", try, err)
			return
		}
	}
	t.Errorf("a check-then-charge Reserve kept every invariant in %d runs", tries)
}

// TestFaultyDeterministic checks that a seeded rule picks the same faults
// for the same calls.
func TestFaultyDeterministic(t *testing.T) {
	pick := func() []string {
		r := SeededRule(42, 0.3, faultMix)
		var out []string
		for n := int64(1); n <= 200; n++ {
			f := r(Call{Method: []string{"Reserve", "Settle", "Totals"}[n%3], N: n})
			if f == nil {
				out = append(out, "-")
			} else {
				out = append(out, f.String())
			}
		}
		return out
	}
	a, b := pick(), pick()
	if !slices.Equal(a, b) {
		t.Fatalf("two rules from one seed differ:\n%v\n%v", a, b)
	}
	n := 0
	for _, s := range a {
		if s != "-" {
			n++
		}
	}
	if n < 30 || n > 90 {
		t.Errorf("%d of 200 calls faulted at rate 0.3", n)
	}
}
