package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/postgres"
)

// TestMigrateV3 builds a schema at version 3, fills it as version 3 wrote
// usage (rows and daily rollups) and prunes one day's rows as Prune did
// (the rollups stay); then opens it. The migration to version 4 fills the
// quarter-hour rollups from the rows, and what a prune left only in the
// daily rollups at its day's first quarter hour, so that every UTC day sums
// as its daily rollup; Daily answers from them; and new usage reaches
// them through the trigger, whatever the caller's search_path.
func TestMigrateV3(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	db := adminPool(t)
	if err := postgres.MigrateTo(ctx, db, schema, 3); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2025, time.March, 20, 0, 0, 0, 0, time.UTC)
	month := time.Date(2025, time.March, 1, 0, 0, 0, 0, time.UTC)
	if _, err := db.Exec(ctx, qualify(schema, `INSERT INTO {s}.users (user_id, limit_nanos, period, custom_days, custom_anchor,
		timezone, enforce, yellow, orange, red, visible, can_modify, can_reset, admin_notes, reset_at, version, created_at, updated_at,
		win_start, win_end, spent, held, next_expiry, marked)
		VALUES ('alice', 50000000000, 'monthly', 0, NULL, '', true, '75', '90', '100', true, false, false, '', NULL, 1, $1, $1,
		$1, $2, 0, 0, NULL, 0)`), month.UnixNano(), month.AddDate(0, 1, 0).UnixNano()); err != nil {
		t.Fatal(err)
	}
	add := func(id string, at time.Time, cost int64) {
		t.Helper()
		n := at.UnixNano()
		if _, err := db.Exec(ctx, qualify(schema, `INSERT INTO {s}.usage (user_id, id, hold_id, provider, model, input_tokens,
			output_tokens, cost, at) VALUES ('alice', $1, '', 'openai', 'gpt-4o', 3, 4, $2, $3)`), id, cost, n); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, qualify(schema, `INSERT INTO {s}.usage_daily AS d (user_id, day, provider, model, cost, requests,
			input_tokens, output_tokens) VALUES ('alice', $1, 'openai', 'gpt-4o', $2, 1, 3, 4)
			ON CONFLICT (user_id, day, provider, model) DO UPDATE SET cost = d.cost + excluded.cost, requests = d.requests + 1,
			input_tokens = d.input_tokens + 3, output_tokens = d.output_tokens + 4`), n/int64(24*time.Hour), cost); err != nil {
			t.Fatal(err)
		}
	}
	add("m1", day.Add(3*time.Hour+7*time.Minute), 1)
	add("m2", day.Add(3*time.Hour+14*time.Minute), 2)
	add("m3", day.Add(23*time.Hour+59*time.Minute), 4)
	add("p1", day.Add(48*time.Hour+5*time.Hour), 8)
	add("p2", day.Add(48*time.Hour+6*time.Hour), 16)
	if _, err := db.Exec(ctx, qualify(schema, `DELETE FROM {s}.usage WHERE id IN ('p1', 'p2')`)); err != nil {
		t.Fatal(err)
	}

	s := open(t, schema)
	if got := schemaVersions(t, db, schema); got != allVersions() {
		t.Fatalf("schema versions %s, want %s", got, allVersions())
	}
	var diff int
	if err := db.QueryRow(ctx, qualify(schema, `SELECT COUNT(*) FROM {s}.usage_daily d FULL JOIN (
			SELECT user_id, (slot - ((slot % 96) + 96) % 96) / 96 AS day, provider, model, SUM(cost) AS cost,
				SUM(requests) AS requests, SUM(input_tokens) AS i, SUM(output_tokens) AS o
			FROM {s}.usage_quarter GROUP BY 1, 2, 3, 4) q USING (user_id, day, provider, model)
		WHERE d.cost IS DISTINCT FROM q.cost OR d.requests IS DISTINCT FROM q.requests
			OR d.input_tokens IS DISTINCT FROM q.i OR d.output_tokens IS DISTINCT FROM q.o`)).Scan(&diff); err != nil {
		t.Fatal(err)
	}
	if diff != 0 {
		t.Errorf("%d daily rollups differ from their quarter hours", diff)
	}
	slot := func(at time.Time) (cost, requests int64) {
		t.Helper()
		if err := db.QueryRow(ctx, qualify(schema, `SELECT COALESCE(SUM(cost), 0)::bigint, COALESCE(SUM(requests), 0)::bigint
			FROM {s}.usage_quarter WHERE user_id = 'alice' AND slot = $1`), budget.QuarterOf(at.UnixNano())).Scan(&cost, &requests); err != nil {
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
	kathmandu, _ := time.LoadLocation("Asia/Kathmandu")
	now := day.Add(72 * time.Hour)
	m := budget.NewManager(s, budget.Options{Now: func() time.Time { return now }})
	root := budget.Principal{UserID: "root", Admin: true}
	if _, err := m.UpdateSettings(ctx, root, "alice", budget.SettingsUpdate{Timezone: ptrTo("Asia/Kathmandu")}); err != nil {
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
	if want := "[2025-03-20:0.000000003 2025-03-21:0.000000004]"; fmt.Sprint(got) != want {
		t.Errorf("days %v, want %s", got, want)
	}
	// New usage, by the fast path's single statement and by the
	// transaction, reaches the quarter hours.
	for i, fast := range []bool{true, false} {
		postgres.SetFast(s, fast)
		if _, err := m.Record(ctx, "alice", budget.Usage{ID: fmt.Sprint("new", i), Provider: "openai", Model: "gpt-4o", Cost: budget.MustAmount("1")}); err != nil {
			t.Fatal(err)
		}
		if c, n := slot(now); c != int64(i+1)*1e9 || n != int64(i+1) {
			t.Errorf("after call %d: %d in %d calls", i+1, c, n)
		}
	}
}
