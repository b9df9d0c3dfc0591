package storetest

// Cases of spend per local day (Store.Daily through Manager.Daily): days in
// the holder's time zone across DST changes and at offsets of half and
// quarter hours, series that sum exactly to the period's spend, range edges
// off the quarter hour, zones whose offsets are not whole quarter hours,
// teams, and permissions.

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmbudget/budget"
)

func init() {
	cases = append(cases, []struct {
		name string
		run  func(*testing.T, budget.Store)
	}{
		{"DailyAcrossDST", testDailyDST},
		{"DailyHalfAndQuarterHourZones", testDailyOffsets},
		{"DailySumsToPeriod", testDailySumsToPeriod},
		{"DailyOddZones", testDailyOddZones},
		{"DailyTeam", testDailyTeam},
		{"DailyPermissions", testDailyPermissions},
		{"DailyStoreZones", testDailyStoreZones},
		{"DailyAfterClockWentBack", testDailyClockBack},
	}...)
}

// recordAt records cost for user at instant at (moving the clock there).
func recordAt(t testing.TB, m *budget.Manager, c *Clock, user string, at time.Time, model, cost string) {
	t.Helper()
	c.Set(at)
	if _, err := m.Record(ctx, user, budget.Usage{Provider: "openai", Model: model, Cost: amt(cost), InputTokens: 10, OutputTokens: 1}); err != nil {
		t.Fatalf("record %s at %s: %v", user, at, err)
	}
}

// dailyOf returns the series of q as an admin sees it.
func dailyOf(t testing.TB, m *budget.Manager, q budget.DailyQuery) budget.DailySpend {
	t.Helper()
	d, err := m.Daily(ctx, admin, q)
	if err != nil {
		t.Fatalf("daily %+v: %v", q, err)
	}
	return d
}

// daysText writes a series as "date:total" items.
func daysText(d budget.DailySpend) string {
	var parts []string
	for _, day := range d.Days {
		parts = append(parts, day.Date+":"+day.Total.Cost.String())
	}
	return strings.Join(parts, " ")
}

// wantDays checks a series' days and that they sum to its total.
func wantDays(t testing.TB, d budget.DailySpend, want string) {
	t.Helper()
	if got := daysText(d); got != want {
		t.Errorf("days %s, want %s", got, want)
	}
	sum := amt("0")
	var reqs int64
	for _, day := range d.Days {
		sum = sum.Add(day.Total.Cost)
		reqs += day.Total.Requests
		var models = amt("0")
		for _, it := range day.ByModel {
			models = models.Add(it.Cost)
		}
		if !models.Equal(day.Total.Cost) {
			t.Errorf("%s: models sum to %s, the day to %s", day.Date, models, day.Total.Cost)
		}
	}
	if !sum.Equal(d.Total.Cost) || reqs != d.Total.Requests {
		t.Errorf("days sum to %s (%d calls), total %s (%d)", sum, reqs, d.Total.Cost, d.Total.Requests)
	}
}

func testDailyDST(t *testing.T, s budget.Store) {
	ny, _ := time.LoadLocation("America/New_York")
	c := NewClock(time.Date(2026, 10, 30, 12, 0, 0, 0, ny))
	m := newManager(s, c, budget.Options{})
	configure(t, m, "u", budget.SettingsUpdate{Timezone: ptr("America/New_York"), Limit: ptr(amt("1000"))})
	at := func(mo time.Month, d, h, min int, zone string) time.Time {
		off := map[string]int{"EDT": -4, "EST": -5}[zone]
		return time.Date(2026, mo, d, h, min, 0, 0, time.FixedZone(zone, off*3600))
	}
	const oct, nov = time.October, time.November
	// Sunday 1 November 2026: clocks fall back at 02:00 EDT to 01:00 EST,
	// a day of 25 hours.
	recordAt(t, m, c, "u", at(oct, 31, 23, 59, "EDT"), "a", "1")
	recordAt(t, m, c, "u", at(nov, 1, 0, 30, "EDT"), "a", "2")
	recordAt(t, m, c, "u", at(nov, 1, 1, 30, "EDT"), "a", "4")
	recordAt(t, m, c, "u", at(nov, 1, 1, 30, "EST"), "b", "8")
	recordAt(t, m, c, "u", at(nov, 1, 23, 59, "EST"), "b", "16")
	recordAt(t, m, c, "u", at(nov, 2, 0, 0, "EST"), "a", "32")
	d := dailyOf(t, m, budget.DailyQuery{UserID: "u", From: at(oct, 20, 0, 0, "EDT"), To: at(nov, 3, 0, 0, "EST")})
	wantDays(t, d, "2026-10-31:1 2026-11-01:30 2026-11-02:32")
	if d.Timezone != "America/New_York" {
		t.Errorf("timezone %q", d.Timezone)
	}
	one := d.Days[1]
	if got := one.End.Sub(one.Start); got != 25*time.Hour {
		t.Errorf("the day of the change lasts %s, want 25h", got)
	}
	if !one.Start.Equal(at(nov, 1, 0, 0, "EDT")) || one.Start.Location().String() != "America/New_York" {
		t.Errorf("the day starts %s", one.Start)
	}
	if got := fmt.Sprint(items(one.ByModel)); got != "[openai/b:24:2 openai/a:6:2]" {
		t.Errorf("by model %s", got)
	}
	// The current period (November, in New York) sums to Status.Spent.
	st := status(t, m, "u")
	p := dailyOf(t, m, budget.DailyQuery{UserID: "u"})
	if !p.Total.Cost.Equal(st.Spent) || !p.From.Equal(st.PeriodStart) || !p.To.Equal(st.PeriodEnd) {
		t.Errorf("period series %s over [%s, %s), status %s over [%s, %s)", p.Total.Cost, p.From, p.To, st.Spent, st.PeriodStart, st.PeriodEnd)
	}
	wantDays(t, p, "2026-11-01:30 2026-11-02:32")

	// Sunday 8 March 2026: clocks spring forward, a day of 23 hours.
	c2 := NewClock(time.Date(2026, 3, 7, 12, 0, 0, 0, ny))
	m2 := newManager(s, c2, budget.Options{})
	configure(t, m2, "v", budget.SettingsUpdate{Timezone: ptr("America/New_York"), Limit: ptr(amt("1000"))})
	recordAt(t, m2, c2, "v", time.Date(2026, 3, 8, 0, 15, 0, 0, ny), "a", "1")
	recordAt(t, m2, c2, "v", time.Date(2026, 3, 8, 3, 15, 0, 0, ny), "a", "2")
	recordAt(t, m2, c2, "v", time.Date(2026, 3, 8, 23, 45, 0, 0, ny), "a", "4")
	recordAt(t, m2, c2, "v", time.Date(2026, 3, 9, 0, 0, 0, 0, ny), "a", "8")
	d = dailyOf(t, m2, budget.DailyQuery{UserID: "v", From: time.Date(2026, 3, 1, 0, 0, 0, 0, ny), To: time.Date(2026, 3, 10, 0, 0, 0, 0, ny)})
	wantDays(t, d, "2026-03-08:7 2026-03-09:8")
	if got := d.Days[0].End.Sub(d.Days[0].Start); got != 23*time.Hour {
		t.Errorf("the spring day lasts %s, want 23h", got)
	}
}

func testDailyOffsets(t *testing.T, s budget.Store) {
	for _, z := range []struct {
		tz   string
		want string
	}{
		{"Asia/Kolkata", "2026-11-25:1 2026-11-26:6"},        // +05:30
		{"Asia/Kathmandu", "2026-11-25:1 2026-11-26:6"},      // +05:45
		{"Pacific/Chatham", "2026-11-25:1 2026-11-26:6"},     // +13:45 in (southern) summer
		{"America/St_Johns", "2026-11-25:1 2026-11-26:6"},    // -03:30
		{"Australia/Eucla", "2026-11-25:1 2026-11-26:6"},     // +08:45
		{"Pacific/Marquesas", "2026-11-25:1 2026-11-26:6"},   // -09:30
		{"Australia/Lord_Howe", "2026-11-25:1 2026-11-26:6"}, // +11:00 in summer (DST of half an hour)
	} {
		loc, err := time.LoadLocation(z.tz)
		if err != nil {
			t.Fatal(err)
		}
		user := "u-" + z.tz
		c := NewClock(time.Date(2026, 11, 25, 12, 0, 0, 0, loc))
		m := newManager(s, c, budget.Options{})
		configure(t, m, user, budget.SettingsUpdate{Timezone: &z.tz, Limit: ptr(amt("1000"))})
		midnight := time.Date(2026, 11, 26, 0, 0, 0, 0, loc)
		recordAt(t, m, c, user, midnight.Add(-time.Nanosecond), "a", "1") // the last instant of the 25th
		recordAt(t, m, c, user, midnight, "a", "2")
		recordAt(t, m, c, user, midnight.Add(24*time.Hour-time.Nanosecond), "a", "4")
		d := dailyOf(t, m, budget.DailyQuery{UserID: user, From: midnight.Add(-48 * time.Hour), To: midnight.Add(48 * time.Hour)})
		if got := daysText(d); got != z.want {
			t.Errorf("%s: days %s, want %s", z.tz, got, z.want)
		}
	}
}

// testDailySumsToPeriod records at random instants of a month (several
// calls within one quarter hour included), resets the budget partway
// through a quarter hour, and checks the series against the usage rows,
// day by day, and against Status.Spent: in Berlin (a DST change on 25
// October 2026: quarter-hour rollups) and in UTC (whole days from daily
// rollups, quarter hours at their edges).
func testDailySumsToPeriod(t *testing.T, s budget.Store) {
	for _, tz := range []string{"Europe/Berlin", "UTC"} {
		t.Run(strings.ReplaceAll(tz, "/", "-"), func(t *testing.T) { dailySumsToPeriod(t, s, tz) })
	}
}

func dailySumsToPeriod(t *testing.T, s budget.Store, tz string) {
	loc, _ := time.LoadLocation(tz)
	user := "u-" + tz
	begin := time.Date(2026, 10, 1, 0, 0, 0, 0, loc)
	c := NewClock(begin)
	m := newManager(s, c, budget.Options{})
	configure(t, m, user, budget.SettingsUpdate{Timezone: ptr(tz), Limit: ptr(amt("100000"))})
	rng := rand.New(rand.NewPCG(16, 16))
	at := begin
	models := []string{"a", "b", "c"}
	for i := 0; i < 300; i++ {
		at = at.Add(time.Duration(rng.Int64N(int64(6 * time.Hour))))
		if i%10 == 0 {
			at = at.Add(time.Duration(rng.Int64N(int64(time.Minute)))) // within the same quarter hour
		}
		cost := fmt.Sprintf("%d.%09d", rng.IntN(3), rng.IntN(1e9))
		recordAt(t, m, c, user, at, models[rng.IntN(len(models))], cost)
		if i == 150 { // reset 7 minutes and 1 ns into a quarter hour
			reset := at.Truncate(budget.QuarterHour).Add(7*time.Minute + 1)
			if !reset.After(at) {
				reset = reset.Add(budget.QuarterHour)
			}
			c.Set(reset)
			if _, err := m.Reset(ctx, admin, user, budget.ResetOptions{}); err != nil {
				t.Fatal(err)
			}
			at = reset
			recordAt(t, m, c, user, at, "a", "0.000000001") // at the reset's instant: counts after it
		}
	}
	end := at.Add(time.Hour)
	// Day by day against the rows.
	want := map[string]budget.Nanos{}
	var rows []budget.UsageRecord
	for cursor := ""; ; {
		p, err := m.History(ctx, budget.UsageQuery{UserID: user, Cursor: cursor, Limit: budget.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, p.Records...)
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	for _, r := range rows {
		n, _ := budget.ToNanos(r.Cost)
		want[r.At.In(loc).Format(time.DateOnly)] += n
	}
	d := dailyOf(t, m, budget.DailyQuery{UserID: user, From: begin, To: end})
	got := map[string]budget.Nanos{}
	for _, day := range d.Days {
		n, _ := budget.ToNanos(day.Total.Cost)
		got[day.Date] = n
	}
	if !maps.Equal(got, want) {
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if got[k] != want[k] {
				t.Errorf("%s: %s, rows say %s", k, got[k], want[k])
			}
		}
		t.Fatalf("the series differs from the rows")
	}
	wantDays(t, d, daysText(d))
	// The current period began at the reset: its series sums to Spent.
	c.Set(end)
	st := status(t, m, user)
	p := dailyOf(t, m, budget.DailyQuery{UserID: user})
	if !p.Total.Cost.Equal(st.Spent) || !p.From.Equal(st.PeriodStart) {
		t.Errorf("period series %s from %s, status %s from %s", p.Total.Cost, p.From, st.Spent, st.PeriodStart)
	}
	if len(p.Days) == 0 || !p.Days[0].Start.Equal(st.PeriodStart) {
		t.Errorf("the first day of the period does not start at the reset: %+v", p.Days)
	}
	// Any range, cut anywhere, sums like the rows.
	for i := 0; i < 20; i++ {
		a := begin.Add(time.Duration(rng.Int64N(int64(end.Sub(begin)))))
		b := a.Add(time.Duration(1 + rng.Int64N(int64(end.Sub(a)))))
		var sum budget.Nanos
		for _, r := range rows {
			if !r.At.Before(a) && r.At.Before(b) {
				n, _ := budget.ToNanos(r.Cost)
				sum += n
			}
		}
		d := dailyOf(t, m, budget.DailyQuery{UserID: user, From: a, To: b})
		if n, _ := budget.ToNanos(d.Total.Cost); n != sum {
			t.Errorf("[%s, %s): %s, rows say %s", a, b, n, sum)
		}
	}
}

// testDailyOddZones covers the pieces a store reads from usage rows: a zone
// whose offset is no whole number of quarter hours (Monrovia kept -0:44:30
// until 7 January 1972) and a change of offset one minute past a quarter
// hour (St John's, 5 April 1987, at 00:01 local time).
func testDailyOddZones(t *testing.T, s budget.Store) {
	mon, _ := time.LoadLocation("Africa/Monrovia")
	c := NewClock(time.Date(1971, 6, 1, 12, 0, 0, 0, mon))
	m := newManager(s, c, budget.Options{})
	configure(t, m, "mon", budget.SettingsUpdate{Timezone: ptr("Africa/Monrovia"), Limit: ptr(amt("1000"))})
	midnight := time.Date(1971, 6, 2, 0, 0, 0, 0, mon)
	recordAt(t, m, c, "mon", midnight.Add(-time.Nanosecond), "a", "1")
	recordAt(t, m, c, "mon", midnight, "a", "2")
	d := dailyOf(t, m, budget.DailyQuery{UserID: "mon", From: midnight.Add(-24 * time.Hour), To: midnight.Add(24 * time.Hour)})
	wantDays(t, d, "1971-06-01:1 1971-06-02:2")

	change := time.Date(1987, 4, 5, 3, 31, 0, 0, time.UTC) // 00:01 NST becomes 01:01 NDT
	c2 := NewClock(change.Add(-time.Hour))
	m2 := newManager(s, c2, budget.Options{})
	configure(t, m2, "sj", budget.SettingsUpdate{Timezone: ptr("America/St_Johns"), Limit: ptr(amt("1000"))})
	recordAt(t, m2, c2, "sj", change.Add(-2*time.Minute), "a", "1") // 23:59 NST on the 4th
	recordAt(t, m2, c2, "sj", change.Add(-time.Second), "a", "2")   // 00:00:59 NST on the 5th
	recordAt(t, m2, c2, "sj", change, "a", "4")                     // 01:01 NDT on the 5th
	d = dailyOf(t, m2, budget.DailyQuery{UserID: "sj", From: change.Add(-48 * time.Hour), To: change.Add(48 * time.Hour)})
	wantDays(t, d, "1987-04-04:1 1987-04-05:6")
	if got := d.Days[1].End.Sub(d.Days[1].Start); got != 23*time.Hour {
		t.Errorf("the day of the change lasts %s", got)
	}
}

func testDailyTeam(t *testing.T, s budget.Store) {
	c := NewClock(start)
	m := newManager(s, c, budget.Options{})
	if _, err := m.UpdateBudget(ctx, admin, budget.Team("t"), budget.SettingsUpdate{Limit: ptr(amt("100")), Timezone: ptr("Asia/Tokyo")}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetMembership(ctx, admin, "a", budget.Membership{Teams: []string{"t"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetMembership(ctx, admin, "b", budget.Membership{Teams: []string{"t"}}); err != nil {
		t.Fatal(err)
	}
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	day := time.Date(2026, 11, 27, 0, 0, 0, 0, tokyo)
	recordAt(t, m, c, "a", day.Add(-time.Minute), "m", "1")
	recordAt(t, m, c, "b", day, "m", "2")
	d := dailyOf(t, m, budget.DailyQuery{Scope: budget.Team("t"), From: day.Add(-24 * time.Hour), To: day.Add(24 * time.Hour)})
	wantDays(t, d, "2026-11-26:1 2026-11-27:2")
	if d.Scope != budget.Team("t") || d.Timezone != "Asia/Tokyo" {
		t.Errorf("scope %v timezone %q", d.Scope, d.Timezone)
	}
	// A user's own series is in the user's zone (UTC here).
	d = dailyOf(t, m, budget.DailyQuery{UserID: "a", From: day.Add(-24 * time.Hour), To: day.Add(24 * time.Hour)})
	wantDays(t, d, "2026-11-26:1")
}

func testDailyPermissions(t *testing.T, s budget.Store) {
	c := NewClock(start)
	m := newManager(s, c, budget.Options{})
	record(t, m, "alice", "x", "1")
	configure(t, m, "bob", budget.SettingsUpdate{Visible: ptr(false)})
	q := budget.DailyQuery{UserID: "alice"}
	if _, err := m.Daily(ctx, budget.Principal{UserID: "alice"}, q); err != nil {
		t.Errorf("own series: %v", err)
	}
	if _, err := m.Daily(ctx, budget.Principal{UserID: "bob"}, q); !errors.Is(err, budget.ErrForbidden) {
		t.Errorf("another user's series: %v, want ErrForbidden", err)
	}
	if _, err := m.Daily(ctx, budget.Principal{UserID: "bob"}, budget.DailyQuery{UserID: "bob"}); !errors.Is(err, budget.ErrForbidden) {
		t.Errorf("a hidden budget's series: %v, want ErrForbidden", err)
	}
	if _, err := m.UpdateBudget(ctx, admin, budget.Team("t"), limit("5")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Daily(ctx, budget.Principal{UserID: "alice"}, budget.DailyQuery{Scope: budget.Team("t")}); !errors.Is(err, budget.ErrForbidden) {
		t.Errorf("a team's series for a user: %v, want ErrForbidden", err)
	}
	if _, err := m.Daily(ctx, admin, budget.DailyQuery{Scope: budget.Team("none")}); !errors.Is(err, budget.ErrNotFound) {
		t.Errorf("an unknown team's series: %v, want ErrNotFound", err)
	}
	// Looking does not enrol anyone.
	if d, err := m.Daily(ctx, admin, budget.DailyQuery{UserID: "carol"}); err != nil || len(d.Days) != 0 {
		t.Errorf("a new user's series: %+v, %v", d, err)
	}
	if _, err := m.Lookup(ctx, "carol"); !errors.Is(err, budget.ErrNotFound) {
		t.Errorf("Daily enrolled carol: %v", err)
	}
	for _, bad := range []budget.DailyQuery{
		{UserID: "alice", From: start},
		{UserID: "alice", From: start, To: start},
		{UserID: "alice", Scope: budget.Team("t")},
		{},
	} {
		if _, err := m.Daily(ctx, admin, bad); !errors.Is(err, budget.ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", bad, err)
		}
	}
}

// testDailyStoreZones calls the store directly with made-up zones: an
// offset that falls back an hour across midnight, as some zones' clocks
// have. The store answers per zone and local day of that zone's offset;
// the Manager counts the instants that show yesterday's date again in the
// day that already began.
func testDailyStoreZones(t *testing.T, s budget.Store) {
	c := NewClock(start)
	m := newManager(s, c, budget.Options{})
	midnight := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC) // at offset +1h: 01:00
	// Offset +1h until midnight UTC, then 0: local 00:59 (day 27) falls
	// back to 23:59 (day 26) for an hour.
	for i, at := range []time.Duration{-90 * time.Minute, -30 * time.Minute, 30 * time.Minute, 90 * time.Minute} {
		recordAt(t, m, c, "u", midnight.Add(at), "a", fmt.Sprint(1<<i))
	}
	q := budget.DayTotalsQuery{UserID: "u", From: midnight.Add(-24 * time.Hour), To: midnight.Add(24 * time.Hour),
		Zones: []budget.ZoneSpan{{Start: midnight.Add(-24 * time.Hour), Offset: 3600}, {Start: midnight, Offset: 0}}}
	got, err := s.Daily(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, g := range got {
		parts = append(parts, fmt.Sprintf("%d/%s:%s:%d", g.Zone, time.Unix(g.Day*86400, 0).UTC().Format(time.DateOnly), g.Cost, g.Requests))
	}
	slices.Sort(parts)
	// Zone 0 (+1h): 22:30 and 23:30 UTC are 23:30 on the 26th and 00:30
	// on the 27th; zone 1 (UTC): 00:30 and 01:30 on the 27th.
	if want := "0/2026-11-26:1:1 0/2026-11-27:2:1 1/2026-11-27:12:2"; strings.Join(parts, " ") != want {
		t.Errorf("store days %s, want %s", strings.Join(parts, " "), want)
	}
	// A store reads zones; no zones, nothing.
	if got, err := s.Daily(ctx, budget.DayTotalsQuery{UserID: "u", From: q.From, To: q.To}); err != nil || len(got) != 0 {
		t.Errorf("no zones: %v, %v", got, err)
	}
	if got, err := s.Daily(ctx, budget.DayTotalsQuery{UserID: "nobody", From: q.From, To: q.To, Zones: q.Zones}); err != nil || len(got) != 0 {
		t.Errorf("unknown user: %v, %v", got, err)
	}
}

// testDailyClockBack records, between two reads of the series, usage at
// an earlier time than usage already recorded (a clock that went back, or
// another process's clock behind): the series counts it.
func testDailyClockBack(t *testing.T, s budget.Store) {
	c := NewClock(start)
	m := newManager(s, c, budget.Options{})
	day := start.Truncate(24 * time.Hour)
	q := budget.DailyQuery{UserID: "u", From: day, To: day.Add(24 * time.Hour)}
	recordAt(t, m, c, "u", start, "a", "1")
	recordAt(t, m, c, "u", start.Add(time.Hour), "a", "2")
	wantDays(t, dailyOf(t, m, q), "2026-11-26:3")
	recordAt(t, m, c, "u", start.Add(-time.Hour), "a", "4")
	recordAt(t, m, c, "u", start.Add(2*time.Hour), "b", "8")
	d := dailyOf(t, m, q)
	wantDays(t, d, "2026-11-26:15")
	if got := fmt.Sprint(items(d.Days[0].ByModel)); got != "[openai/b:8:1 openai/a:7:3]" {
		t.Errorf("by model %s", got)
	}
	// Status's forecast reads the same rollups, from the budget's
	// creation (at start: the call an hour before it is left out).
	if st := status(t, m, "u"); !st.Forecast.PaceSpend.Equal(amt("11")) {
		t.Errorf("pace spend %s, want 11", st.Forecast.PaceSpend)
	}
}
