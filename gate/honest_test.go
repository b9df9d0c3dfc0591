package gate_test

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

// clock is a Manager clock the test moves by hand.
type clock struct{ off atomic.Int64 }

var clockBase = time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC)

func (c *clock) now() time.Time          { return clockBase.Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

// timers stand in for time.AfterFunc in the gate: the test fires them.
type timers struct {
	mu   sync.Mutex
	next int
	fns  map[int]func()
}

func (tm *timers) afterFunc(_ time.Duration, f func()) func() bool {
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

// fire runs every pending timer, on the test goroutine.
func (tm *timers) fire() int {
	tm.mu.Lock()
	fns := tm.fns
	tm.fns = nil
	tm.mu.Unlock()
	for _, f := range fns {
		f()
	}
	return len(fns)
}

func (tm *timers) pending() int {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return len(tm.fns)
}

// served is what the honest upstream billed for one call.
type served struct {
	model         string
	prompt, out   int64
	path          string
	includedUsage bool
}

// honest is a fake upstream for every API style the gate meters that
// honours the request's output limit, reports honest usage (a prompt of a
// quarter token per byte of its text, never above the gate's estimate),
// streams one token per event, and keeps the connection open after its
// last event until the client goes away or the test ends. With stepped
// set, each streaming call waits for a receive on its own channel (sent on
// steps when the call starts) before each token.
type honest struct {
	*httptest.Server
	answer  int64 // tokens the model wants to write
	stepped bool
	steps   chan chan struct{}
	release chan struct{}
	calls   atomic.Int64

	mu   sync.Mutex
	bill []served
}

func newHonest(t testing.TB, answer int64) *honest {
	u := &honest{answer: answer, release: make(chan struct{}), steps: make(chan chan struct{}, 1000)}
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

func (u *honest) serve(w http.ResponseWriter, r *http.Request) {
	u.calls.Add(1)
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
	out := u.answer
	if limit > 0 && limit < out {
		out = limit
	}
	u.mu.Lock()
	u.bill = append(u.bill, served{model: model, prompt: prompt, out: out, path: r.URL.Path, includedUsage: includeUsage})
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
	if u.stepped {
		step = make(chan struct{}, 1000)
		u.steps <- step
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
		send := func(choices, usage string) { writeEvent(w, "", chatChunk(model, choices, usage)) }
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
		writeEvent(w, "", "[DONE]")
	case strings.HasSuffix(path, "/v1/responses"):
		writeEvent(w, "response.created", `{"type":"response.created","response":{"id":"resp_1","status":"in_progress","usage":null}}`)
		for range out {
			if !wait() {
				return
			}
			writeEvent(w, "response.output_text.delta", `{"type":"response.output_text.delta","delta":"tok "}`)
		}
		writeEvent(w, "response.completed", fmt.Sprintf(`{"type":"response.completed","response":{"id":"resp_1","status":"completed","usage":{"input_tokens":%d,"output_tokens":%d,"total_tokens":%d}}}`, prompt, out, prompt+out))
	case strings.HasSuffix(path, "/v1/messages"):
		writeEvent(w, "message_start", fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":%q,"usage":{"input_tokens":%d,"output_tokens":1}}}`, model, prompt))
		writeEvent(w, "content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
		for range out {
			if !wait() {
				return
			}
			writeEvent(w, "content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"tok "}}`)
		}
		writeEvent(w, "content_block_stop", `{"type":"content_block_stop","index":0}`)
		writeEvent(w, "message_delta", fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":%d}}`, out))
		writeEvent(w, "message_stop", `{"type":"message_stop"}`)
	default: // Gemini, alt=sse: every chunk carries the running usage
		for i := range out {
			if !wait() {
				return
			}
			writeEvent(w, "", fmt.Sprintf(`{"candidates":[{"content":{"parts":[{"text":"tok "}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":%d,"candidatesTokenCount":%d,"totalTokenCount":%d},"modelVersion":%q}`,
				prompt, i+1, prompt+i+1, model))
		}
		writeEvent(w, "", fmt.Sprintf(`{"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":%d,"candidatesTokenCount":%d,"totalTokenCount":%d},"modelVersion":%q}`,
			prompt, out, prompt+out, model))
	}
	select { // keep the connection open, as a slow proxy might
	case <-r.Context().Done():
	case <-u.release:
	}
}

// cost returns what the calls upstream served cost, at prices.
func (u *honest) cost(t testing.TB, prices *pricing.Table) decimal.Decimal {
	u.mu.Lock()
	defer u.mu.Unlock()
	var sum decimal.Decimal
	for _, s := range u.bill {
		c, err := prices.Cost(s.model, pricing.Usage{InputTokens: s.prompt, OutputTokens: s.out})
		if err != nil {
			t.Fatal(err)
		}
		sum = sum.Add(c)
	}
	return sum
}

// goOpenAIStream reads a chat stream the way github.com/sashabaranov/go-openai
// does: line by line through a bufio.Reader, returning io.EOF at
// "data: [DONE]" without reading on, and never closing the body; its
// callers index Choices[0].
type goOpenAIStream struct {
	r *bufio.Reader
}

type goChunk struct {
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
	} `json:"choices"`
}

func (s *goOpenAIStream) Recv() (goChunk, error) {
	for {
		line, err := s.r.ReadBytes('\n')
		if err != nil {
			return goChunk{}, err
		}
		line = bytes.TrimSpace(line)
		if !bytes.HasPrefix(line, []byte("data:")) {
			continue
		}
		line = bytes.TrimSpace(line[len("data:"):])
		if string(line) == "[DONE]" {
			return goChunk{}, io.EOF
		}
		var c goChunk
		if err := json.Unmarshal(line, &c); err != nil {
			return goChunk{}, err
		}
		return c, nil
	}
}

func openGoStream(t *testing.T, client *http.Client, ctx context.Context, url, body string) *goOpenAIStream {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return &goOpenAIStream{r: bufio.NewReader(resp.Body)}
}

// rig is a gate over a Manager with a hand-moved clock and hand-fired
// renewal timers, in front of the honest upstream.
type rig struct {
	m      *budget.Manager
	clk    *clock
	tm     *timers
	up     *honest
	hc     *http.Client
	ctx    context.Context
	prices *pricing.Table

	mu     sync.Mutex
	errors []error
}

func newRig(t *testing.T, limit string, ttl time.Duration, answer int64, opts gate.Options) *rig {
	t.Helper()
	store := memory.New()
	t.Cleanup(func() { store.Close() })
	return newRigOn(t, store, limit, ttl, answer, opts)
}

func newRigOn(t *testing.T, store budget.Store, limit string, ttl time.Duration, answer int64, opts gate.Options) *rig {
	t.Helper()
	r := &rig{clk: &clock{}, tm: &timers{}, up: newHonest(t, answer), ctx: gate.WithUser(context.Background(), "alice"), prices: loadPrices(t)}
	plan := budget.DefaultUserPlan()
	plan.Limit = budget.MustAmount(limit)
	r.m = budget.NewManager(store, budget.Options{Now: r.clk.now, HoldTTL: ttl, UserPlan: &plan})
	if opts.Base == nil {
		opts.Base = r.up.Client().Transport
	}
	opts.Now = r.clk.now
	if opts.OnError == nil {
		opts.OnError = func(_ *http.Request, err error) {
			r.mu.Lock()
			r.errors = append(r.errors, err)
			r.mu.Unlock()
		}
	}
	rt := gate.New(r.m, r.prices, opts)
	gate.SetAfterFunc(rt, r.tm.afterFunc)
	r.hc = &http.Client{Transport: rt}
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, err := range r.errors {
			t.Errorf("Options.OnError: %v", err)
		}
	})
	return r
}

func (r *rig) status(t testing.TB) budget.Status {
	st, err := r.m.Status(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (r *rig) history(t testing.TB) []budget.UsageRecord {
	page, err := r.m.History(context.Background(), budget.UsageQuery{UserID: "alice", Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return page.Records
}

// do posts body to path and reads the whole answer.
func (r *rig) do(ctx context.Context, path, body string) (*http.Response, []byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.up.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// streamEnds are the lines that end each API style's stream.
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

// stream posts body and reads the event stream up to its last event, as
// an SDK does, then closes the body; upstream keeps the connection open,
// so reading to EOF would never end.
func (r *rig) stream(ctx context.Context, path, body string) (*http.Response, []byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.up.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.hc.Do(req)
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
