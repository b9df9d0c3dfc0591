package budget

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// Plan is what a budget is: its limit, period, timezone, enforcement, alert
// thresholds and permissions. Every user's Settings embed one, and the
// defaults that new users start with are one.
type Plan struct {
	// Limit is the spend allowed per period, in US dollars.
	Limit decimal.Decimal
	// Period is how often the budget starts over.
	Period Period
	// CustomDays is the length of a Custom period in days (1 to
	// MaxCustomDays); zero for the other periods.
	CustomDays int
	// CustomAnchor is the instant a Custom period is counted from; periods
	// repeat every CustomDays local days from its local wall-clock time.
	// When a plan becomes Custom without one, the Manager anchors it at
	// the local midnight that began the current day.
	CustomAnchor time.Time
	// Timezone is the IANA name of the zone periods are computed in; empty
	// means UTC.
	Timezone string
	// Enforce makes Reserve refuse spend beyond the limit. When off, spend
	// is still tracked and alerts still fire.
	Enforce bool
	// Thresholds are the alert thresholds in percent of Limit.
	Thresholds Thresholds
	// Permissions say what the user may do with their own budget.
	Permissions
}

// Settings are one budget holder's settings: a user's, or a team's or an
// org's (then UserID is the holder's Scope.Key, and Permissions are
// unused: only admins manage those budgets).
type Settings struct {
	UserID string
	Plan
	// AdminNotes are free text for administrators; users never see them.
	AdminNotes string
	// Teams are the teams a user belongs to, sorted, at most
	// MaxTeamsPerUser; none for a team or org.
	Teams []string
	// Org is the org a user or a team belongs to; "" for none.
	Org string
	// ModelCaps limit the spend on model families within this budget's
	// period; each is its own counter.
	ModelCaps []ModelCap
	// ResetAt is when the budget was last reset by hand; the zero time if
	// never. A reset starts a period that ends at the next regular boundary.
	ResetAt time.Time
	// Version increases with every change (settings or reset); it is the
	// compare-and-set token for UpdateSettings and the HTTP ETag.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
	// PeriodStart and PeriodEnd bound the current period. They are derived:
	// the Manager fills them in when it returns Settings, and stores
	// neither keep nor read them.
	PeriodStart time.Time
	PeriodEnd   time.Time
}

// sameScopes reports whether s and t have the same membership and model
// caps.
func (s Settings) sameScopes(t Settings) bool {
	return slices.Equal(s.Teams, t.Teams) && s.Org == t.Org &&
		slices.EqualFunc(s.ModelCaps, t.ModelCaps, func(a, b ModelCap) bool { return a.Pattern == b.Pattern && a.Limit.Equal(b.Limit) })
}

// Clone returns a copy of s that shares no memory with it.
func (s Settings) Clone() Settings {
	s.Teams = slices.Clone(s.Teams)
	s.ModelCaps = slices.Clone(s.ModelCaps)
	return s
}

// Defaults are what new regular users start with, and their version.
type Defaults struct {
	Plan
	// Version is 1 for the built-in or Options-supplied defaults, and
	// increases with every UpdateDefaults; it is the compare-and-set token
	// of UpdateDefaults' IfVersion and the HTTP ETag.
	Version   int64
	UpdatedAt time.Time
}

// DefaultAdminPlan is what an admin starts with unless Options says
// otherwise: $100 a month, enforced, every permission.
func DefaultAdminPlan() Plan {
	return Plan{
		Limit: decimal.NewFromInt(100), Period: Monthly, Enforce: true,
		Thresholds:  DefaultThresholds(),
		Permissions: Permissions{Visible: true, CanModify: true, CanReset: true},
	}
}

// DefaultUserPlan is what a regular user starts with unless Options or an
// admin's UpdateDefaults say otherwise: $30 a month, enforced, visible and
// view-only.
func DefaultUserPlan() Plan {
	return Plan{
		Limit: decimal.NewFromInt(30), Period: Monthly, Enforce: true,
		Thresholds:  DefaultThresholds(),
		Permissions: Permissions{Visible: true},
	}
}

// MaxUserIDLen and MaxNotesLen bound the strings a budget keeps.
const (
	MaxUserIDLen = 256
	MaxNotesLen  = 4096
	maxTZLen     = 64
)

// ValidateUserID reports whether id can name a user: 1 to 256 bytes of
// valid UTF-8 with no control characters, and neither "." nor "..". Those
// two are path steps: URL parsers, browsers' included, remove them from a
// path even percent-encoded (%2E), so no URL could name such a user. Any
// other ID, slashes and dots included ("team/../root", "a/."), fits in one
// percent-encoded path segment.
func ValidateUserID(id string) error {
	if id == "" || len(id) > MaxUserIDLen || !utf8.ValidString(id) || strings.ContainsFunc(id, isControl) {
		return &ValidationError{Field: "user_id", Reason: "must be 1 to 256 bytes of UTF-8 without control characters"}
	}
	if id == "." || id == ".." {
		return &ValidationError{Field: "user_id", Reason: `"." and ".." are path steps, not user IDs`}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// validate reports whether the plan is usable, loading its timezone.
func (p Plan) validate(zones *zoneCache) error {
	if _, err := ToNanos(p.Limit); err != nil {
		return &ValidationError{Field: "limit_usd", Reason: strings.TrimPrefix(err.Error(), "budget: ")}
	}
	if !p.Period.Valid() {
		return &ValidationError{Field: "budget_period", Reason: "must be daily, weekly, monthly or custom"}
	}
	if p.Period == Custom {
		if p.CustomDays < 1 || p.CustomDays > MaxCustomDays {
			return &ValidationError{Field: "custom_period_days", Reason: "must be from 1 to 3660 for a custom period"}
		}
		if p.CustomAnchor.IsZero() {
			return &ValidationError{Field: "custom_period_anchor", Reason: "a custom period needs an anchor"}
		}
		if err := ValidateAnchor(p.CustomAnchor); err != nil {
			return err
		}
	} else if p.CustomDays != 0 {
		return &ValidationError{Field: "custom_period_days", Reason: "only a custom period has a length in days"}
	}
	if _, err := zones.load(p.Timezone); err != nil {
		return err
	}
	return p.Thresholds.Validate()
}

// MinAnchorYear and MaxAnchorYear bound the year (in UTC) of a custom
// period's anchor.
const (
	MinAnchorYear = 1900
	MaxAnchorYear = 2200
)

// ValidateAnchor reports whether t can anchor a custom period: its year
// in UTC is from MinAnchorYear to MaxAnchorYear. Layers that parse an
// anchor call it, so that every layer states the one rule.
func ValidateAnchor(t time.Time) error {
	if y := t.UTC().Year(); y < MinAnchorYear || y > MaxAnchorYear {
		return &ValidationError{Field: "custom_period_anchor", Reason: fmt.Sprintf("must be between the years %d and %d", MinAnchorYear, MaxAnchorYear)}
	}
	return nil
}

// SettingsUpdate is a partial change to a user's settings: nil fields stay
// as they are. Field names in errors follow the JSON contract of the HTTP
// API (limit_usd, budget_period, ...).
type SettingsUpdate struct {
	Limit        *decimal.Decimal
	Period       *Period
	CustomDays   *int
	CustomAnchor *time.Time
	Timezone     *string
	Enforce      *bool
	Yellow       *decimal.Decimal
	Orange       *decimal.Decimal
	Red          *decimal.Decimal
	Visible      *bool
	CanModify    *bool
	CanReset     *bool
	AdminNotes   *string
	// ModelCaps, when set, replaces the budget's model caps (an empty
	// slice removes them all). Only admins set model caps.
	ModelCaps *[]ModelCap
	// IfVersion, when non-zero, makes the update conditional: it is refused
	// with ErrConflict unless the settings are still at this version.
	IfVersion int64
}

// apply returns p with the plan fields of u applied.
func (u SettingsUpdate) apply(p Plan) Plan {
	if u.Limit != nil {
		p.Limit = *u.Limit
	}
	if u.Period != nil {
		p.Period = *u.Period
		if p.Period != Custom && u.CustomDays == nil {
			p.CustomDays = 0
		}
	}
	if u.CustomDays != nil {
		p.CustomDays = *u.CustomDays
	}
	if u.CustomAnchor != nil {
		p.CustomAnchor = *u.CustomAnchor
	}
	if p.Period != Custom {
		p.CustomAnchor = time.Time{}
	}
	if u.Timezone != nil {
		p.Timezone = *u.Timezone
	}
	if u.Enforce != nil {
		p.Enforce = *u.Enforce
	}
	if u.Yellow != nil {
		p.Thresholds.Yellow = *u.Yellow
	}
	if u.Orange != nil {
		p.Thresholds.Orange = *u.Orange
	}
	if u.Red != nil {
		p.Thresholds.Red = *u.Red
	}
	if u.Visible != nil {
		p.Visible = *u.Visible
	}
	if u.CanModify != nil {
		p.CanModify = *u.CanModify
	}
	if u.CanReset != nil {
		p.CanReset = *u.CanReset
	}
	return p
}

// anchorCustom gives a plan that became Custom without an anchor the local
// midnight that began now's day.
func anchorCustom(p Plan, loc *time.Location, now time.Time) Plan {
	if p.Period == Custom && p.CustomAnchor.IsZero() {
		y, m, d := now.In(loc).Date()
		p.CustomAnchor = startOfDay(y, m, d, loc)
	}
	return p
}

// window returns the window that holds now for these settings in loc:
// the regular period, or from the last manual reset to the period's end when
// the reset happened inside it.
func (s Settings) window(loc *time.Location, now time.Time) Window {
	w := PeriodWindow(s.Period, s.CustomDays, s.CustomAnchor, loc, now)
	if !s.ResetAt.IsZero() && !s.ResetAt.Before(w.Start) && !s.ResetAt.After(now) {
		w.Start = s.ResetAt
	}
	return w
}
