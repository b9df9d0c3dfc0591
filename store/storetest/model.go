package storetest

// RunModel: random operations checked against the reference model in
// model_ref.go (sequentially, step by step) and against invariants (from
// many goroutines, round by round, in model_conc.go).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/shopspring/decimal"
)

// The flags of RunModel. They are registered by this package, which only
// test binaries import, so they exist in every store's tests:
//
//	go test ./store/memory -run Model -model.seed=N    replays seed N
//	go test ./store/memory -run Model -model.ops=1000000  a long soak
var (
	modelSeedFlag = flag.Int64("model.seed", 0, "seed of storetest.RunModel's random operations (0: a new, time-based one each run)")
	modelOpsFlag  = flag.Int("model.ops", 0, "operations of storetest.RunModel's sequential run (0: the default of each test)")
)

// ModelOptions configure RunModel. The zero value is the default run.
type ModelOptions struct {
	// Seed fixes the seed, as for a regression case; -model.seed and
	// -model.ops then do not apply. Zero means the -model.seed flag, or
	// else a new seed from the clock, printed with t.Logf.
	Seed int64
	// Ops is the number of operations of the sequential run: 5,000 when
	// zero, 500 with -short. -model.ops overrides it unless Seed is set.
	Ops int
	// FaultRate is the share of operations whose store call gets an
	// injected fault in the sequential run (an error or a cancelled
	// context, before or after the call, or a conflict): 0.05 when zero,
	// none when negative.
	FaultRate float64
	// Rounds is the number of rounds of the concurrent run: 40 when zero
	// (10 with -short), none when negative. Goroutines (default 8) each
	// run RoundOps (default 8) operations per round.
	Rounds, Goroutines, RoundOps int
	// Skew, in the concurrent run, makes the clock of one of the two
	// Managers lag the other's by this much, as another host's may, and
	// half the time moves the clock between the ends of periods as each
	// sees them: 2 seconds when zero, none when negative.
	Skew time.Duration
	// Sequential and Concurrent, when either is set, run only those.
	Sequential, Concurrent bool
	// ShrinkTime bounds the search for a shorter failing sequence;
	// 30 seconds when zero.
	ShrinkTime time.Duration
}

// RunModel runs random operations, drawn from a seed, through a
// budget.Manager over stores made by newStore (as for Run: a new, empty
// store each call, closed when its tb ends).
//
// The sequential run applies each operation to the store and to a
// reference model, a small single-threaded implementation of the same
// rules written apart from every store, and after every step compares the
// outcome (allowed, refused or the kind of error, and for a refusal the
// budget that refused: LimitError.Scope and Pattern), each touched user's
// status (with Status.Budgets: every budget that applies, its spend,
// holds and level, the binding one marked) and settings, the status,
// settings and newest audit entries of each team and org the operation
// touched, the alerts reported (with their scope and cap), the newest
// usage and audit entries, and periodically the whole usage history and
// audit log, every team's and org's audit log, and the usage rows the
// store keeps under every team's, org's and cap's key.
// Operations are reserves from nothing to beyond the remaining budget (of
// the budget that binds), naming a model or not, settles below, at and
// above the estimate, releases, settles of closed reservations, extends of
// live, expired and closed holds, records with new and repeated IDs,
// manual resets, settings changes (limit, period, timezone, enforcement,
// thresholds, a user's model caps), new defaults, teams and orgs made and
// changed with UpdateBudget (their own periods and zones, model caps with
// overlapping patterns), users moved between teams and orgs and teams
// between orgs while holds are in flight (a hold closes on exactly the
// budgets it was placed on), BudgetStatus, Members, and clock moves in
// small steps, to and across period ends (users', teams', orgs'), DST
// changes and hold expiries; some store calls fail by injection (see
// Faulty), before or after taking effect. On a mismatch it prints the
// seed, the step, and the shortest failing sequence it finds by dropping
// operations and replaying on fresh stores.
//
// The concurrent run has goroutines of two Managers race through rounds of
// operations with the clock still (reserves naming a model, settles within
// their estimates, records only for a user whose budgets are not enforced,
// limits and cap limits only raised, memberships and a team's org changed,
// extends of open holds), then checks invariants on every budget, a
// user's, a team's, an org's and each model cap's: enforced ones within
// their limits, every counter equal to the sum of the rows kept under its
// key in the period, no usage counted twice, every acknowledged usage
// under every budget it was recorded for, no hold closed twice (some
// settles, releases and extends are delivered twice), live holds as the
// clients left them (extended, or expired, never refused as expired before
// their expiry) on every budget they were placed on, each alert once per
// budget, level and period, each rollover audited once.
//
// Unless Seed is set, RunModel also replays, in "Regressions", the shrunk
// failing sequences of the bugs it has found so far; those of known bugs
// not fixed yet only with -model.knownbugs, which also lets the sequential
// run draw the operations that meet them (see model_scopes_gen.go).
//
// Replay a failure with its seed, in the store's package, and soak with
// many operations:
//
//	go test ./store/memory -run Model -model.seed=N
//	go test ./store/memory -run Model -model.ops=1000000 -timeout 60m
func RunModel(t *testing.T, newStore func(testing.TB) budget.Store, opts ModelOptions) {
	t.Helper()
	seed, ops := opts.Seed, opts.Ops
	if ops <= 0 {
		ops = 5000
		if testing.Short() {
			ops = 500
		}
	}
	if seed == 0 {
		seed = *modelSeedFlag
		if seed == 0 {
			seed = time.Now().UnixNano()
		}
		if *modelOpsFlag > 0 {
			ops = *modelOpsFlag
		}
	}
	both := !opts.Sequential && !opts.Concurrent
	if opts.Sequential || both {
		t.Run("Sequential", func(t *testing.T) {
			t.Parallel()
			runSequential(t, newStore, seed, ops, opts)
		})
	}
	if (opts.Sequential || both) && opts.Seed == 0 {
		t.Run("Regressions", func(t *testing.T) {
			t.Parallel()
			runRegressions(t, newStore)
		})
	}
	if (opts.Concurrent || both) && opts.Rounds >= 0 {
		t.Run("Concurrent", func(t *testing.T) {
			t.Parallel()
			runConcurrent(t, newStore, seed, opts)
		})
	}
}

// ---- configuration drawn from the seed ----

// modelZones are the zones users, teams and orgs move between: no DST,
// DST at 2:00 and 1:00, a 30-minute DST, and DST changes at midnight
// (Santiago skips it in spring and repeats 23:00 in autumn; Havana skips
// midnight and repeats it), and a day ahead of most (Tokyo).
var modelZones = []string{"UTC", "Asia/Kolkata", "America/New_York", "Europe/London", "Australia/Lord_Howe", "America/Santiago", "America/Havana", "Asia/Tokyo"}

// midnightSafe are the zones where local midnight is never inside a DST
// change, so that the Manager's implicit custom anchor is time.Date's.
var midnightSafe = map[string]bool{"": true, "UTC": true, "Asia/Kolkata": true, "America/New_York": true, "Europe/London": true, "Australia/Lord_Howe": true, "Asia/Tokyo": true}

var modelThresholds = []budget.Thresholds{
	budget.DefaultThresholds(),
	{Yellow: decimal.NewFromInt(50), Orange: decimal.NewFromInt(80), Red: decimal.NewFromInt(100)},
	{Yellow: decimal.NewFromInt(10), Orange: decimal.NewFromInt(20), Red: decimal.NewFromInt(30)},
	{Yellow: decimal.NewFromInt(100), Orange: decimal.NewFromInt(150), Red: decimal.NewFromInt(200)},
	{Yellow: decimal.RequireFromString("33.33"), Orange: decimal.RequireFromString("66.67"), Red: decimal.RequireFromString("99.99")},
}

// modelConfig is what a run starts from; it depends only on the seed, so
// that a shortened sequence replays in the same setting.
type modelConfig struct {
	seed     int64
	start    time.Time
	ttl      time.Duration
	userPlan budget.Plan
	users    []string // "a0" is an admin
}

func newModelConfig(seed int64) *modelConfig {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6d6f64656c))
	starts := []time.Time{
		time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC),   // the day before the US springs forward
		time.Date(2026, 4, 4, 12, 0, 0, 0, time.UTC),   // Santiago falls back at midnight on the 5th
		time.Date(2026, 10, 24, 12, 0, 0, 0, time.UTC), // Europe falls back on the 25th
		time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC), // a Thursday near the end of a month
		time.Date(2026, 9, 5, 18, 0, 0, 0, time.UTC),   // Santiago springs forward at midnight
		time.Date(2026, 12, 31, 20, 0, 0, 0, time.UTC), // the end of a year
	}
	c := &modelConfig{
		seed:  seed,
		start: starts[rng.IntN(len(starts))].Add(time.Duration(rng.Int64N(int64(36 * time.Hour)))),
		ttl:   []time.Duration{time.Minute, 10 * time.Minute, 2 * time.Hour}[rng.IntN(3)],
		users: []string{"u0", "u1", "u2", "a0"},
	}
	plans := []budget.Plan{
		budget.DefaultUserPlan(),
		{Limit: decimal.NewFromInt(5), Period: budget.Daily, Timezone: "America/New_York", Enforce: true, Thresholds: budget.DefaultThresholds()},
		{Limit: decimal.RequireFromString("12.5"), Period: budget.Weekly, Timezone: "Europe/London", Thresholds: budget.DefaultThresholds()},
		{Limit: decimal.NewFromInt(20), Period: budget.Custom, CustomDays: 3, Timezone: "Asia/Kolkata", Enforce: true, Thresholds: budget.DefaultThresholds()},
		{Limit: decimal.NewFromInt(8), Period: budget.Daily, Timezone: "America/Santiago", Enforce: true, Thresholds: budget.DefaultThresholds()},
	}
	c.userPlan = plans[rng.IntN(len(plans))]
	c.userPlan.Permissions = budget.Permissions{Visible: true}
	return c
}

func isModelAdmin(id string) bool { return strings.HasPrefix(id, "a") }

var modelRoot = budget.Principal{UserID: "root", Admin: true}

// ---- operations ----

type mopKind uint8

const (
	mopReserve mopKind = iota
	mopSettle
	mopRelease
	mopRecord
	mopStatus
	mopReset
	mopUpdate
	mopClock
	mopSettings
	mopList
	mopBreakdown
	mopDefaults
	mopExtend
	// Budgets at every scope (model_scopes.go).
	mopBudget       // UpdateBudget of a team or org (scope, upd)
	mopMembership   // SetMembership (user, teams, org)
	mopTeamOrg      // SetTeamOrg (scope, org)
	mopBudgetStatus // BudgetStatus (scope)
	mopMembers      // Members (scope)
)

var mopNames = [...]string{"Reserve", "Settle", "Release", "Record", "Status", "Reset", "UpdateSettings", "Clock", "Settings", "ListUsers", "Breakdown", "UpdateDefaults", "Extend",
	"UpdateBudget", "SetMembership", "SetTeamOrg", "BudgetStatus", "Members"}

// storeMethod is the store call an operation's fault strikes.
var storeMethod = [...]string{"Reserve", "Settle", "Release", "Record", "Totals", "Reset", "UpdateSettings", "", "", "", "", "", "Extend",
	"UpdateSettings", "UpdateSettings", "UpdateSettings", "Totals", ""}

type mfault uint8

const (
	mfNone mfault = iota
	mfErrBefore
	mfErrAfter
	mfCancelBefore
	mfCancelAfter
	mfConflictBefore
)

var mfNames = [...]string{"", "error before", "error after", "cancel before", "cancel after", "conflict before"}

func (f mfault) fault() Fault {
	switch f {
	case mfErrBefore:
		return Fault{When: Before, Err: errModelFault}
	case mfErrAfter:
		return Fault{When: After, Err: errModelFault}
	case mfCancelBefore:
		return Fault{When: Before, Cancel: true}
	case mfCancelAfter:
		return Fault{When: After, Cancel: true}
	case mfConflictBefore:
		return Fault{When: Before, Err: budget.ErrConflict}
	}
	return Fault{}
}

func (f mfault) before() bool { return f == mfErrBefore || f == mfCancelBefore }
func (f mfault) after() bool  { return f == mfErrAfter || f == mfCancelAfter }

var errModelFault = errors.New("the store failed")

// idRef names a usage ID: a literal, or the hold ID of the reservation made
// by operation hold-1 (which changes from run to run); the zero idRef is
// no ID (the default).
type idRef struct {
	lit  string
	hold int
}

// holdOf names the hold ID of the reservation operation i made.
func holdOf(i int) idRef { return idRef{hold: i + 1} }

// mop is one operation. Operations refer to reservations by the index of
// the operation that made them, so that a sequence with operations dropped
// still replays.
type mop struct {
	idx      int
	kind     mopKind
	user     string
	res      int             // Settle, Release, Extend: the Reserve operation
	amount   decimal.Decimal // estimate or cost
	id       idRef           // usage ID; empty: the default
	upd      refUpdate
	invalid  bool // an update that must be refused
	at       time.Time
	fault    mfault
	provider string
	model    string // the usage's model; for Reserve, WithModel's ("" for none)
	in, out  int64
	why      string
	// mgr is the Manager (of two) the operation goes through.
	mgr int
	// page and level are ListUsers' page size (0: the most) and level
	// filter (-1: none); from and to are Breakdown's range (zero: the
	// current period).
	page, level int
	from, to    time.Time
	// quiet skips the look at the user after the operation (a Status and
	// more, which have effects of their own: rollovers, expiries), so
	// that later operations meet those effects themselves.
	quiet bool
	// scope is the team or org of UpdateBudget, SetTeamOrg, BudgetStatus
	// and Members; teams and org are SetMembership's (org, SetTeamOrg's).
	scope budget.Scope
	teams []string
	org   string
}

func (o mop) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s", o.idx, mopNames[o.kind])
	switch o.kind {
	case mopReserve:
		fmt.Fprintf(&b, " %s estimate=%s", o.user, o.amount)
		if o.model != "" {
			fmt.Fprintf(&b, " model=%s", o.model)
		}
	case mopBudget, mopTeamOrg, mopBudgetStatus, mopMembers, mopMembership:
		b.WriteString(o.scopeString())
	case mopSettle:
		fmt.Fprintf(&b, " #%d cost=%s", o.res, o.amount)
		if o.model != "" {
			fmt.Fprintf(&b, " model=%s", o.model)
		}
	case mopRelease, mopExtend:
		fmt.Fprintf(&b, " #%d", o.res)
	case mopRecord:
		fmt.Fprintf(&b, " %s cost=%s", o.user, o.amount)
		if o.model != "" {
			fmt.Fprintf(&b, " model=%s", o.model)
		}
	case mopList:
		fmt.Fprintf(&b, " page=%d level=%d", o.page, o.level)
	case mopBreakdown:
		fmt.Fprintf(&b, " %s", o.user)
		if !o.from.IsZero() {
			fmt.Fprintf(&b, " [%s, %s)", o.from.UTC().Format(time.RFC3339Nano), o.to.UTC().Format(time.RFC3339Nano))
		}
	case mopUpdate, mopDefaults:
		fmt.Fprintf(&b, " %s %s", o.user, o.upd)
		if o.invalid {
			b.WriteString(" (invalid)")
		}
	case mopClock:
		fmt.Fprintf(&b, " to %s (%s)", o.at.UTC().Format(time.RFC3339Nano), o.why)
	default:
		fmt.Fprintf(&b, " %s", o.user)
	}
	if o.kind == mopSettle || o.kind == mopRecord {
		switch {
		case o.id.hold > 0:
			fmt.Fprintf(&b, " id=<hold of #%d>", o.id.hold-1)
		case o.id.lit != "":
			fmt.Fprintf(&b, " id=%s", o.id.lit)
		}
	}
	if o.fault != mfNone {
		fmt.Fprintf(&b, " [%s]", mfNames[o.fault])
	}
	if o.mgr != 0 {
		fmt.Fprintf(&b, " (manager %d)", o.mgr)
	}
	if o.quiet {
		b.WriteString(" (quiet)")
	}
	return b.String()
}

func (r refUpdate) String() string {
	var parts []string
	if r.limit != nil {
		parts = append(parts, "limit="+r.limit.String())
	}
	if r.period != nil {
		parts = append(parts, "period="+string(*r.period))
	}
	if r.days != nil {
		parts = append(parts, fmt.Sprint("days=", *r.days))
	}
	if r.anchor != nil {
		parts = append(parts, "anchor="+r.anchor.Format(time.RFC3339))
	}
	if r.tz != nil {
		parts = append(parts, "tz="+*r.tz)
	}
	if r.enforce != nil {
		parts = append(parts, fmt.Sprint("enforce=", *r.enforce))
	}
	if r.thresholds != nil {
		parts = append(parts, fmt.Sprintf("thresholds=%s/%s/%s", r.thresholds.Yellow, r.thresholds.Orange, r.thresholds.Red))
	}
	if r.caps != nil {
		parts = append(parts, "caps="+capsString(*r.caps))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// ---- the sequential run ----

func runSequential(t *testing.T, newStore func(testing.TB) budget.Store, seed int64, n int, opts ModelOptions) {
	rate := opts.FaultRate
	if rate == 0 {
		rate = 0.05
	}
	t.Logf("seed %d, %d operations; replay with -run '%s' -model.seed=%d", seed, n, runPattern(t.Name()), seed)
	began := time.Now()
	cfg := newModelConfig(seed)
	ops, step, err, sum := modelSequential(t, newStore, cfg, n, rate)
	if err != nil && ops == nil {
		// A long run keeps no operations: draw them again, up to the
		// failure (the same seed draws the same operations).
		t.Logf("failed at step %d: %v; running the %d operations again to keep them", step, err, step+1)
		var err2 error
		if ops, _, err2, _ = modelSequential(t, newStore, cfg, min(step+1, n), rate); err2 == nil {
			t.Fatal(modelReport(cfg, step, err, nil, nil, 0, runPattern(t.Name())))
		}
		if ops == nil {
			t.Fatalf("model mismatch at step %d of seed %d: %v\n(too many operations to shrink)\nreplay: go test -run '%s' -model.seed=%d -model.ops=%d",
				step, seed, err, runPattern(t.Name()), seed, step+1)
		}
	}
	if err != nil {
		limit := opts.ShrinkTime
		if limit == 0 {
			limit = 30 * time.Second
		}
		best, bestErr, replays := shrinkSequence(t, newStore, cfg, ops[:min(step+1, len(ops))], time.Now().Add(limit))
		t.Fatal(modelReport(cfg, step, err, best, bestErr, replays, runPattern(t.Name())))
	}
	t.Logf("%d operations agreed with the model in %v (%s)", n, time.Since(began).Round(time.Millisecond), sum)
}

// modelSequential draws n operations from cfg's seed and runs them on a
// store from newStore and on the model. It returns the operations, and on
// a mismatch the failing step (n for the final check) and the error.
func modelSequential(tb testing.TB, newStore func(testing.TB) budget.Store, cfg *modelConfig, n int, rate float64) (ops []mop, step int, err error, summary string) {
	r := newSeqRun(tb, newStore, cfg)
	defer r.close()
	g := newModelGen(cfg.seed, rate)
	// Keep the operations for the shrinker, unless there are so many that
	// they would take gigabytes: then the caller draws them again.
	keep := n <= 250_000
	if keep {
		ops = make([]mop, 0, min(n, 1<<16))
	}
	for i := range n {
		op := g.next(r, i)
		if keep {
			ops = append(ops, op)
		}
		if err := r.step(op); err != nil {
			return ops, i, err, ""
		}
	}
	if err := r.fullCheck(); err != nil {
		return ops, n, fmt.Errorf("final check: %w", err), ""
	}
	return ops, -1, nil, fmt.Sprintf("%d users, %d usage rows, %d audit entries, %d full checks, the clock from %s to %s",
		len(r.ref.users), r.totalRows(), len(r.ref.log), r.fullChecks, cfg.start.Format(time.DateOnly), r.clock.Now().Format(time.DateOnly))
}

// runPattern turns a test name into a -run pattern matching only it.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + p + "$"
	}
	return strings.Join(parts, "/")
}

// shrinkSequence looks for a shorter sequence that still fails, by
// dropping chunks of operations, halving the chunk size down to one (a
// simple delta debugging), and replaying each candidate on a fresh store,
// until the deadline.
func shrinkSequence(tb testing.TB, newStore func(testing.TB) budget.Store, cfg *modelConfig, ops []mop, deadline time.Time) (best []mop, bestErr error, replays int) {
	i, err := replaySequence(tb, newStore, cfg, ops)
	replays++
	if err == nil {
		return ops, nil, replays // it does not replay: the caller reports the original
	}
	best, bestErr = ops[:min(i+1, len(ops))], err
	kind := failureKind(ops, i, err)
	for chunk := len(best) / 2; chunk >= 1 && time.Now().Before(deadline); chunk /= 2 {
		for lo := 0; lo < len(best) && time.Now().Before(deadline); {
			hi := min(lo+chunk, len(best))
			cand := append(append([]mop(nil), best[:lo]...), best[hi:]...)
			if len(cand) == 0 {
				lo = hi
				continue
			}
			i, err := replaySequence(tb, newStore, cfg, cand)
			replays++
			if err != nil && failureKind(cand, i, err) == kind {
				best, bestErr = cand[:min(i+1, len(cand))], err
				continue // try the same position again
			}
			lo = hi
		}
	}
	return best, bestErr, replays
}

// failureKind says what check of which operation failed, for the
// shrinker to keep to the failure it shrinks and not wander to another
// one a shorter sequence meets: the operation's kind and the message up to
// its first figure.
func failureKind(ops []mop, i int, err error) string {
	msg, name := err.Error(), "final check"
	if i >= 0 && i < len(ops) {
		name = mopNames[ops[i].kind]
		msg = strings.TrimPrefix(msg, ops[i].String()+": ")
	}
	if cut := strings.IndexAny(msg, "0123456789([{\"'"); cut >= 0 {
		msg = msg[:cut]
	}
	if len(msg) > 40 {
		msg = msg[:40]
	}
	return name + ": " + msg
}

// modelReport describes a failure: the seed, the step, the shortest
// failing sequence found and how to replay it.
func modelReport(cfg *modelConfig, step int, err error, best []mop, bestErr error, replays int, pattern string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "model mismatch at step %d of seed %d: %v\n", step, cfg.seed, err)
	fmt.Fprintf(&b, "setting: start %s, hold TTL %v, new users get %+v\n", cfg.start.Format(time.RFC3339Nano), cfg.ttl, cfg.userPlan)
	if bestErr == nil {
		fmt.Fprintf(&b, "the failure did not replay on a fresh store (a flaky store or model?)\n")
	} else {
		fmt.Fprintf(&b, "shortest failing sequence found: %d of %d operations (%d replays):\n", len(best), step+1, replays)
		for _, op := range best {
			fmt.Fprintf(&b, "\t%s\n", op)
		}
		fmt.Fprintf(&b, "it fails with: %v\n", bestErr)
	}
	fmt.Fprintf(&b, "replay: go test -run '%s' -model.seed=%d -model.ops=%d", pattern, cfg.seed, step+1)
	return b.String()
}

// replaySequence runs ops on a fresh store and returns the index of the
// first failing step (len(ops) for the final check) and its error.
func replaySequence(t testing.TB, newStore func(testing.TB) budget.Store, cfg *modelConfig, ops []mop) (int, error) {
	r := newSeqRun(t, newStore, cfg)
	defer r.close()
	for i, op := range ops {
		if err := r.step(op); err != nil {
			return i, err
		}
	}
	if err := r.fullCheck(); err != nil {
		return len(ops), fmt.Errorf("final check: %w", err)
	}
	return -1, nil
}

// clientRes is the model's view of a Reservation the client holds.
type clientRes struct {
	user    string
	holdID  string
	amount  decimal.Decimal
	expires time.Time // the expiry the Reservation knows (an extend whose reply was lost moved the store's later)
	closed  bool      // the Reservation knows it is closed
	lost    bool      // Reserve's reply was lost: the client has no Reservation
	model   string    // WithModel's
}

// seqRun is one sequential run: the store under a Faulty, a Manager, the
// model and the client's reservations.
type seqRun struct {
	store budget.Store
	f     *Faulty
	clock *Clock
	mgr   *budget.Manager    // the Manager of the current operation
	mgrs  [2]*budget.Manager // two, as two processes sharing the store
	ref   *refModel
	cfg   *modelConfig

	alerts []budget.Alert
	calls  []Result

	// extendedFrom are the expiries holds had before an extend moved
	// them later, for the clock to aim at.
	extendedFrom []extendedFrom

	res     map[int]*budget.Reservation
	cres    map[int]*clientRes
	resIdx  []int              // reservation op indexes, in order
	usedIDs map[string][]idRef // per user, usage IDs recorded
	// touched are the teams and orgs the operation spent or changed,
	// looked at after it with the user (model_scopes.go).
	touched []*refUser
	changed bool // the operation changes a team's or org's settings
	// seenRows and seenAudit are the model's counts at the last check.
	seenRows   map[string]int
	seenAudit  map[string]int
	sinceFull  int
	fullChecks int
}

func newSeqRun(tb testing.TB, newStore func(testing.TB) budget.Store, cfg *modelConfig) *seqRun {
	s := newStore(tb)
	r := &seqRun{
		store: s, clock: NewClock(cfg.start), cfg: cfg,
		res: map[int]*budget.Reservation{}, cres: map[int]*clientRes{},
		usedIDs: map[string][]idRef{}, seenRows: map[string]int{}, seenAudit: map[string]int{},
	}
	r.f = NewFaulty(s, nil)
	r.f.Observe(func(res Result) { r.calls = append(r.calls, res) })
	adminPlan := budget.DefaultAdminPlan()
	for i := range r.mgrs {
		r.mgrs[i] = budget.NewManager(r.f, budget.Options{
			Now: r.clock.Now, HoldTTL: cfg.ttl, IsAdmin: isModelAdmin, UserPlan: &cfg.userPlan,
			OnAlert: func(a budget.Alert) { r.alerts = append(r.alerts, a) },
		})
	}
	r.mgr = r.mgrs[0]
	r.ref = newRefModel(cfg.ttl, adminPlan, cfg.userPlan, isModelAdmin)
	return r
}

func (r *seqRun) close() { r.store.Close() }

func (r *seqRun) totalRows() int {
	n := 0
	for _, u := range r.ref.users {
		n += len(u.rows)
	}
	return n
}

// lastCall returns the last observed call of method during the operation.
func (r *seqRun) lastCall(method string) (Result, bool) {
	for i := len(r.calls) - 1; i >= 0; i-- {
		if r.calls[i].Call.Method == method {
			return r.calls[i], true
		}
	}
	return Result{}, false
}

// resolve returns the usage ID idRef names in this run ("" for none).
func (r *seqRun) resolve(id idRef) string {
	if id.hold == 0 {
		return id.lit
	}
	if c := r.cres[id.hold-1]; c != nil {
		return c.holdID
	}
	return fmt.Sprintf("gone-%d", id.hold-1)
}

// kindOf classifies an error the Manager returned.
func kindOf(err error) refKind {
	switch {
	case err == nil:
		return refOK
	case errors.Is(err, ErrInjected):
		return refInjected
	case errors.Is(err, context.Canceled):
		return refCanceled
	case errors.Is(err, budget.ErrBudgetExceeded):
		return refExceeded
	case errors.Is(err, budget.ErrReservationClosed):
		return refClosed
	case errors.Is(err, budget.ErrHoldExpired):
		return refExpired
	case errors.Is(err, budget.ErrDuplicate):
		return refDuplicate
	case errors.Is(err, budget.ErrNotFound):
		return refNotFound
	case errors.Is(err, budget.ErrInvalid), errors.Is(err, budget.ErrInvalidAmount):
		return refInvalid
	}
	return refKind("error: " + err.Error())
}

// step runs one operation on both sides and compares everything it
// touched.
func (r *seqRun) step(op mop) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
		if err != nil {
			err = fmt.Errorf("%s: %w", op, err)
		}
	}()
	r.calls, r.alerts, r.touched = r.calls[:0], r.alerts[:0], r.touched[:0]
	r.changed = op.kind == mopBudget || op.kind == mopTeamOrg
	fired := func() bool { return false }
	if op.fault != mfNone {
		var rule Rule
		rule, fired = Once(storeMethod[op.kind], op.fault.fault())
		r.f.SetRule(rule)
	}
	r.mgr = r.mgrs[op.mgr]
	called, err := r.run(op)
	r.mgr = r.mgrs[0]
	r.f.SetRule(nil)
	if err != nil {
		return err
	}
	if op.fault != mfNone && called != fired() {
		return fmt.Errorf("the model expects store.%s to be called: %v; it was: %v", storeMethod[op.kind], called, fired())
	}
	if err := r.checkAlerts("the operation"); err != nil {
		return err
	}
	if !op.quiet && op.kind != mopClock && op.kind != mopDefaults && r.ref.users[op.user] != nil {
		if err := r.checkUser(op.user); err != nil {
			return err
		}
	}
	if !op.quiet {
		if err := r.checkTouched(); err != nil {
			return err
		}
	}
	r.sinceFull++
	// A full check reads everything: space them out as the history grows,
	// so that checking costs about as much as the operations.
	if r.sinceFull >= max(25, (r.totalRows()+r.keyRowCount()+len(r.ref.log))/20) {
		return r.fullCheck()
	}
	return nil
}

// run performs op and reports whether the model expects the operation's
// store call to be made.
func (r *seqRun) run(op mop) (bool, error) {
	now := r.clock.Now()
	switch op.kind {
	case mopClock:
		if op.at.After(now) {
			r.clock.Set(op.at)
		}
		return false, nil
	case mopReserve:
		return r.doReserve(op, now)
	case mopSettle:
		return r.doSettle(op, now)
	case mopRelease:
		return r.doRelease(op, now)
	case mopExtend:
		return r.doExtend(op, now)
	case mopRecord:
		return r.doRecord(op, now)
	case mopStatus:
		st, err := r.mgr.Status(ctx, op.user)
		u := r.ref.user(op.user, now)
		hs, _ := r.ref.heldBy(u, "", true)
		r.touch(hs)
		f := r.effective(op.fault)
		want := r.expectFault(f)
		switch {
		case f.after():
			r.ref.totals(u, hs, now, false)
		case want == refOK:
			r.ref.totals(u, hs, now, true)
		}
		if err := wantKind(err, want); err != nil {
			return true, err
		}
		if want == refOK {
			return true, diffStatus("returned status", st, r.ref.statusWith(u, hs))
		}
		return true, nil
	case mopReset:
		return r.doReset(op, now)
	case mopUpdate:
		return r.doUpdate(op, now)
	case mopSettings:
		s, err := r.mgr.Settings(ctx, op.user)
		if err != nil {
			return false, fmt.Errorf("settings: %v", err)
		}
		return false, diffSettings(s, r.ref, r.ref.user(op.user, now), now)
	case mopList:
		return false, r.doList(op, now)
	case mopBreakdown:
		return false, r.doBreakdown(op, now)
	case mopDefaults:
		return false, r.doDefaults(op, now)
	case mopBudget:
		return r.doBudget(op, now)
	case mopMembership:
		return r.doMembership(op, now)
	case mopTeamOrg:
		return r.doTeamOrg(op, now)
	case mopBudgetStatus:
		return r.doBudgetStatus(op, now)
	case mopMembers:
		return false, r.doMembers(op)
	}
	return false, fmt.Errorf("unknown operation %d", op.kind)
}

// expectFault is the outcome an injected fault leaves the caller with,
// refOK when the call goes through as if there were none.
func (r *seqRun) expectFault(f mfault) refKind {
	switch f {
	case mfErrBefore, mfErrAfter, mfCancelAfter:
		return refInjected
	case mfCancelBefore:
		return refCanceled
	}
	return refOK
}

// effective is the fault as it struck: a fault on a call the store
// refused with ErrConflict (the Manager's cached settings were stale) left
// nothing changed, as if it struck before; a cancelled context there is
// retried by the Manager like the conflict.
func (r *seqRun) effective(f mfault) mfault {
	for _, c := range r.calls {
		if c.Fault == nil || !c.Called || !errors.Is(c.StoreErr, budget.ErrConflict) {
			continue
		}
		switch {
		case f.after():
			return mfErrBefore
		case f == mfCancelBefore:
			return mfNone
		}
	}
	return f
}

// unnamedModel checks the outcome of a call of method that names no model
// where a cap applies: refused as invalid. The Manager reaches the store
// first when its cached settings say no cap applies (another Manager added
// one): the store refuses the call as stale, and the Manager reads the
// settings again and refuses it. A fault injected on that store call is
// what the caller sees instead.
func (r *seqRun) unnamedModel(err error, method string, f mfault) (called bool, _ error) {
	if _, called = r.lastCall(method); !called || f == mfNone || f == mfConflictBefore {
		return called, wantKind(err, refInvalid)
	}
	return true, wantKind(err, r.expectFault(r.effective(f)))
}

func wantKind(err error, want refKind) error {
	if got := kindOf(err); got != want {
		return fmt.Errorf("outcome %s (%v), model says %s", got, err, want)
	}
	return nil
}

// storeAgrees checks that the store's own reply to a call whose reply was
// then lost is what the model expects.
func (r *seqRun) storeAgrees(method string, want refKind) error {
	c, ok := r.lastCall(method)
	if !ok {
		return fmt.Errorf("store.%s was not called", method)
	}
	if got := kindOf(c.StoreErr); got != want {
		return fmt.Errorf("store.%s (reply lost) returned %s (%v), model says %s", method, got, c.StoreErr, want)
	}
	return nil
}

func (r *seqRun) doReserve(op mop, now time.Time) (bool, error) {
	var opts []budget.ReserveOption
	if op.model != "" {
		opts = append(opts, budget.WithModel(op.model))
	}
	res, err := r.mgr.Reserve(ctx, op.user, op.amount, opts...)
	if op.amount.Sign() < 0 {
		if res != nil {
			return false, fmt.Errorf("a reservation for a negative estimate")
		}
		return false, wantKind(err, refInvalid)
	}
	u := r.ref.user(op.user, now)
	hs, ok := r.ref.heldBy(u, op.model, false)
	if !ok { // a cap applies and the call names no model
		if res != nil {
			return false, fmt.Errorf("a reservation naming no model under a model cap")
		}
		return r.unnamedModel(err, "Reserve", op.fault)
	}
	r.touch(hs)
	c, called := r.lastCall("Reserve")
	if !called {
		return true, fmt.Errorf("store.Reserve was not called (err %v)", err)
	}
	f := r.effective(op.fault)
	want := r.expectFault(f)
	var st budget.Status
	switch {
	case f.before():
	case f.after():
		k, _ := r.ref.reserve(u, hs, c.Call.HoldID, op.amount, now, false)
		if (k == refOK) != c.Allowed || c.StoreErr != nil {
			return true, fmt.Errorf("store.Reserve (reply lost) allowed %v, err %v; model says %s", c.Allowed, c.StoreErr, k)
		}
		if k == refOK {
			r.cres[op.idx] = &clientRes{user: op.user, holdID: c.Call.HoldID, amount: op.amount, expires: now.Add(r.cfg.ttl), lost: true, model: op.model}
			r.resIdx = append(r.resIdx, op.idx)
		}
	default:
		want, st = r.ref.reserve(u, hs, c.Call.HoldID, op.amount, now, true)
	}
	if err := wantKind(err, want); err != nil {
		return true, err
	}
	if want != refOK {
		if res != nil {
			return true, fmt.Errorf("Reserve returned a reservation and the error %v", err)
		}
		if want == refExceeded {
			var le *budget.LimitError
			if !errors.As(err, &le) {
				return true, fmt.Errorf("refusal %v is no *LimitError", err)
			}
			if !le.Spent.Equal(st.Spent) || !le.Reserved.Equal(st.Reserved) || !le.Limit.Equal(st.Limit) ||
				!le.Requested.Equal(op.amount) || !le.PeriodEnd.Equal(st.PeriodEnd) || le.UserID != op.user ||
				le.Scope != st.Scope || le.Pattern != st.Pattern {
				return true, fmt.Errorf("refusal %+v, model says the budget of %v %q refuses: spent %s reserved %s limit %s period end %v",
					*le, st.Scope, st.Pattern, st.Spent, st.Reserved, st.Limit, st.PeriodEnd)
			}
		}
		return true, nil
	}
	if res == nil {
		return true, fmt.Errorf("Reserve returned no reservation and no error")
	}
	if res.ID() != c.Call.HoldID || res.UserID() != op.user || !res.Amount().Equal(op.amount) || !res.ExpiresAt().Equal(now.Add(r.cfg.ttl)) {
		return true, fmt.Errorf("reservation %s of %s for %s expiring %v; store saw hold %s; want %s expiring %v",
			res.ID(), res.UserID(), res.Amount(), res.ExpiresAt(), c.Call.HoldID, op.amount, now.Add(r.cfg.ttl))
	}
	r.res[op.idx] = res
	r.cres[op.idx] = &clientRes{user: op.user, holdID: res.ID(), amount: op.amount, expires: res.ExpiresAt(), model: op.model}
	r.resIdx = append(r.resIdx, op.idx)
	return true, nil
}

func (r *seqRun) usage(op mop) budget.Usage {
	return budget.Usage{ID: r.resolve(op.id), Provider: op.provider, Model: op.model, InputTokens: op.in, OutputTokens: op.out, Cost: op.amount}
}

func (r *seqRun) row(op mop, id, holdID string, now time.Time) refRow {
	return refRow{id: id, holdID: holdID, provider: op.provider, model: op.model, in: op.in, out: op.out, cost: op.amount, at: now}
}

func (r *seqRun) doSettle(op mop, now time.Time) (bool, error) {
	cr, res := r.cres[op.res], r.res[op.res]
	if cr == nil || res == nil {
		return false, nil // the reservation does not exist in this sequence
	}
	u := r.ref.users[cr.user]
	usage := r.usage(op)
	st, err := res.Settle(ctx, usage)
	if cr.closed {
		return false, wantKind(err, refClosed)
	}
	if cr.model != "" && op.model != "" && op.model != cr.model {
		return false, wantKind(err, refInvalid) // another model than the reservation's
	}
	id := usage.ID
	if id == "" {
		id = cr.holdID
	}
	row := r.row(op, id, cr.holdID, now)
	if row.model == "" {
		row.model = cr.model
	}
	hs := r.ref.heldOf(u, cr.holdID)
	r.touch(hs)
	f := r.effective(op.fault)
	want := r.expectFault(f)
	switch {
	case f.before():
	case f.after():
		k := r.ref.settle(u, hs, cr.holdID, row, now, false)
		if err := r.storeAgrees("Settle", k); err != nil {
			return true, err
		}
		if k == refOK {
			r.usedIDs[cr.user] = append(r.usedIDs[cr.user], r.idOf(op, cr))
		}
	default:
		want = r.ref.settle(u, hs, cr.holdID, row, now, true)
		if want == refOK || want == refClosed {
			cr.closed = true
		}
		if want == refOK {
			r.usedIDs[cr.user] = append(r.usedIDs[cr.user], r.idOf(op, cr))
		}
	}
	if err := wantKind(err, want); err != nil {
		return true, err
	}
	if want == refOK {
		return true, diffStatus("returned status", st, r.ref.returned(u, hs, st))
	}
	return true, nil
}

// idOf is the usage ID a settle records, as an idRef.
func (r *seqRun) idOf(op mop, cr *clientRes) idRef {
	if op.id != (idRef{}) {
		return op.id
	}
	return holdOf(op.res)
}

func (r *seqRun) doRelease(op mop, now time.Time) (bool, error) {
	cr, res := r.cres[op.res], r.res[op.res]
	if cr == nil || res == nil {
		return false, nil
	}
	err := res.Release(ctx)
	if cr.closed {
		return false, wantKind(err, refOK)
	}
	u := r.ref.users[cr.user]
	hs := r.ref.heldOf(u, cr.holdID)
	r.touch(hs)
	f := r.effective(op.fault)
	want := r.expectFault(f)
	switch {
	case f.before():
	case f.after():
		if err := r.storeAgrees("Release", r.ref.release(u, hs, cr.holdID, now, false)); err != nil {
			return true, err
		}
	default:
		switch k := r.ref.release(u, hs, cr.holdID, now, true); k {
		case refOK, refClosed:
			cr.closed = true
		default:
			want = k
		}
	}
	return true, wantKind(err, want)
}

// doExtend extends a reservation the client holds. The Reservation asks
// the store only when now plus the TTL is after the expiry it knows, and
// not once it knows it is closed.
func (r *seqRun) doExtend(op mop, now time.Time) (bool, error) {
	cr, res := r.cres[op.res], r.res[op.res]
	if cr == nil || res == nil {
		return false, nil
	}
	at, err := res.Extend(ctx)
	if cr.closed {
		return false, wantKind(err, refClosed)
	}
	to := now.Add(r.cfg.ttl)
	if !to.After(cr.expires) {
		if err := wantKind(err, refOK); err != nil {
			return false, err
		}
		if !at.Equal(cr.expires) {
			return false, fmt.Errorf("extend with no later expiry returned %v, want the expiry %v", at, cr.expires)
		}
		return false, nil
	}
	u := r.ref.users[cr.user]
	hs := r.ref.heldOf(u, cr.holdID)
	r.touch(hs)
	if h := u.holds[cr.holdID]; h != nil && h.expires.Before(to) {
		// If the store extends it, the clock may aim between the expiries.
		defer func(old time.Time) {
			if u.holds[cr.holdID].expires.Equal(to) {
				r.extendedFrom = append(r.extendedFrom, extendedFrom{old, cr.user})
			}
		}(h.expires)
	}
	f := r.effective(op.fault)
	want := r.expectFault(f)
	switch {
	case f.before():
	case f.after():
		if err := r.storeAgrees("Extend", r.ref.extend(u, hs, cr.holdID, to, now, false)); err != nil {
			return true, err
		}
	default:
		switch k := r.ref.extend(u, hs, cr.holdID, to, now, true); k {
		case refOK:
			cr.expires = to
		case refClosed:
			cr.closed = true
			want = k
		default:
			want = k
		}
	}
	if err := wantKind(err, want); err != nil {
		return true, err
	}
	if want == refOK && (!at.Equal(to) || !res.ExpiresAt().Equal(to)) {
		return true, fmt.Errorf("extend returned %v and the reservation expires at %v, want %v", at, res.ExpiresAt(), to)
	}
	return true, nil
}

func (r *seqRun) doRecord(op mop, now time.Time) (bool, error) {
	usage := r.usage(op)
	st, err := r.mgr.Record(ctx, op.user, usage)
	if op.amount.Sign() < 0 {
		return false, wantKind(err, refInvalid)
	}
	u := r.ref.user(op.user, now)
	hs, ok := r.ref.heldBy(u, op.model, false)
	if !ok { // a cap applies and the usage names no model
		return r.unnamedModel(err, "Record", op.fault)
	}
	r.touch(hs)
	row := r.row(op, usage.ID, "", now)
	f := r.effective(op.fault)
	want := r.expectFault(f)
	switch {
	case f.before():
	case f.after():
		k := r.ref.record(u, hs, row, now, false)
		if err := r.storeAgrees("Record", k); err != nil {
			return true, err
		}
		if k == refOK && usage.ID != "" {
			r.usedIDs[op.user] = append(r.usedIDs[op.user], op.id)
		}
	default:
		want = r.ref.record(u, hs, row, now, true)
		if want == refOK && usage.ID != "" {
			r.usedIDs[op.user] = append(r.usedIDs[op.user], op.id)
		}
	}
	if err := wantKind(err, want); err != nil {
		return true, err
	}
	if want == refOK {
		return true, diffStatus("returned status", st, r.ref.returned(u, hs, st))
	}
	return true, nil
}

func (r *seqRun) doReset(op mop, now time.Time) (bool, error) {
	reason := fmt.Sprint("model reset #", op.idx)
	e, err := r.mgr.Reset(ctx, modelRoot, op.user, budget.ResetOptions{Reason: reason})
	u := r.ref.user(op.user, now)
	f := r.effective(op.fault)
	want := r.expectFault(f)
	var we refAudit
	switch {
	case f.before():
	case f.after():
		r.ref.reset(u, modelRoot.UserID, reason, now, false)
	default:
		we = r.ref.reset(u, modelRoot.UserID, reason, now, true)
	}
	if err := wantKind(err, want); err != nil {
		return true, err
	}
	if want == refOK {
		if e.ID <= 0 || e.UserID != op.user || !e.ActorAdmin {
			return true, fmt.Errorf("reset entry %+v: no ID, wrong user or not by an admin", e)
		}
		return true, diffAudit(e, we, "reset entry")
	}
	return true, nil
}

func (r *seqRun) doUpdate(op mop, now time.Time) (bool, error) {
	s, err := r.mgr.UpdateSettings(ctx, modelRoot, op.user, op.upd.settingsUpdate())
	if op.invalid {
		return false, wantKind(err, refInvalid)
	}
	u := r.ref.user(op.user, now)
	next := r.ref.apply(u.plan, op.upd, now)
	sc := u.scopes
	if op.upd.caps != nil {
		sc.caps = slices.Clone(*op.upd.caps)
	}
	if refSamePlan(next, u.plan) && sc.equal(u.scopes) {
		if err := wantKind(err, refOK); err != nil {
			return false, err
		}
		return false, diffSettings(s, r.ref, u, now)
	}
	return r.change(u, next, sc, op, s, err, now)
}

func (r *seqRun) doList(op mop, now time.Time) error {
	q := budget.UserQuery{Limit: op.page}
	if op.page == 0 {
		q.Limit = budget.MaxPageSize
	}
	if op.level >= 0 {
		l := budget.Level(op.level)
		q.Level = &l
	}
	var got []budget.UserStatus
	var sm budget.Summary
	for pages := 0; ; pages++ {
		p, err := r.mgr.ListUsers(ctx, modelRoot, q)
		if err != nil {
			return fmt.Errorf("list users: %v", err)
		}
		if len(p.Users) > q.Limit || pages > 100 {
			return fmt.Errorf("list users: a page of %d for a limit of %d (page %d)", len(p.Users), q.Limit, pages)
		}
		got, sm = append(got, p.Users...), p.Summary
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
	}
	var want []budget.Status
	var limit, spent decimal.Decimal
	over := 0
	for _, u := range r.ref.sortedUsers() {
		st := r.ref.listed(u, now)
		limit, spent = limit.Add(st.Limit), spent.Add(st.Spent)
		if st.Spent.Sign() > 0 && st.Spent.Cmp(st.Limit) >= 0 {
			over++
		}
		if op.level < 0 || st.Level == budget.Level(op.level) {
			want = append(want, st)
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("list users: %d users, model says %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Settings.UserID != w.UserID {
			return fmt.Errorf("list users: user %d is %q, model says %q", i, got[i].Settings.UserID, w.UserID)
		}
		if err := diffStatus("listed status of "+w.UserID, got[i].Status, w); err != nil {
			return err
		}
	}
	if sm.Users != len(r.ref.users) || !sm.TotalLimit.Equal(limit) || !sm.TotalSpent.Equal(spent) || sm.OverBudget != over {
		return fmt.Errorf("list summary %+v, model says %d users, limit %s, spent %s, %d over", sm, len(r.ref.users), limit, spent, over)
	}
	return nil
}

func (r *seqRun) doBreakdown(op mop, now time.Time) error {
	b, err := r.mgr.Breakdown(ctx, op.user, op.from, op.to)
	if err != nil {
		return fmt.Errorf("breakdown: %v", err)
	}
	u := r.ref.users[op.user]
	if u == nil && !op.from.IsZero() {
		// A range needs no Status: the Manager makes no settings (a
		// shortened sequence may ask before the user's first call).
		if len(b.ByModel) != 0 || !b.Total.Cost.IsZero() {
			return fmt.Errorf("breakdown of a user without settings: %+v", b)
		}
		return nil
	}
	u = r.ref.user(op.user, now)
	w := budget.Window{Start: op.from, End: op.to}
	if op.from.IsZero() {
		hs, _ := r.ref.heldBy(u, "", true) // Breakdown asks for the Status
		r.touch(hs)
		r.ref.totals(u, hs, now, true)
		w = u.window
	}
	groups := u.breakdown(w)
	if !b.From.Equal(w.Start) || !b.To.Equal(w.End) {
		return fmt.Errorf("breakdown of [%v, %v), model's range is %v", b.From, b.To, w)
	}
	total := refGroup{cost: decimal.Zero}
	for _, g := range groups {
		total.cost, total.requests = total.cost.Add(g.cost), total.requests+g.requests
		total.input, total.output = total.input+g.input, total.output+g.output
	}
	if !b.Total.Cost.Equal(total.cost) || b.Total.Requests != total.requests || b.Total.InputTokens != total.input || b.Total.OutputTokens != total.output {
		return fmt.Errorf("breakdown total %+v, model says %+v", b.Total, total)
	}
	if len(b.ByModel) != len(groups) {
		return fmt.Errorf("breakdown has %d models, model says %d", len(b.ByModel), len(groups))
	}
	for _, it := range b.ByModel {
		g := groups[[2]string{it.Provider, it.Model}]
		if g == nil || !it.Cost.Equal(g.cost) || it.Requests != g.requests {
			return fmt.Errorf("breakdown item %+v, model says %+v", it, g)
		}
	}
	return nil
}

func (r *seqRun) doDefaults(op mop, now time.Time) error {
	d, err := r.mgr.UpdateDefaults(ctx, modelRoot, op.upd.settingsUpdate())
	if op.invalid {
		return wantKind(err, refInvalid)
	}
	if err != nil {
		return fmt.Errorf("update defaults: %v", err)
	}
	m := r.ref
	base := m.userPlan
	if m.defaults != nil {
		base = *m.defaults
	}
	next := m.applyDefaults(base, op.upd)
	if refSamePlan(next, base) { // a change to nothing writes nothing
		if !refSamePlan(d.Plan, base) || d.Version != m.defVer {
			return fmt.Errorf("unchanged defaults %+v version %d, model says %+v version %d", d.Plan, d.Version, base, m.defVer)
		}
		return nil
	}
	m.defaults = &next
	m.defVer++
	m.appendAudit(nil, refAudit{typ: budget.AuditDefaults, actor: modelRoot.UserID, prevLimit: base.Limit, newLimit: next.Limit, at: now})
	if !refSamePlan(d.Plan, next) || d.Version != m.defVer {
		return fmt.Errorf("defaults %+v version %d, model says %+v version %d", d.Plan, d.Version, next, m.defVer)
	}
	return nil
}

// ---- checks ----

func (r *seqRun) checkAlerts(when string) error {
	want := r.ref.takeAlerts()
	got := r.alerts
	r.alerts = r.alerts[:0]
	if len(got) != len(want) {
		return fmt.Errorf("%s reported alerts %s, model says %s", when, alertsString(got), refAlertsString(want))
	}
	for i, a := range got {
		w := want[i]
		if a.UserID != w.user || a.Scope != w.scope || a.Pattern != w.pattern || a.Level != w.level || !a.At.Equal(w.at) {
			return fmt.Errorf("%s reported alerts %s, model says %s", when, alertsString(got), refAlertsString(want))
		}
		if err := diffStatus(fmt.Sprintf("status of alert %v", a.Level), a.Status, w.status); err != nil {
			return fmt.Errorf("%s: %w", when, err)
		}
	}
	return nil
}

func alertsString(as []budget.Alert) string {
	var parts []string
	for _, a := range as {
		parts = append(parts, fmt.Sprintf("%s:%v%s(spent %s)", a.UserID, a.Level, alertBudget(a.Scope, a.Pattern), a.Status.Spent))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func refAlertsString(as []refAlert) string {
	var parts []string
	for _, a := range as {
		parts = append(parts, fmt.Sprintf("%s:%v%s(spent %s)", a.user, a.level, alertBudget(a.scope, a.pattern), a.status.Spent))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// checkUser compares what a user's status, settings, newest usage and
// newest audit entries look like after an operation.
func (r *seqRun) checkUser(id string) error {
	now := r.clock.Now()
	u := r.ref.users[id]
	st, err := r.mgr.Status(ctx, id)
	if err != nil {
		return fmt.Errorf("status of %s: %v", id, err)
	}
	hs, _ := r.ref.heldBy(u, "", true)
	r.touch(hs)
	r.ref.totals(u, hs, now, true)
	if err := diffStatus("status of "+id, st, r.ref.statusWith(u, hs)); err != nil {
		return err
	}
	if err := r.checkAlerts("status after the operation"); err != nil {
		return err
	}
	s, err := r.mgr.Settings(ctx, id)
	if err != nil {
		return fmt.Errorf("settings of %s: %v", id, err)
	}
	if err := diffSettings(s, r.ref, u, now); err != nil {
		return err
	}
	// The newest rows and entries: those the operation added, and one
	// more, so that one the store added and the model did not shows too.
	n := len(u.rows)
	k := max(1, min(n-r.seenRows[id]+1, n, budget.MaxPageSize))
	p, err := r.mgr.History(ctx, budget.UsageQuery{UserID: id, Limit: k})
	if err != nil {
		return fmt.Errorf("history of %s: %v", id, err)
	}
	if len(p.Records) != min(k, n) {
		return fmt.Errorf("history of %s: %d newest records, want %d (model has %d rows)", id, len(p.Records), min(k, n), n)
	}
	for i, rec := range p.Records {
		if err := diffRow(rec, u.rows[n-1-i], "usage %d of %s", n-i, id); err != nil {
			return err
		}
	}
	r.seenRows[id] = n
	n = len(u.audit)
	k = max(1, min(n-r.seenAudit[id]+1, n, budget.MaxPageSize))
	ap, err := r.mgr.AuditLog(ctx, modelRoot, budget.AuditLogQuery{UserID: id, Limit: k})
	if err != nil {
		return fmt.Errorf("audit of %s: %v", id, err)
	}
	if len(ap.Entries) != min(k, n) {
		return fmt.Errorf("audit of %s: %d newest entries, want %d (model has %d)", id, len(ap.Entries), min(k, n), n)
	}
	for i, e := range ap.Entries {
		if err := diffAudit(e, u.audit[n-1-i], "audit entry %d of %s", n-i, id); err != nil {
			return err
		}
	}
	r.seenAudit[id] = n
	return nil
}

// fullCheck compares every user's whole history and audit log, and the
// whole audit log in order.
func (r *seqRun) fullCheck() error {
	r.sinceFull = 0
	r.fullChecks++
	for _, u := range r.ref.sortedUsers() {
		var got []budget.UsageRecord
		cursor := ""
		// Vary the page size, down to pages of one row.
		size := []int{budget.MaxPageSize, 1, 7, 50}[r.fullChecks%4]
		if len(u.rows) > 20*size {
			size = budget.MaxPageSize
		}
		for {
			p, err := r.mgr.History(ctx, budget.UsageQuery{UserID: u.id, Cursor: cursor, Limit: size})
			if err != nil {
				return fmt.Errorf("history of %s: %v", u.id, err)
			}
			got = append(got, p.Records...)
			if p.Next == "" {
				break
			}
			cursor = p.Next
		}
		if len(got) != len(u.rows) {
			return fmt.Errorf("history of %s has %d rows, model has %d", u.id, len(got), len(u.rows))
		}
		seen := map[string]bool{}
		for i, rec := range got {
			if seen[rec.ID] {
				return fmt.Errorf("history of %s has usage %s twice", u.id, rec.ID)
			}
			seen[rec.ID] = true
			if err := diffRow(rec, u.rows[len(got)-1-i], "usage %d of %s", len(got)-i, u.id); err != nil {
				return err
			}
		}
		// The rows of the current window, through History's range.
		w := u.window
		inWin, err := historyAll(r.mgr, u.id, w.Start, w.End)
		if err != nil {
			return err
		}
		var want []refRow
		for _, row := range u.rows {
			if w.Contains(row.at) {
				want = append(want, row)
			}
		}
		if len(inWin) != len(want) {
			return fmt.Errorf("history of %s in %v has %d rows, model has %d", u.id, w, len(inWin), len(want))
		}
		for i, rec := range inWin {
			if err := diffRow(rec, want[len(want)-1-i], "usage of %s in its period", u.id); err != nil {
				return err
			}
		}
		es := r.auditAll(u.id)
		if len(es) != len(u.audit) {
			return fmt.Errorf("audit of %s has %d entries, model has %d", u.id, len(es), len(u.audit))
		}
		for i, e := range es {
			if err := diffAudit(e, u.audit[len(es)-1-i], "audit entry %d of %s", len(es)-i, u.id); err != nil {
				return err
			}
		}
	}
	if err := r.fullCheckScopes(); err != nil {
		return err
	}
	all, log := r.auditAll(""), r.ref.log
	if len(all) != len(log) {
		return fmt.Errorf("the audit log has %d entries, model has %d", len(all), len(log))
	}
	for i, e := range all {
		if i > 0 && e.ID >= all[i-1].ID {
			return fmt.Errorf("audit IDs not decreasing newest first: %d then %d", all[i-1].ID, e.ID)
		}
	}
	if sameLog(all, log) != nil {
		// Compare again with each call's rollovers in one order: stores
		// may write them in any.
		all, log = canonicalLog(all, log)
	}
	for i, e := range all {
		w := log[len(log)-1-i]
		if e.UserID != w.user {
			return fmt.Errorf("audit entry %d is of user %q, model says %q", len(log)-i, e.UserID, w.user)
		}
		if err := diffAudit(e, w, "audit entry %d", len(log)-i); err != nil {
			return err
		}
	}
	return nil
}

// auditAll returns a user's audit log, or everyone's, newest first; on an
// error it returns what it has.
func (r *seqRun) auditAll(user string) []budget.AuditEntry {
	var out []budget.AuditEntry
	cursor := ""
	for {
		p, err := r.mgr.AuditLog(ctx, modelRoot, budget.AuditLogQuery{UserID: user, Cursor: cursor, Limit: budget.MaxPageSize})
		if err != nil {
			return out
		}
		out = append(out, p.Entries...)
		if p.Next == "" {
			return out
		}
		cursor = p.Next
	}
}

func diffStatus(what string, got, want budget.Status) error {
	var d []string
	money := func(name string, g, w decimal.Decimal) {
		if !g.Equal(w) {
			d = append(d, fmt.Sprintf("%s %s, model %s", name, g, w))
		}
	}
	if got.UserID != want.UserID {
		d = append(d, fmt.Sprintf("user %q, model %q", got.UserID, want.UserID))
	}
	if got.Scope != want.Scope || got.Pattern != want.Pattern {
		d = append(d, fmt.Sprintf("budget of %v %q, model %v %q", got.Scope, got.Pattern, want.Scope, want.Pattern))
	}
	if got.Binding != want.Binding {
		d = append(d, fmt.Sprintf("binding %v, model %v", got.Binding, want.Binding))
	}
	money("limit", got.Limit, want.Limit)
	money("spent", got.Spent, want.Spent)
	money("reserved", got.Reserved, want.Reserved)
	money("remaining", got.Remaining, want.Remaining)
	money("percent", got.Percent, want.Percent)
	if got.Level != want.Level {
		d = append(d, fmt.Sprintf("level %v, model %v", got.Level, want.Level))
	}
	if got.Enforced != want.Enforced || got.Period != want.Period || got.CustomDays != want.CustomDays || got.Timezone != want.Timezone {
		d = append(d, fmt.Sprintf("plan %v/%s/%d/%s, model %v/%s/%d/%s", got.Enforced, got.Period, got.CustomDays, got.Timezone,
			want.Enforced, want.Period, want.CustomDays, want.Timezone))
	}
	if !got.PeriodStart.Equal(want.PeriodStart) || !got.PeriodEnd.Equal(want.PeriodEnd) {
		d = append(d, fmt.Sprintf("period %v, model %v", budget.Window{Start: got.PeriodStart, End: got.PeriodEnd}, budget.Window{Start: want.PeriodStart, End: want.PeriodEnd}))
	}
	if len(got.Budgets) != len(want.Budgets) {
		d = append(d, fmt.Sprintf("%d budgets %s, model %d %s", len(got.Budgets), budgetsString(got.Budgets), len(want.Budgets), budgetsString(want.Budgets)))
	} else {
		for i := range got.Budgets {
			if err := diffStatus(fmt.Sprintf("budget %d", i), got.Budgets[i], want.Budgets[i]); err != nil {
				d = append(d, err.Error())
			}
		}
	}
	if d == nil {
		return nil
	}
	return fmt.Errorf("%s: %s", what, strings.Join(d, "; "))
}

func diffSettings(s budget.Settings, m *refModel, u *refUser, now time.Time) error {
	w := m.window(u, now)
	if s.UserID != u.id || !refSamePlan(s.Plan, u.plan) || s.Version != u.version || !s.ResetAt.Equal(u.resetAt) ||
		!s.PeriodStart.Equal(w.Start) || !s.PeriodEnd.Equal(w.End) {
		return fmt.Errorf("settings of %q: %+v version %d reset %v period [%v, %v); model: %+v version %d reset %v period %v",
			u.id, s.Plan, s.Version, s.ResetAt, s.PeriodStart, s.PeriodEnd, u.plan, u.version, u.resetAt, w)
	}
	if got := (refScopes{teams: s.Teams, org: s.Org, caps: s.ModelCaps}); !got.equal(u.scopes) {
		return fmt.Errorf("settings of %q: %s, model %s", u.id, got, u.scopes)
	}
	return nil
}

func diffRow(got budget.UsageRecord, want refRow, format string, args ...any) error {
	idOK := got.ID == want.id || (want.id == "" && strings.HasPrefix(got.ID, "u-"))
	if !idOK || got.ReservationID != want.holdID || !got.Cost.Equal(want.cost) || !got.At.Equal(want.at) ||
		got.Provider != want.provider || got.Model != want.model || got.InputTokens != want.in || got.OutputTokens != want.out {
		return fmt.Errorf("%s: %+v, model %+v", fmt.Sprintf(format, args...), got, want)
	}
	return nil
}

func diffAudit(got budget.AuditEntry, want refAudit, format string, args ...any) error {
	bad := got.Type != want.typ || got.Actor != want.actor || !got.At.Equal(want.at) ||
		!got.PreviousLimit.Equal(want.prevLimit) || !got.NewLimit.Equal(want.newLimit)
	switch want.typ {
	case budget.AuditManualReset, budget.AuditAutomaticReset:
		bad = bad || !got.PreviousSpent.Equal(want.prevSpent) || !got.PeriodStart.Equal(want.periodStart) ||
			!got.PeriodEnd.Equal(want.periodEnd) || got.Reason != want.reason
	case budget.AuditSettings:
		bad = bad || got.Before == nil || got.After == nil ||
			got.Before.Version != want.beforeVersion || got.After.Version != want.afterVersion
		if !bad && (!scopesOf(*got.Before).equal(want.before) || !scopesOf(*got.After).equal(want.after)) {
			return fmt.Errorf("%s: settings change from %s to %s, model from %s to %s", fmt.Sprintf(format, args...),
				scopesOf(*got.Before), scopesOf(*got.After), want.before, want.after)
		}
	}
	if bad {
		return fmt.Errorf("%s: %s by %s at %v: limit %s→%s, previous spent %s, period [%v, %v), reason %q; model: %s by %s at %v: limit %s→%s, previous spent %s, period [%v, %v), reason %q",
			fmt.Sprintf(format, args...), got.Type, got.Actor, got.At, got.PreviousLimit, got.NewLimit, got.PreviousSpent, got.PeriodStart, got.PeriodEnd, got.Reason,
			want.typ, want.actor, want.at, want.prevLimit, want.newLimit, want.prevSpent, want.periodStart, want.periodEnd, want.reason)
	}
	return nil
}
