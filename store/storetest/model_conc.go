package storetest

// The concurrent run of RunModel: rounds of operations from many
// goroutines on two Managers sharing one store, checked against
// invariants after each round, since no order of the operations is fixed.

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/shopspring/decimal"
)

// concRes is a reservation a goroutine made, and what became of it.
type concRes struct {
	r       *budget.Reservation
	user    string
	amount  decimal.Decimal
	expires time.Time // moved later by each extend
	closed  bool      // settled or released, as far as the client knows
	model   string    // WithModel's
}

// concWorker is one goroutine's state, kept across rounds.
type concWorker struct {
	id   int
	rng  *rand.Rand
	mgr  *budget.Manager
	open []*concRes
	made []*concRes // every reservation made
	// acked are the usage IDs ("user/id") whose Settle or Record
	// succeeded; tried are all the IDs attempted.
	acked, tried []string
	errs         []error
	seq          int
}

// holdLog is what the store did with each hold, from the Faulty's reports:
// how many Reserve, Settle and Release calls on it succeeded, counting
// duplicate deliveries.
type holdLog struct {
	mu     sync.Mutex
	opened map[string]int
	closed map[string]int
	how    map[string][]string
}

func (h *holdLog) observe(res Result) {
	if res.Call.HoldID == "" || !res.Called {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ok := func(err error) bool { return err == nil }
	switch res.Call.Method {
	case "Reserve":
		if ok(res.StoreErr) && res.Allowed {
			h.opened[res.Call.HoldID]++
		}
	case "Settle", "Release":
		for i, err := range []error{res.StoreErr, res.DupErr} {
			if i == 1 && (res.Fault == nil || !res.Fault.Duplicate) {
				break
			}
			if ok(err) {
				h.closed[res.Call.HoldID]++
				h.how[res.Call.HoldID] = append(h.how[res.Call.HoldID], res.Call.Method)
			}
		}
	}
}

// concUsers are the users of the concurrent run: c0-c2 enforced, c3 not.
var concUsers = []string{"c0", "c1", "c2", "c3"}

func runConcurrent(t *testing.T, newStore func(testing.TB) budget.Store, seed int64, opts ModelOptions) {
	opts = concDefaults(opts)
	t.Logf("seed %d, %d rounds of %d goroutines × %d operations, clocks %v apart; rerun with -run '%s' -model.seed=%d (the interleaving differs)",
		seed, opts.Rounds, opts.Goroutines, opts.RoundOps, opts.Skew, runPattern(t.Name()), seed)
	began := time.Now()
	if err := modelConcurrent(t, newStore, seed, opts); err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	t.Logf("%d rounds kept every invariant in %v", opts.Rounds, time.Since(began).Round(time.Millisecond))
}

func concDefaults(opts ModelOptions) ModelOptions {
	if opts.Rounds == 0 {
		opts.Rounds = 40
		if testing.Short() {
			opts.Rounds = 10
		}
	}
	if opts.Goroutines <= 0 {
		opts.Goroutines = 8
	}
	if opts.RoundOps <= 0 {
		opts.RoundOps = 8
	}
	switch {
	case opts.Skew == 0:
		opts.Skew = 2 * time.Second
	case opts.Skew < 0:
		opts.Skew = 0
	}
	return opts
}

// modelConcurrent runs the rounds and returns the first broken invariant.
func modelConcurrent(tb testing.TB, newStore func(testing.TB) budget.Store, seed int64, opts ModelOptions) error {
	rounds, goroutines, perRound := opts.Rounds, opts.Goroutines, opts.RoundOps
	rng := rand.New(rand.NewPCG(uint64(seed), 0x636f6e63))
	cfg := newModelConfig(seed)
	store := newStore(tb)
	hl := &holdLog{opened: map[string]int{}, closed: map[string]int{}, how: map[string][]string{}}
	al := newAlsoLog(store)
	// A tenth of the settles, releases and extends are delivered twice at
	// once.
	f := NewFaulty(al, SeededRule(seed, 0.1, []Fault{{When: Before, Duplicate: true}}, "Settle", "Release", "Extend"))
	f.Observe(hl.observe)
	clock := NewClock(cfg.start)
	// The second Manager's clock lags by opts.Skew, as another host's may.
	behind := func() time.Time { return clock.Now().Add(-opts.Skew) }
	var (
		alertMu sync.Mutex
		alerts  []budget.Alert
	)
	onAlert := func(a budget.Alert) {
		alertMu.Lock()
		alerts = append(alerts, a)
		alertMu.Unlock()
	}
	mgrs := []*budget.Manager{
		budget.NewManager(f, budget.Options{Now: clock.Now, HoldTTL: cfg.ttl, OnAlert: onAlert}),
		budget.NewManager(f, budget.Options{Now: behind, HoldTTL: cfg.ttl, OnAlert: onAlert}),
	}
	// Enforced users get random plans; c3 is not enforced.
	for i, u := range concUsers {
		lim := decimal.New(5+rng.Int64N(50), 0)
		per := []budget.Period{budget.Daily, budget.Weekly, budget.Monthly, budget.Custom}[rng.IntN(4)]
		tz := modelZones[rng.IntN(len(modelZones))]
		upd := budget.SettingsUpdate{Limit: &lim, Period: &per, Timezone: &tz, Enforce: ptr(i < 3)}
		if per == budget.Custom {
			upd.CustomDays = ptr(1 + rng.IntN(10))
			upd.CustomAnchor = ptr(cfg.start.Add(-time.Duration(rng.Int64N(int64(30 * 24 * time.Hour)))))
		}
		if _, err := mgrs[0].UpdateSettings(ctx, modelRoot, u, upd); err != nil {
			return fmt.Errorf("configure %s: %v", u, err)
		}
	}
	if err := setupConcScopes(rng, mgrs[0], cfg.start); err != nil {
		return err
	}
	workers := make([]*concWorker, goroutines)
	for i := range workers {
		workers[i] = &concWorker{id: i, rng: rand.New(rand.NewPCG(uint64(seed), uint64(i+1))), mgr: mgrs[i%2]}
	}
	for round := range rounds {
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for _, w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				for range perRound {
					w.step(clock, round)
				}
			}()
		}
		close(gate)
		wg.Wait()
		if err := checkRound(mgrs[0], store, al, clock.Now(), workers, hl, &alertMu, &alerts); err != nil {
			return fmt.Errorf("round %d (clock %v): %v", round, clock.Now(), err)
		}
		moveClock(rng, clock, mgrs[0], cfg.ttl, opts.Skew)
	}
	return nil
}

// moveClock moves the clock between rounds: a small step, past the TTL, or
// to a user's period end.
func moveClock(rng *rand.Rand, c *Clock, m *budget.Manager, ttl, skew time.Duration) {
	now := c.Now()
	if skew > 0 && rng.IntN(2) == 0 {
		// Between the ends of the period as the two clocks see it.
		if st, err := m.Status(ctx, concUsers[rng.IntN(len(concUsers))]); err == nil && st.PeriodEnd.After(now) {
			c.Set(st.PeriodEnd.Add(time.Duration(rng.Int64N(int64(skew)))))
			return
		}
	}
	if rng.IntN(4) == 0 {
		// To the end of a team's or org's period, or just past it.
		if end, ok := holderEnd(rng, m); ok && end.After(now) {
			c.Set(end.Add(time.Duration(rng.Int64N(int64(skew) + 1))))
			return
		}
	}
	switch rng.IntN(6) {
	case 0, 1:
		c.Set(now.Add(time.Duration(rng.Int64N(int64(ttl / 2)))))
	case 2:
		c.Set(now.Add(ttl))
	case 3, 4:
		if st, err := m.Status(ctx, concUsers[rng.IntN(len(concUsers))]); err == nil {
			c.Set(st.PeriodEnd.Add([]time.Duration{-1, 0, 1, time.Minute}[rng.IntN(4)]))
		}
	default:
		c.Set(now.Add(time.Duration(rng.Int64N(int64(48 * time.Hour)))))
	}
	if !c.Now().After(now) {
		c.Set(now.Add(time.Second))
	}
}

func (w *concWorker) fail(format string, args ...any) {
	w.errs = append(w.errs, fmt.Errorf("goroutine %d: "+format, append([]any{w.id}, args...)...))
}

// step runs one random operation. Settles never exceed their estimate and
// never come after the hold expired, so that enforced users stay within
// their limits; only c3, not enforced, records. Extends keep holds
// counting across rounds.
func (w *concWorker) step(c *Clock, round int) {
	now := c.Now()
	w.seq++
	user := concUsers[w.rng.IntN(3)]
	switch k := w.rng.IntN(24); {
	case k >= 22:
		w.scopeStep()
	case k < 8:
		est := decimal.New(w.rng.Int64N(8e9), -9)
		model := concModels[w.rng.IntN(len(concModels))]
		r, err := w.mgr.Reserve(ctx, user, est, budget.WithModel(model))
		switch {
		case err == nil:
			cr := &concRes{r: r, user: user, amount: est, expires: r.ExpiresAt(), model: model}
			w.open, w.made = append(w.open, cr), append(w.made, cr)
		case errors.Is(err, budget.ErrBudgetExceeded):
		default:
			w.fail("reserve %s %s: %v", user, est, err)
		}
	case k < 13:
		if len(w.open) == 0 {
			return
		}
		i := w.rng.IntN(len(w.open))
		cr := w.open[i]
		if !now.Before(cr.expires) {
			// A late settle may legitimately overspend: release instead.
			w.release(i)
			return
		}
		id := fmt.Sprintf("w%d-%d", w.id, w.seq)
		cost := decimal.New(w.rng.Int64N(cr.amount.Shift(9).IntPart()+1), -9)
		w.tried = append(w.tried, cr.user+"/"+id)
		model := ""
		if w.rng.IntN(2) == 0 {
			model = cr.model
		}
		_, err := cr.r.Settle(ctx, budget.Usage{ID: id, Provider: "p", Model: model, Cost: cost})
		switch {
		case err == nil:
			w.acked = append(w.acked, cr.user+"/"+id)
		case errors.Is(err, budget.ErrReservationClosed):
			// The duplicate delivery of this Settle won: it counts once.
		default:
			w.fail("settle %s: %v", cr.r.ID(), err)
			return
		}
		cr.closed = true
		w.open = slices.Delete(w.open, i, i+1)
	case k < 15:
		if len(w.open) > 0 {
			w.release(w.rng.IntN(len(w.open)))
		}
	case k < 16:
		id := fmt.Sprintf("w%d-%d", w.id, w.seq)
		if w.seq > 1 && w.rng.IntN(4) == 0 {
			id = fmt.Sprintf("w%d-%d", w.id, 1+w.rng.IntN(w.seq-1)) // perhaps recorded already
		}
		key := "c3/" + id
		if !slices.Contains(w.tried, key) {
			w.tried = append(w.tried, key)
		}
		_, err := w.mgr.Record(ctx, "c3", budget.Usage{ID: id, Cost: decimal.New(w.rng.Int64N(3e9), -9)})
		switch {
		case err == nil:
			if slices.Contains(w.acked, key) {
				w.fail("record %s succeeded twice", key)
			}
			w.acked = append(w.acked, key)
		case errors.Is(err, budget.ErrDuplicate):
		default:
			w.fail("record %s: %v", id, err)
		}
	case k < 17:
		if w.rng.IntN(4) == 0 {
			if _, err := w.mgr.Reset(ctx, modelRoot, user, budget.ResetOptions{Reason: "concurrent"}); err != nil {
				w.fail("reset %s: %v", user, err)
			}
		} else {
			// Raise the limit, compare-and-set: a concurrent raise read
			// with the same old limit must not lower it again.
			s, err := w.mgr.Settings(ctx, user)
			if err != nil {
				w.fail("settings %s: %v", user, err)
				return
			}
			lim := s.Limit.Add(decimal.New(w.rng.Int64N(3e9), -9))
			_, err = w.mgr.UpdateSettings(ctx, modelRoot, user, budget.SettingsUpdate{Limit: &lim, IfVersion: s.Version})
			if err != nil && !errors.Is(err, budget.ErrConflict) {
				w.fail("raise the limit of %s: %v", user, err)
			}
		}
	case k < 18:
		if len(w.open) > 0 {
			// Abandon it: its hold must expire on its own.
			w.open = slices.Delete(w.open, 0, 1)
		}
	case k < 20:
		if len(w.open) > 0 {
			w.extend(w.open[w.rng.IntN(len(w.open))], now)
		}
	default:
		if _, err := w.mgr.Status(ctx, user); err != nil {
			w.fail("status %s: %v", user, err)
		}
	}
}

// extend extends an open reservation. now is the latest time any Manager
// reads (the other may lag): a store refuses a hold as expired only once
// some call's time has reached its expiry, and no call's time is after now.
func (w *concWorker) extend(cr *concRes, now time.Time) {
	at, err := cr.r.Extend(ctx)
	switch {
	case err == nil:
		if at.Before(cr.expires) {
			w.fail("extend %s moved its expiry back from %v to %v", cr.r.ID(), cr.expires, at)
			return
		}
		cr.expires = at
	case errors.Is(err, budget.ErrHoldExpired):
		if now.Before(cr.expires) {
			w.fail("extend %s: expired at %v, before its expiry %v", cr.r.ID(), now, cr.expires)
		}
	default:
		w.fail("extend %s: %v", cr.r.ID(), err)
	}
}

func (w *concWorker) release(i int) {
	cr := w.open[i]
	if err := cr.r.Release(ctx); err != nil {
		w.fail("release %s: %v", cr.r.ID(), err)
		return
	}
	cr.closed = true
	w.open = slices.Delete(w.open, i, i+1)
}

// checkRound checks the invariants with every goroutine stopped: raw is
// the store itself, al the log of what it was asked.
func checkRound(m *budget.Manager, raw budget.Store, al *alsoLog, now time.Time, workers []*concWorker, hl *holdLog, alertMu *sync.Mutex, alerts *[]budget.Alert) error {
	var errs []error
	for _, w := range workers {
		errs = append(errs, w.errs...)
		w.errs = nil
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	hl.mu.Lock()
	closed, opened, how := maps.Clone(hl.closed), maps.Clone(hl.opened), maps.Clone(hl.how)
	hl.mu.Unlock()
	for id, n := range closed {
		if n > 1 {
			return fmt.Errorf("hold %s was closed %d times: %v", id, n, how[id])
		}
		if opened[id] != 1 {
			return fmt.Errorf("hold %s was closed but opened %d times", id, opened[id])
		}
	}
	// The live holds: those the clients hold or abandoned, that the store
	// opened and never closed, and that have not expired.
	live := map[string]decimal.Decimal{}
	acked := map[string]bool{}
	tried := map[string]bool{}
	for _, w := range workers {
		for _, id := range w.acked {
			acked[id] = true
		}
		for _, id := range w.tried {
			tried[id] = true
		}
	}
	for _, user := range concUsers {
		st, err := m.Status(ctx, user)
		if err != nil {
			return fmt.Errorf("status of %s: %v", user, err)
		}
		if st.Enforced && st.Spent.Add(st.Reserved).GreaterThan(st.Limit) {
			return fmt.Errorf("%s is over the limit: spent %s + reserved %s > limit %s", user, st.Spent, st.Reserved, st.Limit)
		}
		rows, err := historyAll(m, user, time.Time{}, time.Time{})
		if err != nil {
			return err
		}
		sum := decimal.Zero
		seen := map[string]bool{}
		for _, r := range rows {
			if seen[r.ID] {
				return fmt.Errorf("usage %s of %s is in the history twice", r.ID, user)
			}
			seen[r.ID] = true
			key := user + "/" + r.ID
			if !tried[key] {
				return fmt.Errorf("usage %s of %s was never recorded by a client", r.ID, user)
			}
			if !r.At.Before(st.PeriodStart) && r.At.Before(st.PeriodEnd) {
				sum = sum.Add(r.Cost)
			}
			delete(acked, key)
		}
		if !sum.Equal(st.Spent) {
			return fmt.Errorf("%s: spent %s, but the history in [%v, %v) sums to %s", user, st.Spent, st.PeriodStart, st.PeriodEnd, sum)
		}
		live[user] = st.Reserved
		es, err := auditAllOf(m, user)
		if err != nil {
			return err
		}
		rolled := map[budget.Window]bool{}
		for _, e := range es {
			if e.Type != budget.AuditAutomaticReset {
				continue
			}
			w := budget.Window{Start: e.PeriodStart.UTC(), End: e.PeriodEnd.UTC()}
			if rolled[w] {
				return fmt.Errorf("%s: the rollover of %v is audited twice", user, w)
			}
			rolled[w] = true
		}
	}
	if len(acked) > 0 {
		return fmt.Errorf("acknowledged usage missing from the history: %v", mapKeys(acked))
	}
	if err := checkScopes(m, raw, now, workers, closed, al, tried); err != nil {
		return err
	}
	// Reserved must be the sum of the holds the store opened and never
	// closed that have not expired.
	want := map[string]decimal.Decimal{}
	for _, w := range workers {
		for _, cr := range w.made {
			if closed[cr.r.ID()] == 0 && now.Before(cr.expires) {
				want[cr.user] = want[cr.user].Add(cr.amount)
			}
		}
	}
	for _, user := range concUsers {
		if !live[user].Equal(want[user]) {
			return fmt.Errorf("%s: reserved %s, but the open holds sum to %s", user, live[user], want[user])
		}
	}
	alertMu.Lock()
	defer alertMu.Unlock()
	type key struct {
		scope   budget.Scope
		pattern string
		start   time.Time
		level   budget.Level
	}
	fired := map[key]bool{}
	for _, a := range *alerts {
		k := key{a.Scope, a.Pattern, a.Status.PeriodStart.UTC(), a.Level}
		if fired[k] {
			return fmt.Errorf("alert %v for %v%s in the period from %v fired twice", a.Level, a.Scope, alertBudget(budget.Scope{}, a.Pattern), a.Status.PeriodStart)
		}
		fired[k] = true
		if a.Status.Level < a.Level {
			return fmt.Errorf("alert %v for %s at level %v", a.Level, a.UserID, a.Status.Level)
		}
	}
	return nil
}

func mapKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func historyAll(m *budget.Manager, user string, from, to time.Time) ([]budget.UsageRecord, error) {
	var out []budget.UsageRecord
	cursor := ""
	for {
		p, err := m.History(ctx, budget.UsageQuery{UserID: user, From: from, To: to, Cursor: cursor, Limit: budget.MaxPageSize})
		if err != nil {
			return nil, fmt.Errorf("history of %s: %v", user, err)
		}
		out = append(out, p.Records...)
		if p.Next == "" {
			return out, nil
		}
		cursor = p.Next
	}
}

func auditAllOf(m *budget.Manager, user string) ([]budget.AuditEntry, error) {
	var out []budget.AuditEntry
	cursor := ""
	for {
		p, err := m.AuditLog(ctx, modelRoot, budget.AuditLogQuery{UserID: user, Cursor: cursor, Limit: budget.MaxPageSize})
		if err != nil {
			return nil, fmt.Errorf("audit of %s: %v", user, err)
		}
		out = append(out, p.Entries...)
		if p.Next == "" {
			return out, nil
		}
		cursor = p.Next
	}
}
