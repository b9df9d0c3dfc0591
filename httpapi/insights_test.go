package httpapi_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/httpapi"
	"github.com/llmbudget/budget/store/memory"
	"github.com/shopspring/decimal"
)

// withWeek records a week of pete's usage, a call a day on each of the 7
// days before the fixture's clock, and returns the fixture.
func withWeek(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	ctx := context.Background()
	// From March 14, 09:00 to the 21st: still in March's period.
	for d := 0; d < 7; d++ {
		f.clock.Advance(24 * time.Hour)
		model, provider := "gpt-4o", "openai"
		if d%2 == 1 {
			model, provider = "claude", "anthropic"
		}
		cost := decimal.New(int64(100+d), -2) // $1.00, $1.01, ...
		if _, err := f.m.Record(ctx, "pete", budget.Usage{Provider: provider, Model: model, InputTokens: 10, OutputTokens: 1, Cost: cost}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// dailyBody is GET /usage/daily as a client reads it.
type dailyBody struct {
	UserID   string    `json:"user_id"`
	Timezone string    `json:"timezone"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Total    struct {
		Cost     string `json:"cost_usd"`
		Requests int64  `json:"requests"`
	} `json:"total"`
	Days []struct {
		Date  string `json:"date"`
		Start string `json:"start"`
		End   string `json:"end"`
		Total struct {
			Cost     string `json:"cost_usd"`
			Requests int64  `json:"requests"`
		} `json:"total"`
		ByModel []struct {
			Provider string `json:"provider"`
			Model    string `json:"model"`
			Cost     string `json:"cost_usd"`
		} `json:"by_model"`
	} `json:"days"`
}

func TestDaily(t *testing.T) {
	f := withWeek(t)
	for _, q := range []req{
		{method: "GET", path: "/usage/daily", token: "tok-pete"},
		{method: "GET", path: "/admin/users/pete/usage/daily", token: "tok-root"},
	} {
		r := f.do(q)
		var d dailyBody
		if err := json.Unmarshal(r.body, &d); err != nil || r.status != 200 {
			t.Fatalf("%s: %d %s", q.path, r.status, r.body)
		}
		// The fixture's day (3 calls) and 7 more days.
		if d.UserID != "pete" || d.Timezone != "UTC" || len(d.Days) != 8 {
			t.Fatalf("%s: %s", q.path, r.body)
		}
		sum := decimal.Zero
		for i, day := range d.Days {
			c := decimal.RequireFromString(day.Total.Cost)
			sum = sum.Add(c)
			models := decimal.Zero
			for _, m := range day.ByModel {
				if m.Provider == "" || m.Model == "" {
					t.Errorf("day %s: a line without provider or model: %+v", day.Date, m)
				}
				models = models.Add(decimal.RequireFromString(m.Cost))
			}
			if !models.Equal(c) {
				t.Errorf("day %s: models sum to %s, the day is %s", day.Date, models, c)
			}
			if want := apiStart.AddDate(0, 0, i).Format(time.DateOnly); day.Date != want {
				t.Errorf("day %d is %s, want %s", i, day.Date, want)
			}
		}
		if !sum.Equal(decimal.RequireFromString(d.Total.Cost)) {
			t.Errorf("days sum to %s, total %s", sum, d.Total.Cost)
		}
		// Over the current period, the days sum to the status's spend.
		st := f.do(req{method: "GET", path: "/status", token: "tok-pete"}).json(t)
		if !sum.Equal(decimal.RequireFromString(st["spent_usd"].(string))) {
			t.Errorf("days sum to %s, the status has spent %s", sum, st["spent_usd"])
		}
		if d.Days[1].Total.Cost != "1" || d.Days[1].ByModel[0].Model != "gpt-4o" {
			t.Errorf("the 15th: %+v", d.Days[1])
		}
	}
	// A range: the 16th and 17th only.
	r := f.do(req{method: "GET", path: "/usage/daily?from=2025-03-16T00:00:00Z&to=2025-03-18T00:00:00Z", token: "tok-pete"})
	var d dailyBody
	if err := json.Unmarshal(r.body, &d); err != nil || len(d.Days) != 2 || d.Total.Cost != "2.03" {
		t.Errorf("range: %s", r.body)
	}
}

func TestDailyTimezone(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tz := "America/New_York"
	if _, err := f.m.UpdateSettings(ctx, rootP, "pete", budget.SettingsUpdate{Timezone: &tz}); err != nil {
		t.Fatal(err)
	}
	r := f.do(req{method: "GET", path: "/usage/daily", token: "tok-pete"})
	var d dailyBody
	if err := json.Unmarshal(r.body, &d); err != nil || d.Timezone != tz || len(d.Days) != 1 {
		t.Fatalf("%s", r.body)
	}
	// March 14, 09:00 UTC is 05:00 in New York (EDT from March 9): the
	// day starts at 04:00 UTC.
	if d.Days[0].Date != "2025-03-14" || d.Days[0].End != "2025-03-15T04:00:00Z" {
		t.Errorf("%+v", d.Days[0])
	}
}

func TestStatusForecast(t *testing.T) {
	f := withWeek(t)
	r := f.do(req{method: "GET", path: "/status", token: "tok-pete"})
	st := r.json(t)
	fc, ok := st["forecast"].(map[string]any)
	if !ok {
		t.Fatalf("no forecast: %s", r.body)
	}
	for _, k := range []string{"method", "pace_days", "pace_from", "pace_to", "pace_spent_usd", "spend_per_day_usd", "projected_spent_usd", "limit_reached_at", "projected_over_limit"} {
		if _, ok := fc[k]; !ok {
			t.Errorf("forecast without %s: %v", k, fc)
		}
	}
	// Each amount is an exact decimal string.
	for _, k := range []string{"pace_spent_usd", "spend_per_day_usd", "projected_spent_usd"} {
		if _, err := decimal.NewFromString(fc[k].(string)); err != nil {
			t.Errorf("%s = %v", k, fc[k])
		}
	}
	// The window starts on the quarter hour 7 days back, so it holds the
	// fixture's calls ($1.23) and the week's ($7.21), over 7 days and 78
	// seconds: a little under $1.21 a day.
	if fc["pace_spent_usd"] != "8.44" || fc["spend_per_day_usd"] != "1.205558806" || fc["method"] != "recent_pace" ||
		fc["pace_from"] != "2025-03-14T09:00:00Z" {
		t.Errorf("forecast %v", fc)
	}
	// pete's $40 is not reached by the end of March at that pace.
	if fc["limit_reached_at"] != nil || fc["projected_over_limit"] != false {
		t.Errorf("forecast %v", fc)
	}
	// At a limit of $12, it is, within the period.
	if _, err := f.m.UpdateSettings(context.Background(), rootP, "pete", budget.SettingsUpdate{Limit: ptr(budget.MustAmount("12"))}); err != nil {
		t.Fatal(err)
	}
	fc = f.do(req{method: "GET", path: "/status", token: "tok-pete"}).json(t)["forecast"].(map[string]any)
	at, err := time.Parse(time.RFC3339Nano, toString(fc["limit_reached_at"]))
	if err != nil || !at.After(apiStart) || at.Month() != time.March || fc["projected_over_limit"] != true {
		t.Errorf("forecast at $12: %v", fc)
	}
	// The admin's view of the user has it too.
	if u := f.do(req{method: "GET", path: "/admin/users/pete", token: "tok-root"}).json(t); u["forecast"] == nil {
		t.Error("GET /admin/users/pete has no forecast")
	}
}

// readCSV parses a CSV response, checking the headers of a download.
func readCSV(t *testing.T, r response, filename string) [][]string {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := r.header.Get("Content-Disposition"); cd != `attachment; filename=`+filename {
		t.Errorf("Content-Disposition %q, want the file %s", cd, filename)
	}
	checkHeaders(t, r)
	rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	if !bytes.Contains(r.body, []byte("\r\n")) {
		t.Error("lines end in LF, not CRLF")
	}
	return rows
}

func TestHistoryCSV(t *testing.T) {
	f := withWeek(t)
	for _, q := range []req{
		{method: "GET", path: "/usage/history?format=csv", token: "tok-pete"},
		{method: "GET", path: "/usage/history", token: "tok-pete", header: map[string]string{"Accept": "text/csv"}},
		{method: "GET", path: "/usage/history", token: "tok-pete", header: map[string]string{"Accept": "application/json;q=0.5, text/csv"}},
		{method: "GET", path: "/admin/users/pete/usage/history?format=csv", token: "tok-root"},
	} {
		rows := readCSV(t, f.do(q), "usage-user-pete.csv")
		if !slices.Equal(rows[0], budget.UsageColumns) {
			t.Errorf("header %v", rows[0])
		}
		if len(rows) != 11 { // the header, 3 of the fixture and 7
			t.Fatalf("%d rows", len(rows))
		}
		col := func(name string) int { return slices.Index(rows[0], name) }
		sum := decimal.Zero
		for _, row := range rows[1:] {
			if row[col("user_id")] != "pete" {
				t.Errorf("row %v", row)
			}
			sum = sum.Add(decimal.RequireFromString(row[col("cost_usd")]))
			if _, err := time.Parse(time.RFC3339Nano, row[col("at")]); err != nil {
				t.Errorf("at %q", row[col("at")])
			}
		}
		if !sum.Equal(budget.MustAmount("8.44")) { // 0.4+0.41+0.42 and 1.00..1.06
			t.Errorf("costs sum to %s", sum)
		}
		// Newest first.
		if rows[1][col("cost_usd")] != "1.06" {
			t.Errorf("first row %v", rows[1])
		}
	}
	// A range: the two calls of the 16th and 17th.
	rows := readCSV(t, f.do(req{method: "GET", path: "/usage/history?format=csv&from=2025-03-16T00:00:00Z&to=2025-03-18T00:00:00Z", token: "tok-pete"}), "usage-user-pete.csv")
	if len(rows) != 3 {
		t.Errorf("range: %v", rows)
	}
	// The JSON history takes the range too.
	h := f.do(req{method: "GET", path: "/usage/history?from=2025-03-16T00:00:00Z&to=2025-03-18T00:00:00Z", token: "tok-pete"}).json(t)
	if n := len(h["usage"].([]any)); n != 2 {
		t.Errorf("JSON range: %d records", n)
	}
	// format=json wins over Accept.
	r := f.do(req{method: "GET", path: "/usage/history?format=json", token: "tok-pete", header: map[string]string{"Accept": "text/csv"}})
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("format=json: Content-Type %q", ct)
	}
	// text/csv;q=0 is a refusal of CSV.
	r = f.do(req{method: "GET", path: "/usage/history", token: "tok-pete", header: map[string]string{"Accept": "text/csv;q=0, application/json"}})
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("q=0: Content-Type %q", ct)
	}
}

// TestHistoryCSVEscapes checks that a model name that a spreadsheet would
// run as a formula is escaped.
func TestHistoryCSVEscapes(t *testing.T) {
	f := newFixture(t)
	if _, err := f.m.Record(context.Background(), "pete", budget.Usage{Provider: "openai", Model: "=HYPERLINK(\"x\")", Cost: budget.MustAmount("0.01")}); err != nil {
		t.Fatal(err)
	}
	rows := readCSV(t, f.do(req{method: "GET", path: "/usage/history?format=csv", token: "tok-pete"}), "usage-user-pete.csv")
	if got := rows[1][slices.Index(rows[0], "model")]; got != `'=HYPERLINK("x")` {
		t.Errorf("model %q", got)
	}
}

func TestAuditCSV(t *testing.T) {
	f := newTeamFixture(t)
	rows := readCSV(t, f.do(req{method: "GET", path: "/admin/audit?format=csv", token: "tok-root"}), "audit.csv")
	if !slices.Equal(rows[0], budget.AuditColumns) {
		t.Errorf("header %v", rows[0])
	}
	all := f.do(req{method: "GET", path: "/admin/audit?limit=500", token: "tok-root"}).json(t)["entries"].([]any)
	if len(rows)-1 != len(all) {
		t.Errorf("%d CSV rows, %d entries", len(rows)-1, len(all))
	}
	// Filtered, by Accept.
	rows = readCSV(t, f.do(req{method: "GET", path: "/admin/audit?user_id=tess", token: "tok-root", header: map[string]string{"Accept": "text/csv"}}), "audit.csv")
	if len(rows) != 2 || rows[1][slices.Index(rows[0], "user_id")] != "tess" || rows[1][slices.Index(rows[0], "new_limit_usd")] != "50" {
		t.Errorf("tess's audit: %v", rows)
	}
}

// importBody is an import's answer as a client reads it, from a 200 or
// from the rows of a rejection.
type importBody struct {
	DryRun  bool                    `json:"dry_run"`
	Applied bool                    `json:"applied"`
	BulkID  string                  `json:"bulk_id"`
	Changed int                     `json:"changed"`
	Created int                     `json:"created"`
	Audit   int                     `json:"audit_entries"`
	Errors  int                     `json:"errors"`
	Rows    []httpapi.ImportRowJSON `json:"rows"`
}

func csvReq(path, body string) req {
	return req{method: "POST", path: path, token: "tok-root", body: body, contentType: "text/csv; charset=utf-8"}
}

func TestImportSettings(t *testing.T) {
	f := newFixture(t)
	file := "user_id,limit_usd,enforce_budget,admin_notes\r\n" +
		"tess,75.5,false,\"raised, again\"\r\n" +
		"newcomer,8,,\r\n"
	before := f.state()
	r := f.do(csvReq("/admin/import/settings?dry_run=true", file))
	var res importBody
	if err := json.Unmarshal(r.body, &res); err != nil || r.status != 200 {
		t.Fatalf("dry run: %d %s", r.status, r.body)
	}
	if !res.DryRun || res.Applied || res.Changed != 2 || res.Created != 1 || res.Errors != 0 || len(res.Rows) != 2 {
		t.Errorf("dry run: %s", r.body)
	}
	if row := res.Rows[0]; row.Line != 2 || row.UserID != "tess" || !row.OK || len(row.Changes) == 0 {
		t.Errorf("dry run row: %+v", row)
	}
	if !res.Rows[1].Created {
		t.Errorf("newcomer: %+v", res.Rows[1])
	}
	if d := diff(before, f.state()); d != "" {
		t.Fatalf("a dry run changed the state:\n%s", d)
	}

	r = f.do(csvReq("/admin/import/settings?reason=move", file))
	res = importBody{}
	if err := json.Unmarshal(r.body, &res); err != nil || r.status != 200 || !res.Applied || res.Changed != 2 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	if s := f.settingsOf("tess"); !s.Limit.Equal(budget.MustAmount("75.5")) || s.Enforce || s.AdminNotes != "raised, again" {
		t.Errorf("tess after the import: %+v", s)
	}
	if s := f.settingsOf("newcomer"); !s.Limit.Equal(budget.MustAmount("8")) {
		t.Errorf("newcomer after the import: %+v", s)
	}
	page, err := f.m.AuditLog(context.Background(), rootP, budget.AuditLogQuery{UserID: "tess", Limit: 1})
	if err != nil || len(page.Entries) != 1 || page.Entries[0].BulkID != res.BulkID || page.Entries[0].Reason != "move" {
		t.Errorf("tess's audit: %+v %v", page.Entries, err)
	}
}

// TestImportSettingsRoundTrip exports every user's settings and imports
// the file back: nothing changes.
func TestImportSettingsRoundTrip(t *testing.T) {
	f := newFixture(t)
	var buf bytes.Buffer
	if err := f.m.ExportSettings(context.Background(), rootP, &buf); err != nil {
		t.Fatal(err)
	}
	before := f.state()
	r := f.do(csvReq("/admin/import/settings", buf.String()))
	var res importBody
	if err := json.Unmarshal(r.body, &res); err != nil || r.status != 200 || res.Changed != 0 || res.Errors != 0 {
		t.Fatalf("round trip: %d %s", r.status, r.body)
	}
	if d := diff(before, f.state()); d != "" {
		t.Errorf("a round trip changed the state:\n%s", d)
	}
}

// TestImportSettingsMalformed sends malformed files: a dry run reports
// the rows in error; a real run is rejected with every row; neither
// changes anything.
func TestImportSettingsMalformed(t *testing.T) {
	const good = "tess,60\r\n"
	cases := []struct {
		name, file string
		line       int    // the line in error
		typ        string // of its problem
		field      string
	}{
		{"wrong column count", "user_id,limit_usd\r\n" + good + "pete,1,2\r\n", 3, httpapi.ProblemInvalidField, "row"},
		{"too few cells", "user_id,limit_usd\r\n" + good + "pete\r\n", 3, httpapi.ProblemInvalidField, "row"},
		{"bad amount", "user_id,limit_usd\r\n" + good + "pete,ten\r\n", 3, httpapi.ProblemInvalidAmount, "limit_usd"},
		{"negative amount", "user_id,limit_usd\r\n" + good + "pete,-5\r\n", 3, httpapi.ProblemInvalidAmount, "limit_usd"},
		{"ten places", "user_id,limit_usd\r\n" + good + "pete,0.0000000001\r\n", 3, httpapi.ProblemInvalidAmount, "limit_usd"},
		{"unknown column", "user_id,limit_usd,colour\r\n" + "tess,60,red\r\n", 1, httpapi.ProblemInvalidField, "colour"},
		{"stray quote", "user_id,limit_usd\r\n" + good + "pe\"te,1\r\n", 3, httpapi.ProblemInvalidField, "row"},
		{"unclosed quote", "user_id,limit_usd\r\n" + good + "\"pete,1\r\n", 3, httpapi.ProblemInvalidField, "row"},
		{"BOM in a cell", "user_id,limit_usd\r\n" + good + "\uFEFFpete,1\r\n", 3, httpapi.ProblemInvalidField, "user_id"},
		{"user twice", "user_id,limit_usd\r\n" + good + "tess,70\r\n", 3, httpapi.ProblemInvalidField, "user_id"},
		{"bad boolean", "user_id,enforce_budget\r\n" + "tess,yes please\r\n", 2, httpapi.ProblemInvalidField, "enforce_budget"},
		{"bad period", "user_id,budget_period\r\n" + "tess,fortnightly\r\n", 2, httpapi.ProblemInvalidField, "budget_period"},
		{"no user_id column", "limit_usd\r\n60\r\n", 1, httpapi.ProblemInvalidField, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			before := f.state()
			// The dry run: 200, with the bad row.
			r := f.do(csvReq("/admin/import/settings?dry_run=true", c.file))
			var res importBody
			if err := json.Unmarshal(r.body, &res); err != nil || r.status != 200 {
				t.Fatalf("dry run: %d %s", r.status, r.body)
			}
			if res.Applied || res.Errors == 0 || res.Changed != 0 {
				t.Errorf("dry run: %s", r.body)
			}
			checkBadRow(t, res.Rows, c.line, c.typ, c.field)
			// The real run: rejected, with every row.
			r = f.do(csvReq("/admin/import/settings", c.file))
			if r.status != 400 {
				t.Fatalf("import: %d %s", r.status, r.body)
			}
			p := r.problem(t)
			if p.Type != httpapi.ProblemImportRejected || p.Field != "body" || len(p.Rows) == 0 {
				t.Errorf("problem %+v", p)
			}
			checkBadRow(t, p.Rows, c.line, c.typ, c.field)
			if d := diff(before, f.state()); d != "" {
				t.Errorf("a rejected import changed the state:\n%s", d)
			}
		})
	}
}

// checkBadRow finds the row at line among rows and checks its problem;
// an empty field matches any.
func checkBadRow(t *testing.T, rows []httpapi.ImportRowJSON, line int, typ, field string) {
	t.Helper()
	for _, row := range rows {
		if row.Line != line {
			continue
		}
		if row.OK || row.Problem == nil {
			t.Fatalf("line %d: %+v", line, row)
		}
		if row.Problem.Type != typ || (field != "" && row.Problem.Field != field) || row.Problem.Detail == "" {
			t.Errorf("line %d: problem %+v, want type %s field %q", line, *row.Problem, typ, field)
		}
		return
	}
	t.Errorf("no row at line %d in %+v", line, rows)
}

func TestImportSeed(t *testing.T) {
	f := newFixture(t)
	settings := "id,user_id,monthly_limit_usd,custom_limit_usd,budget_period,enforce_budget,budget_visible_to_user," +
		"user_can_modify_limit,user_can_reset_budget,alert_threshold_yellow,alert_threshold_orange,alert_threshold_red," +
		"admin_notes,current_period_start,current_period_end,created_at,updated_at\n" +
		"1,tess,29.999999999999996,,monthly,1,1,0,0,75.0,90.0,100.0,from the seed,2025-03-01 00:00:00,2025-04-01 00:00:00,2025-01-01 00:00:00,2025-02-01 00:00:00\n" +
		"2,seedling,10.0,,weekly,0,1,1,1,,,,,,,,\n"
	resets := "id,user_id,reset_type,reset_by,previous_limit,new_limit,previous_spent,reset_at,reason\n" +
		"1,tess,manual,root,30.0,30.0,12.34,2025-02-15 10:30:00,overrun\n" +
		"2,seedling,automatic,,10.0,10.0,0.5,2025-02-10 00:00:00,\n"
	body := multipartBody("seed", "user_budget_settings", settings, "budget_reset_log", resets)
	seedReq := func(path string) req {
		return req{method: "POST", path: path, token: "tok-root", body: body, contentType: "multipart/form-data; boundary=seed"}
	}
	before := f.state()
	r := f.do(seedReq("/admin/import/seed?dry_run=true"))
	var res importBody
	if err := json.Unmarshal(r.body, &res); err != nil || r.status != 200 || res.Errors != 0 || res.Audit != 2 || res.Created != 1 {
		t.Fatalf("dry run: %d %s", r.status, r.body)
	}
	if row := res.Rows[0]; row.File != "user_budget_settings" || row.UserID != "tess" || len(row.Notes) == 0 {
		t.Errorf("the rounded limit is not noted: %+v", row)
	}
	if res.Rows[2].File != "budget_reset_log" {
		t.Errorf("rows %+v", res.Rows)
	}
	if d := diff(before, f.state()); d != "" {
		t.Fatalf("a dry run changed the state:\n%s", d)
	}
	r = f.do(seedReq("/admin/import/seed"))
	res = importBody{}
	if err := json.Unmarshal(r.body, &res); err != nil || r.status != 200 || !res.Applied {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	if s := f.settingsOf("tess"); !s.Limit.Equal(budget.MustAmount("30")) || s.AdminNotes != "from the seed" {
		t.Errorf("tess: %+v", s)
	}
	page, err := f.m.AuditLog(context.Background(), rootP, budget.AuditLogQuery{UserID: "tess", Type: budget.AuditManualReset, Limit: 5})
	if err != nil || len(page.Entries) != 1 || !page.Entries[0].At.Equal(time.Date(2025, 2, 15, 10, 30, 0, 0, time.UTC)) ||
		!page.Entries[0].PreviousSpent.Equal(budget.MustAmount("12.34")) {
		t.Errorf("tess's imported reset: %+v %v", page.Entries, err)
	}

	// A reset of a user with no settings anywhere: rejected, with the row.
	f = newFixture(t)
	before = f.state()
	r = f.do(req{method: "POST", path: "/admin/import/seed", token: "tok-root", contentType: "multipart/form-data; boundary=b",
		body: multipartBody("b", "budget_reset_log", "user_id,reset_type,previous_limit,new_limit,previous_spent,reset_at\nghost,manual,1,1,1,2025-01-01 00:00:00\n")})
	p := r.problem(t)
	if p.Type != httpapi.ProblemImportRejected || p.Field != "budget_reset_log" {
		t.Errorf("problem %+v", p)
	}
	checkBadRow(t, p.Rows, 2, httpapi.ProblemInvalidField, "user_id")
	if d := diff(before, f.state()); d != "" {
		t.Errorf("a rejected import changed the state:\n%s", d)
	}
}

// TestTeamDailyAndCSV: a team's spend per day and usage CSV name the team
// and, in the CSV, the member who spent.
func TestTeamDailyAndCSV(t *testing.T) {
	f := newTeamFixture(t)
	r := f.do(req{method: "GET", path: "/admin/teams/research/usage/daily", token: "tok-root"})
	m := r.json(t)
	if m["scope"] != "team" || m["id"] != "research" || m["total"].(map[string]any)["cost_usd"] != "0.5" {
		t.Errorf("research's daily: %s", r.body)
	}
	rows := readCSV(t, f.do(req{method: "GET", path: "/admin/teams/research/usage/history?format=csv", token: "tok-root"}), "usage-team-research.csv")
	if len(rows) != 3 || rows[1][slices.Index(rows[0], "user_id")] != "tina" {
		t.Errorf("research's CSV: %q", rows)
	}
}

// failingHistory is a store whose History fails after its first page.
type failingHistory struct {
	budget.Store
}

func (s failingHistory) History(ctx context.Context, q budget.HistoryQuery) (budget.HistoryPage, error) {
	if q.Cursor != "" {
		return budget.HistoryPage{}, errors.New("disk on fire")
	}
	return s.Store.History(ctx, q)
}

// TestCSVFailsMidway: a store failing after the first page of an export
// breaks the transfer, so the client never takes a truncated file for a
// whole one; failing before any byte went out is a problem document.
func TestCSVFailsMidway(t *testing.T) {
	f := newFixtureOn(t, failingHistory{memory.New()}, httpapi.Options{Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	for i := 0; i < budget.MaxPageSize+1; i++ {
		if _, err := f.m.Record(ctx, "pete", budget.Usage{Provider: "openai", Model: "gpt-4o", Cost: budget.MustAmount("0.001")}); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	rq, _ := http.NewRequest("GET", srv.URL+"/usage/history?format=csv", nil)
	rq.Header.Set("Authorization", "Bearer tok-pete")
	resp, err := srv.Client().Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Errorf("a failed export read as a whole file of %d bytes", len(body))
	}
}
