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

	n int           // operations done
	t time.Duration // time taken
}

// Rate returns the operations per second s ran.
func (s *Side) Rate() float64 { return float64(s.n) / s.t.Seconds() }

// Count returns how many operations s ran.
func (s *Side) Count() int { return s.n }

// Compare runs, in each round of b.Loop, the baseline and the store for
// slice each, in alternating order, then reports both rates and their
// ratio: "x-baseline-rate" (store over baseline) when the store runs on
// several goroutines, else "x-baseline-ns" (the store's time per operation
// over the baseline's). An operation's error fails b.
func Compare(b *testing.B, slice time.Duration, baseline, store *Side) {
	b.ReportAllocs()
	for round := 0; b.Loop(); round++ {
		for k := range 2 {
			if (round+k)%2 == 0 {
				baseline.run(b, slice)
			} else {
				store.run(b, slice)
			}
		}
	}
	b.ReportMetric(baseline.Rate(), baseline.Unit)
	b.ReportMetric(store.Rate(), store.Unit)
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
	t0 := time.Now()
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
	s.n += int(n.Load())
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}
