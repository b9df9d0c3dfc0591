package gate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/llmbudget/budget"
)

// refusal is an error the gate returns instead of making a call. Its text
// says once what happened and what to do; errors.Is and errors.As see the
// sentinel and the cause it wraps (ErrNoUser, *budget.LimitError, ...).
type refusal struct {
	msg  string
	errs []error
}

func refuse(msg string, errs ...error) error { return &refusal{msg: msg, errs: errs} }

func (e *refusal) Error() string   { return e.msg }
func (e *refusal) Unwrap() []error { return e.errs }

// limitRefusal is the error for a reservation the budget refused. It
// names the budget and when it resets, and no amounts: those are the
// budget's business, shown by its status page.
func limitRefusal(req *http.Request, le *budget.LimitError) error {
	return refuse(fmt.Sprintf("gate: %s has too little left for %s %s, so it was not sent; it resets at %s (lower max_tokens, or ask an admin for a higher limit)",
		budgetName(le), req.Method, req.URL.Path, le.PeriodEnd.UTC().Format(time.RFC3339)), le)
}

// budgetName names the budget that refused a call: the user's own, one of
// their teams' or their org's, or a model cap of one of those.
func budgetName(le *budget.LimitError) string {
	holder := "user " + strconv.Quote(le.UserID)
	if le.Scope.Kind != "" && le.Scope != budget.User(le.UserID) {
		holder = string(le.Scope.Kind) + " " + strconv.Quote(le.Scope.ID)
	}
	if le.Pattern != "" {
		return "the " + le.Pattern + " cap of " + holder
	}
	return "the budget of " + holder
}

// refusalResponse is the 429 a refused call gets with
// Options.RefuseWithStatus, in the error format of the API it called.
// Beside the provider's own fields it names the budget that refused, as
// the HTTP API's budget-exceeded problem does: "scope" (user, team or
// org), "budget_id", "pattern" for a model cap, and "resets_at" — in
// error.budget (OpenAI), error.details (Anthropic) or the ErrorInfo's
// metadata (Gemini).
func refusalResponse(req *http.Request, a api, le *budget.LimitError, now time.Time) *http.Response {
	reset := le.PeriodEnd.UTC().Format(time.RFC3339)
	msg := fmt.Sprintf("Budget exceeded: %s has too little left for this call; it resets at %s.", budgetName(le), reset)
	scope := le.Scope
	if scope.Kind == "" {
		scope = budget.User(le.UserID)
	}
	named := map[string]string{"scope": string(scope.Kind), "budget_id": scope.ID, "resets_at": reset}
	if le.Pattern != "" {
		named["pattern"] = le.Pattern
	}
	var v any
	switch a {
	case messages:
		named["error_code"] = "budget_exceeded"
		v = map[string]any{"type": "error", "error": map[string]any{
			"type": "rate_limit_error", "message": msg, "details": named,
		}}
	case gemini:
		named["code"] = "budget_exceeded"
		v = map[string]any{"error": map[string]any{
			"code": http.StatusTooManyRequests, "message": msg, "status": "RESOURCE_EXHAUSTED",
			"details": []any{map[string]any{
				"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "BUDGET_EXCEEDED", "domain": "llmbudget",
				"metadata": named,
			}},
		}}
	default:
		v = map[string]any{"error": map[string]any{
			"message": msg, "type": "insufficient_quota", "param": nil, "code": "budget_exceeded",
			"budget": named,
		}}
	}
	body, _ := json.Marshal(v)
	h := http.Header{
		"Content-Type":   {"application/json"},
		"X-Should-Retry": {"false"},
	}
	if d := le.PeriodEnd.Sub(now); d > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64(d/time.Second)+1, 10))
	}
	return &http.Response{
		Status: "429 Too Many Requests", StatusCode: http.StatusTooManyRequests,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
		Request: req,
	}
}
