package budget_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/memory"
	"github.com/shopspring/decimal"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// observed is a Manager over a memory store with in-memory metric and span
// readers.
type observed struct {
	m      *budget.Manager
	store  *memory.Store
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
}

// newObserved returns an observed Manager whose users start with limit,
// enforced, and whose clock stands still.
func newObserved(t *testing.T, limit string, opts budget.Options) *observed {
	t.Helper()
	o := &observed{store: memory.New(), reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	plan := budget.DefaultUserPlan()
	plan.Limit = budget.MustAmount(limit)
	now := time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC)
	opts.Now = func() time.Time { return now }
	opts.UserPlan = &plan
	opts.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(o.reader))
	opts.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(o.spans))
	o.m = budget.NewManager(o.store, opts)
	return o
}

// collect returns every metric the Manager recorded, by name.
func (o *observed) collect(t *testing.T) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := o.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// counts returns an Int64 counter's values by their attributes, encoded as
// "k=v,k=v" in key order.
func counts(t *testing.T, data map[string]metricdata.Aggregation, name string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	d, ok := data[name]
	if !ok {
		return out
	}
	sum, ok := d.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is a %T, want an int64 sum", name, d)
	}
	if !sum.IsMonotonic {
		t.Errorf("%s is not monotonic", name)
	}
	for _, dp := range sum.DataPoints {
		out[dp.Attributes.Encoded(attribute.DefaultEncoder())] += dp.Value
	}
	return out
}

func TestMetricsReserveRefusedForLimit(t *testing.T) {
	ctx := context.Background()
	o := newObserved(t, "1", budget.Options{})
	r, err := o.m.Reserve(ctx, "alice", budget.MustAmount("0.6"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx)
	if _, err := o.m.Reserve(ctx, "alice", budget.MustAmount("0.6")); !errors.Is(err, budget.ErrBudgetExceeded) {
		t.Fatalf("second reserve: %v, want ErrBudgetExceeded", err)
	}
	if _, err := o.m.Reserve(ctx, "alice", decimal.RequireFromString("-1")); !errors.Is(err, budget.ErrInvalidAmount) {
		t.Fatalf("negative reserve: %v, want ErrInvalidAmount", err)
	}
	if _, err := o.m.Reserve(ctx, "bob", budget.MustAmount("0.1")); err != nil {
		t.Fatal(err)
	}
	o.store.Close()
	if _, err := o.m.Reserve(ctx, "alice", budget.MustAmount("0.1")); !errors.Is(err, budget.ErrClosed) {
		t.Fatalf("reserve on a closed store: %v, want ErrClosed", err)
	}

	data := o.collect(t)
	got := counts(t, data, "budget.reserves")
	want := map[string]int64{
		"outcome=allowed":                    2,
		"outcome=refused,reason=limit":       1,
		"outcome=refused,reason=invalid":     1,
		"outcome=refused,reason=store_error": 1,
	}
	if len(got) != len(want) {
		t.Errorf("budget.reserves = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("budget.reserves{%s} = %d, want %d", k, got[k], v)
		}
	}
	h, ok := data["budget.reserve.duration"].(metricdata.Histogram[float64])
	if !ok || len(h.DataPoints) != 1 || h.DataPoints[0].Count != 5 {
		t.Errorf("budget.reserve.duration = %+v, want one series of 5 reserves", data["budget.reserve.duration"])
	}
}

func TestMetricsSpendPerModelIsExact(t *testing.T) {
	ctx := context.Background()
	o := newObserved(t, "1000", budget.Options{})
	type call struct {
		user, provider, model, cost string
		settle                      bool
	}
	calls := []call{
		{"alice", "openai", "gpt-4o", "0.000000001", true},
		{"alice", "openai", "gpt-4o", "0.123456789", false},
		{"bob", "openai", "gpt-4o", "0.1", true},
		{"bob", "openai", "gpt-4o-mini", "0.000000003", true},
		{"carol", "anthropic", "claude-sonnet-4", "12.345678901", false},
		{"carol", "anthropic", "claude-sonnet-4", "0.2", true},
		{"alice", "openai", "gpt-4o", "0", true},
	}
	want := map[string]budget.Nanos{}
	for _, c := range calls {
		u := budget.Usage{Provider: c.provider, Model: c.model, Cost: budget.MustAmount(c.cost)}
		if c.settle {
			r, err := o.m.Reserve(ctx, c.user, budget.MustAmount("1"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Settle(ctx, u); err != nil {
				t.Fatal(err)
			}
		} else if _, err := o.m.Record(ctx, c.user, u); err != nil {
			t.Fatal(err)
		}
		n, err := budget.ToNanos(u.Cost)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			want["model="+c.model+",provider="+c.provider] += n
		}
	}
	// A duplicate usage ID is refused and counts nothing.
	u := budget.Usage{ID: "once", Provider: "openai", Model: "gpt-4o", Cost: budget.MustAmount("5")}
	if _, err := o.m.Record(ctx, "alice", u); err != nil {
		t.Fatal(err)
	}
	want["model=gpt-4o,provider=openai"] += 5_000_000_000
	if _, err := o.m.Record(ctx, "alice", u); !errors.Is(err, budget.ErrDuplicate) {
		t.Fatalf("duplicate record: %v, want ErrDuplicate", err)
	}

	got := counts(t, o.collect(t), "budget.spend")
	if len(got) != len(want) {
		t.Errorf("budget.spend has series %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != int64(v) {
			t.Errorf("budget.spend{%s} = %d nano-USD, want %d", k, got[k], v)
		}
	}
}

func TestMetricsAlertsByLevel(t *testing.T) {
	ctx := context.Background()
	o := newObserved(t, "10", budget.Options{})
	// The default thresholds are 50, 80 and 100 percent.
	for _, cost := range []string{"5", "3.5", "0.5"} {
		if _, err := o.m.Record(ctx, "alice", budget.Usage{Provider: "p", Model: "m", Cost: budget.MustAmount(cost)}); err != nil {
			t.Fatal(err)
		}
	}
	got := counts(t, o.collect(t), "budget.alerts")
	want := map[string]int64{"level=yellow": 1, "level=orange": 1, "level=red": 0}
	if len(got) != len(want) || got["level=yellow"] != 1 || got["level=orange"] != 1 || got["level=red"] != 0 {
		t.Errorf("budget.alerts = %v, want %v", got, want)
	}
}

// TestTelemetryNoUserIDs checks that no metric carries a user ID, and that
// spans carry it only when the host opts in.
func TestTelemetryNoUserIDs(t *testing.T) {
	const user = "user-8f3a-secret"
	for _, optIn := range []bool{false, true} {
		ctx := context.Background()
		o := newObserved(t, "1", budget.Options{TraceUserIDs: optIn})
		r, err := o.m.Reserve(ctx, user, budget.MustAmount("0.5"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Settle(ctx, budget.Usage{Provider: "openai", Model: "gpt-4o", Cost: budget.MustAmount("0.9")}); err != nil {
			t.Fatal(err)
		}
		if _, err := o.m.Reserve(ctx, user, budget.MustAmount("0.5")); !errors.Is(err, budget.ErrBudgetExceeded) {
			t.Fatalf("reserve past the limit: %v", err)
		}
		admin := budget.Principal{UserID: "root", Admin: true}
		if _, err := o.m.Reset(ctx, admin, user, budget.ResetOptions{}); err != nil {
			t.Fatal(err)
		}

		var rm metricdata.ResourceMetrics
		if err := o.reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				for _, set := range attributeSets(m.Data) {
					if enc := set.Encoded(attribute.DefaultEncoder()); strings.Contains(enc, user) {
						t.Errorf("metric %s carries the user ID: %s", m.Name, enc)
					}
				}
			}
		}

		spans := o.spans.Ended()
		if len(spans) == 0 {
			t.Fatal("no spans")
		}
		withID := 0
		for _, s := range spans {
			// Error texts name users: events and statuses may carry
			// them only when the host opted in.
			for _, ev := range s.Events() {
				for _, kv := range ev.Attributes {
					if !optIn && strings.Contains(kv.Value.Emit(), user) {
						t.Errorf("span %s event %s carries the user ID in %s", s.Name(), ev.Name, kv.Key)
					}
				}
			}
			if !optIn && strings.Contains(s.Status().Description, user) {
				t.Errorf("span %s status carries the user ID", s.Name())
			}
			for _, kv := range s.Attributes() {
				if strings.Contains(kv.Value.Emit(), user) {
					if kv.Key != "budget.user_id" {
						t.Errorf("span %s carries the user ID as %s", s.Name(), kv.Key)
					}
					withID++
				}
			}
		}
		switch {
		case !optIn && withID > 0:
			t.Errorf("without TraceUserIDs, %d spans carry the user ID", withID)
		case optIn && withID == 0:
			t.Error("with TraceUserIDs, no span carries the user ID")
		}
		if optIn {
			for _, s := range spans {
				if s.Name() == "budget.Reserve" || s.Name() == "budget.store.Reserve" || s.Name() == "budget.store.Settle" {
					if !hasAttr(s, "budget.user_id", user) {
						t.Errorf("with TraceUserIDs, span %s lacks budget.user_id", s.Name())
					}
				}
				if s.Name() == "budget.Reset" && !hasAttr(s, "budget.actor_id", "root") {
					t.Errorf("with TraceUserIDs, span budget.Reset lacks budget.actor_id")
				}
			}
		}
	}
}

func hasAttr(s sdktrace.ReadOnlySpan, key, value string) bool {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key && kv.Value.Emit() == value {
			return true
		}
	}
	return false
}

// attributeSets returns the attribute sets of an aggregation's data points.
func attributeSets(d metricdata.Aggregation) []attribute.Set {
	var out []attribute.Set
	switch d := d.(type) {
	case metricdata.Sum[int64]:
		for _, dp := range d.DataPoints {
			out = append(out, dp.Attributes)
		}
	case metricdata.Sum[float64]:
		for _, dp := range d.DataPoints {
			out = append(out, dp.Attributes)
		}
	case metricdata.Histogram[float64]:
		for _, dp := range d.DataPoints {
			out = append(out, dp.Attributes)
		}
	case metricdata.Histogram[int64]:
		for _, dp := range d.DataPoints {
			out = append(out, dp.Attributes)
		}
	}
	return out
}

// TestSpansNestManagerThenStore checks that every store call is a span
// whose parent is the span of the Manager call that made it.
func TestSpansNestManagerThenStore(t *testing.T) {
	ctx := context.Background()
	o := newObserved(t, "1", budget.Options{})
	r, err := o.m.Reserve(ctx, "alice", budget.MustAmount("0.5"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Settle(ctx, budget.Usage{Provider: "openai", Model: "gpt-4o", Cost: budget.MustAmount("0.2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.m.Reserve(ctx, "alice", budget.MustAmount("5")); !errors.Is(err, budget.ErrBudgetExceeded) {
		t.Fatalf("reserve past the limit: %v", err)
	}
	if _, err := o.m.Status(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := o.m.Lookup(ctx, "nobody"); !errors.Is(err, budget.ErrNotFound) {
		t.Fatalf("lookup: %v", err)
	}

	spans := o.spans.Ended()
	byID := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID().String()] = s
	}
	children := map[string][]string{} // Manager span name → its store spans' names
	for _, s := range spans {
		if !strings.HasPrefix(s.Name(), "budget.store.") {
			continue
		}
		p, ok := byID[s.Parent().SpanID().String()]
		switch {
		case !s.Parent().IsValid() || !ok:
			t.Errorf("store span %s has no recorded parent", s.Name())
		case strings.HasPrefix(p.Name(), "budget.store."):
			t.Errorf("store span %s is the child of store span %s", s.Name(), p.Name())
		case p.SpanContext().TraceID() != s.SpanContext().TraceID():
			t.Errorf("store span %s is in another trace than its parent", s.Name())
		default:
			children[p.Name()] = append(children[p.Name()], s.Name())
		}
	}
	for _, want := range []struct{ parent, child string }{
		{"budget.Reserve", "budget.store.Reserve"},
		{"budget.Reserve", "budget.store.CreateSettings"},
		{"budget.Defaults", "budget.store.Defaults"},
		{"budget.Settle", "budget.store.Settle"},
		{"budget.Status", "budget.store.Totals"},
		{"budget.Lookup", "budget.store.Settings"},
	} {
		found := false
		for _, c := range children[want.parent] {
			found = found || c == want.child
		}
		if !found {
			t.Errorf("no %s span under %s; children: %v", want.child, want.parent, children)
		}
	}
	for _, s := range spans {
		switch s.Name() {
		case "budget.Reserve":
			if hasAttr(s, "budget.allowed", "false") && s.Status().Code.String() != "Unset" {
				t.Errorf("a refused reserve's span has status %v, want Unset", s.Status())
			}
		case "budget.Lookup":
			if s.Status().Code.String() != "Error" {
				t.Errorf("a failed Lookup's span has status %v, want Error", s.Status())
			}
		case "budget.store.Settings":
			if s.Status().Code.String() != "Unset" {
				t.Errorf("store span budget.store.Settings answering ErrNotFound has status %v, want Unset", s.Status())
			}
		}
	}
	refused := 0
	for _, s := range spans {
		if s.Name() == "budget.Reserve" && hasAttr(s, "budget.allowed", "false") {
			refused++
		}
	}
	if refused != 1 {
		t.Errorf("%d budget.Reserve spans with budget.allowed=false, want 1", refused)
	}
}

func TestPingFailsOnceStoreClosed(t *testing.T) {
	ctx := context.Background()
	o := newObserved(t, "1", budget.Options{})
	if err := o.m.Ping(ctx); err != nil {
		t.Fatalf("Ping of an open store with no defaults: %v", err)
	}
	admin := budget.Principal{UserID: "root", Admin: true}
	limit := budget.MustAmount("3")
	if _, err := o.m.UpdateDefaults(ctx, admin, budget.SettingsUpdate{Limit: &limit}); err != nil {
		t.Fatal(err)
	}
	if err := o.m.Ping(ctx); err != nil {
		t.Fatalf("Ping of an open store: %v", err)
	}
	o.spans.Ended()
	n := len(o.spans.Ended())
	o.store.Close()
	if err := o.m.Ping(ctx); !errors.Is(err, budget.ErrClosed) {
		t.Fatalf("Ping of a closed store: %v, want ErrClosed", err)
	}
	if got := len(o.spans.Ended()); got != n {
		t.Errorf("Ping made %d spans, want none", got-n)
	}
}

// lateStore answers the first UpdateSettings with a *LateError, and the
// first Reserve with ErrConflict, as a store does for a call computed
// before another process moved the user's period, or after a concurrent
// settings change.
type lateStore struct {
	*memory.Store
	late, conflict bool
}

func (s *lateStore) UpdateSettings(ctx context.Context, req budget.UpdateRequest) (budget.Totals, error) {
	if !s.late {
		s.late = true
		return budget.Totals{}, &budget.LateError{Start: req.Now.Add(-time.Second)}
	}
	return s.Store.UpdateSettings(ctx, req)
}

func (s *lateStore) Reserve(ctx context.Context, req budget.ReserveRequest) (budget.Totals, bool, error) {
	if !s.conflict {
		s.conflict = true
		return budget.Totals{}, false, budget.ErrConflict
	}
	return s.Store.Reserve(ctx, req)
}

func TestLogsRetries(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := budget.NewManager(&lateStore{Store: memory.New()}, budget.Options{Logger: log})
	r, err := m.Reserve(ctx, "alice", budget.MustAmount("1"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx)
	limit := budget.MustAmount("50")
	if _, err := m.UpdateSettings(ctx, budget.Principal{UserID: "root", Admin: true}, "alice", budget.SettingsUpdate{Limit: &limit}); err != nil {
		t.Fatal(err)
	}
	var debug, warn int
	for line := range strings.Lines(buf.String()) {
		switch {
		case strings.Contains(line, "level=DEBUG") && strings.Contains(line, "concurrent change; retrying"):
			debug++
		case strings.Contains(line, "level=WARN") && strings.Contains(line, "late request retried"):
			warn++
		default:
			t.Errorf("unexpected log line: %s", line)
		}
	}
	if debug != 1 || warn != 1 {
		t.Errorf("logged %d conflict retries at DEBUG and %d late requests at WARN, want 1 and 1:\n%s", debug, warn, buf.String())
	}
}

func TestTelemetryDefaultsRecordNothing(t *testing.T) {
	// No providers and no logger: the Manager works and reports nothing.
	ctx := context.Background()
	m := budget.NewManager(memory.New(), budget.Options{})
	r, err := m.Reserve(ctx, "alice", budget.MustAmount("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Settle(ctx, budget.Usage{Provider: "p", Model: "m", Cost: budget.MustAmount("0.5")}); err != nil {
		t.Fatal(err)
	}
	if err := m.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkTelemetryReserveSettle compares Reserve+Settle on the memory
// store with a real SDK meter provider (a manual reader, aggregating every
// measurement as an exporter's would) against the no-op default, serial
// and on every P (a user per goroutine). The target: sdk at most 1.3×
// noop.
//
// The noop and sdk sub-benchmarks report the usual ns/op and allocs/op.
// On a busy machine their ratio is mostly noise, so the ratio
// sub-benchmarks alternate between the two Managers every 64 calls, in
// the same goroutines, and report each one's ns/op and sdk/noop.
//
// Each goroutine moves to a new user every benchUserCalls calls: the
// memory store keeps every usage ID, and a user whose maps grow with b.N
// would make a longer run slower per call, whatever is measured.
func BenchmarkTelemetryReserveSettle(b *testing.B) {
	for _, par := range []bool{false, true} {
		mode := map[bool]string{false: "serial", true: "parallel"}[par]
		b.Run(mode+"/noop", func(b *testing.B) {
			benchTelemetry(b, par, newBenchObserved(false))
		})
		b.Run(mode+"/sdk", func(b *testing.B) {
			benchTelemetry(b, par, newBenchObserved(true))
		})
		b.Run(mode+"/ratio", func(b *testing.B) {
			benchTelemetry(b, par, newBenchObserved(false), newBenchObserved(true))
		})
	}
}

const (
	benchUserCalls = 1024
	benchBlock     = 64 // calls on one Manager before the ratio switches
)

// newBenchObserved returns a Manager over a fresh memory store whose users
// never reach their limit, with an SDK meter provider or none.
func newBenchObserved(sdk bool) *budget.Manager {
	var ticks atomic.Int64
	start := time.Date(2025, time.March, 10, 12, 0, 0, 0, time.UTC)
	plan := budget.DefaultUserPlan()
	plan.Limit = budget.MustAmount("1000000000")
	opts := budget.Options{
		Now:      func() time.Time { return start.Add(time.Duration(ticks.Add(1)) * time.Microsecond) },
		UserPlan: &plan,
	}
	if sdk {
		opts.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	}
	return budget.NewManager(memory.New(), opts)
}

var benchUsers atomic.Int64

// benchTelemetry runs Reserve+Settle b.N times, serially or on every P.
// With several Managers it takes them in turn, benchBlock calls each, and
// reports each one's ns/op (of the goroutines' time) and their ratio to
// the first.
func benchTelemetry(b *testing.B, parallel bool, ms ...*budget.Manager) {
	ctx := context.Background()
	estimate, cost := budget.MustAmount("0.01"), budget.MustAmount("0.007")
	var spent [2]atomic.Int64 // nanoseconds per Manager
	var calls [2]atomic.Int64
	run := func(next func() bool) error {
		var (
			user        string
			i, cur      int
			blockStart  = time.Now()
			localSpent  [2]int64
			localCalls  [2]int64
			blockCalled int64
		)
		defer func() {
			for k := range ms {
				spent[k].Add(localSpent[k])
				calls[k].Add(localCalls[k])
			}
		}()
		for ; next(); i++ {
			if i%benchUserCalls == 0 {
				user = "user-" + strconv.FormatInt(benchUsers.Add(1), 10)
			}
			m := ms[cur]
			r, err := m.Reserve(ctx, user, estimate)
			if err != nil {
				return err
			}
			if _, err := r.Settle(ctx, budget.Usage{Provider: "openai", Model: "gpt-4o", InputTokens: 1000, OutputTokens: 200, Cost: cost}); err != nil {
				return err
			}
			if blockCalled++; len(ms) > 1 && blockCalled == benchBlock {
				now := time.Now()
				localSpent[cur] += int64(now.Sub(blockStart))
				localCalls[cur] += blockCalled
				blockStart, blockCalled, cur = now, 0, (cur+1)%len(ms)
			}
		}
		return nil
	}
	b.ReportAllocs()
	if !parallel {
		if err := run(b.Loop); err != nil {
			b.Fatal(err)
		}
	} else {
		b.RunParallel(func(pb *testing.PB) {
			if err := run(pb.Next); err != nil {
				b.Error(err)
			}
		})
	}
	if len(ms) > 1 && calls[0].Load() > 0 && calls[1].Load() > 0 {
		noop := float64(spent[0].Load()) / float64(calls[0].Load())
		sdk := float64(spent[1].Load()) / float64(calls[1].Load())
		b.ReportMetric(noop, "noop-ns/op")
		b.ReportMetric(sdk, "sdk-ns/op")
		b.ReportMetric(sdk/noop, "sdk/noop")
	}
}

// TestMetricsSpendSeriesBounded checks that made-up model names cannot grow
// budget.spend past 1000 series: the rest counts under "_other", and the
// total stays exact.
func TestMetricsSpendSeriesBounded(t *testing.T) {
	ctx := context.Background()
	o := newObserved(t, "1000000", budget.Options{})
	const n = 1010
	for i := range n {
		u := budget.Usage{Provider: "p" + strconv.Itoa(i%3), Model: "m" + strconv.Itoa(i), Cost: budget.MustAmount("0.000000002")}
		if _, err := o.m.Record(ctx, "alice", u); err != nil {
			t.Fatal(err)
		}
	}
	got := counts(t, o.collect(t), "budget.spend")
	var total int64
	for _, v := range got {
		total += v
	}
	if len(got) != 1001 || got["model=_other,provider=_other"] != 2*(n-1000) || total != 2*n {
		t.Errorf("budget.spend: %d series, _other %d, total %d; want 1001, %d, %d",
			len(got), got["model=_other,provider=_other"], total, 2*(n-1000), 2*n)
	}
}
