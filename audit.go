package budget

import (
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// AuditType says what an audit entry records.
type AuditType string

// The kinds of audit entries.
const (
	// AuditManualReset: a user or an admin reset a budget by hand.
	AuditManualReset AuditType = "manual"
	// AuditAutomaticReset: a period ended and the next began.
	AuditAutomaticReset AuditType = "automatic"
	// AuditSettings: a user's settings changed (or were first created by
	// an admin's update).
	AuditSettings AuditType = "settings"
	// AuditDefaults: the defaults for new regular users changed.
	AuditDefaults AuditType = "defaults"
	// AuditTemplate: a template was saved or deleted. Template names it;
	// After is nil for a deletion, Before for a creation.
	AuditTemplate AuditType = "template"
)

// AuditTypes are the kinds of audit entries, in the order a filter lists
// them.
var AuditTypes = [...]AuditType{AuditSettings, AuditManualReset, AuditAutomaticReset, AuditDefaults, AuditTemplate}

// ParseAuditType parses the name of an audit type ("settings", "manual",
// ...). Anything else is a *ValidationError for the field "type".
func ParseAuditType(s string) (AuditType, error) {
	for _, t := range AuditTypes {
		if string(t) == s {
			return t, nil
		}
	}
	return "", &ValidationError{Field: "type", Reason: "must be settings, manual, automatic, defaults or template"}
}

// SystemActor is the actor of automatic entries.
const SystemActor = "system"

// AuditEntry is one line of the audit log. Entries are never changed or
// deleted; IDs increase in the order entries are appended.
type AuditEntry struct {
	ID     int64
	UserID string // empty for AuditDefaults and AuditTemplate
	Type   AuditType
	// Actor is the user ID of who acted, or SystemActor.
	Actor      string
	ActorAdmin bool
	Reason     string
	// PreviousLimit, NewLimit and PreviousSpent describe resets: the limit
	// before and after, and the settled spend in the period that ended.
	// Settings changes carry the limits too.
	PreviousLimit decimal.Decimal
	NewLimit      decimal.Decimal
	PreviousSpent decimal.Decimal
	// PeriodStart and PeriodEnd bound the period a reset ended.
	PeriodStart time.Time
	PeriodEnd   time.Time
	// Before and After are the settings around a settings, defaults or
	// template change (for defaults and templates, only their Plan is
	// meaningful); nil otherwise.
	Before *Settings
	After  *Settings
	// BulkID is shared by the entries of one bulk change (BulkUpdate,
	// ApplyTemplate, SetAccess); empty for a change made alone.
	BulkID string
	// Template names the template an AuditTemplate entry saved or
	// deleted, or that a settings change applied; empty otherwise.
	Template string
	At       time.Time
}

// Clone returns a copy of e that shares nothing mutable with it.
func (e AuditEntry) Clone() AuditEntry {
	if e.Before != nil {
		b := e.Before.Clone()
		e.Before = &b
	}
	if e.After != nil {
		a := e.After.Clone()
		e.After = &a
	}
	return e
}

// Change is one field an audit entry changed, with its value before and
// after as text: "limit_usd" from "30" to "45". Field names are those of
// the HTTP API's JSON; an empty Before or After means the field had no
// value (a template created or deleted).
type Change struct {
	Field  string
	Before string
	After  string
}

// Changes returns what e changed, field by field, in a fixed order: for a
// settings, defaults or template entry every field of the plan (and the
// admin notes) that differs between Before and After; for a reset, the
// limit when the reset changed it. An unchanged or empty entry has none.
func (e AuditEntry) Changes() []Change {
	switch {
	case e.Before != nil || e.After != nil:
		var before, after []Change
		if e.Before != nil {
			before = e.Before.fields()
		}
		if e.After != nil {
			after = e.After.fields()
		}
		var out []Change
		for i := range max(len(before), len(after)) {
			var c Change
			if i < len(before) {
				c.Field, c.Before = before[i].Field, before[i].After
			}
			if i < len(after) {
				c.Field, c.After = after[i].Field, after[i].After
			}
			if c.Before != c.After {
				out = append(out, c)
			}
		}
		return out
	case (e.Type == AuditManualReset || e.Type == AuditAutomaticReset) && !e.PreviousLimit.Equal(e.NewLimit):
		return []Change{{Field: "limit_usd", Before: e.PreviousLimit.String(), After: e.NewLimit.String()}}
	}
	return nil
}

// fields lists s's plan and notes as Changes whose After is the value, in
// the order Changes reports them.
func (s *Settings) fields() []Change {
	anchor := ""
	if !s.CustomAnchor.IsZero() {
		anchor = s.CustomAnchor.UTC().Format(time.RFC3339)
	}
	days := ""
	if s.CustomDays != 0 {
		days = strconv.Itoa(s.CustomDays)
	}
	return []Change{
		{Field: "limit_usd", After: s.Limit.String()},
		{Field: "budget_period", After: string(s.Period)},
		{Field: "custom_period_days", After: days},
		{Field: "custom_period_anchor", After: anchor},
		{Field: "timezone", After: zoneName(s.Timezone)},
		{Field: "enforce_budget", After: strconv.FormatBool(s.Enforce)},
		{Field: "alert_threshold_yellow", After: s.Thresholds.Yellow.String()},
		{Field: "alert_threshold_orange", After: s.Thresholds.Orange.String()},
		{Field: "alert_threshold_red", After: s.Thresholds.Red.String()},
		{Field: "budget_visible_to_user", After: strconv.FormatBool(s.Visible)},
		{Field: "user_can_modify_limit", After: strconv.FormatBool(s.CanModify)},
		{Field: "user_can_reset_budget", After: strconv.FormatBool(s.CanReset)},
		{Field: "admin_notes", After: s.AdminNotes},
		{Field: "teams", After: strings.Join(s.Teams, ", ")},
		{Field: "org", After: s.Org},
		{Field: "model_caps", After: capsText(s.ModelCaps)},
	}
}

// capsText writes model caps as "pattern: limit" pairs, e.g.
// "claude-opus-*: 50, gpt-4o: 1".
func capsText(caps []ModelCap) string {
	parts := make([]string, len(caps))
	for i, c := range caps {
		parts[i] = c.Pattern + ": " + c.Limit.String()
	}
	return strings.Join(parts, ", ")
}
