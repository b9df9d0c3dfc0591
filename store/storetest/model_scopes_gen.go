package storetest

// The generator's operations on budgets beyond a user's own: teams and
// orgs made and changed by UpdateBudget (limits, periods, timezones, model
// caps with overlapping patterns), users moved between them while their
// holds are in flight, teams moved between orgs, and the models reserves,
// settles and records name.

import (
	"fmt"
	"slices"
	"time"

	"github.com/llmbudget/budget"
	"github.com/shopspring/decimal"
)

var (
	// modelTeams and modelOrgs are the teams and orgs of the sequential
	// run; "tx" and "ox" are never made.
	modelTeams = []string{"t0", "t1", "t2"}
	modelOrgs  = []string{"o0", "o1"}
	// modelCapPatterns overlap: claude-opus-4-5 matches four of them.
	modelCapPatterns = []string{"claude-*", "claude-opus-*", "gpt-4o*", "gpt-?o", "*", "claude-opus-4-5", "o?"}
	modelCapModels   = [][2]string{
		{"anthropic", "claude-opus-4-1"}, {"anthropic", "claude-opus-4-5"}, {"anthropic", "claude-sonnet-4"},
		{"openai", "gpt-4o"}, {"openai", "gpt-4o-mini"}, {"openai", "gpt-5"}, {"openai", "o3"},
	}
)

func modelHolders() []budget.Scope {
	var out []budget.Scope
	for _, t := range modelTeams {
		out = append(out, budget.Team(t))
	}
	for _, o := range modelOrgs {
		out = append(out, budget.Org(o))
	}
	return out
}

// scopeOp draws an operation on teams and orgs: first mostly making the
// missing ones.
func (g *modelGen) scopeOp(r *seqRun, op *mop, now time.Time) {
	var missing []budget.Scope
	all := modelHolders()
	for _, s := range all {
		if r.ref.holder(s) == nil {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 && g.pct(50) {
		op.kind, op.scope = mopBudget, missing[g.rng.IntN(len(missing))]
		g.holderUpdate(r, op, now)
		return
	}
	pick := func() budget.Scope {
		if g.pct(3) {
			return []budget.Scope{budget.Team("tx"), budget.Org("ox")}[g.rng.IntN(2)]
		}
		return all[g.rng.IntN(len(all))]
	}
	switch w := g.rng.IntN(100); {
	case w < 30:
		op.kind, op.scope = mopBudget, all[g.rng.IntN(len(all))]
		g.holderUpdate(r, op, now)
	case w < 60:
		op.kind, op.user = mopMembership, g.user(r)
		for _, t := range modelTeams {
			if g.pct(35) {
				op.teams = append(op.teams, t)
			}
		}
		if g.pct(3) {
			op.teams = append(op.teams, "tx")
		}
		if len(op.teams) > 1 && g.pct(20) {
			op.teams = append(op.teams, op.teams[0]) // named twice
		}
		if g.pct(55) {
			op.org = modelOrgs[g.rng.IntN(len(modelOrgs))]
			if g.pct(3) {
				op.org = "ox"
			}
		}
	case w < 72:
		op.kind, op.scope = mopTeamOrg, budget.Team(modelTeams[g.rng.IntN(len(modelTeams))])
		if g.pct(3) {
			op.scope = budget.Team("tx")
		}
		if g.pct(65) {
			op.org = modelOrgs[g.rng.IntN(len(modelOrgs))]
			if g.pct(3) {
				op.org = "ox"
			}
		}
	case w < 95:
		op.kind, op.scope = mopBudgetStatus, pick()
	default:
		op.kind, op.scope = mopMembers, pick()
	}
}

// holderUpdate draws UpdateBudget's change of a team or org: plan fields,
// model caps, or both.
func (g *modelGen) holderUpdate(r *seqRun, op *mop, now time.Time) {
	h := r.ref.holder(op.scope)
	p, spent := r.ref.userPlan, decimal.Zero
	if r.ref.defaults != nil {
		p = *r.ref.defaults
	}
	if h != nil {
		p, spent = h.plan, h.spentIn(r.ref.window(h, now))
	}
	caps := g.pct(40)
	if !caps || g.pct(50) {
		op.upd = g.planUpdate(r, p, spent, now, false)
		if per := op.upd.period; per != nil && *per == budget.Daily && g.pct(60) {
			// Mostly longer periods than users': a team's period is
			// often a month.
			m := budget.Monthly
			op.upd.period = &m
		}
	}
	// A team's or org's budget is spent by all its members: keep it
	// mostly larger than a user's, so that holds are placed often enough
	// to be settled, released, extended and expired.
	if l := op.upd.limit; (h == nil && l == nil) || (l != nil && l.LessThan(decimal.NewFromInt(10)) && g.pct(75)) {
		big := decimal.NewFromInt(30).Add(g.money(decimal.NewFromInt(120)))
		op.upd.limit = &big
	}
	if caps {
		var cur []budget.ModelCap
		if h != nil {
			cur = h.scopes.caps
		}
		cs := g.caps(cur)
		op.upd.caps = &cs
	}
	switch {
	case g.pct(98):
	case g.pct(40):
		bad := decimal.NewFromInt(-1)
		op.upd.limit, op.invalid = &bad, true
	case g.pct(50):
		cs := []budget.ModelCap{{Pattern: "gpt-[4]o", Limit: decimal.NewFromInt(1)}}
		op.upd.caps, op.invalid = &cs, true
	default:
		cs := []budget.ModelCap{{Pattern: "gpt-4o", Limit: decimal.NewFromInt(-1)}}
		op.upd.caps, op.invalid = &cs, true
	}
}

// caps draws a holder's new model caps: none, a few with overlapping
// patterns, or the current ones with one limit changed.
func (g *modelGen) caps(cur []budget.ModelCap) []budget.ModelCap {
	if len(cur) > 0 && g.pct(30) {
		out := slices.Clone(cur)
		i := g.rng.IntN(len(out))
		out[i].Limit = g.capLimit()
		return out
	}
	var out []budget.ModelCap
	for _, i := range g.rng.Perm(len(modelCapPatterns))[:g.rng.IntN(4)] {
		out = append(out, budget.ModelCap{Pattern: modelCapPatterns[i], Limit: g.capLimit()})
	}
	if out == nil && g.pct(50) {
		out = []budget.ModelCap{} // an empty list removes them all too
	}
	return out
}

func (g *modelGen) capLimit() decimal.Decimal {
	if g.pct(5) {
		return decimal.Zero
	}
	return g.money(decimal.NewFromInt(12))
}

// capsApply reports whether a call of u must name its model: u or one of
// the teams or orgs its calls spend has model caps.
func (m *refModel) capsApply(u *refUser) bool {
	if u == nil {
		return false
	}
	if len(u.scopes.caps) > 0 {
		return true
	}
	orgs := []string{u.scopes.org}
	for _, t := range u.scopes.teams {
		h := m.holder(budget.Team(t))
		if len(h.scopes.caps) > 0 {
			return true
		}
		orgs = append(orgs, h.scopes.org)
	}
	for _, o := range orgs {
		if h := m.holder(budget.Org(o)); o != "" && len(h.scopes.caps) > 0 {
			return true
		}
	}
	return false
}

// callModel draws the model a reserve or record names: mostly one when a
// cap applies, now and then none (refused as invalid).
func (g *modelGen) callModel(r *seqRun, user string) (provider, model string) {
	p := 25
	if r.ref.capsApply(r.ref.users[user]) {
		p = 92
	}
	if !g.pct(p) {
		return "", ""
	}
	l := modelCapModels[g.rng.IntN(len(modelCapModels))]
	return l[0], l[1]
}

// roomFor returns the least limit and remaining budget of the budgets
// beyond u's own that a call naming model would spend, as far as the model
// can tell before the operation (ok false when there are none).
func (m *refModel) roomFor(u *refUser, model string, now time.Time) (limit, rem decimal.Decimal, ok bool) {
	consider := func(b *refUser, p budget.Plan, w budget.Window) {
		if !p.Enforce {
			return
		}
		held := decimal.Zero
		for _, h := range b.live {
			if now.Before(h.expires) {
				held = held.Add(h.amount)
			}
		}
		r := p.Limit.Sub(b.spentIn(w)).Sub(held)
		if !ok || r.LessThan(rem) {
			limit, rem, ok = p.Limit, r, true
		}
	}
	capsOf := func(h *refUser) {
		for _, c := range h.scopes.caps {
			if model == "" || !refMatch(c.Pattern, model) {
				continue
			}
			b := m.caps[h.scope.CapKey(c.Pattern)]
			if b == nil {
				b = &refUser{sorted: true}
			}
			p := h.plan
			p.Limit = c.Limit
			consider(b, p, m.window(h, now))
		}
	}
	if u == nil {
		return
	}
	capsOf(u)
	orgs := []string{u.scopes.org}
	for _, t := range u.scopes.teams {
		h := m.holder(budget.Team(t))
		consider(h, h.plan, m.window(h, now))
		capsOf(h)
		orgs = append(orgs, h.scopes.org)
	}
	seen := map[string]bool{}
	for _, o := range orgs {
		if o == "" || seen[o] {
			continue
		}
		seen[o] = true
		h := m.holder(budget.Org(o))
		consider(h, h.plan, m.window(h, now))
		capsOf(h)
	}
	return
}

// holderClock aims the clock at the end of a team's or org's period.
func (g *modelGen) holderClock(r *seqRun, now time.Time) (time.Time, string, bool) {
	hs := r.ref.sortedHolders()
	if len(hs) == 0 {
		return time.Time{}, "", false
	}
	h := hs[g.rng.IntN(len(hs))]
	near := []time.Duration{-time.Second, -1, 0, 0, 1, time.Minute}
	return r.ref.window(h, now).End.Add(near[g.rng.IntN(len(near))]), fmt.Sprintf("the end of %v's period", h.scope), true
}
