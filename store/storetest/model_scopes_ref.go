package storetest

// The reference model's budgets beyond a user's own: teams, orgs and model
// caps. Like the rest of model_ref.go it is written from the documented
// rules, not from the Manager's code: a call by a user spends, besides
// their own budget, each of their teams', their org's and each team's
// org's (once each), and at each of those levels and the user's own, the
// caps whose pattern matches the call's model. All of them are checked and
// held at once; a hold closes on exactly the budgets it was placed on.
// A team's or org's budget is a refUser keyed by its Scope.Key; a cap's
// counters are a refUser keyed by its CapKey, with its holder's plan and
// window and the cap's limit.

import (
	"slices"
	"time"
	"unicode/utf8"

	"github.com/llmbudget/budget"
	"github.com/shopspring/decimal"
)

// refScopes are what places a user (teams, org) or a team (org) and what
// caps a holder (caps).
type refScopes struct {
	teams []string // sorted
	org   string
	caps  []budget.ModelCap
}

func (a refScopes) equal(b refScopes) bool {
	return slices.Equal(a.teams, b.teams) && a.org == b.org &&
		slices.EqualFunc(a.caps, b.caps, func(x, y budget.ModelCap) bool { return x.Pattern == y.Pattern && x.Limit.Equal(y.Limit) })
}

// refHeld is one budget beyond the user's own that a call spends: a team's
// or org's own (pattern empty, b == holder) or one of a holder's caps.
type refHeld struct {
	b       *refUser
	holder  *refUser
	pattern string
	limit   decimal.Decimal // a cap's limit in this call
	// placed are the holder's thresholds when the hold was placed; a cap
	// the holder has dropped since keeps them with its limit (kept).
	placed budget.Thresholds
	kept   bool
}

// whose returns the user a budget belongs to ("" for a team's or an
// org's, and for their caps) and its holder.
func (u *refUser) whose() (string, budget.Scope) {
	if u.holder != nil {
		return u.holder.whose()
	}
	if u.scope.Kind == budget.UserScope || u.scope.Kind == "" {
		return u.id, budget.User(u.id)
	}
	return "", u.scope
}

// under returns the row as the budget of another key records it for
// owner.
func (r refRow) under(owner string) refRow {
	r.owner = owner
	return r
}

// refMatch reports whether model matches pattern: '*' is any run of
// characters, '?' any one, every other character itself. (A plain
// backtracking matcher: the run's patterns have a star or two.)
func refMatch(pattern, model string) bool {
	for pattern != "" {
		c, n := utf8.DecodeRuneInString(pattern)
		pattern = pattern[n:]
		switch c {
		case '*':
			for i := 0; ; {
				if refMatch(pattern, model[i:]) {
					return true
				}
				if i == len(model) {
					return false
				}
				_, m := utf8.DecodeRuneInString(model[i:])
				i += m
			}
		case '?':
			if model == "" {
				return false
			}
			_, m := utf8.DecodeRuneInString(model)
			model = model[m:]
		default:
			d, m := utf8.DecodeRuneInString(model)
			if model == "" || d != c {
				return false
			}
			model = model[m:]
		}
	}
	return model == ""
}

// holder returns the team's or org's budget, or nil when it has none yet.
func (m *refModel) holder(s budget.Scope) *refUser { return m.holders[s.Key()] }

// newHolder creates a team's or org's budget from the defaults for new
// regular users, without permissions, as its first UpdateBudget does.
func (m *refModel) newHolder(s budget.Scope, now time.Time) *refUser {
	p := m.userPlan
	if m.defaults != nil {
		p = *m.defaults
	}
	p.Permissions = budget.Permissions{}
	if p.Period == budget.Custom && p.CustomAnchor.IsZero() {
		p.CustomAnchor = localMidnight(now, m.loc(p.Timezone))
	}
	u := &refUser{
		id: s.Key(), scope: s, plan: p, version: 1, marked: map[budget.Level]bool{},
		ids: map[string]bool{}, holds: map[string]*refHold{}, live: map[string]*refHold{}, sorted: true,
	}
	u.window = m.window(u, now)
	m.holders[u.id] = u
	return u
}

// capOf returns the counters of holder's cap on pattern, made on first use
// (with no window yet: the first call that spends it sets one).
func (m *refModel) capOf(holder *refUser, pattern string) *refUser {
	key := holder.scope.CapKey(pattern)
	if b := m.caps[key]; b != nil {
		return b
	}
	b := &refUser{
		id: key, holder: holder, pattern: pattern, scope: holder.scope, marked: map[budget.Level]bool{},
		ids: map[string]bool{}, holds: map[string]*refHold{}, live: map[string]*refHold{}, sorted: true,
	}
	m.caps[key] = b
	return b
}

// hasCaps reports whether any cap of holder ever had counters.
func (m *refModel) hasCaps(holder *refUser) bool {
	for _, b := range m.caps {
		if b.holder == holder {
			return true
		}
	}
	return false
}

// heldBy returns the budgets beyond u's own that a call of u naming model
// spends: each team (in ID order) with its caps that match, then each org
// (the teams' orgs, then the user's, once each) with its caps; the user's
// own caps come first. With all, every cap counts, whatever the model (a
// Status). A holder with caps and a call naming no model is refused: ok is
// false.
func (m *refModel) heldBy(u *refUser, model string, all bool) (hs []refHeld, ok bool) {
	addCaps := func(h *refUser) bool {
		for _, c := range h.scopes.caps {
			if !all && model == "" {
				return false
			}
			if all || refMatch(c.Pattern, model) {
				hs = append(hs, refHeld{b: m.capOf(h, c.Pattern), holder: h, pattern: c.Pattern, limit: c.Limit, placed: h.plan.Thresholds})
			}
		}
		return true
	}
	if !addCaps(u) {
		return nil, false
	}
	var orgs []string
	for _, t := range u.scopes.teams {
		h := m.holder(budget.Team(t))
		hs = append(hs, refHeld{b: h, holder: h})
		if !addCaps(h) {
			return nil, false
		}
		if o := h.scopes.org; o != "" && !slices.Contains(orgs, o) {
			orgs = append(orgs, o)
		}
	}
	if o := u.scopes.org; o != "" && !slices.Contains(orgs, o) {
		orgs = append(orgs, o)
	}
	for _, o := range orgs {
		h := m.holder(budget.Org(o))
		hs = append(hs, refHeld{b: h, holder: h})
		if !addCaps(h) {
			return nil, false
		}
	}
	return hs, true
}

// heldOf returns the budgets beyond u's own that hold holdID is on, as a
// call closing or extending it sees them: each holder's plan as it is now,
// and each cap's limit as it is now, or the one it had when the hold was
// placed if its holder has dropped it. A dropped cap also keeps the alert
// levels it had (the holder's thresholds then): the Manager keeps the
// whole cap as it applied it (the documentation speaks of the limit only).
func (m *refModel) heldOf(u *refUser, holdID string) []refHeld {
	h := u.holds[holdID]
	if h == nil {
		return nil
	}
	out := slices.Clone(h.also)
	for i, x := range out {
		if x.pattern == "" {
			continue
		}
		if j := slices.IndexFunc(x.holder.scopes.caps, func(c budget.ModelCap) bool { return c.Pattern == x.pattern }); j >= 0 {
			out[i].limit = x.holder.scopes.caps[j].Limit
		} else {
			out[i].kept = true
		}
	}
	return out
}

// beginHeld is begin for the budgets of hs. A cap has its holder's plan
// with its own limit, and its holder's window: it moves with it (and is
// never audited: it has no settings).
func (m *refModel) beginHeld(hs []refHeld, now time.Time) {
	for _, x := range hs {
		b := x.b
		if x.pattern == "" {
			m.advance(b, m.window(b, now), b.plan.Limit, now)
		} else {
			b.plan = x.holder.plan
			b.plan.Limit = x.limit
			if x.kept {
				b.plan.Thresholds = x.placed
			}
			if w := m.window(x.holder, now); !b.window.Start.Equal(w.Start) || !b.window.End.Equal(w.End) {
				b.window, b.marked = w, map[budget.Level]bool{}
			}
		}
		m.expire(b, now)
	}
}

// finishHeld is finish for the budgets of hs, in a call of u.
func (m *refModel) finishHeld(u *refUser, hs []refHeld, now time.Time, report bool) {
	caller, _ := u.whose()
	for _, x := range hs {
		m.finishFor(x.b, caller, now, report)
	}
}

// refuser returns the budget that refuses a hold of amount, or nil when
// every budget takes it: of the enforced ones it would take past their
// limit, the one with the least room left, the first (the user's own) on
// a tie.
func (m *refModel) refuser(u *refUser, hs []refHeld, amount decimal.Decimal) *refUser {
	var (
		best *refUser
		room decimal.Decimal
	)
	consider := func(b *refUser) {
		if !b.plan.Enforce {
			return
		}
		r := b.plan.Limit.Sub(b.spent()).Sub(b.held())
		if r.Sub(amount).Sign() >= 0 {
			return
		}
		if best == nil || r.LessThan(room) {
			best, room = b, r
		}
	}
	consider(u)
	for _, x := range hs {
		consider(x.b)
	}
	return best
}

// budgets is Status.Budgets of u's call spending hs: u's own status and
// each of hs's, the binding one (the enforced one with the least
// remaining, the first on a tie) marked; nil without hs.
func (m *refModel) budgets(u *refUser, hs []refHeld) []budget.Status {
	if len(hs) == 0 {
		return nil
	}
	out := []budget.Status{m.status(u)}
	for _, x := range hs {
		out = append(out, m.status(x.b))
	}
	bind := -1
	for i, b := range out {
		if b.Enforced && (bind < 0 || b.Remaining.LessThan(out[bind].Remaining)) {
			bind = i
		}
	}
	if bind >= 0 {
		out[bind].Binding = true
	}
	return out
}

// statusWith is the status a call of u spending hs returns.
func (m *refModel) statusWith(u *refUser, hs []refHeld) budget.Status {
	st := m.status(u)
	st.Budgets = m.budgets(u, hs)
	return st
}

// capsOf returns every cap of holder h as a budget of a call.
func (m *refModel) capsOf(h *refUser) []refHeld {
	var hs []refHeld
	for _, c := range h.scopes.caps {
		hs = append(hs, refHeld{b: m.capOf(h, c.Pattern), holder: h, pattern: c.Pattern, limit: c.Limit, placed: h.plan.Thresholds})
	}
	return hs
}

// budgetStatus is BudgetStatus of a team or org: a Totals call on its
// budget and every cap of it, made by no user.
func (m *refModel) budgetStatus(h *refUser, now time.Time, report bool) budget.Status {
	hs := m.capsOf(h)
	m.begin(h, now)
	m.beginHeld(hs, now)
	m.finishFor(h, "", now, report)
	for _, x := range hs {
		m.finishFor(x.b, "", now, report)
	}
	return m.statusWith(h, hs)
}

// members is what Members returns for a team or an org: its users in ID
// order, then, for an org, its teams in ID order.
func (m *refModel) members(s budget.Scope) []budget.Scope {
	var out []budget.Scope
	for _, u := range m.sortedUsers() {
		if (s.Kind == budget.TeamScope && slices.Contains(u.scopes.teams, s.ID)) || (s.Kind == budget.OrgScope && u.scopes.org == s.ID) {
			out = append(out, budget.User(u.id))
		}
	}
	if s.Kind == budget.OrgScope {
		for _, h := range m.sortedHolders() {
			if h.scope.Kind == budget.TeamScope && h.scopes.org == s.ID {
				out = append(out, h.scope)
			}
		}
	}
	return out
}

// sortedHolders returns the teams and orgs in key order.
func (m *refModel) sortedHolders() []*refUser {
	out := make([]*refUser, 0, len(m.holders))
	for _, h := range m.holders {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b *refUser) int {
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	return out
}

// sortedCaps returns the caps' counters in key order.
func (m *refModel) sortedCaps() []*refUser {
	out := make([]*refUser, 0, len(m.caps))
	for _, b := range m.caps {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b *refUser) int {
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	return out
}

// returned is the status a Settle or Record of u spending hs returns:
// u's own. Status.Budgets belongs to Status (every budget that applies,
// whatever the model); a Settle or Record may leave it out, and when it
// lists them, they are the budgets the call spent.
func (m *refModel) returned(u *refUser, hs []refHeld, got budget.Status) budget.Status {
	if got.Budgets != nil {
		return m.statusWith(u, hs)
	}
	return m.status(u)
}
