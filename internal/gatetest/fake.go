// Package gatetest holds the fake upstreams and test rigs of the gate's
// tests: gate's own, and the end-to-end tests in the e2e module that drive
// the real OpenAI and Anthropic SDKs through the gate
// (github.com/llmbudget/budget/e2e/gate). It is for tests only.
//
// Two fakes: Upstream answers like the OpenAI and Anthropic APIs with fixed
// usages (so a test knows the exact cost to expect) behind a Harness; Honest
// honours the request's output limit, reports honest usage and streams one
// token per event, behind a Rig whose clock and renewal timers the test
// moves by hand.
package gatetest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/gate"
	"github.com/llmbudget/budget/pricing"
	"github.com/llmbudget/budget/store/memory"
)

// The fake upstream answers with these usages, so every test knows the
// exact cost to expect (prices from gate/testdata/prices.json).
const (
	// OpenAI chat and responses: 1200 prompt tokens of which 200 cached,
	// 300 output. gpt-4o: 1000×2.5e-6 + 200×1.25e-6 + 300×1e-5.
	CostGPT4o = "0.00575"
	// gpt-4o-mini: 1000×1.5e-7 + 200×7.5e-8 + 300×6e-7.
	CostGPT4oMini = "0.000345"
	// gpt-3.5-turbo-instruct: 5×1.5e-6 + 7×2e-6.
	CostInstruct = "0.0000215"
	// text-embedding-3-small: 8×2e-8.
	CostEmbedding = "0.00000016"
	// claude-sonnet-4-5: 1000×3e-6 + 100 cache writes×3.75e-6 + 200 cache
	// reads×3e-7 + 300×1.5e-5.
	CostClaude = "0.007935"
)

const (
	ChatUsage      = `{"prompt_tokens":1200,"completion_tokens":300,"total_tokens":1500,"prompt_tokens_details":{"cached_tokens":200,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`
	ResponsesUsage = `{"input_tokens":1200,"input_tokens_details":{"cached_tokens":200},"output_tokens":300,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":1500}`
	AnthropicUsage = `{"input_tokens":1000,"cache_creation_input_tokens":100,"cache_read_input_tokens":200,"output_tokens":300,"service_tier":"standard"}`
)

func ChatCompletionJSON(model string) string {
	return `{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,"model":"` + model + `-2024-08-06",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I assist you today?","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],` +
		`"usage":` + ChatUsage + `,"service_tier":"default","system_fingerprint":"fp_fc9f1d7035"}`
}

func ChatChunk(model, choices, usage string) string {
	return `{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1741569952,"model":"` + model + `-2024-08-06","system_fingerprint":"fp_44709d6fcb","choices":` + choices + `,"usage":` + usage + `}`
}

// ChatStream returns the data of each event of a chat completion stream,
// with the usage chunk only when include_usage was asked for, as the real
// API does.
func ChatStream(model string, includeUsage bool) []string {
	ev := []string{
		ChatChunk(model, `[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]`, "null"),
		ChatChunk(model, `[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]`, "null"),
		ChatChunk(model, `[{"index":0,"delta":{"content":" there"},"logprobs":null,"finish_reason":null}]`, "null"),
		ChatChunk(model, `[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]`, "null"),
	}
	if includeUsage {
		ev = append(ev, ChatChunk(model, `[]`, ChatUsage))
	}
	return append(ev, "[DONE]")
}

const CompletionJSON = `{"id":"cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7","object":"text_completion","created":1589478378,"model":"gpt-3.5-turbo-instruct",` +
	`"system_fingerprint":"fp_44709d6fcb","choices":[{"text":"\n\nThis is indeed a test","index":0,"logprobs":null,"finish_reason":"length"}],` +
	`"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}`

const EmbeddingJSON = `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023064255,-0.009327292,-0.0028842222]}],` +
	`"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}`

func ResponseJSON(model, status, usage string) string {
	return `{"id":"resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b","object":"response","created_at":1741476542,"status":"` + status + `",` +
		`"error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":"` + model + `-2024-08-06",` +
		`"output":[{"type":"message","id":"msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b","status":"completed","role":"assistant",` +
		`"content":[{"type":"output_text","text":"In a peaceful grove beneath a silver moon...","annotations":[]}]}],` +
		`"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":true,"temperature":1.0,` +
		`"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled",` +
		`"usage":` + usage + `,"user":null,"metadata":{}}`
}

// ResponsesStream returns (event, data) pairs of a responses stream.
func ResponsesStream(model string) [][2]string {
	return [][2]string{
		{"response.created", `{"type":"response.created","sequence_number":0,"response":` + ResponseJSON(model, "in_progress", "null") + `}`},
		{"response.output_text.delta", `{"type":"response.output_text.delta","sequence_number":1,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"In a peaceful grove"}`},
		{"response.completed", `{"type":"response.completed","sequence_number":2,"response":` + ResponseJSON(model, "completed", ResponsesUsage) + `}`},
	}
}

func MessageJSON(model string) string {
	return `{"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","type":"message","role":"assistant","model":"` + model + `-20250929",` +
		`"content":[{"type":"text","text":"Hi! My name is Claude."}],"stop_reason":"end_turn","stop_sequence":null,"usage":` + AnthropicUsage + `}`
}

// MessagesStream returns (event, data) pairs of an Anthropic stream.
func MessagesStream(model string) [][2]string {
	return [][2]string{
		{"message_start", `{"type":"message_start","message":{"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","type":"message","role":"assistant","content":[],"model":"` + model +
			`-20250929","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1000,"cache_creation_input_tokens":100,"cache_read_input_tokens":200,"output_tokens":1}}}`},
		{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`},
		{"ping", `{"type": "ping"}`},
		{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"!"}}`},
		{"content_block_stop", `{"type":"content_block_stop","index":0}`},
		{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":300}}`},
		{"message_stop", `{"type":"message_stop"}`},
	}
}

// WriteEvent writes one SSE event and flushes it to the client.
func WriteEvent(w http.ResponseWriter, event, data string) {
	if event != "" {
		fmt.Fprintf(w, "event: %s\n", event)
	}
	fmt.Fprintf(w, "data: %s\n\n", data)
	w.(http.Flusher).Flush()
}

// Upstream is a local server that answers like the OpenAI and Anthropic
// APIs, and records what it received.
type Upstream struct {
	*httptest.Server
	Calls atomic.Int64 // requests received

	// Override, when set (before the requests it should see), is given
	// each request first, with its decoded body; it returns true when it
	// has answered.
	Override func(w http.ResponseWriter, r *http.Request, body map[string]any) bool

	mu      sync.Mutex
	bodies  [][]byte
	lengths []int64
}

// NewUpstream starts an Upstream, closed when the test ends.
func NewUpstream(t testing.TB) *Upstream {
	u := &Upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.Close)
	return u
}

// LastBody returns the body and Content-Length of the last request.
func (u *Upstream) LastBody(t testing.TB) (raw []byte, contentLength int64) {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.bodies) == 0 {
		t.Fatal("upstream received nothing")
	}
	return u.bodies[len(u.bodies)-1], u.lengths[len(u.lengths)-1]
}

func (u *Upstream) serve(w http.ResponseWriter, r *http.Request) {
	u.Calls.Add(1)
	raw, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.bodies = append(u.bodies, raw)
	u.lengths = append(u.lengths, r.ContentLength)
	override := u.Override
	u.mu.Unlock()

	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil && r.Method == http.MethodPost {
		http.Error(w, `{"error":{"message":"bad json"}}`, http.StatusBadRequest)
		return
	}
	if override != nil && override(w, r, body) {
		return
	}
	model, _ := body["model"].(string)
	stream, _ := body["stream"].(bool)
	so, _ := body["stream_options"].(map[string]any)
	includeUsage, _ := so["include_usage"].(bool)

	if stream {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		switch r.URL.Path {
		case "/v1/chat/completions":
			for _, d := range ChatStream(model, includeUsage) {
				WriteEvent(w, "", d)
			}
		case "/v1/responses":
			for _, e := range ResponsesStream(model) {
				WriteEvent(w, e[0], e[1])
			}
		case "/v1/messages":
			for _, e := range MessagesStream(model) {
				WriteEvent(w, e[0], e[1])
			}
		default:
			http.Error(w, "no stream here", http.StatusNotFound)
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/v1/chat/completions":
		io.WriteString(w, ChatCompletionJSON(model))
	case "/v1/completions":
		io.WriteString(w, CompletionJSON)
	case "/v1/embeddings":
		io.WriteString(w, EmbeddingJSON)
	case "/v1/responses":
		io.WriteString(w, ResponseJSON(model, "completed", ResponsesUsage))
	case "/v1/messages":
		io.WriteString(w, MessageJSON(model))
	case "/v1/models":
		io.WriteString(w, `{"object":"list","data":[{"id":"gpt-4o","object":"model","created":1686935002,"owned_by":"openai"}]}`)
	default:
		http.Error(w, `{"error":{"message":"not found"}}`, http.StatusNotFound)
	}
}

// Harness wires a Manager on a memory store with a fixed clock, the test
// price list, a gate and the fake Upstream.
type Harness struct {
	M      *budget.Manager
	Prices *pricing.Table
	Up     *Upstream
	Client *http.Client    // through the gate
	Ctx    context.Context // carries the user "alice"

	mu     sync.Mutex
	errors []error // from Options.OnError
}

// NewHarness gives alice a monthly budget of limit dollars. Unless opts
// says otherwise, the gate forwards to the Upstream, and an error it
// reports through Options.OnError fails the test.
func NewHarness(t testing.TB, limit string, opts gate.Options) *Harness {
	t.Helper()
	clock := time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC).UnixNano()
	var tick atomic.Int64
	plan := budget.DefaultUserPlan()
	plan.Limit = budget.MustAmount(limit)
	store := memory.New()
	t.Cleanup(func() { store.Close() })
	h := &Harness{
		M: budget.NewManager(store, budget.Options{
			Now:      func() time.Time { return time.Unix(0, clock+tick.Add(1)*int64(time.Millisecond)).UTC() },
			UserPlan: &plan,
		}),
		Prices: LoadPrices(t),
		Up:     NewUpstream(t),
		Ctx:    gate.WithUser(context.Background(), "alice"),
	}
	if opts.Base == nil {
		opts.Base = h.Up.Client().Transport
	}
	if opts.OnError == nil {
		opts.OnError = func(_ *http.Request, err error) {
			h.mu.Lock()
			h.errors = append(h.errors, err)
			h.mu.Unlock()
		}
	}
	h.Client = &http.Client{Transport: gate.New(h.M, h.Prices, opts)}
	t.Cleanup(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, err := range h.errors {
			t.Errorf("Options.OnError: %v", err)
		}
	})
	return h
}

// PricesFile is the gate tests' price list, gate/testdata/prices.json,
// found from this file's own path so that tests in any directory of the
// checkout (the e2e module's included) read the same file.
func PricesFile() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "gate", "testdata", "prices.json")
}

// LoadPrices loads PricesFile.
func LoadPrices(t testing.TB) *pricing.Table {
	t.Helper()
	f, err := os.Open(PricesFile())
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

// Post posts body to path on the Upstream through the gate.
func (h *Harness) Post(ctx context.Context, path, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.Up.URL+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return h.Client.Do(req)
}

// History returns alice's usage records, newest first.
func (h *Harness) History(t testing.TB) []budget.UsageRecord {
	t.Helper()
	page, err := h.M.History(context.Background(), budget.UsageQuery{UserID: "alice", Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return page.Records
}

// Status returns alice's status.
func (h *Harness) Status(t testing.TB) budget.Status {
	t.Helper()
	st, err := h.M.Status(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// WantOneRecord asserts that alice has exactly one usage record, with
// this provider, model and cost, and no live reservation.
func (h *Harness) WantOneRecord(t testing.TB, provider, model, cost string) budget.UsageRecord {
	t.Helper()
	recs := h.History(t)
	if len(recs) != 1 {
		t.Fatalf("%d usage records, want 1: %+v", len(recs), recs)
	}
	r := recs[0]
	if r.Provider != provider || r.Model != model || !r.Cost.Equal(decimal.RequireFromString(cost)) {
		t.Errorf("recorded %s %s $%s, want %s %s $%s", r.Provider, r.Model, r.Cost, provider, model, cost)
	}
	st := h.Status(t)
	if !st.Reserved.IsZero() || !st.Spent.Equal(r.Cost) {
		t.Errorf("status: spent %s, reserved %s; want spent %s, nothing reserved", st.Spent, st.Reserved, r.Cost)
	}
	return r
}

// WantNoSpend asserts that alice has no usage and no live reservation.
func (h *Harness) WantNoSpend(t testing.TB) {
	t.Helper()
	if recs := h.History(t); len(recs) != 0 {
		t.Errorf("%d usage records, want none: %+v", len(recs), recs)
	}
	if st := h.Status(t); !st.Spent.IsZero() || !st.Reserved.IsZero() {
		t.Errorf("status: spent %s, reserved %s; want nothing", st.Spent, st.Reserved)
	}
}

// Estimate returns what the gate reserves for body.
func (h *Harness) Estimate(t testing.TB, body string) decimal.Decimal {
	t.Helper()
	return Quote(t, h.Prices, body).Cost
}

// Quote returns the gate's quote for body at prices.
func Quote(t testing.TB, prices *pricing.Table, body string) pricing.Quote {
	t.Helper()
	r, err := pricing.ParseRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	q, err := prices.Estimate(r.Model, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return q
}
