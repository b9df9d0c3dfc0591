package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/llmbudget/budget"
	"github.com/shopspring/decimal"
)

// MaxBodyBytes is the largest request body the handler reads; a larger one
// gets 413.
const MaxBodyBytes = 64 << 10

// object is a decoded JSON object body: each member's raw value by name.
type object map[string]json.RawMessage

// readObject reads r's body as exactly one JSON object whose members are all
// in known. The body must be JSON (Content-Type application/json or
// application/*+json, charset utf-8 if given) and at most MaxBodyBytes.
// With emptyOK, an empty body reads as {}.
//
// An empty body is one of zero bytes, however it was sent: with
// Content-Length: 0, or chunked (no length) and ending at once; it needs no
// Content-Type.
func readObject(w http.ResponseWriter, r *http.Request, known map[string]bool, emptyOK bool) (object, error) {
	if emptyOK && (r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody) {
		return object{}, nil
	}
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	var rd io.Reader = http.MaxBytesReader(w, body, MaxBodyBytes)
	if emptyOK && r.ContentLength < 0 {
		// No length (chunked): empty if the first read ends the body.
		// The buffered reader keeps the byte it looked at, and any error.
		br := bufio.NewReaderSize(rd, 16)
		if _, err := br.Peek(1); err == io.EOF {
			return object{}, nil
		}
		rd = br
	}
	if err := checkJSONType(r.Header.Get("Content-Type")); err != nil {
		return nil, err
	}
	if r.ContentLength > MaxBodyBytes {
		return nil, &http.MaxBytesError{Limit: MaxBodyBytes}
	}
	return decodeObject(rd, known, emptyOK)
}

// checkJSONType accepts a JSON media type.
func checkJSONType(ct string) error {
	unsupported := problem(http.StatusUnsupportedMediaType, ProblemUnsupportedMediaType, "Content-Type",
		"send the body as application/json")
	if ct == "" {
		return unsupported
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
		return unsupported
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		unsupported.Detail = "send the body as application/json in UTF-8"
		return unsupported
	}
	return nil
}

// decodeObject decodes exactly one JSON object from rd, refusing members
// not in known, members given twice, and anything after the object; with
// emptyOK, no input at all reads as {}. Keys match exactly, where
// encoding/json's DisallowUnknownFields would let "LIMIT_USD" through as
// limit_usd and keep the last of two "limit_usd".
func decodeObject(rd io.Reader, known map[string]bool, emptyOK bool) (object, error) {
	dec := json.NewDecoder(rd)
	dec.UseNumber()
	malformed := func(err error, detail string) error {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return err
		}
		if err == io.EOF && detail == "" {
			detail = "the request body is empty; send a JSON object"
		} else if detail == "" {
			detail = "the request body is not valid JSON: " + strings.TrimPrefix(err.Error(), "json: ")
		}
		return problem(http.StatusBadRequest, ProblemMalformedBody, "body", detail)
	}
	tok, err := dec.Token()
	if err == io.EOF && emptyOK {
		return object{}, nil
	}
	if err != nil {
		return nil, malformed(err, "")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, malformed(nil, "the request body must be a JSON object")
	}
	obj := object{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed(err, "")
		}
		key, _ := tok.(string) // inside an object, a token before a value is its key
		if !known[key] {
			return nil, problem(http.StatusBadRequest, ProblemUnknownField, clip(key),
				"this endpoint takes no member "+strconv.Quote(clip(key)))
		}
		if _, dup := obj[key]; dup {
			return nil, invalid(key, "given more than once")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, malformed(err, "")
		}
		obj[key] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, malformed(err, "")
	}
	if _, err := dec.Token(); err != io.EOF {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, err
		}
		return nil, malformed(nil, "the request body has data after the JSON object")
	}
	return obj, nil
}

// clip shortens a name from the request to at most 64 bytes of valid
// UTF-8 before it is echoed in a problem.
func clip(s string) string {
	if len(s) <= 64 {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	s = s[:64]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// isNull reports whether raw is the JSON null.
func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// str decodes a JSON string member.
func (o object) str(field string) (string, bool, error) {
	raw, ok := o[field]
	if !ok {
		return "", false, nil
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false, invalid(field, "must be a string")
	}
	return s, true, nil
}

// requiredStr decodes a JSON string member that must be there; missing
// says what to send when it is not.
func (o object) requiredStr(field, missing string) (string, error) {
	s, ok, err := o.str(field)
	if err == nil && !ok {
		err = invalid(field, missing)
	}
	return s, err
}

// boolean decodes a JSON true or false member.
func (o object) boolean(field string) (*bool, error) {
	raw, ok := o[field]
	if !ok {
		return nil, nil
	}
	var b bool
	switch string(raw) {
	case "true":
		b = true
	case "false":
	default:
		return nil, invalid(field, "must be true or false")
	}
	return &b, nil
}

// decimalText returns the text of a decimal given as a JSON number or as a
// JSON string holding one, without ever converting it to a float; valid is
// false for any other JSON value.
func (o object) decimalText(field string) (text string, present, valid bool) {
	raw, ok := o[field]
	switch {
	case !ok:
		return "", false, false
	case len(raw) > 0 && raw[0] == '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, true, err == nil
	case len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9'):
		return string(raw), true, true
	}
	return "", true, false
}

// amount decodes an amount of US dollars, validated exactly by
// budget.ParseAmount.
func (o object) amount(field string) (*decimal.Decimal, error) {
	text, present, valid := o.decimalText(field)
	if !present {
		return nil, nil
	}
	if !valid {
		return nil, problem(http.StatusBadRequest, ProblemInvalidAmount, field,
			`must be a decimal number or a string holding one, such as "12.5"`)
	}
	d, err := budget.ParseAmount(text)
	if err != nil {
		return nil, problem(http.StatusBadRequest, ProblemInvalidAmount, field,
			strings.TrimPrefix(err.Error(), "budget: invalid amount: "))
	}
	return &d, nil
}

var (
	maxThreshold = decimal.NewFromInt(1000)
	hundredth    = decimal.New(1, -2)
)

// threshold decodes an alert threshold in percent: above 0, at most 1000,
// at most two decimal places.
func (o object) threshold(field string) (*decimal.Decimal, error) {
	text, present, valid := o.decimalText(field)
	if !present {
		return nil, nil
	}
	// ParseAmount refuses huge exponents before any arithmetic.
	d, err := budget.ParseAmount(text)
	if !valid || err != nil || d.Sign() <= 0 || d.GreaterThan(maxThreshold) || !d.Mod(hundredth).IsZero() {
		return nil, invalid(field, "must be a percentage above 0 and at most 1000, with at most 2 decimal places")
	}
	return &d, nil
}

// firstTime and endTime bound the instants the API accepts: those a store
// can keep as int64 nanoseconds since 1970.
var (
	firstTime = time.Unix(0, 0).UTC()
	endTime   = time.Date(2262, time.January, 1, 0, 0, 0, 0, time.UTC)
)

// parseTime parses an RFC 3339 instant between 1970 and 2262.
func parseTime(field, s string) (time.Time, error) {
	t, err := parseRFC3339(field, s)
	if err == nil && (t.Before(firstTime) || !t.Before(endTime)) {
		err = invalid(field, "must be from 1970 to 2261")
	}
	return t, err
}

// parseRFC3339 parses an RFC 3339 instant.
func parseRFC3339(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, invalid(field, "must be an RFC 3339 time such as 2025-03-01T00:00:00Z")
	}
	return t, nil
}

// parseAnchor parses a custom period's anchor: an RFC 3339 instant that
// passes the core's budget.ValidateAnchor.
func parseAnchor(field, s string) (time.Time, error) {
	t, err := parseRFC3339(field, s)
	if err != nil {
		return t, err
	}
	var ve *budget.ValidationError
	if errors.As(budget.ValidateAnchor(t), &ve) {
		return t, invalid(field, ve.Reason)
	}
	return t, nil
}

// validTimezone reports whether name is an IANA zone the core accepts.
func validTimezone(name string) bool {
	if name == "" || name == "UTC" {
		return true
	}
	if name == "Local" || len(name) > 64 || !utf8.ValidString(name) {
		return false
	}
	_, err := time.LoadLocation(name)
	return err == nil
}

// The members of the settings bodies.
const (
	fUserID     = "user_id"
	fLimit      = "limit_usd"
	fPeriod     = "budget_period"
	fCustomDays = "custom_period_days"
	fAnchor     = "custom_period_anchor"
	fTimezone   = "timezone"
	fEnforce    = "enforce_budget"
	fVisible    = "budget_visible_to_user"
	fCanModify  = "user_can_modify_limit"
	fCanReset   = "user_can_reset_budget"
	fYellow     = "alert_threshold_yellow"
	fOrange     = "alert_threshold_orange"
	fRed        = "alert_threshold_red"
	fNotes      = "admin_notes"
	fReason     = "reason"
)

// The members of the other bodies.
const (
	fEnabled   = "enabled"
	fUserIDs   = "user_ids"
	fMatch     = "match"
	fChanges   = "changes"
	fTemplate  = "template"
	fQ         = "q"
	fLevel     = "level"
	fModelCaps = "model_caps"
	fPattern   = "pattern"
	fTeams     = "teams"
	fOrg       = "org"
)

// planFields are the members of PUT /settings and PUT /admin/defaults.
var planFields = []string{fLimit, fPeriod, fCustomDays, fAnchor, fTimezone, fEnforce,
	fVisible, fCanModify, fCanReset, fYellow, fOrange, fRed}

func fieldSet(names ...[]string) map[string]bool {
	m := map[string]bool{}
	for _, ns := range names {
		for _, n := range ns {
			m[n] = true
		}
	}
	return m
}

// permissionFields are the members of planFields that only a user's budget
// has: a team's or an org's is managed by admins alone.
var permissionFields = []string{fVisible, fCanModify, fCanReset}

var (
	settingsBody   = fieldSet(planFields)
	configureBody  = fieldSet(planFields, []string{fUserID, fNotes})
	resetBody      = fieldSet([]string{fReason, fLimit})
	accessBody     = fieldSet([]string{fEnabled})
	bulkBody       = fieldSet([]string{fUserIDs, fMatch, fChanges, fTemplate})
	matchBody      = fieldSet([]string{fQ, fLevel})
	holderBody     = fieldSet(planFields, []string{fNotes, fModelCaps})
	capBody        = fieldSet([]string{fPattern, fLimit})
	memberBody     = fieldSet([]string{fUserID})
	membershipBody = fieldSet([]string{fTeams, fOrg})
	teamOrgBody    = fieldSet([]string{fOrg})
)

// update decodes the settings members of o into a partial update. It
// validates everything that does not depend on the stored settings, so an
// invalid body is refused before the core is asked (and before a user's
// settings are created from the defaults).
func (o object) update() (budget.SettingsUpdate, error) {
	var (
		u   budget.SettingsUpdate
		err error
	)
	for _, f := range planFields { // in order, so the first invalid field is reported
		if _, ok := o[f]; !ok {
			continue
		}
		if isNull(o[f]) {
			return u, invalid(f, "must not be null; leave the member out to keep the current value")
		}
		switch f {
		case fLimit:
			u.Limit, err = o.amount(f)
		case fPeriod:
			var s string
			if s, _, err = o.str(f); err == nil {
				p := budget.Period(s)
				if !p.Valid() {
					err = invalid(f, "must be daily, weekly, monthly or custom")
				}
				u.Period = &p
			}
		case fCustomDays:
			var n int
			if json.Unmarshal(o[f], &n) != nil || n < 1 || n > budget.MaxCustomDays {
				err = invalid(f, "must be a whole number of days from 1 to "+strconv.Itoa(budget.MaxCustomDays))
			}
			u.CustomDays = &n
		case fAnchor:
			var s string
			if s, _, err = o.str(f); err == nil {
				var t time.Time
				t, err = parseAnchor(f, s)
				u.CustomAnchor = &t
			}
		case fTimezone:
			var s string
			if s, _, err = o.str(f); err == nil {
				if !validTimezone(s) {
					err = invalid(f, "must be an IANA time zone name such as Europe/Paris")
				}
				u.Timezone = &s
			}
		case fEnforce:
			u.Enforce, err = o.boolean(f)
		case fVisible:
			u.Visible, err = o.boolean(f)
		case fCanModify:
			u.CanModify, err = o.boolean(f)
		case fCanReset:
			u.CanReset, err = o.boolean(f)
		case fYellow:
			u.Yellow, err = o.threshold(f)
		case fOrange:
			u.Orange, err = o.threshold(f)
		case fRed:
			u.Red, err = o.threshold(f)
		}
		if err != nil {
			return u, err
		}
	}
	if u.Yellow != nil && u.Orange != nil && u.Red != nil {
		if err := (budget.Thresholds{Yellow: *u.Yellow, Orange: *u.Orange, Red: *u.Red}).Validate(); err != nil {
			return u, err
		}
	}
	if u.Period != nil && *u.Period != budget.Custom && u.CustomDays != nil {
		return u, invalid(fCustomDays, "only a custom period has a length in days")
	}
	return u, nil
}

// notes decodes admin_notes.
func (o object) notes() (*string, error) {
	s, ok, err := o.str(fNotes)
	if !ok || err != nil {
		return nil, err
	}
	if len(s) > budget.MaxNotesLen {
		return nil, invalid(fNotes, "must be at most 4096 bytes")
	}
	return &s, nil
}

// reason decodes the reason of a reset.
func (o object) reason() (string, error) {
	s, _, err := o.str(fReason)
	if err == nil && len(s) > budget.MaxReasonLen {
		err = invalid(fReason, "must be at most 1024 bytes")
	}
	return s, err
}

// nested decodes a member holding a JSON object whose members are all in
// known. Problems with its members name them by their path
// ("changes.limit_usd").
func (o object) nested(field string, known map[string]bool) (object, error) {
	raw := o[field]
	if len(raw) == 0 || raw[0] != '{' {
		return nil, invalid(field, "must be a JSON object")
	}
	n, err := decodeObject(bytes.NewReader(raw), known, false)
	return n, within(field, err)
}

// level decodes an alert level filter; empty means none.
func level(field, s string) (*budget.Level, error) {
	if s == "" {
		return nil, nil
	}
	l, err := budget.ParseLevel(s)
	if err != nil {
		return nil, invalid(field, "must be green, yellow, orange or red")
	}
	return &l, nil
}

// bulkRequest is a POST /admin/bulk: which users, and either changes or a
// template to apply to them.
type bulkRequest struct {
	sel      budget.Selection
	changes  budget.SettingsUpdate
	template string // when set, apply the template instead of changes
}

// readBulk reads a POST /admin/bulk. It checks the shape of the request;
// the Manager checks the user IDs (how many, repeated, valid) and the
// template's name, before changing anything.
func readBulk(w http.ResponseWriter, r *http.Request) (bulkRequest, error) {
	var b bulkRequest
	if _, err := readQuery(r); err != nil {
		return b, err
	}
	o, err := readObject(w, r, bulkBody, false)
	if err != nil {
		return b, err
	}
	for _, f := range [...]string{fUserIDs, fMatch, fChanges, fTemplate} {
		if raw, ok := o[f]; ok && isNull(raw) {
			return b, invalid(f, "must not be null; leave the member out")
		}
	}
	_, byID := o[fUserIDs]
	_, byMatch := o[fMatch]
	switch {
	case byID && byMatch:
		return b, invalid(fUserIDs, "select users by user_ids or by match, not both")
	case byID:
		raw := o[fUserIDs]
		if raw[0] != '[' || json.Unmarshal(raw, &b.sel.UserIDs) != nil {
			return b, invalid(fUserIDs, "must be an array of user IDs")
		}
		if len(b.sel.UserIDs) == 0 {
			return b, invalid(fUserIDs, "name at least one user")
		}
	case byMatch:
		m, err := o.nested(fMatch, matchBody)
		if err != nil {
			return b, err
		}
		q := &budget.UserQuery{}
		if q.Search, _, err = m.str(fQ); err != nil {
			return b, within(fMatch, err)
		}
		l, _, err := m.str(fLevel)
		if err == nil {
			q.Level, err = level(fLevel, l)
		}
		if err != nil {
			return b, within(fMatch, err)
		}
		b.sel.Match = q
	default:
		return b, invalid(fUserIDs, "select users by user_ids or by match")
	}
	_, withChanges := o[fChanges]
	_, withTemplate := o[fTemplate]
	switch {
	case withChanges && withTemplate:
		return b, invalid(fChanges, "give changes or a template, not both")
	case withChanges:
		c, err := o.nested(fChanges, settingsBody)
		if err != nil {
			return b, err
		}
		if b.changes, err = c.update(); err != nil {
			return b, within(fChanges, err)
		}
		if b.changes == (budget.SettingsUpdate{}) {
			return b, invalid(fChanges, "name at least one setting to change")
		}
	case withTemplate:
		if b.template, _, err = o.str(fTemplate); err != nil {
			return b, err
		}
		if err := budget.ValidateTemplateName(b.template); err != nil {
			return b, refield(err, func(string) string { return fTemplate })
		}
	default:
		return b, invalid(fChanges, "give the changes to make, or a template to apply")
	}
	return b, nil
}

// precondition is an If-Match header read as a version.
type precondition struct {
	// set is false when there is no condition: no If-Match, or "*".
	set bool
	// version is the version of a strong entity tag of ours ("7"), or -1
	// for any other well-formed tag (a weak one, or one we never send),
	// which no version matches.
	version int64
}

// ifVersion is the SettingsUpdate.IfVersion for a resource whose versions
// start at first: 0 for no condition, and -1, never current, for a tag
// below first.
func (pc precondition) ifVersion(first int64) int64 {
	switch {
	case !pc.set:
		return 0
	case pc.version < first:
		return -1
	}
	return pc.version
}

// ifMatch reads the If-Match header: "*" or one entity tag. A malformed
// header, or a list of several tags, is refused.
func ifMatch(r *http.Request) (precondition, error) {
	vs := r.Header.Values("If-Match")
	if len(vs) == 0 {
		return precondition{}, nil
	}
	bad := invalid("If-Match", `must be * or one entity tag from an ETag, such as "7"`)
	if len(vs) > 1 {
		return precondition{}, bad
	}
	v := strings.TrimSpace(vs[0])
	if v == "*" {
		return precondition{}, nil
	}
	weak := strings.HasPrefix(v, "W/")
	tag := strings.TrimPrefix(v, "W/")
	if len(tag) < 2 || tag[0] != '"' || tag[len(tag)-1] != '"' {
		return precondition{}, bad
	}
	opaque := tag[1 : len(tag)-1]
	for i := 0; i < len(opaque); i++ { // RFC 9110 etagc
		if c := opaque[i]; c < 0x21 || c == '"' || c == 0x7f {
			return precondition{}, bad
		}
	}
	n, err := strconv.ParseInt(opaque, 10, 64)
	if weak || err != nil || n < 0 || opaque != strconv.FormatInt(n, 10) {
		return precondition{set: true, version: -1}, nil
	}
	return precondition{set: true, version: n}, nil
}

// query is a request's query parameters, each given at most once and all
// known to the endpoint.
type query url.Values

// readQuery parses r's query string, refusing unknown or repeated
// parameters.
func readQuery(r *http.Request, known ...string) (query, error) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, invalid("query", "the query string is malformed")
	}
	for k, vs := range v {
		ok := false
		for _, n := range known {
			ok = ok || n == k
		}
		if !ok {
			return nil, problem(http.StatusBadRequest, ProblemUnknownField, clip(k),
				"this endpoint takes no query parameter "+strconv.Quote(clip(k)))
		}
		if len(vs) > 1 {
			return nil, invalid(k, "given more than once")
		}
	}
	return query(v), nil
}

// get returns a parameter's value and whether it was given.
func (q query) get(name string) (string, bool) {
	vs, ok := q[name]
	if !ok {
		return "", false
	}
	return vs[0], true
}

// limit returns the page size: 0 (the default, 50) when absent, else 1 to
// 500.
func (q query) limit() (int, error) {
	s, ok := q.get("limit")
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > budget.MaxPageSize {
		return 0, invalid("limit", "must be a whole number from 1 to 500")
	}
	return n, nil
}

// cursor returns the cursor of the next page; empty for the first.
func (q query) cursor() (string, error) {
	s, _ := q.get("cursor")
	if len(s) > 1024 || !utf8.ValidString(s) {
		return "", invalid("cursor", "not a cursor this endpoint returned")
	}
	return s, nil
}

// timeRange returns from and to, both or neither.
func (q query) timeRange() (from, to time.Time, err error) {
	fs, fok := q.get("from")
	ts, tok := q.get("to")
	if fok != tok {
		missing := "to"
		if !fok {
			missing = "from"
		}
		return from, to, invalid(missing, "give both from and to, or neither for the current period")
	}
	if !fok {
		return from, to, nil
	}
	if from, err = parseTime("from", fs); err != nil {
		return from, to, err
	}
	if to, err = parseTime("to", ts); err != nil {
		return from, to, err
	}
	if !from.Before(to) {
		return from, to, invalid("from", "must be before to")
	}
	return from, to, nil
}

// userQuery reads the filters and paging of a list: q, level, limit and
// cursor, as GET /admin/list and GET /admin/budgets take them.
func (q query) userQuery() (budget.UserQuery, error) {
	var (
		uq  budget.UserQuery
		err error
	)
	uq.Search, _ = q.get(fQ)
	l, _ := q.get(fLevel)
	if uq.Level, err = level(fLevel, l); err != nil {
		return uq, err
	}
	if uq.Limit, err = q.limit(); err != nil {
		return uq, err
	}
	uq.Cursor, err = q.cursor()
	return uq, err
}

// holderKind reads the kind of budget holder GET /admin/budgets lists:
// team or org (users have GET /admin/list).
func holderKind(field, s string) (budget.ScopeKind, error) {
	switch k := budget.ScopeKind(s); k {
	case budget.TeamScope, budget.OrgScope:
		return k, nil
	}
	return "", invalid(field, "must be team or org (users are listed by GET /admin/list)")
}

// parseScope reads a query parameter naming a budget holder, "user:alice",
// "team:research" or "org:acme", as budget.ParseScope does; every problem
// names the parameter, field.
func parseScope(field, s string) (budget.Scope, error) {
	sc, err := budget.ParseScope(s)
	var ve *budget.ValidationError
	switch {
	case err == nil:
		return sc, nil
	case errors.As(err, &ve) && ve.Field != "scope":
		// A known kind with an invalid ID: the ID's own rule.
		return sc, invalid(field, "the ID after "+string(sc.Kind)+": "+ve.Reason)
	}
	return sc, invalid(field, `must be "user:<id>", "team:<id>" or "org:<id>"`)
}

// readHolderUpdate reads a PUT of a team's or an org's budget: no query, an
// optional If-Match (versions start at 1) and a body of the settings of
// PUT /admin/configure without user_id or the users' permissions, plus
// model_caps. It validates everything that does not depend on the stored
// settings, so an invalid body is refused before a team is created.
func readHolderUpdate(w http.ResponseWriter, r *http.Request) (budget.SettingsUpdate, error) {
	var u budget.SettingsUpdate
	if _, err := readQuery(r); err != nil {
		return u, err
	}
	pc, err := ifMatch(r)
	if err != nil {
		return u, err
	}
	o, err := readObject(w, r, holderBody, false)
	if err != nil {
		return u, err
	}
	for _, f := range permissionFields {
		if _, ok := o[f]; ok {
			return u, invalid(f, "teams and orgs have no user permissions: set them on each user")
		}
	}
	if u, err = o.update(); err != nil {
		return u, err
	}
	if u.AdminNotes, err = o.notes(); err != nil {
		return u, err
	}
	if u.ModelCaps, err = o.modelCaps(); err != nil {
		return u, err
	}
	u.IfVersion = pc.ifVersion(1)
	return u, nil
}

// modelCaps decodes model_caps: an array of at most budget.MaxModelCaps
// objects {"pattern", "limit_usd"}, both required, no pattern twice. []
// removes every cap; nil means the member was left out. Problems name the
// member at fault by its path: "model_caps[0].pattern".
func (o object) modelCaps() (*[]budget.ModelCap, error) {
	raw, ok := o[fModelCaps]
	if !ok {
		return nil, nil
	}
	var elems []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &elems) != nil {
		return nil, invalid(fModelCaps, `must be an array of {"pattern", "limit_usd"}; [] removes every cap`)
	}
	if len(elems) > budget.MaxModelCaps {
		return nil, invalid(fModelCaps, "at most "+strconv.Itoa(budget.MaxModelCaps)+" model caps per budget")
	}
	caps := make([]budget.ModelCap, 0, len(elems))
	for i, e := range elems {
		name := fModelCaps + "[" + strconv.Itoa(i) + "]"
		if len(e) == 0 || e[0] != '{' {
			return nil, invalid(name, `must be an object such as {"pattern": "gpt-4o*", "limit_usd": "1"}`)
		}
		c, err := decodeObject(bytes.NewReader(e), capBody, false)
		if err != nil {
			return nil, within(name, err)
		}
		pattern, ok, err := c.str(fPattern)
		switch {
		case err != nil:
			return nil, within(name, err)
		case !ok:
			return nil, invalid(name+"."+fPattern, "name the models the cap applies to, such as gpt-4o*")
		}
		if err := budget.ValidatePattern(pattern); err != nil {
			return nil, within(name, err)
		}
		limit, err := c.amount(fLimit)
		switch {
		case err != nil:
			return nil, within(name, err)
		case limit == nil:
			return nil, problem(http.StatusBadRequest, ProblemInvalidAmount, name+"."+fLimit,
				`give the cap's limit per period, such as "50"`)
		}
		caps = append(caps, budget.ModelCap{Pattern: pattern, Limit: *limit})
	}
	if err := budget.ValidateModelCaps(caps); err != nil { // a pattern given twice
		return nil, err
	}
	return &caps, nil
}

// readMembership decodes the body of PUT /admin/users/{user_id}/membership:
// "teams", an array of team IDs (at most budget.MaxTeamsPerUser once
// repeats are dropped), and "org", an org ID or "" for none. A member left
// out means none, as the body is the whole membership. Whether the teams
// and the org exist is the caller's to check.
func readMembership(o object) (budget.Membership, error) {
	var ms budget.Membership
	if raw, ok := o[fTeams]; ok {
		if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &ms.Teams) != nil {
			return ms, invalid(fTeams, `must be an array of team IDs, such as ["research"]`)
		}
		distinct := map[string]bool{}
		for i, t := range ms.Teams {
			if err := budget.Team(t).Validate(); err != nil {
				return ms, refield(err, func(string) string { return fTeams + "[" + strconv.Itoa(i) + "]" })
			}
			distinct[t] = true
		}
		if len(distinct) > budget.MaxTeamsPerUser {
			return ms, invalid(fTeams, "a user may belong to at most "+strconv.Itoa(budget.MaxTeamsPerUser)+" teams")
		}
	}
	org, err := o.orgID()
	ms.Org = org
	return ms, err
}

// orgID decodes "org": an org ID, or "" for none; left out is none.
func (o object) orgID() (string, error) {
	org, _, err := o.str(fOrg)
	if err != nil || org == "" {
		return "", err
	}
	if err := budget.Org(org).Validate(); err != nil {
		return "", refield(err, func(string) string { return fOrg })
	}
	return org, nil
}
