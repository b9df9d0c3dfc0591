package sqlite_test

// The writer keeps counters between steps (cache.go). These tests pin the
// three ways the file can change under that copy: another store handle
// committing, an operation of the same batch that reads and writes rows
// itself, and a batch that rolls back.

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/sqlite"
	"github.com/llmbudget/budget/store/storetest"
)

// TestCounterCacheSeesOtherHandles: a store whose counters of u are
// cached must see the hold another handle on the file placed meanwhile.
func TestCounterCacheSeesOtherHandles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "budget.db")
	a, b := ftManager(ftOpen(t, path)), ftManager(ftOpen(t, path))
	ftLimit(t, a, "u", "1")
	if _, err := a.Reserve(ctx, "u", budget.MustAmount("0.6")); err != nil {
		t.Fatal(err) // a's writer now holds u's counters: 0.6 held
	}
	if _, err := b.Reserve(ctx, "u", budget.MustAmount("0.3")); err != nil {
		t.Fatal(err) // 0.9 held in the file
	}
	if _, err := a.Reserve(ctx, "u", budget.MustAmount("0.3")); !errors.Is(err, budget.ErrBudgetExceeded) {
		t.Fatalf("third reserve through the first handle: %v, want ErrBudgetExceeded (0.9 of 1 held)", err)
	}
	for _, m := range []*budget.Manager{a, b} {
		st, err := m.Status(ctx, "u")
		if err != nil {
			t.Fatal(err)
		}
		if !st.Reserved.Equal(budget.MustAmount("0.9")) {
			t.Errorf("reserved %s, want 0.9", st.Reserved)
		}
	}
	ftCheckCounters(t, path)
}

// TestCounterCacheAndResetInOneBatch: a Reset committed in the same batch
// as a Record before it sees the recorded spend (its audit entry says so)
// and leaves the period at zero.
func TestCounterCacheAndResetInOneBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "budget.db")
	s := ftOpen(t, path)
	clock := storetest.NewClock(ftStart)
	m := budget.NewManager(s, budget.Options{Now: clock.Now})
	ftLimit(t, m, "u", "10")
	if _, err := m.Record(ctx, "u", budget.Usage{ID: "first", Cost: budget.MustAmount("1")}); err != nil {
		t.Fatal(err) // the writer now holds u's counters
	}
	release, err := sqlite.BlockWriter(s)
	if err != nil {
		t.Fatal(err)
	}
	recorded := make(chan error, 1)
	go func() {
		_, err := m.Record(ctx, "u", budget.Usage{ID: "second", Cost: budget.MustAmount("2")})
		recorded <- err
	}()
	ftWaitQueued(t, s, 1)
	clock.Advance(time.Minute) // the reset's period starts after both records
	type reset struct {
		e   budget.AuditEntry
		err error
	}
	done := make(chan reset, 1)
	go func() {
		e, err := m.Reset(ctx, ftAdmin, "u", budget.ResetOptions{Reason: "test"})
		done <- reset{e, err}
	}()
	ftWaitQueued(t, s, 2) // the Record, then the Reset, in one batch
	release()
	if err := <-recorded; err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !r.e.PreviousSpent.Equal(budget.MustAmount("3")) {
		t.Errorf("reset's previous spent %s, want 3", r.e.PreviousSpent)
	}
	st, err := m.Status(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Spent.IsZero() {
		t.Errorf("spent %s after the reset, want 0", st.Spent)
	}
	ftCheckCounters(t, path)
}

// TestCounterCacheForgetsRolledBackBatch: a batch whose first run fails (a
// duplicate hold ID, through the Store) is rolled back and run again op by
// op; the holds it placed on its first run are not counted twice.
func TestCounterCacheForgetsRolledBackBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path, s, m := ftUser(t, "10")
	st, err := m.Status(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	set, err := s.Settings(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	window := budget.Window{Start: st.PeriodStart, End: st.PeriodEnd}
	p := budget.Policy{Version: set.Version, Window: window, Limit: 10e9, Enforce: true, Levels: [3]budget.Nanos{10e9, 10e9, 10e9}}
	reserve := func(id string) error {
		_, _, err := s.Reserve(ctx, budget.ReserveRequest{UserID: "u", HoldID: id, Amount: budget.Nanos(1e9),
			Policy: p, Now: st.PeriodStart, ExpiresAt: st.PeriodEnd})
		return err
	}
	if err := reserve("h0"); err != nil {
		t.Fatal(err) // the writer now holds u's counters
	}
	release, err := sqlite.BlockWriter(s)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 3)
	for i, id := range []string{"h1", "h2", "h0"} { // the last one fails
		go func() { errs <- reserve(id) }()
		ftWaitQueued(t, s, i+1)
	}
	release()
	var dup int
	for range 3 {
		switch err := <-errs; {
		case errors.Is(err, budget.ErrDuplicate):
			dup++
		case err != nil:
			t.Fatal(err)
		}
	}
	if dup != 1 {
		t.Fatalf("%d duplicate errors, want 1", dup)
	}
	after, err := m.Status(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if !after.Reserved.Equal(budget.MustAmount("3")) {
		t.Errorf("reserved %s, want 3 (h0, h1, h2)", after.Reserved)
	}
	ftCheckCounters(t, path)
}

// TestCounterCacheForgetsFailedStep: a step alone in its batch that
// created a model cap's counters and then failed (a duplicate hold ID)
// leaves nothing behind, in the file or in the writer's memory: the next
// step creates the cap again and its hold counts there.
func TestCounterCacheForgetsFailedStep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "budget.db")
	s := ftOpen(t, path)
	now := ftStart
	month := budget.PeriodWindow(budget.Monthly, 0, time.Time{}, time.UTC, now)
	policy := func(limit budget.Nanos) budget.Policy {
		return budget.Policy{Version: 1, Window: month, Limit: limit, Enforce: true, Levels: [3]budget.Nanos{limit, limit, limit}}
	}
	set := budget.Settings{UserID: "u", Plan: budget.DefaultUserPlan(), Version: 1, CreatedAt: now, UpdatedAt: now,
		ModelCaps: []budget.ModelCap{{Pattern: "gpt-*", Limit: budget.MustAmount("1")}}}
	if _, _, err := s.CreateSettings(ctx, budget.CreateRequest{Settings: set, Policy: policy(10e9), Now: now}); err != nil {
		t.Fatal(err)
	}
	reserve := func(id string, also ...budget.KeyPolicy) error {
		_, _, err := s.Reserve(ctx, budget.ReserveRequest{UserID: "u", HoldID: id, Amount: 5e8,
			Policy: policy(10e9), Now: now, ExpiresAt: now.Add(time.Hour), Also: also})
		return err
	}
	capped := budget.KeyPolicy{Key: budget.User("u").CapKey("gpt-*"), Cap: true, Policy: policy(1e9)}
	if err := reserve("h"); err != nil {
		t.Fatal(err)
	}
	if err := reserve("h", capped); !errors.Is(err, budget.ErrDuplicate) {
		t.Fatalf("second hold h: %v, want ErrDuplicate", err)
	}
	if err := reserve("h2", capped); err != nil {
		t.Fatal(err)
	}
	tot, err := s.Totals(ctx, budget.TotalsRequest{UserID: "u", Policy: policy(10e9), Now: now, Also: []budget.KeyPolicy{capped}})
	if err != nil {
		t.Fatal(err)
	}
	if tot.Held != 1e9 || len(tot.Also) != 1 || tot.Also[0].Held != 5e8 {
		t.Errorf("held %d, cap %+v; want 1e9 and a cap with 5e8 held", tot.Held, tot.Also)
	}
	ftCheckCounters(t, path)
}

// TestCounterCacheMixedTwoHandles runs reserves, settles, releases, limit
// changes, resets and membership changes of users in one team through two
// store handles on one file at once; every handle's writer keeps counters
// between its steps while the other commits. Afterwards every budget's
// counters equal what its rows say, and the team never spent past its
// limit.
func TestCounterCacheMixedTwoHandles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "budget.db")
	a, b := ftManager(ftOpen(t, path)), ftManager(ftOpen(t, path))
	five := budget.MustAmount("5")
	if _, err := a.UpdateBudget(ctx, ftAdmin, budget.Team("t"), budget.SettingsUpdate{Limit: &five}); err != nil {
		t.Fatal(err)
	}
	users := []string{"u0", "u1", "u2", "u3"}
	for _, u := range users {
		ftLimit(t, a, u, "3")
		if _, err := a.SetMembership(ctx, ftAdmin, u, budget.Membership{Teams: []string{"t"}}); err != nil {
			t.Fatal(err)
		}
	}
	ops := 100
	if storetest.RaceEnabled {
		ops = 40
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*ops)
	for g := range 8 {
		m := a
		if g%2 == 1 {
			m = b
		}
		wg.Go(func() {
			for i := range ops {
				u := users[(g+i)%len(users)]
				var err error
				switch i % 20 {
				case 17: // a new limit for the user
					limit := budget.MustAmount([]string{"2", "3", "4"}[(g+i)%3])
					_, err = m.UpdateSettings(ctx, ftAdmin, u, budget.SettingsUpdate{Limit: &limit})
				case 18: // out of the team and back
					ms := budget.Membership{}
					if (g+i)%2 == 0 {
						ms.Teams = []string{"t"}
					}
					_, err = m.SetMembership(ctx, ftAdmin, u, ms)
				case 19:
					_, err = m.Reset(ctx, ftAdmin, u, budget.ResetOptions{Reason: "mixed"})
				default:
					var r *budget.Reservation
					if r, err = m.Reserve(ctx, u, budget.MustAmount("0.10")); err == nil {
						if i%3 == 0 {
							err = r.Release(ctx)
						} else {
							_, err = r.Settle(ctx, budget.Usage{Cost: budget.MustAmount("0.07")})
						}
					}
				}
				if err != nil && !errors.Is(err, budget.ErrBudgetExceeded) {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ftCheckCounters(t, path)
	for _, m := range []*budget.Manager{a, b} {
		st, err := m.BudgetStatus(ctx, budget.Team("t"))
		if err != nil {
			t.Fatal(err)
		}
		if st.Spent.GreaterThan(five) || !st.Reserved.IsZero() {
			t.Errorf("the team: spent %s, reserved %s; want at most 5 and nothing", st.Spent, st.Reserved)
		}
	}
}
