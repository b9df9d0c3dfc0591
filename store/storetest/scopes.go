package storetest

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbudget/budget"
)

// The cases in this file drive a Store directly with requests that carry
// Also: budgets beyond the user's own (a team's, an org's, model caps), each
// under its key, held in the same atomic step.

// scoped is a small organisation in a store: users with settings, a team
// and an org, each with a monthly policy in UTC, and a cap key of the team.
type scoped struct {
	t     *testing.T
	s     budget.Store
	now   time.Time
	users map[string]budget.Policy
	team  budget.KeyPolicy
	org   budget.KeyPolicy
	cap   budget.KeyPolicy
}

var (
	teamKey = budget.Team("research").Key()
	orgKey  = budget.Org("acme").Key()
	capKey  = budget.Team("research").CapKey("claude-opus-*")
)

// monthly returns a policy with limit in whole dollars and thresholds at
// 50, 80 and 100 percent, for the month holding now.
func monthly(version int64, limit int64, now time.Time) budget.Policy {
	l := budget.Nanos(limit * 1e9)
	return budget.Policy{
		Version: version, Limit: l, Enforce: true,
		Window: budget.PeriodWindow(budget.Monthly, 0, time.Time{}, time.UTC, now),
		Levels: [3]budget.Nanos{l / 2, l * 8 / 10, l},
	}
}

// create stores settings under key with policy p.
func create(t testing.TB, s budget.Store, key string, p budget.Policy, now time.Time) {
	t.Helper()
	set := budget.Settings{UserID: key, Version: p.Version, CreatedAt: now, UpdatedAt: now, Plan: budget.Plan{
		Limit: p.Limit.Decimal(), Period: budget.Monthly, Enforce: p.Enforce, Thresholds: budget.DefaultThresholds(),
	}}
	if _, created, err := s.CreateSettings(ctx, budget.CreateRequest{Settings: set, Policy: p, Now: now}); err != nil || !created {
		t.Fatalf("create %q: created %v, %v", key, created, err)
	}
}

// newScoped makes users (each with a limit of userLimit dollars), the team
// with teamLimit, the org with orgLimit and the team's cap with capLimit.
func newScoped(t *testing.T, s budget.Store, userLimit, teamLimit, orgLimit, capLimit int64, users ...string) *scoped {
	o := &scoped{t: t, s: s, now: start, users: map[string]budget.Policy{}}
	for _, u := range users {
		p := monthly(1, userLimit, start)
		create(t, s, u, p, start)
		o.users[u] = p
	}
	o.team = budget.KeyPolicy{Key: teamKey, Policy: monthly(1, teamLimit, start)}
	o.org = budget.KeyPolicy{Key: orgKey, Policy: monthly(1, orgLimit, start)}
	create(t, s, teamKey, o.team.Policy, start)
	create(t, s, orgKey, o.org.Policy, start)
	o.cap = budget.KeyPolicy{Key: capKey, Cap: true, Policy: monthly(1, capLimit, start)}
	return o
}

// all returns the team, the org and the cap, in that order.
func (o *scoped) all() []budget.KeyPolicy { return []budget.KeyPolicy{o.team, o.org, o.cap} }

func (o *scoped) reserve(user, hold string, amount budget.Nanos, also []budget.KeyPolicy) (budget.Totals, bool, error) {
	return o.s.Reserve(ctx, budget.ReserveRequest{
		UserID: user, HoldID: hold, Amount: amount, Policy: o.users[user], Now: o.now,
		ExpiresAt: o.now.Add(10 * time.Minute), Also: also,
	})
}

func (o *scoped) settle(user, hold, usage string, cost budget.Nanos, also []budget.KeyPolicy) (budget.Totals, error) {
	return o.s.Settle(ctx, budget.SettleRequest{
		HoldID: hold, Policy: o.users[user], Now: o.now, Also: also,
		Usage: budget.UsageRow{ID: usage, UserID: user, HoldID: hold, Provider: "anthropic", Model: "claude-opus-4-5", Cost: cost, At: o.now},
	})
}

// totals returns the user's totals with those of also.
func (o *scoped) totals(user string, also []budget.KeyPolicy) budget.Totals {
	o.t.Helper()
	t, err := o.s.Totals(ctx, budget.TotalsRequest{UserID: user, Policy: o.users[user], Now: o.now, Also: also})
	if err != nil {
		o.t.Fatalf("totals of %q: %v", user, err)
	}
	return t
}

// want checks spent and held of the user and of each budget of also, in
// whole cents: want[0] is the user's, then also's in order.
func (o *scoped) want(what, user string, also []budget.KeyPolicy, want ...[2]int64) {
	o.t.Helper()
	t := o.totals(user, also)
	got := [][2]int64{{int64(t.Spent) / 1e7, int64(t.Held) / 1e7}}
	for _, a := range t.Also {
		got = append(got, [2]int64{int64(a.Spent) / 1e7, int64(a.Held) / 1e7})
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		o.t.Errorf("%s: [spent held] in cents of the user then %d more budgets = %v, want %v", what, len(also), got, want)
	}
}

// testScopesAllOrNothing: a hold is placed on every budget or on none, and
// the budget that lacks room refuses whichever it is.
func testScopesAllOrNothing(t *testing.T, s budget.Store) {
	o := newScoped(t, s, 30, 10, 100, 5, "alice", "bob")
	all := o.all()
	tot, ok, err := o.reserve("alice", "h1", 4e9, all)
	if err != nil || !ok {
		t.Fatalf("reserve 4 on every budget: %v %v", ok, err)
	}
	if len(tot.Also) != 3 || tot.Also[0].Held != 4e9 || tot.Also[2].Held != 4e9 {
		t.Fatalf("reserve's totals: %+v, want 4 held on each of 3 more budgets", tot)
	}
	// The cap has 1 left: 2 is refused, and nothing is held anywhere.
	if _, ok, err := o.reserve("bob", "h2", 2e9, all); err != nil || ok {
		t.Fatalf("reserve past the cap: allowed %v, %v", ok, err)
	}
	o.want("after a refusal by the cap", "bob", all, [2]int64{0, 0}, [2]int64{0, 400}, [2]int64{0, 400}, [2]int64{0, 400})
	// Without the cap (another model), the team's 6 left allow 6.
	if _, ok, err := o.reserve("bob", "h3", 6e9, all[:2]); err != nil || !ok {
		t.Fatalf("reserve 6 without the cap: %v %v", ok, err)
	}
	// The team is full: alice's own budget has room, and is refused.
	if _, ok, err := o.reserve("alice", "h4", 1e7, all[:1]); err != nil || ok {
		t.Fatalf("reserve on a full team: allowed %v, %v", ok, err)
	}
	// And the reverse: a user whose own budget is full, in a team with room.
	o.users["carol"] = monthly(1, 1, start)
	create(t, s, "carol", o.users["carol"], start)
	if _, ok, err := o.reserve("carol", "h5", 2e9, []budget.KeyPolicy{o.org}); err != nil || ok {
		t.Fatalf("reserve past the user's own limit: allowed %v, %v", ok, err)
	}
	o.want("after the refusals", "alice", all, [2]int64{0, 400}, [2]int64{0, 1000}, [2]int64{0, 1000}, [2]int64{0, 400})
}

// testScopesAlsoTotals: a request's AlsoTotals changes nothing but where
// Totals.Also is put: the totals equal those of a request without it, and
// a store writes no entry of the room past len(Also), nor into room too
// small for them.
func testScopesAlsoTotals(t *testing.T, s budget.Store) {
	o := newScoped(t, s, 30, 10, 100, 5, "alice")
	all := o.all()
	mark := budget.Totals{Spent: 777}
	room := []budget.Totals{mark, mark, mark, mark, mark}
	tot, ok, err := s.Reserve(ctx, budget.ReserveRequest{
		UserID: "alice", HoldID: "h1", Amount: 4e9, Policy: o.users["alice"], Now: o.now,
		ExpiresAt: o.now.Add(10 * time.Minute), Also: all, AlsoTotals: room[:0],
	})
	if err != nil || !ok {
		t.Fatalf("reserve with room for the totals: %v %v", ok, err)
	}
	if len(tot.Also) != 3 || tot.Also[0].Held != 4e9 || tot.Also[1].Held != 4e9 || tot.Also[2].Held != 4e9 {
		t.Fatalf("reserve's totals with room: %+v, want 4 held on each of 3 more budgets", tot.Also)
	}
	if room[3].Spent != mark.Spent || room[4].Spent != mark.Spent {
		t.Errorf("the store wrote past len(Also) in the room: %+v", room[3:])
	}
	small := []budget.Totals{mark}
	tot, err = s.Settle(ctx, budget.SettleRequest{
		HoldID: "h1", Policy: o.users["alice"], Now: o.now, Also: all, AlsoTotals: small[:0],
		Usage: budget.UsageRow{ID: "u1", UserID: "alice", HoldID: "h1", Provider: "anthropic", Model: "claude-opus-4-5", Cost: 3e9, At: o.now},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(tot.Also) != 3 || tot.Also[2].Spent != 3e9 || tot.Also[2].Held != 0 || small[0].Spent != mark.Spent {
		t.Fatalf("settle's totals with too little room: %+v (room %+v), want 3 spent on each of 3 more budgets and the room untouched", tot.Also, small)
	}
	with, err := s.Totals(ctx, budget.TotalsRequest{UserID: "alice", Policy: o.users["alice"], Now: o.now, Also: all, AlsoTotals: room[:0]})
	if err != nil {
		t.Fatal(err)
	}
	if without := o.totals("alice", all); fmt.Sprint(with) != fmt.Sprint(without) {
		t.Errorf("totals with room %+v, without %+v", with, without)
	}
}

// testScopesSettleRelease: settle and release apply to exactly the budgets
// named, usage rows are kept under each key with a user-qualified ID, and
// two users' usage IDs never collide under a shared budget.
func testScopesSettleRelease(t *testing.T, s budget.Store) {
	o := newScoped(t, s, 30, 10, 100, 10, "alice", "bob")
	all := o.all()
	for _, u := range []string{"alice", "bob"} {
		if _, ok, err := o.reserve(u, "h-"+u, 3e9, all); err != nil || !ok {
			t.Fatalf("reserve for %s: %v %v", u, ok, err)
		}
	}
	// Both settle under the same usage ID: it is each user's own.
	for _, u := range []string{"alice", "bob"} {
		if _, err := o.settle(u, "h-"+u, "req-1", 1e9, all); err != nil {
			t.Fatalf("settle for %s: %v", u, err)
		}
	}
	o.want("after two settles of 1", "alice", all, [2]int64{100, 0}, [2]int64{200, 0}, [2]int64{200, 0}, [2]int64{200, 0})
	if _, err := o.settle("alice", "h-alice", "req-2", 1e9, all); !errors.Is(err, budget.ErrReservationClosed) {
		t.Errorf("settle twice: %v, want ErrReservationClosed", err)
	}
	if _, ok, err := o.reserve("alice", "h-dup", 1e9, all); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, err := o.settle("alice", "h-dup", "req-1", 1e9, all); !errors.Is(err, budget.ErrDuplicate) {
		t.Errorf("settle under a usage ID the user has: %v, want ErrDuplicate", err)
	}
	if _, err := o.s.Release(ctx, budget.ReleaseRequest{UserID: "alice", HoldID: "h-dup", Policy: o.users["alice"], Now: o.now, Also: all}); err != nil {
		t.Fatal(err)
	}
	o.want("after the release", "alice", all, [2]int64{100, 0}, [2]int64{200, 0}, [2]int64{200, 0}, [2]int64{200, 0})

	page, err := o.s.History(ctx, budget.HistoryQuery{UserID: teamKey})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range page.Rows {
		user, id, ok := budget.SplitUsageKeyID(r.ID)
		if !ok || r.UserID != teamKey || id != "req-1" || r.Cost != 1e9 || r.Model != "claude-opus-4-5" {
			t.Errorf("a row of the team's history: %+v", r)
		}
		seen[user] = true
	}
	if len(page.Rows) != 2 || !seen["alice"] || !seen["bob"] {
		t.Errorf("the team's history has %d rows of %v, want alice's and bob's", len(page.Rows), seen)
	}
	groups, err := o.s.Breakdown(ctx, budget.BreakdownQuery{UserID: capKey, From: start.Add(-time.Hour), To: start.Add(time.Hour)})
	if err != nil || len(groups) != 1 || groups[0].Cost != 2e9 || groups[0].Requests != 2 {
		t.Errorf("the cap's breakdown: %+v, %v; want 2 requests costing 2", groups, err)
	}
	mine, err := o.s.History(ctx, budget.HistoryQuery{UserID: "alice"})
	if err != nil || len(mine.Rows) != 1 || mine.Rows[0].ID != "req-1" || mine.Rows[0].UserID != "alice" {
		t.Errorf("alice's own history: %+v, %v", mine.Rows, err)
	}
	// Record spends the budgets named, without a hold.
	if _, err := o.s.Record(ctx, budget.RecordRequest{Policy: o.users["bob"], Now: o.now, Also: all[:1],
		Usage: budget.UsageRow{ID: "rec", UserID: "bob", Provider: "openai", Model: "gpt-4o", Cost: 5e8, At: o.now}}); err != nil {
		t.Fatal(err)
	}
	o.want("after a record on the team", "bob", all, [2]int64{150, 0}, [2]int64{250, 0}, [2]int64{200, 0}, [2]int64{200, 0})
}

// testScopesRefusalsChangeNothing: a budget without settings, a stale
// version of any budget, or a duplicate refuses the whole call.
func testScopesRefusalsChangeNothing(t *testing.T, s budget.Store) {
	o := newScoped(t, s, 30, 10, 100, 5, "alice")
	all := o.all()
	ghost := budget.KeyPolicy{Key: budget.Team("ghost").Key(), Policy: monthly(1, 10, start)}
	if _, _, err := o.reserve("alice", "h0", 1e9, append(all[:2:2], ghost)); !errors.Is(err, budget.ErrNotFound) {
		t.Errorf("reserve on a team without settings: %v, want ErrNotFound", err)
	}
	stale := o.team
	stale.Policy.Version++
	if _, _, err := o.reserve("alice", "h1", 1e9, []budget.KeyPolicy{stale, o.cap}); !errors.Is(err, budget.ErrConflict) {
		t.Errorf("reserve with a stale team version: %v, want ErrConflict", err)
	}
	o.want("after refused calls", "alice", all, [2]int64{0, 0}, [2]int64{0, 0}, [2]int64{0, 0}, [2]int64{0, 0})
	if _, ok, err := o.reserve("alice", "h2", 1e9, all); err != nil || !ok {
		t.Fatal(ok, err)
	}
	// Settling against a stale team version changes nothing, not even the
	// user's budget.
	if _, err := o.settle("alice", "h2", "u2", 1e9, []budget.KeyPolicy{stale, o.org, o.cap}); !errors.Is(err, budget.ErrConflict) {
		t.Errorf("settle with a stale team version: %v, want ErrConflict", err)
	}
	o.want("after a refused settle", "alice", all, [2]int64{0, 100}, [2]int64{0, 100}, [2]int64{0, 100}, [2]int64{0, 100})
	accounts, err := s.Accounts(ctx, budget.AccountsQuery{Now: o.now})
	if err != nil || len(accounts) != 1 || accounts[0].Settings.UserID != "alice" {
		t.Errorf("Accounts lists %d accounts (%v), want alice alone: teams and orgs are not users", len(accounts), err)
	}
}

// testScopesExpiry: a hold stops counting on every budget at its expiry,
// and Extend keeps it counting on every one.
func testScopesExpiry(t *testing.T, s budget.Store) {
	o := newScoped(t, s, 30, 10, 100, 5, "alice", "bob")
	all := o.all()
	if _, ok, err := o.reserve("alice", "long", 2e9, all); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, ok, err := o.reserve("bob", "short", 2e9, all); err != nil || !ok {
		t.Fatal(ok, err)
	}
	o.now = start.Add(5 * time.Minute)
	if _, err := s.Extend(ctx, budget.ExtendRequest{UserID: "alice", HoldID: "long", ExpiresAt: start.Add(time.Hour), Policy: o.users["alice"], Now: o.now, Also: all}); err != nil {
		t.Fatal(err)
	}
	o.now = start.Add(10 * time.Minute) // bob's hold expires; alice's counts on
	o.want("after bob's hold expired", "alice", all, [2]int64{0, 200}, [2]int64{0, 200}, [2]int64{0, 200}, [2]int64{0, 200})
	o.want("bob", "bob", nil, [2]int64{0, 0})
	// A late settle of the expired hold still records the spend everywhere.
	if _, err := o.settle("bob", "short", "s", 1e9, all); err != nil {
		t.Fatal(err)
	}
	o.want("after a late settle", "alice", all, [2]int64{0, 200}, [2]int64{100, 200}, [2]int64{100, 200}, [2]int64{100, 200})
}

// testScopesRollover: each budget rolls over in its own window; holders'
// rollovers are audited once, under their key; caps' are not audited.
func testScopesRollover(t *testing.T, s budget.Store) {
	o := newScoped(t, s, 30, 10, 100, 5, "alice")
	all := o.all()
	// alice is daily in Asia/Tokyo; the team monthly in UTC.
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Skip("no tz database")
	}
	daily := func(now time.Time) budget.Policy {
		p := o.users["alice"]
		p.Window = budget.PeriodWindow(budget.Daily, 0, time.Time{}, tokyo, now)
		return p
	}
	o.users["alice"] = daily(start)
	if _, ok, err := o.reserve("alice", "h1", 1e9, all); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, err := o.settle("alice", "h1", "u1", 1e9, all); err != nil {
		t.Fatal(err)
	}
	// The next Tokyo day: alice's window moves, the team's stays.
	o.now = start.Add(24 * time.Hour)
	o.users["alice"] = daily(o.now)
	o.want("the next Tokyo day", "alice", all, [2]int64{0, 0}, [2]int64{100, 0}, [2]int64{100, 0}, [2]int64{100, 0})
	// The next month in UTC, from two calls: the team rolls over once.
	o.now = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	o.users["alice"] = daily(o.now)
	for i := range all {
		all[i].Policy.Window = budget.PeriodWindow(budget.Monthly, 0, time.Time{}, time.UTC, o.now)
	}
	o.want("the next month", "alice", all, [2]int64{0, 0}, [2]int64{0, 0}, [2]int64{0, 0}, [2]int64{0, 0})
	o.want("the next month again", "alice", all, [2]int64{0, 0}, [2]int64{0, 0}, [2]int64{0, 0}, [2]int64{0, 0})
	for key, want := range map[string]int{teamKey: 1, orgKey: 1, capKey: 0, "alice": 2} {
		es, err := s.Audit(ctx, budget.AuditQuery{UserID: key, Type: budget.AuditAutomaticReset})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != want {
			t.Errorf("%q has %d automatic resets, want %d", key, len(es), want)
		}
		for _, e := range es {
			if e.UserID != key {
				t.Errorf("a rollover of %q is audited under %q", key, e.UserID)
			}
		}
	}
}

// testScopesConcurrent: three users with room of their own share a team
// whose limit binds: 400 concurrent reserves of 0.10 over the three, and
// exactly the team's limit in holds succeeds.
func testScopesConcurrent(t *testing.T, s budget.Store) {
	users := []string{"u0", "u1", "u2"}
	o := newScoped(t, s, 30, 10, 1000, 1000, users...)
	var ok atomic.Int64
	errs := parallel(400, func(i int) error {
		user := users[i%3]
		_, allowed, err := o.reserve(user, fmt.Sprintf("h%d", i), 1e8, []budget.KeyPolicy{o.team, o.org})
		if allowed {
			ok.Add(1)
		}
		return err
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if ok.Load() != 100 {
		t.Errorf("%d of 400 reserves of 0.10 succeeded on a team of 10, want exactly 100", ok.Load())
	}
	tot := o.totals("u0", []budget.KeyPolicy{o.team, o.org})
	if tot.Also[0].Held != 10e9 || tot.Also[1].Held != 10e9 {
		t.Errorf("the team holds %v and the org %v, want 10 each", tot.Also[0].Held, tot.Also[1].Held)
	}
}

// testScopesSettingsStored: membership and model caps are settings, stored
// and returned like every other field; teams and orgs are listed by kind,
// apart from users.
func testScopesSettingsStored(t *testing.T, s budget.Store) {
	o := newScoped(t, s, 30, 10, 100, 5, "alice", "bob")
	set, err := s.Settings(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	before := set.Clone()
	set.Version++
	set.Teams = []string{"research", "z:w"}
	set.Org = "acme"
	set.ModelCaps = []budget.ModelCap{{Pattern: "claude-opus-*", Limit: amt("50")}, {Pattern: "gpt-4o?", Limit: amt("0.000000001")}}
	next := o.users["alice"]
	next.Version = set.Version
	if _, err := s.UpdateSettings(ctx, budget.UpdateRequest{Settings: set, Current: o.users["alice"], Next: next, Now: o.now,
		Audit: budget.AuditEntry{UserID: "alice", Type: budget.AuditSettings, Actor: "root", At: o.now, Before: &before, After: &set}}); err != nil {
		t.Fatal(err)
	}
	set.Teams[0] = "changed after the call" // the store kept a copy
	got, err := s.Settings(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.Teams) != "[research z:w]" || got.Org != "acme" || len(got.ModelCaps) != 2 ||
		got.ModelCaps[0].Pattern != "claude-opus-*" || !got.ModelCaps[0].Limit.Equal(amt("50")) ||
		got.ModelCaps[1].Pattern != "gpt-4o?" || !got.ModelCaps[1].Limit.Equal(amt("0.000000001")) {
		t.Errorf("stored membership and caps: %+v %q %+v", got.Teams, got.Org, got.ModelCaps)
	}
	es, err := s.Audit(ctx, budget.AuditQuery{UserID: "alice", Type: budget.AuditSettings})
	if err != nil || len(es) != 1 || es[0].After == nil || fmt.Sprint(es[0].After.Teams) != "[research z:w]" ||
		es[0].After.Org != "acme" || len(es[0].After.ModelCaps) != 2 || len(es[0].Before.Teams) != 0 {
		t.Errorf("the audit entry keeps the membership before and after: %+v, %v", es, err)
	}
	for kind, want := range map[budget.ScopeKind][]string{
		"": {"alice", "bob"}, budget.UserScope: {"alice", "bob"}, budget.TeamScope: {teamKey}, budget.OrgScope: {orgKey},
	} {
		as, err := s.Accounts(ctx, budget.AccountsQuery{Kind: kind, Now: o.now})
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, a := range as {
			keys = append(keys, a.Settings.UserID)
		}
		if fmt.Sprint(keys) != fmt.Sprint(want) {
			t.Errorf("Accounts of kind %q: %q, want %q", kind, keys, want)
		}
	}
}
