package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/sqlite"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestBatchTelemetry commits one batch of n Records, one of them a
// duplicate: the batch-size histogram sees it, with store=sqlite, and the
// fallback to savepoints is logged at Debug.
func TestBatchTelemetry(t *testing.T) {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	var buf bytes.Buffer
	var mu sync.Mutex // guards buf
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := open(t, filepath.Join(t.TempDir(), "budget.db"), sqlite.Options{
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		Logger:        log,
	})
	m := ftManager(s)
	ftLimit(t, m, "u", "1000")
	if _, err := m.Record(ctx, "u", budget.Usage{ID: "old", Cost: budget.MustAmount("1")}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if buf.Len() != 0 {
		t.Errorf("logged before any batch failed:\n%s", buf.String())
	}
	mu.Unlock()

	const n = 12
	release, err := sqlite.BlockWriter(s)
	if err != nil {
		t.Fatal(err)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		id := fmt.Sprintf("new-%d", i)
		if i == n/2 {
			id = "old"
		}
		wg.Go(func() { _, errs[i] = m.Record(ctx, "u", budget.Usage{ID: id, Cost: budget.MustAmount("1")}) })
	}
	ftWaitQueued(t, s, n)
	release()
	wg.Wait()
	for i, err := range errs {
		if dup := i == n/2; dup != errors.Is(err, budget.ErrDuplicate) {
			t.Errorf("Record %d: %v", i, err)
		}
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	var h *metricdata.HistogramDataPoint[int64]
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if mt.Name != "budget.store.batch.size" {
				continue
			}
			d := mt.Data.(metricdata.Histogram[int64])
			if len(d.DataPoints) != 1 {
				t.Fatalf("budget.store.batch.size has %d series, want 1", len(d.DataPoints))
			}
			h = &d.DataPoints[0]
		}
	}
	if h == nil {
		t.Fatal("no budget.store.batch.size")
	}
	if v, ok := h.Attributes.Value(attribute.Key("store")); !ok || v.AsString() != "sqlite" || h.Attributes.Len() != 1 {
		t.Errorf("batch size attributes %v, want store=sqlite alone", h.Attributes.ToSlice())
	}
	if maxv, ok := h.Max.Value(); !ok || maxv != n {
		t.Errorf("largest batch %d, want %d", maxv, n)
	}
	// Every write is in exactly one batch: the blocking one, the n
	// Records, and the setup's.
	if h.Sum < n+1 || uint64(h.Sum) < h.Count {
		t.Errorf("batches sum to %d operations in %d batches", h.Sum, h.Count)
	}

	mu.Lock()
	defer mu.Unlock()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "level=DEBUG") ||
		!strings.Contains(lines[0], fmt.Sprintf("batch_size=%d", n)) || !strings.Contains(lines[0], "already recorded") {
		t.Errorf("want one DEBUG line for the fallback of a batch of %d with the duplicate's error, got:\n%s", n, buf.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
