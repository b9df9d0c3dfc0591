package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/postgres"
	"github.com/llmbudget/budget/store/storetest"
)

// warm makes s remember each user's counters: the fast path needs them.
func warm(t *testing.T, m *budget.Manager, users ...string) {
	t.Helper()
	for _, u := range users {
		r, err := m.Reserve(context.Background(), u, budget.MustAmount("0.01"))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Release(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// stallFlushers fills s's flushers with single statements that wait
// (reserves of 0.01 for the users "stall-0", "stall-1", ..., set up here),
// so that the statements of the calls started next queue for one batch. It
// returns release, which lets them go and waits for the stalling reserves.
// Every later batch calls then, if it is not nil, before it is sent.
func stallFlushers(t *testing.T, s *postgres.Store, m *budget.Manager, then func(ctx context.Context, pid uint32, n int)) (release func()) {
	t.Helper()
	users := make([]string, postgres.MaxFlushers)
	for i := range users {
		users[i] = fmt.Sprintf("stall-%d", i)
		setLimit(t, m, users[i], "1")
	}
	warm(t, m, users...)
	gate, stalled := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	postgres.SetFlushing(s, func(ctx context.Context, pid uint32, n int) {
		if calls.Add(1) <= int32(len(users)) {
			stalled <- struct{}{}
			<-gate
		} else if then != nil {
			then(ctx, pid, n)
		}
	})
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			if _, err := m.Reserve(context.Background(), u, budget.MustAmount("0.01")); err != nil {
				t.Errorf("stalling reserve: %v", err)
			}
		})
		<-stalled
	}
	return func() {
		close(gate)
		wg.Wait()
	}
}

// waitPending waits until n fast statements of s wait for a batch.
func waitPending(t *testing.T, s *postgres.Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for postgres.Pending(s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d statements pending after 10s, want %d", postgres.Pending(s), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroupCommit runs many users' calls at once on one store: their fast
// statements share commits, and every counter still equals its rows.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	s := open(t, schema)
	c := storetest.NewClock(storetestStart)
	m := budget.NewManager(s, budget.Options{Now: c.Now})
	const users, calls = 16, 25
	for i := range users {
		setLimit(t, m, fmt.Sprintf("u%02d", i), "100")
	}
	var wg sync.WaitGroup
	for i := range users {
		u := fmt.Sprintf("u%02d", i)
		wg.Go(func() {
			for range calls {
				r, err := m.Reserve(ctx, u, budget.MustAmount("1"))
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := r.Settle(ctx, budget.Usage{Provider: "openai", Model: "gpt-4o", Cost: budget.MustAmount("0.25")}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	batches, statements, _ := postgres.BatchCounts(s)
	t.Logf("%d statements in %d batches", statements, batches)
	if statements < users*calls || batches >= statements {
		t.Errorf("%d statements in %d batches: no commit was shared", statements, batches)
	}
	for i := range users {
		st, err := m.Status(ctx, fmt.Sprintf("u%02d", i))
		if err != nil {
			t.Fatal(err)
		}
		if want := budget.MustAmount("6.25"); !st.Spent.Equal(want) || !st.Reserved.IsZero() {
			t.Errorf("u%02d: spent %s reserved %s, want %s and 0", i, st.Spent, st.Reserved, want)
		}
	}
	checkCounters(t, schema)
}

// TestGroupCommitRollback puts in one batch a statement on stale counters
// and one with a duplicate usage ID among good ones: each failure rolls the
// batch back and goes to its own call, the rest are sent again, so the good
// ones commit, the stale one is decided on the current counters, and only
// the duplicate fails.
func TestGroupCommitRollback(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	s, other := open(t, schema), open(t, schema)
	c := storetest.NewClock(storetestStart)
	m := budget.NewManager(s, budget.Options{Now: c.Now})
	mo := budget.NewManager(other, budget.Options{Now: c.Now})
	users := []string{"good-1", "stale", "dup", "good-2"}
	for _, u := range users {
		setLimit(t, m, u, "10")
	}
	warm(t, m, users...)
	if _, err := m.Record(ctx, "dup", budget.Usage{ID: "taken", Cost: budget.MustAmount("1")}); err != nil {
		t.Fatal(err)
	}
	// The other store spends 9.5 of stale's 10: s still remembers 0.
	if _, err := mo.Record(ctx, "stale", budget.Usage{Cost: budget.MustAmount("9.5")}); err != nil {
		t.Fatal(err)
	}
	release := stallFlushers(t, s, m, nil)
	_, _, rolledBefore := postgres.BatchCounts(s)
	errs := make(map[string]error)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			var err error
			if u == "dup" {
				_, err = m.Record(ctx, u, budget.Usage{ID: "taken", Cost: budget.MustAmount("1")})
			} else {
				_, err = m.Reserve(ctx, u, budget.MustAmount("1"))
			}
			mu.Lock()
			errs[u] = err
			mu.Unlock()
		})
	}
	waitPending(t, s, len(users))
	release()
	wg.Wait()
	// Sorted by user: dup, good-1, good-2, stale. The first batch fails at
	// dup, the second at stale, the third commits.
	if _, _, rolled := postgres.BatchCounts(s); rolled != rolledBefore+2 {
		t.Errorf("%d batches rolled back, want 2", rolled-rolledBefore)
	}
	for u, want := range map[string]error{"good-1": nil, "good-2": nil, "stale": budget.ErrBudgetExceeded, "dup": budget.ErrDuplicate} {
		if err := errs[u]; (want == nil && err != nil) || !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", u, err, want)
		}
	}
	for u, want := range map[string]string{"good-1": "1", "good-2": "1", "stale": "0", "dup": "0"} {
		st, err := m.Status(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Reserved.Equal(budget.MustAmount(want)) {
			t.Errorf("%s: reserved %s, want %s", u, st.Reserved, want)
		}
	}
	checkCounters(t, schema)
}

// TestGroupCommitKilled kills the backend of a batch while it waits for a
// row lock, after its first statement ran: every call in it fails closed,
// nothing of the batch is written, and the store goes on.
func TestGroupCommitKilled(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	db := adminPool(t)
	s, holder := open(t, schema), open(t, schema)
	postgres.SetFast(holder, false)
	c := storetest.NewClock(storetestStart)
	m := budget.NewManager(s, budget.Options{Now: c.Now})
	mh := budget.NewManager(holder, budget.Options{Now: c.Now})
	users := []string{"a", "b", "c"} // the batch runs them in this order
	for _, u := range users {
		setLimit(t, m, u, "10")
	}
	warm(t, m, users...)
	// holder pauses inside its transaction, holding b's row lock.
	unlock := holdRowLock(t, holder, mh, "b")
	batchPID := make(chan uint32, 1)
	release := stallFlushers(t, s, m, func(ctx context.Context, pid uint32, n int) {
		if n == len(users) {
			batchPID <- pid
		}
	})
	errs := make(chan error, len(users))
	for _, u := range users {
		go func() {
			_, err := m.Reserve(ctx, u, budget.MustAmount("1"))
			errs <- err
		}()
	}
	waitPending(t, s, len(users))
	release()
	pid := <-batchPID
	// Wait for the batch to block on b's lock, a's hold placed, then kill it.
	deadline := time.Now().Add(10 * time.Second)
	for waiting := false; !waiting; {
		if time.Now().After(deadline) {
			t.Fatal("the batch never waited for b's row lock")
		}
		err := db.QueryRow(ctx, `SELECT wait_event_type IS NOT DISTINCT FROM 'Lock' FROM pg_stat_activity WHERE pid = $1`, int32(pid)).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := db.Exec(ctx, `SELECT pg_terminate_backend($1, 10000)`, int32(pid)); err != nil {
		t.Fatal(err)
	}
	for range users {
		err := <-errs
		if err == nil || errors.Is(err, budget.ErrBudgetExceeded) {
			t.Errorf("reserve in the killed batch: %v, want a store failure", err)
		}
	}
	unlock()
	var holds int
	if err := db.QueryRow(ctx, qualify(schema, `SELECT COUNT(*) FROM {s}.holds WHERE state = 0 AND user_id IN ('a', 'b', 'c')`)).Scan(&holds); err != nil {
		t.Fatal(err)
	}
	if holds != 0 {
		t.Errorf("%d pending holds after the killed batch, want 0", holds)
	}
	for _, u := range users {
		if _, err := m.Reserve(ctx, u, budget.MustAmount("1")); err != nil {
			t.Errorf("%s: reserve after the kill: %v", u, err)
		}
	}
	checkCounters(t, schema)
}

// TestGroupCommitInstances runs two stores on one schema, each with a
// goroutine per user, so that one store's batches mix statements on
// counters the other store just changed (rolled back and sent alone) with
// good ones: every settled cost is counted exactly once, and the counters
// equal the rows.
func TestGroupCommitInstances(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	c := storetest.NewClock(storetestStart)
	stores := []*postgres.Store{open(t, schema), open(t, schema)}
	managers := []*budget.Manager{
		budget.NewManager(stores[0], budget.Options{Now: c.Now}),
		budget.NewManager(stores[1], budget.Options{Now: c.Now}),
	}
	const users, calls = 8, 30
	for i := range users {
		setLimit(t, managers[0], fmt.Sprintf("u%d", i), "1000")
	}
	var (
		mu    sync.Mutex
		spent = make(map[string]budget.Nanos)
		wg    sync.WaitGroup
	)
	for si, m := range managers {
		for g := range users {
			wg.Go(func() {
				u := fmt.Sprintf("u%d", g)
				for k := range calls {
					r, err := m.Reserve(ctx, u, budget.MustAmount("1"))
					if err != nil {
						t.Errorf("store %d: reserve: %v", si, err)
						return
					}
					if k%3 == 2 {
						if err := r.Release(ctx); err != nil {
							t.Errorf("store %d: release: %v", si, err)
							return
						}
						continue
					}
					cost := budget.Nanos(1_000_000 * (1 + g + k))
					if _, err := r.Settle(ctx, budget.Usage{Provider: "p", Model: "m", Cost: cost.Decimal()}); err != nil {
						t.Errorf("store %d: settle: %v", si, err)
						return
					}
					mu.Lock()
					spent[u] += cost
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	for i, s := range stores {
		batches, statements, rolled := postgres.BatchCounts(s)
		t.Logf("store %d: %d statements in %d batches, %d rolled back", i, statements, batches, rolled)
	}
	for u, want := range spent {
		st, err := managers[1].Status(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Spent.Equal(want.Decimal()) || !st.Reserved.IsZero() {
			t.Errorf("%s: spent %s reserved %s, want %s and 0", u, st.Spent, st.Reserved, want.Decimal())
		}
	}
	checkCounters(t, schema)
}
