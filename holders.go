package budget

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ReserveOption adds to what Reserve knows about a call; WithModel makes
// one. It is a value, not a function, so that passing one costs no
// allocation.
type ReserveOption struct{ model string }

// WithModel names the model the call will use. Model caps whose pattern
// matches it apply to the call, and its Settle must report the same model
// (or none). When any budget that applies has model caps, Reserve needs
// it: a call that names no model is refused rather than let past a cap.
func WithModel(model string) ReserveOption { return ReserveOption{model: model} }

// capRule is a model cap as the Manager applies it, computed once per
// settings: the cap's store key, limit and alert levels.
type capRule struct {
	pattern string
	key     string
	limit   Nanos
	levels  [3]Nanos
}

// capRules returns the rules of s's model caps. Settings read from a store
// were validated when written; a cap whose limit no longer converts counts
// as a limit of zero, so that it fails closed rather than let calls pass.
func capRules(s *Settings) []capRule {
	if len(s.ModelCaps) == 0 {
		return nil
	}
	out := make([]capRule, 0, len(s.ModelCaps))
	for _, cp := range s.ModelCaps {
		lim, err := ToNanos(cp.Limit)
		if err != nil {
			lim = 0
		}
		out = append(out, capRule{pattern: cp.Pattern, key: s.UserID + keySep + cp.Pattern, limit: lim, levels: levels(s.Thresholds, lim)})
	}
	return out
}

// held is one budget beyond the user's own that a call spends: a holder's
// own budget (rule nil) or one of its model caps.
type held struct {
	holder *cached // the holder's settings and policy
	rule   *capRule
}

// keyPolicy returns what the store needs to decide h's budget.
func (h held) keyPolicy() KeyPolicy {
	if h.rule == nil {
		return KeyPolicy{Key: h.holder.s.UserID, Policy: h.holder.p}
	}
	p := h.holder.p
	p.Limit, p.Levels = h.rule.limit, h.rule.levels
	return KeyPolicy{Key: h.rule.key, Cap: true, Policy: p}
}

// scope returns the holder of h's budget.
func (h held) scope() Scope {
	s, _ := ScopeOfKey(h.holder.s.UserID)
	return s
}

// heldBy returns the budgets beyond the user's own that a call by the user
// whose settings are in c spends: each of their teams, their org and each
// team's org (once each), and at each of those levels and the user's own
// the model caps whose pattern matches model (every cap when all is set).
// A holder with caps and a call without a model is an error.
func (m *Manager) heldBy(ctx context.Context, c *cached, model string, all bool, now time.Time, reload bool) ([]held, error) {
	s := &c.s
	if len(s.Teams) == 0 && s.Org == "" && len(c.caps) == 0 {
		return nil, nil
	}
	out := make([]held, 0, 1+2*len(s.Teams)+len(c.caps))
	out, err := appendCaps(out, c, model, all)
	if err != nil {
		return nil, unnamed(err, reload)
	}
	var orgBuf [4]string
	orgs := orgBuf[:0] // keys
	for _, key := range c.teamKeys {
		h, err := m.account(ctx, key, now, reload)
		if err != nil {
			return nil, err
		}
		if out, err = appendCaps(append(out, held{holder: h}), h, model, all); err != nil {
			return nil, unnamed(err, reload)
		}
		if o := h.orgKey; o != "" && !slices.Contains(orgs, o) {
			orgs = append(orgs, o)
		}
	}
	if o := c.orgKey; o != "" && !slices.Contains(orgs, o) {
		orgs = append(orgs, o)
	}
	for _, key := range orgs {
		h, err := m.account(ctx, key, now, reload)
		if err != nil {
			return nil, err
		}
		if out, err = appendCaps(append(out, held{holder: h}), h, model, all); err != nil {
			return nil, unnamed(err, reload)
		}
	}
	return out, nil
}

// spends is what cached.spends remembers: the budgets beyond the user's
// own that a call of model spent, and their store view.
type spends struct {
	model string
	hs    []held
	also  []KeyPolicy
}

// spentBy returns heldBy(ctx, c, model, false, now, reload) and its store
// view. The lists are shared, never changed once made: the last ones made
// for c are reused while the call names the same model and every holder's
// cache entry is the one they were made from with a window that holds now
// (c itself, and so the user's teams, org and caps, cannot change: a
// change makes a new entry).
func (m *Manager) spentBy(ctx context.Context, c *cached, model string, now time.Time, reload bool) ([]held, []KeyPolicy, error) {
	if sp := c.spends.Load(); sp != nil && !reload && sp.model == model && m.fresh(sp.hs, now) {
		return sp.hs, sp.also, nil
	}
	hs, err := m.heldBy(ctx, c, model, false, now, reload)
	if err != nil || hs == nil {
		return hs, nil, err
	}
	sp := &spends{model: model, hs: hs, also: alsoOf(hs)}
	c.spends.Store(sp)
	return sp.hs, sp.also, nil
}

// errCapsUnread is what heldBy returns for a call without a model under
// caps it read from the cache: another Manager may have dropped the caps,
// and only the store can say. It wraps ErrConflict, so that withPolicy
// reads the settings again and asks once more.
var errCapsUnread = fmt.Errorf("%w: model caps read from the cache", ErrConflict)

// unnamed returns err, appendCaps' refusal of a call without a model, when
// the caps were read from the store (reload), else errCapsUnread.
func unnamed(err error, reload bool) error {
	if reload {
		return err
	}
	return errCapsUnread
}

// appendCaps appends the caps of h that apply to a call of model (every
// one when all is set).
func appendCaps(out []held, h *cached, model string, all bool) ([]held, error) {
	for i := range h.caps {
		r := &h.caps[i]
		switch {
		case all:
		case model == "":
			// Checked before matching: a cap on "*" matches the empty
			// name, and a call that names no model must not pass as
			// one that does.
			scope, _ := ScopeOfKey(h.s.UserID)
			return nil, &ValidationError{Field: "model", Reason: fmt.Sprintf("%s has model caps: name the call's model (WithModel)", scope)}
		case !MatchModel(r.pattern, model):
			continue
		}
		out = append(out, held{holder: h, rule: r})
	}
	return out, nil
}

// holder returns a team's or org's settings and policy at now, from the
// cache when fresh. A holder without settings is ErrNotFound: teams and
// orgs are created by UpdateBudget, never on first use.
func (m *Manager) holder(ctx context.Context, scope Scope, now time.Time, reload bool) (*cached, error) {
	return m.account(ctx, scope.Key(), now, reload)
}

// alsoOf returns the store's view of hs.
func alsoOf(hs []held) []KeyPolicy {
	if len(hs) == 0 {
		return nil
	}
	out := make([]KeyPolicy, len(hs))
	for i, h := range hs {
		out[i] = h.keyPolicy()
	}
	return out
}

// current returns the budgets hs of a reservation (and also, their store
// view) with each holder's settings and policy at now: hs itself while
// every holder's cache entry is the one hs has and its window holds now,
// else read again (from the store when reload is set). A cap the holder
// no longer has keeps the limit it had when the hold was placed, so that
// the hold settles and releases against exactly the budgets it is on.
func (m *Manager) current(ctx context.Context, hs []held, also []KeyPolicy, now time.Time, reload bool) ([]held, []KeyPolicy, error) {
	if !reload && m.fresh(hs, now) {
		return hs, also, nil
	}
	out := make([]held, len(hs))
	for i, h := range hs {
		c, err := m.holder(ctx, h.scope(), now, reload)
		if err != nil {
			return nil, nil, err
		}
		if h.rule != nil {
			if j := slices.IndexFunc(c.caps, func(r capRule) bool { return r.pattern == h.rule.pattern }); j >= 0 {
				h.rule = &c.caps[j]
			}
		}
		h.holder = c
		out[i] = h
	}
	return out, alsoOf(out), nil
}

// fresh reports whether every holder of hs is still cached as hs has it,
// with a window that holds now.
func (m *Manager) fresh(hs []held, now time.Time) bool {
	for _, h := range hs {
		v, ok := m.cache.Load(h.holder.s.UserID)
		if !ok || v.(*cached) != h.holder || !h.holder.p.Window.Contains(now) {
			return false
		}
	}
	return true
}

// status returns the status of h's budget from its totals.
func (h held) status(t Totals) Status {
	if h.rule == nil {
		return newStatus(h.holder, t)
	}
	c := cached{s: h.holder.s, p: h.keyPolicy().Policy}
	c.s.Limit = h.rule.limit.Decimal()
	st := newStatus(&c, t)
	st.Pattern = h.rule.pattern
	return st
}

// budgetsOf returns the statuses of the user's own budget (st) and of hs,
// with the binding one marked: the enforced budget with the least room
// left, the user's own on a tie.
func budgetsOf(st Status, hs []held, t Totals) []Status {
	if len(hs) == 0 || len(t.Also) != len(hs) {
		return nil
	}
	out := make([]Status, 0, 1+len(hs))
	out = append(out, st)
	for i, h := range hs {
		out = append(out, h.status(t.Also[i]))
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

// refusal returns the *LimitError of a refused Reserve: the budget that
// refused it, the one with the least room of those that could not hold
// amount (the user's own on a tie).
func refusal(userID string, c *cached, hs []held, t Totals, amount Nanos) *LimitError {
	type cand struct {
		st   Status
		room Nanos
	}
	var best *cand
	consider := func(p Policy, tt Totals, st func() Status) {
		if p.Allows(tt.Spent, tt.Held, amount) {
			return
		}
		room := p.Limit - tt.Spent - tt.Held
		if best == nil || room < best.room {
			best = &cand{st(), room}
		}
	}
	consider(c.p, t, func() Status { return newStatus(c, t) })
	for i, h := range hs {
		if i < len(t.Also) {
			consider(h.keyPolicy().Policy, t.Also[i], func() Status { return h.status(t.Also[i]) })
		}
	}
	if best == nil { // no budget says no: the user's own is reported
		best = &cand{st: newStatus(c, t)}
	}
	return &LimitError{
		UserID: userID, Scope: best.st.Scope, Pattern: best.st.Pattern,
		Limit: best.st.Limit, Spent: best.st.Spent, Reserved: best.st.Reserved,
		Requested: amount.Decimal(), PeriodEnd: best.st.PeriodEnd,
	}
}

// fireHeld reports the levels a call by userID newly marked on the budgets
// beyond the user's own.
func (m *Manager) fireHeld(userID string, hs []held, t Totals, at time.Time) {
	for i, h := range hs {
		if i < len(t.Also) && t.Also[i].Alerts != 0 {
			m.fireFor(userID, h.status(t.Also[i]), t.Also[i].Alerts, at)
		}
	}
}

// alsoRoom returns room for the Totals.Also of a store call over also (its
// AlsoTotals), lent from m.totals and kept in *lent, which a retried call
// reuses; nil when also is empty. Give it back with m.giveBack(*lent) once
// the call's Totals are read.
func (m *Manager) alsoRoom(lent **[]Totals, also []KeyPolicy) []Totals {
	n := len(also)
	if n == 0 {
		return nil
	}
	if *lent == nil || cap(**lent) < n {
		m.giveBack(*lent)
		p, _ := m.totals.Get().(*[]Totals)
		if p == nil || cap(*p) < n {
			room := make([]Totals, 0, max(n, 4))
			p = &room
		}
		*lent = p
	}
	return **lent
}

// giveBack returns room that alsoRoom lent.
func (m *Manager) giveBack(p *[]Totals) {
	if p != nil {
		m.totals.Put(p)
	}
}

// Scope returns the holder whose settings s are.
func (s Settings) Scope() Scope {
	sc, _ := ScopeOfKey(s.UserID)
	return sc
}

// UpdateBudget applies a partial update to the budget of scope on behalf of
// actor, as UpdateSettings does for a user (for whom it is UpdateSettings).
// Only admins manage a team's or an org's budget; its first update creates
// it from the defaults for new regular users, without permissions, which
// only users' budgets have. The settings returned name the holder by its
// key in UserID (see Settings.Scope).
//
// Model caps (u.ModelCaps) apply to a user's calls from their next
// Reserve; they are counted in their holder's period.
func (m *Manager) UpdateBudget(ctx context.Context, actor Principal, scope Scope, u SettingsUpdate) (_ Settings, err error) {
	ctx, span := m.tel.start(ctx, spanUpdateSettings, scope.String(), &actor)
	defer m.tel.end(span, &err)
	if err := scope.Validate(); err != nil {
		return Settings{}, err
	}
	if scope.Kind == UserScope {
		s, _, err := m.update(ctx, actor, scope.ID, u, how{})
		return s, err
	}
	if err := CanAdminister(actor); err != nil {
		return Settings{}, err
	}
	s, _, err := m.updateKey(ctx, actor, scope.Key(), u, how{})
	return s, err
}

// BudgetSettings returns the settings of the budget of scope on behalf of
// actor, who must be allowed to see it (CanView): admins any, users their
// own. A team or org without settings is ErrNotFound.
func (m *Manager) BudgetSettings(ctx context.Context, actor Principal, scope Scope) (Settings, error) {
	if err := scope.Validate(); err != nil {
		return Settings{}, err
	}
	if scope.Kind == UserScope {
		s, err := m.Lookup(ctx, scope.ID)
		if err != nil {
			return Settings{}, err
		}
		return s, CanView(actor, s)
	}
	if err := CanAdminister(actor); err != nil {
		return Settings{}, err
	}
	c, err := m.holder(ctx, scope, m.now(), true)
	if err != nil {
		return Settings{}, err
	}
	return withPeriod(c.s, c.p.Window), nil
}

// SetMembership puts a user in exactly the teams and org of ms, on behalf
// of actor (admins only). Every team and the org must exist (UpdateBudget
// creates them); a user belongs to at most MaxTeamsPerUser teams. The
// change is versioned and audited like any settings change, and takes
// effect on the user's next call: a hold already placed settles and
// releases against exactly the budgets it was placed on.
func (m *Manager) SetMembership(ctx context.Context, actor Principal, userID string, ms Membership) (_ Settings, err error) {
	ctx, span := m.tel.start(ctx, spanUpdateSettings, userID, &actor)
	defer m.tel.end(span, &err)
	if err := CanAdminister(actor); err != nil {
		return Settings{}, err
	}
	ms, err = ms.normalize()
	if err != nil {
		return Settings{}, err
	}
	for _, t := range ms.Teams {
		if err := m.exists(ctx, Team(t), "teams"); err != nil {
			return Settings{}, err
		}
	}
	if ms.Org != "" {
		if err := m.exists(ctx, Org(ms.Org), "org"); err != nil {
			return Settings{}, err
		}
	}
	s, _, err := m.update(ctx, actor, userID, SettingsUpdate{IfVersion: ms.IfVersion}, how{edit: func(_ Settings, next *Settings) error {
		next.Teams, next.Org = ms.Teams, ms.Org
		return nil
	}})
	return s, err
}

// AddToTeam puts a user with settings in one more team, keeping their
// other teams and their org, on behalf of actor (admins only). The team
// must exist. The change is made on the settings as stored when it
// commits, so that two concurrent changes of the same user's membership
// both count; a user already in the team is left as is, and one in
// MaxTeamsPerUser teams already is refused (a *ValidationError on
// "teams"). Versioned, audited and in effect like SetMembership.
func (m *Manager) AddToTeam(ctx context.Context, actor Principal, userID, teamID string) (_ Settings, err error) {
	ctx, span := m.tel.start(ctx, spanUpdateSettings, userID, &actor)
	defer m.tel.end(span, &err)
	return m.changeTeams(ctx, actor, userID, teamID, true, func(teams []string) ([]string, error) {
		if slices.Contains(teams, teamID) {
			return teams, nil
		}
		ms, err := Membership{Teams: append(slices.Clone(teams), teamID)}.normalize()
		return ms.Teams, err
	})
}

// RemoveFromTeam takes a user out of one team, keeping their other teams
// and their org, on behalf of actor (admins only), on the settings as
// stored when the change commits (like AddToTeam). A user who is not in
// the team is ErrNotFound. Holds already placed on the team settle and
// release against it.
func (m *Manager) RemoveFromTeam(ctx context.Context, actor Principal, userID, teamID string) (_ Settings, err error) {
	ctx, span := m.tel.start(ctx, spanUpdateSettings, userID, &actor)
	defer m.tel.end(span, &err)
	return m.changeTeams(ctx, actor, userID, teamID, false, func(teams []string) ([]string, error) {
		i := slices.Index(teams, teamID)
		if i < 0 {
			return nil, fmt.Errorf("%w: user %q is not in team %q", ErrNotFound, userID, teamID)
		}
		return slices.Delete(slices.Clone(teams), i, i+1), nil
	})
}

// changeTeams is AddToTeam and RemoveFromTeam after their span: it checks
// actor and teamID (and, with mustExist, that the team has a budget), then
// sets the user's teams to what change makes of the teams stored when the
// change commits, keeping their org.
func (m *Manager) changeTeams(ctx context.Context, actor Principal, userID, teamID string, mustExist bool, change func(teams []string) ([]string, error)) (Settings, error) {
	if err := CanAdminister(actor); err != nil {
		return Settings{}, err
	}
	if err := Team(teamID).Validate(); err != nil {
		return Settings{}, err
	}
	if mustExist {
		if err := m.exists(ctx, Team(teamID), "team"); err != nil {
			return Settings{}, err
		}
	}
	s, _, err := m.update(ctx, actor, userID, SettingsUpdate{}, how{existing: true, edit: func(cur Settings, next *Settings) error {
		teams, err := change(cur.Teams)
		if err != nil {
			return err
		}
		next.Teams = teams
		return nil
	}})
	return s, err
}

// SetTeamOrg puts a team in an org, or takes it out of its org when orgID
// is empty, on behalf of actor (admins only). A team belongs to at most one
// org: moving it to another takes it out first (SetTeamOrg with ""), so
// that no call moves a team between orgs by mistake. Both must exist.
func (m *Manager) SetTeamOrg(ctx context.Context, actor Principal, teamID, orgID string) (_ Settings, err error) {
	ctx, span := m.tel.start(ctx, spanUpdateSettings, Team(teamID).String(), &actor)
	defer m.tel.end(span, &err)
	if err := CanAdminister(actor); err != nil {
		return Settings{}, err
	}
	if err := Team(teamID).Validate(); err != nil {
		return Settings{}, err
	}
	if orgID != "" {
		if err := m.exists(ctx, Org(orgID), "org"); err != nil {
			return Settings{}, err
		}
	}
	s, _, err := m.updateKey(ctx, actor, Team(teamID).Key(), SettingsUpdate{}, how{existing: true, edit: func(cur Settings, next *Settings) error {
		if cur.Org != "" && orgID != "" && cur.Org != orgID {
			return &ValidationError{Field: "org", Reason: fmt.Sprintf("team %q is in org %q: a team belongs to one org; take it out first", teamID, cur.Org)}
		}
		next.Org = orgID
		return nil
	}})
	return s, err
}

// exists returns nil when the team or org has settings, else an error
// wrapping ErrInvalid that names field.
func (m *Manager) exists(ctx context.Context, scope Scope, field string) error {
	_, err := m.store.Settings(ctx, scope.Key())
	if errors.Is(err, ErrNotFound) {
		return &ValidationError{Field: field, Reason: fmt.Sprintf("no %s %q: create it with UpdateBudget first", scope.Kind, scope.ID)}
	}
	return err
}

// BudgetStatus returns where the budget of scope stands now: for a user,
// Status; for a team or an org its own figures, with its model caps in
// Budgets. A period that ended rolls over here, as for users.
func (m *Manager) BudgetStatus(ctx context.Context, scope Scope) (_ Status, err error) {
	if err := scope.Validate(); err != nil {
		return Status{}, err
	}
	if scope.Kind == UserScope {
		return m.Status(ctx, scope.ID)
	}
	ctx, span := m.tel.start(ctx, spanStatus, scope.String(), nil)
	defer m.tel.end(span, &err)
	now := m.now()
	for attempt := 0; ; attempt++ {
		c, err := m.holder(ctx, scope, now, attempt > 0)
		if err != nil {
			return Status{}, err
		}
		caps, _ := appendCaps(nil, c, "", true)
		t, err := m.store.Totals(ctx, TotalsRequest{UserID: c.s.UserID, Policy: c.p, Now: now, Also: alsoOf(caps)})
		if errors.Is(err, ErrConflict) && attempt < maxRetries {
			continue
		}
		if err != nil {
			return Status{}, fmt.Errorf("budget: status of %s: %w", scope, err)
		}
		st := newStatus(c, t)
		m.fireFor("", st, t.Alerts, now)
		m.fireHeld("", caps, t, now)
		st.Budgets = budgetsOf(st, caps, t)
		if err := m.withForecast(ctx, c, t, &st, "", now); err != nil {
			return Status{}, err
		}
		return st, nil
	}
}

// Members returns, on behalf of actor (admins only), who belongs to a team
// (its users) or an org (its users, then its teams), in ID order. It reads
// every user's settings: an admin query, not one for the call path.
func (m *Manager) Members(ctx context.Context, actor Principal, scope Scope) ([]Scope, error) {
	if err := CanAdminister(actor); err != nil {
		return nil, err
	}
	if err := scope.Validate(); err != nil {
		return nil, err
	}
	if scope.Kind == UserScope {
		return nil, &ValidationError{Field: "scope", Reason: "only teams and orgs have members"}
	}
	if err := m.exists(ctx, scope, string(scope.Kind)+"_id"); err != nil {
		return nil, err
	}
	var out []Scope
	now := m.now()
	err := m.accountsOf(ctx, UserScope, now, func(a Account) error {
		if (scope.Kind == TeamScope && slices.Contains(a.Settings.Teams, scope.ID)) || (scope.Kind == OrgScope && a.Settings.Org == scope.ID) {
			out = append(out, User(a.Settings.UserID))
		}
		return nil
	})
	if err == nil && scope.Kind == OrgScope {
		err = m.accountsOf(ctx, TeamScope, now, func(a Account) error {
			if a.Settings.Org == scope.ID {
				out = append(out, a.Settings.Scope())
			}
			return nil
		})
	}
	return out, err
}
