package gate_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/shopspring/decimal"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/gate"
	"github.com/llmbudget/budget/pricing"
)

// The tests in this file are the failures of issue 14, each first seen
// failing on the gate as it was: a client that is not the project's own
// (go-openai's behaviour, simulated), callers that never close, calls that
// outlive the hold TTL, cancels, and budgets spent to the end.

// A realistic 575-byte chat body: a system prompt, a 30-word question,
// sampling settings; about 85 real prompt tokens.
const chat200 = `{"model":"gpt-4o","messages":[{"role":"system","content":"You are a helpful assistant who answers questions about personal finance. Keep answers short, concrete and friendly; never give legal advice."},` +
	`{"role":"user","content":"I have three subscriptions, a gym membership and a phone plan. Which of these should I look at first if I want to save about fifty dollars a month without much effort?"}],` +
	`"temperature":0.7,"top_p":1,"presence_penalty":0,"frequency_penalty":0,"user":"alice@example.com","max_tokens":200}`

var chat200Stream = strings.Replace(chat200, `"max_tokens":200`, `"max_tokens":200,"stream":true`, 1)

// 1. go-openai's callers index Choices[0] on every chunk: the usage chunk
// the gate asked for must not reach them. 2. go-openai's Recv returns at
// [DONE] and callers never close: the call is charged at once, exactly,
// and the charge outlives the hold TTL.
func TestGoOpenAIStyleClient(t *testing.T) {
	r := newRig(t, "10", time.Minute, 40, gate.Options{})
	s := openGoStream(t, r.hc, r.ctx, r.up.URL, chat200Stream)
	var text strings.Builder
	for {
		c, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Choices) == 0 {
			t.Fatal("a chunk with empty choices reached the caller: go-openai's example panics on Choices[0]")
		}
		text.WriteString(c.Choices[0].Delta.Content)
	}
	if text.String() != strings.Repeat("tok ", 40) {
		t.Errorf("text = %q", text.String())
	}
	// No Close, no read past [DONE]; upstream keeps the connection open.
	want := r.up.cost(t, r.prices)
	if st := r.status(t); !st.Spent.Equal(want) || !st.Reserved.IsZero() {
		t.Fatalf("after [DONE]: spent %s, reserved %s; want spent %s, nothing reserved", st.Spent, st.Reserved, want)
	}
	if n := r.tm.pending(); n != 0 {
		t.Errorf("%d renewal timers still armed after the charge", n)
	}
	r.clk.advance(2 * time.Minute) // past the hold TTL
	if st := r.status(t); !st.Spent.Equal(want) || !st.Reserved.IsZero() {
		t.Fatalf("after the TTL: spent %s, reserved %s; want spent %s", st.Spent, st.Reserved, want)
	}
}

// 1b. The same with openai-go: no chunk without choices when the caller did
// not ask for usage.
func TestOpenAIGoNoUsageChunk(t *testing.T) {
	r := newRig(t, "10", 0, 40, gate.Options{})
	c := openai.NewClient(option.WithHTTPClient(r.hc), option.WithBaseURL(r.up.URL+"/v1"), option.WithAPIKey("sk-test"), option.WithMaxRetries(0))
	stream := c.Chat.Completions.NewStreaming(r.ctx, chatParams("gpt-4o"))
	n := 0
	for stream.Next() { // until [DONE]; upstream keeps the connection open after it
		n++
		if len(stream.Current().Choices) == 0 {
			t.Fatalf("chunk with empty choices reached the caller: %s", stream.Current().RawJSON())
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 42 {
		t.Errorf("%d chunks, want 42", n)
	}
	// Settled when the gate read the usage chunk, before [DONE]; the
	// caller has not closed yet. (Stopping at the finish_reason chunk
	// instead would race the client's buffering: whether the usage chunk
	// was read by then depends on how the bytes arrived.)
	if st := r.status(t); !st.Spent.Equal(r.up.cost(t, r.prices)) || !st.Reserved.IsZero() {
		t.Errorf("spent %s, reserved %s; want %s", st.Spent, st.Reserved, r.up.cost(t, r.prices))
	}
	stream.Close()
}

// Anthropic streams carry their usage unasked: the gate changes nothing,
// and charges at message_delta, before message_stop and Close.
func TestAnthropicStreamSettlesAtMessageDelta(t *testing.T) {
	r := newRig(t, "10", time.Minute, 30, gate.Options{})
	c := anthropic.NewClient(aoption.WithHTTPClient(r.hc), aoption.WithBaseURL(r.up.URL), aoption.WithAPIKey("k"), aoption.WithMaxRetries(0))
	stream := c.Messages.NewStreaming(r.ctx, anthropic.MessageNewParams{
		Model: "claude-sonnet-4-5", MaxTokens: 1024,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Hello, Claude"))},
	})
	var msg anthropic.Message
	var types []string
	for stream.Next() {
		ev := stream.Current()
		types = append(types, ev.Type)
		if err := msg.Accumulate(ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type == "message_delta" {
			if st := r.status(t); !st.Spent.Equal(r.up.cost(t, r.prices)) || !st.Reserved.IsZero() {
				t.Errorf("at message_delta: spent %s, reserved %s; want %s", st.Spent, st.Reserved, r.up.cost(t, r.prices))
			}
		}
		if ev.Type == "message_stop" {
			break
		}
	}
	stream.Close()
	if msg.Usage.OutputTokens != 30 || len(types) != 35 || types[0] != "message_start" {
		t.Errorf("the caller saw %d events %v..., usage %+v", len(types), types[:2], msg.Usage)
	}
}

// 3. Calls that outlive the hold TTL keep their holds: with HoldTTL 300 ms
// and two 1-second streams holding the budget, a third call is refused at
// every point of that second.
func TestHoldOutlivesTTL(t *testing.T) {
	const ttl = 300 * time.Millisecond
	// Each call holds $0.002732 (317 prompt tokens, 200 output); $0.006
	// admits two.
	r := newRig(t, "0.006", ttl, 40, gate.Options{})
	r.up.stepped = true
	var streams []*goOpenAIStream
	var steps []chan struct{}
	for range 2 {
		s := openGoStream(t, r.hc, r.ctx, r.up.URL, chat200Stream)
		if _, err := s.Recv(); err != nil { // the role chunk
			t.Fatal(err)
		}
		streams = append(streams, s)
		steps = append(steps, <-r.up.steps)
	}
	third := func() error {
		_, _, err := r.do(r.ctx, "/v1/chat/completions", chat200)
		return err
	}
	// 1 second passes in 100 ms steps; the gate's renewal timers fire
	// (every TTL/2); upstream sends a token per step.
	for i := range 10 {
		r.clk.advance(100 * time.Millisecond)
		if i%2 == 1 {
			if n := r.tm.fire(); n != 2 {
				t.Fatalf("%d renewal timers, want 2", n)
			}
		}
		for _, step := range steps {
			step <- struct{}{}
		}
		for _, s := range streams {
			if _, err := s.Recv(); err != nil {
				t.Fatal(err)
			}
		}
		if err := third(); !errors.Is(err, budget.ErrBudgetExceeded) {
			t.Fatalf("at %d ms a third call got %v; want a refusal while two calls hold the budget", (i+1)*100, err)
		}
	}
	// The streams end; both are charged exactly and free the rest.
	for _, step := range steps {
		for range 30 {
			step <- struct{}{}
		}
	}
	for _, s := range streams {
		for {
			if _, err := s.Recv(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
	}
	if st := r.status(t); !st.Spent.Equal(r.up.cost(t, r.prices)) || !st.Reserved.IsZero() {
		t.Errorf("spent %s, reserved %s; want %s", st.Spent, st.Reserved, r.up.cost(t, r.prices))
	}
}

// A response body left unread and unclosed stops holding the budget after
// Options.IdleTimeout, charged at its estimate.
func TestAbandonedBody(t *testing.T) {
	r := newRig(t, "10", time.Minute, 40, gate.Options{IdleTimeout: time.Minute})
	r.up.stepped = true
	req, _ := http.NewRequestWithContext(r.ctx, http.MethodPost, r.up.URL+"/v1/chat/completions", strings.NewReader(chat200Stream))
	resp, err := r.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-r.up.steps
	est := r.status(t).Reserved
	r.tm.fire() // 30 s: idle once
	if st := r.status(t); !st.Spent.IsZero() {
		t.Fatalf("settled after one idle tick: %+v", st)
	}
	r.tm.fire() // 60 s: abandoned
	if st := r.status(t); !st.Spent.Equal(est) || !st.Reserved.IsZero() {
		t.Errorf("abandoned: spent %s, reserved %s; want the estimate %s", st.Spent, st.Reserved, est)
	}
	if n := r.tm.pending(); n != 0 {
		t.Errorf("%d timers still armed", n)
	}
}

// 4. Cancelling a stream charges the prompt estimate plus what was
// streamed plus one chunk — not a full-length answer.
func TestCancelBound(t *testing.T) {
	const noMax = `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Write a long essay about budgets."}]}`
	for _, tt := range []struct {
		name string
		read func(t *testing.T, r *rig, ctx context.Context, step chan struct{}, cancel func())
	}{
		{"go-openai", nil},
		{"openai-go", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, "10", time.Minute, 5000, gate.Options{})
			r.up.stepped = true
			ctx, cancel := context.WithCancel(r.ctx)
			var next func() error
			if tt.name == "go-openai" {
				s := openGoStream(t, r.hc, ctx, r.up.URL, noMax)
				next = func() error { _, err := s.Recv(); return err }
			} else {
				c := openai.NewClient(option.WithHTTPClient(r.hc), option.WithBaseURL(r.up.URL+"/v1"), option.WithAPIKey("k"), option.WithMaxRetries(0))
				s := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o",
					Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Write a long essay about budgets.")}})
				defer s.Close()
				next = func() error {
					if !s.Next() {
						return s.Err()
					}
					return nil
				}
			}
			step := <-r.up.steps
			for range 10 {
				step <- struct{}{}
			}
			for range 11 {
				if err := next(); err != nil {
					t.Fatal(err)
				}
			}
			cancel() // "stop generating"
			for r.status(t).Spent.IsZero() {
				next() // the gate settles when the body sees the cancel
			}
			st := r.status(t)
			// The estimate holds 16,384 output tokens: $0.164. Eleven
			// events (about 2,000 bytes) were received.
			q := pricingQuote(t, r.prices, noMax)
			p, _ := r.prices.Lookup("gpt-4o")
			real, _ := p.Cost(pricing.Usage{InputTokens: 12, OutputTokens: 10})
			if bound := p.MaxCost(q.PromptTokens, 4096+256); st.Spent.GreaterThan(bound) || st.Spent.LessThan(real) {
				t.Fatalf("cancelled after 10 tokens: charged %s; want between the real %s and %s (estimate %s)", st.Spent, real, bound, q.Cost)
			}
			if !st.Reserved.IsZero() {
				t.Errorf("reserved %s after the cancel", st.Reserved)
			}
		})
	}
}

func pricingQuote(t testing.TB, prices *pricing.Table, body string) pricing.Quote {
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

// 5. With FitToBudget, a user with ten honest calls' worth left spends at
// least 90 % of it and never more, in every API style, with and without
// max_tokens; every served call is charged exactly.
func TestFitSpendsTheBudget(t *testing.T) {
	claude := `{"model":"claude-sonnet-4-5","max_tokens":200,"stream":true,"system":"You are a helpful assistant who answers questions about personal finance.",` +
		`"messages":[{"role":"user","content":"I have three subscriptions, a gym membership and a phone plan. Which should I look at first to save fifty dollars a month?"}]}`
	responsesBody := `{"model":"gpt-4o","stream":true,"instructions":"You are a helpful assistant who answers questions about personal finance.",` +
		`"input":"I have three subscriptions, a gym membership and a phone plan. Which should I look at first to save fifty dollars a month?"}`
	geminiBody := `{"systemInstruction":{"parts":[{"text":"You are a helpful assistant who answers questions about personal finance."}]},` +
		`"contents":[{"role":"user","parts":[{"text":"I have three subscriptions, a gym membership and a phone plan. Which should I look at first to save fifty dollars a month?"}]}]}`
	for _, tt := range []struct {
		name, path, body, model string
		stream                  bool
	}{
		{"chat, max_tokens 200", "/v1/chat/completions", chat200, "gpt-4o", false},
		{"chat, no max_tokens", "/v1/chat/completions", strings.Replace(chat200, `,"max_tokens":200`, "", 1), "gpt-4o", false},
		{"chat stream", "/v1/chat/completions", strings.Replace(chat200Stream, `"max_tokens":200,`, "", 1), "gpt-4o", true},
		{"responses stream", "/v1/responses", responsesBody, "gpt-4o", true},
		{"anthropic stream", "/v1/messages", claude, "claude-sonnet-4-5", true},
		{"gemini stream", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", geminiBody, "gemini-2.5-flash", true},
		{"gemini", "/v1beta/models/gemini-2.5-flash:generateContent", geminiBody, "gemini-2.5-flash", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// What one honest call costs: the upstream's usage, as it
			// would report it.
			probe := newRig(t, "100", 0, 50, gate.Options{})
			if _, _, err := probe.stream(probe.ctx, tt.path, tt.body); err != nil {
				t.Fatal(err)
			}
			one := probe.up.cost(t, probe.prices)
			limit := one.Mul(decimal.NewFromInt(10))

			r := newRig(t, limit.String(), 0, 50, gate.Options{FitToBudget: true})
			calls := 0
			for ; calls < 20; calls++ {
				_, _, err := r.stream(r.ctx, tt.path, tt.body)
				if errors.Is(err, budget.ErrBudgetExceeded) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			st := r.status(t)
			t.Logf("%d calls of $%s served; spent %s of %s", calls, one, st.Spent, st.Limit)
			if st.Spent.GreaterThan(st.Limit) || st.Spent.LessThan(st.Limit.Mul(decimal.RequireFromString("0.9"))) {
				t.Errorf("spent %s of %s in %d calls; want at least 90 %% and never more", st.Spent, st.Limit, calls)
			}
			if want := r.up.cost(t, r.prices); !st.Spent.Equal(want) || !st.Reserved.IsZero() || int64(len(r.history(t))) != r.up.calls.Load() {
				t.Errorf("spent %s, reserved %s, %d records; want the %d served calls' %s", st.Spent, st.Reserved, len(r.history(t)), r.up.calls.Load(), want)
			}
		})
	}
}

// 6. stream_options is inserted without re-encoding: every other byte of
// the body reaches upstream as the caller wrote it.
func TestStreamOptionsKeepsEveryByte(t *testing.T) {
	h := newHarness(t, "10", gate.Options{})
	body := `{"model":"gpt-4o",  "stream":true, "messages":[{"role":"user","content":"<b>&\u00e9</b>"}],"max_tokens":500}`
	h.call(t, "/v1/chat/completions", body)
	got, length := h.up.lastBody(t)
	want := `{"model":"gpt-4o",  "stream":true, "messages":[{"role":"user","content":"<b>&\u00e9</b>"}],"max_tokens":500,"stream_options":{"include_usage":true}}`
	if string(got) != want || length != int64(len(want)) {
		t.Errorf("upstream got (Content-Length %d)\n%s\nwant\n%s", length, got, want)
	}
}
