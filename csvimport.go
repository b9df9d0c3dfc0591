package budget

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// MaxImportRows bounds the data rows of one imported file.
const MaxImportRows = 10000

// maxImportBytes bounds what an import reads of one file, whatever its
// rows: 32 MiB is 10,000 rows of 3 KiB.
const maxImportBytes = 32 << 20

// ImportOptions say how an import runs.
type ImportOptions struct {
	// DryRun checks every row and reports what it would change, and
	// changes nothing.
	DryRun bool
	// Reason is written in every audit entry the import makes: at most
	// 1024 bytes of UTF-8. Empty means "import".
	Reason string
}

// ImportResult is what an import did, or with DryRun would do, row by row.
type ImportResult struct {
	DryRun bool
	// Applied is true when the import wrote its changes: a run that is not
	// a dry run, with no row in error. An import writes every row or none.
	Applied bool
	// BulkID is shared by the import's audit entries.
	BulkID string
	// Changed counts the users whose settings the import changes, Created
	// those of them it gives settings for the first time, and Audit the
	// audit entries it imports (ImportSeed's resets).
	Changed, Created, Audit int
	// Rows has one entry per data row, in file order (for ImportSeed, the
	// settings file's, then the reset log's).
	Rows []ImportRow
}

// ImportRow is what an import does with one row.
type ImportRow struct {
	// File names the file for ImportSeed ("user_budget_settings",
	// "budget_reset_log"); empty for ImportSettings.
	File string
	// Line is the row's line in its file; the header is line 1.
	Line   int
	UserID string
	// Created says the user had no settings: the row gives them their
	// first, from the defaults and the row.
	Created bool
	// Changes are the fields the row changes, with their values before
	// and after (see AuditEntry.Changes); none when it changes nothing.
	Changes []Change
	// Notes say what the row's values lost or left on the way in: amounts
	// rounded to 9 places, columns not imported.
	Notes []string
	// Err is why the row cannot be imported, a *RowError; then nothing of
	// the import is written.
	Err error
}

// RowError says which row (and column) of an imported file is wrong, and
// why. It wraps the reason: errors.Is(err, ErrInvalid) for malformed
// rows, ErrInvalidAmount for a bad amount.
type RowError struct {
	File   string
	Line   int
	Column string
	Err    error
}

func (e *RowError) Error() string {
	where := "line " + strconv.Itoa(e.Line)
	if e.File != "" {
		where = e.File + " " + where
	}
	if e.Column != "" {
		where += ", column " + e.Column
	}
	return "budget: import: " + where + ": " + strings.TrimPrefix(e.Err.Error(), "budget: ")
}

func (e *RowError) Unwrap() error { return e.Err }

// ImportError is the error of an import with rows in error: nothing was
// written. It matches ErrInvalid, and errors.Is matches too what any
// row's error matches (ErrInvalidAmount, ...); errors.As finds the first
// *RowError.
type ImportError struct {
	Rows []*RowError
}

func (e *ImportError) Error() string {
	if len(e.Rows) == 1 {
		return e.Rows[0].Error() + "; nothing was imported"
	}
	return fmt.Sprintf("%s; and %d more rows in error; nothing was imported", e.Rows[0].Error(), len(e.Rows)-1)
}

// Is makes errors.Is(err, ErrInvalid) true whatever the rows' errors:
// the input was invalid.
func (e *ImportError) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the rows' errors.
func (e *ImportError) Unwrap() []error {
	out := make([]error, len(e.Rows))
	for i, r := range e.Rows {
		out[i] = r
	}
	return out
}

// invalid returns a row error wrapping ErrInvalid with reason.
func invalid(file string, line int, column, reason string, args ...any) *RowError {
	return &RowError{File: file, Line: line, Column: column, Err: &ValidationError{Field: cmp.Or(column, "row"), Reason: fmt.Sprintf(reason, args...)}}
}

// table is a CSV file read for an import: its columns and its records.
type table struct {
	file string
	col  map[string]int // column name → index
	rows []record
	errs []*RowError // of the header and of rows that could not be read
}

type record struct {
	line  int
	cells []string
}

// get returns the cell of column name and whether the file has the column.
func (r record) get(t *table, name string) (string, bool) {
	i, ok := t.col[name]
	if !ok {
		return "", false
	}
	return r.cells[i], true
}

// readTable reads an import file: a header of known columns (each at most
// once, required among them), then records of as many cells. A UTF-8 byte
// order mark before the header (as spreadsheets write) is skipped; CRLF
// and LF line ends are both read. A record that cannot be read (a wrong
// number of cells, a stray quote) is an error of its line; reading goes on
// after it when the file allows, so that one pass reports every bad row.
func readTable(file string, in io.Reader, known []string, required ...string) *table {
	t := &table{file: file, col: map[string]int{}}
	lr := &io.LimitedReader{R: in, N: maxImportBytes + 1}
	r := csv.NewReader(lr)
	header, err := r.Read()
	switch {
	case err == io.EOF:
		t.errs = append(t.errs, invalid(file, 1, "", "the file is empty: it needs a header row"))
		return t
	case err != nil:
		t.errs = append(t.errs, csvError(file, 1, err))
		return t
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\uFEFF")
	}
	for i, h := range header {
		_, twice := t.col[h]
		switch {
		case !slices.Contains(known, h):
			t.errs = append(t.errs, invalid(file, 1, h, "unknown column %q (the columns are %s)", h, strings.Join(known, ", ")))
		case twice:
			t.errs = append(t.errs, invalid(file, 1, h, "column %q appears twice", h))
		default:
			t.col[h] = i
		}
	}
	for _, c := range required {
		if _, ok := t.col[c]; !ok {
			t.errs = append(t.errs, invalid(file, 1, c, "the header has no column %q", c))
		}
	}
	if len(t.errs) > 0 {
		return t
	}
	r.FieldsPerRecord = len(header)
	for {
		cells, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			line := 0
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.StartLine
			}
			t.errs = append(t.errs, csvError(file, line, err))
			if pe == nil || (!errors.Is(err, csv.ErrFieldCount) && !errors.Is(err, csv.ErrBareQuote)) {
				break // the rest of the file cannot be trusted
			}
			continue
		}
		line, _ := r.FieldPos(0)
		if len(t.rows) == MaxImportRows {
			t.errs = append(t.errs, invalid(file, line, "", "more than %d rows: split the file", MaxImportRows))
			break
		}
		if e := checkCells(file, line, header, cells); e != nil {
			t.errs = append(t.errs, e)
			continue
		}
		t.rows = append(t.rows, record{line: line, cells: cells})
	}
	if lr.N <= 0 {
		t.errs = append(t.errs, invalid(file, 0, "", "the file is larger than %d bytes", maxImportBytes))
	}
	return t
}

// csvError is the row error of a CSV syntax error.
func csvError(file string, line int, err error) *RowError {
	var pe *csv.ParseError
	reason := err.Error()
	if errors.As(err, &pe) {
		reason = pe.Err.Error()
		if errors.Is(err, csv.ErrFieldCount) {
			reason = "wrong number of cells for the header"
		}
	}
	return &RowError{File: file, Line: line, Err: fmt.Errorf("%w: malformed CSV: %s", ErrInvalid, reason)}
}

// checkCells refuses cells that are not UTF-8 or that hold a byte order
// mark (one that a file joined from several exports carries mid-file),
// which would make a user ID that looks like another.
func checkCells(file string, line int, header, cells []string) *RowError {
	for i, c := range cells {
		switch {
		case !utf8.ValidString(c):
			return invalid(file, line, header[i], "not UTF-8")
		case strings.ContainsRune(c, '\uFEFF'):
			return invalid(file, line, header[i], "a byte order mark inside a cell")
		}
	}
	return nil
}

// importRow is a settings row as an import applies it.
type importRow struct {
	file  string
	line  int
	user  string
	u     SettingsUpdate
	notes []string
	err   *RowError
}

// auditRow is an audit entry an import appends (ImportSeed's resets).
type auditRow struct {
	line  int
	e     AuditEntry
	notes []string
	err   *RowError
}

// ImportSettings reads a CSV file of settings, one row per user, and
// applies every row or, on any error, none, on behalf of an admin (anyone
// else gets ErrForbidden). Call it with DryRun first to show an admin what
// a file will do.
//
// The header names user_id and any subset of the other SettingsColumns;
// a column left out leaves that field as it is. A cell is the field's
// value as ExportSettings writes it: amounts in exact decimal (at most 9
// places; thresholds 2), booleans true or false, the anchor in RFC 3339,
// a text cell with the leading apostrophe an export adds against formula
// injection removed. An empty cell means no notes (admin_notes), UTC
// (timezone) or no custom length or anchor (custom_period_days and
// custom_period_anchor); elsewhere it leaves the field as it is. A user
// without settings gets the defaults' with the row applied. Each user
// changed is audited as UpdateSettings audits, with the result's BulkID.
//
// Every row is checked before anything is written: a malformed file (no
// or an unknown or repeated column, a wrong number of cells, stray
// quotes, a byte order mark or invalid UTF-8 inside a cell), a bad value,
// a repeated user, or settings that do not validate, make the import
// write nothing and return an *ImportError (matching ErrInvalid) with
// every bad row; the result lists every row either way. Then all rows are
// written in one atomic step of the store (Store.Import), or none: a
// concurrent change of one of the users makes the Manager read them
// again and retry. A row that changes nothing writes nothing.
func (m *Manager) ImportSettings(ctx context.Context, actor Principal, r io.Reader, o ImportOptions) (_ ImportResult, err error) {
	ctx, span := m.tel.start(ctx, spanImport, "", &actor)
	defer m.tel.end(span, &err)
	if err := checkImport(actor, o); err != nil {
		return ImportResult{}, err
	}
	rows, errs := parseSettingsCSV(r)
	return m.runImport(ctx, actor, rows, nil, errs, o)
}

// checkImport checks who imports and how.
func checkImport(actor Principal, o ImportOptions) error {
	if err := CanAdminister(actor); err != nil {
		return err
	}
	if len(o.Reason) > MaxReasonLen || !utf8.ValidString(o.Reason) {
		return &ValidationError{Field: "reason", Reason: "must be at most 1024 bytes of UTF-8"}
	}
	return nil
}

// parseSettingsCSV reads a settings file as ImportSettings describes.
func parseSettingsCSV(r io.Reader) ([]importRow, []*RowError) {
	t := readTable("", r, SettingsColumns, "user_id")
	rows := make([]importRow, 0, len(t.rows))
	for _, rec := range t.rows {
		row := importRow{line: rec.line}
		row.err = parseSettingsRow(t, rec, &row)
		rows = append(rows, row)
	}
	return rows, t.errs
}

// parseSettingsRow reads the cells of one settings row into row.
func parseSettingsRow(t *table, rec record, row *importRow) *RowError {
	cell := func(name string) (string, bool) { return rec.get(t, name) }
	bad := func(column string, err error) *RowError {
		return &RowError{File: t.file, Line: rec.line, Column: column, Err: err}
	}
	id, _ := cell("user_id")
	row.user = unescapeCell(id)
	if err := ValidateUserID(row.user); err != nil {
		return bad("user_id", err)
	}
	u := &row.u
	if v, ok := cell("limit_usd"); ok && v != "" {
		d, err := ParseAmount(v)
		if err != nil {
			return bad("limit_usd", err)
		}
		u.Limit = &d
	}
	if v, ok := cell("budget_period"); ok && v != "" {
		p := Period(v)
		if !p.Valid() {
			return bad("budget_period", &ValidationError{Field: "budget_period", Reason: "must be daily, weekly, monthly or custom"})
		}
		u.Period = &p
	}
	if v, ok := cell("custom_period_days"); ok {
		n := 0
		if v != "" {
			var err error
			if n, err = strconv.Atoi(v); err != nil || n < 1 || n > MaxCustomDays {
				return bad("custom_period_days", &ValidationError{Field: "custom_period_days", Reason: "must be a whole number from 1 to 3660"})
			}
		}
		u.CustomDays = &n
	}
	if v, ok := cell("custom_period_anchor"); ok {
		var a time.Time
		if v != "" {
			var err error
			if a, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return bad("custom_period_anchor", &ValidationError{Field: "custom_period_anchor", Reason: "must be an RFC 3339 time"})
			}
			if err := ValidateAnchor(a); err != nil {
				return bad("custom_period_anchor", err)
			}
		}
		u.CustomAnchor = &a
	}
	if v, ok := cell("timezone"); ok {
		v = unescapeCell(v)
		u.Timezone = &v
	}
	for _, b := range [...]struct {
		col string
		dst **bool
	}{{"enforce_budget", &u.Enforce}, {"budget_visible_to_user", &u.Visible}, {"user_can_modify_limit", &u.CanModify}, {"user_can_reset_budget", &u.CanReset}} {
		if v, ok := cell(b.col); ok && v != "" {
			x, err := parseBool(v)
			if err != nil {
				return bad(b.col, &ValidationError{Field: b.col, Reason: "must be true or false"})
			}
			*b.dst = &x
		}
	}
	for _, th := range [...]struct {
		col string
		dst **decimal.Decimal
	}{{"alert_threshold_yellow", &u.Yellow}, {"alert_threshold_orange", &u.Orange}, {"alert_threshold_red", &u.Red}} {
		if v, ok := cell(th.col); ok && v != "" {
			d, err := parseThreshold(th.col, v)
			if err != nil {
				return bad(th.col, err)
			}
			*th.dst = &d
		}
	}
	if v, ok := cell("admin_notes"); ok {
		v = unescapeCell(v)
		if len(v) > MaxNotesLen {
			return bad("admin_notes", &ValidationError{Field: "admin_notes", Reason: "must be at most 4096 bytes of UTF-8"})
		}
		u.AdminNotes = &v
	}
	return nil
}

// parseBool reads true or false in any case (spreadsheets write TRUE), or
// 1 or 0.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, errors.New("not a boolean")
}

// parseThreshold reads a threshold: a decimal percentage as
// Thresholds.Validate accepts it.
func parseThreshold(field, v string) (decimal.Decimal, error) {
	if len(v) > 32 || strings.ContainsAny(v, "eE") {
		return decimal.Decimal{}, &ValidationError{Field: field, Reason: "must be a decimal percentage such as 75 or 87.5"}
	}
	d, err := decimal.NewFromString(v)
	if err != nil {
		return decimal.Decimal{}, &ValidationError{Field: field, Reason: "must be a decimal percentage such as 75 or 87.5"}
	}
	return d, validThreshold(field, d)
}

// runImport checks rows (and the audit rows of ImportSeed) against the
// users' current settings and, unless a dry run or a row fails, writes
// them in one Store.Import, retrying on a concurrent change. errs are the
// files' errors found while reading.
func (m *Manager) runImport(ctx context.Context, actor Principal, rows []importRow, audits []auditRow, errs []*RowError, o ImportOptions) (ImportResult, error) {
	reason := cmp.Or(o.Reason, "import")
	res := ImportResult{DryRun: o.DryRun, BulkID: m.newID("b-")}
	var floor time.Time
	for attempt := 0; ; attempt++ {
		now := latest(m.now(), floor)
		res.Rows, res.Changed, res.Created, res.Audit = res.Rows[:0], 0, 0, 0
		failed := slices.Clone(errs)
		fail := func(r *ImportRow, e *RowError) {
			r.Err = e
			failed = append(failed, e)
		}
		var items []ImportItem
		type applied struct {
			next Settings
			nxt  Policy
		}
		var done []applied
		seen := map[string]int{}
		users := map[string]bool{} // users with settings once the import is done
		for _, row := range rows {
			r := ImportRow{File: row.file, Line: row.line, UserID: row.user, Notes: row.notes}
			if row.err != nil {
				fail(&r, row.err)
				res.Rows = append(res.Rows, r)
				continue
			}
			if first, ok := seen[row.user]; ok {
				fail(&r, invalid(row.file, row.line, "user_id", "user %q is on line %d already: one row per user", row.user, first))
				res.Rows = append(res.Rows, r)
				continue
			}
			seen[row.user] = row.line
			s, stored, err := m.settingsOrNew(ctx, row.user, now)
			if err != nil {
				return res, fmt.Errorf("budget: import: %w", err)
			}
			next, err := m.nextSettings(actor, s, row.u, how{}, now)
			if err != nil {
				var ve *ValidationError
				if !errors.As(err, &ve) && !errors.Is(err, ErrInvalidAmount) {
					return res, fmt.Errorf("budget: import: %w", err)
				}
				fail(&r, &RowError{File: row.file, Line: row.line, Column: columnOf(err), Err: err})
				res.Rows = append(res.Rows, r)
				continue
			}
			users[row.user] = true
			before, after := s, next
			r.Changes = AuditEntry{Before: &before, After: &after}.Changes()
			r.Created = !stored
			res.Rows = append(res.Rows, r)
			if stored && next.Plan.equal(s.Plan) && next.AdminNotes == s.AdminNotes {
				continue
			}
			res.Changed++
			if !stored {
				res.Created++
			}
			next.Version, next.UpdatedAt = s.Version+1, now
			cur, err1 := m.policy(s, now)
			nxt, err2 := m.policy(next, now)
			if err := errors.Join(err1, err2); err != nil {
				return res, err
			}
			after = next
			items = append(items, ImportItem{
				Create: !stored, Initial: s, Settings: next, Current: cur, Next: nxt,
				Audit: AuditEntry{
					UserID: row.user, Type: AuditSettings, Actor: actor.UserID, ActorAdmin: actor.Admin,
					PreviousLimit: s.Limit, NewLimit: next.Limit, Before: &before, After: &after,
					Reason: reason, BulkID: res.BulkID, At: now,
				},
			})
			done = append(done, applied{next, nxt})
		}
		var entries []AuditEntry
		for _, a := range audits {
			r := ImportRow{File: seedResets, Line: a.line, UserID: a.e.UserID, Notes: a.notes}
			switch {
			case a.err != nil:
				fail(&r, a.err)
			case !users[a.e.UserID]:
				if _, err := m.store.Settings(ctx, a.e.UserID); errors.Is(err, ErrNotFound) {
					fail(&r, invalid(seedResets, a.line, "user_id", "user %q has no settings, here or in the settings file", a.e.UserID))
				} else if err != nil {
					return res, fmt.Errorf("budget: import: %w", err)
				}
			}
			if r.Err == nil {
				e := a.e
				e.BulkID = res.BulkID
				entries = append(entries, e)
				res.Audit++
			}
			res.Rows = append(res.Rows, r)
		}
		for _, e := range errs {
			if e.Line > 1 { // a row that could not be read
				res.Rows = append(res.Rows, ImportRow{File: e.File, Line: e.Line, Err: e})
			}
		}
		slices.SortStableFunc(res.Rows, func(a, b ImportRow) int {
			return cmp.Or(cmp.Compare(fileOrder(a.File), fileOrder(b.File)), cmp.Compare(a.Line, b.Line))
		})
		if len(failed) > 0 {
			res.Changed, res.Created, res.Audit = 0, 0, 0
			slices.SortStableFunc(failed, func(a, b *RowError) int {
				return cmp.Or(cmp.Compare(fileOrder(a.File), fileOrder(b.File)), cmp.Compare(a.Line, b.Line))
			})
			return res, &ImportError{Rows: failed}
		}
		if o.DryRun || (len(items) == 0 && len(entries) == 0) {
			return res, nil
		}
		slices.SortFunc(entries, func(a, b AuditEntry) int { return a.At.Compare(b.At) })
		order := make([]int, len(items))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return strings.Compare(items[a].Settings.UserID, items[b].Settings.UserID) })
		sorted := make([]ImportItem, len(items))
		for i, j := range order {
			sorted[i] = items[j]
		}
		totals, err := m.store.Import(ctx, ImportRequest{Items: sorted, Audit: entries, Now: now})
		if errors.Is(err, ErrConflict) && attempt < maxRetries {
			m.tel.retrying(ctx, "import", "", err, attempt)
			floor = lateStart(err, floor)
			continue
		}
		if err != nil {
			return res, fmt.Errorf("budget: import: %w", err)
		}
		res.Applied = true
		for i, j := range order {
			if i < len(totals) {
				c := m.remember(done[j].next, done[j].nxt)
				m.fire(newStatus(c, totals[i]), totals[i].Alerts, now)
			}
		}
		return res, nil
	}
}

// fileOrder orders the files of ImportSeed: settings, then resets.
func fileOrder(file string) int {
	if file == seedResets {
		return 1
	}
	return 0
}

// columnOf returns the field a validation error names, which is the
// column of the settings files.
func columnOf(err error) string {
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve.Field
	}
	if errors.Is(err, ErrInvalidAmount) {
		return "limit_usd"
	}
	return ""
}
