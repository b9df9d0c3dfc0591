// Package pricing turns LLM calls into dollars, exactly.
//
// A Table maps model names to per-token prices. Fill it from LiteLLM's
// model_prices_and_context_window.json (LoadLiteLLM), from this package's own
// small JSON format (Load), or entry by entry (Set). Then:
//
//   - Cost prices a finished call from its token usage;
//   - Estimate prices a request body before the call: the most it can cost,
//     which is what a budget.Reservation should hold.
//
// Prices are decimal.Decimal dollars per token, kept at full precision (a
// per-token price often has more than 9 decimal places, e.g. 2.1875e-06).
// Only a call's final cost is rounded, up, to the 9 places (budget.Places)
// budget amounts carry. Nothing here ever goes through float64, and an unknown model is an
// error (ErrUnknownModel), never a cost of zero.
package pricing

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/shopspring/decimal"

	"github.com/llmbudget/budget"
)

// MaxTokens bounds every token count this package accepts (about 1.1
// trillion): a count above it is refused as invalid rather than priced.
const MaxTokens = 1 << 40

var (
	// ErrUnknownModel: the table has no price for the model. A call to a
	// model without a price must be refused, never counted as free.
	ErrUnknownModel = errors.New("pricing: unknown model")
	// ErrInvalidPrices: a price list, or a Price given to Set, is malformed.
	// The error names the model and field.
	ErrInvalidPrices = errors.New("pricing: invalid price list")
	// ErrInvalidUsage: a Usage has a negative or absurdly large count.
	ErrInvalidUsage = errors.New("pricing: invalid usage")
)

// Price is what one model costs, in US dollars per token.
type Price struct {
	// Input is the price of a prompt token that is neither read from nor
	// written to the prompt cache.
	Input decimal.Decimal
	// Output is the price of a generated token, reasoning tokens included.
	Output decimal.Decimal
	// CacheRead is the price of a prompt token read from the prompt cache
	// (OpenAI cached_tokens, Anthropic cache_read_input_tokens). Zero means
	// "not priced separately": such tokens then cost Input.
	CacheRead decimal.Decimal
	// CacheWrite is the price of a prompt token written to the prompt cache
	// (Anthropic cache_creation_input_tokens). Zero means Input.
	CacheWrite decimal.Decimal
	// MaxOutputTokens is the most the model generates in one call; zero if
	// unknown. Estimate uses it when a request sets no output limit.
	MaxOutputTokens int64
	// ImageTokens is the most input tokens one image can cost the model
	// (OpenAI's gpt-4o, at high detail: 1,445; gpt-4o-mini bills images
	// at 33 times as many tokens; Anthropic: about 1,600). Zero means
	// unknown: Estimate then refuses requests with images
	// (ErrUnpricedInput) rather than count them free.
	ImageTokens int64
	// Provider and Mode are informational, copied from LiteLLM's
	// litellm_provider and mode ("chat", "embedding", ...).
	Provider string
	Mode     string
}

// cacheRead and cacheWrite apply the "zero means Input" rule.
func (p Price) cacheRead() decimal.Decimal {
	if p.CacheRead.IsZero() {
		return p.Input
	}
	return p.CacheRead
}

func (p Price) cacheWrite() decimal.Decimal {
	if p.CacheWrite.IsZero() {
		return p.Input
	}
	return p.CacheWrite
}

func (p Price) validate() error {
	for _, f := range [...]struct {
		name string
		v    decimal.Decimal
	}{{"Input", p.Input}, {"Output", p.Output}, {"CacheRead", p.CacheRead}, {"CacheWrite", p.CacheWrite}} {
		if f.v.Sign() < 0 {
			return fmt.Errorf("%s is negative", f.name)
		}
	}
	if p.MaxOutputTokens < 0 || p.MaxOutputTokens > MaxTokens {
		return fmt.Errorf("MaxOutputTokens %d is out of range", p.MaxOutputTokens)
	}
	if p.ImageTokens < 0 || p.ImageTokens > MaxTokens {
		return fmt.Errorf("ImageTokens %d is out of range", p.ImageTokens)
	}
	return nil
}

// Usage is what one call consumed, in tokens. The four counts are disjoint:
// every token is in exactly one of them.
type Usage struct {
	// InputTokens are prompt tokens neither read from nor written to the
	// prompt cache. (OpenAI's prompt_tokens include cached tokens: subtract
	// them.)
	InputTokens int64
	// CacheReadTokens are prompt tokens read from the prompt cache.
	CacheReadTokens int64
	// CacheWriteTokens are prompt tokens written to the prompt cache.
	CacheWriteTokens int64
	// OutputTokens are generated tokens, reasoning tokens included.
	OutputTokens int64
}

// Prompt returns all prompt tokens: input, cache reads and cache writes.
func (u Usage) Prompt() int64 { return u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens }

// Cost returns what usage u costs at price p, exactly, rounded up to 9
// decimal places. Use it when you already hold the model's Price (looked up
// when the call started); Table.Cost looks it up for you.
func (p Price) Cost(u Usage) (decimal.Decimal, error) {
	terms := [...]costTerm{
		{"input", u.InputTokens, p.Input},
		{"cache read", u.CacheReadTokens, p.cacheRead()},
		{"cache write", u.CacheWriteTokens, p.cacheWrite()},
		{"output", u.OutputTokens, p.Output},
	}
	for _, c := range terms {
		if c.n < 0 || c.n > MaxTokens {
			return decimal.Decimal{}, fmt.Errorf("%w: %d %s tokens", ErrInvalidUsage, c.n, c.name)
		}
	}
	if d, ok := costFast(&terms); ok {
		return d, nil
	}
	return costBig(&terms), nil
}

// costTerm is one kind of token in a cost: how many, at what price.
type costTerm struct {
	name   string
	n      int64
	perTok decimal.Decimal
}

// costBig is the cost of terms in big.Int decimals, rounded up to
// budget.Places: the reference costFast must equal.
func costBig(terms *[4]costTerm) decimal.Decimal {
	var total decimal.Decimal
	for _, c := range terms {
		if c.n != 0 && !c.perTok.IsZero() {
			total = total.Add(c.perTok.Mul(decimal.NewFromInt(c.n)))
		}
	}
	return total.RoundCeil(budget.Places)
}

// pow10u64[k] is 10^k.
var pow10u64 = func() (p [20]uint64) {
	p[0] = 1
	for k := 1; k < len(p); k++ {
		p[k] = p[k-1] * 10
	}
	return p
}()

// u128 is an unsigned 128-bit integer.
type u128 struct{ hi, lo uint64 }

// mul returns a·b and whether it did not overflow.
func (a u128) mul(b uint64) (u128, bool) {
	hi, lo := bits.Mul64(a.lo, b)
	h2, l2 := bits.Mul64(a.hi, b)
	hi, carry := bits.Add64(hi, l2, 0)
	return u128{hi, lo}, h2 == 0 && carry == 0
}

// add returns a+b and whether it did not overflow.
func (a u128) add(b u128) (u128, bool) {
	lo, c := bits.Add64(a.lo, b.lo, 0)
	hi, c2 := bits.Add64(a.hi, b.hi, c)
	return u128{hi, lo}, c2 == 0
}

// costFast is costBig in 128-bit integers, without big.Int arithmetic,
// giving the same value and exponent. ok is false, and costBig must
// answer, when a count or price is negative, a coefficient or the sum
// does not fit, and for a zero cost.
func costFast(terms *[4]costTerm) (decimal.Decimal, bool) {
	// The sum is S·10^e, e the least exponent of the terms counted.
	e, used := int32(0), false
	for _, c := range terms {
		if c.n == 0 || c.perTok.IsZero() {
			continue
		}
		if c.n < 0 || c.perTok.Sign() < 0 || c.perTok.NumDigits() > 18 {
			return decimal.Decimal{}, false
		}
		e, used = min(e, c.perTok.Exponent()), true
	}
	if !used {
		return decimal.Decimal{}, false
	}
	var sum u128
	for _, c := range terms {
		if c.n == 0 || c.perTok.IsZero() {
			continue
		}
		shift := int64(c.perTok.Exponent()) - int64(e)
		if shift >= int64(len(pow10u64)) {
			return decimal.Decimal{}, false
		}
		v, ok := u128{0, uint64(c.perTok.CoefficientInt64())}.mul(uint64(c.n))
		if ok {
			v, ok = v.mul(pow10u64[shift])
		}
		if ok {
			sum, ok = sum.add(v)
		}
		if !ok {
			return decimal.Decimal{}, false
		}
	}
	// Rescale S·10^e to units of 10^-Places, rounding up.
	switch k := int64(e) + budget.Places; {
	case k >= int64(len(pow10u64)) || -k >= int64(len(pow10u64)):
		return decimal.Decimal{}, false
	case k >= 0:
		var ok bool
		if sum, ok = sum.mul(pow10u64[k]); !ok {
			return decimal.Decimal{}, false
		}
	default:
		d := pow10u64[-k]
		qlo, rem := bits.Div64(sum.hi%d, sum.lo, d)
		sum = u128{sum.hi / d, qlo}
		if rem != 0 {
			var ok bool
			if sum, ok = sum.add(u128{0, 1}); !ok {
				return decimal.Decimal{}, false
			}
		}
	}
	if sum.hi != 0 || sum.lo == 0 || sum.lo > math.MaxInt64 {
		return decimal.Decimal{}, false
	}
	return decimal.New(int64(sum.lo), -budget.Places), true
}

// Table holds per-model prices. The zero Table is empty and ready to use.
// Most callers fill it once at start-up with LoadLiteLLM or Load, then call
// Cost and Estimate (or Lookup) from any number of goroutines.
//
// A Table is safe for concurrent use. Loads are atomic: a load that fails
// changes nothing, and readers see either all of a load's entries or none.
// Lookups take no lock.
type Table struct {
	mu     sync.Mutex // serializes writers
	models atomic.Pointer[map[string]Price]
}

// Lookup returns the price of model, or an error wrapping ErrUnknownModel.
// Model names match exactly, as the price list spells them.
func (t *Table) Lookup(model string) (Price, error) {
	if m := t.models.Load(); m != nil {
		if p, ok := (*m)[model]; ok {
			return p, nil
		}
	}
	return Price{}, fmt.Errorf("%w %q", ErrUnknownModel, model)
}

// Cost returns what usage u of model costs, rounded up to 9 decimal places.
// An unknown model returns an error wrapping ErrUnknownModel.
func (t *Table) Cost(model string, u Usage) (decimal.Decimal, error) {
	p, err := t.Lookup(model)
	if err != nil {
		return decimal.Decimal{}, err
	}
	return p.Cost(u)
}

// Set adds or replaces the price of one model: for prices that come from
// your own configuration rather than a file.
func (t *Table) Set(model string, p Price) error {
	if model == "" {
		return fmt.Errorf("%w: empty model name", ErrInvalidPrices)
	}
	if err := p.validate(); err != nil {
		return fmt.Errorf("%w: model %q: %v", ErrInvalidPrices, model, err)
	}
	t.merge(map[string]Price{model: p})
	return nil
}

// Models returns the names of the priced models, sorted.
func (t *Table) Models() []string {
	m := t.models.Load()
	if m == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(*m))
}

// Len returns the number of models priced.
func (t *Table) Len() int {
	if m := t.models.Load(); m != nil {
		return len(*m)
	}
	return 0
}

// merge adds entries, replacing existing ones, in one atomic step: readers
// keep the old map until the new one is complete.
func (t *Table) merge(add map[string]Price) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var n map[string]Price
	if old := t.models.Load(); old != nil {
		n = make(map[string]Price, len(*old)+len(add))
		maps.Copy(n, *old)
	} else {
		n = make(map[string]Price, len(add))
	}
	maps.Copy(n, add)
	t.models.Store(&n)
}
