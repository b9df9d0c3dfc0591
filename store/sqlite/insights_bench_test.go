package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/sqlite"
)

// The insights' benchmarks read one user's history of 1,000,000 usage
// rows, written once per process by buildInsights.
const (
	insightsUser = "busy"
	insightsTZ   = "America/New_York"
)

// insightsLayout says where buildInsights puts the rows: all on one local
// day (the busy day of a million calls), or spread over ten years.
type insightsLayout struct {
	name string
	from time.Time // the first row's time
	span time.Duration
}

var (
	newYork, _ = time.LoadLocation(insightsTZ)
	// busyDay is a Tuesday in New York; its rows span its 24 hours.
	busyDay      = time.Date(2025, time.June, 10, 0, 0, 0, 0, newYork)
	layoutDay    = insightsLayout{"day", busyDay, 24 * time.Hour}
	layoutDecade = insightsLayout{"decade", busyDay.AddDate(-10, 0, 1), busyDay.AddDate(0, 0, 1).Sub(busyDay.AddDate(-10, 0, 1))}
)

// insightsFixture is a database built once per layout per process.
type insightsFixture struct {
	once sync.Once
	dir  string
	path string
	err  error
}

var insightsFixtures = map[string]*insightsFixture{"day": {}, "decade": {}}

// insightsFile returns the database of layout l, building it on first use:
// the user through the Manager, then the usage rows directly, in
// transactions of 10,000 with synchronous=OFF; the trigger of schema
// version 4 writes their quarter-hour rollups as the store's own inserts
// do. The daily rollups are written from the rows at the end.
func insightsFile(b *testing.B, l insightsLayout) string {
	b.Helper()
	f := insightsFixtures[l.name]
	f.once.Do(func() {
		t0 := time.Now()
		if f.dir, f.err = os.MkdirTemp("", "budget-insights-bench-"); f.err == nil {
			f.path = filepath.Join(f.dir, "insights.db")
			f.err = buildInsights(f.path, l, benchRows)
		}
		b.Logf("built the %q database of %d rows in %v", l.name, benchRows, time.Since(t0).Round(time.Millisecond))
	})
	if f.err != nil {
		b.Fatal(f.err)
	}
	return f.path
}

func buildInsights(path string, l insightsLayout, rows int) error {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path, sqlite.Options{Durability: sqlite.DurabilityNormal})
	if err != nil {
		return err
	}
	now := l.from
	m := budget.NewManager(s, budget.Options{Now: func() time.Time { return now }})
	tz := insightsTZ
	if _, err := m.UpdateSettings(ctx, benchAdmin, insightsUser, budget.SettingsUpdate{Timezone: &tz, Enforce: ptr(false)}); err != nil {
		s.Close()
		return err
	}
	if err := s.Close(); err != nil {
		return err
	}
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)&_pragma=cache_size(-131072)&_txlock=immediate")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	step := int64(l.span) / int64(rows)
	for lo := 0; lo < rows; lo += benchLoadBatch {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		ins, err := tx.Prepare(`INSERT INTO usage (user_id, id, hold_id, provider, model, input_tokens, output_tokens, cost, at)
			VALUES (?, ?, '', ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			tx.Rollback()
			return err
		}
		for i := lo; i < min(lo+benchLoadBatch, rows); i++ {
			mi := i % len(benchModels)
			at := l.from.UnixNano() + int64(i)*step
			if _, err := ins.Exec(insightsUser, fmt.Sprintf("c%08d", i), benchModels[mi][0], benchModels[mi][1],
				500+i%1500, 100+i%400, 1_000_000+(i%50)*100_000, at); err != nil {
				tx.Rollback()
				return err
			}
		}
		ins.Close()
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	if _, err := db.Exec(`INSERT INTO usage_daily (user_id, day, provider, model, cost, requests, input_tokens, output_tokens)
		SELECT user_id, at / 86400000000000, provider, model, SUM(cost), COUNT(*), SUM(input_tokens), SUM(output_tokens)
		FROM usage GROUP BY 1, 2, 3, 4`); err != nil {
		return err
	}
	_, err = db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	return err
}

// removeInsights removes the fixtures when a benchmark that used them
// ends, and forgets them, so that a later benchmark of the same process
// (BenchmarkExportUsage after BenchmarkDaily) builds them again rather
// than open a file that is gone.
func removeInsights() {
	for name, f := range insightsFixtures {
		if f.dir != "" {
			os.RemoveAll(f.dir)
		}
		insightsFixtures[name] = &insightsFixture{}
	}
}

// insightsManager opens the fixture of l read-only in effect: the
// benchmarks only read.
func insightsManager(b *testing.B, l insightsLayout) *budget.Manager {
	b.Helper()
	s := benchOpen(b, insightsFile(b, l), sqlite.DurabilityNormal)
	return budget.NewManager(s, budget.Options{Now: func() time.Time { return busyDay.AddDate(0, 0, 1) }})
}

// BenchmarkDaily is the spend per local day (New York) of a user with
// 1,000,000 usage rows, all on one busy day, over that day and over the
// ten years that end with it (twenty DST changes, so twenty-one zone
// spans). Both read the same 384 quarter-hour rollups (96 quarter hours ×
// 4 models) and no usage row: "10years" reports its ratio to "1day"
// (x-1day), which must stay within 1.5; "interleaved" times the two
// alternately, for a ratio that the machine's other load does not skew.
// "rows-1day" is what the rollups save: the same sums grouped from the
// day's usage rows.
//
// "decade" spreads the same rows over the ten years instead (274 a day),
// the worst case for a long range: then ten years are 3,653 days of
// quarter-hour rollups, about 700,000 of them, and the cost grows with
// them (still not with the rows: a 1-day range reads a day's). In UTC
// ("10years-UTC", the store alone), whole days come from the daily
// rollups: 3,653 days × 4 models.
func BenchmarkDaily(b *testing.B) {
	b.Cleanup(removeInsights)
	var dayNs float64
	admin := budget.Principal{UserID: "root", Admin: true}
	ranges := []struct {
		name     string
		from, to time.Time
	}{
		{"1day", busyDay, busyDay.AddDate(0, 0, 1)},
		{"10years", busyDay.AddDate(-10, 0, 1), busyDay.AddDate(0, 0, 1)},
	}
	for _, l := range []insightsLayout{layoutDay, layoutDecade} {
		b.Run(l.name, func(b *testing.B) {
			for _, r := range ranges {
				b.Run(r.name, func(b *testing.B) {
					ctx := context.Background()
					m := insightsManager(b, l)
					d, err := m.Daily(ctx, admin, budget.DailyQuery{UserID: insightsUser, From: r.from, To: r.to})
					if err != nil {
						b.Fatal(err)
					}
					b.ReportAllocs()
					n := 0
					for b.Loop() {
						if _, err := m.Daily(ctx, admin, budget.DailyQuery{UserID: insightsUser, From: r.from, To: r.to}); err != nil {
							b.Fatal(err)
						}
						n++
					}
					ns := float64(b.Elapsed().Nanoseconds()) / float64(n)
					b.ReportMetric(float64(d.Total.Requests), "rows-in-range")
					b.ReportMetric(float64(len(d.Days)), "days")
					if r.name == "1day" {
						dayNs = ns
					} else if dayNs > 0 {
						b.ReportMetric(ns/dayNs, "x-1day")
					}
				})
			}
			// The same ten years in UTC, where whole days come from the
			// daily rollups: the store's answer alone.
			b.Run("10years-UTC", func(b *testing.B) {
				ctx := context.Background()
				s := benchOpen(b, insightsFile(b, l), sqlite.DurabilityNormal)
				from, to := ranges[1].from.UTC().Truncate(24*time.Hour), ranges[1].to.UTC().Truncate(24*time.Hour)
				q := budget.DayTotalsQuery{UserID: insightsUser, From: from, To: to, Zones: []budget.ZoneSpan{{Start: from}}}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Daily(ctx, q); err != nil {
						b.Fatal(err)
					}
				}
			})
			if l.name != "day" {
				return
			}
			// The two ranges alternately, each call timed: on a shared
			// machine, a ratio of one run to another measures the
			// neighbours as much as the code.
			b.Run("interleaved", func(b *testing.B) {
				ctx := context.Background()
				m := insightsManager(b, l)
				var spent [2]time.Duration
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					for i, r := range ranges {
						t0 := time.Now()
						if _, err := m.Daily(ctx, admin, budget.DailyQuery{UserID: insightsUser, From: r.from, To: r.to}); err != nil {
							b.Fatal(err)
						}
						spent[i] += time.Since(t0)
					}
					n++
				}
				b.ReportMetric(float64(spent[0].Nanoseconds())/float64(n), "ns-1day")
				b.ReportMetric(float64(spent[1].Nanoseconds())/float64(n), "ns-10years")
				b.ReportMetric(float64(spent[1])/float64(spent[0]), "x-1day")
			})
			b.Run("rows-1day", func(b *testing.B) {
				insightsManager(b, l) // the store is open: the fixture exists
				db := ftRaw(b, insightsFile(b, l))
				b.ReportAllocs()
				for b.Loop() {
					rows, err := db.Query(`SELECT provider, model, SUM(cost), COUNT(*) FROM usage
						WHERE user_id = ? AND at >= ? AND at < ? GROUP BY 1, 2`, insightsUser, busyDay.UnixNano(), busyDay.AddDate(0, 0, 1).UnixNano())
					if err != nil {
						b.Fatal(err)
					}
					for rows.Next() {
					}
					rows.Close()
				}
			})
		})
	}
}

// peakHeap is an io.Writer that discards what it is given and samples the
// live heap (runtime/metrics' heap objects, no stop-the-world) every 64
// KiB written: the peak an export reaches while it streams.
type peakHeap struct {
	since   int
	written int64
	peak    uint64
	sample  []metrics.Sample
}

func newPeakHeap() *peakHeap {
	return &peakHeap{sample: []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}}
}

func (p *peakHeap) Write(b []byte) (int, error) {
	p.written += int64(len(b))
	if p.since += len(b); p.since >= 64<<10 {
		p.since = 0
		p.read()
	}
	return len(b), nil
}

func (p *peakHeap) read() {
	metrics.Read(p.sample)
	p.peak = max(p.peak, p.sample[0].Value.Uint64())
}

var _ io.Writer = (*peakHeap)(nil)

// BenchmarkExportUsage streams a user's usage as CSV to a writer that
// discards it: 100,000 rows (the first 2.4 hours of the busy day) and all
// 1,000,000. It reports the peak of the live heap during the export, which
// stays flat in the number of rows (a page of rows and the CSV writer's
// buffer), and the bytes written.
func BenchmarkExportUsage(b *testing.B) {
	b.Cleanup(removeInsights)
	admin := budget.Principal{UserID: "root", Admin: true}
	for _, c := range []struct {
		name string
		to   time.Time
	}{
		{"100k", busyDay.Add(24 * time.Hour / 10)},
		{"1M", busyDay.AddDate(0, 0, 1)},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			m := insightsManager(b, layoutDay)
			b.ReportAllocs()
			var peak, base uint64
			var written int64
			for b.Loop() {
				runtime.GC()
				w := newPeakHeap()
				w.read()
				base = w.peak
				if err := m.ExportUsage(ctx, admin, w, budget.UsageQuery{UserID: insightsUser, From: busyDay, To: c.to}); err != nil {
					b.Fatal(err)
				}
				peak, written = max(peak, w.peak), w.written
			}
			b.ReportMetric(float64(peak), "peak-heap-B")
			b.ReportMetric(float64(peak-min(peak, base)), "peak-over-start-B")
			b.ReportMetric(float64(written), "csv-B")
		})
	}
}

// BenchmarkQuarterTrigger is what the quarter-hour rollups cost the write
// path: Reserve+Settle pairs (DurabilityNormal, so that the commit's CPU
// shows rather than the disk's fsync) on a store with schema version 4's
// trigger and on one whose trigger was dropped, alternately, each pair
// timed.
func BenchmarkQuarterTrigger(b *testing.B) {
	ctx := context.Background()
	var ms [2]*budget.Manager
	for i, drop := range []bool{false, true} {
		path := filepath.Join(b.TempDir(), "budget.db")
		s, err := sqlite.Open(ctx, path, sqlite.Options{})
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
		if drop {
			db, err := sql.Open("sqlite", path)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := db.Exec(`DROP TRIGGER usage_quarter_rollup`); err != nil {
				b.Fatal(err)
			}
			db.Close()
		}
		ms[i] = budget.NewManager(benchOpen(b, path, sqlite.DurabilityNormal), budget.Options{Now: benchClock()})
		benchUsers(b, ms[i], "alice")
	}
	var spent [2]time.Duration
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for i, m := range ms {
			t0 := time.Now()
			if err := benchPair(ctx, m, "alice"); err != nil {
				b.Fatal(err)
			}
			spent[i] += time.Since(t0)
		}
		n++
	}
	b.ReportMetric(float64(spent[0].Nanoseconds())/float64(n), "ns-pair-trigger")
	b.ReportMetric(float64(spent[1].Nanoseconds())/float64(n), "ns-pair-none")
	b.ReportMetric(float64(spent[0])/float64(spent[1]), "x-none")
}
