package interleave

import (
	"testing"
	"time"
)

func TestCompare(t *testing.T) {
	var baseOps, storeOps int
	r := testing.Benchmark(func(b *testing.B) {
		baseline := &Side{Goroutines: 1, Unit: "base/s", Op: func(int) error { baseOps++; return nil }}
		store := &Side{Goroutines: 2, Unit: "store/s", Op: func(int) error { time.Sleep(time.Microsecond); return nil }}
		Compare(b, time.Millisecond, baseline, store)
		storeOps = store.Count()
	})
	if baseOps == 0 || storeOps == 0 {
		t.Fatalf("%d baseline and %d store operations ran", baseOps, storeOps)
	}
	for _, metric := range []string{"base/s", "store/s", "x-baseline-rate"} {
		if r.Extra[metric] <= 0 {
			t.Errorf("metric %q = %v, want > 0 (all: %v)", metric, r.Extra[metric], r.Extra)
		}
	}
	if _, ok := r.Extra["x-baseline-ns"]; ok {
		t.Errorf("a parallel store reported x-baseline-ns")
	}
}
