// Package httpapi serves the budget endpoints over net/http: who is calling,
// six for a user's own budget and three for admins, plus the audit log, one
// user's details and usage, the defaults for new users, the switch that gives
// regular users their budgets, bulk changes, templates, and the budgets of
// teams and orgs with their model caps and members. Mount the handler
// anywhere and bring your own authentication:
//
//	h, err := httpapi.New(m, httpapi.Options{Authenticate: auth})
//	mux.Handle("/api/v1/budget/", http.StripPrefix("/api/v1/budget", h))
//
// The handler routes on its own http.ServeMux with Go 1.22 method-and-path
// patterns; it registers nothing globally and needs no router.
//
// # Endpoints
//
// Paths are relative to the mount point. The user endpoints always act on
// the authenticated principal's own budget, and refuse with 403 (type
// ProblemBudgetHidden, "hidden": true) when an administrator has hidden it.
// The admin endpoints require Principal.Admin.
//
//	GET    /me                       {"user_id": ..., "admin": ...}; any authenticated caller,
//	                                 hidden budget or not
//	GET    /status                   the user's status, with "budgets": every budget that applies
//	GET    /settings                 the user's settings (ETag)
//	PUT    /settings                 partial update, checked by budget.CanUpdate (If-Match, ETag)
//	POST   /reset                    {"reason": "...", "limit_usd": ...} (both optional); needs
//	                                 "can reset", and "can modify" too for a new limit
//	GET    /usage/breakdown          by provider and model; ?from=&to= (RFC 3339, both or neither:
//	                                 the current period)
//	GET    /usage/history            newest first; ?limit= (1–500, default 50) &cursor= &from=&to=
//	                                 (both or neither: unbounded); ?format=csv or Accept: text/csv
//	                                 for every record in the range as a CSV download
//	GET    /usage/daily              spend per day of the user's time zone, by provider and model;
//	                                 ?from=&to= (both or neither: the current period)
//	PUT    /admin/configure          {"user_id": ..., settings..., "admin_notes": ...};
//	                                 creates the user's settings if absent (If-Match, ETag)
//	GET    /admin/list               ?q= (user ID contains, any case) &level= &limit= &cursor=
//	POST   /admin/reset/{user_id}    {"reason": "...", "limit_usd": ...}; 404 for a user without
//	                                 settings
//	GET    /admin/audit              ?user_id= (empty: everything) &scope= ("team:research";
//	                                 "user:alice" is user_id=alice) &type= &limit= &cursor=;
//	                                 ?format=csv or Accept: text/csv for a CSV download
//	GET    /admin/users/{user_id}    settings, status and the 20 newest usage records (ETag)
//	GET    /admin/users/{user_id}/usage/breakdown
//	GET    /admin/users/{user_id}/usage/history
//	GET    /admin/users/{user_id}/usage/daily
//	                                 as the user's own routes, for any user with settings (404
//	                                 otherwise), hidden or not
//	GET    /admin/defaults           what new regular users start with (ETag)
//	PUT    /admin/defaults           partial update of the same (If-Match, ETag)
//	GET    /admin/access             whether regular users have budgets: {"enabled", "users",
//	                                 "visible_users"}
//	PUT    /admin/access             {"enabled": false}: budgets off (or on) for every regular user
//	POST   /admin/bulk               one change to many users, with a result per user
//	POST   /admin/import/settings    a CSV file of settings (text/csv), one row per user;
//	                                 ?dry_run=true &reason= (see Imports)
//	POST   /admin/import/seed        the seed system's two tables (multipart/form-data, parts
//	                                 user_budget_settings and budget_reset_log); ?dry_run= &reason=
//	GET    /admin/templates          every template, by name
//	GET    /admin/templates/{name}   one template (ETag)
//	PUT    /admin/templates/{name}   partial update, creating it from the defaults if absent
//	                                 (If-Match, ETag)
//	DELETE /admin/templates/{name}   204 (If-Match)
//	GET    /admin/budgets            ?kind= (team or org, required) &q= &level= &limit= &cursor=
//	GET    /admin/teams/{team_id}    one team's budget: settings, status, caps, members (ETag)
//	PUT    /admin/teams/{team_id}    partial update, creating the team (201) from the defaults if
//	                                 absent (If-Match, ETag)
//	GET    /admin/teams/{team_id}/members
//	POST   /admin/teams/{team_id}/members
//	                                 {"user_id": "bob"}: bob joins the team; answers his membership
//	DELETE /admin/teams/{team_id}/members/{user_id}
//	                                 204; 404 for a user not in the team
//	PUT    /admin/teams/{team_id}/org
//	                                 {"org": "acme"}, or "" to take the team out of its org
//	GET    /admin/teams/{team_id}/usage/breakdown
//	GET    /admin/teams/{team_id}/usage/history
//	GET    /admin/teams/{team_id}/usage/daily
//	                                 as a user's, each record naming the member who spent
//	GET    /admin/orgs/{org_id}, PUT /admin/orgs/{org_id}, GET /admin/orgs/{org_id}/members,
//	GET    /admin/orgs/{org_id}/usage/breakdown, GET /admin/orgs/{org_id}/usage/history,
//	GET    /admin/orgs/{org_id}/usage/daily
//	                                 the same for an org (its members: users, then teams)
//	PUT    /admin/users/{user_id}/membership
//	                                 {"teams": [...], "org": "..."}: the whole membership of a user
//	                                 with settings (If-Match: the user's settings ETag)
//
// A user ID or template name in a path is one segment: escape it
// (url.PathEscape), and escape dots too when the ID is "." or "..", or
// holds a slash next to dots: "/admin/users/%2E%2E" names the user "..",
// and "/admin/users/team%2F..%2Froot" the user "team/../root". A path that
// is not canonical before it is unescaped, such as "/admin/users/a/../b"
// or "//status", is refused with 404 rather than redirected.
//
// Query parameters an endpoint does not take, or given twice, are refused
// with 400, as are unknown JSON members. An empty filter or cursor (q=,
// level=, user_id=, type=, cursor=) is the same as none; an empty limit is
// refused. A search (q) with control characters is refused with 400.
//
// A body is optional only for the resets: an empty one (Content-Length: 0,
// or chunked with no data) reads as {} and needs no Content-Type.
//
// # JSON
//
// Members are snake_case. Money ("limit_usd": "12.5") and percentages
// (thresholds, "percent_used") go out as JSON strings holding exact
// decimals, and come in as a string or a number; either way the text is
// validated by budget.ParseAmount and never passes through a float, so
// "0.1" is exactly a tenth and "1e400", "-1" or ten decimal places are
// refused with 400. Times are RFC 3339, in UTC on the way out.
//
// Settings (GET/PUT /settings; PUT /admin/configure and the admin shapes
// below add "admin_notes"):
//
//	{"user_id": "alice", "limit_usd": "30", "budget_period": "monthly",
//	 "custom_period_days": 14, "custom_period_anchor": "...",   (custom periods only)
//	 "timezone": "Europe/Paris", "enforce_budget": true,
//	 "budget_visible_to_user": true, "user_can_modify_limit": false, "user_can_reset_budget": false,
//	 "alert_threshold_yellow": "75", "alert_threshold_orange": "90", "alert_threshold_red": "100",
//	 "current_period_start": "...", "current_period_end": "...", "last_reset_at": "...",
//	 "version": 3, "created_at": "...", "updated_at": "..."}
//
// A PUT takes any of limit_usd, budget_period, custom_period_days,
// custom_period_anchor, timezone, enforce_budget, budget_visible_to_user,
// user_can_modify_limit, user_can_reset_budget and the three thresholds
// (null is refused: leave a member out to keep it). PUT /admin/configure
// also takes user_id (required) and admin_notes. PUT /admin/defaults takes
// the same members as PUT /settings, and GET and PUT /admin/defaults answer
// with the settings shape minus user_id, the period bounds and admin_notes.
// A custom period's anchor is an instant in the years
// budget.MinAnchorYear to budget.MaxAnchorYear (1900 to 2200, in UTC), the
// core's rule; the from and to of a breakdown are instants from 1970 to
// 2261, what a store holds as nanoseconds.
//
// Status (GET /status):
//
//	{"user_id": "alice", "limit_usd": "30", "spent_usd": "12.5", "reserved_usd": "0.5",
//	 "remaining_usd": "17", "percent_used": "41.66", "alert_level": "green",
//	 "enforce_budget": true, "budget_period": "monthly", "timezone": "UTC",
//	 "current_period_start": "...", "current_period_end": "..."}
//
// Each budget that applies to the user's calls is a line of "budgets", the
// binding one (the enforced budget with the least room left) first and
// marked; the user's own line has the status's figures. A user sees a
// team's or an org's figures only here:
//
//	{"scope": "team", "id": "research", "pattern": "gpt-4o*" (a model cap's only),
//	 "limit_usd", "spent_usd", "reserved_usd", "remaining_usd", "percent_used",
//	 "alert_level", "enforce_budget", "budget_period", "current_period_start",
//	 "current_period_end", "binding": true (the binding one only)}
//
// Each status also has "forecast": the spend at the end of the period at
// the recent pace (budget.Forecast; GET /admin/users/{user_id} has it too):
//
//	{"method": "recent_pace", "pace_days": 7, "pace_from": "...", "pace_to": "...",
//	 "pace_spent_usd": "8.44", "spend_per_day_usd": "1.2", "projected_spent_usd": "21.3",
//	 "limit_reached_at": "..." (null: not before the period ends), "projected_over_limit": false}
//
// The pace is the settled spend (holds never count) from pace_from to
// pace_to, per day over a window of at least one day.
//
// Spend per day (GET /usage/daily): {"user_id", "timezone", "from", "to",
// "total", "days"}, each day {"date": "2025-03-14" (local), "start", "end"
// (its bounds within the range, in UTC), "total", "by_model"} with the
// lines of a breakdown; days without usage are left out. The days sum
// exactly to "total", and over the current period to the status's spend.
//
// One user for admins (each of GET /admin/list's "users", and GET
// /admin/users/{user_id}, which adds "recent_usage"): the settings with
// admin_notes, "teams" and "org" (when set), plus spent_usd, reserved_usd,
// remaining_usd, percent_used and alert_level. GET /admin/list also answers "next_cursor" and
// "summary": {"users", "total_limit_usd", "total_spent_usd",
// "users_over_budget"}, over every user whatever the filters.
//
// A team's or an org's budget (GET /admin/budgets' "budgets", and the
// other team and org routes):
//
//	{"scope": "team", "id": "research", "limit_usd": "500", "spent_usd", "reserved_usd",
//	 "remaining_usd", "percent_used", "alert_level", "enforce_budget", "budget_period",
//	 "custom_period_days", "custom_period_anchor" (custom periods only), "timezone",
//	 "alert_threshold_yellow", "alert_threshold_orange", "alert_threshold_red",
//	 "current_period_start", "current_period_end", "org": "acme" (a team's, when set),
//	 "model_caps": [{"pattern": "gpt-4o*", "limit_usd": "1", "spent_usd", "reserved_usd",
//	   "remaining_usd", "percent_used", "alert_level"}],
//	 "members": 3 (one budget's views only, when any), "version", "admin_notes",
//	 "created_at", "updated_at"}
//
// A PUT takes the members of PUT /admin/defaults but the users' permissions
// (refused with 400), plus admin_notes and "model_caps": up to 16
// {"pattern", "limit_usd"}, both required, replacing the caps ([] removes
// them). A pattern matches the whole model name, "*" any run, "?" one
// character; problems name the member at fault, "model_caps[0].pattern".
// GET /admin/budgets also answers "next_cursor" and "summary":
// {"budgets", "total_limit_usd", "total_spent_usd", "over_budget"}.
// Members: {"members": [{"user_id": "bob"}, {"team_id": "research"}]}; a
// membership: {"user_id", "teams", "org", "version"}. A user must have
// settings to join a team (404 otherwise), and belongs to at most 8 teams.
//
// Templates (GET /admin/templates' "templates", and the other template
// routes): the defaults' shape with "name" first. A template is a plan an
// admin applies to users with POST /admin/bulk; changing or deleting it
// later does not change the users it was applied to.
//
// Usage records (GET /usage/history's "usage", with "next_cursor"):
// {"id", "reservation_id", "provider", "model", "input_tokens",
// "output_tokens", "cost_usd", "at"}, and "user_id" in a team's or an
// org's. Breakdowns: {"user_id", "from", "to", "total", "by_provider",
// "by_model"} ("scope" and "id" instead of "user_id" for a team or org),
// each line {"provider", "model", "cost_usd", "requests", "input_tokens",
// "output_tokens"}, highest cost first.
//
// Audit entries (GET /admin/audit's "entries", with "next_cursor"):
// {"id", "user_id" (or "scope" and "budget_id" for a team's or an org's,
// whose "before" and "after" have a team's shape), "type" (settings,
// manual, automatic, defaults,
// template), "actor", "actor_admin", "reason", "previous_limit_usd",
// "new_limit_usd", "previous_spent_usd", "period_start", "period_end",
// "before", "after", "changes", "bulk_id", "template", "at"}. "changes"
// lists what the entry changed, field by field, with the JSON names above
// and values as text: [{"field": "limit_usd", "before": "30", "after":
// "45"}] (a reset lists the limit when it changed it). "changes",
// "bulk_id" (shared by the entries of one bulk change or access switch)
// and "template" (the template saved, deleted or applied) are left out
// when empty. A reset answers {"reset": its audit entry, "status": the new
// status}.
//
// # CSV
//
// The CSV downloads (history and audit) are RFC 4180 with a header row
// (budget.UsageColumns, budget.AuditColumns), money as exact decimals,
// times in RFC 3339, text cells a spreadsheet would run as a formula
// escaped with a leading apostrophe; Content-Type text/csv;
// charset=utf-8, Content-Disposition attachment with a filename. They are
// streamed: a failure once the download has begun aborts the response
// rather than end a partial file cleanly. limit and cursor are refused
// with CSV, which has every row.
//
// # Imports
//
// POST /admin/import/settings takes a CSV file whose header names user_id
// and any of the other columns of budget.SettingsColumns (the settings
// members above); POST /admin/import/seed the seed system's tables (see
// budget.Manager.ImportSeed), at most MaxImportBytes. Every row is checked
// first; then all rows are applied in one atomic step of the store, or
// none. Both answer
//
//	{"dry_run", "applied", "bulk_id", "changed", "created", "audit_entries", "errors",
//	 "rows": [{"file" (seed only), "line", "user_id", "ok", "created", "changes", "notes",
//	           "problem" (a row in error: its "field" is the column)}]}
//
// with 200 for a dry run (?dry_run=true: nothing changes, rows in error
// or not) and for an import applied. A real run with any row in error
// imports nothing and is refused with 400 ProblemImportRejected, whose
// "rows" are the same report.
//
// # Access and bulk changes
//
// PUT /admin/access turns budgets off (or on) for every regular user at
// once, existing and new (the defaults too): off hides each budget from
// its user, and changes nothing else, so a hidden budget is still enforced.
// Admins (budget.Options.IsAdmin) are skipped. It answers the state after,
// {"enabled", "users", "visible_users"}, plus "changed" (how many users it
// changed), "bulk_id" (shared by its audit entries, one per user and one
// for the defaults) and "failed" (per-user results, below, of users it
// could not change).
//
// POST /admin/bulk selects users with exactly one of "user_ids" (1 to 1000
// distinct IDs) or "match" ({"q": ..., "level": ...}, as GET /admin/list's
// filters; {} is every user with settings, at most 1000), and changes them
// with exactly one of "changes" (any members of PUT /admin/defaults) or
// "template" (a template's name):
//
//	{"user_ids": ["ann", "bob"], "changes": {"limit_usd": "45"}}
//	{"match": {"q": "team-", "level": "red"}, "template": "intern"}
//
// It answers 200 with {"bulk_id", "changed", "results"}, one result per
// selected user, in the order given (user ID order for a match): {"user_id",
// "ok": true, "changed", "settings" (as admins see them)} or {"user_id",
// "ok": false, "problem"}, where the problem is the one a change of that
// user alone would have got (404 for a user without settings: a bulk
// change creates none). A user who fails is left as they were; the others
// still change. A request wrong as a whole (both selectors or neither, a
// repeated or invalid ID, more than 1000 users, invalid changes) is
// refused with 400 and changes nobody; an unknown template is 404.
// Problems about nested members name them by their path:
// "changes.limit_usd", "match.level".
//
// Cursors are opaque: pass back the "next_cursor" of the previous page; it
// is absent on the last page.
//
// # Concurrency control
//
// Settings, defaults, template, team and org responses carry an ETag, the
// quoted version ("7"); so do the membership routes (the user's).
// Send it back as If-Match on a PUT and the update is applied only if
// nothing changed in between (the check is atomic in the Manager); a stale
// tag gets 412, a malformed If-Match 400. "If-Match: *" or no If-Match
// updates unconditionally. DELETE /admin/templates/{name} takes If-Match
// the same way. A PUT that creates a user, team or org matches "1". POST
// and DELETE on a team's members change that one team on the user's
// settings as stored when the change commits, so concurrent changes of
// one user's membership all count.
//
// # Errors
//
// Every error is an RFC 9457 problem document (application/problem+json)
// with a stable "type" URI, one per kind of error (the Problem* constants,
// all under ProblemBase), and a "field" member naming the JSON member, query
// parameter, path parameter, header or "body" at fault. Status codes: 400
// invalid input, 401 no or bad credentials, 403 not allowed (or hidden),
// 404 no such endpoint, user, team, org or template, 405 wrong method (with
// Allow), 412 stale If-Match, 413 body over MaxBodyBytes, 415 a body that
// is not JSON, 429 a spend a budget refused (ProblemBudgetExceeded: "scope",
// "budget_id" and a cap's "pattern" name the binding budget), 500 a
// failure whose details go to Options.Logger and never to the client.
//
// Every response carries Cache-Control: no-store and X-Content-Type-Options:
// nosniff; success bodies are application/json; charset=utf-8, but for
// the CSV downloads.
package httpapi
