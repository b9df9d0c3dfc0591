package budget_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/memory"
)

func ExampleManager_Daily() {
	ctx := context.Background()
	ny, _ := time.LoadLocation("America/New_York")
	now := time.Date(2025, time.October, 31, 20, 0, 0, 0, ny)
	m := newExampleManager(&now)
	root := budget.Principal{UserID: "root", Admin: true}
	tz := "America/New_York"
	if _, err := m.UpdateSettings(ctx, root, "alice", budget.SettingsUpdate{Timezone: &tz}); err != nil {
		panic(err)
	}
	// Calls on either side of midnight, and on 2 November, the day the
	// clocks fall back (25 hours long).
	for _, c := range []struct {
		at    time.Time
		model string
		cost  string
	}{
		{time.Date(2025, 10, 31, 23, 30, 0, 0, ny), "gpt-4o", "1.25"},
		{time.Date(2025, 11, 1, 0, 30, 0, 0, ny), "gpt-4o", "2"},
		{time.Date(2025, 11, 1, 9, 0, 0, 0, ny), "claude", "0.5"},
		{time.Date(2025, 11, 2, 23, 0, 0, 0, ny), "claude", "3"},
	} {
		now = c.at
		if _, err := m.Record(ctx, "alice", budget.Usage{Provider: "p", Model: c.model, Cost: budget.MustAmount(c.cost)}); err != nil {
			panic(err)
		}
	}
	d, err := m.Daily(ctx, budget.Principal{UserID: "alice"}, budget.DailyQuery{
		UserID: "alice",
		From:   time.Date(2025, 10, 30, 0, 0, 0, 0, ny), To: time.Date(2025, 11, 3, 0, 0, 0, 0, ny),
	})
	if err != nil {
		panic(err)
	}
	for _, day := range d.Days {
		fmt.Printf("%s (%v): %s", day.Date, day.End.Sub(day.Start), day.Total.Cost)
		for _, it := range day.ByModel {
			fmt.Printf(" %s=%s", it.Model, it.Cost)
		}
		fmt.Println()
	}
	fmt.Println("total:", d.Total.Cost)
	// Output:
	// 2025-10-31 (24h0m0s): 1.25 gpt-4o=1.25
	// 2025-11-01 (24h0m0s): 2.5 gpt-4o=2 claude=0.5
	// 2025-11-02 (25h0m0s): 3 claude=3
	// total: 6.75
}

func ExampleForecast() {
	ctx := context.Background()
	now := time.Date(2025, time.March, 1, 0, 0, 0, 0, time.UTC)
	m := budget.NewManager(memory.New(), budget.Options{
		Now:               func() time.Time { return now },
		AlertOnProjection: true,
		OnAlert: func(a budget.Alert) {
			if a.Kind == budget.AlertProjection {
				fmt.Println("alert: at this pace the limit is reached", a.Status.Forecast.LimitAt.Format(time.DateOnly))
			}
		},
	})
	// Two dollars a day on a $30 monthly budget.
	for day := 0; day < 10; day++ {
		now = time.Date(2025, time.March, 1+day, 11, 0, 0, 0, time.UTC)
		if _, err := m.Record(ctx, "alice", budget.Usage{Cost: budget.MustAmount("2")}); err != nil {
			panic(err)
		}
	}
	now = time.Date(2025, time.March, 10, 12, 0, 0, 0, time.UTC)
	st, err := m.Status(ctx, "alice")
	if err != nil {
		panic(err)
	}
	f := st.Forecast
	fmt.Printf("spent %s; pace %s a day (%s over %s to %s)\n", st.Spent, f.PerDay, f.PaceSpend,
		f.PaceFrom.Format(time.DateTime), f.PaceTo.Format(time.DateTime))
	fmt.Printf("projected %s by %s; over the limit: %v\n", f.Projected, st.PeriodEnd.Format(time.DateOnly), f.Exceeds)
	// Output:
	// alert: at this pace the limit is reached 2025-03-15
	// spent 20; pace 2 a day (14 over 2025-03-03 12:00:00 to 2025-03-10 12:00:00)
	// projected 63 by 2025-04-01; over the limit: true
}

func ExampleManager_ExportUsage() {
	ctx := context.Background()
	now := exampleStart
	m := newExampleManager(&now)
	for _, u := range []budget.Usage{
		{ID: "call-1", Provider: "openai", Model: "gpt-4o", InputTokens: 1200, OutputTokens: 350, Cost: budget.MustAmount("0.0125")},
		{ID: "=HYPERLINK(\"http://evil\")", Provider: "anthropic", Model: "claude", Cost: budget.MustAmount("0.000000001")},
	} {
		now = now.Add(time.Minute)
		if _, err := m.Record(ctx, "alice", u); err != nil {
			panic(err)
		}
	}
	// Streamed row by row, newest first; the formula is escaped.
	var b strings.Builder
	if err := m.ExportUsage(ctx, budget.Principal{UserID: "alice"}, &b, budget.UsageQuery{UserID: "alice"}); err != nil {
		panic(err)
	}
	fmt.Print(strings.ReplaceAll(b.String(), "\r\n", "\n")) // RFC 4180's CRLF, shown as LF
	// Output:
	// id,user_id,reservation_id,provider,model,input_tokens,output_tokens,cost_usd,at
	// "'=HYPERLINK(""http://evil"")",alice,,anthropic,claude,0,0,0.000000001,2025-03-14T09:02:00Z
	// call-1,alice,,openai,gpt-4o,1200,350,0.0125,2025-03-14T09:01:00Z
}

func ExampleManager_ImportSettings() {
	ctx := context.Background()
	now := exampleStart
	m := newExampleManager(&now)
	root := budget.Principal{UserID: "root", Admin: true}
	file := "user_id,limit_usd,timezone,enforce_budget\n" +
		"alice,50,Europe/Paris,true\n" +
		"bob,12.5,,false\n"
	// First a dry run: what would change, and nothing changes.
	res, err := m.ImportSettings(ctx, root, strings.NewReader(file), budget.ImportOptions{DryRun: true})
	if err != nil {
		panic(err)
	}
	for _, r := range res.Rows {
		fmt.Println("line", r.Line, r.UserID, "new:", r.Created, r.Changes)
	}
	// Then for real: every row, or none.
	res, err = m.ImportSettings(ctx, root, strings.NewReader(file), budget.ImportOptions{Reason: "Q2 budgets"})
	fmt.Println("applied:", res.Applied, "changed:", res.Changed, err)
	// A bad row refuses the whole file.
	_, err = m.ImportSettings(ctx, root, strings.NewReader("user_id,limit_usd\nalice,10\nbob,ten\n"), budget.ImportOptions{})
	fmt.Println(err)
	st, _ := m.Status(ctx, "alice")
	fmt.Println("alice:", st.Limit, st.Timezone)
	// Output:
	// line 2 alice new: true [{limit_usd 30 50} {timezone UTC Europe/Paris}]
	// line 3 bob new: true [{limit_usd 30 12.5} {enforce_budget true false}]
	// applied: true changed: 2 <nil>
	// budget: import: line 3, column limit_usd: invalid amount: "ten" is not a decimal number; nothing was imported
	// alice: 50 Europe/Paris
}

func ExampleManager_ImportSeed() {
	ctx := context.Background()
	now := exampleStart
	m := newExampleManager(&now)
	root := budget.Principal{UserID: "root", Admin: true}
	// The seed system's tables, as sqlite3 -csv -header exports them.
	settings := "id,user_id,monthly_limit_usd,budget_period,enforce_budget,alert_threshold_yellow\n" +
		"7,carol,29.999999999999996,monthly,1,75.0\n"
	resets := "id,user_id,reset_type,reset_by,previous_limit,new_limit,previous_spent,reason,reset_at\n" +
		"3,carol,manual,admin,30.0,30.0,27.400000000000002,top-up,2025-02-20 16:45:00\n"
	res, err := m.ImportSeed(ctx, root, strings.NewReader(settings), strings.NewReader(resets), budget.ImportOptions{})
	if err != nil {
		panic(err)
	}
	for _, r := range res.Rows {
		fmt.Println(r.File, "line", r.Line, r.Notes)
	}
	page, _ := m.AuditLog(ctx, root, budget.AuditLogQuery{UserID: "carol", Type: budget.AuditManualReset})
	e := page.Entries[0]
	fmt.Println(e.Type, "by", e.Actor, "at", e.At.Format(time.DateTime), "spent", e.PreviousSpent)
	st, _ := m.Status(ctx, "carol")
	fmt.Println("carol:", st.Limit)
	// Output:
	// user_budget_settings line 2 [monthly_limit_usd 29.999999999999996 rounded to 30.000000000]
	// budget_reset_log line 2 [previous_spent 27.400000000000002 rounded to 27.400000000]
	// manual by admin at 2025-02-20 16:45:00 spent 27.4
	// carol: 30
}
