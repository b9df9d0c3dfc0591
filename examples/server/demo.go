package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/llmbudget/budget"
)

// demoModel is a model and its price per token, in nano-dollars ($1 per
// million tokens is 1000 nano-dollars per token).
type demoModel struct {
	provider, name string
	in, out        int64
}

var demoModels = []demoModel{
	{"openai", "gpt-4o", 2500, 10000},
	{"openai", "gpt-4o-mini", 150, 600},
	{"anthropic", "claude-sonnet-4", 3000, 15000},
	{"anthropic", "claude-3-5-haiku", 800, 4000},
}

// demoUser is one simulated user: their plan (nil for the defaults), how
// many calls a day they made over the last week, and where the last two
// hours of heavier traffic leave them, in percent of the limit (0: until
// a call is refused, then a large late-reported call pushes them over).
type demoUser struct {
	id     string
	update *budget.SettingsUpdate
	perDay int
	target int64
}

func demoUsers() []demoUser {
	ptr := func(s string) *string { return &s }
	amount := func(s string) *decimal.Decimal { d := budget.MustAmount(s); return &d }
	period := func(p budget.Period) *budget.Period { return &p }
	return []demoUser{
		// The default plan ($30 a month); green.
		{id: "alice", perDay: 5, target: 40},
		// $12 a month in London; yellow.
		{id: "bob", perDay: 3, target: 80,
			update: &budget.SettingsUpdate{Limit: amount("12"), Timezone: ptr("Europe/London"), AdminNotes: ptr("demo: research team")}},
		// $4 a day in New York; orange, and a new period every day.
		{id: "carol", perDay: 6, target: 92,
			update: &budget.SettingsUpdate{Limit: amount("4"), Period: period(budget.Daily), Timezone: ptr("America/New_York")}},
		// $5 a month: refused once spent, then red after a late report.
		{id: "dave", perDay: 2, target: 0,
			update: &budget.SettingsUpdate{Limit: amount("5"), AdminNotes: ptr("demo: over budget")}},
	}
}

// demoTemplates are the plans -demo saves as templates, to apply from the
// admin page: an intern's small view-only budget, a researcher's larger one
// they may change themselves.
func demoTemplates() map[string]budget.SettingsUpdate {
	amount := func(s string) *decimal.Decimal { d := budget.MustAmount(s); return &d }
	period := func(p budget.Period) *budget.Period { return &p }
	yes, no := true, false
	return map[string]budget.SettingsUpdate{
		"intern": {Limit: amount("5"), Period: period(budget.Weekly), Enforce: &yes,
			Visible: &yes, CanModify: &no, CanReset: &no},
		"researcher": {Limit: amount("200"), Period: period(budget.Monthly), Enforce: &yes,
			Visible: &yes, CanModify: &yes, CanReset: &no},
	}
}

// demoGroup is a team or an org -demo creates when it is absent: its
// plan and model caps, its org (a team's) and its users.
type demoGroup struct {
	scope  budget.Scope
	update budget.SettingsUpdate
	org    string
	users  []string
}

// demoGroups are the org and the team -demo creates, the org first (a
// team's org must exist): alice and bob share the research team's $40 a
// month, with at most $12 of it on gpt-4o and gpt-4o-mini; the team and
// dave are in the org acme, whose $100 a month allows at most $40 on
// claude-sonnet models. The limits leave room for the traffic demoUsers
// describes, so that each user ends at their level; alice ends near the
// team's cap on gpt-4o*, which binds her (the user's page puts it first).
func demoGroups() []demoGroup {
	amount := func(s string) *decimal.Decimal { d := budget.MustAmount(s); return &d }
	caps := func(pattern, limit string) *[]budget.ModelCap {
		return &[]budget.ModelCap{{Pattern: pattern, Limit: budget.MustAmount(limit)}}
	}
	notes := func(s string) *string { return &s }
	return []demoGroup{
		{scope: budget.Org("acme"), users: []string{"dave"},
			update: budget.SettingsUpdate{Limit: amount("100"), ModelCaps: caps("claude-sonnet-*", "40"), AdminNotes: notes("demo: the whole company")}},
		{scope: budget.Team("research"), org: "acme", users: []string{"alice", "bob"},
			update: budget.SettingsUpdate{Limit: amount("40"), ModelCaps: caps("gpt-4o*", "12"), AdminNotes: notes("demo: shared by alice and bob")}},
	}
}

// seedDemoGroups creates each demo team and org that does not exist yet,
// and puts its members in it; one that exists is left as it is, so that
// an admin's edits survive a restart with -demo.
func seedDemoGroups(ctx context.Context, m *budget.Manager, admin budget.Principal) error {
	for _, g := range demoGroups() {
		_, err := m.BudgetSettings(ctx, admin, g.scope)
		if err == nil {
			continue
		}
		if !errors.Is(err, budget.ErrNotFound) {
			return err
		}
		if _, err := m.UpdateBudget(ctx, admin, g.scope, g.update); err != nil {
			return fmt.Errorf("demo %s: %w", g.scope, err)
		}
		if g.org != "" {
			if _, err := m.SetTeamOrg(ctx, admin, g.scope.ID, g.org); err != nil {
				return fmt.Errorf("demo %s in org %q: %w", g.scope, g.org, err)
			}
		}
		for _, u := range g.users {
			s, err := m.BudgetSettings(ctx, admin, budget.User(u))
			if err != nil && !errors.Is(err, budget.ErrNotFound) {
				return err
			}
			ms := budget.Membership{Teams: s.Teams, Org: s.Org}
			if g.scope.Kind == budget.TeamScope {
				ms.Teams = append(slices.Clone(ms.Teams), g.scope.ID)
			} else if ms.Org == "" {
				ms.Org = g.scope.ID
			}
			if _, err := m.SetMembership(ctx, admin, u, ms); err != nil {
				return fmt.Errorf("demo %s in %s: %w", u, g.scope, err)
			}
		}
	}
	return nil
}

// saveDemoTemplates saves each demo template that does not exist yet, so
// that an admin's edits survive a restart with -demo.
func saveDemoTemplates(ctx context.Context, m *budget.Manager, admin budget.Principal) error {
	for _, name := range slices.Sorted(maps.Keys(demoTemplates())) {
		_, err := m.Template(ctx, admin, name)
		if err == nil {
			continue
		}
		if !errors.Is(err, budget.ErrNotFound) {
			return err
		}
		if _, err := m.SaveTemplate(ctx, admin, name, demoTemplates()[name]); err != nil {
			return fmt.Errorf("template %q: %w", name, err)
		}
	}
	return nil
}

// seedDemo saves the demo templates, then records a week of simulated
// traffic before now through m, with the Manager's clock set to each call's
// instant; it leaves the clock real. It records nothing if the first demo
// user already has usage, so that -demo is safe on every start.
func seedDemo(ctx context.Context, m *budget.Manager, clock *demoClock, now time.Time, logger *slog.Logger) error {
	admin := budget.Principal{UserID: "demo-setup", Admin: true}
	if err := saveDemoTemplates(ctx, m, admin); err != nil {
		return err
	}
	users := demoUsers()
	page, err := m.History(ctx, budget.UsageQuery{UserID: users[0].id, Limit: 1})
	if err != nil {
		return err
	}
	if len(page.Records) > 0 {
		logger.Info("demo: the database already has demo traffic; not adding more")
		return seedDemoGroups(ctx, m, admin)
	}
	defer clock.Set(time.Time{})

	rng := rand.New(rand.NewPCG(1, 2))
	start := now.Add(-7 * 24 * time.Hour)
	clock.Set(start)
	for _, u := range users {
		if u.update == nil {
			continue
		}
		if _, err := m.UpdateSettings(ctx, admin, u.id, *u.update); err != nil {
			return err
		}
	}
	// The team and the org from the start of the week, so that their
	// members' traffic counts in them.
	if err := seedDemoGroups(ctx, m, admin); err != nil {
		return err
	}

	// The week: small calls at random times of each past day, in time
	// order across users.
	type call struct {
		user string
		at   time.Time
	}
	var week []call
	for _, u := range users {
		for day := 6; day >= 1; day-- {
			dayStart := now.Add(-time.Duration(day) * 24 * time.Hour)
			for range u.perDay {
				week = append(week, call{u.id, dayStart.Add(time.Duration(rng.Int64N(int64(22 * time.Hour))))})
			}
		}
	}
	slices.SortFunc(week, func(a, b call) int { return a.at.Compare(b.at) })
	calls, refused := 0, 0
	for _, c := range week {
		clock.Set(c.at)
		ok, _, err := demoCall(ctx, m, c.user, rng, 0)
		if err != nil {
			return err
		}
		calls++
		if !ok {
			refused++
		}
	}

	// The last two hours: long-context calls, each about 2 to 3.5% of the
	// user's limit, until the user reaches their level. A burst that would
	// start in a period ending before now moves to the current period, so
	// the levels hold whatever the time of day or month.
	end := now.Add(-time.Second)
	for k, u := range users {
		at := now.Add(-2*time.Hour + time.Duration(k)*25*time.Minute)
		clock.Set(at)
		st, err := m.Status(ctx, u.id)
		if err != nil {
			return err
		}
		if !st.PeriodEnd.After(now) {
			at = st.PeriodEnd
			clock.Set(at)
			if st, err = m.Status(ctx, u.id); err != nil {
				return err
			}
		}
		limit, err := budget.ToNanos(st.Limit)
		if err != nil {
			return err
		}
		spacing := max(0, min(30*time.Second, end.Sub(at)/100))
		for i := 0; i < 80 && (u.target == 0 || st.Percent.LessThan(decimal.NewFromInt(u.target))); i++ {
			at = at.Add(spacing)
			clock.Set(at)
			ok, s, err := demoCall(ctx, m, u.id, rng, limit*budget.Nanos(200+rng.IntN(150))/10000)
			if err != nil {
				return err
			}
			calls++
			if !ok {
				refused++
				break
			}
			st = s
		}
		if u.target == 0 {
			// A batch job's usage, reported after the fact, a fifth of the
			// limit: Record never refuses, so the user ends up over it.
			clock.Set(at.Add(spacing))
			in := int64(limit / 5 / 2500)
			if _, err := m.Record(ctx, u.id, budget.Usage{
				Provider: "openai", Model: "gpt-4o", InputTokens: in, Cost: budget.Nanos(in * 2500).Decimal(),
			}); err != nil {
				return err
			}
			calls++
		}
	}
	logger.Info("demo: recorded simulated traffic", "users", len(users), "calls", calls, "refused", refused)
	return nil
}

// demoCall makes one simulated model call the way a service would: Reserve
// the most it can cost, then Settle the actual cost. A zero cost makes a
// small call on any model; otherwise a long-context call on a large model
// costs about that much. It reports false when the budget refused the call.
func demoCall(ctx context.Context, m *budget.Manager, user string, rng *rand.Rand, cost budget.Nanos) (bool, budget.Status, error) {
	mdl := demoModels[rng.IntN(len(demoModels))]
	in, out, maxOut := 500+rng.Int64N(7500), 100+rng.Int64N(1100), int64(2048)
	if cost > 0 {
		mdl = demoModels[2*rng.IntN(2)] // gpt-4o or claude-sonnet-4
		out, maxOut = 300+rng.Int64N(1700), 4096
		in = max(1000, min(200_000, (int64(cost)-out*mdl.out)/mdl.in))
	}
	estimate := budget.Nanos(in*mdl.in + maxOut*mdl.out).Decimal()
	r, err := m.Reserve(ctx, user, estimate, budget.WithModel(mdl.name))
	if errors.Is(err, budget.ErrBudgetExceeded) {
		return false, budget.Status{}, nil
	}
	if err != nil {
		return false, budget.Status{}, err
	}
	defer r.Release(ctx)
	st, err := r.Settle(ctx, budget.Usage{
		Provider: mdl.provider, Model: mdl.name, InputTokens: in, OutputTokens: out,
		Cost: budget.Nanos(in*mdl.in + out*mdl.out).Decimal(),
	})
	if err != nil {
		return false, budget.Status{}, fmt.Errorf("demo call for %s: %w", user, err)
	}
	return true, st, nil
}
