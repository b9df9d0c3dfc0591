package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"path"
	"strconv"

	"github.com/llmbudget/budget"
)

// server is the handler New returns.
type server struct {
	m         *budget.Manager
	auth      func(*http.Request) (budget.Principal, error)
	log       *slog.Logger
	challenge string
	mux       *http.ServeMux
}

// handlerFunc is an endpoint: it writes a success response or returns an
// error, which the server turns into a problem document.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p budget.Principal) error

// New returns the HTTP handler of the budget API over m. Mount it anywhere;
// under a path prefix, strip the prefix first:
//
//	mux.Handle("/api/v1/budget/", http.StripPrefix("/api/v1/budget", h))
//
// Every request is authenticated with opts.Authenticate (New refuses a nil
// one). Routes are matched on the handler's own http.ServeMux, never on
// http.DefaultServeMux. The handler is safe for concurrent use.
func New(m *budget.Manager, opts Options) (http.Handler, error) {
	if m == nil {
		return nil, errors.New("httpapi: New with a nil Manager")
	}
	if opts.Authenticate == nil {
		return nil, errors.New("httpapi: Options.Authenticate is required")
	}
	s := &server{m: m, auth: opts.Authenticate, log: opts.Logger, challenge: opts.Challenge, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.challenge == "" {
		s.challenge = "Bearer"
	}
	// Who is calling.
	s.handle("GET /me", false, s.getMe)
	// A user's own budget.
	s.handle("GET /status", false, s.getStatus)
	s.handle("GET /settings", false, s.getSettings)
	s.handle("PUT /settings", false, s.putSettings)
	s.handle("POST /reset", false, s.postReset)
	s.handle("GET /usage/breakdown", false, s.breakdown(s.self))
	s.handle("GET /usage/history", false, s.history(s.self))
	s.handle("GET /usage/daily", false, s.daily(s.self))
	// Administration.
	s.handle("PUT /admin/configure", true, s.putConfigure)
	s.handle("GET /admin/list", true, s.getList)
	s.handle("POST /admin/reset/{user_id}", true, s.postAdminReset)
	s.handle("GET /admin/audit", true, s.getAudit)
	s.handle("GET /admin/users/{user_id}", true, s.getUser)
	s.handle("GET /admin/users/{user_id}/usage/breakdown", true, s.breakdown(s.pathUser))
	s.handle("GET /admin/users/{user_id}/usage/history", true, s.history(s.pathUser))
	s.handle("GET /admin/users/{user_id}/usage/daily", true, s.daily(s.pathUser))
	s.handle("POST /admin/import/settings", true, s.postImportSettings)
	s.handle("POST /admin/import/seed", true, s.postImportSeed)
	s.handle("GET /admin/defaults", true, s.getDefaults)
	s.handle("PUT /admin/defaults", true, s.putDefaults)
	s.handle("GET /admin/access", true, s.getAccess)
	s.handle("PUT /admin/access", true, s.putAccess)
	s.handle("POST /admin/bulk", true, s.postBulk)
	s.handle("GET /admin/templates", true, s.getTemplates)
	s.handle("GET /admin/templates/{name}", true, s.getTemplate)
	s.handle("PUT /admin/templates/{name}", true, s.putTemplate)
	s.handle("DELETE /admin/templates/{name}", true, s.deleteTemplate)
	// Teams, orgs and who belongs to them.
	s.handle("GET /admin/budgets", true, s.getBudgets)
	for _, kind := range [...]budget.ScopeKind{budget.TeamScope, budget.OrgScope} {
		at := "/admin/" + string(kind) + "s/{" + idParam(kind) + "}"
		s.handle("GET "+at, true, s.getHolder(kind))
		s.handle("PUT "+at, true, s.putHolder(kind))
		s.handle("GET "+at+"/members", true, s.getMembers(kind))
		s.handle("GET "+at+"/usage/breakdown", true, s.breakdown(s.pathHolder(kind)))
		s.handle("GET "+at+"/usage/history", true, s.history(s.pathHolder(kind)))
		s.handle("GET "+at+"/usage/daily", true, s.daily(s.pathHolder(kind)))
	}
	s.handle("POST /admin/teams/{team_id}/members", true, s.postMember)
	s.handle("DELETE /admin/teams/{team_id}/members/{user_id}", true, s.deleteMember)
	s.handle("PUT /admin/teams/{team_id}/org", true, s.putTeamOrg)
	s.handle("PUT /admin/users/{user_id}/membership", true, s.putMembership)
	return s, nil
}

// handle registers fn for pattern behind authentication and, for admin
// endpoints, the administrator check.
func (s *server) handle(pattern string, admin bool, fn handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err == nil && admin {
			err = budget.CanAdminister(p)
		}
		if err == nil {
			err = fn(w, r, p)
		}
		if err != nil {
			if p, _ := problemFor(err); p.Status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", s.challenge)
			}
			s.fail(w, r, err)
		}
	})
}

// authenticate asks Options.Authenticate who made r.
func (s *server) authenticate(r *http.Request) (budget.Principal, error) {
	p, err := s.auth(r)
	if err != nil {
		s.log.DebugContext(r.Context(), "httpapi: authentication failed", "path", r.URL.Path, "error", err)
		return budget.Principal{}, problem(http.StatusUnauthorized, ProblemUnauthenticated, "",
			"missing or invalid credentials")
	}
	if err := budget.ValidateUserID(p.UserID); err != nil {
		return budget.Principal{}, errors.New("httpapi: Options.Authenticate returned a principal with an invalid user ID")
	}
	return p, nil
}

// ServeHTTP routes r. Unknown routes and methods get problem documents (the
// mux alone would answer in plain text), and so do non-canonical paths such
// as "/a/../status", which the mux would redirect to a location that is
// wrong once the handler is mounted under a prefix.
//
// Canonical is judged on the path as sent, still escaped, as the mux
// matches it: the mux splits the escaped path at its slashes and unescapes
// each segment, so "/admin/users/%2E%2E" and "/admin/users/team%2F..%2Froot"
// are canonical paths naming the users ".." and "team/../root", while
// "/admin/users/.." is not canonical.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern == "" || !canonical(r.URL.EscapedPath()) {
		c := captured{header: http.Header{}}
		if pattern == "" {
			h.ServeHTTP(&c, r)
		}
		if c.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", c.header.Get("Allow"))
			writeProblem(w, problem(http.StatusMethodNotAllowed, ProblemMethodNotAllowed, "",
				r.Method+" is not allowed here; see the Allow header"))
			return
		}
		writeProblem(w, problem(http.StatusNotFound, ProblemNotFound, "", "no endpoint at this path"))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// canonical reports whether p is a clean path, the only kind the mux
// serves without redirecting.
func canonical(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	if p[len(p)-1] == '/' && c != "/" {
		c += "/"
	}
	return c == p
}

// captured is a ResponseWriter that keeps only the status and headers, to
// learn what the mux would have answered.
type captured struct {
	header http.Header
	status int
}

func (c *captured) Header() http.Header { return c.header }
func (c *captured) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}
func (c *captured) Write(b []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	return len(b), nil
}

// writeJSON writes v as a 200 JSON response.
func writeJSON(w http.ResponseWriter, v any) error {
	return writeJSONStatus(w, http.StatusOK, v)
}

// writeJSONStatus writes v as a JSON response with the given status: 201
// for a resource a PUT created.
func writeJSONStatus(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n')) // an error here means the client went away
	return nil
}

// writeNoContent writes a 204, with the headers of every response.
func writeNoContent(w http.ResponseWriter) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// setETag sets the ETag of a versioned resource: its version, quoted.
func setETag(w http.ResponseWriter, version int64) {
	w.Header().Set("ETag", `"`+strconv.FormatInt(version, 10)+`"`)
}
