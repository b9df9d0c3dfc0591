package storetest

// The concurrent run's budgets beyond a user's own: teams and orgs with
// model caps, which the users' calls spend and which the goroutines raise
// and rearrange (memberships, a team's org) while calls are in flight.
// After each round every budget, a user's, a team's, an org's and each
// cap's, is checked as a user's is: enforced ones within their limits,
// spend equal to the rows the store keeps under the budget's key, live
// holds equal to the holds placed on it and not closed or expired, each
// rollover audited once.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/llmbudget/budget"
	"github.com/shopspring/decimal"
)

var (
	// concTeams: ct0 and ct1 are enforced and in the org co (ct1 leaves
	// and rejoins it); ct2 is not enforced: c3, who records without
	// reserving, belongs to no other.
	concTeams  = []string{"ct0", "ct1", "ct2"}
	concOrg    = "co"
	concModels = []string{"claude-opus-4-5", "claude-sonnet-4", "gpt-4o", "gpt-4o-mini", "o3"}
)

func concHolders() []budget.Scope {
	return []budget.Scope{budget.Team("ct0"), budget.Team("ct1"), budget.Team("ct2"), budget.Org(concOrg)}
}

// concPlan draws a budget's plan: a limit from lo to lo+span dollars, a
// period and a zone.
func concPlan(rng *rand.Rand, start time.Time, lo, span int64, enforce bool) budget.SettingsUpdate {
	lim := decimal.New(lo+rng.Int64N(span), 0)
	per := []budget.Period{budget.Daily, budget.Weekly, budget.Monthly, budget.Custom}[rng.IntN(4)]
	tz := modelZones[rng.IntN(len(modelZones))]
	u := budget.SettingsUpdate{Limit: &lim, Period: &per, Timezone: &tz, Enforce: &enforce}
	if per == budget.Custom {
		u.CustomDays = ptr(1 + rng.IntN(10))
		u.CustomAnchor = ptr(start.Add(-time.Duration(rng.Int64N(int64(30 * 24 * time.Hour)))))
	}
	return u
}

func concCap(rng *rand.Rand, pattern string, lo, span int64) budget.ModelCap {
	return budget.ModelCap{Pattern: pattern, Limit: decimal.New(lo*100+rng.Int64N(span*100), -2)}
}

// setupConcScopes makes the teams and the org, their caps and c1's, and
// places the users: c0 in ct0, c1 in ct0 and ct1, c2 in ct1 and in co
// directly, c3 in ct2.
func setupConcScopes(rng *rand.Rand, m *budget.Manager, start time.Time) error {
	ups := map[budget.Scope]budget.SettingsUpdate{
		budget.Team("ct0"):  concPlan(rng, start, 10, 40, true),
		budget.Team("ct1"):  concPlan(rng, start, 10, 40, true),
		budget.Team("ct2"):  concPlan(rng, start, 5, 20, false),
		budget.Org(concOrg): concPlan(rng, start, 30, 60, true),
	}
	caps := map[budget.Scope][]budget.ModelCap{
		budget.Team("ct0"):  {concCap(rng, "claude-*", 3, 8), concCap(rng, "claude-opus-*", 1, 5)},
		budget.Org(concOrg): {concCap(rng, "gpt-4o*", 2, 8), concCap(rng, "*", 10, 20)},
	}
	for _, s := range concHolders() {
		u := ups[s]
		if cs, ok := caps[s]; ok {
			u.ModelCaps = &cs
		}
		if _, err := m.UpdateBudget(ctx, modelRoot, s, u); err != nil {
			return fmt.Errorf("configure %v: %v", s, err)
		}
	}
	for _, t := range []string{"ct0", "ct1"} {
		if _, err := m.SetTeamOrg(ctx, modelRoot, t, concOrg); err != nil {
			return fmt.Errorf("put %s in %s: %v", t, concOrg, err)
		}
	}
	c1caps := []budget.ModelCap{concCap(rng, "claude-opus-*", 1, 4)}
	if _, err := m.UpdateSettings(ctx, modelRoot, "c1", budget.SettingsUpdate{ModelCaps: &c1caps}); err != nil {
		return fmt.Errorf("caps of c1: %v", err)
	}
	for u, ms := range map[string]budget.Membership{
		"c0": {Teams: []string{"ct0"}}, "c1": {Teams: []string{"ct0", "ct1"}},
		"c2": {Teams: []string{"ct1"}, Org: concOrg}, "c3": {Teams: []string{"ct2"}},
	} {
		if _, err := m.SetMembership(ctx, modelRoot, u, ms); err != nil {
			return fmt.Errorf("place %s: %v", u, err)
		}
	}
	return nil
}

// alsoLog is the store under the Faulty: it notes, for each hold, the
// budgets (keys, the user's first) that Reserve placed it on, and for each
// usage ("user/id") those that Settle or Record recorded it under, as the
// store received them.
type alsoLog struct {
	budget.Store
	mu     sync.Mutex
	holds  map[string][]string
	amount map[string]budget.Nanos
	usage  map[string][]string
	over   []string // settles above their hold's estimate
}

func newAlsoLog(s budget.Store) *alsoLog {
	return &alsoLog{Store: s, holds: map[string][]string{}, amount: map[string]budget.Nanos{}, usage: map[string][]string{}}
}

func keysOf(user string, also []budget.KeyPolicy) []string {
	out := []string{user}
	for _, k := range also {
		out = append(out, k.Key)
	}
	return out
}

func (a *alsoLog) Reserve(ctx context.Context, req budget.ReserveRequest) (budget.Totals, bool, error) {
	t, ok, err := a.Store.Reserve(ctx, req)
	if err == nil && ok {
		a.mu.Lock()
		a.holds[req.HoldID], a.amount[req.HoldID] = keysOf(req.UserID, req.Also), req.Amount
		a.mu.Unlock()
	}
	return t, ok, err
}

func (a *alsoLog) Settle(ctx context.Context, req budget.SettleRequest) (budget.Totals, error) {
	t, err := a.Store.Settle(ctx, req)
	if err == nil {
		a.mu.Lock()
		a.usage[req.Usage.UserID+"/"+req.Usage.ID] = keysOf(req.Usage.UserID, req.Also)
		if amt, ok := a.amount[req.HoldID]; !ok || req.Usage.Cost > amt {
			a.over = append(a.over, req.HoldID)
		}
		a.mu.Unlock()
	}
	return t, err
}

func (a *alsoLog) Record(ctx context.Context, req budget.RecordRequest) (budget.Totals, error) {
	t, err := a.Store.Record(ctx, req)
	if err == nil {
		a.mu.Lock()
		a.usage[req.Usage.UserID+"/"+req.Usage.ID] = keysOf(req.Usage.UserID, req.Also)
		a.mu.Unlock()
	}
	return t, err
}

// scopeStep changes where budgets stand while calls are in flight: a
// user's teams and org, ct1's org, a team's or org's limit or a cap's
// (raised only, compare-and-set, so that enforced budgets stay within
// their limits).
func (w *concWorker) scopeStep() {
	switch k := w.rng.IntN(10); {
	case k < 4:
		user := concUsers[w.rng.IntN(len(concUsers))]
		var ms budget.Membership
		if user == "c3" { // c3 records: never in an enforced budget
			if w.rng.IntN(2) == 0 {
				ms.Teams = []string{"ct2"}
			}
		} else {
			for _, t := range concTeams {
				if w.rng.IntN(2) == 0 {
					ms.Teams = append(ms.Teams, t)
				}
			}
			if w.rng.IntN(2) == 0 {
				ms.Org = concOrg
			}
		}
		if _, err := w.mgr.SetMembership(ctx, modelRoot, user, ms); err != nil {
			w.fail("set the membership of %s to %+v: %v", user, ms, err)
		}
	case k < 5:
		org := ""
		if w.rng.IntN(2) == 0 {
			org = concOrg
		}
		if _, err := w.mgr.SetTeamOrg(ctx, modelRoot, "ct1", org); err != nil {
			w.fail("put ct1 in org %q: %v", org, err)
		}
	default:
		hs := append(concHolders(), budget.User("c1"))
		s := hs[w.rng.IntN(len(hs))]
		cur, err := w.mgr.BudgetSettings(ctx, modelRoot, s)
		if err != nil {
			w.fail("settings of %v: %v", s, err)
			return
		}
		raise := decimal.New(w.rng.Int64N(3e9), -9)
		u := budget.SettingsUpdate{IfVersion: cur.Version}
		if len(cur.ModelCaps) > 0 && w.rng.IntN(2) == 0 {
			caps := slices.Clone(cur.ModelCaps)
			i := w.rng.IntN(len(caps))
			caps[i].Limit = caps[i].Limit.Add(raise)
			u.ModelCaps = &caps
		} else {
			lim := cur.Limit.Add(raise)
			u.Limit = &lim
		}
		if _, err := w.mgr.UpdateBudget(ctx, modelRoot, s, u); err != nil && !errors.Is(err, budget.ErrConflict) {
			w.fail("raise a limit of %v: %v", s, err)
		}
	}
}

// checkScopes checks every budget beyond the users' own (teams, orgs and
// every cap, the users' included) with every goroutine stopped.
func checkScopes(m *budget.Manager, raw budget.Store, now time.Time, workers []*concWorker, closed map[string]int, al *alsoLog, tried map[string]bool) error {
	al.mu.Lock()
	defer al.mu.Unlock()
	if len(al.over) > 0 {
		// The invariants below hold only when no settle spends more than
		// its hold: the workload never does.
		return fmt.Errorf("settles above their estimates: %v", al.over)
	}
	statuses := map[string]budget.Status{}
	add := func(b budget.Status) {
		key := b.Scope.Key()
		if b.Pattern != "" {
			key = b.Scope.CapKey(b.Pattern)
		}
		statuses[key] = b
	}
	for _, user := range concUsers {
		st, err := m.Status(ctx, user)
		if err != nil {
			return fmt.Errorf("status of %s: %v", user, err)
		}
		for _, b := range st.Budgets {
			if b.Scope == budget.User(user) && b.Pattern != "" {
				add(b) // the user's caps
			}
		}
	}
	for _, s := range concHolders() {
		st, err := m.BudgetStatus(ctx, s)
		if err != nil {
			return fmt.Errorf("status of %v: %v", s, err)
		}
		if len(st.Budgets) == 0 {
			add(st)
		}
		for _, b := range st.Budgets {
			add(b)
		}
		es, err := m.AuditLog(ctx, modelRoot, budget.AuditLogQuery{Scope: s, Type: budget.AuditAutomaticReset, Limit: budget.MaxPageSize})
		if err != nil {
			return fmt.Errorf("audit of %v: %v", s, err)
		}
		rolled := map[budget.Window]bool{}
		for _, e := range es.Entries {
			w := budget.Window{Start: e.PeriodStart.UTC(), End: e.PeriodEnd.UTC()}
			if rolled[w] {
				return fmt.Errorf("%v: the rollover of %v is audited twice", s, w)
			}
			rolled[w] = true
		}
	}
	// The holds each budget holds: placed on its key, never closed, not
	// expired.
	expires := map[string]time.Time{}
	for _, w := range workers {
		for _, cr := range w.made {
			expires[cr.r.ID()] = cr.expires
		}
	}
	held := map[string]decimal.Decimal{}
	for id, keys := range al.holds {
		if closed[id] == 0 && now.Before(expires[id]) {
			for _, k := range keys[1:] {
				held[k] = held[k].Add(al.amount[id].Decimal())
			}
		}
	}
	// The usage each budget must keep: every acknowledged call's, under
	// every key the store was asked to record it under.
	acked := map[string]bool{}
	for _, w := range workers {
		for _, id := range w.acked {
			acked[id] = true
		}
	}
	must := map[string]map[string]bool{}
	for id, keys := range al.usage {
		if !acked[id] {
			continue
		}
		for _, k := range keys[1:] {
			if must[k] == nil {
				must[k] = map[string]bool{}
			}
			must[k][id] = true
		}
	}
	for key, st := range statuses {
		what := st.Scope.String()
		if st.Pattern != "" {
			what += " cap " + st.Pattern
		}
		if st.Enforced && st.Spent.Add(st.Reserved).GreaterThan(st.Limit) {
			return fmt.Errorf("%s is over the limit: spent %s + reserved %s > limit %s", what, st.Spent, st.Reserved, st.Limit)
		}
		if !st.Reserved.Equal(held[key]) {
			return fmt.Errorf("%s: reserved %s, but the open holds placed on it sum to %s", what, st.Reserved, held[key])
		}
		rows, err := storeRows(raw, key)
		if err != nil {
			return err
		}
		sum := decimal.Zero
		seen := map[string]bool{}
		for _, r := range rows {
			user, id, ok := budget.SplitUsageKeyID(r.ID)
			if !ok || r.UserID != key {
				return fmt.Errorf("%s keeps the row %s of %q, not in its key's form", what, r.ID, r.UserID)
			}
			k := user + "/" + id
			if seen[k] {
				return fmt.Errorf("usage %s is under %s twice", k, what)
			}
			seen[k] = true
			if !tried[k] {
				return fmt.Errorf("usage %s under %s was never recorded by a client", k, what)
			}
			if !r.At.Before(st.PeriodStart) && r.At.Before(st.PeriodEnd) {
				sum = sum.Add(r.Cost.Decimal())
			}
		}
		if !sum.Equal(st.Spent) {
			return fmt.Errorf("%s: spent %s, but its rows in [%v, %v) sum to %s", what, st.Spent, st.PeriodStart, st.PeriodEnd, sum)
		}
		for id := range must[key] {
			if !seen[id] {
				return fmt.Errorf("acknowledged usage %s is missing under %s", id, what)
			}
		}
		delete(held, key)
		delete(must, key)
	}
	for key := range held {
		if !held[key].IsZero() {
			return fmt.Errorf("holds of %s placed on %q, which no status lists", held[key], key)
		}
	}
	for key := range must {
		return fmt.Errorf("usage recorded under %q, which no status lists", key)
	}
	return nil
}

// storeRows reads every usage row the store keeps under key.
func storeRows(s budget.Store, key string) ([]budget.UsageRow, error) {
	var out []budget.UsageRow
	cursor := ""
	for {
		p, err := s.History(ctx, budget.HistoryQuery{UserID: key, Cursor: cursor, Limit: budget.MaxPageSize})
		if err != nil {
			return nil, fmt.Errorf("store history of %q: %v", key, err)
		}
		out = append(out, p.Rows...)
		if p.Next == "" {
			return out, nil
		}
		cursor = p.Next
	}
}

// holderEnd returns the end of a random team's or org's period.
func holderEnd(rng *rand.Rand, m *budget.Manager) (time.Time, bool) {
	hs := concHolders()
	st, err := m.BudgetStatus(ctx, hs[rng.IntN(len(hs))])
	return st.PeriodEnd, err == nil
}
