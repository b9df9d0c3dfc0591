package budget

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// The seed system's tables, as ImportSeed reads them: the Python app whose
// budgets this library replaces kept them in SQL, and they arrive exported
// as CSV with their column names (sqlite3 -csv -header, psql \copy ... CSV
// HEADER, or any spreadsheet).
const (
	seedSettings = "user_budget_settings"
	seedResets   = "budget_reset_log"
)

// SeedSettingsColumns are the columns of the seed's user_budget_settings
// table, any subset of which (with user_id) ImportSeed reads.
var SeedSettingsColumns = []string{"id", "user_id", "monthly_limit_usd", "custom_limit_usd", "budget_period",
	"enforce_budget", "budget_visible_to_user", "user_can_modify_limit", "user_can_reset_budget",
	"alert_threshold_yellow", "alert_threshold_orange", "alert_threshold_red",
	"current_period_start", "current_period_end", "admin_notes", "created_at", "updated_at"}

// SeedResetColumns are the columns of the seed's budget_reset_log table.
var SeedResetColumns = []string{"id", "user_id", "reset_type", "reset_by", "previous_limit", "new_limit",
	"previous_spent", "reason", "reset_at"}

// ImportSeed imports the seed system's two tables, each exported as CSV
// with its column names: settings, user_budget_settings (one row per user)
// and resets, budget_reset_log; either may be nil. It runs as
// ImportSettings does: admins only, a dry run that changes nothing, and
// every row written in one atomic step of the store, or, if any row is
// wrong, none.
//
// A settings row becomes the user's settings:
//
//	monthly_limit_usd                     → the limit
//	budget_period                         → the period (monthly, weekly, daily, custom; any case)
//	enforce_budget, budget_visible_to_user,
//	user_can_modify_limit, user_can_reset_budget → the same switches (1/0, true/false, t/f)
//	alert_threshold_yellow/orange/red     → the thresholds, in percent
//	admin_notes                           → the admin notes
//	custom_limit_usd                      → the limit, for a custom period only
//	current_period_start, _end            → a custom period's anchor and length in days
//
// id, created_at and updated_at are not imported; neither are
// current_period_start and _end but for a custom period, nor
// custom_limit_usd but for one (a row notes a custom limit it leaves out).
// The seed has no time zone: users keep theirs, new users get the
// defaults'. An empty cell (SQL NULL) leaves the field as it is.
//
// FLOAT columns are read from their text exactly, never through a binary
// float: "29.999999999999996" is that decimal number, rounded to 9 places
// (half away from zero: 30.000000000), and a row that rounds notes it.
// Thresholds are rounded to 2 places, likewise noted.
//
// A reset row becomes an audit entry of its user, with its original time
// (reset_at): reset_type manual or automatic, reset_by as the actor
// ("system" for an automatic reset without one), previous_limit, new_limit
// and previous_spent (FLOATs, as above), reason. Entries are appended in
// reset_at order, so their IDs are new and later than every entry already
// in the log. Times without a zone (SQL DATETIME) are read as UTC. A reset
// row's user must have settings, in the store or in the settings file.
func (m *Manager) ImportSeed(ctx context.Context, actor Principal, settings, resets io.Reader, o ImportOptions) (_ ImportResult, err error) {
	ctx, span := m.tel.start(ctx, spanImportSeed, "", &actor)
	defer m.tel.end(span, &err)
	if err := checkImport(actor, o); err != nil {
		return ImportResult{}, err
	}
	var (
		rows   []importRow
		audits []auditRow
		errs   []*RowError
	)
	if settings != nil {
		t := readTable(seedSettings, settings, SeedSettingsColumns, "user_id")
		errs = append(errs, t.errs...)
		for _, rec := range t.rows {
			row := importRow{file: seedSettings, line: rec.line}
			row.err = parseSeedSettings(t, rec, &row)
			rows = append(rows, row)
		}
	}
	if resets != nil {
		t := readTable(seedResets, resets, SeedResetColumns, "user_id", "reset_type", "previous_limit", "new_limit", "previous_spent", "reset_at")
		errs = append(errs, t.errs...)
		for _, rec := range t.rows {
			a := auditRow{line: rec.line}
			a.err = parseSeedReset(t, rec, &a)
			audits = append(audits, a)
		}
		// In time order, the file's order among equal times.
		slices.SortStableFunc(audits, func(a, b auditRow) int { return a.e.At.Compare(b.e.At) })
	}
	return m.runImport(ctx, actor, rows, audits, errs, o)
}

// parseSeedSettings reads one row of user_budget_settings into row.
func parseSeedSettings(t *table, rec record, row *importRow) *RowError {
	cell := func(name string) string { v, _ := rec.get(t, name); return strings.TrimSpace(v) }
	bad := func(column string, err error) *RowError {
		return &RowError{File: t.file, Line: rec.line, Column: column, Err: err}
	}
	note := func(format string, args ...any) { row.notes = append(row.notes, fmt.Sprintf(format, args...)) }
	row.user = cell("user_id")
	if err := ValidateUserID(row.user); err != nil {
		return bad("user_id", err)
	}
	u := &row.u
	money := func(col string) (*decimal.Decimal, *RowError) {
		v := cell(col)
		if v == "" {
			return nil, nil
		}
		d, rounded, err := parseFloatText(v, Places)
		if err != nil {
			return nil, bad(col, err)
		}
		if _, err := ToNanos(d); err != nil {
			return nil, bad(col, err)
		}
		if rounded {
			note("%s %s rounded to %s", col, v, d.StringFixed(Places))
		}
		return &d, nil
	}
	var e *RowError
	if u.Limit, e = money("monthly_limit_usd"); e != nil {
		return e
	}
	if v := cell("budget_period"); v != "" {
		p := Period(strings.ToLower(v))
		if !p.Valid() {
			return bad("budget_period", &ValidationError{Field: "budget_period", Reason: "must be monthly, weekly, daily or custom"})
		}
		u.Period = &p
	}
	custom, err := money("custom_limit_usd")
	if err != nil {
		return err
	}
	if u.Period != nil && *u.Period == Custom {
		if custom != nil {
			u.Limit = custom
		}
		start, err1 := parseSeedTime(cell("current_period_start"))
		end, err2 := parseSeedTime(cell("current_period_end"))
		switch {
		case err1 != nil || start.IsZero():
			return bad("current_period_start", &ValidationError{Field: "current_period_start", Reason: "a custom period needs its start, a date and time"})
		case err2 != nil || !end.After(start):
			return bad("current_period_end", &ValidationError{Field: "current_period_end", Reason: "a custom period needs its end, after its start"})
		}
		days := int(math.Round(end.Sub(start).Hours() / 24))
		if days < 1 || days > MaxCustomDays {
			return bad("current_period_end", &ValidationError{Field: "current_period_end", Reason: "a custom period lasts 1 to 3660 days"})
		}
		if err := ValidateAnchor(start); err != nil {
			return bad("current_period_start", err)
		}
		u.CustomDays, u.CustomAnchor = &days, &start
	} else if custom != nil && (u.Limit == nil || !custom.Equal(*u.Limit)) {
		note("custom_limit_usd %s not imported: the period is not custom", custom)
	}
	for _, b := range [...]struct {
		col string
		dst **bool
	}{{"enforce_budget", &u.Enforce}, {"budget_visible_to_user", &u.Visible}, {"user_can_modify_limit", &u.CanModify}, {"user_can_reset_budget", &u.CanReset}} {
		if v := cell(b.col); v != "" {
			x, err := parseSeedBool(v)
			if err != nil {
				return bad(b.col, &ValidationError{Field: b.col, Reason: "must be a boolean: 1, 0, true or false"})
			}
			*b.dst = &x
		}
	}
	for _, th := range [...]struct {
		col, field string
		dst        **decimal.Decimal
	}{{"alert_threshold_yellow", "alert_threshold_yellow", &u.Yellow}, {"alert_threshold_orange", "alert_threshold_orange", &u.Orange}, {"alert_threshold_red", "alert_threshold_red", &u.Red}} {
		if v := cell(th.col); v != "" {
			d, rounded, err := parseFloatText(v, 2)
			if err == nil {
				err = validThreshold(th.field, d)
			}
			if err != nil {
				return bad(th.col, err)
			}
			if rounded {
				note("%s %s rounded to %s", th.col, v, d.StringFixed(2))
			}
			*th.dst = &d
		}
	}
	if v, ok := rec.get(t, "admin_notes"); ok && v != "" {
		if len(v) > MaxNotesLen {
			return bad("admin_notes", &ValidationError{Field: "admin_notes", Reason: "must be at most 4096 bytes of UTF-8"})
		}
		u.AdminNotes = &v
	}
	return nil
}

// parseSeedReset reads one row of budget_reset_log into a.
func parseSeedReset(t *table, rec record, a *auditRow) *RowError {
	cell := func(name string) string { v, _ := rec.get(t, name); return strings.TrimSpace(v) }
	bad := func(column string, err error) *RowError {
		return &RowError{File: t.file, Line: rec.line, Column: column, Err: err}
	}
	e := &a.e
	e.UserID = cell("user_id")
	if err := ValidateUserID(e.UserID); err != nil {
		return bad("user_id", err)
	}
	switch strings.ToLower(cell("reset_type")) {
	case "manual":
		e.Type = AuditManualReset
	case "automatic":
		e.Type = AuditAutomaticReset
	default:
		return bad("reset_type", &ValidationError{Field: "reset_type", Reason: "must be manual or automatic"})
	}
	for _, f := range [...]struct {
		col string
		dst *decimal.Decimal
	}{{"previous_limit", &e.PreviousLimit}, {"new_limit", &e.NewLimit}, {"previous_spent", &e.PreviousSpent}} {
		v := cell(f.col)
		if v == "" {
			return bad(f.col, &ValidationError{Field: f.col, Reason: "is NOT NULL in the seed's table"})
		}
		d, rounded, err := parseFloatText(v, Places)
		if err == nil {
			_, err = ToNanos(d)
		}
		if err != nil {
			return bad(f.col, err)
		}
		if rounded {
			a.notes = append(a.notes, fmt.Sprintf("%s %s rounded to %s", f.col, v, d.StringFixed(Places)))
		}
		*f.dst = d
	}
	at, err := parseSeedTime(cell("reset_at"))
	if err != nil || at.IsZero() {
		return bad("reset_at", &ValidationError{Field: "reset_at", Reason: "must be a date and time (2006-01-02 15:04:05, or RFC 3339)"})
	}
	if y := at.Year(); y < 1680 || y > 2260 {
		return bad("reset_at", &ValidationError{Field: "reset_at", Reason: "must be between the years 1680 and 2260"})
	}
	e.At = at
	e.Actor, _ = rec.get(t, "reset_by")
	if e.Actor == "" {
		if e.Type == AuditAutomaticReset {
			e.Actor = SystemActor
		} else {
			e.Actor = "unknown"
			a.notes = append(a.notes, "reset_by empty: the actor is recorded as unknown")
		}
	}
	e.Reason, _ = rec.get(t, "reason")
	for _, f := range [...]struct{ col, v string }{{"reset_by", e.Actor}, {"reason", e.Reason}} {
		if max := map[string]int{"reset_by": MaxUserIDLen, "reason": MaxReasonLen}[f.col]; len(f.v) > max {
			return bad(f.col, &ValidationError{Field: f.col, Reason: fmt.Sprintf("must be at most %d bytes", max)})
		}
	}
	return nil
}

// parseSeedBool reads a SQL BOOLEAN as exported: 1 or 0, true or false,
// t or f, yes or no, in any case.
func parseSeedBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "true", "t", "yes", "y":
		return true, nil
	case "0", "false", "f", "no", "n":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean")
}

// parseSeedTime reads a SQL DATETIME as exported ("2025-12-14 10:30:00",
// with a fraction of a second or not, or RFC 3339); a time without a zone
// is UTC. Empty is the zero time.
func parseSeedTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range [...]string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("not a date and time")
}

// parseFloatText reads the text of a SQL FLOAT as an exact decimal number
// (digits, a point, an exponent: "30", "0.1", "1e-05",
// "29.999999999999996"), never through a binary float, and rounds it to
// places decimal places, half away from zero, reporting whether that
// changed it. Negative numbers, infinities and NaN are errors.
func parseFloatText(v string, places int32) (decimal.Decimal, bool, error) {
	bad := fmt.Errorf("%w: %q is not a non-negative decimal number", ErrInvalidAmount, v)
	if len(v) > maxAmountText {
		return decimal.Decimal{}, false, bad
	}
	mant, exp, hasExp := v, "", false
	if i := strings.IndexAny(v, "eE"); i >= 0 {
		mant, exp, hasExp = v[:i], v[i+1:], true
	}
	mant = strings.TrimPrefix(mant, "+")
	negative := strings.HasPrefix(mant, "-")
	mant = strings.TrimPrefix(mant, "-")
	ip, frac, _ := strings.Cut(mant, ".")
	if ip == "" && frac == "" || !allDigits(ip) || !allDigits(frac) {
		return decimal.Decimal{}, false, bad
	}
	if hasExp {
		e := strings.TrimPrefix(strings.TrimPrefix(exp, "+"), "-")
		// An exponent beyond ±400 is no FLOAT's, and would make the
		// rounding below expand it.
		if e == "" || !allDigits(e) || len(strings.TrimLeft(e, "0")) > 3 {
			return decimal.Decimal{}, false, bad
		}
		if n := strings.TrimLeft(e, "0"); len(n) == 3 && n > "400" {
			return decimal.Decimal{}, false, bad
		}
	}
	d, err := decimal.NewFromString(strings.TrimPrefix(v, "+"))
	if err != nil {
		return decimal.Decimal{}, false, bad
	}
	if negative && !d.IsZero() {
		return decimal.Decimal{}, false, bad
	}
	if negative {
		d = decimal.Zero
	}
	r := d.Round(places)
	return r, !r.Equal(d), nil
}
