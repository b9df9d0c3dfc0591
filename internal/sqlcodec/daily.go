package sqlcodec

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/llmbudget/budget"
)

// DayPieces are the pieces of a budget.DayTotalsQuery as the SQL stores
// read them, column by column: Days are whole UTC days of a UTC span, from
// the daily rollups; Slots the whole quarter hours, from the quarter-hour
// rollups; Rows the rest, from usage rows.
type DayPieces struct {
	Days, Slots, Rows Pieces
}

// Pieces are ranges of one kind, in parallel slices: the zone index, the
// range [Lo, Hi) and the shift that makes a local day of it. For days, Lo
// and Hi are UTC day numbers, each its own local day (Shift is 0); for
// slots, slot numbers, and the day of slot s is floor((s + Shift) / 96);
// for rows, Unix nanoseconds, and the day of a row at t is floor((t +
// Shift) / 86400e9).
type Pieces struct {
	Zone, Lo, Hi, Shift []int64
}

func (p *Pieces) add(zone int, lo, hi, shift int64) {
	p.Zone, p.Lo, p.Hi, p.Shift = append(p.Zone, int64(zone)), append(p.Lo, lo), append(p.Hi, hi), append(p.Shift, shift)
}

// Len returns the number of pieces.
func (p Pieces) Len() int { return len(p.Zone) }

// JSON encodes the pieces as a JSON array of [zone, lo, hi, shift]
// arrays, for SQLite's json_each.
func (p Pieces) JSON() string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range p.Zone {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('[')
		for j, v := range [...]int64{p.Zone[i], p.Lo[i], p.Hi[i], p.Shift[i]} {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(v, 10))
		}
		b.WriteByte(']')
	}
	b.WriteByte(']')
	return b.String()
}

// SplitDays splits q into the pieces a SQL store reads (see
// budget.DayTotalsQuery.Parts).
func SplitDays(q budget.DayTotalsQuery) DayPieces {
	var d DayPieces
	for _, p := range q.Parts() {
		switch p.Grain {
		case 24 * time.Hour:
			d.Days.add(p.Zone, p.From/DayNanos, p.To/DayNanos, 0)
		case budget.QuarterHour:
			q := int64(budget.QuarterHour)
			d.Slots.add(p.Zone, p.From/q, p.To/q, int64(p.Offset)/int64(budget.QuarterHour/time.Second))
		default:
			d.Rows.add(p.Zone, p.From, p.To, int64(p.Offset)*int64(time.Second))
		}
	}
	return d
}

// QuarterDayExpr is SQL for the local day of slot column s at shift k:
// floor((s + k) / 96), exact for either sign (SQLite and PostgreSQL both
// truncate integer division toward zero).
func QuarterDayExpr(s, k string) string {
	x := "(" + s + " + " + k + ")"
	return "((" + x + " - ((" + x + " % 96) + 96) % 96) / 96)"
}

// RowDayExpr is SQL for the local day of time column at (Unix
// nanoseconds) at shift k (nanoseconds).
func RowDayExpr(at, k string) string {
	x := "(" + at + " + " + k + ")"
	return "((" + x + " - ((" + x + " % 86400000000000) + 86400000000000) % 86400000000000) / 86400000000000)"
}

// ScanDays reads rows of (zone, day, provider, model, cost, requests,
// input tokens, output tokens) into DayTotals, summing rows of one key
// (a store's slot and row pieces may both answer for one day).
func ScanDays(rows Rows, userID string) ([]budget.DayTotals, error) {
	type key struct {
		zone            int
		day             int64
		provider, model string
	}
	var out []budget.DayTotals
	at := map[key]int{}
	for rows.Next() {
		var (
			zone int64
			g    budget.DayTotals
			cost int64
		)
		if err := rows.Scan(&zone, &g.Day, &g.Provider, &g.Model, &cost, &g.Requests, &g.InputTokens, &g.OutputTokens); err != nil {
			return nil, err
		}
		if cost < 0 {
			return nil, fmt.Errorf("daily spend of %q: negative sum %d", userID, cost)
		}
		g.Zone, g.Cost = int(zone), budget.Nanos(cost)
		k := key{g.Zone, g.Day, g.Provider, g.Model}
		if i, ok := at[k]; ok {
			old := &out[i]
			c, ok := old.Cost.Add(g.Cost)
			if !ok {
				return nil, fmt.Errorf("daily spend of %q exceeds %s", userID, budget.MaxNanos)
			}
			old.Cost, old.Requests = c, old.Requests+g.Requests
			old.InputTokens += g.InputTokens
			old.OutputTokens += g.OutputTokens
			continue
		}
		at[k] = len(out)
		out = append(out, g)
	}
	return out, nil
}
