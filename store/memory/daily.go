package memory

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"
	"weak"

	"github.com/llmbudget/budget"
)

// Daily implements budget.Store from quarter-hour rollups of each budget's
// usage log, as the SQL stores do, so that its cost grows with the quarter
// hours of the range that had usage, not with the rows: Status reads the
// last week's for its forecast on every call. The rollups are built on a
// budget's first Daily and brought up to date by each later one, under the
// budget's lock, from the rows recorded since; a row recorded out of time
// order (a clock that went back) makes them be built again. Pieces of
// grain 0 (slivers of quarter hours at the range's edges) read the rows.
func (s *Store) Daily(ctx context.Context, q budget.DayTotalsQuery) ([]budget.DayTotals, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	v, ok := s.users.Load(q.UserID)
	if !ok || len(q.Zones) == 0 {
		return nil, nil
	}
	u := v.(*user)
	u.mu.Lock()
	defer u.mu.Unlock()
	r := rollupsOf(u)
	r.update(u)
	type key struct {
		zone            int
		day             int64
		provider, model string
	}
	groups := map[key]*budget.DayTotals{}
	add := func(zone int, day int64, g *budget.UsageGroup) error {
		k := key{zone, day, g.Provider, g.Model}
		d := groups[k]
		if d == nil {
			d = &budget.DayTotals{Zone: zone, Day: day, UsageGroup: budget.UsageGroup{Provider: g.Provider, Model: g.Model}}
			groups[k] = d
		}
		return addGroup(&d.UsageGroup, g, q.UserID)
	}
	quarter := int64(budget.QuarterHour)
	for _, p := range q.Parts() {
		if p.Grain == 0 {
			for i, end := u.search(time.Unix(0, p.From)), u.search(time.Unix(0, p.To)); i < end; i++ {
				row := &u.usage.at(i).row
				g := budget.UsageGroup{Provider: row.Provider, Model: row.Model, Cost: row.Cost, Requests: 1,
					InputTokens: row.InputTokens, OutputTokens: row.OutputTokens}
				if err := add(p.Zone, budget.LocalDay(row.At.UnixNano(), p.Offset), &g); err != nil {
					return nil, err
				}
			}
			continue
		}
		// Whole quarter hours (whole UTC days are whole quarter hours too).
		lo, hi := p.From/quarter, p.To/quarter
		for i := sort.Search(len(r.slots), func(i int) bool { return r.slots[i].slot >= lo }); i < len(r.slots) && r.slots[i].slot < hi; i++ {
			sl := &r.slots[i]
			if sl.over {
				return nil, fmt.Errorf("budget/memory: daily spend of %q exceeds %s", q.UserID, budget.MaxNanos)
			}
			day := budget.SlotDay(sl.slot, p.Offset)
			for j := range sl.groups {
				if err := add(p.Zone, day, &sl.groups[j]); err != nil {
					return nil, err
				}
			}
		}
	}
	out := make([]budget.DayTotals, 0, len(groups))
	for _, g := range groups {
		out = append(out, *g)
	}
	return out, nil
}

// addGroup adds g to sum, refusing a cost past MaxNanos.
func addGroup(sum, g *budget.UsageGroup, key string) error {
	c, ok := sum.Cost.Add(g.Cost)
	if !ok {
		return fmt.Errorf("budget/memory: daily spend of %q exceeds %s", key, budget.MaxNanos)
	}
	sum.Cost, sum.Requests = c, sum.Requests+g.Requests
	sum.InputTokens += g.InputTokens
	sum.OutputTokens += g.OutputTokens
	return nil
}

// rollups are one budget's usage summed per quarter hour and per provider
// and model: slots in increasing slot order, holding the first n rows of
// its usage log, whose largest insertion number is seq.
type rollups struct {
	n     int
	seq   int64
	slots []slotSums
}

type slotSums struct {
	slot   int64
	groups []budget.UsageGroup
	over   bool // a sum passed MaxNanos
}

// allRollups holds each budget's rollups, by a weak pointer to its record,
// so that a store dropped by its program drops them too.
var allRollups sync.Map // weak.Pointer[user] → *rollups

// rollupsOf returns u's rollups, made empty on first use.
func rollupsOf(u *user) *rollups {
	k := weak.Make(u)
	if v, ok := allRollups.Load(k); ok {
		return v.(*rollups)
	}
	r := &rollups{}
	if _, loaded := allRollups.LoadOrStore(k, r); !loaded {
		runtime.AddCleanup(u, func(k weak.Pointer[user]) { allRollups.Delete(k) }, k)
	}
	return r
}

// update brings r up to date with u's usage log, whose lock the caller
// holds: the rows recorded since were appended in time order (their
// insertion numbers all follow r.seq), so they add to the last slots; if
// one was inserted earlier in the log, r is built again from every row.
func (r *rollups) update(u *user) {
	if r.n == u.usage.n {
		return
	}
	from := r.n
	for i := r.n; i < u.usage.n; i++ {
		if u.usage.at(i).seq <= r.seq {
			*r, from = rollups{}, 0
			break
		}
	}
	for i := from; i < u.usage.n; i++ {
		e := u.usage.at(i)
		r.add(&e.row)
		r.seq = max(r.seq, e.seq)
	}
	r.n = u.usage.n
}

// add adds a row at or after the last slot's start.
func (r *rollups) add(row *budget.UsageRow) {
	slot := budget.QuarterOf(row.At.UnixNano())
	if n := len(r.slots); n == 0 || r.slots[n-1].slot != slot {
		r.slots = append(r.slots, slotSums{slot: slot})
	}
	sl := &r.slots[len(r.slots)-1]
	g := budget.UsageGroup{Provider: row.Provider, Model: row.Model, Cost: row.Cost, Requests: 1,
		InputTokens: row.InputTokens, OutputTokens: row.OutputTokens}
	for j := range sl.groups {
		if sl.groups[j].Provider == row.Provider && sl.groups[j].Model == row.Model {
			c, ok := sl.groups[j].Cost.Add(g.Cost)
			if !ok { // Daily refuses to read it
				sl.over, c = true, budget.MaxNanos
			}
			sl.groups[j].Cost, sl.groups[j].Requests = c, sl.groups[j].Requests+1
			sl.groups[j].InputTokens += g.InputTokens
			sl.groups[j].OutputTokens += g.OutputTokens
			return
		}
	}
	sl.groups = append(sl.groups, g)
}
