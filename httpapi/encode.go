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
	// Teams, Org and ModelCaps are shown to admins only, when set.
	Teams     []string  `json:"teams,omitempty"`
	Org       string    `json:"org,omitempty"`
	ModelCaps []capJSON `json:"model_caps,omitempty"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
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

// adminSettings is the settings as admins see them, with the notes, and
// the user's teams, org and model caps when they have any.
func adminSettings(s budget.Settings) settingsJSON {
	j := userSettings(s)
	notes := s.AdminNotes
	j.AdminNotes = &notes
	j.Teams, j.Org = s.Teams, s.Org
	for _, c := range s.ModelCaps {
		j.ModelCaps = append(j.ModelCaps, capJSON{Pattern: c.Pattern, Limit: money(c.Limit)})
	}
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
	// Budgets is every budget that applies to the user's calls, the
	// binding one first: the only view a user has of a team's or an org's
	// figures.
	Budgets []budgetLineJSON `json:"budgets"`
	// Forecast projects the spend to the end of the period.
	Forecast *forecastJSON `json:"forecast,omitempty"`
}

// forecastJSON is a budget's forecast (budget.Forecast): the spend at the
// end of the period at the recent pace, when the limit is reached at that
// pace (null: not before the period ends), and the method's inputs.
type forecastJSON struct {
	// Method names how the forecast is made: "recent_pace", the settled
	// spend of the last pace_days days (holds never count), per day over
	// a window of at least one day, extrapolated to the period's end.
	Method    string     `json:"method"`
	PaceDays  int        `json:"pace_days"`
	PaceFrom  time.Time  `json:"pace_from"`
	PaceTo    time.Time  `json:"pace_to"`
	PaceSpent string     `json:"pace_spent_usd"`
	PerDay    string     `json:"spend_per_day_usd"`
	Projected string     `json:"projected_spent_usd"`
	LimitAt   *time.Time `json:"limit_reached_at"`
	Exceeds   bool       `json:"projected_over_limit"`
}

func forecastOf(f *budget.Forecast) *forecastJSON {
	if f == nil {
		return nil
	}
	j := &forecastJSON{Method: "recent_pace", PaceDays: budget.ForecastDays, PaceFrom: utc(f.PaceFrom), PaceTo: utc(f.PaceTo),
		PaceSpent: money(f.PaceSpend), PerDay: money(f.PerDay), Projected: money(f.Projected), Exceeds: f.Exceeds}
	if f.LimitAt != nil {
		at := f.LimitAt.UTC()
		j.LimitAt = &at
	}
	return j
}

func statusOf(st budget.Status) statusJSON {
	return statusJSON{
		UserID: st.UserID, Limit: money(st.Limit), spendJSON: spendOf(st),
		Enforce: st.Enforced, Period: string(st.Period), CustomDays: st.CustomDays, Timezone: st.Timezone,
		CurrentPeriodStart: utc(st.PeriodStart), CurrentPeriodEnd: utc(st.PeriodEnd),
		Budgets: linesOf(st), Forecast: forecastOf(st.Forecast),
	}
}

// budgetLineJSON is one budget that applies to a user's calls, in GET
// /status's "budgets": the user's own, a team's, an org's, or a model cap
// of one of those (with its pattern).
type budgetLineJSON struct {
	Scope   string `json:"scope"`
	ID      string `json:"id"`
	Pattern string `json:"pattern,omitempty"`
	Limit   string `json:"limit_usd"`
	spendJSON
	Enforce            bool      `json:"enforce_budget"`
	Period             string    `json:"budget_period"`
	CurrentPeriodStart time.Time `json:"current_period_start"`
	CurrentPeriodEnd   time.Time `json:"current_period_end"`
	// Binding marks the budget that binds: the enforced one with the
	// least room left.
	Binding bool `json:"binding,omitempty"`
}

// linesOf lists the budgets of a user's status, the binding one first and
// the others in the core's order (the user's own, teams, org, caps). A
// user whose own budget is the only one gets it alone, binding when it is
// enforced.
func linesOf(st budget.Status) []budgetLineJSON {
	bs := st.Budgets
	if len(bs) == 0 {
		own := st
		own.Binding = st.Enforced
		bs = []budget.Status{own}
	}
	out := make([]budgetLineJSON, 0, len(bs))
	for _, binding := range [...]bool{true, false} {
		for _, b := range bs {
			if b.Binding == binding {
				out = append(out, budgetLineJSON{
					Scope: string(b.Scope.Kind), ID: b.Scope.ID, Pattern: b.Pattern, Limit: money(b.Limit),
					spendJSON: spendOf(b), Enforce: b.Enforced, Period: string(b.Period),
					CurrentPeriodStart: utc(b.PeriodStart), CurrentPeriodEnd: utc(b.PeriodEnd), Binding: b.Binding,
				})
			}
		}
	}
	return out
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
	ID string `json:"id"`
	// UserID is the member who spent, in the usage of a team or an org.
	UserID        string    `json:"user_id,omitempty"`
	ReservationID string    `json:"reservation_id,omitempty"`
	Provider      string    `json:"provider"`
	Model         string    `json:"model"`
	InputTokens   int64     `json:"input_tokens"`
	OutputTokens  int64     `json:"output_tokens"`
	Cost          string    `json:"cost_usd"`
	At            time.Time `json:"at"`
}

// usageOf renders records; withUser names the user of each, for the usage
// of a team or an org, whose records are its members'.
func usageOf(rs []budget.UsageRecord, withUser bool) []usageJSON {
	out := make([]usageJSON, len(rs))
	for i, r := range rs {
		out[i] = usageJSON{
			ID: r.ID, ReservationID: r.ReservationID, Provider: r.Provider, Model: r.Model,
			InputTokens: r.InputTokens, OutputTokens: r.OutputTokens, Cost: money(r.Cost), At: utc(r.At),
		}
		if withUser {
			out[i].UserID = r.UserID
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

// breakdownJSON is GET /usage/breakdown: a user's, or (with scope and id
// instead of user_id) a team's or an org's.
type breakdownJSON struct {
	UserID     string     `json:"user_id,omitempty"`
	Scope      string     `json:"scope,omitempty"`
	ID         string     `json:"id,omitempty"`
	From       time.Time  `json:"from"`
	To         time.Time  `json:"to"`
	Total      itemJSON   `json:"total"`
	ByProvider []itemJSON `json:"by_provider"`
	ByModel    []itemJSON `json:"by_model"`
}

// breakdownOf renders the breakdown of the budget of scope.
func breakdownOf(scope budget.Scope, b budget.Breakdown) breakdownJSON {
	j := breakdownJSON{From: utc(b.From), To: utc(b.To), Total: itemOf(b.Total),
		ByProvider: make([]itemJSON, len(b.ByProvider)), ByModel: make([]itemJSON, len(b.ByModel))}
	if scope.Kind == budget.UserScope {
		j.UserID = scope.ID
	} else {
		j.Scope, j.ID = string(scope.Kind), scope.ID
	}
	for i, it := range b.ByProvider {
		j.ByProvider[i] = itemOf(it)
	}
	for i, it := range b.ByModel {
		j.ByModel[i] = itemOf(it)
	}
	return j
}

// auditJSON is one audit entry: a user's (user_id), a team's or an org's
// (scope and budget_id), or neither (the defaults and the templates).
type auditJSON struct {
	ID            int64        `json:"id"`
	UserID        string       `json:"user_id,omitempty"`
	Scope         string       `json:"scope,omitempty"`
	BudgetID      string       `json:"budget_id,omitempty"`
	Type          string       `json:"type"`
	Actor         string       `json:"actor"`
	ActorAdmin    bool         `json:"actor_admin"`
	Reason        string       `json:"reason,omitempty"`
	PreviousLimit string       `json:"previous_limit_usd"`
	NewLimit      string       `json:"new_limit_usd"`
	PreviousSpent string       `json:"previous_spent_usd"`
	PeriodStart   time.Time    `json:"period_start,omitzero"`
	PeriodEnd     time.Time    `json:"period_end,omitzero"`
	Before        any          `json:"before,omitempty"` // *settingsJSON, or *budgetJSON for a team or org
	After         any          `json:"after,omitempty"`
	Changes       []changeJSON `json:"changes,omitempty"`
	BulkID        string       `json:"bulk_id,omitempty"`
	Template      string       `json:"template,omitempty"`
	At            time.Time    `json:"at"`
}

// auditOf renders e; admins see the settings around a change, with notes.
func auditOf(e budget.AuditEntry, admin bool) auditJSON {
	j := auditJSON{
		ID: e.ID, UserID: e.UserID, Type: string(e.Type), Actor: e.Actor, ActorAdmin: e.ActorAdmin,
		Reason: e.Reason, PreviousLimit: money(e.PreviousLimit), NewLimit: money(e.NewLimit),
		PreviousSpent: money(e.PreviousSpent), PeriodStart: utc(e.PeriodStart), PeriodEnd: utc(e.PeriodEnd), At: utc(e.At),
		BulkID: e.BulkID, Template: e.Template,
	}
	holder := false // a team's or an org's entry
	if e.UserID != "" {
		if sc, _ := budget.ScopeOfKey(e.UserID); sc.Kind != budget.UserScope {
			holder = true
			j.UserID, j.Scope, j.BudgetID = "", string(sc.Kind), sc.ID
		}
	}
	for _, c := range e.Changes() {
		if admin || c.Field != fNotes {
			j.Changes = append(j.Changes, changeJSON{Field: c.Field, Before: c.Before, After: c.After})
		}
	}
	if admin {
		for _, p := range [...]struct {
			s   *budget.Settings
			dst *any
		}{{e.Before, &j.Before}, {e.After, &j.After}} {
			switch {
			case p.s == nil:
			case holder:
				v := budgetOf(*p.s, nil, 0)
				*p.dst = &v
			case e.Type == budget.AuditDefaults || e.Type == budget.AuditTemplate:
				v := defaultsJSON(budget.Defaults{Plan: p.s.Plan, Version: p.s.Version})
				*p.dst = &v
			default:
				v := adminSettings(*p.s)
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
	// Forecast is the user's forecast, as in GET /status.
	Forecast *forecastJSON `json:"forecast,omitempty"`
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

// capJSON is a model cap: its pattern and limit, and with its holder's
// status its figures.
type capJSON struct {
	Pattern string `json:"pattern"`
	Limit   string `json:"limit_usd"`
	*spendJSON
}

// budgetJSON is a team's or an org's budget as admins see it: its
// settings, and its figures where it is read with its status (GET
// /admin/budgets, GET and PUT /admin/teams/{team_id} and
// /admin/orgs/{org_id}); an audit entry's before and after have the
// settings alone.
type budgetJSON struct {
	Scope string `json:"scope"`
	ID    string `json:"id"`
	Limit string `json:"limit_usd"`
	*spendJSON
	Enforce            bool      `json:"enforce_budget"`
	Period             string    `json:"budget_period"`
	CustomDays         int       `json:"custom_period_days,omitzero"`
	CustomAnchor       time.Time `json:"custom_period_anchor,omitzero"`
	Timezone           string    `json:"timezone"`
	Yellow             string    `json:"alert_threshold_yellow"`
	Orange             string    `json:"alert_threshold_orange"`
	Red                string    `json:"alert_threshold_red"`
	CurrentPeriodStart time.Time `json:"current_period_start,omitzero"`
	CurrentPeriodEnd   time.Time `json:"current_period_end,omitzero"`
	LastResetAt        time.Time `json:"last_reset_at,omitzero"`
	// Org is the org a team belongs to.
	Org       string    `json:"org,omitempty"`
	ModelCaps []capJSON `json:"model_caps"`
	// Members counts the direct members: a team's users; an org's users
	// and teams. Only the views of one budget count them.
	Members    int       `json:"members,omitempty"`
	Version    int64     `json:"version"`
	AdminNotes string    `json:"admin_notes"`
	CreatedAt  time.Time `json:"created_at,omitzero"`
	UpdatedAt  time.Time `json:"updated_at,omitzero"`
}

// budgetOf renders a team's or an org's settings, with st (its status from
// Manager.BudgetStatus, caps included) when not nil.
func budgetOf(set budget.Settings, st *budget.Status, members int) budgetJSON {
	sc := set.Scope()
	tz := set.Timezone
	if tz == "" {
		tz = "UTC"
	}
	j := budgetJSON{
		Scope: string(sc.Kind), ID: sc.ID, Limit: money(set.Limit), Enforce: set.Enforce,
		Period: string(set.Period), CustomDays: set.CustomDays, CustomAnchor: utc(set.CustomAnchor), Timezone: tz,
		Yellow: money(set.Thresholds.Yellow), Orange: money(set.Thresholds.Orange), Red: money(set.Thresholds.Red),
		CurrentPeriodStart: utc(set.PeriodStart), CurrentPeriodEnd: utc(set.PeriodEnd), LastResetAt: utc(set.ResetAt),
		Org: set.Org, ModelCaps: make([]capJSON, len(set.ModelCaps)), Members: members,
		Version: set.Version, AdminNotes: set.AdminNotes, CreatedAt: utc(set.CreatedAt), UpdatedAt: utc(set.UpdatedAt),
	}
	if st != nil {
		sp := spendOf(*st)
		j.spendJSON = &sp
		// The status is the fresher of the two on the period.
		j.CurrentPeriodStart, j.CurrentPeriodEnd = utc(st.PeriodStart), utc(st.PeriodEnd)
	}
	for i, c := range set.ModelCaps {
		j.ModelCaps[i] = capJSON{Pattern: c.Pattern, Limit: money(c.Limit)}
		if st == nil {
			continue
		}
		cs := budget.Status{Limit: c.Limit, Remaining: c.Limit} // a cap added since the status was read
		for _, b := range st.Budgets {
			if b.Pattern == c.Pattern && b.Scope == sc {
				cs = b
				break
			}
		}
		sp := spendOf(cs)
		j.ModelCaps[i].Limit, j.ModelCaps[i].spendJSON = money(cs.Limit), &sp
	}
	return j
}

// budgetSummaryJSON totals every budget of one kind.
type budgetSummaryJSON struct {
	Budgets    int    `json:"budgets"`
	TotalLimit string `json:"total_limit_usd"`
	TotalSpent string `json:"total_spent_usd"`
	OverBudget int    `json:"over_budget"`
}

// budgetsJSON is GET /admin/budgets.
type budgetsJSON struct {
	Budgets    []budgetJSON      `json:"budgets"`
	NextCursor string            `json:"next_cursor,omitempty"`
	Summary    budgetSummaryJSON `json:"summary"`
}

// memberJSON is one member of a team (a user) or of an org (a user or a
// team).
type memberJSON struct {
	UserID string `json:"user_id,omitempty"`
	TeamID string `json:"team_id,omitempty"`
}

// membersJSON is GET /admin/teams/{team_id}/members and
// /admin/orgs/{org_id}/members.
type membersJSON struct {
	Members []memberJSON `json:"members"`
}

func membersOf(ms []budget.Scope) membersJSON {
	out := membersJSON{Members: make([]memberJSON, len(ms))}
	for i, m := range ms {
		if m.Kind == budget.TeamScope {
			out.Members[i].TeamID = m.ID
		} else {
			out.Members[i].UserID = m.ID
		}
	}
	return out
}

// membershipJSON is where a user belongs: the answer to the membership
// routes.
type membershipJSON struct {
	UserID  string   `json:"user_id"`
	Teams   []string `json:"teams"`
	Org     string   `json:"org"`
	Version int64    `json:"version"`
}

func membershipOf(s budget.Settings) membershipJSON {
	teams := s.Teams
	if teams == nil {
		teams = []string{}
	}
	return membershipJSON{UserID: s.UserID, Teams: teams, Org: s.Org, Version: s.Version}
}
