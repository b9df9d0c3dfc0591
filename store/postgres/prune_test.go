package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/storetest"
)

func TestPruneKeepsCountersAndRollups(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	s := open(t, schema)
	start := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	c := storetest.NewClock(start)
	m := budget.NewManager(s, budget.Options{Now: c.Now})
	setLimit(t, m, "u", "1000")
	setLimit(t, m, "v", "1000")
	record := func(user, cost string) {
		t.Helper()
		if _, err := m.Record(ctx, user, budget.Usage{Provider: "openai", Model: "gpt-4o", Cost: budget.MustAmount(cost)}); err != nil {
			t.Fatal(err)
		}
	}
	// Three months of one call a day for u; v is daily, so its window is
	// only the last day. Then a reservation left to expire.
	daily := budget.Daily
	if _, err := m.UpdateSettings(ctx, admin, "v", budget.SettingsUpdate{Period: &daily}); err != nil {
		t.Fatal(err)
	}
	for day := 0; day < 90; day++ {
		c.Set(start.AddDate(0, 0, day))
		record("u", "1.5")
		record("v", "1")
	}
	r, err := m.Reserve(ctx, "u", budget.MustAmount("2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Release(ctx); err != nil {
		t.Fatal(err)
	}
	now := c.Now() // 2026-11-29: u's window is November
	before, err := m.Status(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	sept := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	oct := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	bdBefore, err := m.Breakdown(ctx, "u", sept, oct)
	if err != nil {
		t.Fatal(err)
	}

	// A cut-off before the windows deletes only the rows before it.
	n, err := s.Prune(ctx, oct)
	if err != nil {
		t.Fatal(err)
	}
	if n != 60 { // September, for each user
		t.Errorf("pruned %d rows before October, want 60", n)
	}
	// A cut-off beyond the windows' starts deletes only rows before them.
	n, err = s.Prune(ctx, now.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if n != 31+59 { // u's October, v's October and November but today
		t.Errorf("pruned %d rows, want %d", n, 31+59)
	}
	after, err := m.Status(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if !after.Spent.Equal(before.Spent) || !after.Spent.Equal(budget.MustAmount("43.5")) {
		t.Errorf("spent %s after pruning, want %s", after.Spent, before.Spent)
	}
	if st, err := m.Status(ctx, "v"); err != nil || !st.Spent.Equal(budget.MustAmount("1")) {
		t.Errorf("v's status %+v %v, want spent 1", st, err)
	}
	bdAfter, err := m.Breakdown(ctx, "u", sept, oct)
	if err != nil {
		t.Fatal(err)
	}
	if !bdAfter.Total.Cost.Equal(bdBefore.Total.Cost) || bdAfter.Total.Requests != 30 {
		t.Errorf("September breakdown %+v after pruning, want %+v", bdAfter.Total, bdBefore.Total)
	}
	// Counters still equal the sum of their rows in the window.
	var spent, sum, holds int64
	db := adminPool(t)
	if err := db.QueryRow(ctx, qualify(schema, `SELECT spent, (SELECT COALESCE(SUM(cost), 0)::bigint FROM {s}.usage x
		WHERE x.user_id = u.user_id AND at >= u.win_start AND at < u.win_end) FROM {s}.users u WHERE user_id = 'u'`)).Scan(&spent, &sum); err != nil {
		t.Fatal(err)
	}
	if spent != sum {
		t.Errorf("counter %d, sum of rows %d", spent, sum)
	}
	if err := db.QueryRow(ctx, qualify(schema, `SELECT COUNT(*) FROM {s}.holds`)).Scan(&holds); err != nil {
		t.Fatal(err)
	}
	if holds != 0 {
		t.Errorf("%d closed holds left after pruning past their expiry", holds)
	}
	// History keeps the windows.
	for user, want := range map[string]int{"u": 29, "v": 1} {
		p, err := m.History(ctx, budget.UsageQuery{UserID: user, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Records) != want {
			t.Errorf("%s's history has %d rows after pruning, want %d", user, len(p.Records), want)
		}
	}
	// Spend after pruning still counts.
	record("u", "0.5")
	if st, err := m.Status(ctx, "u"); err != nil || !st.Spent.Equal(budget.MustAmount("44")) {
		t.Errorf("status after a new record %+v %v, want spent 44", st, err)
	}
}
