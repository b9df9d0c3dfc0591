// Package sqlcodec holds what the SQL stores (store/sqlite, store/postgres)
// encode alike: times as Unix nanoseconds, UTC day numbers for the daily
// rollups, settings snapshots in the audit log as JSON, and the decoding of
// settings, audit and template rows, whose columns both stores keep in the
// same order. Statements and driver errors stay in each store.
package sqlcodec

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/llmbudget/budget"
	"github.com/shopspring/decimal"
)

// Unix returns t as Unix nanoseconds, the form both SQL stores keep times
// in, or an error for a time outside the years 1678-2261 an int64 covers.
func Unix(t time.Time) (int64, error) {
	if t.Year() < 1678 || t.Year() > 2261 {
		return 0, fmt.Errorf("time %v is outside the years 1678-2261 a SQL store keeps", t)
	}
	return t.UnixNano(), nil
}

// FromUnix returns the UTC time of Unix nanoseconds n.
func FromUnix(n int64) time.Time { return time.Unix(0, n).UTC() }

// FromNullUnix returns the UTC time of Unix nanoseconds *n, or the zero
// time for NULL.
func FromNullUnix(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return FromUnix(*n)
}

// DayNanos is the length of a rollup day.
const DayNanos = int64(24 * time.Hour)

// DayOf returns the UTC day number of a Unix-nanosecond time: the key of the
// daily rollup a usage at that time adds to.
func DayOf(at int64) int64 {
	d := at / DayNanos
	if at%DayNanos < 0 {
		d--
	}
	return d
}

// Split divides the range [from, to) of Unix nanoseconds for a breakdown:
// whole UTC days [firstDay, lastDay) read from the daily rollups, and the
// partial days at the edges, rows, read from usage rows. With no whole day
// inside, firstDay == lastDay and rows is the whole range.
func Split(from, to int64) (firstDay, lastDay int64, rows [][2]int64) {
	firstDay = DayOf(from-1) + 1 // the first day starting at or after from
	lastDay = DayOf(to)          // days before it end at or before to
	if firstDay >= lastDay {
		return 0, 0, [][2]int64{{from, to}}
	}
	return firstDay, lastDay, [][2]int64{{from, firstDay * DayNanos}, {lastDay * DayNanos, to}}
}

// SettingsJSON encodes a settings snapshot of the audit log; nil stays nil.
func SettingsJSON(s *budget.Settings) ([]byte, error) {
	if s == nil {
		return nil, nil
	}
	return json.Marshal(s)
}

// ParseSettings decodes what SettingsJSON wrote; empty input is nil.
func ParseSettings(b []byte) (*budget.Settings, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var s budget.Settings
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Scanner is a row of either driver: *sql.Row, *sql.Rows, pgx.Row and
// pgx.Rows all scan alike. Both drivers scan NULL into a pointer
// destination as nil, and SQLite's 0 and 1 into a bool.
type Scanner interface{ Scan(dest ...any) error }

// SettingsCols are the columns ScanSettings reads, in order.
const SettingsCols = `user_id, limit_nanos, period, custom_days, custom_anchor, timezone, enforce,
	yellow, orange, red, visible, can_modify, can_reset, admin_notes, reset_at, version, created_at, updated_at`

// ScanSettings scans a row of SettingsCols, then the extra destinations.
func ScanSettings(row Scanner, extra ...any) (budget.Settings, error) {
	var (
		s                   budget.Settings
		period              string
		limit               int64
		created, updated    int64
		anchor, resetAt     *int64
		yellow, orange, red string
	)
	dest := append([]any{&s.UserID, &limit, &period, &s.CustomDays, &anchor, &s.Timezone, &s.Enforce,
		&yellow, &orange, &red, &s.Visible, &s.CanModify, &s.CanReset, &s.AdminNotes, &resetAt, &s.Version, &created, &updated}, extra...)
	if err := row.Scan(dest...); err != nil {
		return budget.Settings{}, err
	}
	var err error
	if s.Thresholds.Yellow, err = decimal.NewFromString(yellow); err == nil {
		if s.Thresholds.Orange, err = decimal.NewFromString(orange); err == nil {
			s.Thresholds.Red, err = decimal.NewFromString(red)
		}
	}
	if err != nil {
		return budget.Settings{}, fmt.Errorf("budget: corrupt thresholds of %q in the store: %w", s.UserID, err)
	}
	s.Period = budget.Period(period)
	s.Limit = budget.Nanos(limit).Decimal()
	s.CustomAnchor, s.ResetAt = FromNullUnix(anchor), FromNullUnix(resetAt)
	s.CreatedAt, s.UpdatedAt = FromUnix(created), FromUnix(updated)
	return s, nil
}

// AuditCols are the columns ScanAudit reads, in order.
const AuditCols = `id, user_id, type, actor, actor_admin, reason, previous_limit, new_limit, previous_spent,
	period_start, period_end, before, after, bulk_id, template, at`

// ScanAudit scans a row of AuditCols.
func ScanAudit(row Scanner) (budget.AuditEntry, error) {
	var (
		e                       budget.AuditEntry
		typ                     string
		prevLimit, newLim, prev int64
		ps, pe                  *int64
		before, after           []byte
		at                      int64
	)
	if err := row.Scan(&e.ID, &e.UserID, &typ, &e.Actor, &e.ActorAdmin, &e.Reason, &prevLimit, &newLim, &prev, &ps, &pe, &before, &after, &e.BulkID, &e.Template, &at); err != nil {
		return budget.AuditEntry{}, err
	}
	e.Type = budget.AuditType(typ)
	e.PreviousLimit, e.NewLimit, e.PreviousSpent = budget.Nanos(prevLimit).Decimal(), budget.Nanos(newLim).Decimal(), budget.Nanos(prev).Decimal()
	e.PeriodStart, e.PeriodEnd, e.At = FromNullUnix(ps), FromNullUnix(pe), FromUnix(at)
	var err error
	if e.Before, err = ParseSettings(before); err == nil {
		e.After, err = ParseSettings(after)
	}
	if err != nil {
		return budget.AuditEntry{}, fmt.Errorf("budget: corrupt audit entry %d in the store: %w", e.ID, err)
	}
	return e, nil
}

// TemplateCols are the columns ScanTemplate reads, in order: the plan is
// JSON, as PlanJSON writes it.
const TemplateCols = `name, plan, version, updated_at`

// PlanJSON encodes a plan of the defaults or of a template.
func PlanJSON(p budget.Plan) ([]byte, error) { return json.Marshal(p) }

// ScanTemplate scans a row of TemplateCols.
func ScanTemplate(row Scanner) (budget.Template, error) {
	var (
		t    budget.Template
		plan []byte
		at   int64
	)
	if err := row.Scan(&t.Name, &plan, &t.Version, &at); err != nil {
		return budget.Template{}, err
	}
	if err := json.Unmarshal(plan, &t.Plan); err != nil {
		return budget.Template{}, fmt.Errorf("budget: corrupt template %q in the store: %w", t.Name, err)
	}
	t.UpdatedAt = FromUnix(at)
	return t, nil
}

// Rows is a result set of either driver.
type Rows interface {
	Scanner
	Next() bool
}

// UsageCols are the columns ScanHistory reads, in order: seq orders rows
// that share a time.
const UsageCols = `seq, id, user_id, hold_id, provider, model, input_tokens, output_tokens, cost, at`

// ScanHistory reads a history page from rows of UsageCols, newest first,
// fetched with a LIMIT of limit+1 (no LIMIT when limit <= 0): a row beyond
// limit means there is a next page, whose cursor it sets. The caller
// checks the rows' error.
func ScanHistory(rows Rows, limit int) (budget.HistoryPage, error) {
	var (
		p   budget.HistoryPage
		seq int64
	)
	for rows.Next() {
		if limit > 0 && len(p.Rows) == limit {
			last := p.Rows[len(p.Rows)-1]
			p.Next = budget.UsageCursor{At: last.At.UnixNano(), Seq: seq}.String()
			break
		}
		var (
			r        budget.UsageRow
			cost, at int64
		)
		if err := rows.Scan(&seq, &r.ID, &r.UserID, &r.HoldID, &r.Provider, &r.Model, &r.InputTokens, &r.OutputTokens, &cost, &at); err != nil {
			return budget.HistoryPage{}, err
		}
		r.Cost, r.At = budget.Nanos(cost), FromUnix(at)
		p.Rows = append(p.Rows, r)
	}
	return p, nil
}
