package memory_test

import (
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/memory"
	"github.com/llmbudget/budget/store/storetest"
)

func newModelStore(tb testing.TB) budget.Store {
	s := memory.New()
	tb.Cleanup(func() { s.Close() })
	return s
}

// TestModel checks the store against the reference model with a new seed
// each run (printed in the log). Replay one with
//
//	go test ./store/memory -run Model -model.seed=N
//
// and soak with -model.ops=1000000.
func TestModel(t *testing.T) {
	storetest.RunModel(t, newModelStore, storetest.ModelOptions{})
}

// TestFaults checks the store under injected failures.
func TestFaults(t *testing.T) {
	storetest.RunFaults(t, newModelStore)
}

// TestModelRegressions keeps the seeds that found bugs. (RunModel also
// replays the shrunk sequences of every bug found, whatever the seed.)
func TestModelRegressions(t *testing.T) {
	// Fixed in memory.go (beginUnless): a Record with a duplicate ID, or a
	// Settle or Release of a closed hold, moved the window and wrote the
	// rollover audit entry before failing.
	t.Run("FailedCallChangesNothing", func(t *testing.T) {
		storetest.RunModel(t, newModelStore, storetest.ModelOptions{Seed: 28, Ops: 25, Sequential: true})
	})
	// Fixed in 83055ba (windows move forward only): a request computed at
	// an earlier instant, from a lagging clock or delayed past a period's
	// end, moved the store's window back, so that an enforced user passed
	// the limit, a rollover was audited twice and alerts fired twice.
	t.Run("LateRequest", func(t *testing.T) {
		storetest.RunModel(t, newModelStore, storetest.ModelOptions{Seed: 1795798957634719905, Concurrent: true, Rounds: 30, Skew: 2 * time.Second})
	})
}
