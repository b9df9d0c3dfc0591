package sqlite_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/sqlite"
	"github.com/llmbudget/budget/store/storetest"
)

func newModelStore(tb testing.TB) budget.Store {
	return open(tb, filepath.Join(tb.TempDir(), "budget.db"), sqlite.Options{})
}

// TestModel checks the store against the reference model with a new seed
// each run (printed in the log). Every write is a durable commit, and the
// race detector makes SQLite about nine times slower, so the default run is
// short; replay a seed or soak with
//
//	go test ./store/sqlite -run Model -model.seed=N
//	go test ./store/sqlite -run Model -model.ops=20000
func TestModel(t *testing.T) {
	opts := storetest.ModelOptions{Ops: 2000, Rounds: 20}
	if storetest.RaceEnabled {
		opts = storetest.ModelOptions{Ops: 600, Rounds: 6, Goroutines: 6, RoundOps: 5}
	}
	storetest.RunModel(t, newModelStore, opts)
}

// TestFaults checks the store under injected failures.
func TestFaults(t *testing.T) {
	storetest.RunFaults(t, newModelStore)
}

// TestModelRegressions keeps the seeds that found bugs. (RunModel also
// replays the shrunk sequences of every bug found, whatever the seed.)
func TestModelRegressions(t *testing.T) {
	// Found in store/memory (a failed Record moved the window and wrote
	// the rollover audit entry); kept here as no store may do it.
	t.Run("FailedCallChangesNothing", func(t *testing.T) {
		storetest.RunModel(t, newModelStore, storetest.ModelOptions{Seed: 28, Ops: 25, Sequential: true})
	})
	// Fixed in 83055ba (windows move forward only): a request computed at
	// an earlier instant, from a lagging clock or delayed past a period's
	// end, moved the store's window back, so that an enforced user passed
	// the limit, a rollover was audited twice and alerts fired twice.
	t.Run("LateRequest", func(t *testing.T) {
		storetest.RunModel(t, newModelStore, storetest.ModelOptions{Seed: 1795798957634719905, Concurrent: true, Rounds: 20, Goroutines: 6, RoundOps: 5, Skew: 2 * time.Second})
	})
}
