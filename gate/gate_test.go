package gate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/gate"
	"github.com/llmbudget/budget/pricing"
)

const (
	chatBody   = `{"model":"gpt-4o","messages":[{"role":"user","content":"Say hello"}],"max_tokens":500}`
	streamBody = `{"model":"gpt-4o","messages":[{"role":"user","content":"Say hello"}],"max_tokens":500,"stream":true}`
	claudeBody = `{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"Hello, Claude"}]}`
)

func (h *harness) post(ctx context.Context, path, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.up.URL+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return h.client.Do(req)
}

// call posts body and reads the whole response.
func (h *harness) call(t *testing.T, path, body string) (status int, respBody string) {
	t.Helper()
	resp, err := h.post(h.ctx, path, body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRefusedByBudget(t *testing.T) {
	h := newHarness(t, "0.004", gate.Options{})
	// The estimate, 86 prompt bytes + 500 output tokens of gpt-4o, is
	// $0.005215: over the $0.004 limit.
	resp, err := h.post(h.ctx, "/v1/chat/completions", chatBody)
	if resp != nil {
		resp.Body.Close()
	}
	if !errors.Is(err, budget.ErrBudgetExceeded) {
		t.Fatalf("err = %v, want ErrBudgetExceeded", err)
	}
	if n := h.up.calls.Load(); n != 0 {
		t.Errorf("upstream called %d times", n)
	}
	h.wantNoSpend(t)
	// A smaller request fits, and is charged its actual cost.
	if status, _ := h.call(t, "/v1/chat/completions", strings.Replace(chatBody, "500", "100", 1)); status != 200 {
		t.Fatalf("status %d", status)
	}
	h.wantOneRecord(t, "openai", "gpt-4o", costGPT4o)
}

func TestReleaseOnErrorStatus(t *testing.T) {
	for _, code := range []int{400, 429, 500, 529} {
		h := newHarness(t, "10", gate.Options{})
		h.up.override = func(w http.ResponseWriter, r *http.Request, body map[string]any) bool {
			http.Error(w, `{"error":{"message":"overloaded"}}`, code)
			return true
		}
		status, body := h.call(t, "/v1/chat/completions", chatBody)
		if status != code || !strings.Contains(body, "overloaded") {
			t.Errorf("%d: the client got %d %q; want upstream's answer", code, status, body)
		}
		h.wantNoSpend(t)
	}
}

func TestReleaseOnTransportError(t *testing.T) {
	boom := errors.New("connection refused")
	h := newHarness(t, "10", gate.Options{Base: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, boom })})
	_, err := h.post(h.ctx, "/v1/chat/completions", chatBody)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the transport's error", err)
	}
	h.wantNoSpend(t)
}

// TestCutOffStream: upstream drops the connection mid-stream, before the
// usage. The call is settled at its estimate, not at zero.
func TestCutOffStream(t *testing.T) {
	tests := []struct {
		name, path, body string
		write            func(w http.ResponseWriter)
		provider, model  string
	}{
		{"openai", "/v1/chat/completions", streamBody, func(w http.ResponseWriter) {
			for _, c := range chatStream("gpt-4o", true)[:2] {
				writeEvent(w, "", c)
			}
		}, "openai", "gpt-4o"},
		{"anthropic", "/v1/messages", claudeBody, func(w http.ResponseWriter) {
			for _, e := range messagesStream("claude-sonnet-4-5")[:4] {
				writeEvent(w, e[0], e[1])
			}
		}, "anthropic", "claude-sonnet-4-5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "10", gate.Options{})
			h.up.override = func(w http.ResponseWriter, r *http.Request, body map[string]any) bool {
				w.Header().Set("Content-Type", "text/event-stream")
				tt.write(w)
				panic(http.ErrAbortHandler) // drop the connection
			}
			resp, err := h.post(h.ctx, tt.path, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Fatalf("read the whole cut-off stream without error: %q", got)
			}
			if !bytes.Contains(got, []byte("data: ")) {
				t.Errorf("the client got none of the stream: %q", got)
			}
			est := h.estimate(t, tt.body)
			r := h.wantOneRecord(t, tt.provider, tt.model, est.String())
			if tt.name == "anthropic" && r.InputTokens != 1300 {
				t.Errorf("input tokens = %d; want message_start's 1300", r.InputTokens)
			}
		})
	}
}

// TestUsageMissingOrUnreadable: a 2xx answer whose usage cannot be read
// settles at the estimate.
func TestUsageMissingOrUnreadable(t *testing.T) {
	tests := []struct{ name, contentType, body string }{
		{"no usage", "application/json", `{"id":"x","choices":[{"message":{"content":"hi"}}]}`},
		{"null usage", "application/json", `{"id":"x","usage":null}`},
		{"string counts", "application/json", `{"usage":{"prompt_tokens":"many","completion_tokens":3}}`},
		{"negative", "application/json", `{"usage":{"prompt_tokens":-5,"completion_tokens":3}}`},
		{"cached above prompt", "application/json", `{"usage":{"prompt_tokens":5,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":6}}}`},
		{"no tokens at all", "application/json", `{"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}`},
		{"truncated", "application/json", `{"id":"x","usage":{"prompt_tokens":1200,"completion_tok`},
		{"nested usage only", "application/json", `{"metadata":{"usage":{"prompt_tokens":1,"completion_tokens":1}}}`},
		{"not JSON", "text/plain", `OK`},
		{"stream without usage", "text/event-stream", "data: " + chatStream("gpt-4o", false)[0] + "\n\ndata: [DONE]\n\n"},
		{"stream with broken usage", "text/event-stream", "data: " + chatChunk("gpt-4o", "[]", `{"prompt_tokens":1,`) + "\n\ndata: [DONE]\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "10", gate.Options{})
			h.up.override = func(w http.ResponseWriter, r *http.Request, body map[string]any) bool {
				w.Header().Set("Content-Type", tt.contentType)
				io.WriteString(w, tt.body)
				return true
			}
			if status, got := h.call(t, "/v1/chat/completions", chatBody); status != 200 || got != tt.body {
				t.Fatalf("client got %d %q; want the body untouched", status, got)
			}
			h.wantOneRecord(t, "openai", "gpt-4o", h.estimate(t, chatBody).String())
		})
	}
}

func TestUnknownModel(t *testing.T) {
	h := newHarness(t, "10", gate.Options{})
	for _, body := range []string{
		`{"model":"gpt-5-unpriced","messages":[],"max_tokens":10}`,
		`{"model":"dall-e-3","messages":[],"max_tokens":10}`, // priced per image: not in the table
	} {
		_, err := h.post(h.ctx, "/v1/chat/completions", body)
		if !errors.Is(err, pricing.ErrUnknownModel) {
			t.Errorf("%s: err = %v, want ErrUnknownModel", body, err)
		}
	}
	if n := h.up.calls.Load(); n != 0 {
		t.Errorf("upstream called %d times", n)
	}
	h.wantNoSpend(t)
}

func TestUnsupportedPath(t *testing.T) {
	h := newHarness(t, "10", gate.Options{})
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/models"},
		{"POST", "/v1/images/generations"},
		{"POST", "/v1/audio/speech"},
		{"POST", "/v1/messages/count_tokens"},
		{"POST", "/v1/chat/completions/"},
		{"GET", "/v1/chat/completions"},
	} {
		req, _ := http.NewRequestWithContext(h.ctx, r.method, h.up.URL+r.path, strings.NewReader(chatBody))
		_, err := h.client.Do(req)
		if !errors.Is(err, gate.ErrUnsupportedPath) {
			t.Errorf("%s %s: err = %v, want ErrUnsupportedPath", r.method, r.path, err)
		}
	}
	if n := h.up.calls.Load(); n != 0 {
		t.Errorf("upstream called %d times", n)
	}
	h.wantNoSpend(t)

	// With PassThrough they go upstream, unbudgeted.
	h = newHarness(t, "10", gate.Options{PassThrough: true})
	req, _ := http.NewRequestWithContext(context.Background(), "GET", h.up.URL+"/v1/models", nil)
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"gpt-4o"`) {
		t.Errorf("pass-through answer %d %s", resp.StatusCode, b)
	}
	h.wantNoSpend(t)
}

// TestPathPrefix: OpenAI-compatible servers under another prefix are
// metered like the original.
func TestPathPrefix(t *testing.T) {
	h := newHarness(t, "10", gate.Options{})
	h.up.override = func(w http.ResponseWriter, r *http.Request, body map[string]any) bool {
		if r.URL.Path != "/api/openai/v1/chat/completions" {
			t.Errorf("upstream path %s", r.URL.Path)
		}
		io.WriteString(w, chatCompletionJSON("gpt-4o"))
		return true
	}
	h.call(t, "/api/openai/v1/chat/completions", chatBody)
	h.wantOneRecord(t, "openai", "gpt-4o", costGPT4o)
}

func TestNoUser(t *testing.T) {
	h := newHarness(t, "10", gate.Options{})
	_, err := h.post(context.Background(), "/v1/chat/completions", chatBody)
	if !errors.Is(err, gate.ErrNoUser) {
		t.Errorf("no user: %v, want ErrNoUser", err)
	}
	_, err = h.post(gate.WithUser(context.Background(), ""), "/v1/chat/completions", chatBody)
	if !errors.Is(err, gate.ErrNoUser) {
		t.Errorf("empty user: %v, want ErrNoUser", err)
	}
	if n := h.up.calls.Load(); n != 0 {
		t.Errorf("upstream called %d times", n)
	}

	// A custom Options.User: the user from a header.
	h = newHarness(t, "10", gate.Options{User: func(r *http.Request) (string, error) { return r.Header.Get("X-User"), nil }})
	req, _ := http.NewRequest(http.MethodPost, h.up.URL+"/v1/chat/completions", strings.NewReader(chatBody))
	req.Header.Set("X-User", "alice")
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	h.wantOneRecord(t, "openai", "gpt-4o", costGPT4o)
}

func TestBadRequest(t *testing.T) {
	h := newHarness(t, "10", gate.Options{MaxRequestBytes: 200})
	for _, body := range []string{
		`not json`,
		`{"messages":[]}`,
		`{"model":"gpt-4o","max_tokens":"lots"}`,
		`{"model":"gpt-4o","messages":[{"role":"user","content":"` + strings.Repeat("x", 200) + `"}]}`, // too large
	} {
		_, err := h.post(h.ctx, "/v1/chat/completions", body)
		if !errors.Is(err, gate.ErrBadRequest) {
			t.Errorf("%.40s: err = %v, want ErrBadRequest", body, err)
		}
	}
	req, _ := http.NewRequestWithContext(h.ctx, http.MethodPost, h.up.URL+"/v1/chat/completions", strings.NewReader("\x1f\x8b"))
	req.Header.Set("Content-Encoding", "gzip")
	if _, err := h.client.Do(req); !errors.Is(err, gate.ErrBadRequest) {
		t.Errorf("gzip body: err = %v, want ErrBadRequest", err)
	}
	if n := h.up.calls.Load(); n != 0 {
		t.Errorf("upstream called %d times", n)
	}
	h.wantNoSpend(t)
}

func TestIncludeUsageRewrite(t *testing.T) {
	h := newHarness(t, "10", gate.Options{})
	// Other stream options are kept, every byte in place; include_usage
	// false is overridden.
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"<b>&</b>"}],"max_tokens":500,"stream":true,"stream_options":{"include_usage":false,"include_obfuscation":false}}`
	h.call(t, "/v1/chat/completions", body)
	got, length := h.up.lastBody(t)
	want := `{"model":"gpt-4o","messages":[{"role":"user","content":"<b>&</b>"}],"max_tokens":500,"stream":true,"stream_options":{"include_usage":true,"include_obfuscation":false}}`
	if string(got) != want || length != int64(len(want)) {
		t.Errorf("upstream got %s (Content-Length %d)\nwant %s", got, length, want)
	}
	h.wantOneRecord(t, "openai", "gpt-4o", costGPT4o)

	// A body that already asks for usage goes upstream byte for byte.
	h = newHarness(t, "10", gate.Options{})
	body = `{"model":"gpt-4o", "stream":true, "stream_options":{"include_usage":true}, "max_tokens":500, "messages":[]}`
	h.call(t, "/v1/chat/completions", body)
	if got, _ := h.up.lastBody(t); string(got) != body {
		t.Errorf("upstream got %s, want %s", got, body)
	}

	// Legacy completions stream too.
	h = newHarness(t, "10", gate.Options{})
	h.up.override = func(w http.ResponseWriter, r *http.Request, body map[string]any) bool {
		w.Header().Set("Content-Type", "text/event-stream")
		writeEvent(w, "", `{"id":"cmpl-1","object":"text_completion","created":1,"choices":[{"text":"Hi","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct","usage":null}`)
		if so, _ := body["stream_options"].(map[string]any); so["include_usage"] == true {
			writeEvent(w, "", `{"id":"cmpl-1","object":"text_completion","created":1,"choices":[],"model":"gpt-3.5-turbo-instruct","usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}`)
		}
		writeEvent(w, "", "[DONE]")
		return true
	}
	h.call(t, "/v1/completions", `{"model":"gpt-3.5-turbo-instruct","prompt":"Say this is a test","max_tokens":7,"stream":true}`)
	h.wantOneRecord(t, "openai", "gpt-3.5-turbo-instruct", costInstruct)
}

// TestSettleOnce: reaching EOF settles; Close and further reads after it
// change nothing.
func TestSettleOnce(t *testing.T) {
	h := newHarness(t, "10", gate.Options{})
	resp, err := h.post(h.ctx, "/v1/chat/completions", chatBody)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	h.wantOneRecord(t, "openai", "gpt-4o", costGPT4o) // settled at EOF, before Close
	resp.Body.Read(make([]byte, 10))
	resp.Body.Close()
	resp.Body.Close()
	h.wantOneRecord(t, "openai", "gpt-4o", costGPT4o)
}

// TestDecoderStopsBeforeEOF: a JSON decoder reads the object and stops
// without seeing EOF; Close settles at the actual cost, as the usage was
// already read.
func TestDecoderStopsBeforeEOF(t *testing.T) {
	h := newHarness(t, "10", gate.Options{})
	resp, err := h.post(h.ctx, "/v1/messages", strings.Replace(claudeBody, `"stream":true,`, "", 1))
	if err != nil {
		t.Fatal(err)
	}
	var msg map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&msg); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h.wantOneRecord(t, "anthropic", "claude-sonnet-4-5", costClaude)
}

// TestClosedEarly: a caller that closes a JSON answer before its usage is
// charged the prompt estimate and, as output, the answer's length (it was
// generated whole before it was sent), at most the estimate.
func TestClosedEarly(t *testing.T) {
	h := newHarness(t, "10", gate.Options{})
	resp, err := h.post(h.ctx, "/v1/chat/completions", chatBody)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Read(make([]byte, 10))
	resp.Body.Close()
	q := h.quote(t, chatBody)
	p, _ := h.prices.Lookup("gpt-4o")
	want := p.MaxCost(q.PromptTokens, min(q.OutputTokens, int64(len(chatCompletionJSON("gpt-4o")))))
	h.wantOneRecord(t, "openai", "gpt-4o", want.String())
}

// TestConcurrentCallsStayWithinLimit: many callers at once never take the
// user past the limit, and every upstream call is recorded.
func TestConcurrentCallsStayWithinLimit(t *testing.T) {
	h := newHarness(t, "0.05", gate.Options{})
	// Each call holds $0.010215 and costs $0.00575.
	body := strings.Replace(chatBody, "500", "1000", 1)
	const n = 40
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := h.post(h.ctx, "/v1/chat/completions", body)
			if err != nil {
				errs[i] = err
				return
			}
			_, errs[i] = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
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
	st := h.status(t)
	recs := h.history(t)
	if ok == 0 || ok == n || int64(ok) != h.up.calls.Load() || len(recs) != ok {
		t.Errorf("%d calls allowed, %d upstream calls, %d records", ok, h.up.calls.Load(), len(recs))
	}
	want := decimal.RequireFromString(costGPT4o).Mul(decimal.NewFromInt(int64(ok)))
	if !st.Spent.Equal(want) || st.Spent.GreaterThan(st.Limit) || !st.Reserved.IsZero() {
		t.Errorf("spent %s (want %s), reserved %s, limit %s", st.Spent, want, st.Reserved, st.Limit)
	}
}
