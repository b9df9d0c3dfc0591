package gate_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/gate"
	"github.com/llmbudget/budget/store/memory"
)

// The gate's own overhead, measured against the bare transport in the same
// run: the upstream is an in-process RoundTripper answering a canned
// response, so no network time is included, and the store is in memory.
//
//	go test -run '^$' -bench 'Bare|Gate' -benchmem ./gate/
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

func benchCases() []benchCase {
	var stream strings.Builder
	for _, d := range chatStream("gpt-4o", true) {
		stream.WriteString("data: " + d + "\n\n")
	}
	return []benchCase{
		{"json", "/v1/chat/completions", chatBody, canned{"application/json", []byte(chatCompletionJSON("gpt-4o"))}},
		{"stream", "/v1/chat/completions", streamBody, canned{"text/event-stream", []byte(stream.String())}},
	}
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

// TestGateOverhead holds the gate to its budget: at most 50 µs per call at
// the median over the bare transport, measured with calls interleaved so
// that both see the same machine load. The race detector slows everything
// several-fold, so the limit is checked only without it.
func TestGateOverhead(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("timing test: skipped in -short mode and under the race detector")
	}
	const calls = 2000
	const limit = 50 * time.Microsecond
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
		t.Logf("%s: bare %v, gate %v at the median: overhead %v (limit %v)", c.name, median(bare), median(gated), overhead, limit)
		if overhead > limit {
			t.Errorf("%s: the gate adds %v per call at the median, more than %v", c.name, overhead, limit)
		}
	}
}
