package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/llmbudget/budget"
)

// Options configure the handler New returns.
type Options struct {
	// Authenticate says who made a request. It is required: New refuses a
	// nil one, so nothing is ever served unauthenticated. Return an error
	// for a missing or bad credential; the handler answers 401 without
	// showing the error. The principal's UserID must pass
	// budget.ValidateUserID (otherwise the request fails with 500), and
	// Principal.Admin is the host's word on who administers budgets. It
	// must be safe for concurrent use.
	Authenticate func(*http.Request) (budget.Principal, error)

	// Logger receives 5xx errors with their internals (clients get a
	// problem document without them), and refused credentials at debug
	// level. Defaults to slog.Default().
	Logger *slog.Logger

	// Challenge is the WWW-Authenticate header of 401 responses, naming
	// the scheme Authenticate expects. Defaults to "Bearer".
	Challenge string
}
