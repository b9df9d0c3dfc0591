package budget

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"
)

// Places is the number of decimal places money carries: amounts are exact to
// a billionth of a dollar (a nano-dollar), and anything finer is refused.
const Places = 9

// Nanos is an amount of money in billionths of a US dollar.
//
// The public API speaks decimal.Decimal; Nanos is what crosses the Store
// boundary, so that a store adds and compares plain integers (exact, and
// about ten times cheaper than decimal arithmetic) and SQL stores can keep
// money in INTEGER columns whose SUM is exact. An int64 of nano-dollars holds
// up to about 9.2 billion dollars; ToNanos refuses anything larger.
type Nanos int64

// MaxNanos is the largest amount a Nanos holds.
const MaxNanos = Nanos(math.MaxInt64)

// Decimal returns n as a decimal number of dollars.
func (n Nanos) Decimal() decimal.Decimal { return decimal.New(int64(n), -Places) }

// String formats n in dollars with no trailing zeros, e.g. "12.5".
func (n Nanos) String() string { return n.Decimal().String() }

// Add returns n+m, or false when the sum does not fit in a Nanos.
// Stores use it wherever they accumulate money.
func (n Nanos) Add(m Nanos) (Nanos, bool) {
	s := n + m
	if (m > 0 && s < n) || (m < 0 && s > n) {
		return 0, false
	}
	return s, true
}

var (
	bigTen      = big.NewInt(10)
	maxNanosBig = big.NewInt(math.MaxInt64)
)

// pow10 holds 10^0 … 10^18, every power of ten an int64 can hold.
var pow10 = func() (p [19]int64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// ToNanos converts an amount of dollars to Nanos. It is the one gate every
// amount passes on its way in: an amount must be ≥ 0, have at most 9 decimal
// places (trailing zeros do not count: 1.50000000000 is 1.5) and be below
// about 9.2 billion dollars; otherwise the error wraps ErrInvalidAmount.
func ToNanos(d decimal.Decimal) (Nanos, error) {
	if d.Sign() < 0 {
		return 0, fmt.Errorf("%w: %s is negative", ErrInvalidAmount, amountText(d))
	}
	if d.Sign() == 0 {
		return 0, nil
	}
	exp := int64(d.Exponent())
	// Fast path: a coefficient that fits in int64 and a modest exponent,
	// which is every amount that was written by hand or came from Nanos.
	if d.NumDigits() <= 18 && exp >= -Places-18 && exp <= 18 {
		c := d.CoefficientInt64()
		shift := exp + Places
		switch {
		case shift >= 0:
			if shift > 18 || c > math.MaxInt64/pow10[shift] {
				return 0, fmt.Errorf("%w: %s is too large (the most is %s)", ErrInvalidAmount, amountText(d), MaxNanos)
			}
			return Nanos(c * pow10[shift]), nil
		default:
			if c%pow10[-shift] != 0 {
				return 0, fmt.Errorf("%w: %s has more than %d decimal places", ErrInvalidAmount, amountText(d), Places)
			}
			return Nanos(c / pow10[-shift]), nil
		}
	}
	// Slow path: large coefficients or extreme exponents. Decide by digit
	// counts before doing any arithmetic whose size the exponent controls.
	digits := int64(d.NumDigits())
	if digits+exp > 19 {
		return 0, fmt.Errorf("%w: %s is too large (the most is %s)", ErrInvalidAmount, amountText(d), MaxNanos)
	}
	c := d.Coefficient()
	shift := exp + Places
	if shift < 0 {
		if -shift > digits {
			// Non-zero and smaller than one nano-dollar.
			return 0, fmt.Errorf("%w: %s has more than %d decimal places", ErrInvalidAmount, amountText(d), Places)
		}
		var r big.Int
		c.QuoRem(c, new(big.Int).Exp(bigTen, big.NewInt(-shift), nil), &r)
		if r.Sign() != 0 {
			return 0, fmt.Errorf("%w: %s has more than %d decimal places", ErrInvalidAmount, amountText(d), Places)
		}
	} else {
		c.Mul(c, new(big.Int).Exp(bigTen, big.NewInt(shift), nil))
	}
	if c.Cmp(maxNanosBig) > 0 {
		return 0, fmt.Errorf("%w: %s is too large (the most is %s)", ErrInvalidAmount, amountText(d), MaxNanos)
	}
	return Nanos(c.Int64()), nil
}

// amountText formats d for an error message without expanding its exponent:
// d.String() would write out every zero of 1e2147483647.
func amountText(d decimal.Decimal) string {
	if exp := d.Exponent(); exp >= -40 && exp <= 40 {
		return d.String()
	}
	return d.Coefficient().String() + "e" + strconv.Itoa(int(d.Exponent()))
}

// maxAmountText bounds the length of an amount given as text; 64 characters
// is far more than any valid amount needs.
const maxAmountText = 64

// ParseAmount parses an amount of dollars written in decimal, such as "12.5",
// "0.000000001" or "1.5e3", and validates it as ToNanos does. Call it on every
// amount that arrives as text (JSON, query strings, files).
//
// Exponents are checked before any arithmetic: "1e400" or "1e-400" are refused
// at once, never expanded.
func ParseAmount(s string) (decimal.Decimal, error) {
	if s == "" {
		return decimal.Decimal{}, fmt.Errorf("%w: empty", ErrInvalidAmount)
	}
	if len(s) > maxAmountText {
		return decimal.Decimal{}, fmt.Errorf("%w: longer than %d characters", ErrInvalidAmount, maxAmountText)
	}
	mant, exp, hasExp := s, "", false
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, exp, hasExp = s[:i], s[i+1:], true
	}
	if strings.HasPrefix(mant, "+") {
		mant = mant[1:]
	}
	if strings.HasPrefix(mant, "-") {
		return decimal.Decimal{}, fmt.Errorf("%w: %q is negative", ErrInvalidAmount, s)
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	if intPart == "" && frac == "" || !allDigits(intPart) || !allDigits(frac) {
		return decimal.Decimal{}, fmt.Errorf("%w: %q is not a decimal number", ErrInvalidAmount, s)
	}
	if hasExp {
		e := strings.TrimPrefix(strings.TrimPrefix(exp, "+"), "-")
		if e == "" || !allDigits(e) {
			return decimal.Decimal{}, fmt.Errorf("%w: %q has a malformed exponent", ErrInvalidAmount, s)
		}
		// The mantissa has at most 62 characters, so it is below 10^62 and,
		// unless zero, at least 10^-61: no exponent beyond ±70 gives a
		// valid amount. Exponents of three or more significant digits are
		// refused here, before anything is expanded.
		if len(strings.TrimLeft(e, "0")) > 2 {
			return decimal.Decimal{}, fmt.Errorf("%w: %q has an exponent out of range", ErrInvalidAmount, s)
		}
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("%w: %q: %v", ErrInvalidAmount, s, err)
	}
	if _, err := ToNanos(d); err != nil {
		return decimal.Decimal{}, err
	}
	return d, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// MustAmount parses a literal amount and panics if it is invalid. Use it for
// constants in programs and tests, never for input.
func MustAmount(s string) decimal.Decimal {
	d, err := ParseAmount(s)
	if err != nil {
		panic(err)
	}
	return d
}
