package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/llmbudget/budget"
)

// The Extend cases: a hold extended while its call runs keeps counting past
// its first expiry, and only a hold that still counts can be extended. The
// cases through the Manager show what a gate relies on; those that call the
// store directly pin down what the Store contract words (never shorter, the
// refusals, an error changes nothing, the usual steps on success), which a
// Reservation cannot reach: it never asks for an earlier expiry, and knows
// when it is closed.

// extendTTL is the hold TTL of the Extend cases.
const extendTTL = 10 * time.Minute

// storeHold places hold id of amount for user "u" directly in the store,
// at now, expiring at exp.
func storeHold(t *testing.T, s budget.Store, p budget.Policy, id string, amount budget.Nanos, now, exp time.Time) {
	t.Helper()
	if _, ok, err := s.Reserve(ctx, budget.ReserveRequest{UserID: "u", HoldID: id, Amount: amount, Policy: p, Now: now, ExpiresAt: exp}); err != nil || !ok {
		t.Fatalf("store reserve %s: allowed %v, %v", id, ok, err)
	}
}

// storeExtend asks the store to extend hold id of user "u" to exp, at now.
func storeExtend(s budget.Store, p budget.Policy, id string, now, exp time.Time) (budget.Totals, error) {
	return s.Extend(ctx, budget.ExtendRequest{UserID: "u", HoldID: id, ExpiresAt: exp, Policy: p, Now: now})
}

// storeHeld returns the live holds of "u" at now, read through Totals.
func storeHeld(t *testing.T, s budget.Store, p budget.Policy, now time.Time) budget.Nanos {
	t.Helper()
	tot, err := s.Totals(ctx, budget.TotalsRequest{UserID: "u", Policy: p, Now: now})
	if err != nil {
		t.Fatalf("store totals at %v: %v", now, err)
	}
	return tot.Held
}

// testExtendKeepsCounting: a hold extended every half TTL counts for as
// long as its call runs; other reserves that fit only without it are
// refused after its first expiry and allowed after its last; a late Settle
// still records the spend.
func testExtendKeepsCounting(t *testing.T, s budget.Store) {
	c := NewClock(start)
	m := newManager(s, c, budget.Options{HoldTTL: extendTTL})
	configure(t, m, "u", limit("10"))
	r := reserve(t, m, "u", "6")
	if !r.ExpiresAt().Equal(start.Add(extendTTL)) {
		t.Fatalf("reservation expires at %v, want %v", r.ExpiresAt(), start.Add(extendTTL))
	}
	// Unmoved, the clock gives no later expiry: nothing to do.
	if at, err := r.Extend(ctx); err != nil || !at.Equal(start.Add(extendTTL)) {
		t.Fatalf("extend at once: %v, %v; want the expiry unchanged", at, err)
	}
	c.Advance(extendTTL / 2)
	at, err := r.Extend(ctx)
	if err != nil {
		t.Fatalf("extend before the TTL: %v", err)
	}
	if want := start.Add(extendTTL / 2).Add(extendTTL); !at.Equal(want) || !r.ExpiresAt().Equal(want) {
		t.Fatalf("extend returned %v and the reservation expires at %v, want %v", at, r.ExpiresAt(), want)
	}
	c.Set(start.Add(extendTTL).Add(time.Second)) // past the first expiry
	if _, err := m.Reserve(ctx, "u", amt("5")); !errors.Is(err, budget.ErrBudgetExceeded) {
		t.Fatalf("reserve of 5 a second after the first expiry of an extended hold of 6 (limit 10): %v, want ErrBudgetExceeded", err)
	}
	wantTotals(t, status(t, m, "u"), "0", "6")
	// A long call: extended every half TTL for an hour, it never lapses.
	for i := range 12 {
		if at, err = r.Extend(ctx); err != nil {
			t.Fatalf("extend %d: %v", i, err)
		}
		c.Advance(extendTTL / 2)
		if _, err := m.Reserve(ctx, "u", amt("5")); !errors.Is(err, budget.ErrBudgetExceeded) {
			t.Fatalf("reserve of 5 after extend %d: %v, want ErrBudgetExceeded", i, err)
		}
	}
	c.Set(at.Add(-time.Nanosecond))
	wantTotals(t, status(t, m, "u"), "0", "6")
	c.Set(at) // the last expiry: the hold stops counting
	wantTotals(t, status(t, m, "u"), "0", "0")
	other := reserve(t, m, "u", "5")
	// The call ends after all: a late Settle still records its spend.
	st, err := r.Settle(ctx, budget.Usage{ID: "long-call", Cost: amt("6")})
	if err != nil {
		t.Fatalf("late settle of an extended hold: %v", err)
	}
	wantTotals(t, st, "6", "5")
	if err := other.Release(ctx); err != nil {
		t.Fatal(err)
	}
	wantTotals(t, status(t, m, "u"), "6", "0")
	if n := historyLen(t, m, "u"); n != 1 {
		t.Errorf("history has %d rows, want the late settle's 1", n)
	}
}

// testExtendNeverShortens: an ExpiresAt at or before the hold's expiry
// leaves it, and the call still succeeds.
func testExtendNeverShortens(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	p := policyOf(configure(t, m, "u", limit("10")), start)
	exp := start.Add(time.Hour)
	storeHold(t, s, p, "h", 6e9, start, exp)
	// An earlier hold, so that a store that expires holds lazily looks
	// at the holds again before h's expiry.
	storeHold(t, s, p, "early", 1e9, start, start.Add(2*time.Minute))
	for _, earlier := range []time.Time{start.Add(30 * time.Minute), exp, start.Add(time.Minute + 1)} {
		tot, err := storeExtend(s, p, "h", start.Add(time.Minute), earlier)
		if err != nil {
			t.Fatalf("extend to %v, before the expiry: %v, want success and no change", earlier, err)
		}
		if tot.Held != 7e9 {
			t.Errorf("extend to %v: held %v, want 7", earlier, tot.Held)
		}
	}
	if h := storeHeld(t, s, p, start.Add(40*time.Minute)); h != 6e9 {
		t.Errorf("held %v after the other hold's expiry and the earlier times asked for, want 6: an extend shortened the hold", h)
	}
	if h := storeHeld(t, s, p, exp.Add(-time.Nanosecond)); h != 6e9 {
		t.Errorf("held %v a nanosecond before the expiry, want 6: an extend shortened the hold", h)
	}
	if h := storeHeld(t, s, p, exp); h != 0 {
		t.Errorf("held %v at the expiry, want 0: an extend to an earlier time lengthened it", h)
	}
}

// testExtendClosed: a settled or released hold cannot be extended, through
// the store and through a Reservation that does not know it was closed
// (its Settle committed, but the reply was lost).
func testExtendClosed(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	p := policyOf(configure(t, m, "u", limit("10")), start)
	now, later := start.Add(time.Minute), start.Add(time.Hour)
	storeHold(t, s, p, "settled", 1e9, start, start.Add(extendTTL))
	storeHold(t, s, p, "released", 1e9, start, start.Add(extendTTL))
	if _, err := s.Settle(ctx, budget.SettleRequest{HoldID: "settled", Policy: p, Now: now,
		Usage: budget.UsageRow{ID: "settled", UserID: "u", HoldID: "settled", Cost: 1e9, At: now}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Release(ctx, budget.ReleaseRequest{UserID: "u", HoldID: "released", Policy: p, Now: now}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"settled", "released"} {
		if _, err := storeExtend(s, p, id, now, later); !errors.Is(err, budget.ErrReservationClosed) {
			t.Errorf("store extend of the %s hold: %v, want ErrReservationClosed", id, err)
		}
	}
	if h := storeHeld(t, s, p, now); h != 0 {
		t.Errorf("held %v after extends of closed holds, want 0", h)
	}

	c := NewClock(start)
	f := NewFaulty(s, nil)
	fm := newManager(f, c, budget.Options{HoldTTL: extendTTL})
	for _, close := range []string{"Settle", "Release"} {
		r := reserve(t, fm, "u", "2")
		var err error
		rule, fired := Once(close, Fault{When: After, Err: errModelFault})
		f.SetRule(rule)
		if close == "Settle" {
			_, err = r.Settle(ctx, budget.Usage{ID: "lost-" + r.ID(), Cost: amt("2")})
		} else {
			err = r.Release(ctx)
		}
		f.SetRule(nil)
		if !fired() || !errors.Is(err, ErrInjected) {
			t.Fatalf("%s with its reply lost: %v", close, err)
		}
		c.Advance(time.Minute)
		if _, err := r.Extend(ctx); !errors.Is(err, budget.ErrReservationClosed) {
			t.Errorf("extend after a %s whose reply was lost: %v, want ErrReservationClosed", close, err)
		}
		// The Reservation now knows: Extend and Release answer without the store.
		n := f.Calls()
		if _, err := r.Extend(ctx); !errors.Is(err, budget.ErrReservationClosed) {
			t.Errorf("second extend after a lost %s: %v, want ErrReservationClosed", close, err)
		}
		if err := r.Release(ctx); err != nil {
			t.Errorf("release after a closed extend: %v", err)
		}
		if f.Calls() != n {
			t.Errorf("a closed reservation called the store %d times", f.Calls()-n)
		}
	}
	st := status(t, fm, "u")
	wantTotals(t, st, "3", "0") // the store-level settle's 1 and the lost settle's 2
}

// testExtendExpired: a hold whose expiry has come is never revived, even
// by a request computed earlier (a late one), and the budget it freed
// stays free; a late Settle still records the spend.
func testExtendExpired(t *testing.T, s budget.Store) {
	c := NewClock(start)
	m := newManager(s, c, budget.Options{HoldTTL: extendTTL})
	configure(t, m, "u", limit("10"))
	r := reserve(t, m, "u", "6")
	c.Set(r.ExpiresAt()) // exactly the expiry: the hold no longer counts
	other := reserve(t, m, "u", "6")
	if _, err := r.Extend(ctx); !errors.Is(err, budget.ErrHoldExpired) {
		t.Fatalf("extend of a hold at its expiry: %v, want ErrHoldExpired", err)
	}
	wantTotals(t, status(t, m, "u"), "0", "6")
	c.Advance(time.Minute)
	if _, err := r.Extend(ctx); !errors.Is(err, budget.ErrHoldExpired) {
		t.Fatalf("second extend of an expired hold: %v, want ErrHoldExpired", err)
	}
	wantTotals(t, status(t, m, "u"), "0", "6")
	if _, err := m.Reserve(ctx, "u", amt("5")); !errors.Is(err, budget.ErrBudgetExceeded) {
		t.Fatalf("reserve of 5 beside the live 6: %v, want ErrBudgetExceeded", err)
	}
	st, err := r.Settle(ctx, budget.Usage{Cost: amt("3")})
	if err != nil {
		t.Fatalf("late settle after a refused extend: %v", err)
	}
	wantTotals(t, st, "3", "6")
	if err := other.Release(ctx); err != nil {
		t.Fatal(err)
	}

	// In the store: a hold expired at the exact instant, and one that a
	// call at a later time expired, extended by a request from before its
	// expiry.
	p := policyOf(configure(t, m, "u", limit("100")), start)
	exp := start.Add(extendTTL)
	storeHold(t, s, p, "at", 1e9, start, exp)
	storeHold(t, s, p, "late", 2e9, start, exp)
	if _, err := storeExtend(s, p, "at", exp, exp.Add(extendTTL)); !errors.Is(err, budget.ErrHoldExpired) {
		t.Errorf("store extend at the expiry: %v, want ErrHoldExpired", err)
	}
	if h := storeHeld(t, s, p, exp.Add(time.Second)); h != 0 {
		t.Fatalf("held %v after the expiry, want 0", h)
	}
	if _, err := storeExtend(s, p, "late", start.Add(time.Minute), exp.Add(time.Hour)); !errors.Is(err, budget.ErrHoldExpired) {
		t.Errorf("a late extend (computed before the expiry, after a call past it): %v, want ErrHoldExpired", err)
	}
	if h := storeHeld(t, s, p, exp.Add(2*time.Second)); h != 0 {
		t.Errorf("held %v after a late extend of an expired hold, want 0: it was revived", h)
	}
}

// testExtendUnknown: a hold the user never had, or a user without
// settings, is ErrNotFound.
func testExtendUnknown(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	p := policyOf(configure(t, m, "u", limit("10")), start)
	storeHold(t, s, p, "h", 1e9, start, start.Add(extendTTL))
	if _, err := storeExtend(s, p, "nope", start, start.Add(time.Hour)); !errors.Is(err, budget.ErrNotFound) {
		t.Errorf("store extend of an unknown hold: %v, want ErrNotFound", err)
	}
	if _, err := s.Extend(ctx, budget.ExtendRequest{UserID: "ghost", HoldID: "h", ExpiresAt: start.Add(time.Hour), Policy: p, Now: start}); !errors.Is(err, budget.ErrNotFound) {
		t.Errorf("store extend for a user without settings: %v, want ErrNotFound", err)
	}
	// Hold IDs are per user.
	configure(t, m, "v", limit("10"))
	if _, err := s.Extend(ctx, budget.ExtendRequest{UserID: "v", HoldID: "h", ExpiresAt: start.Add(time.Hour), Policy: p, Now: start}); !errors.Is(err, budget.ErrNotFound) {
		t.Errorf("store extend of another user's hold: %v, want ErrNotFound", err)
	}
}

// accountOf returns the stored counters of "u" (Accounts does not advance
// the window) with holds expired as of now.
func accountOf(t *testing.T, s budget.Store, now time.Time) budget.Totals {
	t.Helper()
	as, err := s.Accounts(ctx, budget.AccountsQuery{Limit: 100, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.Settings.UserID == "u" {
			return a.Totals
		}
	}
	t.Fatal("no account of u")
	return budget.Totals{}
}

// testExtendRefused: an Extend refused for any reason, with a policy of the
// next month, a month after the holds expired, changes nothing: no window
// advance, no rollover written, no hold expired.
func testExtendRefused(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	set := configure(t, m, "u", limit("10"))
	p := policyOf(set, start)
	storeHold(t, s, p, "live", 1e9, start, start.Add(extendTTL))
	storeHold(t, s, p, "expired", 2e9, start, start.Add(time.Minute))
	storeHold(t, s, p, "settled", 4e9, start, start.Add(extendTTL))
	if _, err := s.Settle(ctx, budget.SettleRequest{HoldID: "settled", Policy: p, Now: start,
		Usage: budget.UsageRow{ID: "s", UserID: "u", HoldID: "settled", Cost: 3e9, At: start}}); err != nil {
		t.Fatal(err)
	}
	audit := func() []budget.AuditEntry {
		es, err := s.Audit(ctx, budget.AuditQuery{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	// Counters as of start: both pending holds count, the window is
	// November's.
	before, log := accountOf(t, s, start), audit()
	if before.Held != 3e9 || before.Spent != 3e9 || !before.Window.Equal(p.Window) {
		t.Fatalf("counters before %+v, want spent 3, held 3 in %v", before, p.Window)
	}
	next := start.AddDate(0, 1, 0) // December
	pn := policyOf(set, next)
	stale := pn
	stale.Version++
	for _, c := range []struct {
		id   string
		p    budget.Policy
		want error
	}{
		{"nope", pn, budget.ErrNotFound},
		{"settled", pn, budget.ErrReservationClosed},
		{"expired", pn, budget.ErrHoldExpired},
		{"live", pn, budget.ErrHoldExpired}, // expired a month ago too
		{"live", stale, budget.ErrConflict},
	} {
		if _, err := storeExtend(s, c.p, c.id, next, next.Add(time.Hour)); !errors.Is(err, c.want) {
			t.Errorf("extend of %s in the next month: %v, want %v", c.id, err, c.want)
		}
		after := accountOf(t, s, start)
		if !after.Window.Equal(before.Window) || after.Spent != before.Spent || after.Held != before.Held {
			t.Errorf("a refused extend of %s (%v) changed the counters: %+v, before %+v", c.id, c.want, after, before)
			before = after
		}
		if got := audit(); !slices.EqualFunc(got, log, func(a, b budget.AuditEntry) bool { return a.ID == b.ID && a.Type == b.Type }) {
			t.Errorf("a refused extend of %s (%v) wrote the audit log: %d entries, before %d", c.id, c.want, len(got), len(log))
			log = got
		}
	}
	if n := countAudit(log, budget.AuditAutomaticReset); n != 0 {
		t.Errorf("%d rollovers audited before any call in the next month", n)
	}
}

// testExtendSteps: a successful Extend runs the usual steps, as Release
// does: version check (a conflict changes nothing), window advance with its
// rollover entry, expiry of other holds, and alert marking.
func testExtendSteps(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	set := configure(t, m, "u", limit("10"))
	p := policyOf(set, start)
	next := time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC)
	pn := policyOf(set, next)
	storeHold(t, s, p, "long", 1e9, start, next.Add(time.Minute))
	storeHold(t, s, p, "short", 2e9, start, start.Add(extendTTL))
	// Usage already in December's window: it counts once the window moves.
	if _, err := s.Record(ctx, budget.RecordRequest{Policy: p, Now: start,
		Usage: budget.UsageRow{ID: "dec", UserID: "u", Cost: 9e9, At: next.Add(-30 * time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	tot, err := storeExtend(s, pn, "long", next, next.Add(extendTTL))
	if err != nil {
		t.Fatalf("extend in the next month: %v", err)
	}
	want := budget.Totals{Window: pn.Window, Spent: 9e9, Held: 1e9, Alerts: budget.LevelSet(0).With(budget.Yellow).With(budget.Orange)}
	if !tot.Window.Equal(want.Window) || tot.Spent != want.Spent || tot.Held != want.Held || tot.Alerts != want.Alerts {
		t.Errorf("extend returned %+v, want %+v (December, its 9 spent, the short hold expired, yellow and orange marked)", tot, want)
	}
	es, err := s.Audit(ctx, budget.AuditQuery{UserID: "u", Type: budget.AuditAutomaticReset})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || !es[0].PeriodStart.Equal(p.Window.Start) || !es[0].At.Equal(next) {
		t.Errorf("rollover entries %+v, want one for November written at %v", es, next)
	}
	// Marked once: a second extend fires nothing.
	if tot, err = storeExtend(s, pn, "long", next.Add(time.Minute), next.Add(time.Minute+extendTTL)); err != nil || tot.Alerts != 0 {
		t.Errorf("second extend: alerts %v, %v; want none", tot.Alerts, err)
	}
	if h := storeHeld(t, s, pn, next.Add(time.Minute+extendTTL-1)); h != 1e9 {
		t.Errorf("held %v just before the new expiry, want 1", h)
	}
	if h := storeHeld(t, s, pn, next.Add(time.Minute+extendTTL)); h != 0 {
		t.Errorf("held %v at the new expiry, want 0", h)
	}
}

// testExtendSettleConcurrent races Extend against Settle, and against
// Release, on the same holds: each close succeeds once, each Extend either
// ran first (and succeeded) or found the hold closed, and the held total
// returns to zero with every settled cost counted once.
func testExtendSettleConcurrent(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	p := policyOf(configure(t, m, "u", limit("1000")), start)
	const n = 40
	now := start.Add(time.Minute)
	for i := range n {
		storeHold(t, s, p, fmt.Sprint("h", i), 1e9, start, start.Add(extendTTL))
	}
	if h := storeHeld(t, s, p, now); h != n*1e9 {
		t.Fatalf("held %v, want %d", h, n)
	}
	errs := parallel(3*n, func(i int) error {
		id := fmt.Sprint("h", i/3)
		switch i % 3 {
		case 0, 1:
			_, err := storeExtend(s, p, id, now, start.Add(time.Duration(2+i%3)*extendTTL))
			if errors.Is(err, budget.ErrReservationClosed) {
				return nil // the close came first
			}
			return err
		}
		if (i/3)%2 == 0 {
			_, err := s.Settle(ctx, budget.SettleRequest{HoldID: id, Policy: p, Now: now,
				Usage: budget.UsageRow{ID: id, UserID: "u", HoldID: id, Cost: 5e8, At: now}})
			return err
		}
		_, err := s.Release(ctx, budget.ReleaseRequest{UserID: "u", HoldID: id, Policy: p, Now: now})
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d on hold h%d: %v", i, i/3, err)
		}
	}
	for _, at := range []time.Time{now, start.Add(extendTTL), start.Add(5 * extendTTL)} {
		tot, err := s.Totals(ctx, budget.TotalsRequest{UserID: "u", Policy: p, Now: at})
		if err != nil {
			t.Fatal(err)
		}
		if tot.Held != 0 || tot.Spent != n/2*5e8 {
			t.Errorf("at %v: spent %v held %v, want %v and 0", at, tot.Spent, tot.Held, budget.Nanos(n/2*5e8))
		}
	}
	for i := range n {
		if _, err := storeExtend(s, p, fmt.Sprint("h", i), now, start.Add(time.Hour)); !errors.Is(err, budget.ErrReservationClosed) {
			t.Errorf("extend of h%d after the race: %v, want ErrReservationClosed", i, err)
		}
	}
}
