package httpapi

import (
	"errors"
	"net/http"

	"github.com/llmbudget/budget"
)

// The templates: named plans an admin keeps, to apply to users through
// POST /admin/bulk. They are read and written like the defaults, with an
// ETag and an optional If-Match.

// GET /admin/templates
func (s *server) getTemplates(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	if _, err := readQuery(r); err != nil {
		return err
	}
	ts, err := s.m.Templates(r.Context(), p)
	if err != nil {
		return err
	}
	out := templatesJSON{Templates: make([]templateJSON, len(ts))}
	for i, t := range ts {
		out.Templates[i] = templateOf(t)
	}
	return writeJSON(w, out)
}

// GET /admin/templates/{name}
func (s *server) getTemplate(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	if _, err := readQuery(r); err != nil {
		return err
	}
	name := r.PathValue("name")
	t, err := s.m.Template(r.Context(), p, name)
	if errors.Is(err, budget.ErrNotFound) {
		return noTemplate("name", name)
	}
	if err != nil {
		return err
	}
	setETag(w, t.Version)
	return writeJSON(w, templateOf(t))
}

// PUT /admin/templates/{name}: a partial update, creating the template
// from the defaults if there is none.
func (s *server) putTemplate(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	u, err := readSettingsUpdate(w, r)
	if err != nil {
		return err
	}
	t, err := s.m.SaveTemplate(r.Context(), p, r.PathValue("name"), u)
	if err != nil {
		return err
	}
	setETag(w, t.Version)
	return writeJSON(w, templateOf(t))
}

// DELETE /admin/templates/{name}
func (s *server) deleteTemplate(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	if _, err := readQuery(r); err != nil {
		return err
	}
	pc, err := ifMatch(r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	err = s.m.DeleteTemplate(r.Context(), p, name, pc.ifVersion(1)) // template versions start at 1
	if errors.Is(err, budget.ErrNotFound) {
		return noTemplate("name", name)
	}
	if err != nil {
		return err
	}
	writeNoContent(w)
	return nil
}

// noTemplate is the 404 for a template that does not exist; field names
// where the request named it.
func noTemplate(field, name string) *Problem {
	return problem(http.StatusNotFound, ProblemNotFound, field, "no template "+name)
}
