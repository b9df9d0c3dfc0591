package budget

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/shopspring/decimal"
)

// ForecastDays is how many days of settled usage set the pace of a
// Forecast.
const ForecastDays = 7

// Forecast projects a budget's settled spend to the end of its period at
// its recent pace, and says when the limit is reached at that pace.
//
// The method, in full: the pace is the settled spend (usage recorded by
// Settle and Record; reservations never count) of the last ForecastDays
// days before now, or since the budget was created if that is later, read
// from the rollups in whole quarter hours (the window starts on the
// quarter hour and takes in all of the one holding now), divided by the
// window's length up to now, but by no less than one day: a budget one
// hour old is not extrapolated from one hour, and a burst yesterday counts
// as a seventh of a week's pace. The window ignores period boundaries and
// resets: a reset changes what is spent in the period, not how fast the
// holder spends. Then
//
//	Projected = Spent + pace × (PeriodEnd − now)
//	LimitAt   = now + (Limit − Spent) / pace, if before PeriodEnd
//
// computed exactly in integers, Projected rounded down and LimitAt up to
// the nanosecond. The same clock reading (Options.Now) and the same usage
// give the same forecast. With enforcement on, calls are refused once the
// limit is reached, so actual spend stops near the limit: Projected is what
// the pace alone would reach, and LimitAt when refusals begin.
//
// A forecast costs Status one read of the rollups (a week of days and
// quarter hours), which the Manager reuses while now stays in the same
// quarter hour and the period's spend does not change: a dashboard that
// polls Status reads them at most once per quarter hour and per spend.
type Forecast struct {
	// PaceFrom and PaceTo bound the window the pace is measured over:
	// PaceFrom is on a quarter hour, PaceTo is now.
	PaceFrom, PaceTo time.Time
	// PaceSpend is the settled spend of the quarter hours from PaceFrom
	// through the one holding PaceTo.
	PaceSpend decimal.Decimal
	// PerDay is the pace: PaceSpend per 24 hours of the window (of at
	// least one day), rounded down to 9 places.
	PerDay decimal.Decimal
	// Projected is the settled spend the period ends with at this pace,
	// rounded down to 9 places.
	Projected decimal.Decimal
	// LimitAt is when settled spend reaches the limit at this pace: PaceTo
	// when it already has (a zero limit has from the start), nil when it
	// does not before the period ends.
	LimitAt *time.Time
	// Exceeds reports whether Projected passes the limit.
	Exceeds bool
}

// forecastOf computes the forecast of a budget from its spent, limit and
// period end, and the settled spend paceSpend in [from, now) (paceDec: the
// same as a decimal, which the pace memo keeps).
func forecastOf(spent, limit Nanos, end time.Time, from, now time.Time, paceSpend Nanos, paceDec decimal.Decimal) *Forecast {
	f := &Forecast{PaceFrom: from, PaceTo: now, PaceSpend: paceDec}
	window := uint64(max(now.Sub(from), 24*time.Hour))
	pace := uint64(max(paceSpend, 0))
	f.PerDay = dec(Nanos(mulDiv(pace, uint64(24*time.Hour), window)))
	var ahead Nanos
	if left := end.Sub(now); left > 0 {
		ahead = Nanos(mulDiv(pace, uint64(left), window))
	}
	projected, ok := spent.Add(ahead)
	if !ok {
		projected = MaxNanos
	}
	f.Projected = dec(projected)
	f.Exceeds = projected > limit
	switch {
	case spent >= limit:
		at := now
		f.LimitAt = &at
	case pace > 0:
		// ceil((limit − spent) × window / pace) nanoseconds from now.
		hi, lo := bits.Mul64(uint64(limit-spent), window)
		if hi < pace {
			q, r := bits.Div64(hi, lo, pace)
			if r != 0 {
				q++
			}
			if q <= math.MaxInt64 && q != 0 {
				if at := now.Add(time.Duration(q)); at.Before(end) {
					f.LimitAt = &at
				}
			}
		}
	}
	return f
}

// forecast returns the forecast at now of the budget whose cache entry is
// c, with spent settled in its period, which ends at end: one read of the
// rollups of the pace window.
func (m *Manager) forecast(ctx context.Context, c *cached, spent Nanos, end, now time.Time) (*Forecast, error) {
	from := now.Add(-ForecastDays * 24 * time.Hour)
	if created := c.s.CreatedAt; created.After(from) {
		from = created
	}
	from = earliest(from, now).Truncate(QuarterHour)
	slot := now.Truncate(QuarterHour)
	// The memo serves while the quarter hours and the spend are the same:
	// usage is recorded at its call's instant, so any new usage would be
	// in the period, and in spent (but for a call of a process whose clock
	// is behind, recorded before the period began: the next quarter hour
	// counts it).
	pm := c.pace.Load()
	if pm == nil || !pm.slot.Equal(slot) || !pm.from.Equal(from) || pm.spent != spent || !pm.end.Equal(end) {
		// Whole quarter hours, through the one holding now (usage at this
		// very instant is settled, and counts in Spent too): the store
		// reads rollups alone, however many calls the last minutes had.
		to := now.Truncate(QuarterHour).Add(QuarterHour)
		groups, err := m.store.Daily(ctx, DayTotalsQuery{UserID: c.s.UserID, From: from, To: to, Zones: []ZoneSpan{{Start: from}}})
		if err != nil {
			return nil, fmt.Errorf("budget: forecast of %q: %w", c.s.UserID, err)
		}
		var pace Nanos
		for _, g := range groups {
			var ok bool
			if pace, ok = pace.Add(g.Cost); !ok {
				return nil, fmt.Errorf("budget: forecast of %q: spend exceeds %s", c.s.UserID, MaxNanos)
			}
		}
		pm = &paceMemo{slot: slot, from: from, end: end, spent: spent, pace: pace, paceDec: dec(pace)}
		c.pace.Store(pm)
	}
	return forecastOf(spent, c.p.Limit, end, from, now, pm.pace, pm.paceDec), nil
}

// paceMemo is the pace window's spend as a forecast last read it: reused
// while now is in the same quarter hour and the period's spend is the
// same, so that a dashboard polling Status reads the rollups at most once
// per quarter hour and per change of spend.
type paceMemo struct {
	slot, from, end time.Time
	spent, pace     Nanos
	paceDec         decimal.Decimal // pace as a decimal, made once
}

// ProjectedOver is, in a LevelSet, the mark that a window's forecast
// passed its limit: a store keeps it with the alerted levels, so that the
// projection alert fires once per period (see Options.AlertOnProjection).
// LevelSet.Levels never lists it.
const ProjectedOver LevelSet = 1 << 4

// AlertKind says what an Alert reports.
type AlertKind string

// The kinds of alerts.
const (
	// AlertLevel: settled spend reached Alert.Level.
	AlertLevel AlertKind = "level"
	// AlertProjection: the budget's forecast passed its limit, for the
	// first time in the period; Alert.Status.Forecast says when the limit
	// is reached at the current pace, and Alert.Level is the budget's
	// level at the time.
	AlertProjection AlertKind = "projection"
)

// withForecast fills in st.Forecast for the budget of c, whose totals are
// t, as Status does, and, with Options.AlertOnProjection, reports the
// projection passing the limit once per period: it asks the store to mark
// ProjectedOver, and fires only if this call marked it. userID is the user
// whose call this is ("" for a team's or org's status).
func (m *Manager) withForecast(ctx context.Context, c *cached, t Totals, st *Status, userID string, now time.Time) error {
	f, err := m.forecast(ctx, c, t.Spent, t.Window.End, now)
	if err != nil {
		return err
	}
	st.Forecast = f
	if !f.Exceeds || !m.alertProjection || m.onAlert == nil {
		return nil
	}
	p := c.p
	p.MarkProjection = true
	t, err = m.store.Totals(ctx, TotalsRequest{UserID: c.s.UserID, Policy: p, Now: now})
	if errors.Is(err, ErrConflict) {
		return nil // the settings changed meanwhile: the next Status tries again
	}
	if err != nil {
		return fmt.Errorf("budget: status of %q: %w", c.s.UserID, err)
	}
	if levels := t.Alerts &^ ProjectedOver; levels != 0 {
		m.fireFor(userID, *st, levels, now)
	}
	if t.Alerts&ProjectedOver != 0 {
		m.onAlert(Alert{Kind: AlertProjection, UserID: userID, Scope: st.Scope, Level: st.Level, Status: *st, At: now})
	}
	return nil
}
