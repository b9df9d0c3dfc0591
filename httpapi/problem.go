package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/llmbudget/budget"
)

// ProblemBase is the prefix of every problem type URI. The URIs are stable
// identifiers, one per kind of error, for clients to switch on; they are not
// meant to be fetched.
const ProblemBase = "https://llmbudget.dev/problems/"

// The problem types. Every error response is an RFC 9457 problem document
// (application/problem+json) whose "type" is one of these. Switch on the
// type, not on the title or detail, which are for humans and may change.
const (
	// ProblemInvalidField (400): a JSON member, query parameter or header
	// has an invalid value; "field" names it.
	ProblemInvalidField = ProblemBase + "invalid-field"
	// ProblemInvalidAmount (400): an amount of money is not a decimal
	// number, is negative, has more than 9 decimal places or is too large;
	// "field" names it.
	ProblemInvalidAmount = ProblemBase + "invalid-amount"
	// ProblemUnknownField (400): the body has a member, or the query a
	// parameter, this endpoint does not take; "field" names it.
	ProblemUnknownField = ProblemBase + "unknown-field"
	// ProblemMalformedBody (400): the body is not one JSON object (a
	// syntax error, an empty body, or data after the object); "field" is
	// "body".
	ProblemMalformedBody = ProblemBase + "malformed-body"
	// ProblemUnauthenticated (401): Options.Authenticate refused the
	// request's credentials.
	ProblemUnauthenticated = ProblemBase + "unauthenticated"
	// ProblemForbidden (403): the principal may not do this; "field", when
	// present, is the first field of an update the principal may not
	// change.
	ProblemForbidden = ProblemBase + "forbidden"
	// ProblemBudgetHidden (403): an administrator has hidden the budget
	// from its user; the problem also carries "hidden": true.
	ProblemBudgetHidden = ProblemBase + "budget-hidden"
	// ProblemNotFound (404): no such endpoint, user, team, org or
	// template; "field", when present, names where the request named it.
	ProblemNotFound = ProblemBase + "not-found"
	// ProblemMethodNotAllowed (405): the endpoint exists but not with this
	// method; the Allow header lists the methods it takes.
	ProblemMethodNotAllowed = ProblemBase + "method-not-allowed"
	// ProblemPreconditionFailed (412): If-Match named a version that is no
	// longer current; read the resource again and retry with its ETag.
	ProblemPreconditionFailed = ProblemBase + "precondition-failed"
	// ProblemBodyTooLarge (413): the body is over MaxBodyBytes.
	ProblemBodyTooLarge = ProblemBase + "body-too-large"
	// ProblemUnsupportedMediaType (415): a body was sent without a JSON
	// Content-Type.
	ProblemUnsupportedMediaType = ProblemBase + "unsupported-media-type"
	// ProblemBudgetExceeded (429): a budget refused the spend; "scope",
	// "budget_id" and, for a model cap, "pattern" name the budget that
	// refused (the binding one), which frees up when its period ends.
	ProblemBudgetExceeded = ProblemBase + "budget-exceeded"
	// ProblemImportRejected (400): a CSV import had rows in error and
	// imported nothing; "rows" reports every row, each bad one with its
	// own problem naming the column at fault, and "field" names the file
	// ("body", or a part of a multipart import) of the first bad row.
	ProblemImportRejected = ProblemBase + "import-rejected"
	// ProblemInternal (500): the server failed; the details are logged,
	// never sent.
	ProblemInternal = ProblemBase + "internal"
)

// Problem is an RFC 9457 problem document, the body of every error
// response. Handlers inside this package return one as an error; clients
// decode error bodies into it.
type Problem struct {
	// Type is one of the Problem* constants.
	Type string `json:"type"`
	// Title is a short summary of the type, the same for every problem of
	// that type.
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail explains this occurrence, for humans.
	Detail string `json:"detail,omitempty"`
	// Field names what was wrong: a JSON member ("limit_usd"), a member
	// of a nested object by its path ("changes.limit_usd"), a query
	// parameter ("limit"), a path parameter ("user_id"), a header
	// ("If-Match", "Content-Type") or the body as a whole ("body").
	Field string `json:"field,omitempty"`
	// Hidden is true when the budget is hidden from its user
	// (ProblemBudgetHidden).
	Hidden bool `json:"hidden,omitempty"`
	// Scope ("user", "team" or "org"), BudgetID and Pattern name the
	// budget that refused a spend (ProblemBudgetExceeded); Pattern is set
	// when that budget is a model cap.
	Scope    string `json:"scope,omitempty"`
	BudgetID string `json:"budget_id,omitempty"`
	Pattern  string `json:"pattern,omitempty"`
	// Rows is every row of a rejected import (ProblemImportRejected).
	Rows []ImportRowJSON `json:"rows,omitempty"`
}

// Error makes a *Problem an error, so handlers can return one.
func (p *Problem) Error() string {
	s := "httpapi: " + strconv.Itoa(p.Status) + " " + p.Title
	if p.Field != "" {
		s += " (" + p.Field + ")"
	}
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

var titles = map[string]string{
	ProblemInvalidField:         "Invalid field",
	ProblemInvalidAmount:        "Invalid amount",
	ProblemUnknownField:         "Unknown field",
	ProblemMalformedBody:        "Malformed request body",
	ProblemUnauthenticated:      "Unauthenticated",
	ProblemForbidden:            "Forbidden",
	ProblemBudgetHidden:         "Budget hidden",
	ProblemNotFound:             "Not found",
	ProblemMethodNotAllowed:     "Method not allowed",
	ProblemPreconditionFailed:   "Precondition failed",
	ProblemBodyTooLarge:         "Request body too large",
	ProblemUnsupportedMediaType: "Unsupported media type",
	ProblemBudgetExceeded:       "Budget exceeded",
	ProblemImportRejected:       "Import rejected",
	ProblemInternal:             "Internal server error",
}

// problem returns a problem of type typ.
func problem(status int, typ, field, detail string) *Problem {
	return &Problem{Type: typ, Title: titles[typ], Status: status, Field: field, Detail: detail}
}

// invalid returns a 400 naming field.
func invalid(field, detail string) *Problem {
	return problem(http.StatusBadRequest, ProblemInvalidField, field, detail)
}

// problemFor maps any error a handler returns to the problem sent for it.
// It is the one place that turns errors into status codes. internal is true
// for a 500, whose error must be logged and whose details are not sent.
func problemFor(err error) (p *Problem, internal bool) {
	var (
		pr *Problem
		mb *http.MaxBytesError
		ve *budget.ValidationError
		pe *budget.PermissionError
		le *budget.LimitError
	)
	switch {
	case errors.As(err, &pr):
		return pr, false
	case errors.As(err, &le):
		return refusal(le), false
	case errors.As(err, &mb):
		return problem(http.StatusRequestEntityTooLarge, ProblemBodyTooLarge, "body",
			"the request body is over "+strconv.FormatInt(mb.Limit, 10)+" bytes"), false
	case errors.As(err, &ve):
		typ := ProblemInvalidField
		if errors.Is(err, budget.ErrInvalidAmount) {
			typ = ProblemInvalidAmount
		}
		return problem(http.StatusBadRequest, typ, ve.Field, ve.Reason), false
	case errors.Is(err, budget.ErrInvalidAmount):
		return problem(http.StatusBadRequest, ProblemInvalidAmount, "",
			"an amount is negative, has more than 9 decimal places or is too large"), false
	case errors.Is(err, budget.ErrInvalid):
		return problem(http.StatusBadRequest, ProblemInvalidField, "", "the request is invalid"), false
	case errors.As(err, &pe):
		if pe.Hidden {
			p := problem(http.StatusForbidden, ProblemBudgetHidden, "",
				"your administrator has hidden this budget from you")
			p.Hidden = true
			return p, false
		}
		return problem(http.StatusForbidden, ProblemForbidden, pe.Field, pe.Reason), false
	case errors.Is(err, budget.ErrForbidden):
		return problem(http.StatusForbidden, ProblemForbidden, "", "you may not do this"), false
	case errors.Is(err, budget.ErrNotFound):
		return problem(http.StatusNotFound, ProblemNotFound, "", "no such resource"), false
	case errors.Is(err, budget.ErrConflict):
		return problem(http.StatusPreconditionFailed, ProblemPreconditionFailed, "If-Match",
			"the resource changed since you read it: read it again and retry with its current ETag"), false
	}
	return problem(http.StatusInternalServerError, ProblemInternal, "", "the server failed to handle the request"), true
}

// refusal is the problem of a spend a budget refused. It names the budget
// and when it frees up, and no amounts: those are on the status of whoever
// may see them.
func refusal(le *budget.LimitError) *Problem {
	sc := le.Scope
	if sc.Kind == "" {
		sc = budget.User(le.UserID)
	}
	name := "the " + string(sc.Kind) + " " + strconv.Quote(sc.ID) + " budget"
	if le.Pattern != "" {
		name = "the " + le.Pattern + " cap of " + name
	}
	p := problem(http.StatusTooManyRequests, ProblemBudgetExceeded, "",
		name+" has too little left for this; it frees up at "+le.PeriodEnd.UTC().Format(time.RFC3339))
	p.Scope, p.BudgetID, p.Pattern = string(sc.Kind), sc.ID, le.Pattern
	return p
}

// refield returns err as the same problem about another field,
// rename(field); an error about no field in particular, or an internal
// one, is returned as it is.
func refield(err error, rename func(field string) string) error {
	p, internal := problemFor(err)
	if internal || p.Field == "" {
		return err
	}
	q := *p
	q.Field = rename(p.Field)
	return &q
}

// within names a problem about a member of the nested object parent by
// its path: "limit_usd" inside "changes" is "changes.limit_usd".
func within(parent string, err error) error {
	return refield(err, func(f string) string { return parent + "." + f })
}

// fail writes the problem for err, logging internal errors.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	writeProblem(w, s.problemOf(r, err))
}

// problemOf is the problem for err, which failed r: internal errors are
// logged here, and their details never leave.
func (s *server) problemOf(r *http.Request, err error) *Problem {
	p, internal := problemFor(err)
	if internal {
		level := slog.LevelError
		if r.Context().Err() != nil && errors.Is(err, context.Cause(r.Context())) {
			level = slog.LevelDebug // the client went away
		}
		s.log.Log(r.Context(), level, "httpapi: request failed",
			"method", r.Method, "path", r.URL.Path, "error", err)
	}
	return p
}

// writeProblem writes p as application/problem+json.
func writeProblem(w http.ResponseWriter, p *Problem) {
	b, _ := json.Marshal(p) // a Problem always marshals
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Del("ETag")
	w.WriteHeader(p.Status)
	w.Write(append(b, '\n'))
}
