package budget

import (
	"fmt"
	"testing"
	"time"
	_ "time/tzdata" // the zones below must load even where the system has no zoneinfo
)

// Period tests. Every expected instant is written with an explicit UTC
// offset (pwAt) so that a test never trusts time.Date's choice inside a DST
// gap or overlap, which is exactly what the code under test must not trust.

func pwLoc(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatalf("load %s: %v", name, err)
	}
	return loc
}

// pwAt is the instant whose clock reads the given local time at UTC offset
// off (as "+09:00", "-03:30").
func pwAt(tb testing.TB, off string, y int, m time.Month, d, h, mi int) time.Time {
	tb.Helper()
	s := fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:00%s", y, m, d, h, mi, off)
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// pwCase is a window expected for an instant.
type pwCase struct {
	name       string
	zone       string
	period     Period
	days       int
	anchor     time.Time
	t          time.Time
	start, end time.Time
	dur        time.Duration // if non-zero, the expected length
}

func pwRun(t *testing.T, cases []pwCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			loc := pwLoc(t, c.zone)
			w := PeriodWindow(c.period, c.days, c.anchor, loc, c.t)
			want := Window{c.start, c.end}
			if !w.Equal(want) {
				t.Errorf("PeriodWindow(%s, %d, %v, %s, %v)\n got %v (%v)\nwant %v (%v)", c.period, c.days, c.anchor, c.zone, c.t,
					pwIn(w, loc), w.End.Sub(w.Start), pwIn(want, loc), want.End.Sub(want.Start))
			}
			if c.dur != 0 && w.End.Sub(w.Start) != c.dur {
				t.Errorf("window %v lasts %v, want %v", pwIn(w, loc), w.End.Sub(w.Start), c.dur)
			}
			for _, err := range pwCheck(c.period, c.days, c.anchor, loc, c.t, w) {
				t.Error(err)
			}
		})
	}
}

func pwIn(w Window, loc *time.Location) Window { return Window{w.Start.In(loc), w.End.In(loc)} }

func TestPeriodDailyAcrossDST(t *testing.T) {
	var z time.Time
	pwRun(t, []pwCase{
		{"NewYork/ordinary", "America/New_York", Daily, 0, z, pwAt(t, "-05:00", 2026, 1, 15, 13, 0),
			pwAt(t, "-05:00", 2026, 1, 15, 0, 0), pwAt(t, "-05:00", 2026, 1, 16, 0, 0), 24 * time.Hour},
		{"NewYork/spring-forward-23h", "America/New_York", Daily, 0, z, pwAt(t, "-04:00", 2026, 3, 8, 12, 0),
			pwAt(t, "-05:00", 2026, 3, 8, 0, 0), pwAt(t, "-04:00", 2026, 3, 9, 0, 0), 23 * time.Hour},
		{"NewYork/spring-forward-just-before-gap", "America/New_York", Daily, 0, z, pwAt(t, "-05:00", 2026, 3, 8, 1, 59),
			pwAt(t, "-05:00", 2026, 3, 8, 0, 0), pwAt(t, "-04:00", 2026, 3, 9, 0, 0), 23 * time.Hour},
		{"NewYork/fall-back-25h", "America/New_York", Daily, 0, z, pwAt(t, "-05:00", 2026, 11, 1, 12, 0),
			pwAt(t, "-04:00", 2026, 11, 1, 0, 0), pwAt(t, "-05:00", 2026, 11, 2, 0, 0), 25 * time.Hour},
		{"NewYork/fall-back-repeated-hour-second-pass", "America/New_York", Daily, 0, z, pwAt(t, "-05:00", 2026, 11, 1, 1, 30),
			pwAt(t, "-04:00", 2026, 11, 1, 0, 0), pwAt(t, "-05:00", 2026, 11, 2, 0, 0), 25 * time.Hour},
		{"NewYork/last-instant-of-day", "America/New_York", Daily, 0, z, pwAt(t, "-05:00", 2026, 11, 2, 0, 0).Add(-time.Nanosecond),
			pwAt(t, "-04:00", 2026, 11, 1, 0, 0), pwAt(t, "-05:00", 2026, 11, 2, 0, 0), 25 * time.Hour},
		{"NewYork/given-in-UTC", "America/New_York", Daily, 0, z, pwAt(t, "Z", 2026, 3, 9, 3, 59),
			pwAt(t, "-05:00", 2026, 3, 8, 0, 0), pwAt(t, "-04:00", 2026, 3, 9, 0, 0), 23 * time.Hour},
		{"London/spring-forward-23h", "Europe/London", Daily, 0, z, pwAt(t, "+01:00", 2026, 3, 29, 9, 0),
			pwAt(t, "Z", 2026, 3, 29, 0, 0), pwAt(t, "+01:00", 2026, 3, 30, 0, 0), 23 * time.Hour},
		{"London/day-before-spring-forward", "Europe/London", Daily, 0, z, pwAt(t, "Z", 2026, 3, 28, 23, 59),
			pwAt(t, "Z", 2026, 3, 28, 0, 0), pwAt(t, "Z", 2026, 3, 29, 0, 0), 24 * time.Hour},
		{"London/fall-back-25h", "Europe/London", Daily, 0, z, pwAt(t, "Z", 2026, 10, 25, 1, 30),
			pwAt(t, "+01:00", 2026, 10, 25, 0, 0), pwAt(t, "Z", 2026, 10, 26, 0, 0), 25 * time.Hour},
		{"London/UTC-midnight-is-BST-1am", "Europe/London", Daily, 0, z, pwAt(t, "Z", 2026, 7, 1, 0, 0),
			pwAt(t, "+01:00", 2026, 7, 1, 0, 0), pwAt(t, "+01:00", 2026, 7, 2, 0, 0), 24 * time.Hour},
		{"London/midnight-exactly-starts-day", "Europe/London", Daily, 0, z, pwAt(t, "+01:00", 2026, 7, 1, 0, 0),
			pwAt(t, "+01:00", 2026, 7, 1, 0, 0), pwAt(t, "+01:00", 2026, 7, 2, 0, 0), 24 * time.Hour},
	})
}

func TestPeriodWeekly(t *testing.T) {
	var z time.Time
	week := 7 * 24 * time.Hour
	pwRun(t, []pwCase{
		{"NewYork/thursday", "America/New_York", Weekly, 0, z, pwAt(t, "-04:00", 2026, 3, 12, 15, 0),
			pwAt(t, "-04:00", 2026, 3, 9, 0, 0), pwAt(t, "-04:00", 2026, 3, 16, 0, 0), week},
		{"NewYork/sunday-23:59-is-previous-week", "America/New_York", Weekly, 0, z, pwAt(t, "-04:00", 2026, 3, 8, 23, 59),
			pwAt(t, "-05:00", 2026, 3, 2, 0, 0), pwAt(t, "-04:00", 2026, 3, 9, 0, 0), week - time.Hour},
		{"NewYork/sunday-last-nanosecond", "America/New_York", Weekly, 0, z, pwAt(t, "-04:00", 2026, 3, 9, 0, 0).Add(-time.Nanosecond),
			pwAt(t, "-05:00", 2026, 3, 2, 0, 0), pwAt(t, "-04:00", 2026, 3, 9, 0, 0), week - time.Hour},
		{"NewYork/monday-midnight-starts-week", "America/New_York", Weekly, 0, z, pwAt(t, "-04:00", 2026, 3, 9, 0, 0),
			pwAt(t, "-04:00", 2026, 3, 9, 0, 0), pwAt(t, "-04:00", 2026, 3, 16, 0, 0), week},
		{"NewYork/week-with-fall-back", "America/New_York", Weekly, 0, z, pwAt(t, "-05:00", 2026, 11, 4, 12, 0),
			pwAt(t, "-05:00", 2026, 11, 2, 0, 0), pwAt(t, "-05:00", 2026, 11, 9, 0, 0), week},
		{"NewYork/week-holding-fall-back-sunday", "America/New_York", Weekly, 0, z, pwAt(t, "-05:00", 2026, 11, 1, 23, 0),
			pwAt(t, "-04:00", 2026, 10, 26, 0, 0), pwAt(t, "-05:00", 2026, 11, 2, 0, 0), week + time.Hour},
		{"Tokyo/saturday-in-UTC-is-sunday-local", "Asia/Tokyo", Weekly, 0, z, pwAt(t, "Z", 2026, 5, 16, 20, 0),
			pwAt(t, "+09:00", 2026, 5, 11, 0, 0), pwAt(t, "+09:00", 2026, 5, 18, 0, 0), week},
		{"Tokyo/sunday-in-UTC-is-monday-local", "Asia/Tokyo", Weekly, 0, z, pwAt(t, "Z", 2026, 5, 17, 15, 0),
			pwAt(t, "+09:00", 2026, 5, 18, 0, 0), pwAt(t, "+09:00", 2026, 5, 25, 0, 0), week},
		{"Kolkata/week-across-month-and-year", "Asia/Kolkata", Weekly, 0, z, pwAt(t, "+05:30", 2027, 1, 1, 8, 0),
			pwAt(t, "+05:30", 2026, 12, 28, 0, 0), pwAt(t, "+05:30", 2027, 1, 4, 0, 0), week},
	})
}

func TestPeriodMonthly(t *testing.T) {
	var z time.Time
	day := 24 * time.Hour
	pwRun(t, []pwCase{
		{"Tokyo/jan-31", "Asia/Tokyo", Monthly, 0, z, pwAt(t, "+09:00", 2027, 1, 31, 23, 59),
			pwAt(t, "+09:00", 2027, 1, 1, 0, 0), pwAt(t, "+09:00", 2027, 2, 1, 0, 0), 31 * day},
		{"Tokyo/feb-29-leap", "Asia/Tokyo", Monthly, 0, z, pwAt(t, "+09:00", 2028, 2, 29, 12, 0),
			pwAt(t, "+09:00", 2028, 2, 1, 0, 0), pwAt(t, "+09:00", 2028, 3, 1, 0, 0), 29 * day},
		{"Tokyo/feb-28-non-leap", "Asia/Tokyo", Monthly, 0, z, pwAt(t, "+09:00", 2027, 2, 28, 12, 0),
			pwAt(t, "+09:00", 2027, 2, 1, 0, 0), pwAt(t, "+09:00", 2027, 3, 1, 0, 0), 28 * day},
		{"Tokyo/dec-31-ends-next-year", "Asia/Tokyo", Monthly, 0, z, pwAt(t, "+09:00", 2027, 1, 1, 0, 0).Add(-time.Nanosecond),
			pwAt(t, "+09:00", 2026, 12, 1, 0, 0), pwAt(t, "+09:00", 2027, 1, 1, 0, 0), 31 * day},
		{"Tokyo/jan-1-midnight-starts-month", "Asia/Tokyo", Monthly, 0, z, pwAt(t, "+09:00", 2027, 1, 1, 0, 0),
			pwAt(t, "+09:00", 2027, 1, 1, 0, 0), pwAt(t, "+09:00", 2027, 2, 1, 0, 0), 31 * day},
		{"Tokyo/utc-jan-31-is-feb-local", "Asia/Tokyo", Monthly, 0, z, pwAt(t, "Z", 2026, 1, 31, 15, 0),
			pwAt(t, "+09:00", 2026, 2, 1, 0, 0), pwAt(t, "+09:00", 2026, 3, 1, 0, 0), 28 * day},
		{"LosAngeles/jan-31", "America/Los_Angeles", Monthly, 0, z, pwAt(t, "-08:00", 2027, 1, 31, 23, 59),
			pwAt(t, "-08:00", 2027, 1, 1, 0, 0), pwAt(t, "-08:00", 2027, 2, 1, 0, 0), 31 * day},
		{"LosAngeles/feb-29-leap", "America/Los_Angeles", Monthly, 0, z, pwAt(t, "-08:00", 2028, 2, 29, 12, 0),
			pwAt(t, "-08:00", 2028, 2, 1, 0, 0), pwAt(t, "-08:00", 2028, 3, 1, 0, 0), 29 * day},
		{"LosAngeles/dec-31-ends-next-year", "America/Los_Angeles", Monthly, 0, z, pwAt(t, "-08:00", 2026, 12, 31, 23, 59),
			pwAt(t, "-08:00", 2026, 12, 1, 0, 0), pwAt(t, "-08:00", 2027, 1, 1, 0, 0), 31 * day},
		{"LosAngeles/utc-mar-1-is-feb-local", "America/Los_Angeles", Monthly, 0, z, pwAt(t, "Z", 2026, 3, 1, 5, 0),
			pwAt(t, "-08:00", 2026, 2, 1, 0, 0), pwAt(t, "-08:00", 2026, 3, 1, 0, 0), 28 * day},
		{"LosAngeles/march-with-spring-forward", "America/Los_Angeles", Monthly, 0, z, pwAt(t, "-07:00", 2026, 3, 31, 23, 0),
			pwAt(t, "-08:00", 2026, 3, 1, 0, 0), pwAt(t, "-07:00", 2026, 4, 1, 0, 0), 31*day - time.Hour},
		{"LosAngeles/november-with-fall-back", "America/Los_Angeles", Monthly, 0, z, pwAt(t, "-08:00", 2026, 11, 15, 0, 0),
			pwAt(t, "-07:00", 2026, 11, 1, 0, 0), pwAt(t, "-08:00", 2026, 12, 1, 0, 0), 30*day + time.Hour},
		{"UTC/feb-29-leap", "UTC", Monthly, 0, z, pwAt(t, "Z", 2028, 2, 29, 23, 59),
			pwAt(t, "Z", 2028, 2, 1, 0, 0), pwAt(t, "Z", 2028, 3, 1, 0, 0), 29 * day},
	})

	// The end of every month is exactly the start of the next, through a
	// leap year, in both zones.
	for _, zone := range []string{"Asia/Tokyo", "America/Los_Angeles"} {
		t.Run(zone+"/end-is-next-start", func(t *testing.T) {
			loc := pwLoc(t, zone)
			for m := 0; m < 36; m++ {
				mid := time.Date(2027, time.January+time.Month(m), 15, 12, 0, 0, 0, loc)
				w := PeriodWindow(Monthly, 0, time.Time{}, loc, mid)
				next := PeriodWindow(Monthly, 0, time.Time{}, loc, mid.AddDate(0, 1, 0))
				if !w.End.Equal(next.Start) {
					t.Errorf("%v ends at %v but the next month starts at %v", pwIn(w, loc), w.End.In(loc), next.Start.In(loc))
				}
				if d := w.Start.In(loc); d.Day() != 1 || d.Hour() != 0 || d.Minute() != 0 || d.Month() != mid.Month() {
					t.Errorf("month of %v starts at %v", mid, d)
				}
			}
		})
	}
}

func TestPeriodCustom(t *testing.T) {
	day := 24 * time.Hour
	ny := "America/New_York"
	anchor := pwAt(t, "-05:00", 2026, 1, 5, 9, 30) // a Monday, 09:30 in New York
	anchorUTC := anchor.UTC()                      // the same instant: only its wall clock in the zone matters
	gapAnchor := pwAt(t, "-05:00", 2026, 3, 1, 2, 30)
	foldAnchor := pwAt(t, "-04:00", 2026, 10, 25, 1, 30)
	pwRun(t, []pwCase{
		{"N3/after-anchor", ny, Custom, 3, anchor, pwAt(t, "-05:00", 2026, 1, 10, 12, 0),
			pwAt(t, "-05:00", 2026, 1, 8, 9, 30), pwAt(t, "-05:00", 2026, 1, 11, 9, 30), 3 * day},
		{"N3/anchor-given-in-UTC", ny, Custom, 3, anchorUTC, pwAt(t, "-05:00", 2026, 1, 10, 12, 0),
			pwAt(t, "-05:00", 2026, 1, 8, 9, 30), pwAt(t, "-05:00", 2026, 1, 11, 9, 30), 3 * day},
		{"N3/at-anchor", ny, Custom, 3, anchor, anchor,
			pwAt(t, "-05:00", 2026, 1, 5, 9, 30), pwAt(t, "-05:00", 2026, 1, 8, 9, 30), 3 * day},
		{"N3/exactly-at-boundary", ny, Custom, 3, anchor, pwAt(t, "-05:00", 2026, 1, 8, 9, 30),
			pwAt(t, "-05:00", 2026, 1, 8, 9, 30), pwAt(t, "-05:00", 2026, 1, 11, 9, 30), 3 * day},
		{"N3/just-before-boundary", ny, Custom, 3, anchor, pwAt(t, "-05:00", 2026, 1, 8, 9, 30).Add(-time.Nanosecond),
			pwAt(t, "-05:00", 2026, 1, 5, 9, 30), pwAt(t, "-05:00", 2026, 1, 8, 9, 30), 3 * day},
		{"N3/before-anchor", ny, Custom, 3, anchor, pwAt(t, "-05:00", 2026, 1, 4, 10, 0),
			pwAt(t, "-05:00", 2026, 1, 2, 9, 30), pwAt(t, "-05:00", 2026, 1, 5, 9, 30), 3 * day},
		{"N3/just-before-anchor", ny, Custom, 3, anchor, anchor.Add(-time.Nanosecond),
			pwAt(t, "-05:00", 2026, 1, 2, 9, 30), pwAt(t, "-05:00", 2026, 1, 5, 9, 30), 3 * day},
		{"N3/a-year-before-anchor", ny, Custom, 3, anchor, pwAt(t, "-05:00", 2025, 1, 5, 9, 30), // 366 days before is a boundary
			pwAt(t, "-05:00", 2025, 1, 4, 9, 30), pwAt(t, "-05:00", 2025, 1, 7, 9, 30), 3 * day},
		{"N14/across-spring-forward-keeps-wall-clock", ny, Custom, 14, anchor, pwAt(t, "-04:00", 2026, 3, 10, 0, 0),
			pwAt(t, "-05:00", 2026, 3, 2, 9, 30), pwAt(t, "-04:00", 2026, 3, 16, 9, 30), 14*day - time.Hour},
		{"N14/across-fall-back-keeps-wall-clock", ny, Custom, 14, anchor, pwAt(t, "-05:00", 2026, 11, 2, 0, 0),
			pwAt(t, "-04:00", 2026, 10, 26, 9, 30), pwAt(t, "-05:00", 2026, 11, 9, 9, 30), 14*day + time.Hour},
		{"N14/before-anchor", ny, Custom, 14, anchor, pwAt(t, "-05:00", 2025, 12, 25, 0, 0),
			pwAt(t, "-05:00", 2025, 12, 22, 9, 30), pwAt(t, "-05:00", 2026, 1, 5, 9, 30), 14 * day},
		{"N14/before-anchor-across-DST", ny, Custom, 14, anchor, pwAt(t, "-04:00", 2025, 11, 1, 12, 0),
			pwAt(t, "-04:00", 2025, 10, 27, 9, 30), pwAt(t, "-05:00", 2025, 11, 10, 9, 30), 14*day + time.Hour},
		{"London/N7-across-fall-back", "Europe/London", Custom, 7, pwAt(t, "+01:00", 2026, 10, 20, 18, 0), pwAt(t, "Z", 2026, 10, 27, 17, 59),
			pwAt(t, "+01:00", 2026, 10, 20, 18, 0), pwAt(t, "Z", 2026, 10, 27, 18, 0), 7*day + time.Hour},
		{"days-0-means-1", ny, Custom, 0, anchor, pwAt(t, "-05:00", 2026, 1, 7, 9, 0),
			pwAt(t, "-05:00", 2026, 1, 6, 9, 30), pwAt(t, "-05:00", 2026, 1, 7, 9, 30), day},
		// A boundary whose wall-clock time is skipped starts when the clock
		// passes it, at the end of the gap, not an hour early.
		{"gap/boundary-at-end-of-gap", ny, Custom, 1, gapAnchor, pwAt(t, "-04:00", 2026, 3, 8, 12, 0),
			pwAt(t, "-04:00", 2026, 3, 8, 3, 0), pwAt(t, "-04:00", 2026, 3, 9, 2, 30), day - 30*time.Minute},
		{"gap/before-the-gap-is-previous-period", ny, Custom, 1, gapAnchor, pwAt(t, "-05:00", 2026, 3, 8, 1, 45),
			pwAt(t, "-05:00", 2026, 3, 7, 2, 30), pwAt(t, "-04:00", 2026, 3, 8, 3, 0), day - 30*time.Minute},
		// A boundary whose wall-clock time repeats is its first occurrence.
		{"fold/first-occurrence", ny, Custom, 1, foldAnchor, pwAt(t, "-05:00", 2026, 11, 1, 1, 15),
			pwAt(t, "-04:00", 2026, 11, 1, 1, 30), pwAt(t, "-05:00", 2026, 11, 2, 1, 30), day + time.Hour},
		{"fold/before-first-occurrence", ny, Custom, 1, foldAnchor, pwAt(t, "-04:00", 2026, 11, 1, 1, 15),
			pwAt(t, "-04:00", 2026, 10, 31, 1, 30), pwAt(t, "-04:00", 2026, 11, 1, 1, 30), day},
		{"far/300-years-after-anchor", "UTC", Custom, 1, pwAt(t, "Z", 1901, 1, 1, 6, 0), pwAt(t, "Z", 2199, 1, 1, 5, 0),
			pwAt(t, "Z", 2198, 12, 31, 6, 0), pwAt(t, "Z", 2199, 1, 1, 6, 0), day},
		{"far/300-years-before-anchor", "Asia/Tokyo", Custom, 7, pwAt(t, "+09:00", 2199, 1, 1, 6, 0), pwAt(t, "+09:00", 1901, 1, 1, 5, 0),
			pwAt(t, "+09:00", 1900, 12, 25, 6, 0), pwAt(t, "+09:00", 1901, 1, 1, 6, 0), 7 * day}, // 108850 days = 15550 weeks
	})
}

// TestPeriodMidnightDSTZones covers zones whose DST changes happen at local
// midnight, and days a zone skipped entirely.
func TestPeriodMidnightDSTZones(t *testing.T) {
	var z time.Time
	day := 24 * time.Hour
	pwRun(t, []pwCase{
		// Sao Paulo sprang forward at midnight: 2018-11-04 began at 01:00.
		{"SaoPaulo/day-starts-at-1am", "America/Sao_Paulo", Daily, 0, z, pwAt(t, "-02:00", 2018, 11, 4, 12, 0),
			pwAt(t, "-02:00", 2018, 11, 4, 1, 0), pwAt(t, "-02:00", 2018, 11, 5, 0, 0), 23 * time.Hour},
		{"SaoPaulo/first-instant-of-day", "America/Sao_Paulo", Daily, 0, z, pwAt(t, "-02:00", 2018, 11, 4, 1, 0),
			pwAt(t, "-02:00", 2018, 11, 4, 1, 0), pwAt(t, "-02:00", 2018, 11, 5, 0, 0), 23 * time.Hour},
		{"SaoPaulo/day-before", "America/Sao_Paulo", Daily, 0, z, pwAt(t, "-03:00", 2018, 11, 3, 23, 59),
			pwAt(t, "-03:00", 2018, 11, 3, 0, 0), pwAt(t, "-02:00", 2018, 11, 4, 1, 0), day},
		{"SaoPaulo/fall-back-at-midnight", "America/Sao_Paulo", Daily, 0, z, pwAt(t, "-03:00", 2019, 2, 16, 23, 30),
			pwAt(t, "-02:00", 2019, 2, 16, 0, 0), pwAt(t, "-03:00", 2019, 2, 17, 0, 0), 25 * time.Hour},
		{"SaoPaulo/month", "America/Sao_Paulo", Monthly, 0, z, pwAt(t, "-02:00", 2018, 11, 4, 12, 0),
			pwAt(t, "-03:00", 2018, 11, 1, 0, 0), pwAt(t, "-02:00", 2018, 12, 1, 0, 0), 30*day - time.Hour},
		{"Santiago/day-starts-at-1am", "America/Santiago", Daily, 0, z, pwAt(t, "-03:00", 2024, 9, 8, 12, 0),
			pwAt(t, "-03:00", 2024, 9, 8, 1, 0), pwAt(t, "-03:00", 2024, 9, 9, 0, 0), 23 * time.Hour},
		{"Santiago/week-of-skipped-sunday-midnight", "America/Santiago", Weekly, 0, z, pwAt(t, "-03:00", 2024, 9, 8, 12, 0),
			pwAt(t, "-04:00", 2024, 9, 2, 0, 0), pwAt(t, "-03:00", 2024, 9, 9, 0, 0), 7*day - time.Hour},
		{"Havana/day-starts-at-1am", "America/Havana", Daily, 0, z, pwAt(t, "-04:00", 2025, 3, 9, 12, 0),
			pwAt(t, "-04:00", 2025, 3, 9, 1, 0), pwAt(t, "-04:00", 2025, 3, 10, 0, 0), 23 * time.Hour},
		// Havana fell back from 01:00 to 00:00: the day starts at the first
		// of its two midnights.
		{"Havana/first-of-two-midnights", "America/Havana", Daily, 0, z, pwAt(t, "-05:00", 2025, 11, 2, 0, 30),
			pwAt(t, "-04:00", 2025, 11, 2, 0, 0), pwAt(t, "-05:00", 2025, 11, 3, 0, 0), 25 * time.Hour},
		{"Havana/second-midnight-is-inside", "America/Havana", Daily, 0, z, pwAt(t, "-05:00", 2025, 11, 2, 0, 0),
			pwAt(t, "-04:00", 2025, 11, 2, 0, 0), pwAt(t, "-05:00", 2025, 11, 3, 0, 0), 25 * time.Hour},
		// St. John's fell back from 00:01 to 23:01 the day before: the
		// clock showed 2010-11-06 again for an hour after 11-07 began.
		{"StJohns/repeated-hour-of-previous-date", "America/St_Johns", Daily, 0, z, pwAt(t, "-03:30", 2010, 11, 6, 23, 30),
			pwAt(t, "-02:30", 2010, 11, 7, 0, 0), pwAt(t, "-03:30", 2010, 11, 8, 0, 0), 25 * time.Hour},
		{"StJohns/day-before-the-repeat", "America/St_Johns", Daily, 0, z, pwAt(t, "-02:30", 2010, 11, 6, 23, 30),
			pwAt(t, "-02:30", 2010, 11, 6, 0, 0), pwAt(t, "-02:30", 2010, 11, 7, 0, 0), day},
		{"StJohns/week-after-repeat", "America/St_Johns", Weekly, 0, z, pwAt(t, "-03:30", 2010, 11, 6, 23, 30),
			pwAt(t, "-02:30", 2010, 11, 1, 0, 0), pwAt(t, "-03:30", 2010, 11, 8, 0, 0), 7*day + time.Hour},
		// ... and in 2009 that repeat crossed into the previous month.
		{"StJohns/month-after-repeat", "America/St_Johns", Monthly, 0, z, pwAt(t, "-03:30", 2009, 10, 31, 23, 30),
			pwAt(t, "-02:30", 2009, 11, 1, 0, 0), pwAt(t, "-03:30", 2009, 12, 1, 0, 0), 30*day + time.Hour},
		{"StJohns/month-before-repeat", "America/St_Johns", Monthly, 0, z, pwAt(t, "-02:30", 2009, 10, 31, 23, 30),
			pwAt(t, "-02:30", 2009, 10, 1, 0, 0), pwAt(t, "-02:30", 2009, 11, 1, 0, 0), 31 * day},
		// Apia skipped 2011-12-30: the 29th ended (UTC-10) straight into
		// the 31st (UTC+14).
		{"Apia/dec-29", "Pacific/Apia", Daily, 0, z, pwAt(t, "-10:00", 2011, 12, 29, 12, 0),
			pwAt(t, "-10:00", 2011, 12, 29, 0, 0), pwAt(t, "+14:00", 2011, 12, 31, 0, 0), day},
		{"Apia/dec-29-last-instant", "Pacific/Apia", Daily, 0, z, pwAt(t, "+14:00", 2011, 12, 31, 0, 0).Add(-time.Nanosecond),
			pwAt(t, "-10:00", 2011, 12, 29, 0, 0), pwAt(t, "+14:00", 2011, 12, 31, 0, 0), day},
		{"Apia/dec-31", "Pacific/Apia", Daily, 0, z, pwAt(t, "+14:00", 2011, 12, 31, 0, 0),
			pwAt(t, "+14:00", 2011, 12, 31, 0, 0), pwAt(t, "+14:00", 2012, 1, 1, 0, 0), day},
		{"Apia/six-day-week", "Pacific/Apia", Weekly, 0, z, pwAt(t, "+14:00", 2011, 12, 31, 12, 0),
			pwAt(t, "-10:00", 2011, 12, 26, 0, 0), pwAt(t, "+14:00", 2012, 1, 2, 0, 0), 6 * day},
		{"Apia/thirty-day-december", "Pacific/Apia", Monthly, 0, z, pwAt(t, "-10:00", 2011, 12, 29, 12, 0),
			pwAt(t, "-10:00", 2011, 12, 1, 0, 0), pwAt(t, "+14:00", 2012, 1, 1, 0, 0), 30 * day},
		{"Apia/custom-before-skip", "Pacific/Apia", Custom, 1, pwAt(t, "-10:00", 2011, 12, 1, 10, 0), pwAt(t, "-10:00", 2011, 12, 29, 12, 0),
			pwAt(t, "-10:00", 2011, 12, 29, 10, 0), pwAt(t, "+14:00", 2011, 12, 31, 0, 0), 14 * time.Hour},
		{"Apia/custom-period-of-skipped-day", "Pacific/Apia", Custom, 1, pwAt(t, "-10:00", 2011, 12, 1, 10, 0), pwAt(t, "+14:00", 2011, 12, 31, 5, 0),
			pwAt(t, "+14:00", 2011, 12, 31, 0, 0), pwAt(t, "+14:00", 2011, 12, 31, 10, 0), 10 * time.Hour},
		{"Apia/custom-after-skip", "Pacific/Apia", Custom, 1, pwAt(t, "-10:00", 2011, 12, 1, 10, 0), pwAt(t, "+14:00", 2011, 12, 31, 12, 0),
			pwAt(t, "+14:00", 2011, 12, 31, 10, 0), pwAt(t, "+14:00", 2012, 1, 1, 10, 0), day},
	})
}

// TestStartOfDay pins the first instant of local dates in the awkward
// cases, including the skipped date and a date past the zone's transition
// table in a leap year (where time.ZoneBounds reports an already-passed
// bound).
func TestStartOfDay(t *testing.T) {
	cases := []struct {
		zone string
		y    int
		m    time.Month
		d    int
		want time.Time
	}{
		{"UTC", 2026, 1, 1, pwAt(t, "Z", 2026, 1, 1, 0, 0)},
		{"America/New_York", 2026, 3, 8, pwAt(t, "-05:00", 2026, 3, 8, 0, 0)},
		{"America/New_York", 2026, 3, 9, pwAt(t, "-04:00", 2026, 3, 9, 0, 0)},
		{"America/New_York", 2026, 2, 29, pwAt(t, "-05:00", 2026, 3, 1, 0, 0)}, // normalized like time.Date
		{"America/New_York", 2040, 12, 31, pwAt(t, "-05:00", 2040, 12, 31, 0, 0)},
		{"America/New_York", 2041, 1, 1, pwAt(t, "-05:00", 2041, 1, 1, 0, 0)},
		{"Australia/Sydney", 2041, 1, 1, pwAt(t, "+11:00", 2041, 1, 1, 0, 0)},
		{"America/Sao_Paulo", 2018, 11, 4, pwAt(t, "-02:00", 2018, 11, 4, 1, 0)},
		{"America/Havana", 2025, 11, 2, pwAt(t, "-04:00", 2025, 11, 2, 0, 0)},
		{"America/St_Johns", 2010, 11, 7, pwAt(t, "-02:30", 2010, 11, 7, 0, 0)},
		{"Pacific/Apia", 2011, 12, 29, pwAt(t, "-10:00", 2011, 12, 29, 0, 0)},
		{"Pacific/Apia", 2011, 12, 30, pwAt(t, "+14:00", 2011, 12, 31, 0, 0)},
		{"Pacific/Apia", 2011, 12, 31, pwAt(t, "+14:00", 2011, 12, 31, 0, 0)},
		{"Pacific/Kiritimati", 1994, 12, 31, pwAt(t, "+14:00", 1995, 1, 1, 0, 0)},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%04d-%02d-%02d", c.zone, c.y, c.m, c.d), func(t *testing.T) {
			loc := pwLoc(t, c.zone)
			got := startOfDay(c.y, c.m, c.d, loc)
			if !got.Equal(c.want) {
				t.Errorf("startOfDay = %v, want %v", got, c.want.In(loc))
			}
			if got.Location() != loc {
				t.Errorf("startOfDay returned a time in %v, want %v", got.Location(), loc)
			}
		})
	}
}

func TestAnchorCustomAtStartOfDay(t *testing.T) {
	sp := pwLoc(t, "America/Sao_Paulo")
	now := pwAt(t, "-02:00", 2018, 11, 4, 15, 0)
	p := anchorCustom(Plan{Period: Custom, CustomDays: 2}, sp, now)
	if want := pwAt(t, "-02:00", 2018, 11, 4, 1, 0); !p.CustomAnchor.Equal(want) {
		t.Errorf("anchor %v, want %v (midnight was skipped)", p.CustomAnchor, want)
	}
	w := PeriodWindow(Custom, 2, p.CustomAnchor, sp, now)
	if want := (Window{pwAt(t, "-02:00", 2018, 11, 4, 1, 0), pwAt(t, "-02:00", 2018, 11, 6, 1, 0)}); !w.Equal(want) {
		t.Errorf("window %v, want %v", w, want)
	}
	kept := pwAt(t, "Z", 2020, 1, 1, 0, 0)
	if p := anchorCustom(Plan{Period: Custom, CustomDays: 2, CustomAnchor: kept}, sp, now); !p.CustomAnchor.Equal(kept) {
		t.Errorf("existing anchor replaced by %v", p.CustomAnchor)
	}
	if p := anchorCustom(Plan{Period: Monthly}, sp, now); !p.CustomAnchor.IsZero() {
		t.Errorf("monthly plan anchored at %v", p.CustomAnchor)
	}
}

func TestSettingsWindowReset(t *testing.T) {
	ny := pwLoc(t, "America/New_York")
	now := pwAt(t, "-05:00", 2026, 11, 18, 15, 0)
	regular := Window{pwAt(t, "-04:00", 2026, 11, 1, 0, 0), pwAt(t, "-05:00", 2026, 12, 1, 0, 0)}
	cases := []struct {
		name    string
		resetAt time.Time
		want    Window
	}{
		{"never-reset", time.Time{}, regular},
		{"inside-period", pwAt(t, "-05:00", 2026, 11, 10, 8, 0), Window{pwAt(t, "-05:00", 2026, 11, 10, 8, 0), regular.End}},
		{"at-period-start", regular.Start, regular},
		{"at-now", now, Window{now, regular.End}},
		{"before-period-ignored", regular.Start.Add(-time.Nanosecond), regular},
		{"last-month-ignored", pwAt(t, "-04:00", 2026, 10, 20, 8, 0), regular},
		{"after-now-ignored", now.Add(time.Nanosecond), regular},
		{"next-period-ignored", pwAt(t, "-05:00", 2026, 12, 2, 0, 0), regular},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := Settings{Plan: Plan{Period: Monthly}, ResetAt: c.resetAt}
			if got := s.window(ny, now); !got.Equal(c.want) {
				t.Errorf("window = %v, want %v", pwIn(got, ny), pwIn(c.want, ny))
			}
		})
	}
	t.Run("custom-inside-period", func(t *testing.T) {
		anchor := pwAt(t, "-05:00", 2026, 11, 2, 9, 0)
		reset := pwAt(t, "-05:00", 2026, 11, 18, 10, 0)
		s := Settings{Plan: Plan{Period: Custom, CustomDays: 7, CustomAnchor: anchor}, ResetAt: reset}
		want := Window{reset, pwAt(t, "-05:00", 2026, 11, 23, 9, 0)}
		if got := s.window(ny, now); !got.Equal(want) {
			t.Errorf("window = %v, want %v", pwIn(got, ny), pwIn(want, ny))
		}
	})
	t.Run("daily-reset-yesterday-ignored", func(t *testing.T) {
		s := Settings{Plan: Plan{Period: Daily}, ResetAt: pwAt(t, "-05:00", 2026, 11, 17, 23, 0)}
		want := Window{pwAt(t, "-05:00", 2026, 11, 18, 0, 0), pwAt(t, "-05:00", 2026, 11, 19, 0, 0)}
		if got := s.window(ny, now); !got.Equal(want) {
			t.Errorf("window = %v, want %v", pwIn(got, ny), pwIn(want, ny))
		}
	})
}

// pwTZif returns a TZif (version 2) zone with no transitions, standard time
// at offset std seconds (abbreviated XST), and the POSIX TZ rule extend for
// all time.
func pwTZif(std int32, extend string) []byte {
	be32 := func(b []byte, v int32) []byte { return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v)) }
	block := func(b []byte) []byte {
		b = append(b, "TZif2"...)
		b = append(b, make([]byte, 15)...)
		for _, n := range []int32{0, 0, 0, 0, 1, 4} { // isut, isstd, leap, time, type, char counts
			b = be32(b, n)
		}
		b = be32(b, std)
		b = append(b, 0, 0) // not DST, abbreviation at 0
		return append(b, "XST\x00"...)
	}
	b := block(block(nil)) // the version 1 block, then the version 2 one
	return append(b, "\n"+extend+"\n"...)
}

// TestPeriodPastZoneBoundsEnd covers a zone that changes offset soon after
// the year turns, past its transition table: there, on the last UTC day of a
// leap year, time.ZoneBounds reports an end that has already passed, and the
// next change of offset must be found another way.
func TestPeriodPastZoneBoundsEnd(t *testing.T) {
	// UTC+1, and UTC+2 from 02:00 on January 1st until late October.
	loc, err := time.LoadLocationFromTZData("Test/NewYearDST", pwTZif(3600, "XST-1XDT,J1/2,J300/2"))
	if err != nil {
		t.Fatal(err)
	}
	at := pwAt(t, "+02:00", 2041, 1, 1, 12, 0)
	if probe := pwAt(t, "Z", 2040, 12, 31, 12, 0).In(loc); func() bool { _, end := probe.ZoneBounds(); return end.After(probe) }() {
		t.Skip("time.ZoneBounds no longer reports a passed end on the last day of a leap year")
	}
	// A custom period at 05:00 starts at 05:00 +02:00 on January 1st, not at
	// 05:00 +01:00 as if the offset had not changed.
	anchor := pwAt(t, "+01:00", 2040, 12, 1, 5, 0)
	w := PeriodWindow(Custom, 1, anchor, loc, at)
	if want := (Window{pwAt(t, "+02:00", 2041, 1, 1, 5, 0), pwAt(t, "+02:00", 2041, 1, 2, 5, 0)}); !w.Equal(want) {
		t.Errorf("window %v, want %v", pwIn(w, loc), pwIn(want, loc))
	}
	for _, p := range pwKinds {
		for x := pwAt(t, "Z", 2040, 12, 25, 0, 0); x.Before(pwAt(t, "Z", 2041, 1, 8, 0, 0)); x = x.Add(37 * time.Minute) {
			for _, err := range pwCheck(p, 1, anchor, loc, x, PeriodWindow(p, 1, anchor, loc, x)) {
				t.Error(err)
			}
		}
	}
}

// pwContiguityZones are the zones stepped through a year at a time.
var pwContiguityZones = []struct {
	zone string
	from time.Time // the year starts here
}{
	{"UTC", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	{"America/New_York", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	{"Europe/London", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	{"Australia/Lord_Howe", time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)},
	{"America/Sao_Paulo", time.Date(2018, 7, 1, 0, 0, 0, 0, time.UTC)},
	{"America/Santiago", time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)},
	{"America/Havana", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
	{"America/St_Johns", time.Date(2009, 7, 1, 0, 0, 0, 0, time.UTC)},
	{"Pacific/Apia", time.Date(2011, 6, 1, 0, 0, 0, 0, time.UTC)},
	{"Pacific/Chatham", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	{"Asia/Kolkata", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	{"Africa/Casablanca", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	{"America/New_York", time.Date(2040, 6, 1, 0, 0, 0, 0, time.UTC)}, // past the transition table, leap year end
}

// TestPeriodContiguity steps window by window through a year: the window
// that holds w.End starts at w.End, so consecutive windows share their
// boundaries, and every window passes the property checks.
func TestPeriodContiguity(t *testing.T) {
	kinds := []struct {
		p    Period
		days int
	}{{Daily, 0}, {Weekly, 0}, {Monthly, 0}, {Custom, 1}, {Custom, 3}, {Custom, 14}}
	for _, z := range pwContiguityZones {
		loc := pwLoc(t, z.zone)
		for _, k := range kinds {
			t.Run(fmt.Sprintf("%s/%d/%s-%d", z.zone, z.from.Year(), k.p, k.days), func(t *testing.T) {
				anchor := z.from.Add(-(100*24 + 7) * time.Hour).Add(1234567 * time.Millisecond)
				until := z.from.AddDate(1, 0, 0)
				w := PeriodWindow(k.p, k.days, anchor, loc, z.from)
				n := 0
				for errs := 0; w.Start.Before(until) && errs < 5; n++ {
					for _, err := range pwCheck(k.p, k.days, anchor, loc, w.Start, w) {
						t.Error(err)
						errs++
					}
					next := PeriodWindow(k.p, k.days, anchor, loc, w.End)
					if !next.Start.Equal(w.End) {
						t.Errorf("after %v comes %v", pwIn(w, loc), pwIn(next, loc))
						errs++
					}
					w = next
				}
				if n < 12 {
					t.Errorf("only %d windows in a year", n)
				}
			})
		}
	}
}

// TestPeriodAroundEveryTransition checks the window properties just before,
// at and after every change of offset from 1900 to 2100 in the fuzz zones,
// with custom periods whose boundaries fall inside the gaps and folds.
func TestPeriodAroundEveryTransition(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	from := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	until := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, zone := range pwFuzzZones {
		t.Run(zone, func(t *testing.T) {
			loc := pwLoc(t, zone)
			errs, n := 0, 0
			for x := from.In(loc); x.Before(until) && errs < 5; {
				_, next := x.ZoneBounds()
				if next.IsZero() {
					break
				}
				if !next.After(x) { // time.ZoneBounds on the last day of a leap year
					x = x.Add(24 * time.Hour)
					continue
				}
				x = next.In(loc)
				if pwOffset(x.Add(-time.Nanosecond), loc) == pwOffset(x, loc) {
					continue // a change of name or a bound Go invents, not of offset
				}
				n++
				for _, at := range []time.Time{x.Add(-time.Nanosecond), x, x.Add(30 * time.Minute), x.Add(90 * time.Minute)} {
					for _, k := range []struct {
						p      Period
						days   int
						anchor time.Time
					}{
						{Daily, 0, time.Time{}}, {Weekly, 0, time.Time{}}, {Monthly, 0, time.Time{}},
						{Custom, 1, x.Add(-10 * 24 * time.Hour)},
						{Custom, 1, x.Add(-10*24*time.Hour - time.Nanosecond)},
						{Custom, 7, x.Add(-70*24*time.Hour - 30*time.Minute)},
						{Custom, 2, x.Add(20*24*time.Hour + 30*time.Minute)},
					} {
						for _, err := range pwCheck(k.p, k.days, k.anchor, loc, at, PeriodWindow(k.p, k.days, k.anchor, loc, at)) {
							t.Error(err)
							errs++
						}
					}
				}
			}
			if n == 0 && zone != "UTC" {
				t.Errorf("no transitions found")
			}
		})
	}
}

// pwFuzzZones are the zones FuzzPeriodWindow picks from. Beyond the usual:
// Lord_Howe moves by 30 minutes, Chatham sits at +12:45, Sao_Paulo,
// Santiago and Havana skip midnight, Havana repeats it, St_Johns repeated
// the previous date's last hour (until 2011), Apia and Kwajalein each
// skipped a whole date, Casablanca changes for Ramadan, Troll jumps two
// hours and Dublin's winter time is its "negative DST".
var pwFuzzZones = []string{
	"UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe",
	"America/Sao_Paulo", "America/Santiago", "America/Havana", "Pacific/Apia",
	"Asia/Kolkata", "Pacific/Chatham", "Asia/Tokyo", "Africa/Casablanca",
	"America/St_Johns", "Pacific/Kwajalein", "Antarctica/Troll", "Europe/Dublin",
}

var pwKinds = []Period{Daily, Weekly, Monthly, Custom}

// Fuzzed instants are clamped to the years 1900 to 2200.
var (
	pwMinUnix = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	pwMaxUnix = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
)

func pwClamp(s int64) int64 {
	span := pwMaxUnix - pwMinUnix
	r := (s - pwMinUnix) % span
	if r < 0 {
		r += span
	}
	return pwMinUnix + r
}

func FuzzPeriodWindow(f *testing.F) {
	unix := func(zone string, y int, m time.Month, d, h, mi int) int64 {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			f.Fatal(err)
		}
		return time.Date(y, m, d, h, mi, 0, 0, loc).Unix()
	}
	zoneIndex := func(zone string) uint8 {
		for i, z := range pwFuzzZones {
			if z == zone {
				return uint8(i)
			}
		}
		f.Fatalf("no fuzz zone %s", zone)
		return 0
	}
	seeds := []struct {
		zone        string
		y           int
		m           time.Month
		d, h, mi    int
		days        uint16
		anchorShift int64 // seconds from t to the anchor
	}{
		{"Asia/Tokyo", 2027, 1, 31, 23, 59, 3, 86400*40 + 3600},
		{"America/New_York", 2028, 2, 29, 12, 0, 14, -86400 * 3},
		{"America/New_York", 2026, 12, 31, 23, 59, 30, 1},
		{"America/New_York", 2026, 3, 8, 1, 59, 1, -86400*5 + 1800},
		{"America/New_York", 2026, 3, 8, 3, 0, 7, -86400*1 - 1800},
		{"America/New_York", 2026, 11, 1, 1, 30, 1, 86400 * 30},
		{"Europe/London", 2026, 3, 29, 0, 59, 2, -86400 * 9},
		{"Europe/London", 2026, 10, 25, 1, 30, 3, 86400*2 + 5400},
		{"America/Sao_Paulo", 2018, 11, 4, 1, 0, 1, -86400 * 10},
		{"America/Sao_Paulo", 2018, 11, 3, 23, 59, 5, 60},
		{"America/Santiago", 2024, 9, 8, 1, 0, 1, -86400 * 7},
		{"America/Havana", 2025, 11, 2, 0, 30, 1, -86400 * 2},
		{"America/St_Johns", 2009, 10, 31, 23, 30, 1, -86400*3 + 60},
		{"Pacific/Apia", 2011, 12, 29, 12, 0, 1, -86400*28 - 7200},
		{"Pacific/Apia", 2011, 12, 31, 5, 0, 2, -86400 * 30},
		{"Pacific/Kwajalein", 1993, 8, 22, 0, 0, 6, 86400 * 100},
		{"Pacific/Chatham", 2026, 4, 5, 2, 45, 10, -86400 * 365},
		{"Africa/Casablanca", 2026, 2, 15, 2, 0, 1, -86400 * 1000},
		{"UTC", 1900, 1, 1, 0, 0, MaxCustomDays, 86400 * 365 * 299},
		{"UTC", 2199, 12, 31, 23, 59, 1, -86400 * 365 * 299},
	}
	for _, s := range seeds {
		zone := s.zone
		u := unix(zone, s.y, s.m, s.d, s.h, s.mi)
		for k := range pwKinds {
			f.Add(u, uint32(0), zoneIndex(zone), uint8(k), s.days, u+s.anchorShift)
		}
		f.Add(u-1, uint32(999999999), zoneIndex(zone), uint8(3), s.days, u)
	}
	f.Fuzz(func(t *testing.T, unixSec int64, nanos uint32, zone, kind uint8, days uint16, anchorUnix int64) {
		loc := pwLoc(t, pwFuzzZones[int(zone)%len(pwFuzzZones)])
		p := pwKinds[int(kind)%len(pwKinds)]
		n := int(days) % (MaxCustomDays + 1) // 0 stands for 1
		at := time.Unix(pwClamp(unixSec), int64(nanos%1e9))
		anchor := time.Unix(pwClamp(anchorUnix), int64(nanos%7919)*123457)
		w := PeriodWindow(p, n, anchor, loc, at)
		for _, err := range pwCheck(p, n, anchor, loc, at, w) {
			t.Error(err)
		}
	})
}

// pwCheck returns the ways window w, computed for instant t, breaks the
// properties every period window has. It is independent of how period.go
// finds boundaries: it looks only at wall clocks and offsets of instants.
func pwCheck(p Period, days int, anchor time.Time, loc *time.Location, t time.Time, w Window) (errs []error) {
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s/%d in %s at %v, window %v: %s", p, days, loc, t.In(loc), pwIn(w, loc), fmt.Sprintf(format, args...)))
	}
	pw := func(at time.Time) Window { return PeriodWindow(p, days, anchor, loc, at) }
	if days < 1 {
		days = 1
	}

	// Holds t, half-open.
	if !w.Contains(t) || !(w.Start.Before(w.End)) {
		fail("does not hold t")
		return errs
	}
	// Does not depend on the location of its inputs.
	if v := PeriodWindow(p, days, anchor.UTC(), loc, t.UTC()); !v.Equal(w) {
		fail("the same instants in UTC give %v", pwIn(v, loc))
	}
	// Stable over its own span, and contiguous with its neighbours.
	if v := pw(w.Start); !v.Equal(w) {
		fail("its start gives %v", pwIn(v, loc))
	}
	if v := pw(w.End.Add(-time.Nanosecond)); !v.Equal(w) {
		fail("its last instant gives %v", pwIn(v, loc))
	}
	if v := pw(w.End); !v.Start.Equal(w.End) {
		fail("its end gives %v", pwIn(v, loc))
	}
	if v := pw(w.Start.Add(-time.Nanosecond)); !v.End.Equal(w.Start) {
		fail("the instant before it gives %v", pwIn(v, loc))
	}

	dur := w.End.Sub(w.Start)
	// A window next to a skipped date may lose a day, and one next to a
	// repeated date (Kwajalein 1969, from UTC+11 to UTC-12) gain one: both
	// are jumps of 20 hours or more.
	offs := []int{pwOffset(w.Start.Add(-time.Nanosecond), loc), pwOffset(w.Start, loc),
		pwOffset(w.End.Add(-time.Nanosecond), loc), pwOffset(w.End, loc)}
	lo, hi := offs[0], offs[0]
	for _, o := range offs {
		lo, hi = min(lo, o), max(hi, o)
	}
	skip := time.Duration(hi-lo)*time.Second >= 20*time.Hour
	near := func(want, slack time.Duration) bool {
		d := dur - want
		if skip && d < -12*time.Hour {
			d += 24 * time.Hour
		} else if skip && d > 12*time.Hour {
			d -= 24 * time.Hour
		}
		return d >= -slack && d <= slack
	}

	if p == Custom {
		// Where a skipped date holds several boundaries' wall-clock times,
		// they all fall on one instant: the window starts with the last.
		ds := pwCustomBoundaries(w.Start, anchor, days, loc)
		if len(ds) == 0 {
			fail("start %v is not the first instant at or after a boundary's wall-clock time", w.Start.In(loc))
		}
		de := pwCustomBoundaries(w.End, anchor, days, loc)
		if len(de) == 0 {
			fail("end %v is not the first instant at or after a boundary's wall-clock time", w.End.In(loc))
		}
		if len(ds) > 0 && len(de) > 0 && pwDays(ds[len(ds)-1], de[0]) != days {
			fail("boundaries on %v and %v are not %d days apart", ds[len(ds)-1].Format(time.DateOnly), de[0].Format(time.DateOnly), days)
		}
		slack := 3 * time.Hour
		if skip {
			slack += 24 * time.Hour // a boundary inside a skipped date moves to its end; a date can repeat
		}
		if d := dur - time.Duration(days)*24*time.Hour; d < -slack || d > slack {
			fail("lasts %v", dur)
		}
		return errs
	}

	// Calendar periods start at the first instant of a local date: every
	// earlier instant shows an earlier date.
	for _, b := range []time.Time{w.Start, w.End} {
		if !pwFirstAtOrAfter(b, pwDate(b, loc), loc) {
			fail("%v is not the first instant of its local date", b.In(loc))
		}
		if h := b.In(loc).Hour(); h >= 3 {
			fail("%v starts a day at %d o'clock", b.In(loc), h)
		}
	}
	// And at the right date: the first date of the period that exists.
	s, e := pwDate(w.Start, loc), pwDate(w.End, loc)
	prevS := pwDate(w.Start.Add(-time.Nanosecond), loc)
	switch p {
	case Daily:
		if !s.After(prevS) || !e.After(s) || !pwDate(w.End.Add(-time.Nanosecond), loc).Equal(s) {
			fail("is not one local date")
		}
		if !near(24*time.Hour, 2*time.Hour) { // 22h to 26h
			fail("lasts %v", dur)
		}
	case Weekly:
		// The Monday on or before the start's date begins the week; unless
		// the start is that Monday, the Monday was skipped.
		mon := s.AddDate(0, 0, -((int(s.Weekday()) + 6) % 7))
		if !mon.After(prevS) {
			fail("starts on %s %v, not the first date of a week", s.Weekday(), s.Format(time.DateOnly))
		}
		if next := e.AddDate(0, 0, -((int(e.Weekday()) + 6) % 7)); pwDays(mon, next) != 7 {
			fail("ends in the week of %v, not the next week", next.Format(time.DateOnly))
		}
		if !near(7*24*time.Hour, 3*time.Hour) {
			fail("lasts %v", dur)
		}
	case Monthly:
		first := s.AddDate(0, 0, 1-s.Day())
		if !first.After(prevS) {
			fail("starts on %v, not the first date of a month", s.Format(time.DateOnly))
		}
		if next := e.AddDate(0, 0, 1-e.Day()); !next.Equal(first.AddDate(0, 1, 0)) {
			fail("ends in the month of %v, not the next month", next.Format(time.DateOnly))
		}
		if !near(time.Duration(pwDays(first, first.AddDate(0, 1, 0)))*24*time.Hour, 3*time.Hour) {
			fail("lasts %v", dur)
		}
	}
	return errs
}

// pwWall is x's wall clock in loc, as a UTC time with the same fields.
func pwWall(x time.Time, loc *time.Location) time.Time {
	l := x.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// pwDate is x's local date in loc, as UTC midnight.
func pwDate(x time.Time, loc *time.Location) time.Time {
	y, m, d := x.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func pwOffset(x time.Time, loc *time.Location) int {
	_, off := x.In(loc).Zone()
	return off
}

// pwDays is the number of calendar days from date a to date b.
// (Not b.Sub(a), which saturates beyond 292 years.)
func pwDays(a, b time.Time) int { return int((b.Unix() - a.Unix()) / (24 * 60 * 60)) }

// pwFirstAtOrAfter reports whether x is the first instant whose wall clock
// in loc reads wall or later: x reads at least wall, the instant before it
// reads less, and no earlier instant at any offset the zone had in the
// preceding two days reads wall exactly (which a clock that fell back across
// wall would).
func pwFirstAtOrAfter(x, wall time.Time, loc *time.Location) bool {
	if pwWall(x, loc).Before(wall) || !pwWall(x.Add(-time.Nanosecond), loc).Before(wall) {
		return false
	}
	for _, back := range []time.Duration{1, 2, 3, 6, 12, 24, 48} {
		off := pwOffset(x.Add(-back*time.Hour), loc)
		y := wall.Add(-time.Duration(off) * time.Second)
		if y.Before(x) && pwOffset(y, loc) == off {
			return false
		}
	}
	return true
}

// pwCustomBoundaries returns, in order, the local dates of the custom
// period boundaries that fall on x: the dates a multiple of days from the
// anchor's on which x is the first instant at or after the anchor's
// wall-clock time. The wall time must be x's own, or, where it fell in a
// gap, lie in the gap that ends at x; only a gap longer than days can hold
// more than one.
func pwCustomBoundaries(x, anchor time.Time, days int, loc *time.Location) (dates []time.Time) {
	a := anchor.In(loc)
	ad := pwDate(anchor, loc)
	clock := time.Duration(a.Hour())*time.Hour + time.Duration(a.Minute())*time.Minute +
		time.Duration(a.Second())*time.Second + time.Duration(a.Nanosecond())
	before, at := pwWall(x.Add(-time.Nanosecond), loc), pwWall(x, loc)
	for d := pwDate(x.Add(-time.Nanosecond), loc); !d.After(pwDate(x, loc)); d = d.AddDate(0, 0, 1) {
		if ((pwDays(ad, d)%days)+days)%days != 0 {
			continue
		}
		wall := d.Add(clock)
		if before.Before(wall) && !at.Before(wall) && pwFirstAtOrAfter(x, wall, loc) {
			dates = append(dates, d)
		}
	}
	return dates
}

// BenchmarkPeriodWindow measures the period computation a Reserve does.
func BenchmarkPeriodWindow(b *testing.B) {
	ny := pwLoc(b, "America/New_York")
	now := time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC)
	anchor := time.Date(2025, 1, 1, 9, 0, 0, 0, ny)
	for _, p := range pwKinds {
		b.Run(string(p), func(b *testing.B) {
			for b.Loop() {
				PeriodWindow(p, 10, anchor, ny, now)
			}
		})
	}
}
