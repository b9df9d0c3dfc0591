package gate_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/gate"
	"github.com/llmbudget/budget/internal/gatetest"
)

// The tests in this file are the failures of issue 14, each first seen
// failing on the gate as it was: a client that is not the project's own
// (go-openai's behaviour, simulated), callers that never close, calls that
// outlive the hold TTL, cancels, and budgets spent to the end. Those that
// drive openai-go and the Anthropic SDK are in the e2e module (e2e/gate).

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
	r := gatetest.NewRig(t, "10", time.Minute, 40, gate.Options{})
	s := openGoStream(t, r.HC, r.Ctx, r.Up.URL, chat200Stream)
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
	want := r.Up.Cost(t, r.Prices)
	if st := r.Status(t); !st.Spent.Equal(want) || !st.Reserved.IsZero() {
		t.Fatalf("after [DONE]: spent %s, reserved %s; want spent %s, nothing reserved", st.Spent, st.Reserved, want)
	}
	if n := r.Tm.Pending(); n != 0 {
		t.Errorf("%d renewal timers still armed after the charge", n)
	}
	r.Clk.Advance(2 * time.Minute) // past the hold TTL
	if st := r.Status(t); !st.Spent.Equal(want) || !st.Reserved.IsZero() {
		t.Fatalf("after the TTL: spent %s, reserved %s; want spent %s", st.Spent, st.Reserved, want)
	}
}

// 3. Calls that outlive the hold TTL keep their holds: with HoldTTL 300 ms
// and two 1-second streams holding the budget, a third call is refused at
// every point of that second.
func TestHoldOutlivesTTL(t *testing.T) {
	const ttl = 300 * time.Millisecond
	// Each call holds $0.002732 (317 prompt tokens, 200 output); $0.006
	// admits two.
	r := gatetest.NewRig(t, "0.006", ttl, 40, gate.Options{})
	r.Up.Stepped = true
	var streams []*goOpenAIStream
	var steps []chan struct{}
	for range 2 {
		s := openGoStream(t, r.HC, r.Ctx, r.Up.URL, chat200Stream)
		if _, err := s.Recv(); err != nil { // the role chunk
			t.Fatal(err)
		}
		streams = append(streams, s)
		steps = append(steps, <-r.Up.Steps)
	}
	third := func() error {
		_, _, err := r.Do(r.Ctx, "/v1/chat/completions", chat200)
		return err
	}
	// 1 second passes in 100 ms steps; the gate's renewal timers fire
	// (every TTL/2); upstream sends a token per step.
	for i := range 10 {
		r.Clk.Advance(100 * time.Millisecond)
		if i%2 == 1 {
			if n := r.Tm.Fire(); n != 2 {
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
	if st := r.Status(t); !st.Spent.Equal(r.Up.Cost(t, r.Prices)) || !st.Reserved.IsZero() {
		t.Errorf("spent %s, reserved %s; want %s", st.Spent, st.Reserved, r.Up.Cost(t, r.Prices))
	}
}

// A response body left unread and unclosed stops holding the budget after
// Options.IdleTimeout, charged at its estimate.
func TestAbandonedBody(t *testing.T) {
	r := gatetest.NewRig(t, "10", time.Minute, 40, gate.Options{IdleTimeout: time.Minute})
	r.Up.Stepped = true
	req, _ := http.NewRequestWithContext(r.Ctx, http.MethodPost, r.Up.URL+"/v1/chat/completions", strings.NewReader(chat200Stream))
	resp, err := r.HC.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-r.Up.Steps
	est := r.Status(t).Reserved
	r.Tm.Fire() // 30 s: idle once
	if st := r.Status(t); !st.Spent.IsZero() {
		t.Fatalf("settled after one idle tick: %+v", st)
	}
	r.Tm.Fire() // 60 s: abandoned
	if st := r.Status(t); !st.Spent.Equal(est) || !st.Reserved.IsZero() {
		t.Errorf("abandoned: spent %s, reserved %s; want the estimate %s", st.Spent, st.Reserved, est)
	}
	if n := r.Tm.Pending(); n != 0 {
		t.Errorf("%d timers still armed", n)
	}
}

// 4. Cancelling a stream charges the prompt estimate plus what was
// streamed plus one chunk — not a full-length answer. The same check with
// openai-go is TestCancelBound/openai-go in the e2e module (e2e/gate).
func TestCancelBound(t *testing.T) {
	t.Run("go-openai", func(t *testing.T) {
		gatetest.CancelBound(t, func(t *testing.T, r *gatetest.Rig, ctx context.Context) func() error {
			s := openGoStream(t, r.HC, ctx, r.Up.URL, gatetest.CancelBody)
			return func() error { _, err := s.Recv(); return err }
		})
	})
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
			probe := gatetest.NewRig(t, "100", 0, 50, gate.Options{})
			if _, _, err := probe.Stream(probe.Ctx, tt.path, tt.body); err != nil {
				t.Fatal(err)
			}
			one := probe.Up.Cost(t, probe.Prices)
			limit := one.Mul(decimal.NewFromInt(10))

			r := gatetest.NewRig(t, limit.String(), 0, 50, gate.Options{FitToBudget: true})
			calls := 0
			for ; calls < 20; calls++ {
				_, _, err := r.Stream(r.Ctx, tt.path, tt.body)
				if errors.Is(err, budget.ErrBudgetExceeded) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			st := r.Status(t)
			t.Logf("%d calls of $%s served; spent %s of %s", calls, one, st.Spent, st.Limit)
			if st.Spent.GreaterThan(st.Limit) || st.Spent.LessThan(st.Limit.Mul(decimal.RequireFromString("0.9"))) {
				t.Errorf("spent %s of %s in %d calls; want at least 90 %% and never more", st.Spent, st.Limit, calls)
			}
			if want := r.Up.Cost(t, r.Prices); !st.Spent.Equal(want) || !st.Reserved.IsZero() || int64(len(r.History(t))) != r.Up.Calls.Load() {
				t.Errorf("spent %s, reserved %s, %d records; want the %d served calls' %s", st.Spent, st.Reserved, len(r.History(t)), r.Up.Calls.Load(), want)
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
