package budget

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// Settings returns userID's settings with the current period, creating them
// from the defaults if the user has none. It checks no permission: call
// CanView first when acting for someone.
func (m *Manager) Settings(ctx context.Context, userID string) (_ Settings, err error) {
	ctx, span := m.tel.start(ctx, spanSettings, userID, nil)
	defer m.tel.end(span, &err)
	if err := ValidateUserID(userID); err != nil {
		return Settings{}, err
	}
	now := m.now()
	s, err := m.loadSettings(ctx, userID, now)
	if err != nil {
		return Settings{}, err
	}
	p, err := m.policy(s, now)
	if err != nil {
		return Settings{}, err
	}
	m.remember(s, p)
	return withPeriod(s, p.Window), nil
}

// Lookup returns userID's settings with the current period if the user has
// any, and ErrNotFound otherwise: unlike Settings, it never creates them.
// Admin views of one user call it, so that looking does not enrol anyone.
func (m *Manager) Lookup(ctx context.Context, userID string) (_ Settings, err error) {
	ctx, span := m.tel.start(ctx, spanLookup, userID, nil)
	defer m.tel.end(span, &err)
	if err := ValidateUserID(userID); err != nil {
		return Settings{}, err
	}
	s, err := m.store.Settings(ctx, userID)
	if err != nil {
		return Settings{}, fmt.Errorf("budget: settings of %q: %w", userID, err)
	}
	p, err := m.policy(s, m.now())
	if err != nil {
		return Settings{}, err
	}
	return withPeriod(s, p.Window), nil
}

// withPeriod fills in the derived period bounds of s.
func withPeriod(s Settings, w Window) Settings {
	s.PeriodStart, s.PeriodEnd = w.Start, w.End
	return s
}

// UpdateSettings applies a partial update to userID's settings on behalf of
// actor, creating the settings from the defaults first if the user has none
// (so an admin can configure a user before their first call). The change is
// permission-checked with CanUpdate, validated, and audited with the
// settings before and after; a refused or invalid update changes nothing.
//
// A change of period or timezone takes effect at once: the current period
// becomes the new period that holds now, and the usage already inside it
// counts. With u.IfVersion set, a concurrent change makes the update fail
// with ErrConflict instead of overwriting it.
func (m *Manager) UpdateSettings(ctx context.Context, actor Principal, userID string, u SettingsUpdate) (_ Settings, err error) {
	ctx, span := m.tel.start(ctx, spanUpdateSettings, userID, &actor)
	defer m.tel.end(span, &err)
	s, _, err := m.update(ctx, actor, userID, u, how{})
	return s, err
}

// how says how an update is made and audited: alone or as part of a bulk
// change, and whether it may create the user's settings.
type how struct {
	bulkID   string
	template string // the template the update applies
	reason   string
	existing bool // refuse with ErrNotFound a user without settings
	// edit, when set, changes what the update does not cover (a user's
	// membership, a team's org) in the next settings, or refuses.
	edit func(cur Settings, next *Settings) error
}

// update is UpdateSettings made as h says. It reports whether anything
// changed.
func (m *Manager) update(ctx context.Context, actor Principal, userID string, u SettingsUpdate, h how) (Settings, bool, error) {
	if err := ValidateUserID(userID); err != nil {
		return Settings{}, false, err
	}
	return m.updateKey(ctx, actor, userID, u, h)
}

// updateKey is update for the budget under key: a user's (key is the user
// ID), a team's or an org's.
func (m *Manager) updateKey(ctx context.Context, actor Principal, userID string, u SettingsUpdate, h how) (Settings, bool, error) {
	if u.ModelCaps != nil {
		if err := ValidateModelCaps(*u.ModelCaps); err != nil {
			return Settings{}, false, err
		}
	}
	if u.AdminNotes != nil && (len(*u.AdminNotes) > MaxNotesLen || !utf8.ValidString(*u.AdminNotes)) {
		return Settings{}, false, &ValidationError{Field: "admin_notes", Reason: "must be at most 4096 bytes of UTF-8"}
	}
	var floor time.Time // set by a *LateError: no earlier than the stored period
	for attempt := 0; ; attempt++ {
		now := latest(m.now(), floor)
		s, stored, err := m.settingsOrNew(ctx, userID, now)
		if err != nil {
			return Settings{}, false, err
		}
		if !stored && h.existing {
			scope, _ := ScopeOfKey(userID)
			return Settings{}, false, fmt.Errorf("%w: %s %q has no settings", ErrNotFound, scope.Kind, scope.ID)
		}
		next, err := m.nextSettings(actor, s, u, h, now)
		if err != nil {
			return Settings{}, false, err
		}
		if !stored {
			// Every check passed against the settings the user would
			// start with: only now create them, then update as usual.
			created, ok, err := m.create(ctx, s, now)
			if err != nil {
				return Settings{}, false, err
			}
			if !ok && attempt < maxRetries {
				m.tel.retrying(ctx, "update settings", userID, ErrConflict, attempt)
				continue // someone else created them first: check again
			}
			s = created
		}
		if next.Plan.equal(s.Plan) && next.AdminNotes == s.AdminNotes && next.sameScopes(s) {
			p, err := m.policy(s, now)
			return withPeriod(s, p.Window), false, err
		}
		next.Version, next.UpdatedAt = s.Version+1, now
		cur, err := m.policy(s, now)
		if err != nil {
			return Settings{}, false, err
		}
		nxt, err := m.policy(next, now)
		if err != nil {
			return Settings{}, false, err
		}
		before, after := s, next
		t, err := m.store.UpdateSettings(ctx, UpdateRequest{
			Settings: next, Current: cur, Next: nxt, Now: now,
			Audit: AuditEntry{
				UserID: userID, Type: AuditSettings, Actor: actor.UserID, ActorAdmin: actor.Admin,
				PreviousLimit: s.Limit, NewLimit: next.Limit, Before: &before, After: &after,
				Reason: h.reason, BulkID: h.bulkID, Template: h.template, At: now,
			},
		})
		if errors.Is(err, ErrConflict) && attempt < maxRetries {
			m.tel.retrying(ctx, "update settings", userID, err, attempt)
			floor = lateStart(err, floor)
			continue // reread: a changed version fails the IfVersion check above
		}
		if err != nil {
			return Settings{}, false, fmt.Errorf("budget: update settings of %q: %w", userID, err)
		}
		m.fire(newStatus(m.remember(next, nxt), t), t.Alerts, now)
		return withPeriod(next, nxt.Window), true, nil
	}
}

// nextSettings returns what the settings s become under u on behalf of
// actor at now, as UpdateSettings applies it: permission-checked with
// CanUpdate, checked against u.IfVersion, and validated. It writes nothing.
func (m *Manager) nextSettings(actor Principal, s Settings, u SettingsUpdate, h how, now time.Time) (Settings, error) {
	if err := CanUpdate(actor, s, u); err != nil {
		return Settings{}, err
	}
	if u.IfVersion != 0 && u.IfVersion != s.Version {
		return Settings{}, fmt.Errorf("%w: settings of %q are at version %d, not %d", ErrConflict, s.UserID, s.Version, u.IfVersion)
	}
	next := s
	loc, err := m.zones.load(derefOr(u.Timezone, s.Timezone))
	if err != nil {
		return Settings{}, err
	}
	next.Plan = anchorCustom(u.apply(s.Plan), loc, now)
	if u.AdminNotes != nil {
		next.AdminNotes = *u.AdminNotes
	}
	if u.ModelCaps != nil {
		next.ModelCaps = slices.Clone(*u.ModelCaps)
	}
	if h.edit != nil {
		next.Teams = slices.Clone(s.Teams)
		if err := h.edit(s, &next); err != nil {
			return Settings{}, err
		}
	}
	if err := next.Plan.validate(&m.zones); err != nil {
		return Settings{}, err
	}
	return next, nil
}

// storedVersion is the version a store holds for d: 0 when none is stored.
func storedVersion(d Defaults, stored bool) int64 {
	if !stored {
		return 0
	}
	return d.Version
}

// latest returns the later of t and floor.
func latest(t, floor time.Time) time.Time {
	if t.Before(floor) {
		return floor
	}
	return t
}

// lateStart returns the period start a *LateError carries, else floor.
func lateStart(err error, floor time.Time) time.Time {
	var le *LateError
	if errors.As(err, &le) {
		return latest(le.Start, floor)
	}
	return floor
}

func derefOr[T any](p *T, v T) T {
	if p != nil {
		return *p
	}
	return v
}

// zoneName is the name of a plan's timezone: "" and "UTC" are one zone.
func zoneName(tz string) string { return cmp.Or(tz, "UTC") }

// equal reports whether two plans are the same budget. The empty timezone
// and "UTC" are the same zone, so switching between them changes nothing.
func (p Plan) equal(q Plan) bool {
	return p.Limit.Equal(q.Limit) && p.Period == q.Period && p.CustomDays == q.CustomDays &&
		p.CustomAnchor.Equal(q.CustomAnchor) && zoneName(p.Timezone) == zoneName(q.Timezone) && p.Enforce == q.Enforce &&
		p.Thresholds.Yellow.Equal(q.Thresholds.Yellow) && p.Thresholds.Orange.Equal(q.Thresholds.Orange) &&
		p.Thresholds.Red.Equal(q.Thresholds.Red) && p.Permissions == q.Permissions
}

// MaxReasonLen bounds the reason given for a reset.
const MaxReasonLen = 1024

// ResetOptions say why a budget is reset and, optionally, with what limit
// the new period starts. The zero value resets with no reason and keeps the
// limit.
type ResetOptions struct {
	// Reason is free text for the audit log: at most 1024 bytes of UTF-8.
	Reason string
	// Limit, when set, is the limit of the period the reset starts, and
	// the audit entry's NewLimit. A user needs both "can reset" and "can
	// modify" to reset with a new limit; admins may always.
	Limit *decimal.Decimal
}

// Reset starts userID's budget over now, on behalf of actor (checked with
// CanReset, and with CanUpdate for a new limit): the new period starts at
// this instant and ends at the next regular boundary. Nothing is deleted:
// past usage stays in the history, and the reset is audited with the spend
// of the period it ended and the limits before and after. Live
// reservations keep counting until settled, released or expired.
func (m *Manager) Reset(ctx context.Context, actor Principal, userID string, o ResetOptions) (_ AuditEntry, err error) {
	ctx, span := m.tel.start(ctx, spanReset, userID, &actor)
	defer m.tel.end(span, &err)
	if err := ValidateUserID(userID); err != nil {
		return AuditEntry{}, err
	}
	if len(o.Reason) > MaxReasonLen || !utf8.ValidString(o.Reason) {
		return AuditEntry{}, &ValidationError{Field: "reason", Reason: "must be at most 1024 bytes of UTF-8"}
	}
	if o.Limit != nil {
		if _, err := ToNanos(*o.Limit); err != nil {
			return AuditEntry{}, &ValidationError{Field: "limit_usd", Reason: strings.TrimPrefix(err.Error(), "budget: ")}
		}
	}
	var floor time.Time
	for attempt := 0; ; attempt++ {
		now := latest(m.now(), floor)
		s, stored, err := m.settingsOrNew(ctx, userID, now)
		if err != nil {
			return AuditEntry{}, err
		}
		if err := CanReset(actor, s); err != nil {
			return AuditEntry{}, err
		}
		if o.Limit != nil {
			if err := CanUpdate(actor, s, SettingsUpdate{Limit: o.Limit}); err != nil {
				err.(*PermissionError).Action = "reset"
				return AuditEntry{}, err
			}
		}
		if !stored {
			created, ok, err := m.create(ctx, s, now)
			if err != nil {
				return AuditEntry{}, err
			}
			if !ok && attempt < maxRetries {
				m.tel.retrying(ctx, "reset", userID, ErrConflict, attempt)
				continue
			}
			s = created
		}
		next := s
		next.ResetAt, next.Version = now, s.Version+1
		if o.Limit != nil {
			next.Limit = *o.Limit
		}
		cur, err := m.policy(s, now)
		if err != nil {
			return AuditEntry{}, err
		}
		nxt, err := m.policy(next, now)
		if err != nil {
			return AuditEntry{}, err
		}
		e, t, err := m.store.Reset(ctx, ResetRequest{
			Settings: next, Current: cur, Next: nxt, Now: now,
			Audit: AuditEntry{
				UserID: userID, Type: AuditManualReset, Actor: actor.UserID, ActorAdmin: actor.Admin,
				Reason: o.Reason, PreviousLimit: s.Limit, NewLimit: next.Limit,
				PeriodStart: cur.Window.Start, PeriodEnd: now, At: now,
			},
		})
		if errors.Is(err, ErrConflict) && attempt < maxRetries {
			m.tel.retrying(ctx, "reset", userID, err, attempt)
			floor = lateStart(err, floor)
			continue
		}
		if err != nil {
			return AuditEntry{}, fmt.Errorf("budget: reset of %q: %w", userID, err)
		}
		m.fire(newStatus(m.remember(next, nxt), t), t.Alerts, now)
		return e, nil
	}
}

// Defaults returns what new regular users start with: the defaults an admin
// stored with UpdateDefaults, else Options.UserPlan, else DefaultUserPlan().
func (m *Manager) Defaults(ctx context.Context) (_ Defaults, err error) {
	ctx, span := m.tel.start(ctx, spanDefaults, "", nil)
	defer m.tel.end(span, &err)
	d, _, err := m.defaults(ctx)
	return d, err
}

// builtInDefaultsVersion is the Version of defaults no admin has stored, so
// that every version, the built-in one included, can be an IfVersion.
const builtInDefaultsVersion = 1

// defaults returns the defaults and whether an admin stored them.
func (m *Manager) defaults(ctx context.Context) (Defaults, bool, error) {
	d, err := m.store.Defaults(ctx)
	if errors.Is(err, ErrNotFound) {
		return Defaults{Plan: m.userPlan, Version: builtInDefaultsVersion}, false, nil
	}
	if err != nil {
		return Defaults{}, false, fmt.Errorf("budget: loading defaults: %w", err)
	}
	return d, true, nil
}

// UpdateDefaults changes what new regular users start with, on behalf of an
// admin (anyone else gets ErrForbidden). It applies to users who have no
// settings yet; existing settings are untouched. The change is audited.
// u.AdminNotes must be nil; u.IfVersion compares with Defaults.Version.
func (m *Manager) UpdateDefaults(ctx context.Context, actor Principal, u SettingsUpdate) (_ Defaults, err error) {
	ctx, span := m.tel.start(ctx, spanUpdateDefaults, "", &actor)
	defer m.tel.end(span, &err)
	d, _, err := m.updateDefaults(ctx, actor, u, how{})
	return d, err
}

// updateDefaults is UpdateDefaults audited as h says. It reports whether
// anything changed: an update that changes nothing writes nothing.
func (m *Manager) updateDefaults(ctx context.Context, actor Principal, u SettingsUpdate, h how) (Defaults, bool, error) {
	if err := CanAdminister(actor); err != nil {
		return Defaults{}, false, err
	}
	if u.AdminNotes != nil {
		return Defaults{}, false, &ValidationError{Field: "admin_notes", Reason: "defaults carry no admin notes"}
	}
	if u.ModelCaps != nil {
		return Defaults{}, false, &ValidationError{Field: "model_caps", Reason: "defaults carry no model caps: set them per budget with UpdateBudget"}
	}
	for attempt := 0; ; attempt++ {
		now := m.now()
		d, stored, err := m.defaults(ctx)
		if err != nil {
			return Defaults{}, false, err
		}
		if u.IfVersion != 0 && u.IfVersion != d.Version {
			return Defaults{}, false, fmt.Errorf("%w: defaults are at version %d, not %d", ErrConflict, d.Version, u.IfVersion)
		}
		next := Defaults{Plan: u.apply(d.Plan), Version: d.Version + 1, UpdatedAt: now}
		if err := next.Plan.validateDefault(&m.zones); err != nil {
			return Defaults{}, false, err
		}
		if next.Plan.equal(d.Plan) {
			return d, false, nil
		}
		before, after := Settings{Plan: d.Plan, Version: d.Version}, Settings{Plan: next.Plan, Version: next.Version}
		err = m.store.UpdateDefaults(ctx, DefaultsRequest{
			Defaults: next, ExpectVersion: storedVersion(d, stored),
			Audit: AuditEntry{
				Type: AuditDefaults, Actor: actor.UserID, ActorAdmin: actor.Admin,
				PreviousLimit: d.Limit, NewLimit: next.Limit, Before: &before, After: &after,
				Reason: h.reason, BulkID: h.bulkID, At: now,
			},
		})
		if errors.Is(err, ErrConflict) && u.IfVersion == 0 && attempt < maxRetries {
			m.tel.retrying(ctx, "update defaults", "", err, attempt)
			continue
		}
		if err != nil {
			return Defaults{}, false, fmt.Errorf("budget: update defaults: %w", err)
		}
		return next, true, nil
	}
}
