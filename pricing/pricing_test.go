package pricing_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/pricing"
)

func loadSample(t *testing.T) *pricing.Table {
	t.Helper()
	f, err := os.Open("testdata/litellm_sample.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var tab pricing.Table
	if err := tab.LoadLiteLLM(f); err != nil {
		t.Fatal(err)
	}
	return &tab
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func TestLoadLiteLLM(t *testing.T) {
	tab := loadSample(t)
	// 8 per-token models; sample_spec, the image, audio and per-second
	// models and the chat model without an output price are skipped.
	if got := tab.Len(); got != 8 {
		t.Errorf("Len = %d, want 8", got)
	}
	for _, m := range []string{"sample_spec", "1024-x-1024/dall-e-2", "aiml/flux-pro", "tts-1", "whisper-1", "gpt-4-no-output-price"} {
		if _, err := tab.Lookup(m); !errors.Is(err, pricing.ErrUnknownModel) {
			t.Errorf("Lookup(%q) = %v, want ErrUnknownModel", m, err)
		}
	}
	tests := []struct {
		model                              string
		input, output, cacheRead, cacheWrt string
		maxOut                             int64
		provider, mode                     string
	}{
		{"gpt-4o", "0.0000025", "0.00001", "0.00000125", "0", 16384, "openai", "chat"},
		{"amazon.nova-2-pro-preview-20251202-v1:0", "0.0000021875", "0.0000175", "0.000000546875", "0", 64000, "bedrock_converse", "chat"},
		{"claude-sonnet-4-5", "0.000003", "0.000015", "0.0000003", "0.00000375", 64000, "anthropic", "chat"},
		{"gpt-3.5-turbo-instruct", "0.0000015", "0.000002", "0", "0", 4096, "text-completion-openai", "completion"}, // max_tokens fallback
		{"text-embedding-3-small", "0.00000002", "0", "0", "0", 8191, "openai", "embedding"},
		{"text-embedding-ada-002", "0.0000001", "0", "0", "0", 8191, "openai", "embedding"},
		{"local-model-no-limits", "0.0000001", "0.0000002", "0", "0", 0, "openai", "chat"},
	}
	for _, tt := range tests {
		p, err := tab.Lookup(tt.model)
		if err != nil {
			t.Errorf("Lookup(%q): %v", tt.model, err)
			continue
		}
		for _, f := range []struct {
			name string
			got  decimal.Decimal
			want string
		}{{"Input", p.Input, tt.input}, {"Output", p.Output, tt.output}, {"CacheRead", p.CacheRead, tt.cacheRead}, {"CacheWrite", p.CacheWrite, tt.cacheWrt}} {
			if !f.got.Equal(dec(f.want)) {
				t.Errorf("%s %s = %s, want %s", tt.model, f.name, f.got, f.want)
			}
		}
		if p.MaxOutputTokens != tt.maxOut || p.Provider != tt.provider || p.Mode != tt.mode {
			t.Errorf("%s = max %d, %q, %q; want %d, %q, %q", tt.model, p.MaxOutputTokens, p.Provider, p.Mode, tt.maxOut, tt.provider, tt.mode)
		}
	}
}

func TestCost(t *testing.T) {
	tab := loadSample(t)
	tests := []struct {
		model string
		u     pricing.Usage
		want  string
	}{
		// 1000 × 2.5e-6 + 500 × 1.25e-6 + 200 × 1e-5
		{"gpt-4o", pricing.Usage{InputTokens: 1000, CacheReadTokens: 500, OutputTokens: 200}, "0.005125"},
		// Anthropic: cache writes at their own price.
		{"claude-sonnet-4-5", pricing.Usage{InputTokens: 10, CacheReadTokens: 100, CacheWriteTokens: 1000, OutputTokens: 50}, "0.00456"},
		// Full precision until the end: 8 × 0.0000021875 = 0.0000175
		// exactly; rounding the price to 9 places first would give
		// 0.000017504.
		{"amazon.nova-2-pro-preview-20251202-v1:0", pricing.Usage{InputTokens: 8}, "0.0000175"},
		// One token at 0.0000021875 rounds up to 0.000002188.
		{"amazon.nova-2-pro-preview-20251202-v1:0", pricing.Usage{InputTokens: 1}, "0.000002188"},
		// 0.000000546875 rounds up to 0.000000547.
		{"amazon.nova-2-pro-preview-20251202-v1:0", pricing.Usage{CacheReadTokens: 1}, "0.000000547"},
		// No cache prices: cached tokens cost the input price.
		{"gpt-3.5-turbo-instruct", pricing.Usage{CacheReadTokens: 1000, CacheWriteTokens: 1000}, "0.003"},
		{"text-embedding-3-small", pricing.Usage{InputTokens: 3}, "0.00000006"},
		{"gpt-4o", pricing.Usage{}, "0"},
	}
	for _, tt := range tests {
		got, err := tab.Cost(tt.model, tt.u)
		if err != nil {
			t.Errorf("Cost(%s, %+v): %v", tt.model, tt.u, err)
			continue
		}
		if !got.Equal(dec(tt.want)) {
			t.Errorf("Cost(%s, %+v) = %s, want %s", tt.model, tt.u, got, tt.want)
		}
		if got.Exponent() < -budget.Places {
			t.Errorf("Cost(%s) = %s has more than 9 places", tt.model, got)
		}
	}
}

func TestCostErrors(t *testing.T) {
	tab := loadSample(t)
	c, err := tab.Cost("gpt-5-unknown", pricing.Usage{InputTokens: 10})
	if !errors.Is(err, pricing.ErrUnknownModel) || !c.IsZero() {
		t.Errorf("unknown model: Cost = %s, %v; want ErrUnknownModel", c, err)
	}
	if !strings.Contains(err.Error(), `"gpt-5-unknown"`) {
		t.Errorf("error %q does not name the model", err)
	}
	for _, u := range []pricing.Usage{{InputTokens: -1}, {OutputTokens: pricing.MaxTokens + 1}, {CacheReadTokens: -5}} {
		if _, err := tab.Cost("gpt-4o", u); !errors.Is(err, pricing.ErrInvalidUsage) {
			t.Errorf("Cost(%+v) = %v, want ErrInvalidUsage", u, err)
		}
	}
	var empty pricing.Table
	if _, err := empty.Cost("gpt-4o", pricing.Usage{}); !errors.Is(err, pricing.ErrUnknownModel) {
		t.Errorf("zero Table: %v, want ErrUnknownModel", err)
	}
}

func TestLoadOverrides(t *testing.T) {
	tab := loadSample(t)
	f, err := os.Open("testdata/prices.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := tab.Load(f); err != nil {
		t.Fatal(err)
	}
	if got := tab.Len(); got != 9 { // gpt-4o replaced, my-local-llama added
		t.Errorf("Len = %d, want 9", got)
	}
	p, _ := tab.Lookup("gpt-4o")
	want := pricing.Price{Input: dec("0.000002"), Output: dec("0.000008"), CacheRead: dec("0.0000005"), MaxOutputTokens: 32768, Provider: "openai", Mode: "chat"}
	if !p.Input.Equal(want.Input) || !p.Output.Equal(want.Output) || !p.CacheRead.Equal(want.CacheRead) || !p.CacheWrite.IsZero() ||
		p.MaxOutputTokens != want.MaxOutputTokens || p.Provider != want.Provider || p.Mode != want.Mode {
		t.Errorf("gpt-4o after override = %+v, want %+v", p, want)
	}
	// A free model is priced at zero, explicitly: not unknown.
	c, err := tab.Cost("my-local-llama", pricing.Usage{InputTokens: 100, OutputTokens: 100})
	if err != nil || !c.IsZero() {
		t.Errorf("free model: %s, %v", c, err)
	}
	// Set overrides too.
	if err := tab.Set("gpt-4o", pricing.Price{Input: dec("1e-6"), Output: dec("2e-6")}); err != nil {
		t.Fatal(err)
	}
	if c, _ := tab.Cost("gpt-4o", pricing.Usage{InputTokens: 1, OutputTokens: 1}); !c.Equal(dec("0.000003")) {
		t.Errorf("after Set: %s", c)
	}
	if err := tab.Set("x", pricing.Price{Input: dec("-1")}); !errors.Is(err, pricing.ErrInvalidPrices) {
		t.Errorf("Set negative: %v", err)
	}
	if err := tab.Set("", pricing.Price{}); !errors.Is(err, pricing.ErrInvalidPrices) {
		t.Errorf("Set empty name: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	liteLLM := []struct{ name, in, want string }{
		{"not JSON", `{"gpt-4o": `, "unexpected EOF"},
		{"array", `[1, 2]`, "cannot unmarshal array"},
		{"null", `null`, "not a JSON object"},
		{"trailing data", `{} {}`, "data after the JSON document"},
		{"entry not an object", `{"gpt-4o": 3}`, `model "gpt-4o": the entry is not a JSON object`},
		{"string cost", `{"m": {"input_cost_per_token": "0.1", "output_cost_per_token": 1}}`, `model "m": input_cost_per_token: "0.1" is a string, not a number`},
		{"negative cost", `{"m": {"input_cost_per_token": -1e-6, "output_cost_per_token": 1}}`, `model "m": input_cost_per_token: -1e-6 is negative`},
		{"huge exponent", `{"m": {"input_cost_per_token": 1e400, "output_cost_per_token": 1}}`, `model "m": input_cost_per_token: "1e400" is not a decimal number`},
		{"bad max_output_tokens", `{"m": {"input_cost_per_token": 1, "output_cost_per_token": 1, "max_output_tokens": 1.5}}`, `model "m": max_output_tokens: 1.5 is not a token count`},
		{"bad provider", `{"m": {"input_cost_per_token": 1, "output_cost_per_token": 1, "litellm_provider": 7}}`, `litellm_provider is not a string`},
	}
	for _, tt := range liteLLM {
		tab := loadSample(t)
		before := tab.Len()
		err := tab.LoadLiteLLM(strings.NewReader(tt.in))
		if !errors.Is(err, pricing.ErrInvalidPrices) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("LoadLiteLLM %s: %v, want ErrInvalidPrices containing %q", tt.name, err, tt.want)
		}
		if tab.Len() != before {
			t.Errorf("LoadLiteLLM %s: a failed load changed the table", tt.name)
		}
	}
	native := []struct{ name, in, want string }{
		{"no models", `{}`, `no "models" object`},
		{"unknown field", `{"models": {"m": {"input_per_million": 1, "output_per_million": 1, "ouput": 2}}}`, `unknown field "ouput" (for LiteLLM's format, use LoadLiteLLM)`},
		{"LiteLLM file", `{"gpt-4o": {"input_cost_per_token": 1}}`, `unknown field "gpt-4o"`},
		{"missing output", `{"models": {"m": {"input_per_million": 1}}}`, `model "m": output_per_million is required`},
		{"bad number", `{"models": {"m": {"input_per_million": "1,5", "output_per_million": 1}}}`, `"1,5" is not a decimal number`},
		{"negative", `{"models": {"m": {"input_per_million": "-1", "output_per_million": 1}}}`, `-1 is negative`},
		{"empty name", `{"models": {"": {"input_per_million": 1, "output_per_million": 1}}}`, `empty model name`},
		{"bad max", `{"models": {"m": {"input_per_million": 1, "output_per_million": 1, "max_output_tokens": -3}}}`, `max_output_tokens: -3 is negative`},
	}
	for _, tt := range native {
		var tab pricing.Table
		err := tab.Load(strings.NewReader(tt.in))
		if !errors.Is(err, pricing.ErrInvalidPrices) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Load %s: %v, want ErrInvalidPrices containing %q", tt.name, err, tt.want)
		}
		if tab.Len() != 0 {
			t.Errorf("Load %s: a failed load changed the table", tt.name)
		}
	}
}

func TestParseRequest(t *testing.T) {
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"héllo"}],"max_tokens":100,"max_completion_tokens":150,"n":2,"stream":true,` +
		`"tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"g"}}]}`
	r, err := pricing.ParseRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	// "user" 4 + "héllo" 6 + one object 4 + the reply 3; each tool its 43
	// bytes + 32, and the tool-use prompt once.
	want := pricing.Request{Model: "gpt-4o", Stream: true, PromptTokens: 17 + 2*(43+32) + pricing.ToolUseTokens, MaxOutputTokens: 150, Choices: 2}
	if r != want {
		t.Errorf("ParseRequest = %+v, want %+v", r, want)
	}
	// Keys match exactly: "MODEL" is not "model" (encoding/json alone
	// would take the last of the two, "cheap"); escaped keys are decoded.
	r, err = pricing.ParseRequest([]byte(`{"model":"gpt-4o","MODEL":"cheap","Max_Tokens":1,"max_output_tokens":7,"best_of":3,"n":null}`))
	if err != nil || r.Model != "gpt-4o" || r.MaxOutputTokens != 7 || r.Choices != 3 {
		t.Errorf("exact keys: %+v, %v", r, err)
	}
	r, err = pricing.ParseRequest([]byte(`{"model":"cheap","mod\u0065l":"gpt-4o","max_tok\u0065ns":9}`))
	if err != nil || r.Model != "gpt-4o" || r.MaxOutputTokens != 9 {
		t.Errorf("escaped keys: %+v, %v", r, err)
	}
	for _, bad := range []string{``, `[]`, `null`, `{}`, `{"model":""}`, `{"model":7}`, `{"model":"m","max_tokens":1.5}`,
		`{"model":"m","max_tokens":-1}`, `{"model":"m","n":"2"}`, `{"model":"m","stream":"yes"}`, `{"model":"m","tools":{}}`, `{"model":"m"} x`,
		`{"model":"m",}`, `{"model":"m" "x":1}`, `{"model":"m","x":[1,]}`, `{"model":"m","x":"\q"}`, `{"model":"m","x":01}`, "{\"model\":\"m\",\"x\":\"a\x01\"}",
		`{"model":"m","x":tru}`, `{"model":"m","x":"unterminated}`, `{"model":"m","generationConfig":[]}`} {
		if _, err := pricing.ParseRequest([]byte(bad)); !errors.Is(err, pricing.ErrInvalidRequest) {
			t.Errorf("ParseRequest(%s) = %v, want ErrInvalidRequest", bad, err)
		}
	}
	for _, body := range []string{
		`{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBE"}}]}]}`,
		`{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_data":"data:application/pdf;base64,JVBE"}]}]}`,
	} {
		if _, err := pricing.ParseRequest([]byte(body)); !errors.Is(err, pricing.ErrUnpricedInput) {
			t.Errorf("ParseRequest(%.60s) = %v, want ErrUnpricedInput", body, err)
		}
	}
	if _, err := pricing.ParseGeminiRequest("gemini-2.5-flash", []byte(`{"contents":[{"parts":[{"fileData":{"mimeType":"video/mp4","fileUri":"https://youtu.be/x"}}]}]}`)); !errors.Is(err, pricing.ErrUnpricedInput) {
		t.Errorf("Gemini video: %v, want ErrUnpricedInput", err)
	}
}

func TestParseGeminiRequest(t *testing.T) {
	body := `{"contents":[{"role":"user","parts":[{"text":"Hi there"},{"inline_data":{"mime_type":"image/png","data":"iVBORw0KGgo="}}]}],` +
		`"systemInstruction":{"parts":[{"text":"Be brief"}]},"generationConfig":{"maxOutputTokens":200,"candidateCount":2,"temperature":0.5,` +
		`"thinkingConfig":{"thinkingBudget":1024},"responseSchema":{"type":"STRING"}}}`
	r, err := pricing.ParseGeminiRequest("gemini-2.5-flash", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	// "user" 4 + "Hi there" 8 + 3 objects (content, text part, the part
	// holding the image) 12; the image apart; "Be brief" 8 + 2 objects 8;
	// the schema's 17 bytes; the reply 3.
	if r.Model != "gemini-2.5-flash" || r.PromptTokens != 4+8+12+8+8+17+3 || r.Images != 1 || r.MaxOutputTokens != 200 || r.Choices != 2 || r.ThinkingTokens != 1024 {
		t.Errorf("ParseGeminiRequest = %+v", r)
	}
	p := pricing.Price{Input: dec("0.0000003"), Output: dec("0.0000025"), ImageTokens: 258}
	q, err := p.Estimate(r)
	if err != nil {
		t.Fatal(err)
	}
	// The thinking budget is on top of maxOutputTokens, for each candidate.
	if q.PromptTokens != 60+258 || q.OutputTokens != 2*(200+1024) {
		t.Errorf("Estimate = %+v", q)
	}
	r, _ = pricing.ParseGeminiRequest("g", []byte(`{"generation_config":{"max_output_tokens":5,"thinking_config":{"thinking_budget":-1}}}`))
	if r.MaxOutputTokens != 5 || r.ThinkingTokens != 0 {
		t.Errorf("snake case, dynamic thinking: %+v", r)
	}
}

func TestEstimate(t *testing.T) {
	tab := loadSample(t)
	chat := `{"model":"gpt-4o","messages":[{"role":"user","content":"Say hi"}],"max_tokens":50}`
	noMax := `{"model":"gpt-4o","messages":[{"role":"user","content":"Say hi"}]}`
	tests := []struct {
		name, model, body string
		prompt, out       int64
		cost              string
	}{
		// "user" + "Say hi" + one message + the reply: 17 tokens at the
		// input price, 50 at the output price.
		{"max_tokens", "gpt-4o", chat, 17, 50, "0.0005425"},
		// No max_tokens: the model's maximum output, 16384.
		{"model max", "gpt-4o", noMax, 17, 16384, "0.1638825"},
		// Anthropic prices the prompt at the cache-write price, its highest.
		{"highest input price", "claude-sonnet-4-5", chat, 17, 50, "0.00081375"},
		// Embeddings: output is free, so no output limit is needed.
		{"embedding", "text-embedding-3-small", `{"model":"text-embedding-3-small","input":"abc"}`, 6, 0, "0.00000012"},
		// n=3 pays for three completions.
		{"choices", "gpt-4o", `{"model":"gpt-4o","prompt":"x","max_tokens":10,"n":3}`, 4, 30, "0.00031"},
		// 28 × 0.0000021875 + 0.0000175 = 0.00007875 exactly: the
		// 10-place price is not rounded before it is multiplied.
		{"full precision", "amazon.nova-2-pro-preview-20251202-v1:0", `{"model":"x","max_tokens":1,"prompt":"abcdefghijklmnopqrstuvwxy"}`, 28, 1, "0.00007875"},
		// 29 × 0.0000021875 + 0.0000175 = 0.0000809375, rounded up.
		{"round up", "amazon.nova-2-pro-preview-20251202-v1:0", `{"model":"x","max_tokens":1,"prompt":"abcdefghijklmnopqrstuvwxyz"}`, 29, 1, "0.000080938"},
	}
	for _, tt := range tests {
		q, err := tab.Estimate(tt.model, []byte(tt.body))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if q.PromptTokens != tt.prompt || q.OutputTokens != tt.out || !q.Cost.Equal(dec(tt.cost)) {
			t.Errorf("%s: Estimate = %d + %d tokens, %s; want %d + %d, %s", tt.name, q.PromptTokens, q.OutputTokens, q.Cost, tt.prompt, tt.out, tt.cost)
		}
	}
	if _, err := tab.Estimate("local-model-no-limits", []byte(`{"model":"local-model-no-limits"}`)); !errors.Is(err, pricing.ErrNoOutputLimit) {
		t.Errorf("no limit anywhere: %v, want ErrNoOutputLimit", err)
	}
	if q, err := tab.Estimate("local-model-no-limits", []byte(`{"model":"local-model-no-limits","max_tokens":10}`)); err != nil || q.OutputTokens != 10 {
		t.Errorf("request limit: %+v, %v", q, err)
	}
	if _, err := tab.Estimate("nope", []byte(chat)); !errors.Is(err, pricing.ErrUnknownModel) {
		t.Errorf("unknown model: %v", err)
	}
	if _, err := tab.Estimate("gpt-4o", []byte(`{"model":"gpt-4o","max_tokens":1099511627776,"n":2}`)); !errors.Is(err, pricing.ErrInvalidRequest) {
		t.Errorf("overflowing output: %v", err)
	}
	// Images are refused without ImageTokens, priced with them.
	img := `{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"What is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,` + strings.Repeat("A", 4000) + `"}}]}]}`
	if _, err := tab.Estimate("gpt-4o", []byte(img)); !errors.Is(err, pricing.ErrUnpricedInput) {
		t.Errorf("image without ImageTokens: %v, want ErrUnpricedInput", err)
	}
	p, _ := tab.Lookup("gpt-4o")
	p.ImageTokens = 1445
	r, _ := pricing.ParseRequest([]byte(img))
	// "user" 4, "text" 4 + "What is this?" 13 + 4 for the text part, the
	// message 4, the reply 3: 32; the 4,000 bytes of base64 count as one
	// image.
	if q, err := p.Estimate(r); err != nil || q.PromptTokens != 32+1445 {
		t.Errorf("image with ImageTokens: %+v, %v", q, err)
	}
}

func TestFit(t *testing.T) {
	tab := loadSample(t)
	p, _ := tab.Lookup("gpt-4o")
	r, _ := pricing.ParseRequest([]byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"Say hi"}]}`))
	// 17 prompt tokens cost $0.0000425; $0.001 pays 95 output tokens
	// ($0.00095) and not 96.
	for _, tt := range []struct {
		available string
		want      int64
	}{{"0.001", 95}, {"0.0000425", 0}, {"0.00005", 0}, {"0.0000525", 1}, {"1000", 16384}, {"0", 0}} {
		n, err := p.Fit(r, dec(tt.available))
		if err != nil || n != tt.want {
			t.Errorf("Fit($%s) = %d, %v; want %d", tt.available, n, err, tt.want)
		}
		if n > 0 {
			r2 := r
			r2.MaxOutputTokens = n
			q, _ := p.Estimate(r2)
			if q.Cost.GreaterThan(dec(tt.available)) {
				t.Errorf("Fit($%s) = %d costs %s", tt.available, n, q.Cost)
			}
		}
	}
	// The request's own limit is never raised; choices share the rest.
	r.MaxOutputTokens, r.Choices = 10, 2
	if n, _ := p.Fit(r, dec("1")); n != 10 {
		t.Errorf("Fit above the request's limit = %d, want 10", n)
	}
	r.MaxOutputTokens = 0
	if n, _ := p.Fit(r, dec("0.001")); n != 47 {
		t.Errorf("Fit with 2 choices = %d, want 47", n)
	}
}

// TestEstimateNeverCountsShort checks the prompt rule against its claim on
// realistic bodies: the estimate is at least the UTF-8 size of every text
// the model reads, plus OpenAI's documented framing (3 tokens per message,
// 1 per name, 3 for the reply), plus, for tool definitions and tool
// inputs, the bytes of their JSON; images are priced at ImageTokens each.
func TestEstimateNeverCountsShort(t *testing.T) {
	texts := []string{"", "a", "hello world", "日本語のテキスト", "emoji 😀😀😀 and ZWJ 👩‍👩‍👧", strings.Repeat("\x00\x01 ", 100), `quotes " and \ backslashes`,
		"é😀 and a lone \xff byte", "Ελληνικά, العربية, עברית", strings.Repeat("x", 3000)}
	tool := `{"type":"function","function":{"name":"get_weather","description":"Weather in a city","parameters":{"type":"object","properties":{"city":{"type":"string","enum":["Paris","東京"]}},"required":["city"]}}}`
	for _, text := range texts {
		content, _ := json.Marshal(text)
		for n := 1; n <= 4; n++ {
			var msgs []string
			for i := 0; i < n; i++ {
				msgs = append(msgs, `{"role":"user","name":"bob","content":`+string(content)+`}`)
			}
			for _, extra := range []struct {
				json  string
				worst int
			}{
				{"", 0},
				// A tool definition: at most its JSON's bytes.
				{`,"tools":[` + tool + `]`, len(tool)},
				// A tool call: its name and arguments as text, a message's
				// framing.
				{`,"messages_more":[{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}]`,
					len("assistant") + len("get_weather") + len(`{"city":"Paris"}`) + 3},
			} {
				body := `{"model":"m","messages":[` + strings.Join(msgs, ",") + `]` + extra.json + `}`
				r, err := pricing.ParseRequest([]byte(body))
				if err != nil {
					t.Fatal(err)
				}
				worst := int64(n*(len(text)+len("user")+len("bob")+3+1) + 3 + extra.worst)
				if r.PromptTokens < worst {
					t.Errorf("%d × %.20q%.20s: estimate %d < worst case %d", n, text, extra.json, r.PromptTokens, worst)
				}
				if r.PromptTokens < textBound(t, []byte(body)) {
					t.Errorf("%d × %q: estimate %d < the text's bytes %d", n, text, r.PromptTokens, textBound(t, []byte(body)))
				}
			}
		}
	}
	// JSON escapes count the bytes they decode to: é is 2, 😀 (a
	// surrogate pair) 4, a lone surrogate 3 (U+FFFD).
	r, err := pricing.ParseRequest([]byte(`{"model":"m","prompt":"\u00e9\ud83d\ude00\ud800"}`))
	if err != nil || r.PromptTokens != 2+4+3+3 {
		t.Errorf("escapes: %+v, %v; want 12 tokens", r, err)
	}
	// Anthropic: a tool_use block's input object, as the model reads it.
	body := `{"model":"claude","max_tokens":10,"system":"Be brief","messages":[{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris","days":3}}]},` +
		`{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"Sunny, 24°C"}]}]}`
	r, err = pricing.ParseRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if worst := int64(len(`{"city":"Paris","days":3}`) + len("Sunny, 24°C") + len("Be brief") + len("get_weather") + 2*4 + 3); r.PromptTokens < worst {
		t.Errorf("tool use: %d < %d", r.PromptTokens, worst)
	}
}

// textBound is an independent count, through encoding/json, of the UTF-8
// bytes of every string value of body outside image parts and the
// settings ParseRequest skips: the least any estimate may be.
func textBound(t testing.TB, body []byte) int64 {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	skip := map[string]bool{"model": true, "user": true, "metadata": true, "service_tier": true, "stop": true, "stop_sequences": true,
		"safety_identifier": true, "prompt_cache_key": true, "prompt_cache_retention": true, "reasoning_effort": true, "verbosity": true,
		"modalities": true, "include": true, "truncation": true, "previous_response_id": true, "conversation": true, "cachedContent": true,
		"cached_content": true, "safetySettings": true, "safety_settings": true, "labels": true, "thinking": true, "stream_options": true,
		"logit_bias": true, "service": true, "generationConfig": true, "generation_config": true}
	var walk func(v any) int64
	walk = func(v any) int64 {
		switch v := v.(type) {
		case string:
			return int64(len(v))
		case []any:
			var n int64
			for _, e := range v {
				n += walk(e)
			}
			return n
		case map[string]any:
			if typ, _ := v["type"].(string); typ == "image_url" || typ == "input_image" || typ == "image" {
				return 0
			}
			for _, k := range []string{"mimeType", "mime_type"} {
				if m, ok := v[k].(string); ok && strings.HasPrefix(m, "image/") {
					return 0
				}
			}
			var n int64
			for _, e := range v {
				n += walk(e)
			}
			return n
		}
		return 0
	}
	top, ok := v.(map[string]any)
	if !ok {
		return 0
	}
	var n int64
	for k, e := range top {
		if !skip[k] {
			n += walk(e)
		}
	}
	return n
}

func TestConcurrentLoadAndLookup(t *testing.T) {
	tab := loadSample(t)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				_ = tab.Set(fmt.Sprintf("m%d-%d", i, j), pricing.Price{Input: dec("1e-6"), Output: dec("1e-6")})
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				if _, err := tab.Cost("gpt-4o", pricing.Usage{InputTokens: 1}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := tab.Len(); got != 8+200 {
		t.Errorf("Len = %d, want 208", got)
	}
}
