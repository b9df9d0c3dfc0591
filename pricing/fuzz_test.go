package pricing_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/pricing"
)

// checkTable asserts what every successfully loaded table guarantees: each
// model has non-negative prices and prices any usage to a non-negative cost
// of at most 9 decimal places.
func checkTable(t *testing.T, tab *pricing.Table) {
	u := pricing.Usage{InputTokens: 1000, CacheReadTokens: 7, CacheWriteTokens: 3, OutputTokens: 999}
	for _, m := range tab.Models() {
		p, err := tab.Lookup(m)
		if err != nil {
			t.Fatalf("Lookup(%q) after Models: %v", m, err)
		}
		if p.Input.Sign() < 0 || p.Output.Sign() < 0 || p.CacheRead.Sign() < 0 || p.CacheWrite.Sign() < 0 || p.MaxOutputTokens < 0 {
			t.Fatalf("model %q has a negative price: %+v", m, p)
		}
		c, err := p.Cost(u)
		if err != nil {
			t.Fatalf("Cost(%q): %v", m, err)
		}
		if c.Sign() < 0 || c.Exponent() < -budget.Places {
			t.Fatalf("Cost(%q) = %s", m, c)
		}
		if _, err := p.Estimate(pricing.Request{Model: m, PromptTokens: 10, MaxOutputTokens: 10, Choices: 1}); err != nil {
			t.Fatalf("Estimate(%q): %v", m, err)
		}
	}
}

// FuzzLoadLiteLLM feeds arbitrary bytes to the LiteLLM loader: it must never
// panic, and a load either fails whole or yields a sound table. The seed
// corpus is in testdata/fuzz/FuzzLoadLiteLLM.
func FuzzLoadLiteLLM(f *testing.F) {
	f.Add([]byte(`{"sample_spec": {"max_tokens": "x"}, "m": {"input_cost_per_token": 2.1875e-06, "output_cost_per_token": 1e-05}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var tab pricing.Table
		if err := tab.LoadLiteLLM(bytes.NewReader(data)); err != nil {
			if tab.Len() != 0 {
				t.Fatalf("failed load left %d models", tab.Len())
			}
			return
		}
		checkTable(t, &tab)
	})
}

// FuzzLoad does the same for this package's own format; seeds in
// testdata/fuzz/FuzzLoad.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(`{"models": {"m": {"input_per_million": "2.5", "output_per_million": 10, "max_output_tokens": 100}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var tab pricing.Table
		if err := tab.Load(bytes.NewReader(data)); err != nil {
			if tab.Len() != 0 {
				t.Fatalf("failed load left %d models", tab.Len())
			}
			return
		}
		checkTable(t, &tab)
	})
}

// FuzzParseRequest feeds arbitrary request bodies to ParseRequest: no
// panic; it accepts exactly the JSON objects encoding/json accepts (less
// those it refuses for a field's type or unpriced input); and a parsed
// request never counts fewer prompt tokens than the UTF-8 bytes of its
// text, counted independently through encoding/json. Seeds in
// testdata/fuzz/FuzzParseRequest.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"n":2,"tools":[{}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := pricing.ParseRequest(body)
		valid := json.Valid(body)
		if err != nil {
			if !errors.Is(err, pricing.ErrInvalidRequest) && !errors.Is(err, pricing.ErrUnpricedInput) {
				t.Fatalf("ParseRequest(%q): %v, not ErrInvalidRequest", body, err)
			}
			if !valid && errors.Is(err, pricing.ErrUnpricedInput) {
				t.Fatalf("ParseRequest(%q) read invalid JSON far enough to find unpriced input", body)
			}
			return
		}
		if !valid {
			t.Fatalf("ParseRequest(%q) accepted invalid JSON: %+v", body, r)
		}
		if r.Model == "" || r.Choices < 1 || r.MaxOutputTokens < 0 || r.Images < 0 {
			t.Fatalf("ParseRequest(%q) = %+v", body, r)
		}
		if n := textBound(t, body); r.PromptTokens < n {
			t.Fatalf("ParseRequest(%q): %d prompt tokens, fewer than the text's %d bytes", body, r.PromptTokens, n)
		}
	})
}
