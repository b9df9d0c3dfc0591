package httpapi_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/httpapi"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// whLog is a slog.Handler that keeps every record, at every level.
type whLog struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *whLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *whLog) WithAttrs([]slog.Attr) slog.Handler       { return h } // the tests read messages and levels only
func (h *whLog) WithGroup(string) slog.Handler            { return h }
func (h *whLog) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

// lines returns the records as "LEVEL message", in order.
func (h *whLog) lines() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.records {
		out = append(out, r.Level.String()+" "+r.Message)
	}
	return out
}

// whDeliveries returns budget.webhook.deliveries by outcome.
func whDeliveries(t *testing.T, reader *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "budget.webhook.deliveries" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				if dp.Attributes.Len() != 1 {
					t.Errorf("deliveries carry attributes %v, want outcome alone", dp.Attributes.ToSlice())
				}
				v, _ := dp.Attributes.Value(attribute.Key("outcome"))
				out[v.AsString()] += dp.Value
			}
		}
	}
	return out
}

func newObservedWH(t *testing.T, url string, opts httpapi.WebhookOptions) (*httpapi.Webhook, *whLog, *sdkmetric.ManualReader) {
	t.Helper()
	log, reader := &whLog{}, sdkmetric.NewManualReader()
	opts.Logger = slog.New(log)
	opts.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	wh, _ := newTestWH(t, url, opts)
	return wh, log, reader
}

func TestWebhookLogsRetriesThenSuccess(t *testing.T) {
	rc := newWHReceiver(t, http.StatusInternalServerError, http.StatusBadGateway, http.StatusOK)
	wh, log, reader := newObservedWH(t, rc.URL, httpapi.WebhookOptions{})
	wh.OnAlert(whAlert("bob", budget.Red))
	whClose(t, wh)

	want := []string{
		"WARN budget webhook: delivery failed, retrying",
		"WARN budget webhook: delivery failed, retrying",
		"INFO budget webhook: delivered",
	}
	if got := log.lines(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("logged:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := whDeliveries(t, reader); len(got) != 2 || got["retried"] != 2 || got["delivered"] != 1 {
		t.Errorf("budget.webhook.deliveries = %v, want retried 2, delivered 1", got)
	}
}

func TestWebhookLogsFinalFailure(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	url := closed.URL
	closed.Close() // connections are refused from now on
	wh, log, reader := newObservedWH(t, url, httpapi.WebhookOptions{MaxAttempts: 3})
	wh.OnAlert(whAlert("carol", budget.Yellow))
	whClose(t, wh)
	wh.OnAlert(whAlert("carol", budget.Orange)) // after Close: dropped

	want := []string{
		"WARN budget webhook: delivery failed, retrying",
		"WARN budget webhook: delivery failed, retrying",
		"ERROR budget webhook: delivery failed, giving up",
		"WARN budget webhook: alert dropped (queue full or webhook closed)",
	}
	if got := log.lines(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("logged:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := whDeliveries(t, reader); len(got) != 3 || got["retried"] != 2 || got["failed"] != 1 || got["dropped"] != 1 {
		t.Errorf("budget.webhook.deliveries = %v, want retried 2, failed 1, dropped 1", got)
	}
	if s := wh.Stats(); s != (httpapi.WebhookStats{Failed: 1, Dropped: 1}) {
		t.Errorf("Stats = %+v", s)
	}
}

// TestWebhookAbandonedAtShutdownCountsFailed checks that an alert Close
// abandons counts as failed, as Stats does, and is logged at Warn.
func TestWebhookAbandonedAtShutdownCountsFailed(t *testing.T) {
	url, entered, release, _ := whHangingReceiver(t)
	defer release()
	wh, log, reader := newObservedWH(t, url, httpapi.WebhookOptions{})
	wh.OnAlert(whAlert("dave", budget.Red))
	whWaitFor(t, entered)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := wh.Close(ctx); err == nil {
		t.Fatal("Close returned nil with a delivery hanging")
	}
	if got := whDeliveries(t, reader); len(got) != 1 || got["failed"] != 1 {
		t.Errorf("budget.webhook.deliveries = %v, want failed 1", got)
	}
	if len(log.lines()) == 0 {
		t.Error("nothing logged for the abandoned alert")
	}
	for _, l := range log.lines() {
		if !strings.HasPrefix(l, "WARN budget webhook: delivery abandoned at shutdown") {
			t.Errorf("logged %q", l)
		}
	}
}
