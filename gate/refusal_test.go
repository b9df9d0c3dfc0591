package gate_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/gate"
	"github.com/llmbudget/budget/internal/gatetest"
	"github.com/llmbudget/budget/pricing"
	"github.com/llmbudget/budget/store/memory"
	"github.com/llmbudget/budget/store/sqlite"
)

// Refusals as a caller sees them: TestRefuseWithStatus and TestClient,
// which drive the SDKs, are in the e2e module (e2e/gate).

// Free routes pass unbudgeted; everything else still needs a meter.
func TestFreeRoutes(t *testing.T) {
	h := newHarness(t, "10", gate.Options{Free: gate.CommonFreeRoutes})
	for _, path := range []string{"/v1/models", "/openai/v1/models/gpt-4o"} {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", h.up.URL+path, nil)
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
	}
	for _, r := range []struct{ method, path string }{
		{"POST", "/v1/images/generations"}, {"POST", "/v1/audio/speech"}, {"DELETE", "/v1/models/gpt-4o"}, {"GET", "/v1/models/a/b"},
	} {
		req, _ := http.NewRequestWithContext(h.ctx, r.method, h.up.URL+r.path, strings.NewReader(`{"model":"dall-e-3","prompt":"a cat"}`))
		if _, err := h.client.Do(req); !errors.Is(err, gate.ErrUnsupportedPath) {
			t.Errorf("%s %s: %v, want ErrUnsupportedPath", r.method, r.path, err)
		}
	}
	if n := h.up.calls.Load(); n != 2 {
		t.Errorf("upstream called %d times, want 2", n)
	}
	h.wantNoSpend(t)
	defer func() {
		if recover() == nil {
			t.Error("New with a malformed free route did not panic")
		}
	}()
	gate.New(h.m, h.prices, gate.Options{Free: []string{"/v1/models"}})
}

// Errors say once what happened and what to do, without amounts.
func TestErrorText(t *testing.T) {
	h := newHarness(t, "0.001", gate.Options{})
	check := func(name string, err error, sentinel error, want string) {
		t.Helper()
		if !errors.Is(err, sentinel) {
			t.Errorf("%s: %v does not match %v", name, err, sentinel)
			return
		}
		msg := err.Error()
		if strings.Count(msg, "gate:")+strings.Count(msg, "budget:")+strings.Count(msg, "pricing:") != 1 || !strings.Contains(msg, want) ||
			strings.Contains(msg, "0.00") {
			t.Errorf("%s: %q; want one prefix, %q, no amounts", name, msg, want)
		}
	}
	_, err := h.post(h.ctx, "/v1/chat/completions", chatBody)
	check("refusal", err, budget.ErrBudgetExceeded, `the budget of user "alice" has too little left for POST /v1/chat/completions, so it was not sent; it resets at 2025-04-01T00:00:00Z`)
	var le *budget.LimitError
	if !errors.As(err, &le) || !le.Limit.Equal(decimal.RequireFromString("0.001")) {
		t.Errorf("LimitError = %+v", le)
	}
	_, err = h.post(context.Background(), "/v1/chat/completions", chatBody)
	check("no user", err, gate.ErrNoUser, "call gate.WithUser")
	_, err = h.post(h.ctx, "/v1/chat/completions", `{"model":"gpt-9","max_tokens":1}`)
	check("unknown model", err, pricing.ErrUnknownModel, `no price for model "gpt-9"`)
	_, err = h.post(h.ctx, "/v1/chat/completions", `{"model":"gpt-4o",`)
	check("bad body", err, gate.ErrBadRequest, "body is not JSON")
	_, err = h.post(h.ctx, "/v1/chat/completions", `{"model":"gpt-4o","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/cat.png"}}]}]}`)
	check("image", err, pricing.ErrUnpricedInput, "set its image_tokens")
	_, err = h.post(h.ctx, "/v1/images/generations", `{}`)
	check("path", err, gate.ErrUnsupportedPath, "list it in gate.Options.Free")
}

// Gemini: generateContent, streamGenerateContent as SSE and as a JSON
// array, charged from usageMetadata (thoughts are output, cached prompt at
// the cache price).
func TestGemini(t *testing.T) {
	const usage = `{"promptTokenCount":1000,"cachedContentTokenCount":200,"candidatesTokenCount":300,"thoughtsTokenCount":100,"totalTokenCount":1400}`
	// 800×3e-7 + 200×3e-8 + 400×2.5e-6
	const cost = "0.001246"
	chunk := func(text, finish, usage string) string {
		f := ""
		if finish != "" {
			f = `,"finishReason":"` + finish + `"`
		}
		return `{"candidates":[{"content":{"parts":[{"text":"` + text + `"}],"role":"model"}` + f + `,"index":0}],"usageMetadata":` + usage + `,"modelVersion":"gemini-2.5-flash","responseId":"abc"}`
	}
	running := `{"promptTokenCount":1000,"candidatesTokenCount":1,"totalTokenCount":1001}`
	for _, tt := range []struct{ name, path, contentType, body string }{
		{"generateContent", ":generateContent", "application/json", chunk("Hi", "STOP", usage)},
		{"sse", ":streamGenerateContent?alt=sse", "text/event-stream", "data: " + chunk("H", "", running) + "\r\n\r\ndata: " + chunk("i", "STOP", usage) + "\r\n\r\n"},
		{"json array", ":streamGenerateContent", "application/json", "[" + chunk("H", "", running) + ",\r\n" + chunk("i", "STOP", usage) + "]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "10", gate.Options{})
			h.up.override = func(w http.ResponseWriter, r *http.Request, body map[string]any) bool {
				if r.URL.Query().Get("key") != "AIza" || !strings.HasPrefix(r.URL.Path, "/v1beta/models/gemini-2.5-flash:") {
					t.Errorf("upstream got %s", r.URL)
				}
				w.Header().Set("Content-Type", tt.contentType)
				io.WriteString(w, tt.body)
				return true
			}
			path := "/v1beta/models/gemini-2.5-flash" + tt.path
			if strings.Contains(path, "?") {
				path += "&key=AIza"
			} else {
				path += "?key=AIza"
			}
			status, got := h.call(t, path, `{"contents":[{"role":"user","parts":[{"text":"Hi"}]}],"generationConfig":{"maxOutputTokens":500}}`)
			if status != 200 || got != tt.body {
				t.Fatalf("client got %d %q", status, got)
			}
			r := h.wantOneRecord(t, "google", "gemini-2.5-flash", cost)
			if r.InputTokens != 1000 || r.OutputTokens != 400 {
				t.Errorf("tokens %d in, %d out; want 1000, 400", r.InputTokens, r.OutputTokens)
			}
		})
	}
}

// Enforcement stays exact under load, on every store: 50 and 200
// concurrent calls (plain and streamed, fitting on and off) never take
// spend past the limit with an honest upstream, and every served call is
// charged exactly what it cost.
func TestEnforcementOnStores(t *testing.T) {
	stores := map[string]func(t *testing.T) budget.Store{
		"memory": func(t *testing.T) budget.Store {
			s := memory.New()
			t.Cleanup(func() { s.Close() })
			return s
		},
		"sqlite": func(t *testing.T) budget.Store {
			s, err := sqlite.Open(context.Background(), t.TempDir()+"/budget.db", sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
	if os.Getenv("BUDGET_TEST_POSTGRES_DSN") != "" {
		stores["postgres"] = openPostgres
	}
	for name, open := range stores {
		for _, n := range []int{50, 200} {
			for _, fit := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%d/fit=%v", name, n, fit), func(t *testing.T) {
					// Each call costs about $0.00075 and holds $0.0028;
					// the limit pays for about a third of them.
					limit := decimal.RequireFromString("0.00075").Mul(decimal.NewFromInt(int64(n / 3)))
					r := gatetest.NewRigOn(t, open(t), limit.String(), time.Minute, 50, gate.Options{FitToBudget: fit})
					errs := make([]error, n)
					var wg sync.WaitGroup
					for i := range n {
						wg.Add(1)
						go func() {
							defer wg.Done()
							body := chat200
							if i%2 == 1 {
								body = chat200Stream
							}
							_, _, errs[i] = r.Stream(r.Ctx, "/v1/chat/completions", body)
						}()
					}
					wg.Wait()
					ok := 0
					for _, err := range errs {
						switch {
						case err == nil:
							ok++
						case !errors.Is(err, budget.ErrBudgetExceeded):
							t.Errorf("unexpected error: %v", err)
						}
					}
					st := r.Status(t)
					want := r.Up.Cost(t, r.Prices)
					t.Logf("%d of %d calls served; spent %s of %s", ok, n, st.Spent, st.Limit)
					if ok == 0 || int64(ok) != r.Up.Calls.Load() || len(r.History(t)) != ok {
						t.Errorf("%d calls allowed, %d upstream calls, %d records", ok, r.Up.Calls.Load(), len(r.History(t)))
					}
					if !st.Spent.Equal(want) || st.Spent.GreaterThan(st.Limit) || !st.Reserved.IsZero() {
						t.Errorf("spent %s (served calls cost %s), reserved %s, limit %s", st.Spent, want, st.Reserved, st.Limit)
					}
				})
			}
		}
	}
}
