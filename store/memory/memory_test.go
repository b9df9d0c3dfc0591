package memory_test

import (
	"testing"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/memory"
	"github.com/llmbudget/budget/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(tb testing.TB) budget.Store {
		s := memory.New()
		tb.Cleanup(func() { s.Close() })
		return s
	})
}
