package budget

// Principal is who is acting: the host application authenticates a request
// and says who made it. Admin is the host's knowledge too; the library keeps
// no list of admins.
type Principal struct {
	UserID string
	Admin  bool
}

// Permissions are what an admin lets a user do with their own budget.
type Permissions struct {
	// Visible lets the user see their budget. A hidden budget is still
	// enforced; the user just cannot see or change it.
	Visible bool
	// CanModify lets the user change their own limit, period, timezone,
	// enforcement and alert thresholds. Without it the user's budget is
	// view-only: they see it and change nothing.
	CanModify bool
	// CanReset lets the user reset their own budget.
	CanReset bool
}

// The permission rules. Each returns nil when the principal may act, and
// otherwise a *PermissionError that wraps ErrForbidden. They are pure
// functions of their arguments, so an HTTP layer can ask before acting and
// the Manager asks again, inside every call that needs them.
//
// Admins may do anything to anyone. A regular user acts only on their own
// budget, and only while it is visible to them.

// CanView reports whether p may see the budget whose settings are s.
func CanView(p Principal, s Settings) error {
	if p.Admin {
		return nil
	}
	if p.UserID != s.UserID {
		return &PermissionError{Action: "view", Reason: "users see only their own budget"}
	}
	if !s.Visible {
		return &PermissionError{Action: "view", Reason: "this budget is hidden by an administrator", Hidden: true}
	}
	return nil
}

// CanUpdate reports whether p may apply u to the settings s. A user changes
// their limit, period, timezone, enforcement and alert thresholds only with
// CanModify (the thresholds define the level admins see, so a view-only user
// cannot redefine it), and never the admin notes or permissions.
func CanUpdate(p Principal, s Settings, u SettingsUpdate) error {
	if p.Admin {
		return nil
	}
	if err := CanView(p, s); err != nil {
		err.(*PermissionError).Action = "update"
		return err
	}
	switch {
	case u.Visible != nil || u.CanModify != nil || u.CanReset != nil:
		return &PermissionError{Action: "update", Field: "permissions", Reason: "only an administrator changes permissions"}
	case u.AdminNotes != nil:
		return &PermissionError{Action: "update", Field: "admin_notes", Reason: "only an administrator writes admin notes"}
	case u.ModelCaps != nil:
		return &PermissionError{Action: "update", Field: "model_caps", Reason: "only an administrator sets model caps"}
	}
	if !s.CanModify {
		for _, f := range [...]struct {
			set   bool
			field string
		}{
			{u.Limit != nil, "limit_usd"},
			{u.Period != nil, "budget_period"},
			{u.CustomDays != nil, "custom_period_days"},
			{u.CustomAnchor != nil, "custom_period_anchor"},
			{u.Timezone != nil, "timezone"},
			{u.Enforce != nil, "enforce_budget"},
			{u.Yellow != nil, "alert_threshold_yellow"},
			{u.Orange != nil, "alert_threshold_orange"},
			{u.Red != nil, "alert_threshold_red"},
		} {
			if f.set {
				return &PermissionError{Action: "update", Field: f.field, Reason: "your administrator has not allowed you to modify this budget"}
			}
		}
	}
	return nil
}

// CanReset reports whether p may reset the budget whose settings are s.
func CanReset(p Principal, s Settings) error {
	if p.Admin {
		return nil
	}
	if err := CanView(p, s); err != nil {
		err.(*PermissionError).Action = "reset"
		return err
	}
	if !s.CanReset {
		return &PermissionError{Action: "reset", Reason: "your administrator has not allowed you to reset this budget"}
	}
	return nil
}

// CanAdminister reports whether p may act on everyone's budgets: list them,
// read the audit log and change the defaults for new users.
func CanAdminister(p Principal) error {
	if p.Admin {
		return nil
	}
	return &PermissionError{Action: "administer", Reason: "administrators only"}
}
