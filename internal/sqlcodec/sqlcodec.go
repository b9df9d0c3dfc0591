// Package sqlcodec holds what the SQL stores (store/sqlite, store/postgres)
// encode alike: times as Unix nanoseconds, UTC day numbers for the daily
// rollups, settings snapshots in the audit log as JSON, and LIKE patterns.
// Driver-specific work (null types, statements) stays in each store.
package sqlcodec

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/llmbudget/budget"
)

// Unix returns t as Unix nanoseconds, the form both SQL stores keep times
// in, or an error for a time outside the years 1678-2261 an int64 covers.
func Unix(t time.Time) (int64, error) {
	if t.Year() < 1678 || t.Year() > 2261 {
		return 0, fmt.Errorf("time %v is outside the years 1678-2261 a SQL store keeps", t)
	}
	return t.UnixNano(), nil
}

// FromUnix returns the UTC time of Unix nanoseconds n.
func FromUnix(n int64) time.Time { return time.Unix(0, n).UTC() }

// DayNanos is the length of a rollup day.
const DayNanos = int64(24 * time.Hour)

// DayOf returns the UTC day number of a Unix-nanosecond time: the key of the
// daily rollup a usage at that time adds to.
func DayOf(at int64) int64 {
	d := at / DayNanos
	if at%DayNanos < 0 {
		d--
	}
	return d
}

// Split divides the range [from, to) of Unix nanoseconds for a breakdown:
// whole UTC days [firstDay, lastDay) read from the daily rollups, and the
// partial days at the edges, rows, read from usage rows. With no whole day
// inside, firstDay == lastDay and rows is the whole range.
func Split(from, to int64) (firstDay, lastDay int64, rows [][2]int64) {
	firstDay = DayOf(from-1) + 1 // the first day starting at or after from
	lastDay = DayOf(to)          // days before it end at or before to
	if firstDay >= lastDay {
		return 0, 0, [][2]int64{{from, to}}
	}
	return firstDay, lastDay, [][2]int64{{from, firstDay * DayNanos}, {lastDay * DayNanos, to}}
}

// SettingsJSON encodes a settings snapshot of the audit log; nil stays nil.
func SettingsJSON(s *budget.Settings) ([]byte, error) {
	if s == nil {
		return nil, nil
	}
	return json.Marshal(s)
}

// ParseSettings decodes what SettingsJSON wrote; empty input is nil.
func ParseSettings(b []byte) (*budget.Settings, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var s budget.Settings
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Contains returns a LIKE pattern, with \ as its escape character, that
// matches strings containing s.
func Contains(s string) string {
	return "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s) + "%"
}
