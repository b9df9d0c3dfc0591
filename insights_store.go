package budget

import (
	"time"
)

// This file holds the store-facing vocabulary of the insights (spend per
// day, imports): what the Manager asks a Store for and what a store
// answers. Callers of the Manager meet DailyQuery, DailySpend and
// ImportResult instead (daily.go, csvimport.go).

// QuarterHour is the grain of the rollups the stores in this module keep
// beside each usage row: usage summed per provider, model and UTC quarter
// hour (the 15-minute slots counted from the Unix epoch). Every UTC offset
// in use since 1979 is a whole number of quarter hours, so every local
// midnight falls on a slot boundary and whole slots sum into local days
// exactly, in any time zone and across any DST change (see DayPart).
const QuarterHour = 15 * time.Minute

// ZoneSpan is a stretch of time during which a time zone's offset from UTC
// does not change.
type ZoneSpan struct {
	// Start is the span's first instant.
	Start time.Time
	// Offset is the zone's offset east of UTC, in seconds.
	Offset int
}

// DayTotalsQuery asks a store for one budget's usage in [From, To), summed
// per local day and per provider and model. The Manager builds it from the
// holder's time zone, so that a store needs no time zone database: Zones
// partition [From, To) into spans of one UTC offset, in order, the first
// starting at From; span i covers [Zones[i].Start, Zones[i+1].Start), the
// last one up to To.
type DayTotalsQuery struct {
	UserID   string
	From, To time.Time
	Zones    []ZoneSpan
}

// DayTotals is the usage of one provider and model on one local day, as
// far as it falls in one zone span of a DayTotalsQuery.
type DayTotals struct {
	// Zone is the index of the span in DayTotalsQuery.Zones.
	Zone int
	// Day is the local day, LocalDay(at, offset) of the usage it sums.
	Day int64
	UsageGroup
}

// LocalDay returns the local day of the instant at (Unix nanoseconds) at
// a UTC offset of offset seconds: the number of days from 1970-01-01 to
// the local date, floor((at + offset×10⁹) / (86400×10⁹)).
func LocalDay(at int64, offset int) int64 {
	return floorDiv(at+int64(offset)*int64(time.Second), int64(24*time.Hour))
}

// DayPart is one piece of a DayTotalsQuery as a store reads it (see
// DayTotalsQuery.Parts).
type DayPart struct {
	// Zone is the span's index in DayTotalsQuery.Zones, Offset its offset.
	Zone   int
	Offset int
	// From and To bound the piece, [From, To), in Unix nanoseconds.
	From, To int64
	// Grain says how to read the piece:
	//
	//   - 24 hours: From and To are UTC midnights and Offset is 0: the
	//     piece is the whole UTC days [From/24h, To/24h), each its own
	//     local day; read them from daily rollups.
	//   - QuarterHour: From and To are quarter-hour boundaries and Offset
	//     a whole number of quarter hours: the piece is the whole slots
	//     [From/QuarterHour, To/QuarterHour), each inside the local day
	//     SlotDay(slot, Offset); read them from quarter-hour rollups.
	//   - 0: read the usage rows, each on LocalDay(at, Offset).
	Grain time.Duration
}

// Parts splits q for a store that keeps daily (UTC) and quarter-hour
// rollups: for each zone span, the whole UTC days inside it when its
// offset is zero (UTC's own, the default zone), else the whole quarter
// hours inside it, then the whole quarter hours left at the days' edges,
// and the slivers of quarter hours at the span's edges (at From and To, and
// at a change of offset that is not on a quarter hour: a few in the 1980s,
// 2010 and 2020), or the whole span when its offset is not a whole number
// of quarter hours (some zones before 1979). So the rows a store reads are
// at most those of a quarter hour at each edge of the range; any more only
// for spans no usage falls in. Empty pieces are left out.
func (q DayTotalsQuery) Parts() []DayPart {
	const (
		slot = int64(QuarterHour)
		day  = int64(24 * time.Hour)
	)
	var out []DayPart
	add := func(z int, off int, from, to int64, grain time.Duration) {
		if from < to {
			out = append(out, DayPart{Zone: z, Offset: off, From: from, To: to, Grain: grain})
		}
	}
	ceil := func(t, unit int64) int64 { return -floorDiv(-t, unit) * unit }
	floor := func(t, unit int64) int64 { return floorDiv(t, unit) * unit }
	for i, z := range q.Zones {
		from, to := z.Start.UnixNano(), q.To.UnixNano()
		if i+1 < len(q.Zones) {
			to = q.Zones[i+1].Start.UnixNano()
		}
		if from >= to {
			continue
		}
		lo, hi := ceil(from, slot), floor(to, slot)
		if int64(z.Offset)*int64(time.Second)%slot != 0 || lo >= hi {
			add(i, z.Offset, from, to, 0)
			continue
		}
		add(i, z.Offset, from, lo, 0)
		if dlo, dhi := ceil(lo, day), floor(hi, day); z.Offset == 0 && dlo < dhi {
			add(i, z.Offset, lo, dlo, QuarterHour)
			add(i, z.Offset, dlo, dhi, 24*time.Hour)
			add(i, z.Offset, dhi, hi, QuarterHour)
		} else {
			add(i, z.Offset, lo, hi, QuarterHour)
		}
		add(i, z.Offset, hi, to, 0)
	}
	return out
}

// QuarterOf returns the quarter-hour slot of the instant at (Unix
// nanoseconds): floor(at / QuarterHour), the key of its rollup.
func QuarterOf(at int64) int64 { return floorDiv(at, int64(QuarterHour)) }

// SlotDay returns the local day of quarter-hour slot s of a DayPart of
// grain QuarterHour at offset seconds: floor((s + offset/900) / 96).
func SlotDay(s int64, offset int) int64 {
	return floorDiv(s+int64(offset/900), int64(24*time.Hour/QuarterHour))
}

// ImportRequest asks a store to write several budgets' settings in one
// atomic step (see Store.Import).
type ImportRequest struct {
	// Items are the budgets to write, one per key, in increasing key
	// order (byte order).
	Items []ImportItem
	// Audit are entries to append beside the items' own, in order, with
	// the times they carry (an import of another system's history).
	Audit []AuditEntry
	Now   time.Time
}

// ImportItem is one budget an ImportRequest writes: as UpdateSettings
// would, or, with Create, as CreateSettings followed by UpdateSettings.
type ImportItem struct {
	// Create says the budget had no settings when the Manager read it:
	// the store creates it with Initial, the settings a first call would
	// have created (Version 1, counters starting in Current's window),
	// then updates it as any other item. If the budget has settings by
	// then, the store treats it as an existing one: its version must
	// still be Initial.Version.
	Create  bool
	Initial Settings
	// Settings, Current, Next and Audit are those of an UpdateRequest:
	// the new settings, the policies of the settings they replace and of
	// themselves, and the settings entry to append.
	Settings Settings
	Current  Policy
	Next     Policy
	Audit    AuditEntry
}
