package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/llmbudget/budget"
)

// The administrators' endpoints. The server checks budget.CanAdminister
// before any of them runs; the Manager checks again where it acts.

// recentUsage is how many usage records GET /admin/users/{user_id} shows.
const recentUsage = 20

// PUT /admin/configure
func (s *server) putConfigure(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	if _, err := readQuery(r); err != nil {
		return err
	}
	pc, err := ifMatch(r)
	if err != nil {
		return err
	}
	o, err := readObject(w, r, configureBody, false)
	if err != nil {
		return err
	}
	userID, err := o.requiredStr(fUserID, "name the user to configure")
	if err != nil {
		return err
	}
	if err := budget.ValidateUserID(userID); err != nil {
		return err
	}
	u, err := o.update()
	if err != nil {
		return err
	}
	if u.AdminNotes, err = o.notes(); err != nil {
		return err
	}
	u.IfVersion = pc.ifVersion(1) // settings versions start at 1
	set, err := s.m.UpdateSettings(r.Context(), p, userID, u)
	if err != nil {
		return err
	}
	setETag(w, set.Version)
	return writeJSON(w, adminSettings(set))
}

// GET /admin/list?q=&level=&limit=&cursor=
func (s *server) getList(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	q, err := readQuery(r, "q", "level", "projected", "limit", "cursor")
	if err != nil {
		return err
	}
	uq, err := q.userQuery()
	if err != nil {
		return err
	}
	switch pr, _ := q.get("projected"); pr {
	case "":
	case "over":
		uq.ProjectedOver = true
	default:
		return invalid("projected", `must be "over": keep the users whose forecast passes their limit`)
	}
	page, err := s.m.ListUsers(r.Context(), p, uq)
	if err != nil {
		return err
	}
	out := listJSON{Users: make([]userJSON, len(page.Users)), NextCursor: page.Next, Summary: summaryJSON{
		Users: page.Summary.Users, TotalLimit: money(page.Summary.TotalLimit),
		TotalSpent: money(page.Summary.TotalSpent), OverBudget: page.Summary.OverBudget,
	}}
	for i, u := range page.Users {
		out.Users[i] = userOf(u)
	}
	return writeJSON(w, out)
}

// lookup returns userID's settings, for an admin, if the user has
// settings, and a 404 otherwise, without creating any.
func (s *server) lookup(ctx context.Context, p budget.Principal, userID string) (budget.Settings, error) {
	if err := budget.CanAdminister(p); err != nil {
		return budget.Settings{}, err
	}
	set, err := s.m.Lookup(ctx, userID)
	if errors.Is(err, budget.ErrNotFound) {
		return budget.Settings{}, noUser(userID)
	}
	return set, err
}

// noUser is the 404 for a user without settings.
func noUser(userID string) *Problem {
	return problem(http.StatusNotFound, ProblemNotFound, "user_id", "no user "+userID+" has settings")
}

// existing returns userID's settings and status if the user has settings,
// and a 404 otherwise, without creating any.
func (s *server) existing(ctx context.Context, p budget.Principal, userID string) (budget.UserStatus, error) {
	set, err := s.lookup(ctx, p, userID)
	if err != nil {
		return budget.UserStatus{}, err
	}
	st, err := s.m.Status(ctx, userID)
	if err != nil {
		return budget.UserStatus{}, err
	}
	return budget.UserStatus{Settings: set, Status: st}, nil
}

// POST /admin/reset/{user_id}
func (s *server) postAdminReset(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	userID := r.PathValue("user_id")
	if _, err := s.lookup(r.Context(), p, userID); err != nil {
		return err
	}
	return s.reset(w, r, p, userID, true)
}

// GET /admin/audit?user_id=&scope=&type=&limit=&cursor=&format=
//
// With ?format=csv, or Accept: text/csv, the answer is every entry the
// filters select as a CSV download (budget.AuditColumns), streamed.
//
// scope names a budget holder ("team:research"); "user:alice" is the same
// as user_id=alice.
func (s *server) getAudit(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	q, err := readQuery(r, "user_id", "scope", "type", "limit", "cursor", "format")
	if err != nil {
		return err
	}
	csv, err := wantsCSV(r, q)
	if err != nil {
		return err
	}
	userID, _ := q.get("user_id")
	if userID != "" {
		if err := budget.ValidateUserID(userID); err != nil {
			return err
		}
	}
	var scope budget.Scope
	if sc, _ := q.get("scope"); sc != "" {
		if scope, err = parseScope("scope", sc); err != nil {
			return err
		}
		if userID != "" {
			return invalid("scope", "give user_id or scope, not both")
		}
		if scope.Kind == budget.UserScope {
			userID, scope = scope.ID, budget.Scope{}
		}
	}
	var typ budget.AuditType
	if t, _ := q.get("type"); t != "" {
		if typ, err = budget.ParseAuditType(t); err != nil {
			return err
		}
	}
	if csv {
		if err := noPaging(q); err != nil {
			return err
		}
		aq := budget.AuditLogQuery{UserID: userID, Scope: scope, Type: typ}
		return s.streamCSV(w, r, fileName("audit"), func(out io.Writer) error {
			return s.m.ExportAudit(r.Context(), p, out, aq)
		})
	}
	limit, err := q.limit()
	if err != nil {
		return err
	}
	cursor, err := q.cursor()
	if err != nil {
		return err
	}
	page, err := s.m.AuditLog(r.Context(), p, budget.AuditLogQuery{UserID: userID, Scope: scope, Type: typ, Cursor: cursor, Limit: limit})
	if err != nil {
		return err
	}
	out := auditPageJSON{Entries: make([]auditJSON, len(page.Entries)), NextCursor: page.Next}
	for i, e := range page.Entries {
		out.Entries[i] = auditOf(e, true)
	}
	return writeJSON(w, out)
}

// GET /admin/users/{user_id}
func (s *server) getUser(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	if _, err := readQuery(r); err != nil {
		return err
	}
	u, err := s.existing(r.Context(), p, r.PathValue("user_id"))
	if err != nil {
		return err
	}
	h, err := s.m.History(r.Context(), budget.UsageQuery{UserID: u.Settings.UserID, Limit: recentUsage})
	if err != nil {
		return err
	}
	setETag(w, u.Settings.Version)
	return writeJSON(w, userDetailJSON{userJSON: userOf(u), RecentUsage: usageOf(h.Records, false), Forecast: forecastOf(u.Status.Forecast)})
}

// GET /admin/defaults
func (s *server) getDefaults(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	if _, err := readQuery(r); err != nil {
		return err
	}
	d, err := s.m.Defaults(r.Context())
	if err != nil {
		return err
	}
	setETag(w, d.Version)
	return writeJSON(w, defaultsJSON(d))
}

// PUT /admin/defaults
func (s *server) putDefaults(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	u, err := readSettingsUpdate(w, r)
	if err != nil {
		return err
	}
	d, err := s.m.UpdateDefaults(r.Context(), p, u)
	if err != nil {
		return err
	}
	setETag(w, d.Version)
	return writeJSON(w, defaultsJSON(d))
}
