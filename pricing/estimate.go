package pricing

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/llmbudget/budget"
)

var (
	// ErrInvalidRequest: a request body cannot be priced — not a JSON
	// object, no model, or an output limit that is not a count.
	ErrInvalidRequest = errors.New("pricing: invalid request")
	// ErrNoOutputLimit: the request sets no output limit and the price list
	// gives no max_output_tokens for the model, so nothing bounds the cost.
	// Set max_tokens (or max_completion_tokens, max_output_tokens) in the
	// request, or MaxOutputTokens in the price.
	ErrNoOutputLimit = errors.New("pricing: no output limit")
)

// TokensPerTool is added to a request's prompt estimate for each entry of
// its "tools" array. Providers add a tool-use system prompt of their own
// (hundreds of tokens at Anthropic) that is not in the request body.
const TokensPerTool = 1024

// Request is what pricing needs from an LLM API request body: the model, and
// the numbers that bound the call's cost. ParseRequest reads it from OpenAI
// (chat completions, completions, responses, embeddings) and Anthropic
// (messages) bodies alike.
type Request struct {
	// Model is the body's "model".
	Model string
	// Stream is the body's "stream".
	Stream bool
	// PromptTokens is a conservative count of the prompt: one token per
	// byte of the whole body, plus TokensPerTool per entry of "tools".
	//
	// Why it never counts short for text: every token of the byte-level
	// tokenizers OpenAI and Anthropic use stands for at least one byte of
	// UTF-8 text; JSON encoding of that text only adds bytes; and the few
	// framing tokens per message are fewer than the JSON around each
	// message ({"role":"user","content":""} alone is 28 bytes).
	//
	// Not counted: content the body only refers to — images or files by
	// URL or ID, previous_response_id, server-side prompts beyond
	// TokensPerTool. A call with such content can cost more than its
	// estimate; the budget then records the actual cost in full.
	PromptTokens int64
	// MaxOutputTokens is the largest of max_tokens, max_completion_tokens
	// and max_output_tokens; zero when the body sets none.
	MaxOutputTokens int64
	// Choices is the larger of "n" and "best_of", at least 1: how many
	// completions the call generates and pays for.
	Choices int64
}

// ParseRequest reads a Request from a JSON request body. Keys match exactly
// (encoding/json alone would also accept "MODEL"), and of duplicate keys the
// last wins, as with the providers' own parsers. A body that is not a JSON
// object, lacks a model, or has an output limit that is not a
// non-negative integer returns an error wrapping ErrInvalidRequest.
func ParseRequest(body []byte) (Request, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return Request{}, fmt.Errorf("%w: body is not JSON: %v", ErrInvalidRequest, err)
	}
	if top == nil {
		return Request{}, fmt.Errorf("%w: body is not a JSON object", ErrInvalidRequest)
	}
	r := Request{PromptTokens: int64(len(body)), Choices: 1}
	if err := unmarshalField(top, "model", &r.Model); err != nil {
		return Request{}, err
	}
	if r.Model == "" {
		return Request{}, fmt.Errorf(`%w: no "model"`, ErrInvalidRequest)
	}
	if err := unmarshalField(top, "stream", &r.Stream); err != nil {
		return Request{}, err
	}
	for _, key := range [...]string{"max_tokens", "max_completion_tokens", "max_output_tokens"} {
		n, err := countField(top, key)
		if err != nil {
			return Request{}, err
		}
		r.MaxOutputTokens = max(r.MaxOutputTokens, n)
	}
	for _, key := range [...]string{"n", "best_of"} {
		n, err := countField(top, key)
		if err != nil {
			return Request{}, err
		}
		r.Choices = max(r.Choices, n)
	}
	var tools []json.RawMessage
	if err := unmarshalField(top, "tools", &tools); err != nil {
		return Request{}, err
	}
	r.PromptTokens += int64(len(tools)) * TokensPerTool
	return r, nil
}

// unmarshalField decodes top[key] into v; an absent or null key leaves v
// unchanged.
func unmarshalField(top map[string]json.RawMessage, key string, v any) error {
	raw, ok := top[key]
	if !ok || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: %q: %v", ErrInvalidRequest, key, err)
	}
	return nil
}

func countField(top map[string]json.RawMessage, key string) (int64, error) {
	var n int64
	if err := unmarshalField(top, key, &n); err != nil {
		return 0, err
	}
	if n < 0 || n > MaxTokens {
		return 0, fmt.Errorf("%w: %q is %d", ErrInvalidRequest, key, n)
	}
	return n, nil
}

// Quote is the most a call can cost, with the token counts it assumes.
type Quote struct {
	// PromptTokens is Request.PromptTokens.
	PromptTokens int64
	// OutputTokens is the output limit (the request's, else the model's)
	// times Request.Choices; zero for a model whose output is free.
	OutputTokens int64
	// Cost is PromptTokens at the highest of the input and cache prices
	// plus OutputTokens at the output price, rounded up to 9 places.
	Cost decimal.Decimal
}

// Estimate returns the most request r can cost at price p: what a
// budget.Reservation should hold before the call. See Request.PromptTokens
// for the prompt rule; the output is bounded by r.MaxOutputTokens, or
// p.MaxOutputTokens when the request sets none, times r.Choices. With
// neither limit, a model with a non-zero output price returns
// ErrNoOutputLimit.
func (p Price) Estimate(r Request) (Quote, error) {
	q := Quote{PromptTokens: r.PromptTokens}
	if !p.Output.IsZero() {
		limit := r.MaxOutputTokens
		if limit == 0 {
			limit = p.MaxOutputTokens
		}
		if limit == 0 {
			return Quote{}, fmt.Errorf("%w: set max_tokens in the request or max_output_tokens in the price list", ErrNoOutputLimit)
		}
		choices := max(r.Choices, 1)
		if limit > MaxTokens/choices {
			return Quote{}, fmt.Errorf("%w: %d choices of %d tokens", ErrInvalidRequest, choices, limit)
		}
		q.OutputTokens = limit * choices
	}
	if q.PromptTokens < 0 || q.PromptTokens > MaxTokens {
		return Quote{}, fmt.Errorf("%w: %d prompt tokens", ErrInvalidRequest, q.PromptTokens)
	}
	in := decimal.Max(p.Input, p.cacheRead(), p.cacheWrite())
	q.Cost = in.Mul(decimal.NewFromInt(q.PromptTokens)).
		Add(p.Output.Mul(decimal.NewFromInt(q.OutputTokens))).
		RoundCeil(budget.Places)
	return q, nil
}

// Estimate returns the most a call of model with request body body can
// cost; see Price.Estimate. An unknown model returns an error wrapping
// ErrUnknownModel. The model argument, not the body's, picks the price, so a
// caller that routes "my-alias" to a real model can price the real one.
func (t *Table) Estimate(model string, body []byte) (Quote, error) {
	p, err := t.Lookup(model)
	if err != nil {
		return Quote{}, err
	}
	r, err := ParseRequest(body)
	if err != nil {
		return Quote{}, err
	}
	return p.Estimate(r)
}
