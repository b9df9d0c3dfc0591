package budget

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// CSV files, written and read by the library.
//
// Every file is RFC 4180 (encoding/csv): a header row of column names,
// then one row per record, with quotes around cells that need them and
// CRLF line ends. A line break inside a cell is kept as a line feed: a
// carriage return in a cell is not kept (encoding/csv writes the cell's
// CR LF or lone CR as the file's line end, and reads CR LF as LF). Money is an exact decimal string in US dollars ("0.1",
// "12.000000001"), never rounded and never in exponent form; times are
// RFC 3339 in UTC, with the nanoseconds they carry.
//
// Formula injection: a spreadsheet evaluates a cell that starts with =, +,
// -, @ (or a tab or carriage return, which some strip first) as a formula,
// so a user ID or model name like "=HYPERLINK(...)" could run in the
// admin's spreadsheet. Every text cell that starts with one of those, or
// with an apostrophe, is written with a leading apostrophe, which
// spreadsheets show as text and never evaluate: "=1+1" is written '=1+1.
// ImportSettings removes the apostrophe again, so an export imports back
// to the same values. Numbers and times never start with those characters
// (no amount is negative), so they are written as they are.

// escapeCell protects a text cell against formula injection (see above).
func escapeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r'", rune(s[0])) {
		return "'" + s
	}
	return s
}

// unescapeCell undoes escapeCell.
func unescapeCell(s string) string {
	return strings.TrimPrefix(s, "'")
}

// csvTime formats a time for a CSV cell: RFC 3339 in UTC, empty for the
// zero time.
func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// csvWriter writes rows to w, escaping text cells, and reports the first
// write error.
type csvWriter struct {
	w *csv.Writer
}

func newCSVWriter(w io.Writer, header []string) (*csvWriter, error) {
	cw := &csvWriter{w: csv.NewWriter(w)}
	cw.w.UseCRLF = true // RFC 4180
	return cw, cw.row(header)
}

func (cw *csvWriter) row(cells []string) error {
	return cw.w.Write(cells)
}

// flush writes out what is buffered and returns the first error.
func (cw *csvWriter) flush() error {
	cw.w.Flush()
	return cw.w.Error()
}

// exportPage is how many rows an export reads from the store at once: the
// most it holds in memory, however many it writes.
const exportPage = MaxPageSize

// UsageColumns are the columns of ExportUsage, in order.
var UsageColumns = []string{"id", "user_id", "reservation_id", "provider", "model", "input_tokens", "output_tokens", "cost_usd", "at"}

// ExportUsage writes the usage that q selects (a user's, or a team's or an
// org's; in [From, To) where set) to w as CSV with UsageColumns, newest
// first, on behalf of actor, who must be allowed to see the budget (as for
// Daily). Call it to hand history to a spreadsheet or another system.
//
// It streams: it reads a page of rows from the store, writes it and
// flushes it, then reads the next, so its memory stays the same whatever
// the number of rows. q.Cursor and q.Limit are ignored. An error after the
// first page has left the rows before it written: the caller must not
// take a failed export for a complete one.
func (m *Manager) ExportUsage(ctx context.Context, actor Principal, w io.Writer, q UsageQuery) (err error) {
	ctx, span := m.tel.start(ctx, spanExportUsage, q.UserID, &actor)
	defer m.tel.end(span, &err)
	key, err := keyOf(q.UserID, q.Scope)
	if err != nil {
		return err
	}
	if err := checkRange(q.From, q.To); err != nil {
		return err
	}
	if _, _, err := m.viewable(ctx, actor, key, m.now()); err != nil {
		return err
	}
	cw, err := newCSVWriter(w, UsageColumns)
	if err != nil {
		return err
	}
	scoped := strings.Contains(key, keySep)
	cells := make([]string, len(UsageColumns))
	to := q.To
	for cursor := ""; ; {
		p, err := m.store.History(ctx, HistoryQuery{UserID: key, From: q.From, To: to, Cursor: cursor, Limit: exportPage})
		if err != nil {
			return fmt.Errorf("budget: export of %q: %w", key, err)
		}
		for _, r := range p.Rows {
			if user, id, ok := SplitUsageKeyID(r.ID); ok && scoped {
				r.UserID, r.ID = user, id
			}
			cells[0], cells[1], cells[2] = escapeCell(r.ID), escapeCell(r.UserID), escapeCell(r.HoldID)
			cells[3], cells[4] = escapeCell(r.Provider), escapeCell(r.Model)
			cells[5], cells[6] = strconv.FormatInt(r.InputTokens, 10), strconv.FormatInt(r.OutputTokens, 10)
			cells[7], cells[8] = r.Cost.String(), csvTime(r.At)
			if err := cw.row(cells); err != nil {
				return err
			}
		}
		if err := cw.flush(); err != nil {
			return err
		}
		if cursor = p.Next; cursor == "" {
			return nil
		}
		// The next page holds no row after the cursor's time: saying so
		// in To as well lets a store seek there by its time index, where
		// a cursor alone may have it read every row newer than the cursor
		// again (SQLite's planner bounds the scan by To, not by the
		// cursor), making a long export quadratic.
		if c, err := ParseUsageCursor(cursor); err == nil && c.At < math.MaxInt64 {
			if next := time.Unix(0, c.At+1); to.IsZero() || next.Before(to) {
				to = next
			}
		}
	}
}

// AuditColumns are the columns of ExportAudit, in order. scope is
// Scope.String of the budget an entry is about ("user:alice",
// "team:research"; empty for defaults and templates); changes lists what
// the entry changed, as Changes does ("limit_usd: 30 -> 45; ...").
var AuditColumns = []string{"id", "at", "scope", "user_id", "type", "actor", "actor_admin", "reason",
	"previous_limit_usd", "new_limit_usd", "previous_spent_usd", "period_start", "period_end", "bulk_id", "template", "changes"}

// ExportAudit writes the audit entries that q selects to w as CSV with
// AuditColumns, newest first, for admins (anyone else gets ErrForbidden).
// It streams like ExportUsage; q.Cursor and q.Limit are ignored.
func (m *Manager) ExportAudit(ctx context.Context, actor Principal, w io.Writer, q AuditLogQuery) (err error) {
	ctx, span := m.tel.start(ctx, spanExportAudit, q.UserID, &actor)
	defer m.tel.end(span, &err)
	if err := CanAdminister(actor); err != nil {
		return err
	}
	if q.UserID != "" || q.Scope != (Scope{}) {
		if q.UserID, err = keyOf(q.UserID, q.Scope); err != nil {
			return err
		}
	}
	if q.Type != "" {
		if _, err := ParseAuditType(string(q.Type)); err != nil {
			return err
		}
	}
	cw, err := newCSVWriter(w, AuditColumns)
	if err != nil {
		return err
	}
	cells := make([]string, len(AuditColumns))
	for before := int64(0); ; {
		es, err := m.store.Audit(ctx, AuditQuery{UserID: q.UserID, Type: q.Type, Before: before, Limit: exportPage})
		if err != nil {
			return fmt.Errorf("budget: audit export: %w", err)
		}
		for _, e := range es {
			scope, user := "", ""
			if e.UserID != "" {
				sc, _ := ScopeOfKey(e.UserID)
				scope = sc.String()
				if sc.Kind == UserScope {
					user = sc.ID
				}
			}
			var changes []string
			for _, c := range e.Changes() {
				changes = append(changes, c.Field+": "+c.Before+" -> "+c.After)
			}
			cells[0], cells[1], cells[2], cells[3] = strconv.FormatInt(e.ID, 10), csvTime(e.At), escapeCell(scope), escapeCell(user)
			cells[4], cells[5], cells[6], cells[7] = string(e.Type), escapeCell(e.Actor), strconv.FormatBool(e.ActorAdmin), escapeCell(e.Reason)
			cells[8], cells[9], cells[10] = e.PreviousLimit.String(), e.NewLimit.String(), e.PreviousSpent.String()
			cells[11], cells[12], cells[13], cells[14] = csvTime(e.PeriodStart), csvTime(e.PeriodEnd), escapeCell(e.BulkID), escapeCell(e.Template)
			cells[15] = escapeCell(strings.Join(changes, "; "))
			if err := cw.row(cells); err != nil {
				return err
			}
		}
		if err := cw.flush(); err != nil {
			return err
		}
		if len(es) < exportPage {
			return nil
		}
		before = es[len(es)-1].ID
	}
}

// SettingsColumns are the columns of ExportSettings and ImportSettings,
// named as the HTTP API's JSON names the fields: user_id, then the plan
// and the admin notes. Membership and model caps are not among them:
// SetMembership and UpdateBudget manage those.
var SettingsColumns = []string{"user_id", "limit_usd", "budget_period", "custom_period_days", "custom_period_anchor",
	"timezone", "enforce_budget", "alert_threshold_yellow", "alert_threshold_orange", "alert_threshold_red",
	"budget_visible_to_user", "user_can_modify_limit", "user_can_reset_budget", "admin_notes"}

// settingsCells returns the cells of s's row, in SettingsColumns' order.
func settingsCells(s *Settings, cells []string) []string {
	days, anchor := "", ""
	if s.CustomDays != 0 {
		days = strconv.Itoa(s.CustomDays)
	}
	if !s.CustomAnchor.IsZero() {
		anchor = csvTime(s.CustomAnchor)
	}
	return append(cells[:0], escapeCell(s.UserID), s.Limit.String(), string(s.Period), days, anchor,
		escapeCell(s.Timezone), strconv.FormatBool(s.Enforce),
		s.Thresholds.Yellow.String(), s.Thresholds.Orange.String(), s.Thresholds.Red.String(),
		strconv.FormatBool(s.Visible), strconv.FormatBool(s.CanModify), strconv.FormatBool(s.CanReset),
		escapeCell(s.AdminNotes))
}

// ExportSettings writes every user's settings to w as CSV with
// SettingsColumns, in user ID order, for admins (anyone else gets
// ErrForbidden): the file ImportSettings reads back, here or into another
// store. It streams like ExportUsage.
func (m *Manager) ExportSettings(ctx context.Context, actor Principal, w io.Writer) (err error) {
	ctx, span := m.tel.start(ctx, spanExportSet, "", &actor)
	defer m.tel.end(span, &err)
	if err := CanAdminister(actor); err != nil {
		return err
	}
	cw, err := newCSVWriter(w, SettingsColumns)
	if err != nil {
		return err
	}
	cells := make([]string, 0, len(SettingsColumns))
	n := 0
	err = m.accounts(ctx, m.now(), func(a Account) error {
		if err := cw.row(settingsCells(&a.Settings, cells)); err != nil {
			return err
		}
		if n++; n%exportPage == 0 {
			return cw.flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return cw.flush()
}
