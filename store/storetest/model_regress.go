package storetest

// Regression cases: the failing sequences RunModel found, shrunk and kept
// verbatim (so that they replay whatever the generator becomes), and the
// scenarios of bugs the sequential model cannot express.

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/shopspring/decimal"
)

// modelRegressions replay in every RunModel, on a fresh store each.
var modelRegressions = []struct {
	name string
	seed int64 // of the setting: start time, hold TTL, plans
	why  string
	ops  []mop
}{
	{
		name: "FailedCallChangesNothing",
		seed: 28,
		why: "store/memory wrote the rollover audit entry (and moved the window) inside a Record that then failed " +
			"with ErrDuplicate; the contract says errors change nothing (found with seed 28, 25 operations)",
		ops: []mop{
			{idx: 2, kind: mopReserve, user: "u1", amount: decimal.RequireFromString("10.63"), mgr: 1},
			{idx: 5, kind: mopSettle, res: 2, user: "u1", amount: decimal.RequireFromString("10.63"), quiet: true},
			{idx: 14, kind: mopClock, at: time.Date(2026, 11, 29, 7, 43, 54, 980052382, time.UTC), why: "past the week's end"},
			{idx: 15, kind: mopRecord, user: "u1", amount: decimal.RequireFromString("12.5"), id: holdOf(2), mgr: 1, quiet: true},
			{idx: 16, kind: mopClock, at: time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC), why: "an hour later"},
			{idx: 17, kind: mopStatus, user: "u1"},
		},
	},
	{
		name: "FailedSettleChangesNothing",
		seed: 28,
		why:  "the same for a Settle of a closed hold whose first reply was lost",
		ops: []mop{
			{idx: 1, kind: mopReserve, user: "u1", amount: decimal.RequireFromString("2")},
			{idx: 2, kind: mopSettle, res: 1, user: "u1", amount: decimal.RequireFromString("1"), fault: mfErrAfter, quiet: true},
			{idx: 3, kind: mopClock, at: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), why: "into the next week"},
			{idx: 4, kind: mopSettle, res: 1, user: "u1", amount: decimal.RequireFromString("1"), quiet: true},
			{idx: 5, kind: mopClock, at: time.Date(2026, 11, 2, 1, 0, 0, 0, time.UTC), why: "an hour later"},
			{idx: 6, kind: mopRelease, res: 1, user: "u1", quiet: true},
			{idx: 7, kind: mopStatus, user: "u1"},
		},
	},
	{
		name: "RecordUnderHoldIDKeepsHold",
		seed: 1796241852394333163,
		why: "store/memory's Record, for a user whose calls spend more budgets than their own, took the map entry " +
			"of the usage ID from the last budget's key and stored it under the user's: a usage ID that is also " +
			"the ID of the user's pending hold lost the hold, which no Settle, Release or Extend then found " +
			"(ErrNotFound) and which counted until it expired (found with seed 1796241852394333163, 971 operations)",
		ops: []mop{
			{idx: 498, kind: mopBudget, scope: budget.Org("o1"), upd: refUpdate{limit: ptr(decimal.RequireFromString("41.14"))}},
			{idx: 594, kind: mopMembership, user: "u2", org: "o1", quiet: true},
			{idx: 775, kind: mopReserve, user: "u2", amount: decimal.RequireFromString("0.000000001"), model: "gpt-4o", quiet: true},
			{idx: 901, kind: mopRecord, user: "u2", model: "gpt-4o", id: holdOf(775), quiet: true},
			{idx: 970, kind: mopRelease, res: 775, user: "u2"},
		},
	},
	{
		name: "CapWindowMovesBack",
		seed: 1796241792049148678,
		why: "a holder's settings change moved its period to one that starts earlier (here a zone east of UTC): " +
			"its caps' counters kept the old window, since the Manager does not move them and a store moves a " +
			"counter forward only; once the old window ends the caps count nothing until the new one does",
		ops: []mop{
			{idx: 48, kind: mopUpdate, user: "a0", upd: refUpdate{caps: &[]budget.ModelCap{{Pattern: "claude-*", Limit: decimal.RequireFromString("7.5")}}}},
			{idx: 102, kind: mopUpdate, user: "a0", upd: refUpdate{tz: ptr("Australia/Lord_Howe")}},
		},
	},
	{
		name: "StaleCapsRefuse",
		seed: 1796241786924693705,
		why: "an org dropped its caps through one Manager; the other, whose cached settings still have them, " +
			"refuses a reserve that names no model as invalid without asking the store (which would have said " +
			"the settings changed)",
		ops: []mop{
			{idx: 412, kind: mopBudget, scope: budget.Org("o0"), upd: refUpdate{caps: &[]budget.ModelCap{{Pattern: "claude-opus-*", Limit: decimal.RequireFromString("3.5")}}}, quiet: true},
			{idx: 584, kind: mopMembership, user: "u1", org: "o0", mgr: 1},
			{idx: 689, kind: mopRecord, user: "u1", model: "gpt-4o-mini", mgr: 1},
			{idx: 720, kind: mopBudget, scope: budget.Org("o0"), upd: refUpdate{caps: &[]budget.ModelCap{}}},
			{idx: 724, kind: mopReserve, user: "u1", amount: decimal.RequireFromString("1"), mgr: 1, quiet: true},
		},
	},
	{
		name: "StarCapTakesNoModel",
		seed: 1796241788101133104,
		why: `a record naming no model under a cap on "*" was recorded (and spent the cap); WithModel says a call ` +
			`naming no model is refused when any budget that applies has model caps`,
		ops: []mop{
			{idx: 20, kind: mopUpdate, user: "a0", upd: refUpdate{caps: &[]budget.ModelCap{{Pattern: "*", Limit: decimal.RequireFromString("3")}}}},
			{idx: 38, kind: mopRecord, user: "a0", amount: decimal.RequireFromString("1"), id: idRef{lit: "r-38"}, mgr: 1, quiet: true},
		},
	},
}

func runRegressions(t *testing.T, newStore func(testing.TB) budget.Store) {
	t.Run("LateRequest", func(t *testing.T) { runClockSkew(t, newStore(t)) })
	for _, c := range modelRegressions {
		t.Run(c.name, func(t *testing.T) {
			cfg := newModelConfig(c.seed)
			if i, err := replaySequence(t, newStore, cfg, c.ops); err != nil {
				t.Errorf("%s\nat operation %d: %v", c.why, i, err)
			}
		})
	}
}

// runClockSkew checks that a request computed at an earlier instant than
// one the store already saw — from a process whose clock lags, or from a
// call that read the clock before a period ended and reached the store
// after another call past the end — neither takes the user past the limit,
// nor audits the rollover twice, nor reports an alert twice. Two Managers
// share the store; the second's clock is two seconds behind the first's.
// Found by RunModel's concurrent run with Skew (seed 1795798957634719905);
// fixed in 83055ba by moving windows forward only.
func runClockSkew(t *testing.T, s budget.Store) {
	day2 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	ahead := NewClock(day2.Add(-time.Minute))
	behind := func() time.Time { return ahead.Now().Add(-2 * time.Second) }
	var alerts []budget.Alert
	onAlert := func(a budget.Alert) { alerts = append(alerts, a) }
	a := budget.NewManager(s, budget.Options{Now: ahead.Now, OnAlert: onAlert})
	b := budget.NewManager(s, budget.Options{Now: behind, OnAlert: onAlert})
	configure(t, a, "u", budget.SettingsUpdate{Limit: ptr(amt("10")), Period: ptr(budget.Daily)})
	h := reserve(t, a, "u", "9")
	// One second past midnight on the first clock, one second before it
	// on the second.
	ahead.Set(day2.Add(time.Second))
	if _, err := h.Settle(ctx, budget.Usage{Cost: amt("9")}); err != nil {
		t.Fatal(err)
	}
	// The lagging process asks for the whole limit: the day it thinks it
	// is in had no spend, but the hold would count in the new day, where 9
	// is spent already.
	late, err := b.Reserve(ctx, "u", amt("10"))
	switch {
	case errors.Is(err, budget.ErrBudgetExceeded):
	case err != nil:
		t.Fatal(err)
	default:
		defer late.Release(ctx)
	}
	st := status(t, a, "u")
	if st.Enforced && st.Spent.Add(st.Reserved).GreaterThan(st.Limit) {
		t.Errorf("spent %s + reserved %s > limit %s with enforcement on: a request from 2 s earlier was decided against the previous day's spend",
			st.Spent, st.Reserved, st.Limit)
	}
	if n := countAudit(auditOf(t, a, "u"), budget.AuditAutomaticReset); n != 1 {
		t.Errorf("the end of one day audited %d times, want once: the late request moved the store's window back and the next call rolled it over again", n)
	}
	seen := map[string]int{}
	for _, al := range alerts {
		seen[fmt.Sprint(al.Level, " ", al.Status.PeriodStart.UTC())]++
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("alert %s reported %d times in one period", k, n)
		}
	}
}
