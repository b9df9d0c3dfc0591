package httpapi

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/llmbudget/budget"
)

// The insights: spend per day, the forecast (in the status, encode.go),
// CSV exports of usage and of the audit log, and CSV imports of settings
// and of the seed system's tables.

// MaxImportBytes is the largest body an import reads; a larger one gets
// 413. The core reads at most budget.MaxImportRows rows of it.
const MaxImportBytes = 32 << 20

// The seed system's tables, as POST /admin/import/seed takes them: the
// names of the multipart parts.
const (
	partSeedSettings = "user_budget_settings"
	partSeedResets   = "budget_reset_log"
)

// GET /usage/daily?from=&to= and GET /admin/users/{user_id}/usage/daily?from=&to=
func (s *server) daily(of subject) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
		scope, from, to, err := scopedRange(r, p, of)
		if err != nil {
			return err
		}
		dq := budget.DailyQuery{Scope: scope, From: from, To: to}
		if scope.Kind == budget.UserScope {
			dq = budget.DailyQuery{UserID: scope.ID, From: from, To: to}
		}
		d, err := s.m.Daily(r.Context(), p, dq)
		if err != nil {
			return err
		}
		return writeJSON(w, dailyOf(scope, d))
	}
}

// dailyJSON is GET /usage/daily: a user's spend per calendar day of their
// time zone ("scope" and "id" instead of "user_id" for a team or org).
type dailyJSON struct {
	UserID   string    `json:"user_id,omitempty"`
	Scope    string    `json:"scope,omitempty"`
	ID       string    `json:"id,omitempty"`
	Timezone string    `json:"timezone"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Total    itemJSON  `json:"total"`
	// Days lists the days with usage, oldest first.
	Days []dayJSON `json:"days"`
}

// dayJSON is one local day: its date, its bounds (in UTC), its total and
// its split by provider and model.
type dayJSON struct {
	Date    string     `json:"date"`
	Start   time.Time  `json:"start"`
	End     time.Time  `json:"end"`
	Total   itemJSON   `json:"total"`
	ByModel []itemJSON `json:"by_model"`
}

func dailyOf(scope budget.Scope, d budget.DailySpend) dailyJSON {
	tz := d.Timezone
	if tz == "" {
		tz = "UTC"
	}
	j := dailyJSON{Timezone: tz, From: utc(d.From), To: utc(d.To), Total: itemOf(d.Total), Days: make([]dayJSON, len(d.Days))}
	if scope.Kind == budget.UserScope {
		j.UserID = scope.ID
	} else {
		j.Scope, j.ID = string(scope.Kind), scope.ID
	}
	for i, day := range d.Days {
		dj := dayJSON{Date: day.Date, Start: utc(day.Start), End: utc(day.End), Total: itemOf(day.Total),
			ByModel: make([]itemJSON, len(day.ByModel))}
		for k, it := range day.ByModel {
			dj.ByModel[k] = itemOf(it)
		}
		j.Days[i] = dj
	}
	return j
}

// wantsCSV reports whether a request asks for CSV: ?format=csv, or, without
// format, an Accept header that lists text/csv (with a q above 0).
// ?format=json asks for JSON whatever Accept says.
func wantsCSV(r *http.Request, q query) (bool, error) {
	if f, ok := q.get("format"); ok {
		switch f {
		case "csv":
			return true, nil
		case "json":
			return false, nil
		}
		return false, invalid("format", "must be csv or json")
	}
	for _, accept := range r.Header.Values("Accept") {
		for _, part := range strings.Split(accept, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || mt != "text/csv" {
				continue
			}
			if qv, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(qv, 64); err == nil && f <= 0 {
					continue
				}
			}
			return true, nil
		}
	}
	return false, nil
}

// noPaging refuses limit and cursor on a CSV export, which has every row.
func noPaging(q query) error {
	for _, name := range [...]string{"limit", "cursor"} {
		if _, ok := q.get(name); ok {
			return invalid(name, "a CSV export has every row: leave out "+name)
		}
	}
	return nil
}

// csvResponse is the body of a CSV export: the headers go out with the
// first byte, so that an export that fails before writing anything still
// answers with a problem.
type csvResponse struct {
	w        http.ResponseWriter
	filename string
	started  bool
}

func (c *csvResponse) Write(b []byte) (int, error) {
	if !c.started {
		c.started = true
		h := c.w.Header()
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": c.filename}))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		c.w.WriteHeader(http.StatusOK)
	}
	return c.w.Write(b)
}

// streamCSV runs export into a CSV response named filename. An error before
// any byte went out is returned, for a problem; one after (the store
// failing mid-export) is logged and aborts the response, so that the
// client sees a broken transfer, never a truncated file that looks whole.
func (s *server) streamCSV(w http.ResponseWriter, r *http.Request, filename string, export func(io.Writer) error) error {
	c := &csvResponse{w: w, filename: filename}
	err := export(c)
	if err == nil || !c.started {
		return err
	}
	s.problemOf(r, err) // logs it
	panic(http.ErrAbortHandler)
}

// fileName makes a file name out of parts: characters other than ASCII
// letters, digits, dots, dashes and underscores become underscores.
func fileName(parts ...string) string {
	name := strings.Join(parts, "-")
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b) + ".csv"
}

// exportHistory answers a history request that asked for CSV: every record
// in [from, to) (unbounded when neither is given), newest first.
func (s *server) exportHistory(w http.ResponseWriter, r *http.Request, p budget.Principal, scope budget.Scope, from, to time.Time) error {
	uq := budget.UsageQuery{Scope: scope, From: from, To: to}
	if scope.Kind == budget.UserScope {
		uq = budget.UsageQuery{UserID: scope.ID, From: from, To: to}
	}
	name := fileName("usage", string(scope.Kind), scope.ID)
	return s.streamCSV(w, r, name, func(out io.Writer) error {
		return s.m.ExportUsage(r.Context(), p, out, uq)
	})
}

// readImportBody checks an import's Content-Type and returns its body,
// limited to MaxImportBytes.
func readImportBody(w http.ResponseWriter, r *http.Request, want string) (io.Reader, map[string]string, error) {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != want {
		return nil, nil, problem(http.StatusUnsupportedMediaType, ProblemUnsupportedMediaType, "Content-Type",
			"send the body as "+want)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, nil, problem(http.StatusUnsupportedMediaType, ProblemUnsupportedMediaType, "Content-Type",
			"send the body as "+want+" in UTF-8")
	}
	if r.ContentLength > MaxImportBytes {
		return nil, nil, &http.MaxBytesError{Limit: MaxImportBytes}
	}
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	return http.MaxBytesReader(w, body, MaxImportBytes), params, nil
}

// importOptions reads the query of an import, which takes ?dry_run= and
// ?reason= and nothing else.
func importOptions(r *http.Request) (budget.ImportOptions, error) {
	var o budget.ImportOptions
	q, err := readQuery(r, "dry_run", "reason")
	if err != nil {
		return o, err
	}
	if v, ok := q.get("dry_run"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil || v == "" {
			return o, invalid("dry_run", "must be true or false")
		}
		o.DryRun = b
	}
	o.Reason, _ = q.get("reason")
	if len(o.Reason) > budget.MaxReasonLen {
		return o, invalid("reason", "must be at most 1024 bytes")
	}
	return o, nil
}

// POST /admin/import/settings?dry_run=&reason=
func (s *server) postImportSettings(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	o, err := importOptions(r)
	if err != nil {
		return err
	}
	body, _, err := readImportBody(w, r, "text/csv")
	if err != nil {
		return err
	}
	// Read it whole first, so that a body over the limit is a 413 rather
	// than a row error.
	data, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	res, err := s.m.ImportSettings(r.Context(), p, bytes.NewReader(data), o)
	return s.importAnswer(w, res, err, "body")
}

// POST /admin/import/seed?dry_run=&reason=
//
// A multipart/form-data body with the part user_budget_settings, the part
// budget_reset_log, or both: each a table of the seed system as CSV.
func (s *server) postImportSeed(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	o, err := importOptions(r)
	if err != nil {
		return err
	}
	body, params, err := readImportBody(w, r, "multipart/form-data")
	if err != nil {
		return err
	}
	if params["boundary"] == "" {
		return problem(http.StatusUnsupportedMediaType, ProblemUnsupportedMediaType, "Content-Type",
			"send the body as multipart/form-data with a boundary")
	}
	parts := map[string][]byte{}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			var mb *http.MaxBytesError
			if errors.As(err, &mb) {
				return err
			}
			return problem(http.StatusBadRequest, ProblemMalformedBody, "body", "the body is not valid multipart/form-data")
		}
		name := part.FormName()
		if name != partSeedSettings && name != partSeedResets {
			return problem(http.StatusBadRequest, ProblemUnknownField, clip(name),
				"this endpoint takes the parts user_budget_settings and budget_reset_log, not "+strconv.Quote(clip(name)))
		}
		if _, dup := parts[name]; dup {
			return invalid(name, "given more than once")
		}
		data, err := io.ReadAll(part)
		if err != nil {
			var mb *http.MaxBytesError
			if errors.As(err, &mb) {
				return err
			}
			return problem(http.StatusBadRequest, ProblemMalformedBody, "body", "the body is not valid multipart/form-data")
		}
		parts[name] = data
	}
	if len(parts) == 0 {
		return invalid(partSeedSettings, "send user_budget_settings, budget_reset_log or both")
	}
	var settings, resets io.Reader
	if b, ok := parts[partSeedSettings]; ok {
		settings = bytes.NewReader(b)
	}
	if b, ok := parts[partSeedResets]; ok {
		resets = bytes.NewReader(b)
	}
	res, err := s.m.ImportSeed(r.Context(), p, settings, resets, o)
	return s.importAnswer(w, res, err, partSeedSettings)
}

// importJSON is the answer to an import: what it did, or with dry_run would
// do, row by row.
type importJSON struct {
	DryRun  bool   `json:"dry_run"`
	Applied bool   `json:"applied"`
	BulkID  string `json:"bulk_id"`
	Changed int    `json:"changed"`
	Created int    `json:"created"`
	Audit   int    `json:"audit_entries"`
	// Errors counts the rows in error; with any, nothing is imported.
	Errors int             `json:"errors"`
	Rows   []ImportRowJSON `json:"rows"`
}

// ImportRowJSON is one row of an import's answer, in a dry run's report or
// in the "rows" of a ProblemImportRejected: the file ("user_budget_settings"
// or "budget_reset_log" for the seed import) and line (the header is line
// 1) it is on, its user, whether it is fine, and what it changes or why it
// cannot be imported.
type ImportRowJSON struct {
	File    string       `json:"file,omitempty"`
	Line    int          `json:"line"`
	UserID  string       `json:"user_id,omitempty"`
	OK      bool         `json:"ok"`
	Created bool         `json:"created,omitempty"`
	Changes []ChangeJSON `json:"changes,omitempty"`
	Notes   []string     `json:"notes,omitempty"`
	// Problem says why the row cannot be imported; its field names the
	// column at fault.
	Problem *Problem `json:"problem,omitempty"`
}

// ChangeJSON is one field a row changes, with its values as text.
type ChangeJSON struct {
	Field  string `json:"field"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// importAnswer answers an import: 200 with the report for a dry run (rows
// in error or not) and for an applied import; a ProblemImportRejected,
// with every row, for a real run with rows in error. part is the field a
// rejected file names when the first bad row has no file.
func (s *server) importAnswer(w http.ResponseWriter, res budget.ImportResult, err error, part string) error {
	var ie *budget.ImportError
	if err != nil && !errors.As(err, &ie) {
		return err
	}
	out := importJSON{DryRun: res.DryRun, Applied: res.Applied, BulkID: res.BulkID, Changed: res.Changed,
		Created: res.Created, Audit: res.Audit, Rows: []ImportRowJSON{}}
	if ie != nil {
		// The header's errors are the file's, on no row of the result.
		for _, re := range ie.Rows {
			if re.Line <= 1 {
				out.Rows = append(out.Rows, ImportRowJSON{File: re.File, Line: re.Line, Problem: rowProblem(re)})
			}
		}
	}
	for _, row := range res.Rows {
		j := ImportRowJSON{File: row.File, Line: row.Line, UserID: row.UserID, OK: row.Err == nil,
			Created: row.Created, Notes: row.Notes}
		for _, c := range row.Changes {
			j.Changes = append(j.Changes, ChangeJSON{Field: c.Field, Before: c.Before, After: c.After})
		}
		if row.Err != nil {
			var re *budget.RowError
			if !errors.As(row.Err, &re) {
				re = &budget.RowError{File: row.File, Line: row.Line, Err: row.Err}
			}
			j.Problem = rowProblem(re)
		}
		out.Rows = append(out.Rows, j)
	}
	for _, row := range out.Rows {
		if !row.OK {
			out.Errors++
		}
	}
	if ie == nil || res.DryRun {
		return writeJSON(w, out)
	}
	field := part
	if len(ie.Rows) > 0 && ie.Rows[0].File != "" {
		field = ie.Rows[0].File
	}
	p := problem(http.StatusBadRequest, ProblemImportRejected, field,
		strconv.Itoa(out.Errors)+" of the rows are in error; nothing was imported")
	p.Rows = out.Rows
	return p
}

// rowProblem is the problem of one row in error: invalid-amount for a bad
// amount, invalid-field otherwise, naming the column at fault.
func rowProblem(re *budget.RowError) *Problem {
	typ := ProblemInvalidField
	if errors.Is(re, budget.ErrInvalidAmount) {
		typ = ProblemInvalidAmount
	}
	detail := strings.TrimPrefix(re.Err.Error(), "budget: ")
	var ve *budget.ValidationError
	if errors.As(re.Err, &ve) {
		detail = ve.Reason
	}
	field := re.Column
	if field == "" {
		field = "row"
	}
	return problem(http.StatusBadRequest, typ, field, "line "+strconv.Itoa(re.Line)+": "+detail)
}
