package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/sqlite"
	"github.com/llmbudget/budget/store/storetest"
)

func open(tb testing.TB, path string, opts sqlite.Options) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), path, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(tb testing.TB) budget.Store {
		return open(tb, filepath.Join(tb.TempDir(), "budget.db"), sqlite.Options{})
	})
}
