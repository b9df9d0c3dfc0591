package sqlite_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/sqlite"
)

// TestMigrateV3 builds a file at schema version 3 (the version 2 fixture,
// migrated), adds usage as version 3 wrote it (rows and daily rollups), and
// prunes one day's rows as Prune did (the rollups stay); then opens it.
// The migration to version 4 fills the quarter-hour rollups from the rows,
// and what a prune left only in the daily rollups at its day's first
// quarter hour, so that every UTC day sums as its daily rollup; Daily
// answers from them; and new usage reaches them through the trigger.
func TestMigrateV3(t *testing.T) {
	ctx := context.Background()
	path := copyFixtureFrom(t, v2Fixture)
	if err := sqlite.MigrateFileTo(path, 3); err != nil {
		t.Fatal(err)
	}
	if v := userVersion(t, path); v != 3 {
		t.Fatalf("fixture at version %d, want 3", v)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2025, time.March, 20, 0, 0, 0, 0, time.UTC)
	add := func(id string, at time.Time, cost int64) {
		t.Helper()
		n := at.UnixNano()
		if _, err := db.Exec(`INSERT INTO usage (user_id, id, hold_id, provider, model, input_tokens, output_tokens, cost, at)
			VALUES ('alice', ?, '', 'openai', 'gpt-4o', 3, 4, ?, ?)`, id, cost, n); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO usage_daily (user_id, day, provider, model, cost, requests, input_tokens, output_tokens)
			VALUES ('alice', ?, 'openai', 'gpt-4o', ?, 1, 3, 4) ON CONFLICT DO UPDATE SET cost = cost + excluded.cost,
			requests = requests + 1, input_tokens = input_tokens + 3, output_tokens = output_tokens + 4`, n/int64(24*time.Hour), cost); err != nil {
			t.Fatal(err)
		}
	}
	add("m1", day.Add(3*time.Hour+7*time.Minute), 1)  // slot 12 of the day
	add("m2", day.Add(3*time.Hour+14*time.Minute), 2) // slot 12 too
	add("m3", day.Add(23*time.Hour+59*time.Minute), 4)
	add("p1", day.Add(48*time.Hour+5*time.Hour), 8) // pruned below
	add("p2", day.Add(48*time.Hour+6*time.Hour), 16)
	if _, err := db.Exec(`DELETE FROM usage WHERE id IN ('p1', 'p2')`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s := open(t, path, sqlite.Options{})
	if v := userVersion(t, path); v != sqlite.SchemaVersion {
		t.Fatalf("migrated file at version %d, want %d", v, sqlite.SchemaVersion)
	}
	raw := ftRaw(t, path)
	// Every UTC day's quarter hours add up to its daily rollup.
	var diff int
	if err := raw.QueryRow(`SELECT COUNT(*) FROM usage_daily d FULL JOIN (
			SELECT user_id, (slot - ((slot % 96) + 96) % 96) / 96 AS day, provider, model, SUM(cost) AS cost,
				SUM(requests) AS requests, SUM(input_tokens) AS i, SUM(output_tokens) AS o
			FROM usage_quarter GROUP BY 1, 2, 3, 4) q USING (user_id, day, provider, model)
		WHERE d.cost IS NOT q.cost OR d.requests IS NOT q.requests OR d.input_tokens IS NOT q.i OR d.output_tokens IS NOT q.o`).Scan(&diff); err != nil {
		t.Fatal(err)
	}
	if diff != 0 {
		t.Errorf("%d daily rollups differ from their quarter hours", diff)
	}
	slot := func(at time.Time) (cost, requests int64) {
		t.Helper()
		if err := raw.QueryRow(`SELECT COALESCE(SUM(cost), 0), COALESCE(SUM(requests), 0) FROM usage_quarter
			WHERE user_id = 'alice' AND slot = ?`, budget.QuarterOf(at.UnixNano())).Scan(&cost, &requests); err != nil {
			t.Fatal(err)
		}
		return cost, requests
	}
	if c, n := slot(day.Add(3 * time.Hour)); c != 3 || n != 2 {
		t.Errorf("the quarter hour of m1 and m2: %d in %d calls, want 3 in 2", c, n)
	}
	if c, n := slot(day.Add(48 * time.Hour)); c != 24 || n != 2 {
		t.Errorf("the pruned day's first quarter hour: %d in %d calls, want 24 in 2", c, n)
	}
	// Daily, in a zone 5:45 ahead of UTC: m3 (23:59 UTC) is on the 21st.
	kathmandu, _ := time.LoadLocation("Asia/Kathmandu")
	m := budget.NewManager(s, budget.Options{Now: func() time.Time { return day.Add(72 * time.Hour) }})
	root := budget.Principal{UserID: "root", Admin: true}
	if _, err := m.UpdateSettings(ctx, root, "alice", budget.SettingsUpdate{Timezone: ptr("Asia/Kathmandu")}); err != nil {
		t.Fatal(err)
	}
	d, err := m.Daily(ctx, root, budget.DailyQuery{UserID: "alice", From: time.Date(2025, 3, 20, 0, 0, 0, 0, kathmandu), To: time.Date(2025, 3, 22, 0, 0, 0, 0, kathmandu)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, day := range d.Days {
		got = append(got, day.Date+":"+day.Total.Cost.String())
	}
	if want := "[2025-03-20:0.000000003 2025-03-21:0.000000004]"; fmtSlice(got) != want {
		t.Errorf("days %s, want %s", fmtSlice(got), want)
	}
	// New usage reaches the quarter hours.
	if _, err := m.Record(ctx, "alice", budget.Usage{ID: "new", Provider: "openai", Model: "gpt-4o", Cost: budget.MustAmount("1")}); err != nil {
		t.Fatal(err)
	}
	if c, n := slot(day.Add(72 * time.Hour)); c != 1e9 || n != 1 {
		t.Errorf("a call after the migration: %d in %d calls, want 1e9 in 1", c, n)
	}
}

func fmtSlice(s []string) string {
	out := "["
	for i, v := range s {
		if i > 0 {
			out += " "
		}
		out += v
	}
	return out + "]"
}
