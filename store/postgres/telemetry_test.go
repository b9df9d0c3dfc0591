package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/postgres"
	"github.com/llmbudget/budget/store/storetest"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestGroupCommitTelemetry runs TestGroupCommitRollback's batch (a
// duplicate and a stale statement among good ones) on a store with a meter
// provider and a logger: each rollback is logged at Debug with its batch's
// size and SQLSTATE, and the batch-size histogram, with store=postgres,
// sees the batches of 4, 3 and 2 statements.
func TestGroupCommitTelemetry(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	reader := sdkmetric.NewManualReader()
	var buf bytes.Buffer
	var bufMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&bufMu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := postgres.Open(ctx, testDSN(t), postgres.Options{
		Schema:        schema,
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		Logger:        log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	other := open(t, schema)
	c := storetest.NewClock(storetestStart)
	m := budget.NewManager(s, budget.Options{Now: c.Now})
	mo := budget.NewManager(other, budget.Options{Now: c.Now})
	users := []string{"good-1", "stale", "dup", "good-2"}
	for _, u := range users {
		setLimit(t, m, u, "10")
	}
	warm(t, m, users...)
	if _, err := m.Record(ctx, "dup", budget.Usage{ID: "taken", Cost: budget.MustAmount("1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := mo.Record(ctx, "stale", budget.Usage{Cost: budget.MustAmount("9.5")}); err != nil {
		t.Fatal(err)
	}
	release := stallFlushers(t, s, m, nil)
	bufMu.Lock()
	buf.Reset() // what the setup logged is not under test
	bufMu.Unlock()
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			var err error
			if u == "dup" {
				_, err = m.Record(ctx, u, budget.Usage{ID: "taken", Cost: budget.MustAmount("1")})
			} else {
				_, err = m.Reserve(ctx, u, budget.MustAmount("1"))
			}
			if err != nil && !errors.Is(err, budget.ErrDuplicate) && !errors.Is(err, budget.ErrBudgetExceeded) {
				t.Errorf("%s: %v", u, err)
			}
		})
	}
	waitPending(t, s, len(users))
	release()
	wg.Wait()

	bufMu.Lock()
	logged := buf.String()
	bufMu.Unlock()
	var rollbacks []string
	for line := range strings.Lines(logged) {
		if strings.Contains(line, "rolled its group commit back") {
			rollbacks = append(rollbacks, line)
		}
	}
	if len(rollbacks) != 2 ||
		!strings.Contains(rollbacks[0], "level=DEBUG") || !strings.Contains(rollbacks[0], "batch_size=4") || !strings.Contains(rollbacks[0], "sqlstate=23505") ||
		!strings.Contains(rollbacks[1], "level=DEBUG") || !strings.Contains(rollbacks[1], "batch_size=3") || !strings.Contains(rollbacks[1], "sqlstate=BGT01") {
		t.Errorf("want two DEBUG rollbacks, of 4 statements (23505) then 3 (BGT01); logged:\n%s", logged)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	var h *metricdata.HistogramDataPoint[int64]
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if mt.Name == "budget.store.batch.size" {
				d := mt.Data.(metricdata.Histogram[int64])
				if len(d.DataPoints) != 1 {
					t.Fatalf("budget.store.batch.size has %d series, want 1", len(d.DataPoints))
				}
				h = &d.DataPoints[0]
			}
		}
	}
	if h == nil {
		t.Fatal("no budget.store.batch.size")
	}
	if v, ok := h.Attributes.Value(attribute.Key("store")); !ok || v.AsString() != "postgres" || h.Attributes.Len() != 1 {
		t.Errorf("batch size attributes %v, want store=postgres alone", h.Attributes.ToSlice())
	}
	batches, statements, _ := postgres.BatchCounts(s)
	if maxv, ok := h.Max.Value(); h.Count != uint64(batches) || h.Sum != statements || !ok || maxv != 4 {
		t.Errorf("histogram: %d batches, %d statements, largest %d; store counted %d batches, %d statements; want the same and 4",
			h.Count, h.Sum, maxv, batches, statements)
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
