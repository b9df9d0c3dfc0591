package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

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

// TestExtendNextExpiry checks that users.next_expiry, the earliest expiry
// of a counted hold, which Totals' read-only answer and Accounts trust,
// follows a hold's expiry when Extend moves it later: exact when the hold
// was the earliest, unchanged when another expires first.
func TestExtendNextExpiry(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "budget.db")
	s := open(t, path, sqlite.Options{})
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	c := storetest.NewClock(t0)
	const ttl = 10 * time.Minute
	m := budget.NewManager(s, budget.Options{Now: c.Now, HoldTTL: ttl})
	l := budget.MustAmount("10")
	if _, err := m.UpdateSettings(ctx, budget.Principal{UserID: "root", Admin: true}, "u", budget.SettingsUpdate{Limit: &l}); err != nil {
		t.Fatal(err)
	}
	reserve := func() *budget.Reservation {
		t.Helper()
		r, err := m.Reserve(ctx, "u", budget.MustAmount("1"))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	next := func(want time.Time) {
		t.Helper()
		var n int64
		if err := ftRaw(t, path).QueryRow(`SELECT next_expiry FROM users WHERE user_id = 'u'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if got := time.Unix(0, n).UTC(); !got.Equal(want) {
			t.Errorf("next_expiry %v, want %v", got.Sub(t0), want.Sub(t0))
		}
	}
	extend := func(r *budget.Reservation) {
		t.Helper()
		if _, err := r.Extend(ctx); err != nil {
			t.Fatal(err)
		}
	}
	a := reserve()
	c.Set(t0.Add(time.Minute))
	b := reserve()
	next(t0.Add(ttl))
	c.Set(t0.Add(2 * time.Minute))
	extend(b) // not the earliest: next_expiry stays
	next(t0.Add(ttl))
	c.Set(t0.Add(5 * time.Minute))
	extend(a) // the earliest: next_expiry moves to b's
	next(t0.Add(2*time.Minute + ttl))
	c.Set(t0.Add(6 * time.Minute))
	extend(b)
	next(t0.Add(5*time.Minute + ttl))
	ftCheckCounters(t, path)
	// Past both first expiries, both still count.
	c.Set(t0.Add(14 * time.Minute))
	st, err := m.Status(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Reserved.Equal(budget.MustAmount("2")) {
		t.Errorf("reserved %s past the first expiries of two extended holds of 1, want 2", st.Reserved)
	}
}
