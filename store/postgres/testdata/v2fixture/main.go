// Command v2fixture fills a PostgreSQL schema with budgets as the code of
// schema version 2 writes them, for TestMigrateV2. The fixture must come
// from that version's code, not this one's: ../v2.sql was made from a
// checkout of commit 2f99ca0 with
//
//	git worktree add --detach /tmp/v2 2f99ca0
//	mkdir /tmp/v2/cmd/v2fixture && cp main.go /tmp/v2/cmd/v2fixture/
//	cd /tmp/v2 && go run ./cmd/v2fixture "$DSN" budget_v2_fixture
//	pg_dump -d "$DSN" -n budget_v2_fixture --no-owner --no-privileges --inserts --no-comments
//
// (without the dump's \restrict and \unrestrict lines, which only psql
// reads). It prints the ID of the hold it leaves pending.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/postgres"
	"github.com/shopspring/decimal"
)

func main() {
	ctx := context.Background()
	s, err := postgres.Open(ctx, os.Args[1], postgres.Options{Schema: os.Args[2]})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, time.March, 10, 12, 0, 0, 0, time.UTC)
	m := budget.NewManager(s, budget.Options{Now: func() time.Time { return now }, HoldTTL: time.Hour,
		IsAdmin: func(u string) bool { return u == "root" }})
	root := budget.Principal{UserID: "root", Admin: true}
	amt := budget.MustAmount
	ptr := func(d string) *decimal.Decimal { a := amt(d); return &a }
	must := func(err error) {
		if err != nil {
			log.Fatal(err)
		}
	}
	_, err = m.UpdateDefaults(ctx, root, budget.SettingsUpdate{Limit: ptr("20")})
	must(err)
	_, err = m.SaveTemplate(ctx, root, "intern", budget.SettingsUpdate{Limit: ptr("5")})
	must(err)
	notes := "research team"
	_, err = m.UpdateSettings(ctx, root, "alice", budget.SettingsUpdate{Limit: ptr("50"), AdminNotes: &notes})
	must(err)
	_, err = m.Record(ctx, "alice", budget.Usage{ID: "u1", Provider: "openai", Model: "gpt-4o", InputTokens: 1000, OutputTokens: 200, Cost: amt("1.25")})
	must(err)
	now = now.Add(time.Minute)
	r, err := m.Reserve(ctx, "alice", amt("2"))
	must(err)
	_, err = r.Settle(ctx, budget.Usage{ID: "u2", Provider: "anthropic", Model: "claude-opus-4-5", InputTokens: 10, OutputTokens: 20, Cost: amt("1.500000001")})
	must(err)
	now = now.Add(time.Minute)
	pending, err := m.Reserve(ctx, "alice", amt("3")) // left open
	must(err)
	fmt.Println("pending hold", pending.ID())

	daily, paris := budget.Daily, "Europe/Paris"
	_, err = m.UpdateSettings(ctx, root, "bob", budget.SettingsUpdate{Limit: ptr("3"), Period: &daily, Timezone: &paris})
	must(err)
	_, err = m.Record(ctx, "bob", budget.Usage{ID: "b1", Provider: "openai", Model: "gpt-4o-mini", Cost: amt("0.5")})
	must(err)
	now = now.Add(24 * time.Hour) // bob's next Paris day: his window rolls over
	_, err = m.Record(ctx, "bob", budget.Usage{ID: "b2", Provider: "openai", Model: "gpt-4o-mini", Cost: amt("0.25")})
	must(err)
	_, err = m.Reset(ctx, root, "bob", budget.ResetOptions{Reason: "new project"})
	must(err)
}
