package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/llmbudget/budget"
)

// The endpoints of a user's own budget. Each acts on the authenticated
// principal's budget and no one else's, whatever the principal. The usage
// endpoints are written once for both readers (see subject): the user's
// own routes here, and the admins' views of one user under /admin/users/.

// viewOwn returns p's settings once p may see them (budget.CanView): a
// hidden budget is refused before anything else is read.
func (s *server) viewOwn(ctx context.Context, p budget.Principal) (budget.Settings, error) {
	set, err := s.m.Settings(ctx, p.UserID)
	if err != nil {
		return budget.Settings{}, err
	}
	return set, budget.CanView(p, set)
}

// GET /me
func (s *server) getMe(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	if _, err := readQuery(r); err != nil {
		return err
	}
	return writeJSON(w, meJSON{UserID: p.UserID, Admin: p.Admin})
}

// GET /status
func (s *server) getStatus(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	if _, err := readQuery(r); err != nil {
		return err
	}
	st, err := s.m.StatusFor(r.Context(), p, p.UserID)
	if err != nil {
		return err
	}
	return writeJSON(w, statusOf(st))
}

// GET /settings
func (s *server) getSettings(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	if _, err := readQuery(r); err != nil {
		return err
	}
	set, err := s.viewOwn(r.Context(), p)
	if err != nil {
		return err
	}
	setETag(w, set.Version)
	return writeJSON(w, userSettings(set))
}

// PUT /settings
func (s *server) putSettings(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	u, err := readSettingsUpdate(w, r)
	if err != nil {
		return err
	}
	set, err := s.m.UpdateSettings(r.Context(), p, p.UserID, u)
	if err != nil {
		return err
	}
	setETag(w, set.Version)
	return writeJSON(w, userSettings(set))
}

// readSettingsUpdate reads a PUT of settings or defaults: no query, an
// optional If-Match (versions of both start at 1) and a body of settings.
func readSettingsUpdate(w http.ResponseWriter, r *http.Request) (budget.SettingsUpdate, error) {
	if _, err := readQuery(r); err != nil {
		return budget.SettingsUpdate{}, err
	}
	pc, err := ifMatch(r)
	if err != nil {
		return budget.SettingsUpdate{}, err
	}
	o, err := readObject(w, r, settingsBody, false)
	if err != nil {
		return budget.SettingsUpdate{}, err
	}
	u, err := o.update()
	if err != nil {
		return budget.SettingsUpdate{}, err
	}
	u.IfVersion = pc.ifVersion(1)
	return u, nil
}

// POST /reset
func (s *server) postReset(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	return s.reset(w, r, p, p.UserID, false)
}

// reset resets userID's budget on behalf of p and answers with the audit
// entry and the new status.
func (s *server) reset(w http.ResponseWriter, r *http.Request, p budget.Principal, userID string, admin bool) error {
	if _, err := readQuery(r); err != nil {
		return err
	}
	o, err := readObject(w, r, resetBody, true)
	if err != nil {
		return err
	}
	var ro budget.ResetOptions
	if ro.Reason, err = o.reason(); err != nil {
		return err
	}
	if ro.Limit, err = o.amount(fLimit); err != nil {
		return err
	}
	e, err := s.m.Reset(r.Context(), p, userID, ro)
	if err != nil {
		return err
	}
	st, err := s.m.Status(r.Context(), userID)
	if err != nil {
		return err
	}
	return writeJSON(w, resetJSON{Reset: auditOf(e, admin), Status: statusOf(st)})
}

// subject says whose usage a request reads, once the principal may read
// it: the principal's own (the user routes), that of the user the path
// names, or that of the team or org the path names (the admin routes). The
// routes share their code through it, so they take the same parameters and
// answer the same JSON.
type subject func(r *http.Request, p budget.Principal) (budget.Scope, error)

// scopedRange reads the ?from=&to= of a query that takes nothing else,
// then the budget of the request (of), for the views of a time range.
func scopedRange(r *http.Request, p budget.Principal, of subject) (scope budget.Scope, from, to time.Time, err error) {
	q, err := readQuery(r, "from", "to")
	if err != nil {
		return scope, from, to, err
	}
	if from, to, err = q.timeRange(); err != nil {
		return scope, from, to, err
	}
	scope, err = of(r, p)
	return scope, from, to, err
}

// self is the principal, if their budget is visible to them.
func (s *server) self(r *http.Request, p budget.Principal) (budget.Scope, error) {
	_, err := s.viewOwn(r.Context(), p)
	return budget.User(p.UserID), err
}

// pathUser is the user named by the path's {user_id}, for an admin; a user
// without settings is a 404.
func (s *server) pathUser(r *http.Request, p budget.Principal) (budget.Scope, error) {
	set, err := s.lookup(r.Context(), p, r.PathValue("user_id"))
	return budget.User(set.UserID), err
}

// GET /usage/breakdown?from=&to=,
// GET /admin/users/{user_id}/usage/breakdown?from=&to=,
// GET /admin/teams/{team_id}/usage/breakdown?from=&to= and
// GET /admin/orgs/{org_id}/usage/breakdown?from=&to=
func (s *server) breakdown(of subject) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
		scope, from, to, err := scopedRange(r, p, of)
		if err != nil {
			return err
		}
		b, err := s.m.BudgetBreakdown(r.Context(), scope, from, to)
		if err != nil {
			return err
		}
		return writeJSON(w, breakdownOf(scope, b))
	}
}

// GET /usage/history?limit=&cursor=&from=&to=&format=,
// GET /admin/users/{user_id}/usage/history?limit=&cursor=&from=&to=&format=,
// GET /admin/teams/{team_id}/usage/history?limit=&cursor=&from=&to=&format= and
// GET /admin/orgs/{org_id}/usage/history?limit=&cursor=&from=&to=&format=
//
// A team's or an org's records name the member who spent. With
// ?format=csv, or Accept: text/csv, the answer is every record in the
// range as a CSV download (budget.UsageColumns), streamed.
func (s *server) history(of subject) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
		q, err := readQuery(r, "limit", "cursor", "from", "to", "format")
		if err != nil {
			return err
		}
		csv, err := wantsCSV(r, q)
		if err != nil {
			return err
		}
		from, to, err := q.timeRange()
		if err != nil {
			return err
		}
		if csv {
			if err := noPaging(q); err != nil {
				return err
			}
			scope, err := of(r, p)
			if err != nil {
				return err
			}
			return s.exportHistory(w, r, p, scope, from, to)
		}
		limit, err := q.limit()
		if err != nil {
			return err
		}
		cursor, err := q.cursor()
		if err != nil {
			return err
		}
		scope, err := of(r, p)
		if err != nil {
			return err
		}
		uq := budget.UsageQuery{Scope: scope, From: from, To: to, Cursor: cursor, Limit: limit}
		user := scope.Kind == budget.UserScope
		if user {
			uq = budget.UsageQuery{UserID: scope.ID, From: from, To: to, Cursor: cursor, Limit: limit}
		}
		page, err := s.m.History(r.Context(), uq)
		if err != nil {
			return err
		}
		return writeJSON(w, historyJSON{Usage: usageOf(page.Records, !user), NextCursor: page.Next})
	}
}
