package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/postgres"
	"github.com/llmbudget/budget/store/storetest"
)

// TestFastPathStale runs two stores on one schema: each remembers the
// counters it last saw, and when the other has changed them, its fast path
// falls back to the locking transaction and decides on the current ones.
func TestFastPathStale(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	a, b := open(t, schema), open(t, schema)
	c := storetest.NewClock(storetestStart)
	ma := budget.NewManager(a, budget.Options{Now: c.Now})
	mb := budget.NewManager(b, budget.Options{Now: c.Now})
	setLimit(t, ma, "u", "10")
	reserve := func(m *budget.Manager, est string) (*budget.Reservation, error) {
		return m.Reserve(ctx, "u", budget.MustAmount(est))
	}
	r1, err := reserve(ma, "1")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := reserve(ma, "1")
	if err != nil {
		t.Fatal(err)
	}
	if done, _ := postgres.FastCounts(a); done == 0 {
		t.Errorf("the second reserve did not take the fast path")
	}
	// b spends up to the limit; a's memory says 2 of 10 are held.
	if _, err := mb.Record(ctx, "u", budget.Usage{ID: "big", Cost: budget.MustAmount("7.5")}); err != nil {
		t.Fatal(err)
	}
	if _, err := reserve(ma, "1"); !errors.Is(err, budget.ErrBudgetExceeded) {
		t.Fatalf("reserve past the limit on stale memory: %v, want ErrBudgetExceeded", err)
	}
	if _, stale := postgres.FastCounts(a); stale == 0 {
		t.Errorf("no stale fast step counted")
	}
	// Settling on a's side, after b changed the counters, still counts once.
	if _, err := r1.Settle(ctx, budget.Usage{ID: "s1", Cost: budget.MustAmount("0.25")}); err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Record(ctx, "u", budget.Usage{ID: "small", Cost: budget.MustAmount("0.25")}); err != nil {
		t.Fatal(err)
	}
	if err := r2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// A hold released through b cannot be settled through a's memory.
	r3, err := reserve(ma, "1")
	if err != nil {
		t.Fatal(err)
	}
	p := policyOf(t, a, "u", c.Now())
	if _, err := b.Release(ctx, budget.ReleaseRequest{UserID: "u", HoldID: r3.ID(), Policy: p, Now: c.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := r3.Settle(ctx, budget.Usage{Cost: budget.MustAmount("1")}); !errors.Is(err, budget.ErrReservationClosed) {
		t.Errorf("settle of a hold released elsewhere: %v, want ErrReservationClosed", err)
	}
	// A duplicate usage ID is refused on the fast path too.
	if _, err := ma.Record(ctx, "u", budget.Usage{ID: "d", Cost: budget.MustAmount("0.5")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ma.Record(ctx, "u", budget.Usage{ID: "d", Cost: budget.MustAmount("0.5")}); !errors.Is(err, budget.ErrDuplicate) {
		t.Errorf("second record of one ID: %v, want ErrDuplicate", err)
	}
	for _, m := range []*budget.Manager{ma, mb} {
		st, err := m.Status(ctx, "u")
		if err != nil {
			t.Fatal(err)
		}
		if !st.Spent.Equal(budget.MustAmount("8.5")) || !st.Reserved.IsZero() {
			t.Errorf("spent %s reserved %s, want 8.5 and 0", st.Spent, st.Reserved)
		}
	}
	checkCounters(t, schema)
}

// nextExpiry reads the user's stored next_expiry.
func nextExpiry(t *testing.T, schema, user string) time.Time {
	t.Helper()
	var n *int64
	if err := adminPool(t).QueryRow(context.Background(), qualify(schema, `SELECT next_expiry FROM {s}.users WHERE user_id = $1`), user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == nil {
		return time.Time{}
	}
	return time.Unix(0, *n).UTC()
}

// TestFastPathExtend checks that Extend, which always takes the locking
// transaction, leaves the fast path's memory right: the store that extends
// keeps the fast path for the hold past its old expiry, next_expiry is
// exact, and another store that remembers the old next_expiry, or a hold
// of its own with its old expiry, decides on the current values.
func TestFastPathExtend(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	a, b := open(t, schema), open(t, schema)
	c := storetest.NewClock(storetestStart)
	const ttl = 10 * time.Minute
	ma := budget.NewManager(a, budget.Options{Now: c.Now, HoldTTL: ttl})
	mb := budget.NewManager(b, budget.Options{Now: c.Now, HoldTTL: ttl})
	t0 := storetestStart
	status := func(m *budget.Manager, user, spent, reserved string) {
		t.Helper()
		st, err := m.Status(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Spent.Equal(budget.MustAmount(spent)) || !st.Reserved.Equal(budget.MustAmount(reserved)) {
			t.Errorf("%s at %v: spent %s reserved %s, want %s and %s", user, c.Now().Sub(t0), st.Spent, st.Reserved, spent, reserved)
		}
	}

	// One store: the hold it extended settles on the fast path after its
	// old expiry.
	setLimit(t, ma, "v", "10")
	r1, err := ma.Reserve(ctx, "v", budget.MustAmount("2"))
	if err != nil {
		t.Fatal(err)
	}
	c.Set(t0.Add(ttl / 2))
	if _, err := r1.Extend(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := nextExpiry(t, schema, "v"), t0.Add(ttl/2+ttl); !got.Equal(want) {
		t.Errorf("next_expiry %v after the extend, want %v", got, want)
	}
	c.Set(t0.Add(ttl + time.Second))
	done, stale := postgres.FastCounts(a)
	if _, err := r1.Settle(ctx, budget.Usage{Cost: budget.MustAmount("2")}); err != nil {
		t.Fatal(err)
	}
	if d, s := postgres.FastCounts(a); d != done+1 || s != stale {
		t.Errorf("the settle after the old expiry: %d fast steps, %d stale; want the fast path", d-done, s-stale)
	}
	status(ma, "v", "2", "0")

	// Two stores: b remembers the next_expiry and its own hold's expiry
	// from before a extended both.
	c.Set(t0)
	setLimit(t, ma, "u", "10")
	r4, err := ma.Reserve(ctx, "u", budget.MustAmount("1"))
	if err != nil {
		t.Fatal(err)
	}
	c.Set(t0.Add(time.Minute))
	r2, err := mb.Reserve(ctx, "u", budget.MustAmount("3"))
	if err != nil {
		t.Fatal(err)
	}
	c.Set(t0.Add(5 * time.Minute))
	if _, err := r4.Extend(ctx); err != nil {
		t.Fatal(err)
	}
	p := policyOf(t, a, "u", c.Now())
	if _, err := a.Extend(ctx, budget.ExtendRequest{UserID: "u", HoldID: r2.ID(), ExpiresAt: t0.Add(20 * time.Minute), Policy: p, Now: c.Now()}); err != nil {
		t.Fatal(err)
	}
	if got, want := nextExpiry(t, schema, "u"), t0.Add(15*time.Minute); !got.Equal(want) {
		t.Errorf("next_expiry %v after both extends, want %v", got, want)
	}
	// Past both old expiries (10 and 11 minutes), before the new ones.
	c.Set(t0.Add(12 * time.Minute))
	status(mb, "u", "0", "4")
	if _, err := mb.Reserve(ctx, "u", budget.MustAmount("6.5")); !errors.Is(err, budget.ErrBudgetExceeded) {
		t.Fatalf("reserve of 6.5 beside 4 extended: %v, want ErrBudgetExceeded", err)
	}
	r5, err := mb.Reserve(ctx, "u", budget.MustAmount("6"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Settle(ctx, budget.Usage{Cost: budget.MustAmount("3")}); err != nil {
		t.Fatal(err)
	}
	status(mb, "u", "3", "7")
	if _, err := r4.Settle(ctx, budget.Usage{Cost: budget.MustAmount("1")}); err != nil {
		t.Fatal(err)
	}
	if err := r5.Release(ctx); err != nil {
		t.Fatal(err)
	}
	status(ma, "u", "4", "0")
	status(mb, "u", "4", "0")
	checkCounters(t, schema)
}

// policyOf returns the policy a Manager would send now for the user's
// stored settings (monthly, UTC, default thresholds).
func policyOf(t *testing.T, s budget.Store, user string, now time.Time) budget.Policy {
	t.Helper()
	set, err := s.Settings(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := budget.ToNanos(set.Limit)
	return budget.Policy{
		Version: set.Version, Limit: l, Enforce: set.Enforce,
		Window: budget.PeriodWindow(budget.Monthly, 0, time.Time{}, time.UTC, now),
		Levels: [3]budget.Nanos{l * 3 / 4, l * 9 / 10, l},
	}
}

// holdRowLock records a usage of 1 for user through mh, on holder (whose
// fast path must be off), and pauses that transaction right after it locks
// the user's row. release lets it commit, and fails t if it did not.
func holdRowLock(t *testing.T, holder *postgres.Store, mh *budget.Manager, user string) (release func()) {
	t.Helper()
	gate, locked := make(chan struct{}), make(chan struct{})
	postgres.SetLocked(holder, func(context.Context, uint32) {
		close(locked)
		<-gate
	})
	held := make(chan error, 1)
	go func() {
		_, err := mh.Record(context.Background(), user, budget.Usage{ID: "holder", Cost: budget.MustAmount("1")})
		held <- err
	}()
	<-locked
	return func() {
		t.Helper()
		close(gate)
		if err := <-held; err != nil {
			t.Fatalf("the lock holder's record: %v", err)
		}
	}
}

// TestFastPathKilled kills the backend of a fast-path statement while it
// waits for the user's row lock: the call fails closed, nothing of it is
// written, and the store goes on.
func TestFastPathKilled(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	db := adminPool(t)
	c := storetest.NewClock(storetestStart)
	holder := open(t, schema)
	postgres.SetFast(holder, false)
	fast := open(t, schema)
	mh := budget.NewManager(holder, budget.Options{Now: c.Now})
	mf := budget.NewManager(fast, budget.Options{Now: c.Now})
	setLimit(t, mh, "u", "10")
	for range 2 { // the second reserve remembers the counters
		r, err := mf.Reserve(ctx, "u", budget.MustAmount("1"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Settle(ctx, budget.Usage{Cost: budget.MustAmount("1")}); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := postgres.FastCounts(fast)
	// holder pauses inside its transaction, holding the row lock.
	unlock := holdRowLock(t, holder, mh, "u")
	done := make(chan error, 1)
	go func() {
		_, err := mf.Reserve(ctx, "u", budget.MustAmount("1"))
		done <- err
	}()
	// Find the fast statement waiting for the lock, and kill its backend.
	var pid int32
	deadline := time.Now().Add(10 * time.Second)
	for pid == 0 && time.Now().Before(deadline) {
		err := db.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'
			AND query LIKE '%expect_fresh%' AND query LIKE '%' || $1 || '%'`, schema).Scan(&pid)
		if err != nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if pid == 0 {
		t.Fatal("the fast statement never waited for the lock")
	}
	if _, err := db.Exec(ctx, `SELECT pg_terminate_backend($1, 10000)`, pid); err != nil {
		t.Fatal(err)
	}
	err := <-done
	if err == nil || errors.Is(err, budget.ErrBudgetExceeded) {
		t.Fatalf("reserve whose backend was killed: %v, want a store failure", err)
	}
	t.Log(err)
	unlock()
	if after, _ := postgres.FastCounts(fast); after != before {
		t.Errorf("the killed statement counted as a fast step")
	}
	var holds int
	if err := db.QueryRow(ctx, qualify(schema, `SELECT COUNT(*) FROM {s}.holds WHERE state = 0`)).Scan(&holds); err != nil {
		t.Fatal(err)
	}
	if holds != 0 {
		t.Errorf("%d pending holds after the failed reserve, want 0", holds)
	}
	// The store goes on, and its memory is still checked.
	r, err := mf.Reserve(ctx, "u", budget.MustAmount("1"))
	if err != nil {
		t.Fatalf("reserve after the kill: %v", err)
	}
	st, err := r.Settle(ctx, budget.Usage{Cost: budget.MustAmount("1")})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Spent.Equal(budget.MustAmount("4")) || !st.Reserved.IsZero() {
		t.Errorf("spent %s reserved %s, want 4 and 0", st.Spent, st.Reserved)
	}
	checkCounters(t, schema)
}
