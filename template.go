package budget

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Template is a named plan an admin keeps to give to users, one at a time
// or in bulk: "intern" at $5 a week, view-only; "researcher" at $200 a
// month, allowed to modify. Templates are stored like the defaults, and
// applying one copies its plan into each user's settings: a later change
// to the template does not change users it was applied to.
type Template struct {
	Name string
	Plan
	// Version is 1 when the template is created and increases with every
	// save; it is the compare-and-set token of SaveTemplate's IfVersion
	// and the HTTP ETag.
	Version   int64
	UpdatedAt time.Time
}

// MaxTemplateNameLen bounds a template's name.
const MaxTemplateNameLen = 64

// ValidateTemplateName reports whether name can name a template: 1 to 64
// ASCII letters, digits, spaces, '.', '_' and '-', starting with a letter
// or digit. The rule keeps names readable in a list and safe in a URL.
func ValidateTemplateName(name string) error {
	ok := name != "" && len(name) <= MaxTemplateNameLen
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		ok = alnum || i > 0 && (c == ' ' || c == '.' || c == '_' || c == '-')
	}
	if !ok {
		return &ValidationError{Field: "name", Reason: "must be 1 to 64 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit"}
	}
	return nil
}

// MaxTemplates bounds how many templates can be saved.
const MaxTemplates = 100

// Templates returns every template in name order, for admins (anyone else
// gets ErrForbidden).
func (m *Manager) Templates(ctx context.Context, actor Principal) (_ []Template, err error) {
	ctx, span := m.tel.start(ctx, spanTemplates, "", &actor)
	defer m.tel.end(span, &err)
	if err := CanAdminister(actor); err != nil {
		return nil, err
	}
	ts, err := m.store.Templates(ctx)
	if err != nil {
		return nil, fmt.Errorf("budget: loading templates: %w", err)
	}
	return ts, nil
}

// Template returns the template named name, for admins; an unknown name
// is ErrNotFound.
func (m *Manager) Template(ctx context.Context, actor Principal, name string) (_ Template, err error) {
	ctx, span := m.tel.start(ctx, spanTemplate, "", &actor)
	defer m.tel.end(span, &err)
	if err := ValidateTemplateName(name); err != nil {
		return Template{}, err
	}
	ts, err := m.Templates(ctx, actor)
	if err != nil {
		return Template{}, err
	}
	t, ok := findTemplate(ts, name)
	if !ok {
		return Template{}, fmt.Errorf("%w: no template %q", ErrNotFound, name)
	}
	return t, nil
}

func findTemplate(ts []Template, name string) (Template, bool) {
	i := slices.IndexFunc(ts, func(t Template) bool { return t.Name == name })
	if i < 0 {
		return Template{}, false
	}
	return ts[i], true
}

// SaveTemplate applies u to the template named name, on behalf of an admin
// (anyone else gets ErrForbidden), creating it from the current defaults
// for new users when there is none: so a new template needs only the
// fields that differ from the defaults. The change is validated like
// defaults (a Custom template may leave its anchor to each user it is
// applied to) and audited as an AuditTemplate entry. A save that changes
// nothing writes nothing.
//
// u.AdminNotes must be nil. With u.IfVersion set, the save is refused with
// ErrConflict unless the template is at that version. Users the template
// was applied to before keep their settings: apply it again to change them.
func (m *Manager) SaveTemplate(ctx context.Context, actor Principal, name string, u SettingsUpdate) (_ Template, err error) {
	ctx, span := m.tel.start(ctx, spanSaveTemplate, "", &actor)
	defer m.tel.end(span, &err)
	if err := ValidateTemplateName(name); err != nil {
		return Template{}, err
	}
	if u.AdminNotes != nil {
		return Template{}, &ValidationError{Field: "admin_notes", Reason: "templates carry no admin notes"}
	}
	if u.ModelCaps != nil {
		return Template{}, &ValidationError{Field: "model_caps", Reason: "templates carry no model caps: set them per budget with UpdateBudget"}
	}
	for attempt := 0; ; attempt++ {
		ts, err := m.Templates(ctx, actor)
		if err != nil {
			return Template{}, err
		}
		now := m.now()
		cur, exists := findTemplate(ts, name)
		if u.IfVersion != 0 && u.IfVersion != cur.Version {
			return Template{}, fmt.Errorf("%w: template %q is at version %d, not %d", ErrConflict, name, cur.Version, u.IfVersion)
		}
		base := cur.Plan
		if !exists {
			if len(ts) >= MaxTemplates {
				return Template{}, &ValidationError{Field: "name", Reason: fmt.Sprintf("at most %d templates; delete one first", MaxTemplates)}
			}
			d, err := m.Defaults(ctx)
			if err != nil {
				return Template{}, err
			}
			base = d.Plan
		}
		next := Template{Name: name, Plan: u.apply(base), Version: cur.Version + 1, UpdatedAt: now}
		if err := next.Plan.validateDefault(&m.zones); err != nil {
			return Template{}, err
		}
		if exists && next.Plan.equal(cur.Plan) {
			return cur, nil
		}
		audit := AuditEntry{
			Type: AuditTemplate, Template: name, Actor: actor.UserID, ActorAdmin: actor.Admin,
			NewLimit: next.Limit, After: &Settings{Plan: next.Plan, Version: next.Version}, At: now,
		}
		if exists {
			audit.PreviousLimit, audit.Before = cur.Limit, &Settings{Plan: cur.Plan, Version: cur.Version}
		}
		err = m.store.SaveTemplate(ctx, TemplateRequest{Template: next, ExpectVersion: cur.Version, Audit: audit})
		if errors.Is(err, ErrConflict) && u.IfVersion == 0 && attempt < maxRetries {
			m.tel.retrying(ctx, "save template", "", err, attempt)
			continue
		}
		if err != nil {
			return Template{}, fmt.Errorf("budget: save template %q: %w", name, err)
		}
		return next, nil
	}
}

// DeleteTemplate deletes the template named name, on behalf of an admin
// (anyone else gets ErrForbidden); an unknown name is ErrNotFound. With
// ifVersion non-zero, it is refused with ErrConflict unless the template
// is at that version. Users it was applied to keep their settings. The
// deletion is audited as an AuditTemplate entry with no After.
func (m *Manager) DeleteTemplate(ctx context.Context, actor Principal, name string, ifVersion int64) (err error) {
	ctx, span := m.tel.start(ctx, spanDeleteTemplate, "", &actor)
	defer m.tel.end(span, &err)
	for attempt := 0; ; attempt++ {
		t, err := m.Template(ctx, actor, name)
		if err != nil {
			return err
		}
		if ifVersion != 0 && ifVersion != t.Version {
			return fmt.Errorf("%w: template %q is at version %d, not %d", ErrConflict, name, t.Version, ifVersion)
		}
		err = m.store.DeleteTemplate(ctx, TemplateRequest{Template: t, ExpectVersion: t.Version, Audit: AuditEntry{
			Type: AuditTemplate, Template: name, Actor: actor.UserID, ActorAdmin: actor.Admin,
			PreviousLimit: t.Limit, Before: &Settings{Plan: t.Plan, Version: t.Version}, At: m.now(),
		}})
		if errors.Is(err, ErrConflict) && ifVersion == 0 && attempt < maxRetries {
			m.tel.retrying(ctx, "delete template", "", err, attempt)
			continue
		}
		if err != nil {
			return fmt.Errorf("budget: delete template %q: %w", name, err)
		}
		return nil
	}
}
