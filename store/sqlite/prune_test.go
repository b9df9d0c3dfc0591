package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/sqlite"
	"github.com/llmbudget/budget/store/storetest"
)

func TestPruneKeepsCountersAndRollups(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "budget.db")
	s := open(t, path, sqlite.Options{})
	start := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	c := storetest.NewClock(start)
	m := budget.NewManager(s, budget.Options{Now: c.Now})
	limit := budget.MustAmount("1000")
	if _, err := m.UpdateSettings(ctx, budget.Principal{UserID: "root", Admin: true}, "u", budget.SettingsUpdate{Limit: &limit}); err != nil {
		t.Fatal(err)
	}
	record := func(cost string) {
		t.Helper()
		if _, err := m.Record(ctx, "u", budget.Usage{Provider: "openai", Model: "gpt-4o", Cost: budget.MustAmount(cost)}); err != nil {
			t.Fatal(err)
		}
	}
	// Three months of one call a day, then a reservation left to expire.
	for day := 0; day < 90; day++ {
		c.Set(start.AddDate(0, 0, day))
		record("1.5")
	}
	r, err := m.Reserve(ctx, "u", budget.MustAmount("2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Release(ctx); err != nil {
		t.Fatal(err)
	}
	now := c.Now() // 2026-11-29: the window is November
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

	// A cut-off beyond the window's start deletes only rows before it.
	n, err := s.Prune(ctx, now.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if n != 61 { // September and October
		t.Errorf("pruned %d rows, want 61", n)
	}
	after, err := m.Status(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if !after.Spent.Equal(before.Spent) || !after.Spent.Equal(budget.MustAmount("43.5")) {
		t.Errorf("spent %s after pruning, want %s", after.Spent, before.Spent)
	}
	bdAfter, err := m.Breakdown(ctx, "u", sept, oct)
	if err != nil {
		t.Fatal(err)
	}
	if !bdAfter.Total.Cost.Equal(bdBefore.Total.Cost) || bdAfter.Total.Requests != 30 {
		t.Errorf("September breakdown %+v after pruning, want %+v", bdAfter.Total, bdBefore.Total)
	}
	// Counters still equal the sum of their rows.
	db, err := sql.Open("sqlite", path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var spent, sum, holds int64
	if err := db.QueryRow(`SELECT spent, (SELECT COALESCE(SUM(cost),0) FROM usage WHERE user_id = u.user_id
		AND at >= u.win_start AND at < u.win_end) FROM users u WHERE user_id = 'u'`).Scan(&spent, &sum); err != nil {
		t.Fatal(err)
	}
	if spent != sum {
		t.Errorf("counter %d, sum of rows %d", spent, sum)
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM holds`).Scan(&holds); err != nil {
		t.Fatal(err)
	}
	if holds != 0 {
		t.Errorf("%d closed holds left after pruning past their expiry", holds)
	}
	// History keeps November.
	p, err := m.History(ctx, budget.UsageQuery{UserID: "u", Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Records) != 29 {
		t.Errorf("history has %d rows after pruning, want 29", len(p.Records))
	}
}
