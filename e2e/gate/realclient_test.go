package gate_test

import (
	"context"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/llmbudget/budget/gate"
	"github.com/llmbudget/budget/internal/gatetest"
)

// The SDK-driven tests of issue 14 (the others are in gate's
// realclient_test.go): openai-go and the Anthropic SDK reading streams
// from the honest upstream, and a cancelled openai-go stream.

// 1b. The same with openai-go: no chunk without choices when the caller did
// not ask for usage.
func TestOpenAIGoNoUsageChunk(t *testing.T) {
	r := gatetest.NewRig(t, "10", 0, 40, gate.Options{})
	c := openai.NewClient(option.WithHTTPClient(r.HC), option.WithBaseURL(r.Up.URL+"/v1"), option.WithAPIKey("sk-test"), option.WithMaxRetries(0))
	stream := c.Chat.Completions.NewStreaming(r.Ctx, chatParams("gpt-4o"))
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
	if st := r.Status(t); !st.Spent.Equal(r.Up.Cost(t, r.Prices)) || !st.Reserved.IsZero() {
		t.Errorf("spent %s, reserved %s; want %s", st.Spent, st.Reserved, r.Up.Cost(t, r.Prices))
	}
	stream.Close()
}

// Anthropic streams carry their usage unasked: the gate changes nothing,
// and charges at message_delta, before message_stop and Close.
func TestAnthropicStreamSettlesAtMessageDelta(t *testing.T) {
	r := gatetest.NewRig(t, "10", time.Minute, 30, gate.Options{})
	c := anthropic.NewClient(aoption.WithHTTPClient(r.HC), aoption.WithBaseURL(r.Up.URL), aoption.WithAPIKey("k"), aoption.WithMaxRetries(0))
	stream := c.Messages.NewStreaming(r.Ctx, anthropic.MessageNewParams{
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
			if st := r.Status(t); !st.Spent.Equal(r.Up.Cost(t, r.Prices)) || !st.Reserved.IsZero() {
				t.Errorf("at message_delta: spent %s, reserved %s; want %s", st.Spent, st.Reserved, r.Up.Cost(t, r.Prices))
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

// 4. Cancelling a stream charges the prompt estimate plus what was
// streamed plus one chunk — not a full-length answer. The same check with
// a go-openai-style reader is TestCancelBound/go-openai in gate.
func TestCancelBound(t *testing.T) {
	t.Run("openai-go", func(t *testing.T) {
		gatetest.CancelBound(t, func(t *testing.T, r *gatetest.Rig, ctx context.Context) func() error {
			c := openai.NewClient(option.WithHTTPClient(r.HC), option.WithBaseURL(r.Up.URL+"/v1"), option.WithAPIKey("k"), option.WithMaxRetries(0))
			s := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Write a long essay about budgets.")}})
			t.Cleanup(func() { s.Close() })
			return func() error {
				if !s.Next() {
					return s.Err()
				}
				return nil
			}
		})
	})
}
