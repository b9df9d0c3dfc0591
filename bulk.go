package budget

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/shopspring/decimal"
	"golang.org/x/sync/errgroup"
)

// MaxBulkUsers bounds how many users one bulk change may select.
const MaxBulkUsers = 1000

// bulkWorkers is how many users a bulk change updates at once. Each user's
// update is its own atomic step; running several at once lets a store that
// batches concurrent writers (group commit) commit them together.
const bulkWorkers = 8

// Selection says which users a bulk change applies to: the users named in
// UserIDs, or, when UserIDs is empty, every user with settings that passes
// Match's filters (its Search and Level; its Cursor and Limit are ignored).
// Exactly one of the two must be given, selecting at most MaxBulkUsers.
type Selection struct {
	UserIDs []string
	Match   *UserQuery
}

// BulkResult is what a bulk change did, user by user.
type BulkResult struct {
	// BulkID is shared by the audit entries of this change.
	BulkID string
	// Changed counts users whose settings this call changed.
	Changed int
	// Results has one entry per selected user, in the selection's order
	// (user ID order for a Match).
	Results []UserResult
}

// UserResult is what a bulk change did to one user.
type UserResult struct {
	UserID string
	// Settings are the user's settings after the change, when Err is nil.
	Settings Settings
	// Changed is false when the user already had what the change sets.
	Changed bool
	// Err is why this user was not changed: ErrNotFound for a user
	// without settings (a bulk change never creates them), a
	// *ValidationError when the change does not fit this user's settings
	// (thresholds that would no longer increase), or a store failure. A
	// user with an error is left exactly as they were.
	Err error
}

// BulkUpdate applies u to every selected user, on behalf of an admin
// (anyone else gets ErrForbidden). Each user is changed in one atomic step
// and audited with a settings entry carrying the result's BulkID; the users
// are not changed together, so a reader may see some changed and others
// not yet. A user the change cannot apply to is reported in their
// UserResult and left unchanged, and the others are still changed.
//
// BulkUpdate returns an error, changing nothing, when the selection is
// empty, too large, names an invalid or repeated user ID, or when u itself
// is invalid (a bad amount, period, timezone or threshold), sets
// IfVersion, or sets AdminNotes (notes are written one user at a time).
func (m *Manager) BulkUpdate(ctx context.Context, actor Principal, sel Selection, u SettingsUpdate) (_ BulkResult, err error) {
	ctx, span := m.tel.start(ctx, spanBulkUpdate, "", &actor)
	defer m.tel.end(span, &err)
	if err := CanAdminister(actor); err != nil {
		return BulkResult{}, err
	}
	if err := m.checkBulk(u); err != nil {
		return BulkResult{}, err
	}
	return m.bulk(ctx, actor, sel, u, how{})
}

// checkBulk validates each field u sets on its own, before any user is
// read: what is wrong whatever the user is wrong for the whole request.
func (m *Manager) checkBulk(u SettingsUpdate) error {
	switch {
	case u.IfVersion != 0:
		return &ValidationError{Field: "if_version", Reason: "a bulk change cannot be conditional on one version"}
	case u.AdminNotes != nil:
		return &ValidationError{Field: "admin_notes", Reason: "admin notes are written one user at a time"}
	case u.ModelCaps != nil:
		return &ValidationError{Field: "model_caps", Reason: "model caps are set one budget at a time"}
	case u == (SettingsUpdate{}):
		return &ValidationError{Field: "changes", Reason: "name at least one setting to change"}
	}
	if u.Limit != nil {
		if _, err := ToNanos(*u.Limit); err != nil {
			return &ValidationError{Field: "limit_usd", Reason: strings.TrimPrefix(err.Error(), "budget: ")}
		}
	}
	if u.Period != nil && !u.Period.Valid() {
		return &ValidationError{Field: "budget_period", Reason: "must be daily, weekly, monthly or custom"}
	}
	if u.CustomDays != nil && (*u.CustomDays < 1 || *u.CustomDays > MaxCustomDays) {
		return &ValidationError{Field: "custom_period_days", Reason: "must be from 1 to 3660 for a custom period"}
	}
	if u.CustomAnchor != nil {
		if err := ValidateAnchor(*u.CustomAnchor); err != nil {
			return err
		}
	}
	if u.Timezone != nil {
		if _, err := m.zones.load(*u.Timezone); err != nil {
			return err
		}
	}
	for _, t := range [...]struct {
		field string
		v     *decimal.Decimal
	}{{"alert_threshold_yellow", u.Yellow}, {"alert_threshold_orange", u.Orange}, {"alert_threshold_red", u.Red}} {
		if t.v != nil {
			if err := validThreshold(t.field, *t.v); err != nil {
				return err
			}
		}
	}
	return nil
}

// bulk resolves sel and updates each user as h says, several at a time.
func (m *Manager) bulk(ctx context.Context, actor Principal, sel Selection, u SettingsUpdate, h how) (BulkResult, error) {
	ids, err := m.resolve(ctx, sel)
	if err != nil {
		return BulkResult{}, err
	}
	h.bulkID, h.existing = m.newID("b-"), true
	res := BulkResult{BulkID: h.bulkID, Results: m.updateEach(ctx, actor, ids, u, h)}
	for _, r := range res.Results {
		if r.Changed {
			res.Changed++
		}
	}
	return res, nil
}

// updateEach applies u to each user as h says, bulkWorkers at a time, and
// returns their results in ids' order. A user's failure is their result,
// not the call's.
func (m *Manager) updateEach(ctx context.Context, actor Principal, ids []string, u SettingsUpdate, h how) []UserResult {
	results := make([]UserResult, len(ids))
	var g errgroup.Group
	g.SetLimit(bulkWorkers)
	for i, id := range ids {
		g.Go(func() error {
			s, changed, err := m.update(ctx, actor, id, u, h)
			results[i] = UserResult{UserID: id, Settings: s, Changed: changed, Err: err}
			return nil
		})
	}
	g.Wait()
	return results
}

// resolve returns the user IDs sel selects, checked.
func (m *Manager) resolve(ctx context.Context, sel Selection) ([]string, error) {
	switch {
	case len(sel.UserIDs) > 0 && sel.Match != nil:
		return nil, &ValidationError{Field: "user_ids", Reason: "select users by user_ids or by match, not both"}
	case len(sel.UserIDs) > MaxBulkUsers:
		return nil, &ValidationError{Field: "user_ids", Reason: fmt.Sprintf("at most %d users at once", MaxBulkUsers)}
	case len(sel.UserIDs) > 0:
		seen := make(map[string]bool, len(sel.UserIDs))
		for _, id := range sel.UserIDs {
			if err := ValidateUserID(id); err != nil {
				return nil, &ValidationError{Field: "user_ids", Reason: fmt.Sprintf("%q: %s", id, err.(*ValidationError).Reason)}
			}
			if seen[id] {
				return nil, &ValidationError{Field: "user_ids", Reason: fmt.Sprintf("%q is named twice", id)}
			}
			seen[id] = true
		}
		return sel.UserIDs, nil
	case sel.Match == nil:
		return nil, &ValidationError{Field: "user_ids", Reason: "select users by user_ids or by match"}
	}
	if err := sel.Match.validate(); err != nil {
		return nil, err
	}
	var ids []string
	err := m.eachAccount(ctx, func(u UserStatus, _ Policy, _ Totals) error {
		if !sel.Match.matches(u) {
			return nil
		}
		if len(ids) == MaxBulkUsers {
			return &ValidationError{Field: "match", Reason: fmt.Sprintf("more than %d users match; narrow the filter", MaxBulkUsers)}
		}
		ids = append(ids, u.Settings.UserID)
		return nil
	})
	return ids, err
}

// ApplyTemplate gives every selected user the plan of the template named
// name (limit, period, timezone, enforcement, thresholds and permissions;
// admin notes stay), as BulkUpdate does: one atomic step per user, each
// audited with the template's name and the result's BulkID. A Custom
// template without an anchor anchors each user at the start of the day.
// An unknown template is ErrNotFound.
func (m *Manager) ApplyTemplate(ctx context.Context, actor Principal, name string, sel Selection) (_ BulkResult, err error) {
	ctx, span := m.tel.start(ctx, spanApplyTemplate, "", &actor)
	defer m.tel.end(span, &err)
	t, err := m.Template(ctx, actor, name)
	if err != nil {
		return BulkResult{}, err
	}
	return m.bulk(ctx, actor, sel, planUpdate(t.Plan), how{template: t.Name})
}

// planUpdate is the update that sets every field of p.
func planUpdate(p Plan) SettingsUpdate {
	return SettingsUpdate{
		Limit: &p.Limit, Period: &p.Period, CustomDays: &p.CustomDays, CustomAnchor: &p.CustomAnchor,
		Timezone: &p.Timezone, Enforce: &p.Enforce,
		Yellow: &p.Thresholds.Yellow, Orange: &p.Thresholds.Orange, Red: &p.Thresholds.Red,
		Visible: &p.Visible, CanModify: &p.CanModify, CanReset: &p.CanReset,
	}
}

// Access is the state of the switch that gives regular users their
// budgets: whether new regular users see theirs, and how many existing
// regular users (those Options.IsAdmin does not name) see theirs.
type Access struct {
	// Enabled is whether a new regular user sees their budget: the
	// defaults' Visible.
	Enabled bool
	// Users counts regular users with settings; Visible counts those of
	// them who see their budget. Visible is below Users when the switch
	// is on and some users are hidden one by one, and above zero when it
	// is off and some are shown one by one.
	Users, Visible int
}

// AccessChange is what SetAccess did.
type AccessChange struct {
	// Access is the state after the change.
	Access
	// Changed counts the regular users whose visibility this call changed.
	Changed int
	// BulkID is shared by the call's audit entries.
	BulkID string
	// Failed lists users the call could not change (a store failure, or
	// a concurrent change it lost to more than maxRetries times).
	Failed []UserResult
}

// Access returns the state of the regular users' switch, for admins
// (anyone else gets ErrForbidden).
func (m *Manager) Access(ctx context.Context, actor Principal) (_ Access, err error) {
	ctx, span := m.tel.start(ctx, spanAccess, "", &actor)
	defer m.tel.end(span, &err)
	if err := CanAdminister(actor); err != nil {
		return Access{}, err
	}
	d, err := m.Defaults(ctx)
	if err != nil {
		return Access{}, err
	}
	a := Access{Enabled: d.Visible}
	err = m.eachSettings(ctx, func(s Settings) error {
		if !m.admin(s.UserID) {
			a.Users++
			if s.Visible {
				a.Visible++
			}
		}
		return nil
	})
	return a, err
}

// SetAccess turns budgets on or off for every regular user at once, on
// behalf of an admin (anyone else gets ErrForbidden): the switch the
// dashboard shows at the top of the admin page.
//
// Off hides each regular user's budget from them (Visible false), in the
// defaults too, so users who arrive later start hidden; on shows them. It
// changes nothing else: enforcement, limits and permissions stay as the
// admin set them, so a hidden budget is still enforced. Admins (those
// Options.IsAdmin names) are never changed: admins always have their
// budgets. Afterwards an admin may still show or hide single users in
// their settings; the switch overrides those choices only when used again.
//
// Each user is changed in one atomic step; the defaults change and each
// user's change is audited as a settings or defaults entry with the
// reason "budgets for regular users turned on" (or off) and one BulkID.
func (m *Manager) SetAccess(ctx context.Context, actor Principal, enabled bool) (_ AccessChange, err error) {
	ctx, span := m.tel.start(ctx, spanSetAccess, "", &actor)
	defer m.tel.end(span, &err)
	if err := CanAdminister(actor); err != nil {
		return AccessChange{}, err
	}
	h := how{bulkID: m.newID("b-"), reason: "budgets for regular users turned off", existing: true}
	if enabled {
		h.reason = "budgets for regular users turned on"
	}
	u := SettingsUpdate{Visible: &enabled}
	if _, _, err := m.updateDefaults(ctx, actor, u, h); err != nil {
		return AccessChange{}, err
	}
	var ids []string
	if err := m.eachSettings(ctx, func(s Settings) error {
		if !m.admin(s.UserID) && s.Visible != enabled {
			ids = append(ids, s.UserID)
		}
		return nil
	}); err != nil {
		return AccessChange{}, err
	}
	out := AccessChange{BulkID: h.bulkID}
	for _, r := range m.updateEach(ctx, actor, ids, u, h) {
		switch {
		case r.Err != nil && !errors.Is(r.Err, ErrNotFound):
			out.Failed = append(out.Failed, r)
		case r.Changed:
			out.Changed++
		}
	}
	a, err := m.Access(ctx, actor)
	out.Access = a
	return out, err
}

// admin reports whether Options.IsAdmin names userID.
func (m *Manager) admin(userID string) bool { return m.isAdmin != nil && m.isAdmin(userID) }
