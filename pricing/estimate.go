package pricing

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

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

// Tokens the prompt rule adds for tools; see Request.PromptTokens.
const (
	// ToolUseTokens is added once to a request that defines tools: the
	// system prompt providers add to explain tool use (a few hundred
	// tokens at Anthropic) is not in the request body.
	ToolUseTokens = 1024
	// TokensPerTool is added for each tool whose definition the provider
	// supplies rather than the request (a tool without a schema, such as
	// Anthropic's bash or computer tools, OpenAI's web search, Gemini's
	// Google Search), and for each MCP server, whose tool list the
	// provider fetches.
	TokensPerTool = 1024
)

// Request is what pricing needs from an LLM API request body: the model, and
// the numbers that bound the call's cost. ParseRequest reads it from OpenAI
// (chat completions, completions, responses, embeddings) and Anthropic
// (messages) bodies, ParseGeminiRequest from Google Gemini's
// generateContent bodies.
type Request struct {
	// Model is the body's "model" (for Gemini, the model named in the
	// URL).
	Model string
	// Stream is the body's "stream".
	Stream bool
	// PromptTokens is a count of the prompt that is never short, by a rule
	// that counts the text the model reads and not the JSON around it:
	//
	//   - every string value counts the bytes of its UTF-8 text, decoded
	//     (an escape such as \u00e9 counts the 2 bytes of é, an invalid
	//     byte the 3 bytes of the U+FFFD replacing it); object keys and
	//     JSON syntax count nothing;
	//   - every number counts 1 (a token ID in a token-array prompt);
	//   - every object counts 4 (the framing of a message or a part) and
	//     the reply's priming 3;
	//   - structured data the model reads as JSON counts one token per
	//     byte of its JSON, keys and syntax included: the top-level
	//     "tools", "functions", "response_format", "text", "tool_choice",
	//     "toolConfig" and Gemini's response schemas, and at any depth an
	//     object under "input", "args", "arguments", "response", "action",
	//     "parameters" or a schema key (a tool call's input, a function
	//     response);
	//   - a request with tools adds ToolUseTokens once, each tool 32 more
	//     or, when the provider supplies its definition, TokensPerTool;
	//   - settings that are not prompt (model, temperature, metadata,
	//     stop sequences, stream options, output limits, ...) count nothing;
	//   - images are counted apart, in Images; audio, video, files and
	//     documents cannot be bounded and make ParseRequest fail with
	//     ErrUnpricedInput.
	//
	// Why it never counts short for text: every token of the byte-level
	// tokenizers OpenAI, Anthropic and Google use stands for at least one
	// byte of UTF-8 text, so a text of n bytes is at most n tokens; the few
	// framing tokens per message (OpenAI documents 3, plus 3 for the reply)
	// are covered by the 4 per object; and a provider renders tool
	// definitions and tool inputs more tersely than their JSON.
	//
	// Not counted: content the body only refers to — previous_response_id,
	// a conversation or cached content, a stored prompt's template, files
	// by ID — and what built-in tools add while the call runs (search
	// results, file search chunks). A call with such content can cost more
	// than its estimate; the budget then records the actual cost in full.
	PromptTokens int64
	// Images is the number of image inputs (OpenAI image_url and
	// input_image parts, Anthropic image blocks, Gemini inline or file
	// data with an image/* MIME type). Price.Estimate prices each at
	// Price.ImageTokens; their bytes are not in PromptTokens.
	Images int64
	// MaxOutputTokens is the largest of max_tokens, max_completion_tokens
	// and max_output_tokens (Gemini: generationConfig.maxOutputTokens);
	// zero when the body sets none.
	MaxOutputTokens int64
	// ThinkingTokens is the thinking budget the request sets: Anthropic's
	// thinking.budget_tokens (part of max_tokens) or Gemini's
	// thinkingConfig.thinkingBudget when positive (which Google documents
	// as apart from maxOutputTokens, so Estimate adds it to the output).
	ThinkingTokens int64
	// Choices is the larger of "n" and "best_of" (Gemini:
	// generationConfig.candidateCount), at least 1: how many completions
	// the call generates and pays for.
	Choices int64

	// thinkingApart is true when ThinkingTokens is on top of
	// MaxOutputTokens (Gemini).
	thinkingApart bool
}

// ErrUnpricedInput: the request carries input whose tokens cannot be
// bounded before the call: audio, video, a file or document, or an image
// for a model whose price has no ImageTokens.
var ErrUnpricedInput = errors.New("pricing: input that cannot be priced")

// ParseRequest reads a Request from a JSON request body in one pass over
// its bytes. Keys match exactly (encoding/json alone would also accept
// "MODEL"), escaped keys are decoded, and of duplicate keys the last wins,
// as with the providers' own parsers. A body that is not a JSON object,
// lacks a model, or has an output limit that is not a non-negative integer
// returns an error wrapping ErrInvalidRequest; one with audio, video,
// files or documents an error wrapping ErrUnpricedInput.
func ParseRequest(body []byte) (Request, error) {
	return parseRequest(body, "", false)
}

// ParseGeminiRequest reads a Request from the body of a Google Gemini
// generateContent or streamGenerateContent call, whose model is named in
// the URL, not the body. Both the camelCase and snake_case spellings of
// generationConfig are read.
func ParseGeminiRequest(model string, body []byte) (Request, error) {
	if model == "" {
		return Request{}, fmt.Errorf(`%w: no model`, ErrInvalidRequest)
	}
	return parseRequest(body, model, true)
}

func parseRequest(body []byte, model string, gemini bool) (Request, error) {
	s := scanner{b: body}
	if s.peek() != '{' {
		return Request{}, fmt.Errorf("%w: body is not a JSON object", ErrInvalidRequest)
	}
	s.i++
	r := Request{Model: model, thinkingApart: gemini}
	prompt := int64(tokensReply)
	tools := int64(0)
	// Output limits and choices by key: of duplicates the last wins.
	var limits [4]int64 // max_tokens, max_completion_tokens, max_output_tokens, Gemini's
	var choices [3]int64
	var bad error
	count := func(key string, dst *int64) {
		n, err := s.count(key)
		if err != nil && bad == nil {
			bad = err
		}
		*dst = n
	}
	if s.peek() == '}' {
		s.i++
	} else {
		for s.err == nil && bad == nil {
			if s.peek() != '"' {
				s.fail("expected a key")
				break
			}
			raw, _ := s.str()
			kb := keyBytes(raw)
			if s.peek() != ':' {
				s.fail("expected :")
				break
			}
			s.i++
			switch key := internKey(kb); key {
			case "model":
				if gemini {
					s.skip(1)
					break
				}
				switch s.peek() {
				case '"':
					raw, _ := s.str()
					r.Model = decodeString(raw)
				case 'n':
					s.literal("null")
				default:
					bad = fmt.Errorf("%w: %q is not a string", ErrInvalidRequest, key)
				}
			case "stream":
				switch s.peek() {
				case 't':
					s.literal("true")
					r.Stream = true
				case 'f':
					s.literal("false")
					r.Stream = false
				case 'n':
					s.literal("null")
				default:
					bad = fmt.Errorf("%w: %q is not a boolean", ErrInvalidRequest, key)
				}
			case "max_tokens":
				count(key, &limits[0])
			case "max_completion_tokens":
				count(key, &limits[1])
			case "max_output_tokens":
				count(key, &limits[2])
			case "n":
				count(key, &choices[0])
			case "best_of":
				count(key, &choices[1])
			case "tools", "mcp_servers":
				n, k, err := s.tools(key)
				if err != nil && bad == nil {
					bad = err
				}
				prompt += n
				if key == "tools" {
					tools += k
				}
			case "generationConfig", "generation_config":
				n, err := s.generationConfig(&limits[3], &choices[2], &r.ThinkingTokens)
				if err != nil && bad == nil {
					bad = err
				}
				prompt += n
			case "thinking":
				if err := s.thinking(&r.ThinkingTokens); err != nil && bad == nil {
					bad = err
				}
			default:
				switch {
				case skipKeys[key]:
					s.skip(1)
				case rawKeys[key]:
					start := s.i
					s.skip(1)
					prompt += int64(s.i - start)
				default:
					prompt += s.walk(1, true)
				}
			}
			if bad != nil {
				break
			}
			switch s.peek() {
			case ',':
				s.i++
				continue
			case '}':
				s.i++
			default:
				s.fail("expected , or }")
			}
			break
		}
	}
	if bad != nil {
		return Request{}, bad
	}
	if s.err == nil {
		if s.peek() != 0 {
			s.fail("data after the JSON object")
		}
	}
	if s.err != nil {
		return Request{}, fmt.Errorf("%w: body is not JSON: %v", ErrInvalidRequest, s.err)
	}
	if r.Model == "" {
		return Request{}, fmt.Errorf(`%w: no "model"`, ErrInvalidRequest)
	}
	if s.unpriced != "" {
		return Request{}, fmt.Errorf("%w: the request has %s input, whose tokens cannot be bounded before the call", ErrUnpricedInput, s.unpriced)
	}
	if tools > 0 {
		prompt += ToolUseTokens
	}
	r.PromptTokens = prompt
	r.Images = s.images
	r.MaxOutputTokens = max(limits[0], limits[1], limits[2], limits[3])
	r.Choices = max(1, choices[0], choices[1], choices[2])
	return r, nil
}

// count reads a token count: a non-negative integer up to MaxTokens, or
// null (0).
func (s *scanner) count(key string) (int64, error) {
	if s.peek() == 'n' {
		s.literal("null")
		return 0, nil
	}
	c := s.peek()
	if c != '-' && (c < '0' || c > '9') {
		s.skip(1)
		return 0, fmt.Errorf("%w: %q is not a number", ErrInvalidRequest, key)
	}
	num := s.number()
	if num == nil {
		return 0, nil // s.err is set
	}
	n, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil || n < 0 || n > MaxTokens {
		return 0, fmt.Errorf("%w: %q is %s", ErrInvalidRequest, key, num)
	}
	return n, nil
}

// tools reads a "tools" (or "mcp_servers") array and returns the tokens
// it counts and the number of entries.
func (s *scanner) tools(key string) (tokens, entries int64, err error) {
	switch s.peek() {
	case 'n':
		s.literal("null")
		return 0, 0, nil
	case '[':
	default:
		s.skip(1)
		return 0, 0, fmt.Errorf("%w: %q is not an array", ErrInvalidRequest, key)
	}
	s.i++
	if s.peek() == ']' {
		s.i++
		return 0, 0, nil
	}
	for s.err == nil {
		start := s.i
		s.skip(2)
		def := s.b[start:s.i]
		tokens += int64(len(def))
		entries++
		if key == "mcp_servers" || !hasSchema(def) {
			tokens += TokensPerTool
		} else {
			tokens += tokensPerSchema
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return tokens, entries, nil
		default:
			s.fail("expected , or ]")
		}
	}
	return tokens, entries, nil
}

// hasSchema reports whether a tool definition carries its own schema
// (a function or custom tool) rather than naming a provider's tool.
func hasSchema(def []byte) bool {
	for _, k := range [...]string{`"function"`, `"parameters"`, `"input_schema"`, `"functionDeclarations"`, `"function_declarations"`, `"custom"`} {
		if bytes.Contains(def, []byte(k)) {
			return true
		}
	}
	return false
}

// generationConfig reads Gemini's generationConfig: the output limit, the
// candidate count, the thinking budget, and response schemas (counted as
// prompt).
func (s *scanner) generationConfig(limit, choices, thinking *int64) (tokens int64, err error) {
	return s.fields(func(key string) (int64, error) {
		switch key {
		case "maxOutputTokens", "max_output_tokens":
			n, err := s.count(key)
			*limit = n
			return 0, err
		case "candidateCount", "candidate_count":
			n, err := s.count(key)
			*choices = n
			return 0, err
		case "thinkingConfig", "thinking_config":
			return 0, s.budget(thinking, "thinkingBudget", "thinking_budget")
		case "responseSchema", "response_schema", "responseJsonSchema", "response_json_schema":
			start := s.i
			s.skip(2)
			return int64(s.i - start), nil
		}
		s.skip(2)
		return 0, nil
	})
}

// thinking reads Anthropic's thinking object.
func (s *scanner) thinking(dst *int64) error {
	return s.budget(dst, "budget_tokens", "budget_tokens")
}

// budget reads an object holding a thinking budget under one of two keys;
// a negative budget (Gemini's -1, "dynamic") reads as 0.
func (s *scanner) budget(dst *int64, k1, k2 string) error {
	_, err := s.fields(func(key string) (int64, error) {
		if key != k1 && key != k2 {
			s.skip(3)
			return 0, nil
		}
		if s.peek() == '-' {
			if num := s.number(); num != nil {
				*dst = 0
			}
			return 0, nil
		}
		n, err := s.count(key)
		*dst = n
		return 0, err
	})
	return err
}

// fields reads an object (or null), calling f at each value.
func (s *scanner) fields(f func(key string) (int64, error)) (int64, error) {
	switch s.peek() {
	case 'n':
		s.literal("null")
		return 0, nil
	case '{':
	default:
		s.skip(2)
		return 0, fmt.Errorf("%w: expected an object", ErrInvalidRequest)
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return 0, nil
	}
	var total int64
	var first error
	for s.err == nil {
		if s.peek() != '"' {
			s.fail("expected a key")
			break
		}
		raw, _ := s.str()
		key := decodeString(raw)
		if s.peek() != ':' {
			s.fail("expected :")
			break
		}
		s.i++
		n, err := f(key)
		total += n
		if err != nil && first == nil {
			first = err
		}
		switch s.peek() {
		case ',':
			s.i++
			continue
		case '}':
			s.i++
		default:
			s.fail("expected , or }")
		}
		break
	}
	return total, first
}

// Quote is the most a call can cost, with the token counts it assumes.
type Quote struct {
	// PromptTokens is Request.PromptTokens plus Request.Images times
	// Price.ImageTokens.
	PromptTokens int64
	// OutputTokens is the output limit (the request's, else the model's),
	// plus a thinking budget set apart from it, times Request.Choices;
	// zero for a model whose output is free.
	OutputTokens int64
	// Cost is PromptTokens at the highest of the input and cache prices
	// plus OutputTokens at the output price, rounded up to 9 places.
	Cost decimal.Decimal
}

// Estimate returns the most request r can cost at price p: what a
// budget.Reservation should hold before the call. See Request.PromptTokens
// for the prompt rule; images add Price.ImageTokens each (a request with
// images for a model without ImageTokens returns ErrUnpricedInput); the
// output is bounded by r.MaxOutputTokens, or p.MaxOutputTokens when the
// request sets none, times r.Choices. With neither limit, a model with a
// non-zero output price returns ErrNoOutputLimit.
func (p Price) Estimate(r Request) (Quote, error) {
	prompt, err := p.promptTokens(r)
	if err != nil {
		return Quote{}, err
	}
	q := Quote{PromptTokens: prompt}
	if !p.Output.IsZero() {
		limit := r.MaxOutputTokens
		if limit == 0 {
			limit = p.MaxOutputTokens
		}
		if limit == 0 {
			return Quote{}, fmt.Errorf("%w: set max_tokens in the request or max_output_tokens in the price list", ErrNoOutputLimit)
		}
		if r.thinkingApart {
			limit += r.ThinkingTokens
		}
		choices := max(r.Choices, 1)
		if limit > MaxTokens/choices {
			return Quote{}, fmt.Errorf("%w: %d choices of %d tokens", ErrInvalidRequest, choices, limit)
		}
		q.OutputTokens = limit * choices
	}
	q.Cost = p.MaxCost(q.PromptTokens, q.OutputTokens)
	return q, nil
}

// MaxCost returns what prompt prompt tokens and output output tokens can
// cost at most: the prompt at the highest of the input and cache prices,
// the output at the output price, rounded up to 9 places. It is how
// Estimate prices a Quote's counts, for callers that bound a call by
// other counts (the gate, for a stream cut short).
func (p Price) MaxCost(prompt, output int64) decimal.Decimal {
	terms := [4]costTerm{{"prompt", prompt, p.inputPrice()}, {"output", output, p.Output}}
	if d, ok := costFast(&terms); ok {
		return d
	}
	return p.inputPrice().Mul(decimal.NewFromInt(prompt)).
		Add(p.Output.Mul(decimal.NewFromInt(output))).
		RoundCeil(budget.Places)
}

// inputPrice is the highest price a prompt token can have.
func (p Price) inputPrice() decimal.Decimal {
	return decimal.Max(p.Input, p.cacheRead(), p.cacheWrite())
}

// promptTokens is r's prompt with its images.
func (p Price) promptTokens(r Request) (int64, error) {
	prompt := r.PromptTokens
	if r.Images > 0 {
		if p.ImageTokens == 0 {
			return 0, fmt.Errorf("%w: the request has images and the model's price gives no ImageTokens (image_tokens in a price list)", ErrUnpricedInput)
		}
		if r.Images > MaxTokens/p.ImageTokens {
			return 0, fmt.Errorf("%w: %d images", ErrInvalidRequest, r.Images)
		}
		prompt += r.Images * p.ImageTokens
	}
	if prompt < 0 || prompt > MaxTokens {
		return 0, fmt.Errorf("%w: %d prompt tokens", ErrInvalidRequest, prompt)
	}
	return prompt, nil
}

// Fit returns the largest output limit per choice, never above the
// request's own (or, without one, the model's), at which Estimate(r) costs
// at most available; 0 when not even one output token fits. Use it to
// lower a request's max_tokens to what a budget can still pay. A model
// whose output is free returns the request's limit unchanged when the
// prompt fits, else 0.
func (p Price) Fit(r Request, available decimal.Decimal) (int64, error) {
	prompt, err := p.promptTokens(r)
	if err != nil {
		return 0, err
	}
	limit := r.MaxOutputTokens
	if limit == 0 {
		limit = p.MaxOutputTokens
	}
	rest := available.Sub(p.inputPrice().Mul(decimal.NewFromInt(prompt)))
	if rest.Sign() < 0 {
		return 0, nil
	}
	if p.Output.IsZero() {
		return limit, nil
	}
	choices := max(r.Choices, 1)
	if r.thinkingApart {
		rest = rest.Sub(p.Output.Mul(decimal.NewFromInt(r.ThinkingTokens * choices)))
		if rest.Sign() < 0 {
			return 0, nil
		}
	}
	n := rest.Div(p.Output.Mul(decimal.NewFromInt(choices))).Floor()
	if limit == 0 || n.LessThan(decimal.NewFromInt(limit)) {
		if n.GreaterThan(decimal.NewFromInt(MaxTokens)) {
			n = decimal.NewFromInt(MaxTokens)
		}
		limit = n.IntPart()
	}
	// Division is exact to 16 places; step down if rounding took a
	// token too many.
	for limit > 0 {
		r2 := r
		r2.MaxOutputTokens = limit
		q, err := p.Estimate(r2)
		if err == nil && q.Cost.LessThanOrEqual(available) {
			break
		}
		limit--
	}
	return limit, nil
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

// knownKeys maps the request keys the parser meets most to themselves, so
// that internKey returns them without allocating.
var knownKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"model", "stream", "max_tokens", "max_completion_tokens", "max_output_tokens",
		"n", "best_of", "tools", "mcp_servers", "generationConfig", "generation_config", "thinking",
		"messages", "input", "prompt", "contents", "system", "instructions", "systemInstruction", "system_instruction"} {
		m[k] = k
	}
	for k := range skipKeys {
		m[k] = k
	}
	for k := range rawKeys {
		m[k] = k
	}
	return m
}()

// internKey returns the key b as a string, allocating only for a key
// knownKeys lacks.
func internKey(b []byte) string {
	if k, ok := knownKeys[string(b)]; ok {
		return k
	}
	return string(b)
}
