package gate_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/gate"
	"github.com/llmbudget/budget/pricing"
	"github.com/llmbudget/budget/store/memory"
)

// These tests stand alone: their upstream is an in-process RoundTripper,
// so they need none of the other test files' harness.

// telUser is the user every call is charged to: distinctive, so that a
// test can look for it in every attribute.
const telUser = "user-4f1d9a-secret"

const (
	telChatBody   = `{"model":"gpt-4o","messages":[{"role":"user","content":"Say hello"}],"max_tokens":500}`
	telStreamBody = `{"model":"gpt-4o","messages":[{"role":"user","content":"Say hello"}],"max_tokens":500,"stream":true}`
	telChatAnswer = `{"id":"chatcmpl-1","object":"chat.completion","created":1741569952,"model":"gpt-4o-2024-08-06",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}`
	// telCutStream is a chat stream that upstream ends after two content
	// chunks: no finish, no usage chunk, no [DONE].
	telCutStream = `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}` + "\n\n" +
		`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}],"usage":null}` + "\n\n"
)

// telUpstream answers every request with one canned response.
type telUpstream struct {
	contentType, body string
	calls             atomic.Int64
}

func (u *telUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	u.calls.Add(1)
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return &http.Response{
		StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {u.contentType}}, ContentLength: -1,
		Body: io.NopCloser(strings.NewReader(u.body)), Request: r,
	}, nil
}

// telSetup is a Manager on a memory store with the given limit, the
// Manager's and the gate's telemetry, and a gate in front of up.
type telSetup struct {
	m      *budget.Manager
	store  *memory.Store
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	logs   *syncBuffer
	rt     http.RoundTripper
	clock  atomic.Int64 // the Manager's and the gate's clock, in ns

	mu     sync.Mutex
	errors []error // from gate.Options.OnError
}

func newTelSetup(t *testing.T, limit string, up http.RoundTripper, traceUserIDs bool, tweak func(*gate.Options)) *telSetup {
	t.Helper()
	s := &telSetup{
		store:  memory.New(),
		reader: sdkmetric.NewManualReader(),
		spans:  tracetest.NewSpanRecorder(),
		logs:   new(syncBuffer),
	}
	t.Cleanup(func() { s.store.Close() })
	s.clock.Store(time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, s.clock.Load()).UTC() }
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(s.reader))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.spans))
	logger := slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	plan := budget.DefaultUserPlan()
	plan.Limit = budget.MustAmount(limit)
	s.m = budget.NewManager(s.store, budget.Options{
		Now: now, UserPlan: &plan,
		MeterProvider: mp, TracerProvider: tp, TraceUserIDs: traceUserIDs, Logger: logger,
	})
	opts := gate.Options{
		Base: up, Now: now,
		MeterProvider: mp, TracerProvider: tp, TraceUserIDs: traceUserIDs, Logger: logger,
		OnError: func(_ *http.Request, err error) {
			s.mu.Lock()
			s.errors = append(s.errors, err)
			s.mu.Unlock()
		},
	}
	if tweak != nil {
		tweak(&opts)
	}
	s.rt = gate.New(s.m, telPrices(t), opts)
	return s
}

func telPrices(t testing.TB) *pricing.Table {
	t.Helper()
	f, err := os.Open("testdata/prices.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var p pricing.Table
	if err := p.LoadLiteLLM(f); err != nil {
		t.Fatal(err)
	}
	return &p
}

// syncBuffer is a bytes.Buffer for a log handler written from several
// goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// roundTrip sends body to path through the gate as telUser.
func (s *telSetup) roundTrip(t *testing.T, path, body string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(gate.WithUser(context.Background(), telUser),
		http.MethodPost, "http://upstream.test"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return s.rt.RoundTrip(req)
}

// call makes a call and reads and closes its whole answer.
func (s *telSetup) call(t *testing.T, path, body string) {
	t.Helper()
	resp, err := s.roundTrip(t, path, body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// metric returns the collected metric named name, failing if absent.
func (s *telSetup) metric(t *testing.T, name string) metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := s.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m
			}
		}
	}
	t.Fatalf("no metric %s collected", name)
	return metricdata.Metrics{}
}

// counts returns a counter's values by attribute set.
func counts(t *testing.T, m metricdata.Metrics) map[attribute.Distinct]int64 {
	t.Helper()
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is a %T, want a Sum[int64]", m.Name, m.Data)
	}
	out := map[attribute.Distinct]int64{}
	for _, dp := range sum.DataPoints {
		out[dp.Attributes.Equivalent()] += dp.Value
	}
	return out
}

func set(kv ...attribute.KeyValue) attribute.Distinct {
	s := attribute.NewSet(kv...)
	return s.Equivalent()
}

func (s *telSetup) wantNoErrors(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, err := range s.errors {
		t.Errorf("Options.OnError: %v", err)
	}
}

func TestTelemetryRefusalCounted(t *testing.T) {
	up := &telUpstream{contentType: "application/json", body: telChatAnswer}
	// The estimate, 20 prompt and 500 output tokens of gpt-4o, is
	// $0.00505: over $0.004.
	s := newTelSetup(t, "0.004", up, false, nil)
	if _, err := s.roundTrip(t, "/v1/chat/completions", telChatBody); !errors.Is(err, budget.ErrBudgetExceeded) {
		t.Fatalf("err = %v, want ErrBudgetExceeded", err)
	}
	// Two refusals of other kinds, before any Reserve.
	if _, err := s.roundTrip(t, "/v1/images/generations", `{"model":"dall-e-3"}`); !errors.Is(err, gate.ErrUnsupportedPath) {
		t.Fatalf("err = %v, want ErrUnsupportedPath", err)
	}
	if _, err := s.roundTrip(t, "/v1/chat/completions", `{"model":"no-such-model","messages":[]}`); !errors.Is(err, pricing.ErrUnknownModel) {
		t.Fatalf("err = %v, want ErrUnknownModel", err)
	}
	if n := up.calls.Load(); n != 0 {
		t.Fatalf("upstream called %d times", n)
	}
	got := counts(t, s.metric(t, "budget.gate.refusals"))
	want := map[attribute.Distinct]int64{
		set(attribute.String("reason", "limit")):            1,
		set(attribute.String("reason", "unsupported_path")): 1,
		set(attribute.String("reason", "no_price")):         1,
	}
	if len(got) != len(want) {
		t.Errorf("budget.gate.refusals has %d series, want %d", len(got), len(want))
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("budget.gate.refusals%v = %d, want %d", k, got[k], n)
		}
	}
	// A refused call is not a forwarded one.
	var rm metricdata.ResourceMetrics
	if err := s.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "budget.gate.calls" || m.Name == "budget.gate.overhead" {
				t.Errorf("%s recorded for refused calls: %+v", m.Name, m.Data)
			}
		}
	}
	// The refused call's span says why, and is not an error.
	span := onlySpan(t, s.spans.Ended(), "budget.gate.RoundTrip", func(sp sdktrace.ReadOnlySpan) bool {
		return attr(sp, "budget.gate.reason") == "limit"
	})
	if got := attr(span, "budget.gate.outcome"); got != "refused" {
		t.Errorf("outcome = %q, want refused", got)
	}
	if span.Status().Code != 0 {
		t.Errorf("a refusal by the budget has span status %v, want Unset", span.Status())
	}
}

func TestTelemetryOverheadRecorded(t *testing.T) {
	for _, tc := range []struct {
		name, path, body, contentType, answer string
		provider, route                       string
	}{
		{"openai", "/v1/chat/completions", telChatBody, "application/json", telChatAnswer, "openai", "chat_completions"},
		{"anthropic", "/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Hello"}]}`,
			"application/json", `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hi"}],` +
				`"stop_reason":"end_turn","usage":{"input_tokens":10,"output_tokens":2}}`, "anthropic", "messages"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := &telUpstream{contentType: tc.contentType, body: tc.answer}
			s := newTelSetup(t, "10", up, false, nil)
			s.call(t, tc.path, tc.body)
			s.wantNoErrors(t)

			m := s.metric(t, "budget.gate.overhead")
			if m.Unit != "s" {
				t.Errorf("unit %q, want s", m.Unit)
			}
			h, ok := m.Data.(metricdata.Histogram[float64])
			if !ok {
				t.Fatalf("budget.gate.overhead is a %T", m.Data)
			}
			if len(h.DataPoints) != 1 {
				t.Fatalf("%d series, want 1: %+v", len(h.DataPoints), h.DataPoints)
			}
			dp := h.DataPoints[0]
			if want := set(attribute.String("provider", tc.provider), attribute.String("route", tc.route)); dp.Attributes.Equivalent() != want {
				t.Errorf("attributes %v, want provider=%s route=%s", dp.Attributes.ToSlice(), tc.provider, tc.route)
			}
			if dp.Count != 1 || dp.Sum <= 0 || dp.Sum > 10 {
				t.Errorf("count %d, sum %v s: want one positive observation", dp.Count, dp.Sum)
			}
			calls := counts(t, s.metric(t, "budget.gate.calls"))
			if n := calls[set(attribute.String("provider", tc.provider), attribute.String("route", tc.route))]; n != 1 || len(calls) != 1 {
				t.Errorf("budget.gate.calls = %v, want 1 for %s %s", calls, tc.provider, tc.route)
			}
		})
	}
}

func TestTelemetrySpanParentsManagerSpans(t *testing.T) {
	up := &telUpstream{contentType: "application/json", body: telChatAnswer}
	s := newTelSetup(t, "10", up, false, nil)
	s.call(t, "/v1/chat/completions", telChatBody)
	s.wantNoErrors(t)

	spans := s.spans.Ended()
	rt := onlySpan(t, spans, "budget.gate.RoundTrip", nil)
	for _, name := range []string{"budget.Reserve", "budget.Settle"} {
		sp := onlySpan(t, spans, name, nil)
		if sp.Parent().SpanID() != rt.SpanContext().SpanID() || sp.SpanContext().TraceID() != rt.SpanContext().TraceID() {
			t.Errorf("%s's parent is %v, want the gate's span %v", name, sp.Parent().SpanID(), rt.SpanContext().SpanID())
		}
		if sp.EndTime().After(rt.EndTime()) {
			t.Errorf("%s ends after the gate's span", name)
		}
	}
	for k, want := range map[string]string{
		"budget.provider":      "openai",
		"budget.gate.route":    "chat_completions",
		"budget.model":         "gpt-4o",
		"budget.gate.streamed": "false",
		"budget.gate.outcome":  "usage",
	} {
		if got := attr(rt, attribute.Key(k)); got != want {
			t.Errorf("span attribute %s = %q, want %q", k, got, want)
		}
	}
}

func TestTelemetryUserIDOnlyWhenOptedIn(t *testing.T) {
	for _, optIn := range []bool{false, true} {
		up := &telUpstream{contentType: "application/json", body: telChatAnswer}
		s := newTelSetup(t, "0.0051", up, optIn, nil)
		s.call(t, "/v1/chat/completions", telChatBody)                // metered and settled
		_, err := s.roundTrip(t, "/v1/chat/completions", telChatBody) // refused: the budget is spent
		if !errors.Is(err, budget.ErrBudgetExceeded) {
			t.Fatalf("err = %v, want ErrBudgetExceeded", err)
		}
		s.wantNoErrors(t)
		found := 0
		for _, sp := range s.spans.Ended() {
			attrs := append([]attribute.KeyValue(nil), sp.Attributes()...)
			if sp.Name() == "budget.gate.RoundTrip" {
				// The gate's events too. (The store's spans record the
				// text of errors, which may name the user: not checked.)
				for _, ev := range sp.Events() {
					attrs = append(attrs, ev.Attributes...)
				}
			}
			for _, kv := range attrs {
				if strings.Contains(kv.Value.Emit(), telUser) {
					if !optIn {
						t.Errorf("span %s carries the user ID in %s without TraceUserIDs", sp.Name(), kv.Key)
					}
					if sp.Name() == "budget.gate.RoundTrip" && kv.Key == "budget.user_id" {
						found++
					}
				}
			}
			if strings.Contains(sp.Status().Description, telUser) {
				t.Errorf("span %s's status names the user", sp.Name())
			}
		}
		if optIn && found != 2 {
			t.Errorf("with TraceUserIDs, %d gate spans carry budget.user_id, want 2", found)
		}
		// Metrics never do.
		var rm metricdata.ResourceMetrics
		if err := s.reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		for _, sm := range rm.ScopeMetrics {
			if !strings.HasSuffix(sm.Scope.Name, "/gate") {
				continue
			}
			for _, m := range sm.Metrics {
				var sets []attribute.Set
				switch d := m.Data.(type) {
				case metricdata.Sum[int64]:
					for _, dp := range d.DataPoints {
						sets = append(sets, dp.Attributes)
					}
				case metricdata.Histogram[float64]:
					for _, dp := range d.DataPoints {
						sets = append(sets, dp.Attributes)
					}
				}
				for _, as := range sets {
					if strings.Contains(as.Encoded(attribute.DefaultEncoder()), telUser) {
						t.Errorf("metric %s carries the user ID", m.Name)
					}
				}
			}
		}
	}
}

func TestTelemetryCutStreamLogged(t *testing.T) {
	up := &telUpstream{contentType: "text/event-stream", body: telCutStream}
	s := newTelSetup(t, "10", up, false, nil)
	s.call(t, "/v1/chat/completions", telStreamBody)
	s.wantNoErrors(t)

	logs := s.logs.String()
	var line string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "cut off by upstream") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no log of the cut stream; logs:\n%s", logs)
	}
	for _, want := range []string{"level=WARN", "provider=openai", "route=chat_completions", "model=gpt-4o", "user_id=" + telUser} {
		if !strings.Contains(line, want) {
			t.Errorf("the log lacks %q: %s", want, line)
		}
	}
	est := counts(t, s.metric(t, "budget.gate.estimates"))
	if n := est[set(attribute.String("provider", "openai"), attribute.String("reason", "cut"))]; n != 1 || len(est) != 1 {
		t.Errorf("budget.gate.estimates = %v, want 1 cut for openai", est)
	}
	span := onlySpan(t, s.spans.Ended(), "budget.gate.RoundTrip", nil)
	if o, r, st := attr(span, "budget.gate.outcome"), attr(span, "budget.gate.reason"), attr(span, "budget.gate.streamed"); o != "estimate" || r != "cut" || st != "true" {
		t.Errorf("span outcome %q, reason %q, streamed %q; want estimate, cut, true", o, r, st)
	}
}

func TestTelemetryRenewalFailureLogged(t *testing.T) {
	up := &telUpstream{contentType: "application/json", body: telChatAnswer}
	var ticks []func()
	var mu sync.Mutex
	s := newTelSetup(t, "10", up, false, nil)
	gate.SetAfterFunc(s.rt, func(_ time.Duration, fn func()) func() bool {
		mu.Lock()
		ticks = append(ticks, fn)
		mu.Unlock()
		return func() bool { return true }
	})
	resp, err := s.roundTrip(t, "/v1/chat/completions", telChatBody)
	if err != nil {
		t.Fatal(err)
	}
	// The store goes away while the call runs: the renewal fails, and so
	// does the settlement.
	s.clock.Add(int64(time.Minute))
	s.store.Close()
	mu.Lock()
	tick := ticks[0]
	mu.Unlock()
	tick()
	io.ReadAll(resp.Body)
	resp.Body.Close()

	logs := s.logs.String()
	for _, want := range []string{"could not renew the hold", "settling a call failed"} {
		if !strings.Contains(logs, want) {
			t.Errorf("no log %q; logs:\n%s", want, logs)
		}
	}
	for _, l := range strings.Split(logs, "\n") {
		switch {
		case strings.Contains(l, "could not renew the hold") && !strings.Contains(l, "level=WARN"):
			t.Errorf("renewal failure not at Warn: %s", l)
		case strings.Contains(l, "settling a call failed") && !strings.Contains(l, "level=ERROR"):
			t.Errorf("settlement failure not at Error: %s", l)
		}
	}
	s.mu.Lock()
	n := len(s.errors)
	s.mu.Unlock()
	if n != 2 {
		t.Errorf("OnError called %d times, want 2 (the renewal and the settlement)", n)
	}
}

// onlySpan returns the one span named name that keep accepts (nil: any).
func onlySpan(t *testing.T, spans []sdktrace.ReadOnlySpan, name string, keep func(sdktrace.ReadOnlySpan) bool) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, sp := range spans {
		if sp.Name() == name && (keep == nil || keep(sp)) {
			found = append(found, sp)
		}
	}
	if len(found) != 1 {
		var names []string
		for _, sp := range spans {
			names = append(names, sp.Name())
		}
		t.Fatalf("%d spans %s, want 1; spans: %v", len(found), name, names)
	}
	return found[0]
}

// attr returns a span attribute's value as text, "" if absent.
func attr(sp sdktrace.ReadOnlySpan, key attribute.Key) string {
	for _, kv := range sp.Attributes() {
		if kv.Key == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// BenchmarkTelemetry measures a call through the gate without telemetry
// and with the SDK's providers (a ManualReader never collected, spans
// sampled and recorded but exported nowhere) and a logger, to show what
// turning it on costs:
//
//	go test -run '^$' -bench Telemetry -benchmem ./gate/
func BenchmarkTelemetry(b *testing.B) {
	stream := `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}],"usage":null}` + "\n\n" +
		`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}` + "\n\n" +
		`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}` + "\n\n" +
		"data: [DONE]\n\n"
	for _, c := range []struct {
		name, body string
		up         *telUpstream
	}{
		{"json", telChatBody, &telUpstream{contentType: "application/json", body: telChatAnswer}},
		{"stream", telStreamBody, &telUpstream{contentType: "text/event-stream", body: stream}},
	} {
		for _, on := range []bool{false, true} {
			name := c.name + "/off"
			if on {
				name = c.name + "/on"
			}
			b.Run(name, func(b *testing.B) {
				plan := budget.DefaultUserPlan()
				plan.Limit = budget.MustAmount("1000000000")
				store := memory.New()
				b.Cleanup(func() { store.Close() })
				opts := gate.Options{Base: c.up, OnError: func(_ *http.Request, err error) { panic(err) }}
				if on {
					opts.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
					opts.TracerProvider = sdktrace.NewTracerProvider()
					opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
				}
				rt := gate.New(budget.NewManager(store, budget.Options{UserPlan: &plan}), telPrices(b), opts)
				ctx := gate.WithUser(context.Background(), telUser)
				b.ReportAllocs()
				for b.Loop() {
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://upstream.test/v1/chat/completions", strings.NewReader(c.body))
					resp, err := rt.RoundTrip(req)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
	}
}
