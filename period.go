package budget

import (
	"fmt"
	"time"
)

// Period is how often a budget starts over.
type Period string

// The periods a budget can have. Every period is a calendar period in the
// user's timezone: daily from local midnight, weekly from Monday's local
// midnight, monthly from the 1st's local midnight, and custom every
// CustomDays local days from CustomAnchor.
const (
	Daily   Period = "daily"
	Weekly  Period = "weekly"
	Monthly Period = "monthly"
	Custom  Period = "custom"
)

// MaxCustomDays is the longest custom period.
const MaxCustomDays = 3660

// Valid reports whether p is one of the four periods.
func (p Period) Valid() bool {
	switch p {
	case Daily, Weekly, Monthly, Custom:
		return true
	}
	return false
}

// Window is the half-open interval [Start, End) that a budget period covers.
// A usage recorded at instant t counts in the window when Start ≤ t < End.
type Window struct {
	Start, End time.Time
}

// Contains reports whether t lies in [w.Start, w.End).
func (w Window) Contains(t time.Time) bool {
	return !t.Before(w.Start) && t.Before(w.End)
}

// IsZero reports whether w is the zero Window.
func (w Window) IsZero() bool { return w.Start.IsZero() && w.End.IsZero() }

// Equal reports whether w and v cover the same instants.
func (w Window) Equal(v Window) bool { return w.Start.Equal(v.Start) && w.End.Equal(v.End) }

// String formats w as "[start, end)" in RFC 3339.
func (w Window) String() string {
	return "[" + w.Start.Format(time.RFC3339Nano) + ", " + w.End.Format(time.RFC3339Nano) + ")"
}

// PeriodWindow returns the regular period of the given kind that holds t in
// loc. For Custom, periods are every days local days from anchor's local
// wall-clock time, in both directions. PeriodWindow does not know about
// manual resets; Settings.Window does.
//
// Days are calendar days: a daily window across a DST change is 23 or 25
// hours long. Where a DST change skips local midnight, a day starts at the
// first instant that exists on it.
func PeriodWindow(p Period, days int, anchor time.Time, loc *time.Location, t time.Time) Window {
	if loc == nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	y, m, d := lt.Date()
	switch p {
	case Daily:
		return dayWindow(y, m, d, d+1, loc, t)
	case Weekly:
		back := (int(lt.Weekday()) + 6) % 7 // days since Monday
		return dayWindow(y, m, d-back, d-back+7, loc, t)
	case Monthly:
		start := startOfDay(y, m, 1, loc)
		end := startOfDay(y, m+1, 1, loc)
		return Window{start, end}
	case Custom:
		return customWindow(days, anchor, loc, t)
	}
	panic(fmt.Sprintf("budget: PeriodWindow called with invalid period %q", p))
}

// dayWindow returns [start of local day d, start of local day e) in month m
// of year y (days may overflow the month, as time.Date allows). When a
// skipped day would leave t outside, it widens to hold t; that only happens
// in zones that once dropped a whole calendar day.
func dayWindow(y int, m time.Month, d, e int, loc *time.Location, t time.Time) Window {
	w := Window{startOfDay(y, m, d, loc), startOfDay(y, m, e, loc)}
	if t.Before(w.Start) {
		w.Start = startOfDay(y, m, d-1, loc)
	}
	return w
}

// startOfDay returns the first instant of local date y-m-d in loc.
//
// time.Date leaves the choice open when local midnight falls in a DST gap
// or overlap, so the result is checked against the zone's transitions: in a
// gap the day starts at the transition; in an overlap, at the first midnight.
func startOfDay(y int, m time.Month, d int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	want := civil(time.Date(y, m, d, 12, 0, 0, 0, time.UTC))
	got := civil(t)
	if got < want {
		// time.Date chose an instant on the previous day: midnight does not
		// exist, and the day begins where the zone in effect at t ends.
		if _, end := t.ZoneBounds(); !end.IsZero() && civil(end) == want {
			return end
		}
		return t
	}
	if got > want {
		// The whole date was skipped (Pacific/Apia, 2011-12-30).
		return t
	}
	// An earlier instant may show the same date: the clocks fell back across
	// midnight and t is the second midnight.
	if start, _ := t.ZoneBounds(); !start.IsZero() && start.After(t.Add(-48*time.Hour)) {
		prev := start.Add(-time.Nanosecond)
		if civil(prev) == want {
			h, mi, s := prev.Clock()
			return prev.Add(-(time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute +
				time.Duration(s)*time.Second + time.Duration(prev.Nanosecond())))
		}
	}
	return t
}

// civil numbers t's local date so that dates compare as integers.
func civil(t time.Time) int {
	y, m, d := t.Date()
	return (y*13+int(m))*32 + d
}

// customWindow returns the custom period of the given length in days that
// holds t, counted from anchor's local wall-clock time in loc.
func customWindow(days int, anchor time.Time, loc *time.Location, t time.Time) Window {
	if days < 1 {
		days = 1
	}
	a := anchor.In(loc)
	at := func(k int64) time.Time {
		return time.Date(a.Year(), a.Month(), a.Day()+int(k)*days, a.Hour(), a.Minute(), a.Second(), a.Nanosecond(), loc)
	}
	// Estimate the period number from elapsed hours, then correct: calendar
	// days differ from 24 hours by at most a few hours per DST change.
	span := int64(days) * 24
	k := floorDiv(int64(t.Sub(a)/time.Hour), span)
	start := at(k)
	for start.After(t) {
		k--
		start = at(k)
	}
	end := at(k + 1)
	for !end.After(t) {
		k++
		start, end = end, at(k+1)
	}
	return Window{start, end}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
