package gatetest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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

// This file holds the fake upstream, clock and timers of the tests that
// drive the gate as real programs do: long streams, callers that never
// close, cancels, budgets spent to the last cent.

// Clock is a Manager clock the test moves by hand.
type Clock struct{ off atomic.Int64 }

// ClockBase is where every Clock starts.
var ClockBase = time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC)

func (c *Clock) Now() time.Time          { return ClockBase.Add(time.Duration(c.off.Load())) }
func (c *Clock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// Timers stand in for time.AfterFunc in the gate: the test fires them.
type Timers struct {
	mu   sync.Mutex
	next int
	fns  map[int]func()
}

func (tm *Timers) AfterFunc(_ time.Duration, f func()) func() bool {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if tm.fns == nil {
		tm.fns = map[int]func(){}
	}
	tm.next++
	id := tm.next
	tm.fns[id] = f
	return func() bool {
		tm.mu.Lock()
		defer tm.mu.Unlock()
		_, ok := tm.fns[id]
		delete(tm.fns, id)
		return ok
	}
}

// Fire runs every pending timer, on the test goroutine, and says how many
// there were.
func (tm *Timers) Fire() int {
	tm.mu.Lock()
	fns := tm.fns
	tm.fns = nil
	tm.mu.Unlock()
	for _, f := range fns {
		f()
	}
	return len(fns)
}

// Pending says how many timers are armed.
func (tm *Timers) Pending() int {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return len(tm.fns)
}

// Served is what the honest upstream billed for one call.
type Served struct {
	Model         string
	Prompt, Out   int64
	Path          string
	IncludedUsage bool
}

// Honest is a fake upstream for every API style the gate meters that
// honours the request's output limit, reports honest usage (a prompt of a
// quarter token per byte of its text, never above the gate's estimate),
// streams one token per event, and keeps the connection open after its
// last event until the client goes away or the test ends. With Stepped
// set, each streaming call waits for a receive on its own channel (sent on
// Steps when the call starts) before each token.
type Honest struct {
	*httptest.Server
	Answer  int64 // tokens the model wants to write
	Stepped bool
	Steps   chan chan struct{}
	Calls   atomic.Int64

	release chan struct{}
	mu      sync.Mutex
	bill    []Served
}

// NewHonest starts an Honest upstream whose model wants to write answer
// tokens, closed when the test ends.
func NewHonest(t testing.TB, answer int64) *Honest {
	u := &Honest{Answer: answer, release: make(chan struct{}), Steps: make(chan chan struct{}, 1000)}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.Close)
	t.Cleanup(func() { close(u.release) }) // runs first: lets handlers end
	return u
}

// textBytes sums the bytes of the strings of v, but the model's name.
func textBytes(v any) int64 {
	switch v := v.(type) {
	case string:
		return int64(len(v))
	case []any:
		var n int64
		for _, e := range v {
			n += textBytes(e)
		}
		return n
	case map[string]any:
		var n int64
		for k, e := range v {
			if k != "model" {
				n += textBytes(e)
			}
		}
		return n
	}
	return 0
}

func num(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

func (u *Honest) serve(w http.ResponseWriter, r *http.Request) {
	u.Calls.Add(1)
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, `{"error":{"message":"bad json"}}`, 400)
		return
	}
	model, _ := body["model"].(string)
	stream, _ := body["stream"].(bool)
	so, _ := body["stream_options"].(map[string]any)
	includeUsage, _ := so["include_usage"].(bool)
	limit := max(num(body["max_tokens"]), num(body["max_completion_tokens"]), num(body["max_output_tokens"]))
	if i := strings.Index(r.URL.Path, "/models/"); i >= 0 {
		model, _, _ = strings.Cut(r.URL.Path[i+len("/models/"):], ":")
		stream = strings.HasSuffix(r.URL.Path, ":streamGenerateContent")
		gc, _ := body["generationConfig"].(map[string]any)
		limit = num(gc["maxOutputTokens"])
	}
	prompt := (textBytes(body)+3)/4 + 3
	out := u.Answer
	if limit > 0 && limit < out {
		out = limit
	}
	u.mu.Lock()
	u.bill = append(u.bill, Served{Model: model, Prompt: prompt, Out: out, Path: r.URL.Path, IncludedUsage: includeUsage})
	u.mu.Unlock()
	tokens := strings.Repeat("tok ", int(out))

	if !stream {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/v1/chat/completions"):
			fmt.Fprintf(w, `{"id":"c","object":"chat.completion","model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":%q},"finish_reason":"stop"}],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`,
				model, tokens, prompt, out, prompt+out)
		case strings.HasSuffix(r.URL.Path, "/v1/responses"):
			fmt.Fprintf(w, `{"id":"resp_1","object":"response","status":"completed","model":%q,"output":[{"type":"message","role":"assistant","content":[{"type":"output_text","text":%q}]}],"usage":{"input_tokens":%d,"output_tokens":%d,"total_tokens":%d}}`,
				model, tokens, prompt, out, prompt+out)
		case strings.HasSuffix(r.URL.Path, "/v1/messages"):
			fmt.Fprintf(w, `{"id":"msg_1","type":"message","role":"assistant","model":%q,"content":[{"type":"text","text":%q}],"stop_reason":"end_turn","usage":{"input_tokens":%d,"output_tokens":%d}}`,
				model, tokens, prompt, out)
		default: // Gemini
			fmt.Fprintf(w, `{"candidates":[{"content":{"parts":[{"text":%q}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":%d,"candidatesTokenCount":%d,"totalTokenCount":%d},"modelVersion":%q}`,
				tokens, prompt, out, prompt+out, model)
		}
		return
	}

	var step chan struct{}
	if u.Stepped {
		step = make(chan struct{}, 1000)
		u.Steps <- step
	}
	w.Header().Set("Content-Type", "text/event-stream")
	wait := func() bool {
		if step == nil {
			return true
		}
		select {
		case <-step:
			return true
		case <-r.Context().Done():
		case <-u.release:
		}
		return false
	}
	path := r.URL.Path
	switch {
	case strings.HasSuffix(path, "/v1/chat/completions"):
		send := func(choices, usage string) { WriteEvent(w, "", ChatChunk(model, choices, usage)) }
		send(`[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]`, "null")
		for range out {
			if !wait() {
				return
			}
			send(`[{"index":0,"delta":{"content":"tok "},"finish_reason":null}]`, "null")
		}
		send(`[{"index":0,"delta":{},"finish_reason":"stop"}]`, "null")
		if includeUsage {
			send(`[]`, fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}`, prompt, out, prompt+out))
		}
		WriteEvent(w, "", "[DONE]")
	case strings.HasSuffix(path, "/v1/responses"):
		WriteEvent(w, "response.created", `{"type":"response.created","response":{"id":"resp_1","status":"in_progress","usage":null}}`)
		for range out {
			if !wait() {
				return
			}
			WriteEvent(w, "response.output_text.delta", `{"type":"response.output_text.delta","delta":"tok "}`)
		}
		WriteEvent(w, "response.completed", fmt.Sprintf(`{"type":"response.completed","response":{"id":"resp_1","status":"completed","usage":{"input_tokens":%d,"output_tokens":%d,"total_tokens":%d}}}`, prompt, out, prompt+out))
	case strings.HasSuffix(path, "/v1/messages"):
		WriteEvent(w, "message_start", fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":%q,"usage":{"input_tokens":%d,"output_tokens":1}}}`, model, prompt))
		WriteEvent(w, "content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
		for range out {
			if !wait() {
				return
			}
			WriteEvent(w, "content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"tok "}}`)
		}
		WriteEvent(w, "content_block_stop", `{"type":"content_block_stop","index":0}`)
		WriteEvent(w, "message_delta", fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":%d}}`, out))
		WriteEvent(w, "message_stop", `{"type":"message_stop"}`)
	default: // Gemini, alt=sse: every chunk carries the running usage
		for i := range out {
			if !wait() {
				return
			}
			WriteEvent(w, "", fmt.Sprintf(`{"candidates":[{"content":{"parts":[{"text":"tok "}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":%d,"candidatesTokenCount":%d,"totalTokenCount":%d},"modelVersion":%q}`,
				prompt, i+1, prompt+i+1, model))
		}
		WriteEvent(w, "", fmt.Sprintf(`{"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":%d,"candidatesTokenCount":%d,"totalTokenCount":%d},"modelVersion":%q}`,
			prompt, out, prompt+out, model))
	}
	select { // keep the connection open, as a slow proxy might
	case <-r.Context().Done():
	case <-u.release:
	}
}

// Cost returns what the calls upstream served cost, at prices.
func (u *Honest) Cost(t testing.TB, prices *pricing.Table) decimal.Decimal {
	u.mu.Lock()
	defer u.mu.Unlock()
	var sum decimal.Decimal
	for _, s := range u.bill {
		c, err := prices.Cost(s.Model, pricing.Usage{InputTokens: s.Prompt, OutputTokens: s.Out})
		if err != nil {
			t.Fatal(err)
		}
		sum = sum.Add(c)
	}
	return sum
}

// SetAfterFunc replaces the timers a gate renews holds with. It is
// gate.SetAfterFunc, which only the gate package's own tests can see
// (gate/export_test.go): they set it here. Where it is nil, as in the e2e
// module, a Rig's gate keeps real renewal timers and Rig.Tm stays empty.
var SetAfterFunc func(rt http.RoundTripper, f func(d time.Duration, fn func()) (stop func() bool))

// Rig is a gate over a Manager with a hand-moved clock and hand-fired
// renewal timers (see SetAfterFunc), in front of the Honest upstream.
type Rig struct {
	M      *budget.Manager
	Clk    *Clock
	Tm     *Timers
	Up     *Honest
	HC     *http.Client    // through the gate
	Ctx    context.Context // carries the user "alice"
	Prices *pricing.Table

	mu     sync.Mutex
	errors []error
}

// NewRig gives alice a monthly budget of limit dollars on a memory store;
// ttl is the Manager's HoldTTL and answer the Honest upstream's.
func NewRig(t testing.TB, limit string, ttl time.Duration, answer int64, opts gate.Options) *Rig {
	t.Helper()
	store := memory.New()
	t.Cleanup(func() { store.Close() })
	return NewRigOn(t, store, limit, ttl, answer, opts)
}

// NewRigOn is NewRig on the given store.
func NewRigOn(t testing.TB, store budget.Store, limit string, ttl time.Duration, answer int64, opts gate.Options) *Rig {
	t.Helper()
	r := &Rig{Clk: &Clock{}, Tm: &Timers{}, Up: NewHonest(t, answer), Ctx: gate.WithUser(context.Background(), "alice"), Prices: LoadPrices(t)}
	plan := budget.DefaultUserPlan()
	plan.Limit = budget.MustAmount(limit)
	r.M = budget.NewManager(store, budget.Options{Now: r.Clk.Now, HoldTTL: ttl, UserPlan: &plan})
	if opts.Base == nil {
		opts.Base = r.Up.Client().Transport
	}
	opts.Now = r.Clk.Now
	if opts.OnError == nil {
		opts.OnError = func(_ *http.Request, err error) {
			r.mu.Lock()
			r.errors = append(r.errors, err)
			r.mu.Unlock()
		}
	}
	rt := gate.New(r.M, r.Prices, opts)
	if SetAfterFunc != nil {
		SetAfterFunc(rt, r.Tm.AfterFunc)
	}
	r.HC = &http.Client{Transport: rt}
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, err := range r.errors {
			t.Errorf("Options.OnError: %v", err)
		}
	})
	return r
}

// Status returns alice's status.
func (r *Rig) Status(t testing.TB) budget.Status {
	st, err := r.M.Status(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// History returns alice's usage records, newest first.
func (r *Rig) History(t testing.TB) []budget.UsageRecord {
	page, err := r.M.History(context.Background(), budget.UsageQuery{UserID: "alice", Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return page.Records
}

// Do posts body to path and reads the whole answer.
func (r *Rig) Do(ctx context.Context, path, body string) (*http.Response, []byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.Up.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.HC.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// streamEnd returns the line that ends each API style's stream.
func streamEnd(path string) string {
	switch {
	case strings.HasSuffix(path, "/v1/chat/completions"), strings.HasSuffix(path, "/v1/completions"):
		return "data: [DONE]"
	case strings.HasSuffix(path, "/v1/responses"):
		return "event: response.completed"
	case strings.HasSuffix(path, "/v1/messages"):
		return "event: message_stop"
	}
	return `"finishReason"`
}

// Stream posts body and reads the event stream up to its last event, as
// an SDK does, then closes the body; upstream keeps the connection open,
// so reading to EOF would never end.
func (r *Rig) Stream(ctx context.Context, path, body string) (*http.Response, []byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.Up.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.HC.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	end := streamEnd(path)
	br := bufio.NewReader(resp.Body)
	var got []byte
	for {
		line, err := br.ReadBytes('\n')
		got = append(got, line...)
		if err != nil {
			return resp, got, err
		}
		if bytes.Contains(line, []byte(end)) {
			return resp, got, nil
		}
	}
}

// CancelBody is the streaming chat call CancelBound cancels: gpt-4o, no
// max_tokens.
const CancelBody = `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Write a long essay about budgets."}]}`

// CancelBound is the check of TestCancelBound for one client, shared by
// the gate's tests (a go-openai-style reader) and the e2e module's
// (openai-go): cancelling a stream charges the prompt estimate plus what
// was streamed plus one chunk — not a full-length answer. open starts
// CancelBody (or the same call built by an SDK) on ctx through r.HC and
// returns a function that reads one event.
func CancelBound(t *testing.T, open func(t *testing.T, r *Rig, ctx context.Context) (next func() error)) {
	r := NewRig(t, "10", time.Minute, 5000, gate.Options{})
	r.Up.Stepped = true
	ctx, cancel := context.WithCancel(r.Ctx)
	defer cancel()
	next := open(t, r, ctx)
	step := <-r.Up.Steps
	for range 10 {
		step <- struct{}{}
	}
	for range 11 {
		if err := next(); err != nil {
			t.Fatal(err)
		}
	}
	cancel() // "stop generating"
	for r.Status(t).Spent.IsZero() {
		next() // the gate settles when the body sees the cancel
	}
	st := r.Status(t)
	// The estimate holds 16,384 output tokens: $0.164. Eleven events
	// (about 2,000 bytes) were received.
	q := Quote(t, r.Prices, CancelBody)
	p, _ := r.Prices.Lookup("gpt-4o")
	real, _ := p.Cost(pricing.Usage{InputTokens: 12, OutputTokens: 10})
	if bound := p.MaxCost(q.PromptTokens, 4096+256); st.Spent.GreaterThan(bound) || st.Spent.LessThan(real) {
		t.Fatalf("cancelled after 10 tokens: charged %s; want between the real %s and %s (estimate %s)", st.Spent, real, bound, q.Cost)
	}
	if !st.Reserved.IsZero() {
		t.Errorf("reserved %s after the cancel", st.Reserved)
	}
}
