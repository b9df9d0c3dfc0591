package pricing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/shopspring/decimal"
)

// LoadLiteLLM adds the models of a LiteLLM price list to the table,
// replacing models it already has. The list is the format of LiteLLM's
// model_prices_and_context_window.json: one JSON object per model name.
//
// From each entry it reads input_cost_per_token, output_cost_per_token,
// cache_read_input_token_cost, cache_creation_input_token_cost,
// max_output_tokens (or, without it, max_tokens), litellm_provider and mode,
// and ignores every other key. Costs are parsed as exact decimals from the
// JSON text, never through float64.
//
// Skipped, without error: the sample_spec entry (it documents the fields),
// and models not priced per token — an entry needs input_cost_per_token and
// output_cost_per_token, except that an embedding model (mode "embedding")
// needs only input_cost_per_token. So image, audio and per-second models are
// left out, and calls to them are refused as unknown rather than counted
// free.
//
// Malformed input — not a JSON object, an entry that is not an object, a
// cost that is not a non-negative number — is an error wrapping
// ErrInvalidPrices that names the model and field, and loads nothing.
func (t *Table) LoadLiteLLM(r io.Reader) error {
	var doc map[string]json.RawMessage
	if err := decodeOne(r, &doc, false); err != nil {
		return err
	}
	if doc == nil {
		return fmt.Errorf("%w: the price list is not a JSON object", ErrInvalidPrices)
	}
	add := make(map[string]Price, len(doc))
	for model, raw := range doc {
		if model == "sample_spec" {
			continue
		}
		p, ok, err := liteLLMEntry(raw)
		if err != nil {
			return fmt.Errorf("%w: model %q: %v", ErrInvalidPrices, model, err)
		}
		if ok && model != "" {
			add[model] = p
		}
	}
	t.merge(add)
	return nil
}

// liteLLMModel holds the keys of a LiteLLM entry that we read. Values stay
// raw so that each is parsed exactly, and checked, by one function.
type liteLLMModel struct {
	Input           json.RawMessage `json:"input_cost_per_token"`
	Output          json.RawMessage `json:"output_cost_per_token"`
	CacheRead       json.RawMessage `json:"cache_read_input_token_cost"`
	CacheWrite      json.RawMessage `json:"cache_creation_input_token_cost"`
	MaxOutputTokens json.RawMessage `json:"max_output_tokens"`
	MaxTokens       json.RawMessage `json:"max_tokens"`
	Provider        json.RawMessage `json:"litellm_provider"`
	Mode            json.RawMessage `json:"mode"`
}

// liteLLMEntry parses one entry; ok is false for an entry that is not
// priced per token.
func liteLLMEntry(raw json.RawMessage) (p Price, ok bool, err error) {
	if len(raw) == 0 || raw[0] != '{' {
		return Price{}, false, errors.New("the entry is not a JSON object")
	}
	var e liteLLMModel
	if err := json.Unmarshal(raw, &e); err != nil {
		return Price{}, false, err
	}
	if p.Provider, err = optString(e.Provider, "litellm_provider"); err != nil {
		return Price{}, false, err
	}
	if p.Mode, err = optString(e.Mode, "mode"); err != nil {
		return Price{}, false, err
	}
	var hasIn, hasOut bool
	for _, f := range [...]struct {
		name string
		raw  json.RawMessage
		dst  *decimal.Decimal
		has  *bool
	}{
		{"input_cost_per_token", e.Input, &p.Input, &hasIn},
		{"output_cost_per_token", e.Output, &p.Output, &hasOut},
		{"cache_read_input_token_cost", e.CacheRead, &p.CacheRead, nil},
		{"cache_creation_input_token_cost", e.CacheWrite, &p.CacheWrite, nil},
	} {
		d, present, err := parsePrice(f.raw, false)
		if err != nil {
			return Price{}, false, fmt.Errorf("%s: %v", f.name, err)
		}
		*f.dst = d
		if f.has != nil {
			*f.has = present
		}
	}
	maxOut, present, err := parseCount(e.MaxOutputTokens)
	if err != nil {
		return Price{}, false, fmt.Errorf("max_output_tokens: %v", err)
	}
	if !present {
		if maxOut, _, err = parseCount(e.MaxTokens); err != nil {
			return Price{}, false, fmt.Errorf("max_tokens: %v", err)
		}
	}
	p.MaxOutputTokens = maxOut
	if !hasIn || (!hasOut && p.Mode != "embedding") {
		return Price{}, false, nil
	}
	return p, true, nil
}

// Load adds the models of a price list in this package's own format to the
// table, replacing models it already has. Use it for your own prices, or to
// override a few of LiteLLM's after LoadLiteLLM. The format, with prices in
// dollars per million tokens as price pages show them, as JSON strings or
// numbers, parsed exactly:
//
//	{"models": {
//	  "gpt-4o": {
//	    "provider": "openai",
//	    "input_per_million": "2.50",
//	    "output_per_million": "10",
//	    "cache_read_per_million": "1.25",
//	    "max_output_tokens": 16384,
//	    "image_tokens": 1445
//	  }
//	}}
//
// input_per_million and output_per_million are required (write "0" for a
// free model); cache_read_per_million and cache_write_per_million default to
// the input price; max_output_tokens, image_tokens (Price.ImageTokens),
// provider and mode are optional.
// Unknown keys are errors, so a misspelt price cannot silently be zero.
// Malformed input is an error wrapping ErrInvalidPrices and loads nothing.
func (t *Table) Load(r io.Reader) error {
	var doc struct {
		Models map[string]struct {
			Provider             string          `json:"provider"`
			Mode                 string          `json:"mode"`
			InputPerMillion      json.RawMessage `json:"input_per_million"`
			OutputPerMillion     json.RawMessage `json:"output_per_million"`
			CacheReadPerMillion  json.RawMessage `json:"cache_read_per_million"`
			CacheWritePerMillion json.RawMessage `json:"cache_write_per_million"`
			MaxOutputTokens      json.RawMessage `json:"max_output_tokens"`
			ImageTokens          json.RawMessage `json:"image_tokens"`
		} `json:"models"`
	}
	if err := decodeOne(r, &doc, true); err != nil {
		if strings.Contains(err.Error(), "unknown field") {
			err = fmt.Errorf("%w (for LiteLLM's format, use LoadLiteLLM)", err)
		}
		return err
	}
	if doc.Models == nil {
		return fmt.Errorf(`%w: no "models" object`, ErrInvalidPrices)
	}
	add := make(map[string]Price, len(doc.Models))
	for model, e := range doc.Models {
		if model == "" {
			return fmt.Errorf("%w: empty model name", ErrInvalidPrices)
		}
		p := Price{Provider: e.Provider, Mode: e.Mode}
		for _, f := range [...]struct {
			name     string
			raw      json.RawMessage
			dst      *decimal.Decimal
			required bool
		}{
			{"input_per_million", e.InputPerMillion, &p.Input, true},
			{"output_per_million", e.OutputPerMillion, &p.Output, true},
			{"cache_read_per_million", e.CacheReadPerMillion, &p.CacheRead, false},
			{"cache_write_per_million", e.CacheWritePerMillion, &p.CacheWrite, false},
		} {
			d, present, err := parsePrice(f.raw, true)
			if err != nil {
				return fmt.Errorf("%w: model %q: %s: %v", ErrInvalidPrices, model, f.name, err)
			}
			if !present && f.required {
				return fmt.Errorf("%w: model %q: %s is required", ErrInvalidPrices, model, f.name)
			}
			*f.dst = d.Shift(-6) // per million → per token, exactly
		}
		maxOut, _, err := parseCount(e.MaxOutputTokens)
		if err != nil {
			return fmt.Errorf("%w: model %q: max_output_tokens: %v", ErrInvalidPrices, model, err)
		}
		p.MaxOutputTokens = maxOut
		if p.ImageTokens, _, err = parseCount(e.ImageTokens); err != nil {
			return fmt.Errorf("%w: model %q: image_tokens: %v", ErrInvalidPrices, model, err)
		}
		add[model] = p
	}
	t.merge(add)
	return nil
}

// decodeOne decodes exactly one JSON value from r into v.
func decodeOne(r io.Reader, v any, strict bool) error {
	dec := json.NewDecoder(r)
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidPrices, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON document", ErrInvalidPrices)
	}
	return nil
}

// maxNumberText bounds a price's text; no real price needs more.
const maxNumberText = 64

// parsePrice parses a non-negative decimal from a JSON number or, if
// allowString, a JSON string holding one. present is false for an absent or
// null value. Exponents are bounded before anything is expanded.
func parsePrice(raw json.RawMessage, allowString bool) (d decimal.Decimal, present bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return decimal.Decimal{}, false, nil
	}
	s := string(raw)
	if raw[0] == '"' {
		if !allowString {
			return decimal.Decimal{}, false, fmt.Errorf("%s is a string, not a number", truncate(s))
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return decimal.Decimal{}, false, err
		}
	}
	if len(s) > maxNumberText || !isDecimal(s) {
		return decimal.Decimal{}, false, fmt.Errorf("%q is not a decimal number", truncate(s))
	}
	if s[0] == '-' {
		return decimal.Decimal{}, false, fmt.Errorf("%s is negative", s)
	}
	d, err = decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, false, fmt.Errorf("%s: %v", s, err)
	}
	return d, true, nil
}

// parseCount parses a non-negative integer token count from a JSON number
// (8192, or 8192.0 as some lists write it). An absent or null value is 0.
func parseCount(raw json.RawMessage) (n int64, present bool, err error) {
	d, present, err := parsePrice(raw, false)
	if err != nil || !present {
		return 0, present, err
	}
	if !d.IsInteger() || d.GreaterThan(decimal.NewFromInt(MaxTokens)) {
		return 0, false, fmt.Errorf("%s is not a token count", d)
	}
	return d.IntPart(), true, nil
}

func optString(raw json.RawMessage, name string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s is not a string", name)
	}
	return s, nil
}

// isDecimal reports whether s is a decimal number: an optional sign, digits
// with an optional fraction, and an optional exponent of at most two
// significant digits (so that "1e999999999" is refused before it is
// expanded).
func isDecimal(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	mant, exp, hasExp := s, "", false
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, exp, hasExp = s[:i], s[i+1:], true
	}
	intPart, frac, hasDot := strings.Cut(mant, ".")
	if !allDigits(intPart) || !allDigits(frac) || intPart == "" && frac == "" || hasDot && frac == "" {
		return false
	}
	if hasExp {
		if exp != "" && (exp[0] == '-' || exp[0] == '+') {
			exp = exp[1:]
		}
		if exp == "" || !allDigits(exp) || len(strings.TrimLeft(exp, "0")) > 2 {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
