package budget

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestDayParts(t *testing.T) {
	d := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	text := func(ps []DayPart) string {
		var out []string
		for _, p := range ps {
			out = append(out, fmt.Sprintf("%d %s..%s %s", p.Zone, time.Unix(0, p.From).UTC().Format("01-02T15:04:05.999"),
				time.Unix(0, p.To).UTC().Format("01-02T15:04:05.999"), p.Grain))
		}
		return strings.Join(out, " | ")
	}
	for _, c := range []struct {
		name string
		q    DayTotalsQuery
		want string
	}{{
		"UTC, days aligned",
		DayTotalsQuery{From: d("2026-03-01T00:00:00Z"), To: d("2026-03-04T00:00:00Z"), Zones: []ZoneSpan{{Start: d("2026-03-01T00:00:00Z")}}},
		"0 03-01T00:00:00..03-04T00:00:00 24h0m0s",
	}, {
		"UTC, edges off the quarter hour",
		DayTotalsQuery{From: d("2026-03-01T10:07:00Z"), To: d("2026-03-04T00:20:00.5Z"), Zones: []ZoneSpan{{Start: d("2026-03-01T10:07:00Z")}}},
		"0 03-01T10:07:00..03-01T10:15:00 0s | 0 03-01T10:15:00..03-02T00:00:00 15m0s | 0 03-02T00:00:00..03-04T00:00:00 24h0m0s | " +
			"0 03-04T00:00:00..03-04T00:15:00 15m0s | 0 03-04T00:15:00..03-04T00:20:00.5 0s",
	}, {
		"UTC, less than a day",
		DayTotalsQuery{From: d("2026-03-01T10:00:00Z"), To: d("2026-03-01T11:00:00Z"), Zones: []ZoneSpan{{Start: d("2026-03-01T10:00:00Z")}}},
		"0 03-01T10:00:00..03-01T11:00:00 15m0s",
	}, {
		"within one quarter hour",
		DayTotalsQuery{From: d("2026-03-01T10:01:00Z"), To: d("2026-03-01T10:02:00Z"), Zones: []ZoneSpan{{Start: d("2026-03-01T10:01:00Z")}}},
		"0 03-01T10:01:00..03-01T10:02:00 0s",
	}, {
		"New York across a DST change",
		DayTotalsQuery{From: d("2026-03-07T05:00:00Z"), To: d("2026-03-10T04:00:00Z"), Zones: []ZoneSpan{
			{Start: d("2026-03-07T05:00:00Z"), Offset: -5 * 3600}, {Start: d("2026-03-08T07:00:00Z"), Offset: -4 * 3600}}},
		"0 03-07T05:00:00..03-08T07:00:00 15m0s | 1 03-08T07:00:00..03-10T04:00:00 15m0s",
	}, {
		"a change one minute past a quarter hour, and Monrovia's -0:44:30",
		DayTotalsQuery{From: d("2026-03-07T00:00:00Z"), To: d("2026-03-07T02:00:00Z"), Zones: []ZoneSpan{
			{Start: d("2026-03-07T00:00:00Z"), Offset: 3600}, {Start: d("2026-03-07T01:01:00Z"), Offset: -2670}}},
		"0 03-07T00:00:00..03-07T01:00:00 15m0s | 0 03-07T01:00:00..03-07T01:01:00 0s | 1 03-07T01:01:00..03-07T02:00:00 0s",
	}} {
		if got := text(c.q.Parts()); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
	for _, c := range []struct {
		at   string
		off  int
		want string
	}{
		{"2026-03-01T23:59:59.999999999Z", 0, "2026-03-01"},
		{"2026-03-01T23:59:59Z", 3600, "2026-03-02"},
		{"1969-12-31T23:00:00Z", 0, "1969-12-31"},
		{"1970-01-01T00:30:00Z", -3600, "1969-12-31"},
	} {
		day := LocalDay(d(c.at).UnixNano(), c.off)
		if got := time.Unix(day*86400, 0).UTC().Format(time.DateOnly); got != c.want {
			t.Errorf("LocalDay(%s, %d) = %s, want %s", c.at, c.off, got, c.want)
		}
		if s := QuarterOf(d(c.at).UnixNano()); c.off%900 == 0 && SlotDay(s, c.off) != day {
			t.Errorf("SlotDay of %s at %d = %d, LocalDay %d", c.at, c.off, SlotDay(s, c.off), day)
		}
	}
}
