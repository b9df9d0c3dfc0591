// Package interleave runs a store's benchmark and its baseline in turns, so
// that both see the same machine: on shared machines the disk's fsync
// latency and the CPU available drift by more than the ratios the
// benchmarks report. It is for the stores' benchmarks only.
package interleave

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Side is one operation of a comparison: Op runs once on goroutine i, of
// Goroutines (at least 1); Unit names its rate in the metrics ("pairs/s").
type Side struct {
	Op         func(i int) error
	Goroutines int
	Unit       string

	n      int           // operations done
	t, cpu time.Duration // time taken, and the process's CPU time meanwhile
}

// Rate returns the operations per second s ran.
func (s *Side) Rate() float64 { return float64(s.n) / s.t.Seconds() }

// Count returns how many operations s ran.
func (s *Side) Count() int { return s.n }

// cpuPerOp returns the process's CPU time per operation of s: the cost of
// an operation whatever else runs on the machine, which shifts the rates
// of both sides alike only on average.
func (s *Side) cpuPerOp() float64 { return float64(s.cpu) / float64(s.n) }

// Alternate runs, in each round of b.Loop, base and other for slice each,
// in alternating order, and reports both rates (in their Units) and the
// ratio of their CPU time per operation, other's over base's, as "x-cpu"
// where the process's CPU time can be read. An operation's error fails b.
// The caller reports the ratio it targets from the two Rates.
func Alternate(b *testing.B, slice time.Duration, base, other *Side) {
	b.ReportAllocs()
	for round := 0; b.Loop(); round++ {
		for k := range 2 {
			if (round+k)%2 == 0 {
				base.run(b, slice)
			} else {
				other.run(b, slice)
			}
		}
	}
	b.ReportMetric(base.Rate(), base.Unit)
	b.ReportMetric(other.Rate(), other.Unit)
	if base.cpu > 0 && other.cpu > 0 {
		b.ReportMetric(other.cpuPerOp()/base.cpuPerOp(), "x-cpu")
	}
}

// Compare is Alternate for a store and its baseline, reporting their
// ratio: "x-baseline-rate" (store over baseline) when the store runs on
// several goroutines, else "x-baseline-ns" (the store's time per operation
// over the baseline's).
func Compare(b *testing.B, slice time.Duration, baseline, store *Side) {
	Alternate(b, slice, baseline, store)
	if store.Goroutines > 1 {
		b.ReportMetric(store.Rate()/baseline.Rate(), "x-baseline-rate")
	} else {
		b.ReportMetric(baseline.Rate()/store.Rate(), "x-baseline-ns")
	}
}

// run runs s.Op on s.Goroutines goroutines for d, and counts.
func (s *Side) run(b *testing.B, d time.Duration) {
	var (
		stop atomic.Bool
		n    atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, max(s.Goroutines, 1))
	)
	t0, cpu0 := time.Now(), processCPU()
	for i := range max(s.Goroutines, 1) {
		wg.Go(func() {
			for !stop.Load() {
				if err := s.Op(i); err != nil {
					errs <- err
					return
				}
				n.Add(1)
			}
		})
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	s.t += time.Since(t0)
	s.cpu += processCPU() - cpu0
	s.n += int(n.Load())
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}
