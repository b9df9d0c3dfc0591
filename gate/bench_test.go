package gate_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/gate"
	"github.com/llmbudget/budget/internal/interleave"
	"github.com/llmbudget/budget/store/memory"
)

// The gate's own overhead, measured against the bare transport in the same
// run: the upstream is an in-process RoundTripper answering a canned
// response, so no network time is included, and the store is in memory.
//
//	go test -run '^$' -bench 'Bare|Gate' -count 5 -benchtime 1s ./gate/
//
// Each benchmark also reports the median of its per-call times (p50-ns);
// the overhead is BenchmarkGate's minus BenchmarkBare's.

// canned answers every request with the same response.
type canned struct {
	contentType string
	body        []byte
}

func (c canned) RoundTrip(r *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return &http.Response{
		StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {c.contentType}}, ContentLength: int64(len(c.body)),
		Body: io.NopCloser(bytes.NewReader(c.body)), Request: r,
	}, nil
}

type benchCase struct {
	name, path, body string
	upstream         canned
}

// benchSizes are the body sizes benchmarked: the request's prompt and the
// response's text each about this large.
var benchSizes = []struct {
	name string
	n    int
}{{"1KB", 1 << 10}, {"10KB", 10 << 10}, {"100KB", 100 << 10}}

func benchCases() []benchCase {
	var cases []benchCase
	for _, size := range benchSizes {
		text := strings.Repeat("The budget holds. ", size.n/18+1)[:size.n]
		req := `{"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"` + text + `"}],"max_tokens":500}`
		stream := strings.Replace(req, `"max_tokens":500`, `"max_tokens":500,"stream":true`, 1)
		answer := `{"id":"chatcmpl-1","object":"chat.completion","created":1741569952,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"` +
			text + `","refusal":null},"finish_reason":"stop"}],"usage":` + chatUsage + `}`
		var events strings.Builder
		events.WriteString("data: " + chatChunk("gpt-4o", `[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]`, "null") + "\n\n")
		for i := 0; i < len(text); i += 64 {
			events.WriteString("data: " + chatChunk("gpt-4o", `[{"index":0,"delta":{"content":"`+text[i:min(i+64, len(text))]+`"},"finish_reason":null}]`, "null") + "\n\n")
		}
		events.WriteString("data: " + chatChunk("gpt-4o", `[{"index":0,"delta":{},"finish_reason":"stop"}]`, "null") + "\n\n")
		events.WriteString("data: " + chatChunk("gpt-4o", `[]`, chatUsage) + "\n\ndata: [DONE]\n\n")
		cases = append(cases,
			benchCase{"json/" + size.name, "/v1/chat/completions", req, canned{"application/json", []byte(answer)}},
			benchCase{"stream/" + size.name, "/v1/chat/completions", stream, canned{"text/event-stream", []byte(events.String())}},
		)
	}
	return cases
}

func gateFor(tb testing.TB, up http.RoundTripper) http.RoundTripper {
	plan := budget.DefaultUserPlan()
	plan.Limit = budget.MustAmount("1000000000")
	store := memory.New()
	tb.Cleanup(func() { store.Close() })
	m := budget.NewManager(store, budget.Options{UserPlan: &plan})
	return gate.New(m, loadPrices(tb), gate.Options{Base: up, OnError: func(_ *http.Request, err error) { panic(err) }})
}

// oneCall makes one call and reads the whole answer, as a client would.
func oneCall(tb testing.TB, rt http.RoundTripper, ctx context.Context, c benchCase) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://upstream.test"+c.path, strings.NewReader(c.body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
}

func runBench(b *testing.B, gated bool) {
	for _, c := range benchCases() {
		b.Run(c.name, func(b *testing.B) {
			var rt http.RoundTripper = c.upstream
			if gated {
				rt = gateFor(b, c.upstream)
			}
			ctx := gate.WithUser(context.Background(), "bench-user")
			times := make([]time.Duration, 0, 1<<16)
			b.ReportAllocs()
			b.SetBytes(int64(len(c.body) + len(c.upstream.body)))
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				oneCall(b, rt, ctx, c)
				if len(times) < cap(times) {
					times = append(times, time.Since(start))
				}
			}
			b.ReportMetric(float64(median(times).Nanoseconds()), "p50-ns")
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			var rt http.RoundTripper = c.upstream
			if gated {
				rt = gateFor(b, c.upstream)
			}
			var users atomic.Int64
			b.ReportAllocs()
			b.SetBytes(int64(len(c.body) + len(c.upstream.body)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := gate.WithUser(context.Background(), fmt.Sprintf("bench-user-%d", users.Add(1)))
				for pb.Next() {
					oneCall(b, rt, ctx, c)
				}
			})
		})
	}
}

func BenchmarkBare(b *testing.B) { runBench(b, false) }
func BenchmarkGate(b *testing.B) { runBench(b, true) }

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestGateOverhead holds the gate to its budget: at 1 KB, at most twice
// the bare transport plus 10 µs per call at the median, measured with
// calls interleaved so that both see the same machine load; at 10 and
// 100 KB, an overhead that grows no faster than a few nanoseconds a byte
// (one pass). The race detector slows everything several-fold, so the
// limit is checked only without it.
func TestGateOverhead(t *testing.T) {
	if testing.Short() || raceEnabled || os.Getenv("GATE_TIMING") == "" {
		t.Skip("timing test: set GATE_TIMING=1 on a quiet machine (not with -short or -race)")
	}
	const calls = 1000
	ctx := gate.WithUser(context.Background(), "overhead-user")
	for _, c := range benchCases() {
		g := gateFor(t, c.upstream)
		var bare, gated []time.Duration
		for i := 0; i < calls; i++ {
			start := time.Now()
			oneCall(t, c.upstream, ctx, c)
			bare = append(bare, time.Since(start))
			start = time.Now()
			oneCall(t, g, ctx, c)
			gated = append(gated, time.Since(start))
		}
		overhead := median(gated) - median(bare)
		limit := 2*median(bare) + 10*time.Microsecond
		if !strings.HasSuffix(c.name, "/1KB") {
			// One pass: a generous 5 ns a byte of request and response.
			limit += time.Duration(5*(len(c.body)+len(c.upstream.body))) * time.Nanosecond
		}
		t.Logf("%s: bare %v, gate %v at the median: overhead %v (limit %v)", c.name, median(bare), median(gated), overhead, limit)
		if overhead > limit {
			t.Errorf("%s: the gate adds %v per call at the median, more than %v", c.name, overhead, limit)
		}
	}
}

// BenchmarkGateInterleaved measures the speed target at 1 KB with the bare
// transport and the gate taking turns every 50 ms, so that both see the
// same machine however loaded it is (see internal/interleave): "x-bare" is
// the gate's time per call over the bare transport's, and "over-target-ns"
// the gate's time per call minus the target, twice the bare transport's
// plus 10 µs (met when at most 0).
func BenchmarkGateInterleaved(b *testing.B) {
	for _, c := range benchCases() {
		if !strings.HasSuffix(c.name, "/1KB") {
			continue
		}
		b.Run(c.name, func(b *testing.B) {
			ctx := gate.WithUser(context.Background(), "bench-user")
			gated := gateFor(b, c.upstream)
			bare := &interleave.Side{Goroutines: 1, Unit: "bare-calls/s", Op: func(int) error { oneCall(b, c.upstream, ctx, c); return nil }}
			gate := &interleave.Side{Goroutines: 1, Unit: "gate-calls/s", Op: func(int) error { oneCall(b, gated, ctx, c); return nil }}
			interleave.Alternate(b, 50*time.Millisecond, bare, gate)
			bareNs, gateNs := 1e9/bare.Rate(), 1e9/gate.Rate()
			b.ReportMetric(gateNs/bareNs, "x-bare")
			b.ReportMetric(gateNs-(2*bareNs+10e3), "over-target-ns")
		})
	}
}
