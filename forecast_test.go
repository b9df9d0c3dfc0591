package budget_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/memory"
)

// TestForecast pins the clock at noon on 16 November 2026, halfway through
// a monthly period of 30 dollars (14.5 days left), and checks every figure
// of the forecast. The pace window is the 7 days before noon.
func TestForecast(t *testing.T) {
	created := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	now := time.Date(2026, 11, 16, 12, 0, 0, 0, time.UTC)
	week := now.Add(-7 * 24 * time.Hour)
	day := func(d, h int) time.Time { return time.Date(2026, 11, d, h, 0, 0, 0, time.UTC) }
	at := func(t time.Time) *time.Time { return &t }
	type spend struct {
		at   time.Time
		cost string
	}
	for _, c := range []struct {
		name     string
		update   budget.SettingsUpdate
		spend    []spend
		resetAt  time.Time
		held     string // reserved at now: never counted
		created  time.Time
		pace     string
		perDay   string
		spent    string
		proj     string
		limitAt  *time.Time
		exceeds  bool
		paceFrom time.Time
	}{
		{name: "no spend", pace: "0", perDay: "0", spent: "0", proj: "0"},
		{
			name:  "steady spend",
			spend: []spend{{day(1, 6), "1"}, {day(2, 6), "1"}, {day(3, 6), "1"}, {day(4, 6), "1"}, {day(5, 6), "1"}, {day(6, 6), "1"}, {day(7, 6), "1"}, {day(8, 6), "1"}, {day(9, 6), "1"}, {day(10, 6), "1"}, {day(11, 6), "1"}, {day(12, 6), "1"}, {day(13, 6), "1"}, {day(14, 6), "1"}, {day(15, 6), "1"}, {day(16, 6), "1"}},
			held:  "5",
			pace:  "7", perDay: "1", spent: "16", proj: "30.5",
			limitAt: at(day(30, 12)), exceeds: true,
		},
		{
			name:  "a burst yesterday",
			spend: []spend{{day(15, 15), "14"}},
			pace:  "14", perDay: "2", spent: "14", proj: "43",
			limitAt: at(day(24, 12)), exceeds: true,
		},
		{
			name:    "a reset mid-period",
			spend:   []spend{{day(10, 0), "20"}, {day(15, 12), "1"}},
			resetAt: day(14, 0),
			pace:    "21", perDay: "3", spent: "1", proj: "44.5",
			limitAt: at(time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC)), exceeds: true,
		},
		{
			name:   "a zero limit",
			update: budget.SettingsUpdate{Limit: ptr(budget.MustAmount("0"))},
			pace:   "0", perDay: "0", spent: "0", proj: "0",
			limitAt: at(now), // nothing can be spent: the limit is reached
		},
		{
			name:   "a zero limit with spend recorded",
			update: budget.SettingsUpdate{Limit: ptr(budget.MustAmount("0"))},
			spend:  []spend{{day(12, 0), "7"}},
			pace:   "7", perDay: "1", spent: "7", proj: "21.5",
			limitAt: at(now), exceeds: true,
		},
		{
			name:   "enforcement off",
			update: budget.SettingsUpdate{Enforce: ptr(false)},
			spend:  []spend{{day(3, 0), "45"}, {day(10, 0), "35"}},
			pace:   "35", perDay: "5", spent: "80", proj: "152.5",
			limitAt: at(now), exceeds: true,
		},
		{
			name:   "enforcement off, under the limit",
			update: budget.SettingsUpdate{Enforce: ptr(false)},
			spend:  []spend{{day(13, 0), "3.5"}},
			pace:   "3.5", perDay: "0.5", spent: "3.5", proj: "10.75",
		},
		{
			name:    "a budget an hour old",
			created: now.Add(-time.Hour),
			spend:   []spend{{now.Add(-30 * time.Minute), "1"}},
			pace:    "1", perDay: "1", spent: "1", proj: "15.5",
			paceFrom: now.Add(-time.Hour),
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			clock := created
			if !c.created.IsZero() {
				clock = c.created
			}
			m := testManager(memory.New(), &clock, budget.Options{})
			u := c.update
			if u.Limit == nil {
				u.Limit = ptr(budget.MustAmount("30"))
			}
			if _, err := m.UpdateSettings(ctx, admin, "u", u); err != nil {
				t.Fatal(err)
			}
			for _, s := range c.spend {
				if !c.resetAt.IsZero() && !s.at.Before(c.resetAt) && clock.Before(c.resetAt) {
					clock = c.resetAt
					if _, err := m.Reset(ctx, admin, "u", budget.ResetOptions{}); err != nil {
						t.Fatal(err)
					}
				}
				clock = s.at
				if _, err := m.Record(ctx, "u", budget.Usage{Model: "m", Cost: budget.MustAmount(s.cost)}); err != nil {
					t.Fatal(err)
				}
			}
			clock = now
			if c.held != "" {
				if _, err := m.Reserve(ctx, "u", budget.MustAmount(c.held)); err != nil {
					t.Fatal(err)
				}
			}
			st, err := m.Status(ctx, "u")
			if err != nil {
				t.Fatal(err)
			}
			f := st.Forecast
			if f == nil {
				t.Fatal("no forecast")
			}
			wantFrom := week
			if !c.paceFrom.IsZero() {
				wantFrom = c.paceFrom
			}
			if !f.PaceFrom.Equal(wantFrom) || !f.PaceTo.Equal(now) {
				t.Errorf("pace window [%s, %s), want [%s, %s)", f.PaceFrom, f.PaceTo, wantFrom, now)
			}
			for _, m := range []struct{ what, got, want string }{
				{"pace spend", f.PaceSpend.String(), c.pace},
				{"per day", f.PerDay.String(), c.perDay},
				{"spent", st.Spent.String(), c.spent},
				{"projected", f.Projected.String(), c.proj},
			} {
				if !budget.MustAmount(m.got).Equal(budget.MustAmount(m.want)) {
					t.Errorf("%s = %s, want %s", m.what, m.got, m.want)
				}
			}
			switch {
			case (f.LimitAt == nil) != (c.limitAt == nil):
				t.Errorf("limit at %v, want %v", f.LimitAt, c.limitAt)
			case f.LimitAt != nil && !f.LimitAt.Equal(*c.limitAt):
				t.Errorf("limit at %s, want %s", f.LimitAt, c.limitAt)
			}
			if f.Exceeds != c.exceeds {
				t.Errorf("exceeds = %v, want %v", f.Exceeds, c.exceeds)
			}
			// The same clock and usage give the same forecast.
			again, err := m.Status(ctx, "u")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again.Forecast, f) {
				t.Errorf("a second Status forecasts %+v, the first %+v", again.Forecast, f)
			}
		})
	}
}

// TestForecastOnlyInStatus checks that the calls on the hot path carry no
// forecast, and that StatusFor and BudgetStatus do.
func TestForecastOnlyInStatus(t *testing.T) {
	now := t0
	m := testManager(memory.New(), &now, budget.Options{})
	r, err := m.Reserve(ctx, "u", budget.MustAmount("1"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.Settle(ctx, budget.Usage{Cost: budget.MustAmount("1")})
	if err != nil || st.Forecast != nil {
		t.Errorf("Settle: forecast %v, %v", st.Forecast, err)
	}
	if st, err := m.Record(ctx, "u", budget.Usage{Cost: budget.MustAmount("1")}); err != nil || st.Forecast != nil {
		t.Errorf("Record: forecast %v, %v", st.Forecast, err)
	}
	if st, err := m.StatusFor(ctx, budget.Principal{UserID: "u"}, "u"); err != nil || st.Forecast == nil {
		t.Errorf("StatusFor: forecast %v, %v", st.Forecast, err)
	}
	if _, err := m.UpdateBudget(ctx, admin, budget.Team("t"), budget.SettingsUpdate{Limit: ptr(budget.MustAmount("5"))}); err != nil {
		t.Fatal(err)
	}
	if st, err := m.BudgetStatus(ctx, budget.Team("t")); err != nil || st.Forecast == nil {
		t.Errorf("BudgetStatus: forecast %v, %v", st.Forecast, err)
	}
}

// TestProjectionAlert checks that the projection alert is off by default,
// and on fires once per period, with its own kind.
func TestProjectionAlert(t *testing.T) {
	for _, on := range []bool{false, true} {
		now := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
		var got []budget.Alert
		m := testManager(memory.New(), &now, budget.Options{AlertOnProjection: on, OnAlert: func(a budget.Alert) { got = append(got, a) }})
		if _, err := m.UpdateSettings(ctx, admin, "u", budget.SettingsUpdate{Limit: ptr(budget.MustAmount("100"))}); err != nil {
			t.Fatal(err)
		}
		status := func() budget.Status {
			t.Helper()
			st, err := m.Status(ctx, "u")
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
		if _, err := m.Record(ctx, "u", budget.Usage{Cost: budget.MustAmount("10")}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(24 * time.Hour)
		if st := status(); !st.Forecast.Exceeds { // 10 a day, 20 days left: 210
			t.Fatalf("forecast %+v", st.Forecast)
		}
		status()
		if !on {
			if len(got) != 0 {
				t.Errorf("alerts without AlertOnProjection: %+v", got)
			}
			continue
		}
		if len(got) != 1 || got[0].Kind != budget.AlertProjection || got[0].Level != budget.Green || got[0].Status.Forecast == nil {
			t.Fatalf("alerts %+v, want one projection alert", got)
		}
		// A level alert says so.
		if _, err := m.Record(ctx, "u", budget.Usage{Cost: budget.MustAmount("70")}); err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[1].Kind != budget.AlertLevel || got[1].Level != budget.Yellow {
			t.Fatalf("alerts %+v, want a yellow level alert", got)
		}
		// The next period: once more.
		now = time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
		if _, err := m.Record(ctx, "u", budget.Usage{Cost: budget.MustAmount("50")}); err != nil {
			t.Fatal(err)
		}
		status()
		status()
		if n := len(got); n != 3 || got[2].Kind != budget.AlertProjection || !got[2].At.Equal(now) {
			t.Fatalf("alerts %+v, want a second projection alert in December", got)
		}
	}
}

// Daily lets the Manager's benchmarks (bench_test.go) call Status, whose
// forecast reads the store's daily totals: none here.
func (s *benchNopStore) Daily(context.Context, budget.DayTotalsQuery) ([]budget.DayTotals, error) {
	return nil, nil
}

// TestForecastFollowsSpend checks that a forecast never lags the spend:
// Status reuses its read of the rollups only while the spend and the
// quarter hour are the same, whichever Manager recorded the spend.
func TestForecastFollowsSpend(t *testing.T) {
	now := t0
	s := memory.New()
	m1, m2 := testManager(s, &now, budget.Options{}), testManager(s, &now, budget.Options{})
	pace := func() string {
		t.Helper()
		st, err := m1.Status(ctx, "u")
		if err != nil {
			t.Fatal(err)
		}
		return st.Forecast.PaceSpend.String()
	}
	if _, err := m1.Record(ctx, "u", budget.Usage{Cost: budget.MustAmount("1")}); err != nil {
		t.Fatal(err)
	}
	if got := pace(); got != "1" {
		t.Fatalf("pace spend %s, want 1", got)
	}
	if _, err := m2.Record(ctx, "u", budget.Usage{Cost: budget.MustAmount("2")}); err != nil {
		t.Fatal(err)
	}
	if got := pace(); got != "3" {
		t.Errorf("after another Manager's record: pace spend %s, want 3", got)
	}
	// Eight days on, the first week's spend is out of the window.
	now = now.Add(8 * 24 * time.Hour)
	if got := pace(); got != "0" {
		t.Errorf("a week later: pace spend %s, want 0", got)
	}
}

// TestListProjectedOver: the admin list's ProjectedOver filter keeps the
// users whose forecast passes their limit, and the summary still counts
// everyone.
func TestListProjectedOver(t *testing.T) {
	now := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
	m := testManager(memory.New(), &now, budget.Options{})
	for user, cost := range map[string]string{"fast": "10", "slow": "1", "idle": "0"} {
		if _, err := m.UpdateSettings(ctx, admin, user, budget.SettingsUpdate{Limit: ptr(budget.MustAmount("100"))}); err != nil {
			t.Fatal(err)
		}
		if cost != "0" {
			if _, err := m.Record(ctx, user, budget.Usage{Cost: budget.MustAmount(cost)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	now = now.Add(24 * time.Hour) // fast: 10 a day, 20 days left → 210 > 100; slow: 21
	page, err := m.ListUsers(ctx, admin, budget.UserQuery{ProjectedOver: true})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, u := range page.Users {
		ids = append(ids, u.Settings.UserID)
	}
	if !reflect.DeepEqual(ids, []string{"fast"}) {
		t.Errorf("projected over budget: %v, want [fast]", ids)
	}
	if page.Summary.Users < 3 {
		t.Errorf("the summary counts %d users, want every one", page.Summary.Users)
	}
	all, err := m.ListUsers(ctx, admin, budget.UserQuery{})
	if err != nil || len(all.Users) < 3 {
		t.Errorf("without the filter: %d users (%v)", len(all.Users), err)
	}
}
