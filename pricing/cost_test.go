package pricing

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/llmbudget/budget"
)

// TestCostFast holds the 128-bit cost to the big.Int one on random
// prices and counts: where costFast answers, the same value and exponent.
func TestCostFast(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	price := func() decimal.Decimal {
		switch r.IntN(8) {
		case 0:
			return decimal.Decimal{}
		case 1:
			return decimal.New(-r.Int64N(1000), -int32(r.IntN(12)))
		case 2:
			return decimal.New(r.Int64(), int32(r.IntN(40))-25) // large or far
		}
		return decimal.New(r.Int64N(100000), -int32(r.IntN(16))) // e.g. 25e-7
	}
	count := func() int64 {
		switch r.IntN(5) {
		case 0:
			return 0
		case 1:
			return r.Int64N(MaxTokens + 1)
		}
		return r.Int64N(200000)
	}
	fast := 0
	for range 200000 {
		terms := [4]costTerm{{"a", count(), price()}, {"b", count(), price()}, {"c", count(), price()}, {"d", count(), price()}}
		want := costBig(&terms)
		got, ok := costFast(&terms)
		if !ok {
			continue
		}
		fast++
		if !reflect.DeepEqual(got, want) || got.String() != want.String() {
			t.Fatalf("%+v: costFast = %v (exp %d), costBig = %v (exp %d)", terms, got, got.Exponent(), want, want.Exponent())
		}
	}
	if fast < 50000 {
		t.Errorf("costFast answered %d of 200000 cases; expected a quarter at least", fast)
	}
}

// TestMaxCostFast holds MaxCost to its big.Int expression on random
// prices and counts.
func TestMaxCostFast(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		p := Price{
			Input:      decimal.New(r.Int64N(100000), -int32(r.IntN(16))),
			Output:     decimal.New(r.Int64N(100000), -int32(r.IntN(16))),
			CacheRead:  decimal.New(r.Int64N(3)*r.Int64N(100000), -int32(r.IntN(16))),
			CacheWrite: decimal.New(r.Int64N(3)*r.Int64N(100000), -int32(r.IntN(16))),
		}
		prompt, output := r.Int64N(MaxTokens+1)>>r.IntN(40), r.Int64N(MaxTokens+1)>>r.IntN(40)
		if r.IntN(10) == 0 {
			prompt = -prompt
		}
		want := p.inputPrice().Mul(decimal.NewFromInt(prompt)).
			Add(p.Output.Mul(decimal.NewFromInt(output))).
			RoundCeil(budget.Places)
		if got := p.MaxCost(prompt, output); !reflect.DeepEqual(got, want) || got.String() != want.String() {
			t.Fatalf("%+v, %d, %d: MaxCost = %v, want %v", p, prompt, output, got, want)
		}
	}
}
