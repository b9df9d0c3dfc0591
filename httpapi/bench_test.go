package httpapi_test

// Throughput and latency of GET /status over loopback, against the target
// of at least 5,000 requests per second with a p99 of at most 20 ms, on a
// 2-core machine with 32 concurrent clients:
//
//	go test ./httpapi -run '^$' -bench 'StatusSQLite|FixedJSON' -cpu 2
//
// BenchmarkFixedJSON measures the same client, server and loopback with a
// handler that only writes a fixed JSON body: the floor that net/http and
// the loopback set on this machine, to read BenchmarkStatusSQLite against.
// Both report "req/s" (requests completed per second of wall time),
// "p50-ms" and "p99-ms" (latency seen by the clients).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/httpapi"
	"github.com/llmbudget/budget/store/sqlite"
)

// benchClients is how many clients send requests at once.
const benchClients = 32

// benchLoopback serves h on a loopback listener and has benchClients
// goroutines send GET path with their own bearer token (bench-0,
// bench-1, ...) as fast as they can, each over its own kept-alive
// connection.
func benchLoopback(b *testing.B, h http.Handler, path string) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConns: 2 * benchClients, MaxIdleConnsPerHost: 2 * benchClients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var (
		mu   sync.Mutex
		lats []time.Duration
		next atomic.Int64
	)
	b.SetParallelism(max(1, benchClients/runtime.GOMAXPROCS(0))) // 16 on 2 cores
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		r, _ := http.NewRequest("GET", srv.URL+path, nil)
		r.Header.Set("Authorization", fmt.Sprintf("Bearer bench-%d", next.Add(1)-1))
		mine := make([]time.Duration, 0, 4096)
		for pb.Next() {
			t0 := time.Now()
			resp, err := client.Do(r)
			if err != nil {
				b.Error(err)
				return
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Errorf("status %d, %v", resp.StatusCode, err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lats = append(lats, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lats) == 0 {
		return
	}
	slices.Sort(lats)
	pct := func(p float64) float64 {
		return float64(lats[min(len(lats)-1, int(p*float64(len(lats))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(len(lats))/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// benchAuth authenticates "Bearer bench-<i>" as user bench-<i>.
func benchAuth(r *http.Request) (budget.Principal, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !strings.HasPrefix(tok, "bench-") {
		return budget.Principal{}, errors.New("no bench token")
	}
	return budget.Principal{UserID: tok}, nil
}

// BenchmarkStatusSQLite: GET /status through the handler on the SQLite
// store, each client reading its own user's status.
func BenchmarkStatusSQLite(b *testing.B) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "b.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	m := budget.NewManager(store, budget.Options{Now: func() time.Time { return apiStart }})
	for i := range 2 * benchClients {
		user := fmt.Sprintf("bench-%d", i)
		for j := range 10 {
			if _, err := m.Record(ctx, user, budget.Usage{ID: fmt.Sprint(j), Provider: "openai", Model: "gpt-4o", Cost: budget.MustAmount("0.01")}); err != nil {
				b.Fatal(err)
			}
		}
	}
	h, err := httpapi.New(m, httpapi.Options{Authenticate: benchAuth})
	if err != nil {
		b.Fatal(err)
	}
	benchLoopback(b, h, "/status")
}

// BenchmarkFixedJSON: a handler that authenticates nothing and writes a
// fixed status-sized JSON body, measured the same way.
func BenchmarkFixedJSON(b *testing.B) {
	body := []byte(`{"user_id":"bench-0","limit_usd":"30","spent_usd":"0.1","reserved_usd":"0","remaining_usd":"29.9",` +
		`"percent_used":"0.33","alert_level":"green","enforce_budget":true,"budget_period":"monthly","timezone":"UTC",` +
		`"current_period_start":"2025-03-01T00:00:00Z","current_period_end":"2025-04-01T00:00:00Z"}` + "\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(body)
	})
	benchLoopback(b, h, "/status")
}
