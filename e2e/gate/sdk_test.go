package gate_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/gate"
	"github.com/llmbudget/budget/internal/gatetest"
	"github.com/llmbudget/budget/pricing"
)

// The tests in this package drive the official OpenAI and Anthropic SDKs
// through the gate, against the fake upstreams of internal/gatetest (the
// gate package's own tests use the same ones), and read back what was
// recorded. They are a module of their own so that the SDKs are no
// dependency of github.com/llmbudget/budget.

// harness is gatetest.Harness with the SDK clients the tests drive.
type harness struct{ *gatetest.Harness }

// newHarness gives alice a monthly budget of limit dollars.
func newHarness(t *testing.T, limit string, opts gate.Options) *harness {
	t.Helper()
	return &harness{gatetest.NewHarness(t, limit, opts)}
}

func (h *harness) openai() *openai.Client {
	c := openai.NewClient(
		option.WithHTTPClient(h.Client),
		option.WithBaseURL(h.Up.URL+"/v1"),
		option.WithAPIKey("sk-test"),
		option.WithMaxRetries(0),
	)
	return &c
}

func (h *harness) anthropic() *anthropic.Client {
	c := anthropic.NewClient(
		aoption.WithHTTPClient(h.Client),
		aoption.WithBaseURL(h.Up.URL),
		aoption.WithAPIKey("sk-ant-test"),
		aoption.WithMaxRetries(0),
	)
	return &c
}

func chatParams(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:     model,
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
		MaxTokens: openai.Int(500),
	}
}

func TestOpenAIChat(t *testing.T) {
	h := newHarness(t, "10", gate.Options{})
	resp, err := h.openai().Chat.Completions.New(h.Ctx, chatParams("gpt-4o"))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != "Hello! How can I assist you today?" {
		t.Errorf("content = %q", got)
	}
	r := h.WantOneRecord(t, "openai", "gpt-4o", gatetest.CostGPT4o)
	if r.InputTokens != 1200 || r.OutputTokens != 300 {
		t.Errorf("tokens = %d in, %d out; want 1200, 300", r.InputTokens, r.OutputTokens)
	}
	// The plain call's body went upstream unchanged.
	body, _ := h.Up.LastBody(t)
	if strings.Contains(string(body), "stream_options") {
		t.Errorf("a non-stream body was rewritten: %s", body)
	}
}

func TestOpenAIChatStream(t *testing.T) {
	h := newHarness(t, "10", gate.Options{})
	stream := h.openai().Chat.Completions.NewStreaming(h.Ctx, chatParams("gpt-4o-mini"))
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	stream.Close()
	if got := acc.Choices[0].Message.Content; got != "Hello there" {
		t.Errorf("content = %q", got)
	}
	// The SDK did not ask for usage: the chunk the gate asked for is not
	// passed on.
	if acc.Usage.TotalTokens != 0 {
		t.Errorf("the client saw usage %+v it did not ask for", acc.Usage)
	}
	r := h.WantOneRecord(t, "openai", "gpt-4o-mini", gatetest.CostGPT4oMini)
	if r.InputTokens != 1200 || r.OutputTokens != 300 {
		t.Errorf("tokens = %d in, %d out; want 1200, 300", r.InputTokens, r.OutputTokens)
	}
	// The SDK does not ask for usage; the gate did, with a correct
	// Content-Length and the rest of the body intact.
	body, length := h.Up.LastBody(t)
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if so, _ := got["stream_options"].(map[string]any); so["include_usage"] != true {
		t.Errorf("upstream body %s lacks stream_options.include_usage", body)
	}
	if length != int64(len(body)) {
		t.Errorf("Content-Length %d, body %d bytes", length, len(body))
	}
	if got["model"] != "gpt-4o-mini" || got["stream"] != true || got["max_tokens"] != 500.0 {
		t.Errorf("rewritten body lost fields: %s", body)
	}
}

// TestOpenAIChatStreamWithUsage: a caller that asks for the usage chunk
// gets it, and the body goes upstream byte for byte.
func TestOpenAIChatStreamWithUsage(t *testing.T) {
	h := newHarness(t, "10", gate.Options{})
	params := chatParams("gpt-4o-mini")
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := h.openai().Chat.Completions.NewStreaming(h.Ctx, params)
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	stream.Close()
	if acc.Usage.TotalTokens != 1500 {
		t.Errorf("the client saw usage %+v; want the stream's usage chunk", acc.Usage)
	}
	h.WantOneRecord(t, "openai", "gpt-4o-mini", gatetest.CostGPT4oMini)
}

func TestOpenAICompletions(t *testing.T) {
	h := newHarness(t, "10", gate.Options{})
	_, err := h.openai().Completions.New(h.Ctx, openai.CompletionNewParams{
		Model:     "gpt-3.5-turbo-instruct",
		Prompt:    openai.CompletionNewParamsPromptUnion{OfString: openai.String("Say this is a test")},
		MaxTokens: openai.Int(7),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.WantOneRecord(t, "openai", "gpt-3.5-turbo-instruct", gatetest.CostInstruct)
}

func TestOpenAIEmbeddings(t *testing.T) {
	h := newHarness(t, "10", gate.Options{})
	resp, err := h.openai().Embeddings.New(h.Ctx, openai.EmbeddingNewParams{
		Model: "text-embedding-3-small",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("The food was delicious")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Data) != 1 || len(resp.Data[0].Embedding) != 3 {
		t.Errorf("response = %+v", resp.Data)
	}
	r := h.WantOneRecord(t, "openai", "text-embedding-3-small", gatetest.CostEmbedding)
	if r.InputTokens != 8 || r.OutputTokens != 0 {
		t.Errorf("tokens = %d in, %d out; want 8, 0", r.InputTokens, r.OutputTokens)
	}
}

func responsesParams(model string) responses.ResponseNewParams {
	return responses.ResponseNewParams{
		Model:           model,
		Input:           responses.ResponseNewParamsInputUnion{OfString: openai.String("Tell me a story")},
		MaxOutputTokens: openai.Int(1000),
	}
}

func TestOpenAIResponses(t *testing.T) {
	h := newHarness(t, "10", gate.Options{})
	resp, err := h.openai().Responses.New(h.Ctx, responsesParams("gpt-4o"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.OutputText(), "In a peaceful grove") {
		t.Errorf("output = %q", resp.OutputText())
	}
	h.WantOneRecord(t, "openai", "gpt-4o", gatetest.CostGPT4o)
}

func TestOpenAIResponsesStream(t *testing.T) {
	h := newHarness(t, "10", gate.Options{})
	stream := h.openai().Responses.NewStreaming(h.Ctx, responsesParams("gpt-4o"))
	var types []string
	for stream.Next() {
		types = append(types, stream.Current().Type)
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	stream.Close()
	if strings.Join(types, ",") != "response.created,response.output_text.delta,response.completed" {
		t.Errorf("events = %v", types)
	}
	h.WantOneRecord(t, "openai", "gpt-4o", gatetest.CostGPT4o)
	// The responses API reports usage in streams without being asked.
	if body, _ := h.Up.LastBody(t); strings.Contains(string(body), "stream_options") {
		t.Errorf("a responses body was rewritten: %s", body)
	}
}

func messageParams() anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     anthropic.ModelClaudeSonnet4_5,
		MaxTokens: 1024,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Hello, Claude"))},
	}
}

func TestAnthropicMessages(t *testing.T) {
	h := newHarness(t, "10", gate.Options{})
	msg, err := h.anthropic().Messages.New(h.Ctx, messageParams())
	if err != nil {
		t.Fatal(err)
	}
	if msg.Content[0].Text != "Hi! My name is Claude." {
		t.Errorf("content = %+v", msg.Content)
	}
	r := h.WantOneRecord(t, "anthropic", "claude-sonnet-4-5", gatetest.CostClaude)
	if r.InputTokens != 1300 || r.OutputTokens != 300 {
		t.Errorf("tokens = %d in, %d out; want 1300 (cache included), 300", r.InputTokens, r.OutputTokens)
	}
}

func TestAnthropicMessagesStream(t *testing.T) {
	h := newHarness(t, "10", gate.Options{})
	stream := h.anthropic().Messages.NewStreaming(h.Ctx, messageParams())
	var msg anthropic.Message
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	stream.Close()
	if msg.Content[0].Text != "Hello!" || msg.Usage.OutputTokens != 300 {
		t.Errorf("message = %+v", msg)
	}
	h.WantOneRecord(t, "anthropic", "claude-sonnet-4-5", gatetest.CostClaude)
}

// TestSDKRefused shows what an SDK caller sees when the budget refuses:
// an error matching budget.ErrBudgetExceeded, with the limit's details,
// and no upstream call.
func TestSDKRefused(t *testing.T) {
	h := newHarness(t, "0.001", gate.Options{})
	// 500 output tokens of gpt-4o alone cost $0.005: over the limit.
	_, err := h.openai().Chat.Completions.New(h.Ctx, chatParams("gpt-4o"))
	if !errors.Is(err, budget.ErrBudgetExceeded) {
		t.Fatalf("err = %v, want ErrBudgetExceeded", err)
	}
	var le *budget.LimitError
	if !errors.As(err, &le) || le.UserID != "alice" || !le.Limit.Equal(budget.MustAmount("0.001")) {
		t.Errorf("LimitError = %+v", le)
	}
	_, err = h.anthropic().Messages.New(h.Ctx, messageParams())
	if !errors.Is(err, budget.ErrBudgetExceeded) {
		t.Fatalf("anthropic err = %v, want ErrBudgetExceeded", err)
	}
	if n := h.Up.Calls.Load(); n != 0 {
		t.Errorf("upstream called %d times", n)
	}
	h.WantNoSpend(t)
}

func TestSDKUnknownModel(t *testing.T) {
	h := newHarness(t, "10", gate.Options{})
	_, err := h.openai().Chat.Completions.New(h.Ctx, chatParams("gpt-9-turbo"))
	if !errors.Is(err, pricing.ErrUnknownModel) || !strings.Contains(err.Error(), `"gpt-9-turbo"`) {
		t.Fatalf("err = %v, want ErrUnknownModel naming the model", err)
	}
	if n := h.Up.Calls.Load(); n != 0 {
		t.Errorf("upstream called %d times", n)
	}
	h.WantNoSpend(t)
}

// TestStreamChunksArriveOneByOne proves the gate does not buffer a stream:
// the client reads the first chunk while upstream is still waiting to send
// the second, which it only does once the client has the first.
func TestStreamChunksArriveOneByOne(t *testing.T) {
	h := newHarness(t, "10", gate.Options{})
	firstRead := make(chan struct{})
	timedOut := make(chan bool, 1)
	h.Up.Override = func(w http.ResponseWriter, r *http.Request, body map[string]any) bool {
		w.Header().Set("Content-Type", "text/event-stream")
		chunks := gatetest.ChatStream("gpt-4o", true)
		gatetest.WriteEvent(w, "", chunks[0])
		select {
		case <-firstRead:
			timedOut <- false
		case <-time.After(10 * time.Second):
			timedOut <- true // the client never got the first chunk alone
		}
		for _, c := range chunks[1:] {
			gatetest.WriteEvent(w, "", c)
		}
		return true
	}
	stream := h.openai().Chat.Completions.NewStreaming(h.Ctx, chatParams("gpt-4o"))
	if !stream.Next() {
		t.Fatalf("no first chunk: %v", stream.Err())
	}
	close(firstRead)
	if <-timedOut {
		t.Fatal("the first chunk reached the client only after upstream gave up waiting: the gate buffered the stream")
	}
	if got := stream.Current().Choices[0].Delta.Role; got != "assistant" {
		t.Errorf("first chunk role = %q", got)
	}
	n := 1
	for stream.Next() {
		n++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	stream.Close()
	if n != 4 {
		t.Errorf("%d chunks, want 4 (the usage chunk the gate asked for is its own)", n)
	}
	h.WantOneRecord(t, "openai", "gpt-4o", gatetest.CostGPT4o)
}
