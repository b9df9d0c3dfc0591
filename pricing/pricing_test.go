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
	want := pricing.Request{Model: "gpt-4o", Stream: true, PromptTokens: int64(len(body)) + 2*pricing.TokensPerTool, MaxOutputTokens: 150, Choices: 2}
	if r != want {
		t.Errorf("ParseRequest = %+v, want %+v", r, want)
	}
	// Keys match exactly: "MODEL" is not "model" (encoding/json alone
	// would take the last of the two, "cheap").
	r, err = pricing.ParseRequest([]byte(`{"model":"gpt-4o","MODEL":"cheap","Max_Tokens":1,"max_output_tokens":7,"best_of":3,"n":null}`))
	if err != nil || r.Model != "gpt-4o" || r.MaxOutputTokens != 7 || r.Choices != 3 {
		t.Errorf("exact keys: %+v, %v", r, err)
	}
	for _, bad := range []string{``, `[]`, `null`, `{}`, `{"model":""}`, `{"model":7}`, `{"model":"m","max_tokens":1.5}`,
		`{"model":"m","max_tokens":-1}`, `{"model":"m","n":"2"}`, `{"model":"m","stream":"yes"}`, `{"model":"m","tools":{}}`, `{"model":"m"} x`} {
		if _, err := pricing.ParseRequest([]byte(bad)); !errors.Is(err, pricing.ErrInvalidRequest) {
			t.Errorf("ParseRequest(%s) = %v, want ErrInvalidRequest", bad, err)
		}
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
		// 82 bytes at the input price, 50 tokens at the output price.
		{"max_tokens", "gpt-4o", chat, 82, 50, "0.000705"},
		// No max_tokens: the model's maximum output, 16384.
		{"model max", "gpt-4o", noMax, 66, 16384, "0.164005"},
		// Anthropic prices the prompt at the cache-write price, its highest.
		{"highest input price", "claude-sonnet-4-5", chat, 82, 50, "0.0010575"},
		// Embeddings: output is free, so no output limit is needed.
		{"embedding", "text-embedding-3-small", `{"model":"text-embedding-3-small","input":"abc"}`, 48, 0, "0.00000096"},
		// n=3 pays for three completions.
		{"choices", "gpt-4o", `{"model":"gpt-4o","prompt":"x","max_tokens":10,"n":3}`, 53, 30, "0.0004325"},
		// 28 × 0.0000021875 + 0.0000175 = 0.00007875 exactly: the
		// 10-place price is not rounded before it is multiplied.
		{"full precision", "amazon.nova-2-pro-preview-20251202-v1:0", `{"model":"x","max_tokens":1}`, 28, 1, "0.00007875"},
		// 29 × 0.0000021875 + 0.0000175 = 0.0000809375, rounded up.
		{"round up", "amazon.nova-2-pro-preview-20251202-v1:0", `{"model":"x","max_tokens":1 }`, 29, 1, "0.000080938"},
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
}

// TestEstimateNeverCountsShort checks the prompt rule against its claim: the
// estimate is at least the UTF-8 size of the text plus a few framing tokens
// per message, the most any byte-level tokenizer can produce.
func TestEstimateNeverCountsShort(t *testing.T) {
	texts := []string{"", "a", "hello world", "日本語のテキスト", "emoji 😀😀😀", strings.Repeat("\x00\x01 ", 100), `quotes " and \ backslashes`}
	for _, text := range texts {
		for n := 1; n <= 5; n++ {
			var msgs []string
			for i := 0; i < n; i++ {
				content, _ := json.Marshal(text)
				msgs = append(msgs, `{"role":"user","content":`+string(content)+`}`)
			}
			body := `{"model":"m","messages":[` + strings.Join(msgs, ",") + `]}`
			r, err := pricing.ParseRequest([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			// At most: every byte a token, 4 framing tokens per message
			// and 3 to prime the reply (OpenAI's documented count).
			worst := int64(n*len(text) + 4*n + 3)
			if r.PromptTokens < worst {
				t.Errorf("%d × %q: estimate %d < worst case %d", n, text, r.PromptTokens, worst)
			}
		}
	}
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
