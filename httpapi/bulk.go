package httpapi

import (
	"errors"
	"net/http"
	"slices"

	"github.com/llmbudget/budget"
)

// The endpoints that change many users at once: the switch that gives
// regular users their budgets, and bulk changes. Each user is changed in
// one atomic step and reported on its own; a user who cannot be changed
// is left as they were and does not fail the request.

// GET /admin/access
func (s *server) getAccess(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	if _, err := readQuery(r); err != nil {
		return err
	}
	a, err := s.m.Access(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, accessOf(a))
}

// PUT /admin/access
func (s *server) putAccess(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	if _, err := readQuery(r); err != nil {
		return err
	}
	o, err := readObject(w, r, accessBody, false)
	if err != nil {
		return err
	}
	enabled, err := o.boolean(fEnabled)
	if err != nil {
		return err
	}
	if enabled == nil {
		return invalid(fEnabled, "say whether regular users have budgets: true or false")
	}
	c, err := s.m.SetAccess(r.Context(), p, *enabled)
	if err != nil {
		return err
	}
	out := accessChangeJSON{accessJSON: accessOf(c.Access), Changed: c.Changed, BulkID: c.BulkID,
		Failed: make([]userResultJSON, len(c.Failed))}
	for i, f := range c.Failed {
		out.Failed[i] = s.userResult(r, f)
	}
	return writeJSON(w, out)
}

// POST /admin/bulk
func (s *server) postBulk(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	b, err := readBulk(w, r)
	if err != nil {
		return err
	}
	var res budget.BulkResult
	if b.template != "" {
		res, err = s.m.ApplyTemplate(r.Context(), p, b.template, b.sel)
		if errors.Is(err, budget.ErrNotFound) { // users without settings are results, not errors
			return noTemplate(fTemplate, b.template)
		}
	} else {
		res, err = s.m.BulkUpdate(r.Context(), p, b.sel, b.changes)
	}
	if err != nil {
		return refield(err, bulkField)
	}
	out := bulkJSON{BulkID: res.BulkID, Changed: res.Changed, Results: make([]userResultJSON, len(res.Results))}
	for i, u := range res.Results {
		out.Results[i] = s.userResult(r, u)
	}
	return writeJSON(w, out)
}

// bulkField names, by its path in the request, a field the Manager
// refused a bulk change for: a filter of "match" or a setting of
// "changes".
func bulkField(f string) string {
	switch {
	case f == fQ || f == fLevel:
		return fMatch + "." + f
	case slices.Contains(planFields, f):
		return fChanges + "." + f
	}
	return f
}

// userResult renders what a change of many users did to one of them.
func (s *server) userResult(r *http.Request, u budget.UserResult) userResultJSON {
	if u.Err != nil {
		var p *Problem
		if errors.Is(u.Err, budget.ErrNotFound) {
			p = noUser(u.UserID)
		} else {
			p = s.problemOf(r, u.Err)
		}
		return userResultJSON{UserID: u.UserID, Problem: p}
	}
	set := adminSettings(u.Settings)
	return userResultJSON{UserID: u.UserID, OK: true, Changed: &u.Changed, Settings: &set}
}
