package budget

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Span names of the insights' Manager calls.
const (
	spanDaily       = "budget.Daily"
	spanExportUsage = "budget.ExportUsage"
	spanExportAudit = "budget.ExportAudit"
	spanExportSet   = "budget.ExportSettings"
	spanImport      = "budget.ImportSettings"
	spanImportSeed  = "budget.ImportSeed"
)

// DailyQuery selects the spend per day of one budget holder.
type DailyQuery struct {
	// UserID names a user; Scope, instead, a team or an org (or a user:
	// then it is UserID). Set one of the two.
	UserID string
	Scope  Scope
	// From and To bound the range [From, To); both zero means the
	// holder's current period.
	From, To time.Time
}

// DailySpend is a budget holder's spend per calendar day of its time zone.
type DailySpend struct {
	Scope Scope
	// Timezone is the holder's IANA zone, in which the days are counted.
	Timezone string
	From, To time.Time
	// Total sums Days: the spend of the whole range, exactly.
	Total BreakdownItem
	// Days are the days with usage in the range, oldest first; a day that
	// is not listed had none.
	Days []DaySpend
}

// DaySpend is the spend of one calendar day in the holder's time zone.
type DaySpend struct {
	// Date is the local date, "2006-01-02".
	Date string
	// Start and End bound the part of the day inside the range, in the
	// holder's time zone: local midnight to the next one, but for the
	// days at the range's edges. A day across a DST change is one day of
	// 23 or 25 hours.
	Start, End time.Time
	// Total is the day's spend; ByModel splits it by provider and model,
	// highest cost first.
	Total   BreakdownItem
	ByModel []BreakdownItem
}

// Daily returns the spend of a user, team or org per calendar day of its
// time zone, on behalf of actor, who must be allowed to see the budget
// (CanView: admins any, a user their own while it is visible; teams and
// orgs admins only): the series a chart of spend over time draws. It
// reads the stores' quarter-hour rollups, never the usage rows (but for a
// quarter hour's worth at a range edge that is not on one): its cost grows
// with the days that had usage and their models, whatever the number of
// calls. The days sum exactly to the range's spend: over the current
// period, to Status.Spent.
//
// It never creates settings: a user without any is read with the
// settings a first call would give them.
func (m *Manager) Daily(ctx context.Context, actor Principal, q DailyQuery) (_ DailySpend, err error) {
	ctx, span := m.tel.start(ctx, spanDaily, q.UserID, &actor)
	defer m.tel.end(span, &err)
	key, err := keyOf(q.UserID, q.Scope)
	if err != nil {
		return DailySpend{}, err
	}
	now := m.now()
	s, p, err := m.viewable(ctx, actor, key, now)
	if err != nil {
		return DailySpend{}, err
	}
	from, to := q.From, q.To
	switch {
	case from.IsZero() != to.IsZero():
		return DailySpend{}, &ValidationError{Field: "from", Reason: "give both from and to, or neither for the current period"}
	case from.IsZero():
		from, to = p.Window.Start, p.Window.End
	}
	if err := checkRange(from, to); err != nil {
		return DailySpend{}, err
	}
	if err := checkStoreTime(from, to); err != nil {
		return DailySpend{}, err
	}
	loc, err := m.zones.load(s.Timezone)
	if err != nil {
		return DailySpend{}, err
	}
	out, err := m.daily(ctx, key, loc, from, to)
	if err != nil {
		return DailySpend{}, err
	}
	out.Scope, out.Timezone = s.Scope(), zoneName(s.Timezone)
	return out, nil
}

// checkStoreTime refuses times outside the range stores keep (Unix
// nanoseconds: the years 1678 to 2262).
func checkStoreTime(ts ...time.Time) error {
	for _, t := range ts {
		if y := t.UTC().Year(); y < 1680 || y > 2260 {
			return &ValidationError{Field: "from", Reason: "must be between the years 1680 and 2260"}
		}
	}
	return nil
}

// viewable returns the settings and policy at now of the budget under key
// once actor may see it. A user without settings is read with those a
// first call would give them, unstored; a team or org without settings is
// ErrNotFound, and only admins see those.
func (m *Manager) viewable(ctx context.Context, actor Principal, key string, now time.Time) (Settings, Policy, error) {
	if scope, _ := ScopeOfKey(key); scope.Kind != UserScope {
		if err := CanAdminister(actor); err != nil {
			return Settings{}, Policy{}, err
		}
		c, err := m.account(ctx, key, now, true)
		if err != nil {
			return Settings{}, Policy{}, err
		}
		return c.s, c.p, nil
	}
	if !actor.Admin && actor.UserID != key {
		return Settings{}, Policy{}, &PermissionError{Action: "view", Reason: "users see only their own budget"}
	}
	s, _, err := m.settingsOrNew(ctx, key, now)
	if err != nil {
		return Settings{}, Policy{}, err
	}
	if err := CanView(actor, s); err != nil {
		return Settings{}, Policy{}, err
	}
	p, err := m.policy(s, now)
	return s, p, err
}

// daily reads the spend under key in [from, to) per local day of loc.
func (m *Manager) daily(ctx context.Context, key string, loc *time.Location, from, to time.Time) (DailySpend, error) {
	zones := zoneSpans(loc, from, to)
	groups, err := m.store.Daily(ctx, DayTotalsQuery{UserID: key, From: from, To: to, Zones: zones})
	if err != nil {
		return DailySpend{}, fmt.Errorf("budget: daily spend of %q: %w", key, err)
	}
	// A day is the running maximum of the local dates seen: where clocks
	// fall back across midnight, the instants that show yesterday's date
	// again belong to the day that already began (as PeriodWindow counts
	// days), so a zone's days never go below the last day of the zones
	// before it.
	floor := make([]int64, len(zones))
	floor[0] = math.MinInt64
	for i := 1; i < len(zones); i++ {
		floor[i] = max(floor[i-1], LocalDay(zones[i].Start.UnixNano()-1, zones[i-1].Offset))
	}
	type key2 struct{ provider, model string }
	type day struct {
		total  sum
		models map[key2]*sum
	}
	days := map[int64]*day{}
	var total sum
	for _, g := range groups {
		if g.Zone < 0 || g.Zone >= len(zones) {
			return DailySpend{}, fmt.Errorf("budget: daily spend of %q: the store answered for zone %d of %d", key, g.Zone, len(zones))
		}
		d := max(g.Day, floor[g.Zone])
		dd := days[d]
		if dd == nil {
			dd = &day{models: map[key2]*sum{}}
			days[d] = dd
		}
		k := key2{g.Provider, g.Model}
		ms := dd.models[k]
		if ms == nil {
			ms = &sum{}
			dd.models[k] = ms
		}
		for _, s := range [...]*sum{&total, &dd.total, ms} {
			if !s.add(g.UsageGroup) {
				return DailySpend{}, fmt.Errorf("budget: daily spend of %q: sum exceeds %s", key, MaxNanos)
			}
		}
	}
	out := DailySpend{From: from, To: to, Total: total.item("", ""), Days: make([]DaySpend, 0, len(days))}
	for _, d := range slices.Sorted(mapsKeys(days)) {
		dd := days[d]
		date := time.Unix(d*86400, 0).UTC()
		y, mo, dy := date.Date()
		ds := DaySpend{
			Date:  date.Format(time.DateOnly),
			Start: latest(startOfDay(y, mo, dy, loc), from).In(loc),
			End:   earliest(startOfDay(y, mo, dy+1, loc), to).In(loc),
			Total: dd.total.item("", ""),
		}
		for k, s := range dd.models {
			ds.ByModel = append(ds.ByModel, s.item(k.provider, k.model))
		}
		slices.SortFunc(ds.ByModel, byCost)
		out.Days = append(out.Days, ds)
	}
	return out, nil
}

// mapsKeys returns the keys of m.
func mapsKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// earliest returns the earlier of t and u.
func earliest(t, u time.Time) time.Time {
	if u.Before(t) {
		return u
	}
	return t
}

// sum adds up usage groups exactly.
type sum struct {
	cost                    Nanos
	requests, input, output int64
}

// add adds g, reporting false when the cost would pass MaxNanos.
func (s *sum) add(g UsageGroup) bool {
	c, ok := s.cost.Add(g.Cost)
	if !ok {
		return false
	}
	s.cost, s.requests, s.input, s.output = c, s.requests+g.Requests, s.input+g.InputTokens, s.output+g.OutputTokens
	return true
}

func (s *sum) item(provider, model string) BreakdownItem {
	return BreakdownItem{Provider: provider, Model: model, Cost: s.cost.Decimal(), Requests: s.requests, InputTokens: s.input, OutputTokens: s.output}
}

// byCost orders breakdown items by cost, highest first, then by provider
// and model.
func byCost(a, b BreakdownItem) int {
	if c := b.Cost.Cmp(a.Cost); c != 0 {
		return c
	}
	return cmp.Or(strings.Compare(a.Provider, b.Provider), strings.Compare(a.Model, b.Model))
}

// zoneSpans partitions [from, to) into spans of one UTC offset of loc.
// Neighbouring zones of one offset (a change of abbreviation, or the end
// of a zone file's table in 2038) are one span.
func zoneSpans(loc *time.Location, from, to time.Time) []ZoneSpan {
	var out []ZoneSpan
	for t := from; ; {
		lt := t.In(loc)
		_, off := lt.Zone()
		if n := len(out); n == 0 || out[n-1].Offset != off {
			out = append(out, ZoneSpan{Start: t, Offset: off})
		}
		_, end := lt.ZoneBounds()
		if end.IsZero() || !end.After(t) || !end.Before(to) {
			return out
		}
		t = end
	}
}
