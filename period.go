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
// manual resets: Settings.PeriodStart and PeriodEnd, as the Manager returns
// them, do.
//
// Days are calendar days: a daily window across a DST change is 23 or 25
// hours long. A period starts at the first instant whose local wall clock
// reads its nominal start or later: where a DST change skips local midnight
// (or a custom period's wall-clock time), the period starts at the first
// instant that exists after it; where clocks fall back across it, at its
// first occurrence. A calendar day that a zone skipped entirely (Pacific/Apia,
// 2011-12-30) has no instants, so it starts no window; the windows on either
// side of it still meet.
func PeriodWindow(p Period, days int, anchor time.Time, loc *time.Location, t time.Time) Window {
	if loc == nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	y, m, d := lt.Date()
	switch p {
	case Daily:
		return dayWindow(y, m, d, 1, loc, t)
	case Weekly:
		back := (int(lt.Weekday()) + 6) % 7 // days since Monday
		return dayWindow(y, m, d-back, 7, loc, t)
	case Monthly:
		w := Window{startOfDay(y, m, 1, loc), startOfDay(y, m+1, 1, loc)}
		for !t.Before(w.End) {
			// Only where clocks fell back across the 1st's midnight: t
			// shows the last day of month m but comes after the 1st began.
			m++
			w = Window{w.End, startOfDay(y, m+1, 1, loc)}
		}
		return w
	case Custom:
		return customWindow(days, anchor, loc, t)
	}
	panic(fmt.Sprintf("budget: PeriodWindow called with invalid period %q", p))
}

// dayWindow returns the window of n local days that begins with local date
// y-m-d (the day may overflow the month, as time.Date allows), or a later
// one of n days when t comes after it. t always shows a local date on or
// after y-m-d, so it is never before the window; it can be after it only
// where clocks fell back across midnight and t shows the old date after the
// new one began.
func dayWindow(y int, m time.Month, d, n int, loc *time.Location, t time.Time) Window {
	w := Window{startOfDay(y, m, d, loc), startOfDay(y, m, d+n, loc)}
	for !t.Before(w.End) {
		d += n
		w = Window{w.End, startOfDay(y, m, d+n, loc)}
	}
	return w
}

// startOfDay returns the first instant of local date y-m-d in loc: the first
// instant whose local date is y-m-d or later. It is local midnight, the end
// of a DST gap that skipped midnight, the first of two midnights when the
// clocks fell back across it, or, for a date the zone skipped entirely, the
// first instant of the next date that exists.
func startOfDay(y int, m time.Month, d int, loc *time.Location) time.Time {
	return firstAtOrAfter(time.Date(y, m, d, 0, 0, 0, 0, time.UTC), loc)
}

// maxZoneOffset bounds the UTC offset of any zone (real ones stay within
// ±16h), so that wall clocks lag a wall time w at the instant w-maxZoneOffset.
const maxZoneOffset = 48 * time.Hour

// firstAtOrAfter returns, in loc, the first instant whose local wall clock
// in loc reads w or later, where w is a wall-clock reading expressed as a
// UTC time (its fields are the wall clock's fields).
//
// time.Date does not answer this: inside a DST gap or overlap the instant it
// picks is unspecified (in practice it picks the gap's pre-transition
// offset, an instant whose clock reads an hour early, and either side of an
// overlap). Instead the zone's periods of constant offset are walked from an
// instant when every clock lagged w: in each, the clock reads w at
// w - offset, unless the period ends first, and if the clock has passed w
// when a new period begins, that transition is the answer.
func firstAtOrAfter(w time.Time, loc *time.Location) time.Time {
	x := w.Add(-maxZoneOffset)
	for range 64 {
		lx := x.In(loc)
		_, off := lx.Zone()
		at := w.Add(-time.Duration(off) * time.Second) // the clock reads w here, if off still holds
		_, end := lx.ZoneBounds()
		if !end.After(x) {
			if end.IsZero() { // off holds forever
				return at.In(loc)
			}
			// Beyond its transition table, ZoneBounds may report a bound
			// that has already passed (the last day of a leap year); find
			// the next change of offset directly.
			end = nextOffsetChange(x, at, off, loc)
			if end.IsZero() {
				return at.In(loc)
			}
		}
		if at.Before(end) {
			return at.In(loc)
		}
		x = end
		if _, o := x.In(loc).Zone(); !x.Add(time.Duration(o) * time.Second).Before(w) {
			return x.In(loc) // the transition jumped over w
		}
	}
	// Unreachable for real zones, which change offset at most a few times
	// within maxZoneOffset of any instant.
	return time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), loc)
}

// nextOffsetChange returns the first instant in (x, y] whose offset in loc
// is not off, given that x has offset off, or the zero Time if y has offset
// off (then the offset is taken to hold over all of [x, y]). Zone
// transitions fall on whole seconds, so it bisects over Unix seconds.
func nextOffsetChange(x, y time.Time, off int, loc *time.Location) time.Time {
	offAt := func(s int64) int { _, o := time.Unix(s, 0).In(loc).Zone(); return o }
	lo, hi := x.Unix(), y.Unix() // offAt(lo) == off: x is not before the transition it follows
	if offAt(hi) == off {
		return time.Time{}
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if offAt(mid) == off {
			lo = mid
		} else {
			hi = mid
		}
	}
	return time.Unix(hi, 0)
}

// customWindow returns the custom period of the given length in days that
// holds t, counted from anchor's local wall-clock time in loc.
func customWindow(days int, anchor time.Time, loc *time.Location, t time.Time) Window {
	if days < 1 {
		days = 1
	}
	a := anchor.In(loc)
	// at(k) is the start of period k, where period 0 starts at the anchor's
	// wall-clock time on the anchor's local date. It never decreases as k
	// grows, so exactly one period holds t (empty periods aside, which
	// only a skipped day can produce).
	at := func(k int64) time.Time {
		return firstAtOrAfter(time.Date(a.Year(), a.Month(), a.Day()+int(k)*days,
			a.Hour(), a.Minute(), a.Second(), a.Nanosecond(), time.UTC), loc)
	}
	// Estimate the period number from elapsed seconds (time.Duration would
	// saturate beyond 292 years), then correct: calendar days differ from
	// 24 hours by at most a few hours per DST change.
	k := floorDiv(t.Unix()-a.Unix(), int64(days)*24*60*60)
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
