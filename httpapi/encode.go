package httpapi

import (
	"time"

	"github.com/llmbudget/budget"
	"github.com/shopspring/decimal"
)

// The response bodies. Money and percentages are JSON strings holding exact
// decimals ("12.5"), never floats; times are RFC 3339 in UTC.

// settingsJSON is a user's settings, or (with no user_id) the defaults.
type settingsJSON struct {
	UserID             string    `json:"user_id,omitempty"`
	Limit              string    `json:"limit_usd"`
	Period             string    `json:"budget_period"`
	CustomDays         int       `json:"custom_period_days,omitzero"`
	CustomAnchor       time.Time `json:"custom_period_anchor,omitzero"`
	Timezone           string    `json:"timezone"`
	Enforce            bool      `json:"enforce_budget"`
	Visible            bool      `json:"budget_visible_to_user"`
	CanModify          bool      `json:"user_can_modify_limit"`
	CanReset           bool      `json:"user_can_reset_budget"`
	Yellow             string    `json:"alert_threshold_yellow"`
	Orange             string    `json:"alert_threshold_orange"`
	Red                string    `json:"alert_threshold_red"`
	CurrentPeriodStart time.Time `json:"current_period_start,omitzero"`
	CurrentPeriodEnd   time.Time `json:"current_period_end,omitzero"`
	LastResetAt        time.Time `json:"last_reset_at,omitzero"`
	AdminNotes         *string   `json:"admin_notes,omitempty"`
	Version            int64     `json:"version"`
	CreatedAt          time.Time `json:"created_at,omitzero"`
	UpdatedAt          time.Time `json:"updated_at,omitzero"`
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

func money(d decimal.Decimal) string { return d.String() }

func planJSON(p budget.Plan) settingsJSON {
	tz := p.Timezone
	if tz == "" {
		tz = "UTC"
	}
	return settingsJSON{
		Limit: money(p.Limit), Period: string(p.Period), CustomDays: p.CustomDays,
		CustomAnchor: utc(p.CustomAnchor), Timezone: tz, Enforce: p.Enforce,
		Visible: p.Visible, CanModify: p.CanModify, CanReset: p.CanReset,
		Yellow: money(p.Thresholds.Yellow), Orange: money(p.Thresholds.Orange), Red: money(p.Thresholds.Red),
	}
}

// userSettings is the settings as their user sees them: no admin notes.
func userSettings(s budget.Settings) settingsJSON {
	j := planJSON(s.Plan)
	j.UserID, j.Version = s.UserID, s.Version
	j.CurrentPeriodStart, j.CurrentPeriodEnd = utc(s.PeriodStart), utc(s.PeriodEnd)
	j.LastResetAt, j.CreatedAt, j.UpdatedAt = utc(s.ResetAt), utc(s.CreatedAt), utc(s.UpdatedAt)
	return j
}

// adminSettings is the settings as admins see them, with the notes.
func adminSettings(s budget.Settings) settingsJSON {
	j := userSettings(s)
	notes := s.AdminNotes
	j.AdminNotes = &notes
	return j
}

func defaultsJSON(d budget.Defaults) settingsJSON {
	j := planJSON(d.Plan)
	j.Version, j.UpdatedAt = d.Version, utc(d.UpdatedAt)
	return j
}

// spendJSON is what a status adds to settings.
type spendJSON struct {
	Spent     string `json:"spent_usd"`
	Reserved  string `json:"reserved_usd"`
	Remaining string `json:"remaining_usd"`
	Percent   string `json:"percent_used"`
	Level     string `json:"alert_level"`
}

func spendOf(st budget.Status) spendJSON {
	return spendJSON{
		Spent: money(st.Spent), Reserved: money(st.Reserved), Remaining: money(st.Remaining),
		Percent: money(st.Percent), Level: st.Level.String(),
	}
}

// statusJSON is GET /status.
type statusJSON struct {
	UserID string `json:"user_id"`
	Limit  string `json:"limit_usd"`
	spendJSON
	Enforce            bool      `json:"enforce_budget"`
	Period             string    `json:"budget_period"`
	CustomDays         int       `json:"custom_period_days,omitzero"`
	Timezone           string    `json:"timezone"`
	CurrentPeriodStart time.Time `json:"current_period_start"`
	CurrentPeriodEnd   time.Time `json:"current_period_end"`
}

func statusOf(st budget.Status) statusJSON {
	return statusJSON{
		UserID: st.UserID, Limit: money(st.Limit), spendJSON: spendOf(st),
		Enforce: st.Enforced, Period: string(st.Period), CustomDays: st.CustomDays, Timezone: st.Timezone,
		CurrentPeriodStart: utc(st.PeriodStart), CurrentPeriodEnd: utc(st.PeriodEnd),
	}
}

// userJSON is one user for admins: settings and status in one object.
type userJSON struct {
	settingsJSON
	spendJSON
}

func userOf(u budget.UserStatus) userJSON {
	j := userJSON{settingsJSON: adminSettings(u.Settings), spendJSON: spendOf(u.Status)}
	// The status is the fresher of the two on the period.
	j.CurrentPeriodStart, j.CurrentPeriodEnd = utc(u.Status.PeriodStart), utc(u.Status.PeriodEnd)
	return j
}

// usageJSON is one usage record.
type usageJSON struct {
	ID            string    `json:"id"`
	ReservationID string    `json:"reservation_id,omitempty"`
	Provider      string    `json:"provider"`
	Model         string    `json:"model"`
	InputTokens   int64     `json:"input_tokens"`
	OutputTokens  int64     `json:"output_tokens"`
	Cost          string    `json:"cost_usd"`
	At            time.Time `json:"at"`
}

func usageOf(rs []budget.UsageRecord) []usageJSON {
	out := make([]usageJSON, len(rs))
	for i, r := range rs {
		out[i] = usageJSON{
			ID: r.ID, ReservationID: r.ReservationID, Provider: r.Provider, Model: r.Model,
			InputTokens: r.InputTokens, OutputTokens: r.OutputTokens, Cost: money(r.Cost), At: utc(r.At),
		}
	}
	return out
}

// historyJSON is GET /usage/history.
type historyJSON struct {
	Usage      []usageJSON `json:"usage"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// itemJSON is one line of a breakdown.
type itemJSON struct {
	Provider     string `json:"provider,omitempty"`
	Model        string `json:"model,omitempty"`
	Cost         string `json:"cost_usd"`
	Requests     int64  `json:"requests"`
	InputTokens  int64  `json:"input_tokens"`
	OutputTokens int64  `json:"output_tokens"`
}

func itemOf(b budget.BreakdownItem) itemJSON {
	return itemJSON{Provider: b.Provider, Model: b.Model, Cost: money(b.Cost), Requests: b.Requests,
		InputTokens: b.InputTokens, OutputTokens: b.OutputTokens}
}

// breakdownJSON is GET /usage/breakdown.
type breakdownJSON struct {
	UserID     string     `json:"user_id"`
	From       time.Time  `json:"from"`
	To         time.Time  `json:"to"`
	Total      itemJSON   `json:"total"`
	ByProvider []itemJSON `json:"by_provider"`
	ByModel    []itemJSON `json:"by_model"`
}

func breakdownOf(b budget.Breakdown) breakdownJSON {
	j := breakdownJSON{UserID: b.UserID, From: utc(b.From), To: utc(b.To), Total: itemOf(b.Total),
		ByProvider: make([]itemJSON, len(b.ByProvider)), ByModel: make([]itemJSON, len(b.ByModel))}
	for i, it := range b.ByProvider {
		j.ByProvider[i] = itemOf(it)
	}
	for i, it := range b.ByModel {
		j.ByModel[i] = itemOf(it)
	}
	return j
}

// auditJSON is one audit entry.
type auditJSON struct {
	ID            int64         `json:"id"`
	UserID        string        `json:"user_id,omitempty"`
	Type          string        `json:"type"`
	Actor         string        `json:"actor"`
	ActorAdmin    bool          `json:"actor_admin"`
	Reason        string        `json:"reason,omitempty"`
	PreviousLimit string        `json:"previous_limit_usd"`
	NewLimit      string        `json:"new_limit_usd"`
	PreviousSpent string        `json:"previous_spent_usd"`
	PeriodStart   time.Time     `json:"period_start,omitzero"`
	PeriodEnd     time.Time     `json:"period_end,omitzero"`
	Before        *settingsJSON `json:"before,omitempty"`
	After         *settingsJSON `json:"after,omitempty"`
	Changes       []changeJSON  `json:"changes,omitempty"`
	BulkID        string        `json:"bulk_id,omitempty"`
	Template      string        `json:"template,omitempty"`
	At            time.Time     `json:"at"`
}

// auditOf renders e; admins see the settings around a change, with notes.
func auditOf(e budget.AuditEntry, admin bool) auditJSON {
	j := auditJSON{
		ID: e.ID, UserID: e.UserID, Type: string(e.Type), Actor: e.Actor, ActorAdmin: e.ActorAdmin,
		Reason: e.Reason, PreviousLimit: money(e.PreviousLimit), NewLimit: money(e.NewLimit),
		PreviousSpent: money(e.PreviousSpent), PeriodStart: utc(e.PeriodStart), PeriodEnd: utc(e.PeriodEnd), At: utc(e.At),
		BulkID: e.BulkID, Template: e.Template,
	}
	for _, c := range e.Changes() {
		if admin || c.Field != fNotes {
			j.Changes = append(j.Changes, changeJSON{Field: c.Field, Before: c.Before, After: c.After})
		}
	}
	if admin {
		for _, p := range [...]struct {
			s   *budget.Settings
			dst **settingsJSON
		}{{e.Before, &j.Before}, {e.After, &j.After}} {
			if p.s != nil {
				v := adminSettings(*p.s)
				if e.Type == budget.AuditDefaults || e.Type == budget.AuditTemplate {
					v = defaultsJSON(budget.Defaults{Plan: p.s.Plan, Version: p.s.Version})
				}
				*p.dst = &v
			}
		}
	}
	return j
}

// auditPageJSON is GET /admin/audit.
type auditPageJSON struct {
	Entries    []auditJSON `json:"entries"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// resetJSON is the answer to a reset: its audit entry and the new status.
type resetJSON struct {
	Reset  auditJSON  `json:"reset"`
	Status statusJSON `json:"status"`
}

// summaryJSON totals every user with settings.
type summaryJSON struct {
	Users      int    `json:"users"`
	TotalLimit string `json:"total_limit_usd"`
	TotalSpent string `json:"total_spent_usd"`
	OverBudget int    `json:"users_over_budget"`
}

// listJSON is GET /admin/list.
type listJSON struct {
	Users      []userJSON  `json:"users"`
	NextCursor string      `json:"next_cursor,omitempty"`
	Summary    summaryJSON `json:"summary"`
}

// userDetailJSON is GET /admin/users/{user_id}.
type userDetailJSON struct {
	userJSON
	RecentUsage []usageJSON `json:"recent_usage"`
}

// meJSON is GET /me: who the caller is, for a client's navigation.
type meJSON struct {
	UserID string `json:"user_id"`
	Admin  bool   `json:"admin"`
}

// accessJSON is GET /admin/access.
type accessJSON struct {
	Enabled bool `json:"enabled"`
	Users   int  `json:"users"`
	Visible int  `json:"visible_users"`
}

func accessOf(a budget.Access) accessJSON {
	return accessJSON{Enabled: a.Enabled, Users: a.Users, Visible: a.Visible}
}

// accessChangeJSON is PUT /admin/access: the state after, and what changed.
type accessChangeJSON struct {
	accessJSON
	Changed int              `json:"changed"`
	BulkID  string           `json:"bulk_id"`
	Failed  []userResultJSON `json:"failed"`
}

// userResultJSON is what a change of many users did to one of them: the
// settings after it, or the problem that left the user unchanged.
type userResultJSON struct {
	UserID   string        `json:"user_id"`
	OK       bool          `json:"ok"`
	Changed  *bool         `json:"changed,omitempty"`
	Settings *settingsJSON `json:"settings,omitempty"`
	Problem  *Problem      `json:"problem,omitempty"`
}

// bulkJSON is POST /admin/bulk.
type bulkJSON struct {
	BulkID  string           `json:"bulk_id"`
	Changed int              `json:"changed"`
	Results []userResultJSON `json:"results"`
}

// templateJSON is a template: its name, then the defaults' shape.
type templateJSON struct {
	Name string `json:"name"`
	settingsJSON
}

func templateOf(t budget.Template) templateJSON {
	j := planJSON(t.Plan)
	j.Version, j.UpdatedAt = t.Version, utc(t.UpdatedAt)
	return templateJSON{Name: t.Name, settingsJSON: j}
}

// templatesJSON is GET /admin/templates.
type templatesJSON struct {
	Templates []templateJSON `json:"templates"`
}

// changeJSON is one field an audit entry changed.
type changeJSON struct {
	Field  string `json:"field"`
	Before string `json:"before"`
	After  string `json:"after"`
}
