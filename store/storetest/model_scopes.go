package storetest

// The sequential run's operations and checks on budgets beyond a user's
// own: UpdateBudget of teams and orgs, SetMembership, SetTeamOrg,
// BudgetStatus and Members, and the looks at the teams and orgs an
// operation touched (their status with their caps, settings and newest
// audit entries), and, in every full check, their whole audit logs and
// the usage rows a store keeps under every team's, org's and cap's key.

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/llmbudget/budget"
)

func (sc refScopes) String() string {
	return fmt.Sprintf("{teams=%v org=%q caps=%s}", sc.teams, sc.org, capsString(sc.caps))
}

func capsString(caps []budget.ModelCap) string {
	var parts []string
	for _, c := range caps {
		parts = append(parts, c.Pattern+":"+c.Limit.String())
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// scopesOf returns the memberships and caps of settings.
func scopesOf(s budget.Settings) refScopes {
	return refScopes{teams: s.Teams, org: s.Org, caps: s.ModelCaps}
}

// alertBudget names the budget of an alert that is not a user's own.
func alertBudget(scope budget.Scope, pattern string) string {
	s := ""
	if scope.Kind != budget.UserScope && scope.Kind != "" {
		s = "@" + scope.String()
	}
	if pattern != "" {
		s += "[" + pattern + "]"
	}
	return s
}

func budgetsString(bs []budget.Status) string {
	var parts []string
	for _, b := range bs {
		s := fmt.Sprintf("%v%s spent %s reserved %s limit %s", b.Scope, alertBudget(budget.Scope{}, b.Pattern), b.Spent, b.Reserved, b.Limit)
		if b.Binding {
			s += " (binding)"
		}
		parts = append(parts, s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func (o mop) scopeString() string {
	switch o.kind {
	case mopMembership:
		return fmt.Sprintf(" %s teams=%v org=%q", o.user, o.teams, o.org)
	case mopTeamOrg:
		return fmt.Sprintf(" %s org=%q", o.scope.ID, o.org)
	case mopBudget:
		s := fmt.Sprintf(" %v %s", o.scope, o.upd)
		if o.invalid {
			s += " (invalid)"
		}
		return s
	}
	return " " + o.scope.String()
}

// touch notes the teams and orgs whose budgets hs spends, to look at
// after the operation.
func (r *seqRun) touch(hs []refHeld) {
	for _, x := range hs {
		if h := x.holder; h.scope.Kind != budget.UserScope && !slices.Contains(r.touched, h) {
			r.touched = append(r.touched, h)
		}
	}
}

func (r *seqRun) touchHolder(h *refUser) {
	if !slices.Contains(r.touched, h) {
		r.touched = append(r.touched, h)
	}
}

// checkTouched looks at every team and org the operation touched.
func (r *seqRun) checkTouched() error {
	hs := slices.Clone(r.touched)
	for _, h := range hs {
		if err := r.checkHolder(h); err != nil {
			return err
		}
	}
	return nil
}

// checkHolder compares a team's or org's status (with its caps), its
// settings and its newest audit entries with the model's.
func (r *seqRun) checkHolder(h *refUser) error {
	now := r.clock.Now()
	st, err := r.mgr.BudgetStatus(ctx, h.scope)
	if err != nil {
		return fmt.Errorf("status of %v: %v", h.scope, err)
	}
	if err := diffStatus("status of "+h.scope.String(), st, r.ref.budgetStatus(h, now, true)); err != nil {
		return err
	}
	if err := r.checkAlerts("the status of " + h.scope.String() + " after the operation"); err != nil {
		return err
	}
	if r.changed {
		s, err := r.mgr.BudgetSettings(ctx, modelRoot, h.scope)
		if err != nil {
			return fmt.Errorf("settings of %v: %v", h.scope, err)
		}
		if err := diffSettings(s, r.ref, h, now); err != nil {
			return err
		}
	}
	n := len(h.audit)
	k := max(1, min(n-r.seenAudit[h.id]+1, n, budget.MaxPageSize))
	ap, err := r.mgr.AuditLog(ctx, modelRoot, budget.AuditLogQuery{Scope: h.scope, Limit: k})
	if err != nil {
		return fmt.Errorf("audit of %v: %v", h.scope, err)
	}
	if len(ap.Entries) != min(k, n) {
		return fmt.Errorf("audit of %v: %d newest entries, want %d (model has %d)", h.scope, len(ap.Entries), min(k, n), n)
	}
	for i, e := range ap.Entries {
		if err := diffAudit(e, h.audit[n-1-i], "audit entry %d of %v", n-i, h.scope); err != nil {
			return err
		}
	}
	r.seenAudit[h.id] = n
	return nil
}

// keyRowCount is the number of usage rows the model has under teams',
// orgs' and caps' keys.
func (r *seqRun) keyRowCount() int {
	n := 0
	for _, b := range r.ref.holders {
		n += len(b.rows)
	}
	for _, b := range r.ref.caps {
		n += len(b.rows)
	}
	return n
}

// sameLog compares the whole audit log (newest first) with the model's
// (oldest first) entry by entry.
func sameLog(got []budget.AuditEntry, want []refAudit) error {
	for i, e := range got {
		w := want[len(want)-1-i]
		if e.UserID != w.user {
			return fmt.Errorf("audit entry %d is of user %q, model says %q", len(want)-i, e.UserID, w.user)
		}
		if err := diffAudit(e, w, "audit entry %d", len(want)-i); err != nil {
			return err
		}
	}
	return nil
}

// doBudget is UpdateBudget of a team or an org, which its first update
// creates from the defaults.
func (r *seqRun) doBudget(op mop, now time.Time) (bool, error) {
	s, err := r.mgr.UpdateBudget(ctx, modelRoot, op.scope, op.upd.settingsUpdate())
	if op.invalid {
		return false, wantKind(err, refInvalid)
	}
	h := r.ref.holder(op.scope)
	if h == nil {
		h = r.ref.newHolder(op.scope, now)
	}
	r.touchHolder(h)
	next := r.ref.apply(h.plan, op.upd, now)
	sc := h.scopes
	if op.upd.caps != nil {
		sc.caps = slices.Clone(*op.upd.caps)
	}
	if refSamePlan(next, h.plan) && sc.equal(h.scopes) {
		if err := wantKind(err, refOK); err != nil {
			return false, err
		}
		return false, diffSettings(s, r.ref, h, now)
	}
	return r.change(h, next, sc, op, s, err, now)
}

// change applies a settings change to u (a user, a team or an org) as
// the operation's fault lets it, and compares the outcome.
func (r *seqRun) change(u *refUser, next budget.Plan, sc refScopes, op mop, s budget.Settings, err error, now time.Time) (bool, error) {
	f := r.effective(op.fault)
	want := r.expectFault(f)
	switch {
	case f.before():
	case f.after():
		r.ref.update(u, next, sc, modelRoot.UserID, now, false)
	default:
		r.ref.update(u, next, sc, modelRoot.UserID, now, true)
	}
	if err := wantKind(err, want); err != nil {
		return true, err
	}
	if want == refOK {
		return true, diffSettings(s, r.ref, u, now)
	}
	return true, nil
}

// doMembership is SetMembership: every team and the org must exist.
func (r *seqRun) doMembership(op mop, now time.Time) (bool, error) {
	s, err := r.mgr.SetMembership(ctx, modelRoot, op.user, budget.Membership{Teams: op.teams, Org: op.org})
	for _, t := range op.teams {
		if r.ref.holder(budget.Team(t)) == nil {
			return false, wantKind(err, refInvalid)
		}
	}
	if op.org != "" && r.ref.holder(budget.Org(op.org)) == nil {
		return false, wantKind(err, refInvalid)
	}
	u := r.ref.user(op.user, now)
	sc := u.scopes
	sc.teams = slices.Compact(slices.Sorted(slices.Values(op.teams)))
	sc.org = op.org
	if sc.equal(u.scopes) {
		if err := wantKind(err, refOK); err != nil {
			return false, err
		}
		return false, diffSettings(s, r.ref, u, now)
	}
	return r.change(u, u.plan, sc, op, s, err, now)
}

// doTeamOrg is SetTeamOrg: the org must exist, and so must the team; a
// team in an org moves to another only through no org.
func (r *seqRun) doTeamOrg(op mop, now time.Time) (bool, error) {
	s, err := r.mgr.SetTeamOrg(ctx, modelRoot, op.scope.ID, op.org)
	if op.org != "" && r.ref.holder(budget.Org(op.org)) == nil {
		return false, wantKind(err, refInvalid)
	}
	h := r.ref.holder(op.scope)
	if h == nil {
		return false, wantKind(err, refNotFound)
	}
	if h.scopes.org != "" && op.org != "" && h.scopes.org != op.org {
		return false, wantKind(err, refInvalid)
	}
	r.touchHolder(h)
	sc := h.scopes
	sc.org = op.org
	if sc.equal(h.scopes) {
		if err := wantKind(err, refOK); err != nil {
			return false, err
		}
		return false, diffSettings(s, r.ref, h, now)
	}
	return r.change(h, h.plan, sc, op, s, err, now)
}

// doBudgetStatus is BudgetStatus of a team or an org.
func (r *seqRun) doBudgetStatus(op mop, now time.Time) (bool, error) {
	st, err := r.mgr.BudgetStatus(ctx, op.scope)
	h := r.ref.holder(op.scope)
	if h == nil {
		return false, wantKind(err, refNotFound)
	}
	f := r.effective(op.fault)
	want := r.expectFault(f)
	var w budget.Status
	switch {
	case f.after():
		r.ref.budgetStatus(h, now, false)
	case want == refOK:
		w = r.ref.budgetStatus(h, now, true)
	}
	if err := wantKind(err, want); err != nil {
		return true, err
	}
	if want == refOK {
		return true, diffStatus("returned status", st, w)
	}
	return true, nil
}

// doMembers is Members of a team or an org.
func (r *seqRun) doMembers(op mop) error {
	got, err := r.mgr.Members(ctx, modelRoot, op.scope)
	if r.ref.holder(op.scope) == nil {
		return wantKind(err, refInvalid)
	}
	if err != nil {
		return fmt.Errorf("members of %v: %v", op.scope, err)
	}
	if want := r.ref.members(op.scope); !slices.Equal(got, want) {
		return fmt.Errorf("members of %v: %v, model says %v", op.scope, got, want)
	}
	return nil
}

// fullCheckScopes compares every team's and org's whole audit log, and the
// usage rows the store keeps under every team's, org's and cap's key.
func (r *seqRun) fullCheckScopes() error {
	for _, h := range r.ref.sortedHolders() {
		es, err := r.auditAllScope(h.scope)
		if err != nil {
			return err
		}
		if len(es) != len(h.audit) {
			return fmt.Errorf("audit of %v has %d entries, model has %d", h.scope, len(es), len(h.audit))
		}
		for i, e := range es {
			if err := diffAudit(e, h.audit[len(es)-1-i], "audit entry %d of %v", len(es)-i, h.scope); err != nil {
				return err
			}
		}
	}
	for _, b := range append(r.ref.sortedHolders(), r.ref.sortedCaps()...) {
		rows, err := r.keyRows(b.id)
		if err != nil {
			return err
		}
		if len(rows) != len(b.rows) {
			return fmt.Errorf("the store keeps %d usage rows under %q, model has %d", len(rows), b.id, len(b.rows))
		}
		for i, row := range rows {
			if err := diffKeyRow(row, b.rows[len(rows)-1-i], b.id); err != nil {
				return fmt.Errorf("usage %d under %q: %w", len(rows)-i, b.id, err)
			}
		}
	}
	return nil
}

// keyRows reads every usage row the store keeps under key, newest first,
// from the store itself: the Manager's History serves users only.
func (r *seqRun) keyRows(key string) ([]budget.UsageRow, error) {
	var out []budget.UsageRow
	cursor := ""
	for pages := 0; ; pages++ {
		p, err := r.store.History(ctx, budget.HistoryQuery{UserID: key, Cursor: cursor, Limit: budget.MaxPageSize})
		if err != nil {
			return nil, fmt.Errorf("store history of %q: %v", key, err)
		}
		out = append(out, p.Rows...)
		if p.Next == "" || pages > 10000 {
			return out, nil
		}
		cursor = p.Next
	}
}

// diffKeyRow compares a row under a team's, org's or cap's key: its user
// is the key and its ID the owner's usage ID qualified by the owner.
func diffKeyRow(got budget.UsageRow, want refRow, key string) error {
	idOK := got.ID == budget.UsageKeyID(want.owner, want.id) ||
		(want.id == "" && strings.HasPrefix(got.ID, budget.UsageKeyID(want.owner, "u-")))
	if !idOK || got.UserID != key || got.HoldID != want.holdID || !got.Cost.Decimal().Equal(want.cost) || !got.At.Equal(want.at) ||
		got.Provider != want.provider || got.Model != want.model || got.InputTokens != want.in || got.OutputTokens != want.out {
		return fmt.Errorf("%+v, model %+v (of %s)", got, want, want.owner)
	}
	return nil
}

// auditAllScope returns the audit log of a team or org, newest first.
func (r *seqRun) auditAllScope(s budget.Scope) ([]budget.AuditEntry, error) {
	var out []budget.AuditEntry
	cursor := ""
	for {
		p, err := r.mgr.AuditLog(ctx, modelRoot, budget.AuditLogQuery{Scope: s, Cursor: cursor, Limit: budget.MaxPageSize})
		if err != nil {
			return nil, fmt.Errorf("audit of %v: %v", s, err)
		}
		out = append(out, p.Entries...)
		if p.Next == "" {
			return out, nil
		}
		cursor = p.Next
	}
}

// canonicalLog returns the whole audit log (got, newest first) and the
// model's (want, oldest first) with the rollover entries one call wrote
// in a fixed order: a call spending several budgets rolls them over in
// one step, and stores may visit them in any order (their own key order,
// or the request's). Runs of rollover entries at one instant are sorted
// by budget key.
func canonicalLog(got []budget.AuditEntry, want []refAudit) ([]budget.AuditEntry, []refAudit) {
	got, want = slices.Clone(got), slices.Clone(want)
	slices.Reverse(got)
	sortRuns(got, func(e budget.AuditEntry) (bool, time.Time) { return e.Type == budget.AuditAutomaticReset, e.At },
		func(a, b budget.AuditEntry) int { return strings.Compare(a.UserID, b.UserID) })
	slices.Reverse(got)
	sortRuns(want, func(e refAudit) (bool, time.Time) { return e.typ == budget.AuditAutomaticReset, e.at },
		func(a, b refAudit) int { return strings.Compare(a.user, b.user) })
	return got, want
}

// sortRuns sorts by cmp each maximal run of consecutive elements that are
// rollovers at one instant.
func sortRuns[E any](s []E, key func(E) (bool, time.Time), order func(a, b E) int) {
	for i := 0; i < len(s); {
		ok, at := key(s[i])
		j := i + 1
		for ok && j < len(s) {
			ok2, at2 := key(s[j])
			if !ok2 || !at2.Equal(at) {
				break
			}
			j++
		}
		if j-i > 1 {
			slices.SortStableFunc(s[i:j], func(a, b E) int { return cmp.Or(order(a, b), 0) })
		}
		i = j
	}
}
