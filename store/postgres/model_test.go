package postgres_test

import (
	"testing"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/storetest"
)

func newModelStore(tb testing.TB) budget.Store { return open(tb, newSchema(tb)) }

// TestModel checks the store against the reference model with a new seed
// each run (printed in the log); every model step is a round trip, so the
// default run is short. Replay a seed or soak with
//
//	go test ./store/postgres -run Model -model.seed=N
//	go test ./store/postgres -run Model -model.ops=20000
func TestModel(t *testing.T) {
	testDSN(t)
	opts := storetest.ModelOptions{Ops: 1000, Rounds: 10}
	if storetest.RaceEnabled {
		opts = storetest.ModelOptions{Ops: 400, Rounds: 5, Goroutines: 6, RoundOps: 5}
	}
	storetest.RunModel(t, newModelStore, opts)
}

// TestFaults checks the store under injected failures.
func TestFaults(t *testing.T) {
	testDSN(t)
	storetest.RunFaults(t, newModelStore)
}
