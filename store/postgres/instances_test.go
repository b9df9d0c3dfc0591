package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/postgres"
	"github.com/llmbudget/budget/store/storetest"
)

// storetestStart is a Thursday mid-month, 10:00 UTC.
var storetestStart = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

var admin = budget.Principal{UserID: "root", Admin: true}

func setLimit(t testing.TB, m *budget.Manager, user, limit string) {
	t.Helper()
	l := budget.MustAmount(limit)
	if _, err := m.UpdateSettings(context.Background(), admin, user, budget.SettingsUpdate{Limit: &l}); err != nil {
		t.Fatal(err)
	}
}

// checkCounters checks that every user's counters in schema equal the sums
// of the rows they count: spent of the usage in the window, held of the
// holds still counted, and that the daily rollups sum to the usage rows.
func checkCounters(t testing.TB, schema string) {
	t.Helper()
	ctx := context.Background()
	rows, err := adminPool(t).Query(ctx, qualify(schema, `SELECT u.user_id, u.spent,
		(SELECT COALESCE(SUM(cost), 0)::bigint FROM {s}.usage x WHERE x.user_id = u.user_id AND x.at >= u.win_start AND x.at < u.win_end),
		u.held, (SELECT COALESCE(SUM(amount), 0)::bigint FROM {s}.holds h WHERE h.user_id = u.user_id AND h.counted),
		(SELECT COALESCE(SUM(cost), 0)::bigint FROM {s}.usage x WHERE x.user_id = u.user_id),
		(SELECT COALESCE(SUM(cost), 0)::bigint FROM {s}.usage_daily d WHERE d.user_id = u.user_id),
		(SELECT COUNT(*) FROM {s}.usage x WHERE x.user_id = u.user_id),
		(SELECT COALESCE(SUM(requests), 0)::bigint FROM {s}.usage_daily d WHERE d.user_id = u.user_id)
		FROM {s}.users u`))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			user                                  string
			spent, sum, held, holds               int64
			all, rolled, requests, rolledRequests int64
		)
		if err := rows.Scan(&user, &spent, &sum, &held, &holds, &all, &rolled, &requests, &rolledRequests); err != nil {
			t.Fatal(err)
		}
		if spent != sum || held != holds || all != rolled || requests != rolledRequests {
			t.Errorf("%s: spent %d, rows in window %d; held %d, counted holds %d; usage %d in %d rows, rollups %d in %d",
				user, spent, sum, held, holds, all, requests, rolled, rolledRequests)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestInstances runs four Managers, each on a store with its own pool (four
// replicas of an application), fifty goroutines each, reserving and
// settling 0.10 against a limit of 10: exactly 100 calls pass, and the
// counters equal the sums of the rows.
func TestInstances(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	const instances, goroutines = 4, 50
	c := storetest.NewClock(storetestStart)
	managers := make([]*budget.Manager, instances)
	for i := range managers {
		managers[i] = budget.NewManager(open(t, schema), budget.Options{Now: c.Now})
	}
	setLimit(t, managers[0], "u", "10")
	var (
		wg     sync.WaitGroup
		gate   = make(chan struct{})
		mu     sync.Mutex
		passed int
		errs   []error
	)
	for i := range instances * goroutines {
		m := managers[i%instances]
		wg.Go(func() {
			<-gate
			r, err := m.Reserve(ctx, "u", budget.MustAmount("0.10"))
			if err == nil {
				_, err = r.Settle(ctx, budget.Usage{Provider: "openai", Model: "gpt-4o", Cost: budget.MustAmount("0.10")})
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				passed++
			case !errors.Is(err, budget.ErrBudgetExceeded):
				errs = append(errs, err)
			}
		})
	}
	close(gate)
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if passed != 100 {
		t.Errorf("%d calls passed across %d instances, want 100", passed, instances)
	}
	for i, m := range managers {
		st, err := m.Status(ctx, "u")
		if err != nil {
			t.Fatal(err)
		}
		if !st.Spent.Equal(budget.MustAmount("10")) || !st.Reserved.IsZero() {
			t.Errorf("instance %d: spent %s reserved %s, want 10 and 0", i, st.Spent, st.Reserved)
		}
	}
	checkCounters(t, schema)
	var n int
	if err := adminPool(t).QueryRow(ctx, qualify(schema, `SELECT COUNT(*) FROM {s}.usage`)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 100 {
		t.Errorf("%d usage rows, want 100", n)
	}
}

// TestRetrySerializationFailure checks that an aborted transaction is run
// again: a trigger fails the first attempts of a write with SQLSTATE 40001
// (and then 40P01), and the call still succeeds, once.
func TestRetrySerializationFailure(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	s := open(t, schema)
	m := budget.NewManager(s, budget.Options{Now: storetest.NewClock(storetestStart).Now})
	setLimit(t, m, "u", "10")
	db := adminPool(t)
	// Fail the next 4 usage inserts: two serialization failures, two deadlocks.
	if _, err := db.Exec(ctx, qualify(schema, `
		CREATE SEQUENCE {s}.fail_left MINVALUE -100 START 4;
		CREATE FUNCTION {s}.fail() RETURNS trigger LANGUAGE plpgsql AS $$
		DECLARE n bigint := nextval('{s}.fail_left');
		BEGIN
			IF n > 2 THEN RAISE EXCEPTION 'injected' USING ERRCODE = '40001'; END IF;
			IF n > 0 THEN RAISE EXCEPTION 'injected' USING ERRCODE = '40P01'; END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER fail BEFORE INSERT ON {s}.usage FOR EACH ROW EXECUTE FUNCTION {s}.fail();`)); err != nil {
		t.Fatal(err)
	}
	// The sequence counts down: make nextval return 4, 3, 2, 1, 0, ...
	if _, err := db.Exec(ctx, qualify(schema, `ALTER SEQUENCE {s}.fail_left INCREMENT -1`)); err != nil {
		t.Fatal(err)
	}
	st, err := m.Record(ctx, "u", budget.Usage{ID: "x", Cost: budget.MustAmount("1")})
	if err != nil {
		t.Fatalf("record with four injected aborts: %v", err)
	}
	if !st.Spent.Equal(budget.MustAmount("1")) {
		t.Errorf("spent %s, want 1", st.Spent)
	}
	checkCounters(t, schema)
	// Past the retries the error is returned, and nothing is written.
	if _, err := db.Exec(ctx, qualify(schema, `SELECT setval('{s}.fail_left', 100)`)); err != nil {
		t.Fatal(err)
	}
	_, err = m.Record(ctx, "u", budget.Usage{ID: "y", Cost: budget.MustAmount("1")})
	if err == nil {
		t.Fatal("record with endless aborts succeeded")
	}
	t.Log(err)
	if st, err := m.Status(ctx, "u"); err != nil || !st.Spent.Equal(budget.MustAmount("1")) {
		t.Errorf("status %+v %v, want spent 1", st, err)
	}
	checkCounters(t, schema)
}

func TestBackendKilled(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	db := adminPool(t)
	c := storetest.NewClock(storetestStart)

	// hooked is a store whose next write transaction, once armed, pauses
	// inside the user's row lock: it sends a gate and its backend's
	// process ID, and goes on when the gate is closed.
	type hooked struct {
		s     *postgres.Store
		arm   func()
		pids  chan uint32
		gates chan chan struct{}
	}
	newHooked := func() *hooked {
		h := &hooked{s: open(t, schema), pids: make(chan uint32, 1), gates: make(chan chan struct{}, 1)}
		postgres.SetFast(h.s, false) // every write locks, so the hook runs
		var mu sync.Mutex
		armed := false
		h.arm = func() { mu.Lock(); armed = true; mu.Unlock() }
		postgres.SetLocked(h.s, func(ctx context.Context, pid uint32) {
			mu.Lock()
			fire := armed
			armed = false
			mu.Unlock()
			if !fire {
				return
			}
			gate := make(chan struct{})
			h.gates <- gate
			h.pids <- pid
			<-gate
		})
		return h
	}
	h := newHooked()
	m := budget.NewManager(h.s, budget.Options{Now: c.Now})
	setLimit(t, m, "u", "10")
	if _, err := m.Record(ctx, "u", budget.Usage{ID: "first", Cost: budget.MustAmount("1")}); err != nil {
		t.Fatal(err)
	}
	// killDuring runs call with the hook armed, terminates the paused
	// transaction's backend, lets it go on and returns call's error.
	killDuring := func(what string, call func() error) error {
		t.Helper()
		h.arm()
		done := make(chan error, 1)
		go func() { done <- call() }()
		gate, pid := <-h.gates, <-h.pids
		// The paused transaction holds the user's row lock.
		var locks int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM pg_locks WHERE pid = $1 AND locktype = 'transactionid' AND granted`, int32(pid)).Scan(&locks); err != nil {
			t.Fatal(err)
		}
		if locks == 0 {
			t.Errorf("%s: backend %d holds no transaction lock", what, pid)
		}
		var killed bool
		if err := db.QueryRow(ctx, `SELECT pg_terminate_backend($1, 10000)`, int32(pid)).Scan(&killed); err != nil || !killed {
			t.Fatalf("%s: terminating backend %d: %v %v", what, pid, killed, err)
		}
		close(gate)
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no answer after its backend was killed", what)
			return nil
		}
	}

	// A Reserve whose backend dies fails closed, and writes nothing.
	err := killDuring("reserve", func() error {
		_, err := m.Reserve(ctx, "u", budget.MustAmount("2"))
		return err
	})
	if err == nil || errors.Is(err, budget.ErrBudgetExceeded) {
		t.Fatalf("reserve on a killed backend: %v, want a store failure", err)
	}
	t.Logf("reserve: %v", err)
	var holds int
	if err := db.QueryRow(ctx, qualify(schema, `SELECT COUNT(*) FROM {s}.holds`)).Scan(&holds); err != nil {
		t.Fatal(err)
	}
	if holds != 0 {
		t.Errorf("%d holds after a failed reserve, want 0", holds)
	}
	// The pool recovers: the next call works.
	r, err := m.Reserve(ctx, "u", budget.MustAmount("2"))
	if err != nil {
		t.Fatalf("reserve after the kill: %v", err)
	}
	st, err := m.Status(ctx, "u")
	if err != nil || !st.Spent.Equal(budget.MustAmount("1")) || !st.Reserved.Equal(budget.MustAmount("2")) {
		t.Fatalf("status %+v %v, want spent 1 reserved 2", st, err)
	}

	// A Settle whose backend dies records nothing and leaves the hold
	// open, so the caller's retry settles it once.
	err = killDuring("settle", func() error {
		_, err := r.Settle(ctx, budget.Usage{ID: "second", Cost: budget.MustAmount("1.5")})
		return err
	})
	if err == nil {
		t.Fatal("settle on a killed backend succeeded")
	}
	t.Logf("settle: %v", err)
	var rows int
	if err := db.QueryRow(ctx, qualify(schema, `SELECT COUNT(*) FROM {s}.usage`)).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Errorf("%d usage rows after a failed settle, want 1", rows)
	}
	checkCounters(t, schema)
	st, err = r.Settle(ctx, budget.Usage{ID: "second", Cost: budget.MustAmount("1.5")})
	if err != nil {
		t.Fatalf("settle retried: %v", err)
	}
	if !st.Spent.Equal(budget.MustAmount("2.5")) || !st.Reserved.IsZero() {
		t.Errorf("after the retried settle: spent %s reserved %s, want 2.5 and 0", st.Spent, st.Reserved)
	}
	checkCounters(t, schema)
	// Every connection of the pool still works.
	errs := make(chan error, 20)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			_, err := m.Record(ctx, "u", budget.Usage{ID: fmt.Sprint("after-", i), Cost: budget.MustAmount("0.01")})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	checkCounters(t, schema)
}

// TestTablesDropped checks that calls fail closed, with an error and never
// allowed, when the store's tables are gone.
func TestTablesDropped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	schema := newSchema(t)
	s := open(t, schema)
	m := budget.NewManager(s, budget.Options{})
	setLimit(t, m, "u", "10")
	// Drop the schema under the store: every call now fails.
	if _, err := adminPool(t).Exec(ctx, qualify(schema, `DROP SCHEMA {s} CASCADE`)); err != nil {
		t.Fatal(err)
	}
	_, err := m.Reserve(ctx, "u", budget.MustAmount("1"))
	if err == nil || errors.Is(err, budget.ErrBudgetExceeded) {
		t.Fatalf("reserve without tables: %v, want a store failure", err)
	}
	t.Log(err)
}
