package storetest

// RunFaults: what must hold when a store fails, checked through a Faulty
// around any store.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/shopspring/decimal"
)

// RunFaults checks, through a Faulty wrapped around stores made by
// newStore (as for Run), what must hold when a store fails:
//
//   - a Reserve that fails is never allowed: it returns no reservation, and
//     a Reserve that succeeds holds its estimate;
//   - a Settle whose outcome the caller does not know (the store committed,
//     then the reply was lost) can be retried: the retry succeeds or
//     returns ErrReservationClosed, and the spend counts once;
//   - no failure leaves a hold that never expires, extended or not: once
//     the TTL has passed, reserved is the live holds only;
//   - duplicate deliveries of a request close a hold or record a usage
//     once, and extend a hold to one expiry;
//   - a Reserve delayed past a settings change is decided by the new
//     settings;
//   - every Manager entry point returns the store's error wrapped (errors.Is
//     finds the injected sentinel), and never panics.
//
// Faults are drawn by a seeded rule; the seed is the -model.seed flag, or
// a new one each run, printed with t.Logf.
func RunFaults(t *testing.T, newStore func(testing.TB) budget.Store) {
	seed := *modelSeedFlag
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("seed %d; replay with -model.seed=%d", seed, seed)
	for _, c := range []struct {
		name string
		run  func(*testing.T, budget.Store, int64)
	}{
		{"FailedReserveNeverAllowed", faultReserve},
		{"SettleRetry", faultSettleRetry},
		{"HoldsExpire", faultHoldsExpire},
		{"DuplicateDelivery", faultDuplicates},
		{"DelayedReserve", faultDelayedReserve},
		{"ErrorsWrapped", faultWrapped},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newStore(t), seed)
		})
	}
}

// The faults a seeded rule draws from: errors and cancellations, before
// and after the call, and a conflict reported after the call committed.
var faultMix = []Fault{
	{When: Before, Err: errModelFault},
	{When: After, Err: errModelFault},
	{When: Before, Cancel: true},
	{When: After, Cancel: true},
	{When: After, Err: budget.ErrConflict},
}

func kindName(err error) string {
	switch {
	case err == nil:
		return "allowed"
	case errors.Is(err, ErrInjected) && errors.Is(err, budget.ErrConflict):
		return "conflict"
	case errors.Is(err, ErrInjected) && errors.Is(err, context.Canceled):
		return "cancelled after"
	case errors.Is(err, ErrInjected):
		return "error"
	case errors.Is(err, context.Canceled):
		return "cancelled before"
	case errors.Is(err, budget.ErrBudgetExceeded):
		return "refused"
	case errors.Is(err, budget.ErrDuplicate):
		return "duplicate hold"
	}
	return err.Error()
}

// faultFixture is a Faulty over a store, a clock and a Manager.
type faultFixture struct {
	f     *Faulty
	clock *Clock
	m     *budget.Manager
	ttl   time.Duration
}

func newFaultFixture(s budget.Store) *faultFixture {
	x := &faultFixture{f: NewFaulty(s, nil), clock: NewClock(start), ttl: 5 * time.Minute}
	x.m = budget.NewManager(x.f, budget.Options{Now: x.clock.Now, HoldTTL: x.ttl})
	return x
}

// expected reports whether err is one a caller may see when the store
// fails: the injected fault, a cancelled context, or a result the failure
// led to.
func expected(err error, also ...error) bool {
	if errors.Is(err, ErrInjected) || errors.Is(err, context.Canceled) {
		return true
	}
	for _, e := range also {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func faultReserve(t *testing.T, s budget.Store, seed int64) {
	x := newFaultFixture(s)
	configure(t, x.m, "u", limit("10"))
	var (
		mu     sync.Mutex
		placed = map[string]bool{}
	)
	x.f.Observe(func(r Result) {
		if r.Call.Method == "Reserve" && r.Called && r.StoreErr == nil && r.Allowed {
			mu.Lock()
			placed[r.Call.HoldID] = true
			mu.Unlock()
		}
	})
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	rule := SeededRule(seed, 0.35, faultMix)
	var open []*budget.Reservation
	outcomes := map[string]int{}
	for i := range 150 {
		x.f.SetRule(rule)
		est := decimal.New(rng.Int64N(4e9), -9)
		r, err := x.m.Reserve(ctx, "u", est)
		outcomes[kindName(err)]++
		switch {
		case err != nil && r != nil:
			t.Fatalf("reserve %d: a reservation and the error %v", i, err)
		case err != nil && !expected(err, budget.ErrBudgetExceeded, budget.ErrDuplicate):
			t.Fatalf("reserve %d: %v", i, err)
		case err == nil && r == nil:
			t.Fatalf("reserve %d: no reservation and no error", i)
		case err == nil:
			mu.Lock()
			ok := placed[r.ID()]
			mu.Unlock()
			if !ok {
				t.Fatalf("reserve %d: allowed, but the store never placed hold %s", i, r.ID())
			}
			open = append(open, r)
		}
		// Close some reservations, through faults too.
		if len(open) > 0 && rng.IntN(2) == 0 {
			j := rng.IntN(len(open))
			r := open[j]
			if rng.IntN(2) == 0 {
				cost := decimal.New(rng.Int64N(r.Amount().Shift(9).IntPart()+1), -9)
				_, err = r.Settle(ctx, budget.Usage{ID: fmt.Sprint("s", i), Cost: cost})
			} else {
				err = r.Release(ctx)
			}
			switch {
			case err == nil, errors.Is(err, budget.ErrReservationClosed):
				open = append(open[:j], open[j+1:]...)
			case !expected(err):
				t.Fatalf("closing %s: %v", r.ID(), err)
			}
		}
		x.f.SetRule(nil)
		st := status(t, x.m, "u")
		if st.Spent.Add(st.Reserved).GreaterThan(st.Limit) {
			t.Fatalf("after reserve %d: spent %s + reserved %s > limit %s", i, st.Spent, st.Reserved, st.Limit)
		}
		if i%10 == 9 {
			x.clock.Advance(x.ttl / 4)
			open = open[:0] // abandoned: they expire on their own
		}
	}
	t.Logf("reserve outcomes: %v", outcomes)
	x.clock.Advance(x.ttl)
	wantMoney(t, "reserved once the TTL passed", status(t, x.m, "u").Reserved, "0")
	configure(t, x.m, "u", limit("1000")) // room for one more, whatever was spent
	r := reserve(t, x.m, "u", "0.5")
	wantMoney(t, "reserved after the TTL and one new reservation", status(t, x.m, "u").Reserved, "0.5")
	if err := r.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

func faultSettleRetry(t *testing.T, s budget.Store, _ int64) {
	x := newFaultFixture(s)
	configure(t, x.m, "u", limit("100"))
	for i, c := range []struct {
		fault     Fault
		committed bool
		firstErr  func(error) bool
	}{
		{Fault{When: After, Err: errModelFault}, true, func(err error) bool { return errors.Is(err, ErrInjected) && errors.Is(err, errModelFault) }},
		{Fault{When: After, Cancel: true}, true, func(err error) bool { return errors.Is(err, ErrInjected) && errors.Is(err, context.Canceled) }},
		{Fault{When: Before, Err: errModelFault}, false, func(err error) bool { return errors.Is(err, ErrInjected) }},
		{Fault{When: Before, Cancel: true}, false, func(err error) bool { return errors.Is(err, context.Canceled) }},
		// The Manager retries a conflict: the retry finds the hold closed.
		{Fault{When: After, Err: budget.ErrConflict}, true, func(err error) bool { return errors.Is(err, budget.ErrReservationClosed) }},
	} {
		before := status(t, x.m, "u")
		r := reserve(t, x.m, "u", "2")
		var first *Result
		x.f.Observe(func(res Result) {
			if res.Call.Method == "Settle" && first == nil {
				first = &res
			}
		})
		rule, fired := Once("Settle", c.fault)
		x.f.SetRule(rule)
		id := fmt.Sprint("retry-", i)
		_, err := r.Settle(ctx, budget.Usage{ID: id, Cost: amt("1.5")})
		x.f.SetRule(nil)
		x.f.Observe(nil)
		if !fired() || first == nil {
			t.Fatalf("%v: the fault did not strike", c.fault)
		}
		if !c.firstErr(err) {
			t.Errorf("%v: settle returned %v", c.fault, err)
		}
		if got := first.Called && first.StoreErr == nil; got != c.committed {
			t.Errorf("%v: the store committed: %v, want %v", c.fault, got, c.committed)
		}
		_, err = r.Settle(ctx, budget.Usage{ID: id, Cost: amt("1.5")})
		if c.committed && !errors.Is(err, budget.ErrReservationClosed) || !c.committed && err != nil {
			t.Errorf("%v: the retry returned %v (committed: %v)", c.fault, err, c.committed)
		}
		if err := r.Release(ctx); err != nil {
			t.Errorf("%v: release after settle: %v", c.fault, err)
		}
		after := status(t, x.m, "u")
		if !after.Spent.Sub(before.Spent).Equal(amt("1.5")) || !after.Reserved.Equal(before.Reserved) {
			t.Errorf("%v: spent %s → %s, reserved %s → %s; want the 1.5 counted once and the hold gone",
				c.fault, before.Spent, after.Spent, before.Reserved, after.Reserved)
		}
		n := 0
		rows, err := historyAll(x.m, "u", time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range rows {
			if row.ID == id {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%v: usage %s is in the history %d times", c.fault, id, n)
		}
	}
}

func faultHoldsExpire(t *testing.T, s budget.Store, seed int64) {
	x := newFaultFixture(s)
	users := []string{"h0", "h1", "h2"}
	for _, u := range users {
		configure(t, x.m, u, budget.SettingsUpdate{Limit: ptr(amt("20")), Period: ptr(budget.Daily)})
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 2))
	x.f.SetRule(SeededRule(seed, 0.3, faultMix))
	var open []*budget.Reservation
	check := func(what string, err error, also ...error) {
		t.Helper()
		if err != nil && !expected(err, also...) {
			t.Fatalf("%s: %v", what, err)
		}
	}
	for i := range 300 {
		u := users[rng.IntN(len(users))]
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("operation %d panicked: %v", i, p)
				}
			}()
			switch rng.IntN(10) {
			case 0, 1, 2:
				r, err := x.m.Reserve(ctx, u, decimal.New(rng.Int64N(5e9), -9))
				check("reserve", err, budget.ErrBudgetExceeded, budget.ErrDuplicate)
				if err == nil {
					open = append(open, r)
				}
			case 3, 4:
				if len(open) > 0 {
					r := open[rng.IntN(len(open))]
					_, err := r.Settle(ctx, budget.Usage{ID: fmt.Sprint("x", i), Cost: decimal.New(rng.Int64N(5e9), -9)})
					check("settle", err, budget.ErrReservationClosed)
				}
			case 5:
				if len(open) > 0 {
					check("release", open[rng.IntN(len(open))].Release(ctx))
				}
			case 6:
				_, err := x.m.Record(ctx, u, budget.Usage{ID: fmt.Sprint("r", rng.IntN(i+1)), Cost: decimal.New(rng.Int64N(2e9), -9)})
				check("record", err, budget.ErrDuplicate)
			case 7:
				lim := decimal.New(5+rng.Int64N(30), 0)
				_, err := x.m.UpdateSettings(ctx, admin, u, budget.SettingsUpdate{Limit: &lim})
				check("update", err)
				if rng.IntN(4) == 0 {
					_, err := x.m.Reset(ctx, admin, u, budget.ResetOptions{Reason: "faults"})
					check("reset", err)
				}
			case 8:
				if len(open) > 0 {
					_, err := open[rng.IntN(len(open))].Extend(ctx)
					check("extend", err, budget.ErrReservationClosed, budget.ErrHoldExpired)
				}
			default:
				_, err := x.m.Status(ctx, u)
				check("status", err)
				x.clock.Advance(time.Duration(rng.Int64N(int64(2 * time.Hour))))
			}
		}()
	}
	x.f.SetRule(nil)
	x.clock.Advance(x.ttl)
	for _, u := range users {
		st := status(t, x.m, u)
		wantMoney(t, u+" reserved once the TTL passed", st.Reserved, "0")
		configure(t, x.m, u, limit("1000000")) // records and late settles may have passed the limit
		r := reserve(t, x.m, u, "1")
		wantMoney(t, u+" reserved with one live hold", status(t, x.m, u).Reserved, "1")
		if err := r.Release(ctx); err != nil {
			t.Fatal(err)
		}
		rows, err := historyAll(x.m, u, st.PeriodStart, st.PeriodEnd)
		if err != nil {
			t.Fatal(err)
		}
		sum, seen := decimal.Zero, map[string]bool{}
		for _, row := range rows {
			if seen[row.ID] {
				t.Errorf("%s: usage %s recorded twice", u, row.ID)
			}
			seen[row.ID] = true
			sum = sum.Add(row.Cost)
		}
		if !sum.Equal(st.Spent) {
			t.Errorf("%s: spent %s, history in the period sums to %s", u, st.Spent, sum)
		}
	}
}

func faultDuplicates(t *testing.T, s budget.Store, _ int64) {
	x := newFaultFixture(s)
	configure(t, x.m, "u", limit("10"))
	var (
		mu      sync.Mutex
		results []Result
	)
	x.f.Observe(func(r Result) {
		if r.Fault != nil {
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
		}
	})
	once := func(method string, op func() error) (Result, error) {
		t.Helper()
		results = nil
		rule, _ := Once(method, Fault{When: Before, Duplicate: true})
		x.f.SetRule(rule)
		err := op()
		x.f.SetRule(nil)
		if len(results) != 1 {
			t.Fatalf("%s: %d duplicated calls", method, len(results))
		}
		return results[0], err
	}
	oneOf := func(what string, res Result, loser error) {
		t.Helper()
		a, b := res.StoreErr, res.DupErr
		if (a == nil) == (b == nil) || !errors.Is(errors.Join(a, b), loser) {
			t.Errorf("%s delivered twice: replies %v and %v; want one success and one %v", what, a, b, loser)
		}
	}
	// Reserve: one hold.
	var r *budget.Reservation
	res, err := once("Reserve", func() (err error) { r, err = x.m.Reserve(ctx, "u", amt("4")); return err })
	if err != nil && !errors.Is(err, budget.ErrDuplicate) {
		t.Fatalf("reserve delivered twice: %v", err)
	}
	wantMoney(t, "reserved after a duplicated reserve", status(t, x.m, "u").Reserved, "4")
	_ = res
	if r == nil {
		// The duplicate won and the Manager saw ErrDuplicate: the hold
		// expires on its own. Take another for the settle below.
		x.clock.Advance(x.ttl)
		r = reserve(t, x.m, "u", "4")
	}
	// Settle: closes once, counts once.
	res, err = once("Settle", func() error { _, err := r.Settle(ctx, budget.Usage{ID: "d", Cost: amt("3")}); return err })
	oneOf("settle", res, budget.ErrReservationClosed)
	if err != nil && !errors.Is(err, budget.ErrReservationClosed) {
		t.Errorf("settle delivered twice: %v", err)
	}
	st := status(t, x.m, "u")
	wantTotals(t, st, "3", "0")
	// Release: closes once.
	r2 := reserve(t, x.m, "u", "2")
	res, err = once("Release", func() error { return r2.Release(ctx) })
	oneOf("release", res, budget.ErrReservationClosed)
	if err != nil {
		t.Errorf("release delivered twice: %v", err)
	}
	wantTotals(t, status(t, x.m, "u"), "3", "0")
	// Extend: both deliveries succeed, and the hold counts once, to the
	// new expiry.
	r3 := reserve(t, x.m, "u", "2")
	x.clock.Advance(time.Minute)
	res, err = once("Extend", func() error { _, err := r3.Extend(ctx); return err })
	if err != nil || res.StoreErr != nil || res.DupErr != nil {
		t.Errorf("extend delivered twice: %v; replies %v and %v, want two successes", err, res.StoreErr, res.DupErr)
	}
	x.clock.Advance(x.ttl - time.Second) // past the first expiry
	wantTotals(t, status(t, x.m, "u"), "3", "2")
	if err := r3.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// Record: records once.
	res, _ = once("Record", func() error { _, err := x.m.Record(ctx, "u", budget.Usage{ID: "rec", Cost: amt("1")}); return err })
	oneOf("record", res, budget.ErrDuplicate)
	wantTotals(t, status(t, x.m, "u"), "4", "0")
	if n := historyLen(t, x.m, "u"); n != 2 {
		t.Errorf("history has %d rows after duplicated settle and record, want 2", n)
	}
}

func faultDelayedReserve(t *testing.T, s budget.Store, _ int64) {
	x := newFaultFixture(s)
	other := budget.NewManager(s, budget.Options{Now: x.clock.Now})
	configure(t, x.m, "u", limit("10"))
	status(t, x.m, "u") // the Manager caches the settings
	reached, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	x.f.SetRule(func(c Call) *Fault {
		if c.Method != "Reserve" {
			return nil
		}
		var f *Fault
		once.Do(func() {
			close(reached)
			f = &Fault{When: Before, Wait: release}
		})
		return f
	})
	done := make(chan error)
	go func() {
		_, err := x.m.Reserve(ctx, "u", amt("6"))
		done <- err
	}()
	<-reached
	// While the Reserve waits with the old settings, another process
	// lowers the limit.
	configure(t, other, "u", limit("5"))
	close(release)
	if err := <-done; !errors.Is(err, budget.ErrBudgetExceeded) {
		t.Errorf("a reserve of 6 delayed past a change of the limit to 5: %v, want ErrBudgetExceeded", err)
	}
	x.f.SetRule(nil)
	wantTotals(t, status(t, x.m, "u"), "0", "0")
}

// faultWrapped injects a fault into each store call of each Manager entry
// point in turn, and checks the error comes back wrapped.
func faultWrapped(t *testing.T, s budget.Store, _ int64) {
	f := NewFaulty(s, nil)
	clock := NewClock(start)
	n := 0
	type entry struct {
		name string
		// setup prepares the user (no faults); op is the call under test.
		setup func(m *budget.Manager, user string) any
		op    func(m *budget.Manager, user string, v any) error
	}
	noSetup := func(*budget.Manager, string) any { return nil }
	reserved := func(m *budget.Manager, user string) any {
		r, err := m.Reserve(ctx, user, amt("1"))
		if err != nil {
			t.Fatalf("setup reserve: %v", err)
		}
		return r
	}
	self := func(user string) budget.Principal { return budget.Principal{UserID: user} }
	enrolled := func(m *budget.Manager, user string) any {
		if _, err := m.Settings(ctx, user); err != nil {
			t.Fatalf("setup settings: %v", err)
		}
		return nil
	}
	firstErr := func(r budget.BulkResult, err error) error {
		if err != nil {
			return err
		}
		for _, u := range r.Results {
			if u.Err != nil {
				return u.Err
			}
		}
		return nil
	}
	entries := []entry{
		{"Reserve", noSetup, func(m *budget.Manager, u string, _ any) error { _, err := m.Reserve(ctx, u, amt("1")); return err }},
		{"Settle", reserved, func(m *budget.Manager, u string, v any) error {
			_, err := v.(*budget.Reservation).Settle(ctx, budget.Usage{Cost: amt("1")})
			return err
		}},
		{"Release", reserved, func(m *budget.Manager, u string, v any) error { return v.(*budget.Reservation).Release(ctx) }},
		{"Extend", reserved, func(m *budget.Manager, u string, v any) error {
			clock.Advance(time.Second) // a later expiry, or Extend has nothing to ask the store
			_, err := v.(*budget.Reservation).Extend(ctx)
			return err
		}},
		{"Record", noSetup, func(m *budget.Manager, u string, _ any) error {
			_, err := m.Record(ctx, u, budget.Usage{Cost: amt("1")})
			return err
		}},
		{"Status", noSetup, func(m *budget.Manager, u string, _ any) error { _, err := m.Status(ctx, u); return err }},
		{"StatusFor", noSetup, func(m *budget.Manager, u string, _ any) error { _, err := m.StatusFor(ctx, self(u), u); return err }},
		{"Settings", noSetup, func(m *budget.Manager, u string, _ any) error { _, err := m.Settings(ctx, u); return err }},
		{"Lookup", func(m *budget.Manager, u string) any { m.Settings(ctx, u); return nil }, func(m *budget.Manager, u string, _ any) error { _, err := m.Lookup(ctx, u); return err }},
		{"UpdateSettings", noSetup, func(m *budget.Manager, u string, _ any) error {
			_, err := m.UpdateSettings(ctx, admin, u, limit("7"))
			return err
		}},
		{"Reset", noSetup, func(m *budget.Manager, u string, _ any) error {
			_, err := m.Reset(ctx, admin, u, budget.ResetOptions{Reason: "r"})
			return err
		}},
		{"Defaults", noSetup, func(m *budget.Manager, u string, _ any) error { _, err := m.Defaults(ctx); return err }},
		{"UpdateDefaults", noSetup, func(m *budget.Manager, u string, _ any) error {
			_, err := m.UpdateDefaults(ctx, admin, limit("31"))
			return err
		}},
		{"History", func(m *budget.Manager, u string) any { m.Record(ctx, u, budget.Usage{Cost: amt("1")}); return nil }, func(m *budget.Manager, u string, _ any) error {
			_, err := m.History(ctx, budget.UsageQuery{UserID: u})
			return err
		}},
		{"Breakdown", noSetup, func(m *budget.Manager, u string, _ any) error {
			_, err := m.Breakdown(ctx, u, time.Time{}, time.Time{})
			return err
		}},
		{"ListUsers", noSetup, func(m *budget.Manager, u string, _ any) error {
			_, err := m.ListUsers(ctx, admin, budget.UserQuery{Search: u})
			return err
		}},
		{"AuditLog", noSetup, func(m *budget.Manager, u string, _ any) error {
			_, err := m.AuditLog(ctx, admin, budget.AuditLogQuery{UserID: u})
			return err
		}},
		// The template entry points name a template after the user, or
		// use "shared", saved once below.
		{"Templates", noSetup, func(m *budget.Manager, u string, _ any) error { _, err := m.Templates(ctx, admin); return err }},
		{"Template", noSetup, func(m *budget.Manager, u string, _ any) error { _, err := m.Template(ctx, admin, "shared"); return err }},
		{"SaveTemplate", noSetup, func(m *budget.Manager, u string, _ any) error {
			_, err := m.SaveTemplate(ctx, admin, u, limit("5"))
			return err
		}},
		{"DeleteTemplate", func(m *budget.Manager, u string) any {
			if _, err := m.SaveTemplate(ctx, admin, u, limit("5")); err != nil {
				t.Fatalf("setup save template: %v", err)
			}
			return nil
		}, func(m *budget.Manager, u string, _ any) error { return m.DeleteTemplate(ctx, admin, u, 0) }},
		// A bulk change reports a store failure for one user in that
		// user's result: it must be wrapped there too.
		{"BulkUpdate", enrolled, func(m *budget.Manager, u string, _ any) error {
			return firstErr(m.BulkUpdate(ctx, admin, budget.Selection{UserIDs: []string{u}}, limit("9")))
		}},
		{"ApplyTemplate", enrolled, func(m *budget.Manager, u string, _ any) error {
			return firstErr(m.ApplyTemplate(ctx, admin, "shared", budget.Selection{UserIDs: []string{u}}))
		}},
		{"Access", noSetup, func(m *budget.Manager, u string, _ any) error { _, err := m.Access(ctx, admin); return err }},
	}
	if _, err := budget.NewManager(f, budget.Options{Now: clock.Now}).SaveTemplate(ctx, admin, "shared", limit("6")); err != nil {
		t.Fatal(err)
	}
	// run runs one entry point for a new user on a new Manager, with rule,
	// and returns its error and the store calls it made.
	run := func(e entry, rule Rule) (err error, calls []string) {
		n++
		user := fmt.Sprintf("w%d.", n) // no user's ID contains another's
		m := budget.NewManager(f, budget.Options{Now: clock.Now})
		v := e.setup(m, user)
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic: %v", p)
			}
		}()
		f.Observe(func(r Result) { calls = append(calls, r.Call.Method) })
		f.SetRule(rule)
		err = e.op(m, user, v)
		f.SetRule(nil)
		f.Observe(nil)
		return err, calls
	}
	checked := 0
	defer func() { t.Logf("%d faults injected into %d entry points", checked, len(entries)) }()
	for _, e := range entries {
		if err, _ := run(e, nil); err != nil {
			t.Fatalf("%s without faults: %v", e.name, err)
		}
		_, calls := run(e, nil)
		for k := range calls {
			for _, ft := range []Fault{{When: Before, Err: errModelFault}, {When: After, Err: errModelFault}, {When: Before, Cancel: true}} {
				var i int64
				rule := func(c Call) *Fault {
					i++
					if i == int64(k+1) {
						f := ft
						return &f
					}
					return nil
				}
				err, got := run(e, rule)
				checked++
				switch {
				case err == nil:
					t.Errorf("%s: fault %v at store call %d (%s) was swallowed (calls %v)", e.name, ft, k+1, calls[k], got)
				case ft.Cancel && !errors.Is(err, context.Canceled):
					t.Errorf("%s: cancelled context at store call %d (%s): %v does not wrap context.Canceled", e.name, k+1, calls[k], err)
				case !ft.Cancel && !(errors.Is(err, ErrInjected) && errors.Is(err, errModelFault)):
					t.Errorf("%s: fault %v at store call %d (%s): %v does not wrap the store's error", e.name, ft, k+1, calls[k], err)
				}
			}
		}
	}
}
