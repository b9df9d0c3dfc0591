package sqlite_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/sqlite"
)

// TestMigrateV4 builds a file at schema version 4 (the version 2 fixture,
// migrated) holding a team and usage charged to it as version 4 wrote it:
// rows of usage under the team's key, with budget.UsageKeyID IDs. Opening
// it moves those rows to usage_charged, where the team's history, counters
// and rollups find them as before, and where new usage charged to the team
// goes.
func TestMigrateV4(t *testing.T) {
	ctx := context.Background()
	path := copyFixtureFrom(t, v2Fixture)
	if err := sqlite.MigrateFileTo(path, 4); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	team := budget.Team("t").Key()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	// The team: alice's settings and window under the team's key.
	exec(`CREATE TEMP TABLE tm AS SELECT * FROM users WHERE user_id = 'alice'`)
	exec(`UPDATE tm SET user_id = ?, spent = 0, held = 0, next_expiry = NULL, marked = 0, teams = ''`, team)
	exec(`INSERT INTO users SELECT * FROM tm`)
	exec(`UPDATE users SET teams = '["t"]' WHERE user_id = 'alice'`)
	var winStart int64
	if err := db.QueryRow(`SELECT win_start FROM users WHERE user_id = ?`, team).Scan(&winStart); err != nil {
		t.Fatal(err)
	}
	// Two calls of alice's, charged to her and the team as version 4 did.
	for i, id := range []string{"c1", "c2"} {
		at := winStart + int64(i+1)*int64(time.Minute)
		for _, key := range []string{"alice", team} {
			rowID := id
			if key == team {
				rowID = budget.UsageKeyID("alice", id)
			}
			exec(`INSERT INTO usage (user_id, id, hold_id, provider, model, input_tokens, output_tokens, cost, at)
				VALUES (?, ?, ?, 'openai', 'gpt-4o', 3, 4, ?, ?)`, key, rowID, id, int64(i+1)*1e6, at)
			exec(`INSERT INTO usage_daily (user_id, day, provider, model, cost, requests, input_tokens, output_tokens)
				VALUES (?, ?, 'openai', 'gpt-4o', ?, 1, 3, 4) ON CONFLICT DO UPDATE SET cost = cost + excluded.cost,
				requests = requests + 1, input_tokens = input_tokens + 3, output_tokens = output_tokens + 4`,
				key, at/int64(24*time.Hour), int64(i+1)*1e6)
			exec(`UPDATE users SET spent = spent + ? WHERE user_id = ? AND ? >= win_start AND ? < win_end`, int64(i+1)*1e6, key, at, at)
		}
	}
	db.Close()

	s := open(t, path, sqlite.Options{})
	if v := userVersion(t, path); v != sqlite.SchemaVersion {
		t.Fatalf("migrated file at version %d, want %d", v, sqlite.SchemaVersion)
	}
	raw := ftRaw(t, path)
	var inUsage, charged int
	if err := raw.QueryRow(`SELECT (SELECT COUNT(*) FROM usage WHERE user_id = ?), (SELECT COUNT(*) FROM usage_charged WHERE user_id = ?)`,
		team, team).Scan(&inUsage, &charged); err != nil {
		t.Fatal(err)
	}
	if inUsage != 0 || charged != 2 {
		t.Fatalf("the team's rows: %d in usage and %d in usage_charged, want 0 and 2", inUsage, charged)
	}
	ftCheckCounters(t, path)
	ftIntegrity(t, path)
	history := func() []string {
		t.Helper()
		p, err := s.History(ctx, budget.HistoryQuery{UserID: team, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range p.Rows {
			user, id, _ := budget.SplitUsageKeyID(r.ID)
			ids = append(ids, user+"/"+id+"/"+r.Cost.Decimal().String())
		}
		return ids
	}
	if got, want := fmtSlice(history()), "[alice/c2/0.002 alice/c1/0.001]"; got != want {
		t.Errorf("the team's history: %s, want %s", got, want)
	}
	// A new call charged to alice and the team, at the fixture's clock.
	m := budget.NewManager(s, budget.Options{Now: func() time.Time { return time.Unix(0, winStart).Add(time.Hour) }})
	if _, err := m.Record(ctx, "alice", budget.Usage{ID: "c3", Provider: "openai", Model: "gpt-4o", Cost: budget.MustAmount("0.004")}); err != nil {
		t.Fatal(err)
	}
	if got, want := fmtSlice(history()), "[alice/c3/0.004 alice/c2/0.002 alice/c1/0.001]"; got != want {
		t.Errorf("the team's history after a new call: %s, want %s", got, want)
	}
	// The new row under the team carries the user's row's seq.
	var same bool
	if err := raw.QueryRow(`SELECT c.seq = u.seq FROM usage_charged AS c, usage AS u
		WHERE c.user_id = ? AND c.id = ? AND u.user_id = 'alice' AND u.id = 'c3'`, team, budget.UsageKeyID("alice", "c3")).Scan(&same); err != nil {
		t.Fatal(err)
	}
	if !same {
		t.Error("the team's row of c3 does not carry the seq of alice's row")
	}
	st, err := m.BudgetStatus(ctx, budget.Team("t"))
	if err != nil {
		t.Fatal(err)
	}
	if !st.Spent.Equal(budget.MustAmount("0.007")) {
		t.Errorf("the team's spend: %s, want 0.007", st.Spent)
	}
	ftCheckCounters(t, path)
}
