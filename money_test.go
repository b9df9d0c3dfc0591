package budget

import (
	"errors"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// quickly is how long a call that must refuse at once may take at most: far
// more than it needs, far less than expanding 10^400000000 would take.
const quickly = time.Second

// moneyBigPow10 returns 10^n.
func moneyBigPow10(n int64) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(n), nil) }

// moneyBigDecimal returns c×10^exp with c given in decimal digits.
func moneyBigDecimal(t testing.TB, c string, exp int32) decimal.Decimal {
	t.Helper()
	v, ok := new(big.Int).SetString(c, 10)
	if !ok {
		t.Fatalf("bad coefficient %q", c)
	}
	return decimal.NewFromBigInt(v, exp)
}

func TestToNanos(t *testing.T) {
	const bad = Nanos(-1) // marks a refusal in the table
	tests := []struct {
		name string
		in   decimal.Decimal
		want Nanos
	}{
		{"zero", decimal.Zero, 0},
		{"zero with exponent", decimal.New(0, -5), 0},
		{"zero with huge exponent", decimal.New(0, math.MaxInt32), 0},
		{"zero with tiny exponent", decimal.New(0, math.MinInt32), 0},
		{"one dollar", decimal.NewFromInt(1), 1_000_000_000},
		{"0.1", decimal.RequireFromString("0.1"), 100_000_000},
		{"0.000000001", decimal.RequireFromString("0.000000001"), 1},
		{"1.50000000000 trailing zeros", decimal.RequireFromString("1.50000000000"), 1_500_000_000},
		{"12.345678912000000000", decimal.RequireFromString("12.345678912000000000"), 12_345_678_912},
		{"0.0000000001 is finer than a nano", decimal.RequireFromString("0.0000000001"), bad},
		{"0.0000000015", decimal.RequireFromString("0.0000000015"), bad},
		{"1.0000000001", decimal.RequireFromString("1.0000000001"), bad},
		{"negative", decimal.NewFromInt(-1), bad},
		{"negative nano", decimal.New(-1, -9), bad},
		{"negative huge", decimal.New(-1, 400), bad},
		{"negative 1e2147483647", decimal.New(-1, math.MaxInt32), bad},
		{"negative 1e-2147483648", decimal.New(-1, math.MinInt32), bad},
		{"max", decimal.RequireFromString("9223372036.854775807"), MaxNanos},
		{"max with trailing zeros", decimal.RequireFromString("9223372036.8547758070000"), MaxNanos},
		{"one nano more than max", decimal.RequireFromString("9223372036.854775808"), bad},
		{"max whole dollars", decimal.NewFromInt(9223372036), 9_223_372_036_000_000_000},
		{"one dollar more than max whole dollars", decimal.NewFromInt(9223372037), bad},
		{"ten billion", decimal.NewFromInt(10_000_000_000), bad},
		{"1e18 dollars", decimal.New(1, 18), bad},
		{"1e19 dollars", decimal.New(1, 19), bad},
		{"fast path at the limit", decimal.New(922337203685477580, -8), 9_223_372_036_854_775_800},
		{"fast path one past the limit", decimal.New(922337203685477581, -8), bad},
		{"fast path smallest exponent, exact", decimal.New(100_000_000_000_000_000, -26), 1},
		{"fast path smallest exponent, inexact", decimal.New(999_999_999_999_999_999, -27), bad},
		{"1e-27", decimal.New(1, -27), bad},
		{"1e-28", decimal.New(1, -28), bad},
		{"1e19 × 1e-28 is one nano", decimal.New(10_000_000_000_000_000, -25), 1},
		{"int64 coefficient exp -28 exact", decimal.NewFromBigInt(moneyBigPow10(19), -28), 1},
		{"huge coefficient, negative exponent, exact", moneyBigDecimal(t, "5"+strings.Repeat("0", 40), -40), 5_000_000_000},
		{"1e1000 × 1e-1000", decimal.NewFromBigInt(moneyBigPow10(1000), -1000), 1_000_000_000},
		{"123e30 × 1e-39 is 123 nanos", moneyBigDecimal(t, "123"+strings.Repeat("0", 30), -39), 123},
		{"max as huge coefficient", moneyBigDecimal(t, "9223372036854775807"+strings.Repeat("0", 30), -39), MaxNanos},
		{"max plus one as huge coefficient", moneyBigDecimal(t, "9223372036854775808"+strings.Repeat("0", 30), -39), bad},
		{"huge coefficient, inexact", moneyBigDecimal(t, "1"+strings.Repeat("0", 39)+"1", -40), bad},
		{"huge coefficient, too large", decimal.NewFromBigInt(moneyBigPow10(40), 0), bad},
		{"huge coefficient, much too small", decimal.NewFromBigInt(moneyBigPow10(40), -100), bad},
		{"1e-400", decimal.New(1, -400), bad},
		{"1e400", decimal.New(1, 400), bad},
		{"1e-2147483648", decimal.New(1, math.MinInt32), bad},
		{"1e2147483647", decimal.New(1, math.MaxInt32), bad},
		{"big coefficient e-2147483648", decimal.NewFromBigInt(moneyBigPow10(50), math.MinInt32), bad},
		{"big coefficient e2147483647", decimal.NewFromBigInt(moneyBigPow10(50), math.MaxInt32), bad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			got, err := ToNanos(tt.in)
			if d := time.Since(start); d > quickly {
				t.Errorf("ToNanos took %v", d)
			}
			if tt.want == bad {
				if !errors.Is(err, ErrInvalidAmount) {
					t.Fatalf("ToNanos = %d, %v; want an error wrapping ErrInvalidAmount", got, err)
				}
				if got != 0 {
					t.Errorf("ToNanos returned %d with its error; want 0", got)
				}
				// The message names the amount without writing out its
				// exponent's worth of zeros.
				if len(err.Error()) > 200 {
					t.Errorf("error message is %d bytes long", len(err.Error()))
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ToNanos = %d, %v; want %d", got, err, tt.want)
			}
			if !got.Decimal().Equal(tt.in) {
				t.Errorf("Decimal() = %s, not equal to the input", got.Decimal())
			}
		})
	}
}

func TestNanosDecimalRoundTrip(t *testing.T) {
	tests := []struct {
		n    Nanos
		text string
	}{
		{0, "0"},
		{1, "0.000000001"},
		{10, "0.00000001"},
		{100_000_000, "0.1"},
		{1_000_000_000, "1"},
		{12_500_000_000, "12.5"},
		{123_456_789_012, "123.456789012"},
		{MaxNanos - 1, "9223372036.854775806"},
		{MaxNanos, "9223372036.854775807"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			d := tt.n.Decimal()
			if want := decimal.New(int64(tt.n), -9); !d.Equal(want) {
				t.Errorf("Decimal() = %s, want %s", d, want)
			}
			if s := tt.n.String(); s != tt.text {
				t.Errorf("String() = %q, want %q", s, tt.text)
			}
			if back, err := ToNanos(d); err != nil || back != tt.n {
				t.Errorf("ToNanos(Decimal()) = %d, %v; want %d", back, err, tt.n)
			}
			p, err := ParseAmount(tt.n.String())
			if err != nil {
				t.Fatalf("ParseAmount(String()) = %v", err)
			}
			if back, err := ToNanos(p); err != nil || back != tt.n {
				t.Errorf("ToNanos(ParseAmount(String())) = %d, %v; want %d", back, err, tt.n)
			}
		})
	}
}

func TestNanosAdd(t *testing.T) {
	tests := []struct {
		name string
		a, b Nanos
		want Nanos
		ok   bool
	}{
		{"small", 1, 2, 3, true},
		{"zero", 0, 0, 0, true},
		{"max plus zero", MaxNanos, 0, MaxNanos, true},
		{"to exactly max", MaxNanos - 1, 1, MaxNanos, true},
		{"halves", MaxNanos / 2, MaxNanos/2 + 1, MaxNanos, true},
		{"max plus one", MaxNanos, 1, 0, false},
		{"one plus max", 1, MaxNanos, 0, false},
		{"max plus max", MaxNanos, MaxNanos, 0, false},
		{"negative", 5, -7, -2, true},
		{"max plus minus one", MaxNanos, -1, MaxNanos - 1, true},
		{"min plus minus one", math.MinInt64, -1, 0, false},
		{"min plus max", math.MinInt64, MaxNanos, -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.a.Add(tt.b)
			if got != tt.want || ok != tt.ok {
				t.Errorf("%d.Add(%d) = %d, %v; want %d, %v", tt.a, tt.b, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestParseAmountValid(t *testing.T) {
	tests := []struct {
		in   string
		want Nanos
	}{
		{"0", 0},
		{"0.0", 0},
		{"12.5", 12_500_000_000},
		{"0.10", 100_000_000},
		{".5", 500_000_000},
		{"5.", 5_000_000_000},
		{"1e3", 1_000_000_000_000},
		{"1E3", 1_000_000_000_000},
		{"1e+3", 1_000_000_000_000},
		{"1.5E-3", 1_500_000},
		{"+2", 2_000_000_000},
		{"+.5", 500_000_000},
		{"007", 7_000_000_000},
		{"0.000000001", 1},
		{"1e-9", 1},
		{"1.50000000000", 1_500_000_000},
		{"9223372036.854775807", MaxNanos},
		{"9223372036854775807e-9", MaxNanos},
		{"1e09", 1_000_000_000_000_000_000},
		{"0e99", 0},
		// exponents beyond ±40 that still give valid amounts
		{"1" + strings.Repeat("0", 50) + "e-59", 1},
		{"0." + strings.Repeat("0", 48) + "1e50", 10_000_000_000},
		// exactly 64 characters
		{strings.Repeat("0", 63) + "1", 1_000_000_000},
		{"0." + strings.Repeat("0", 8) + "1" + strings.Repeat("0", 53), 1},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d, err := ParseAmount(tt.in)
			if err != nil {
				t.Fatalf("ParseAmount(%q) = %v", tt.in, err)
			}
			if want := tt.want.Decimal(); !d.Equal(want) {
				t.Errorf("ParseAmount(%q) = %s, want %s", tt.in, d, want)
			}
			if n, err := ToNanos(d); err != nil || n != tt.want {
				t.Errorf("ToNanos(ParseAmount(%q)) = %d, %v; want %d", tt.in, n, err, tt.want)
			}
			if m := MustAmount(tt.in); !m.Equal(d) {
				t.Errorf("MustAmount(%q) = %s, want %s", tt.in, m, d)
			}
		})
	}
}

func TestParseAmountInvalid(t *testing.T) {
	for _, in := range []string{
		"", "-1", "-0", "-0.5", "+-1", "++1", "abc", "1e400", "1e-400", "1e99999999999999999999",
		"1e-99999999999999999999", "1e2147483648", "1e-2147483649", "0e100", "1e100", "1e-100",
		"NaN", "nan", "Inf", "+Inf", "-Inf", "Infinity", "1.2.3", " 1", "1 ", "1\n", "\t1", "0x10", "0b1", "0o7",
		"1_000", "1,5", "1e", "1e+", "1e-", "e5", "E5", ".", "+", ".e1", "1e+-3", "1e-+3", "1e3e4", "1e3.5",
		"1ee3", "1.5.", "..5", "\u22121", "１", "٣", "0.0000000001", "1.0000000001", "1e-10",
		"9223372036.854775808", "9223372037", "1e10", "10000000000",
		strings.Repeat("0", 64) + "1",
		"1." + strings.Repeat("0", 63),
		strings.Repeat("9", 65),
		strings.Repeat("1", 1<<20),
	} {
		name := in
		if len(name) > 70 {
			name = name[:20] + "…(" + strconv.Itoa(len(in)) + " bytes)"
		}
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			d, err := ParseAmount(in)
			if el := time.Since(start); el > quickly {
				t.Errorf("ParseAmount took %v", el)
			}
			if !errors.Is(err, ErrInvalidAmount) {
				t.Fatalf("ParseAmount(%q) = %s, %v; want an error wrapping ErrInvalidAmount", in, d, err)
			}
			if !d.Equal(decimal.Zero) {
				t.Errorf("ParseAmount returned %s with its error; want 0", d)
			}
		})
	}
}

// TestParseAmountHugeExponents checks that every exponent over 1000 in
// magnitude is refused, whatever the mantissa, and at once.
func TestParseAmountHugeExponents(t *testing.T) {
	exps := []string{"1000", "1001", "4000", "10000", "10001", "99999", "2147483647", "2147483648",
		"9223372036854775807", "9223372036854775808", "000000000000001001", strings.Repeat("9", 50)}
	mants := []string{"1", "0", "0.000000001", "9223372036.854775807", "1" + strings.Repeat("0", 20), "." + strings.Repeat("0", 20) + "1"}
	for _, e := range exps {
		for _, sign := range []string{"", "+", "-"} {
			for _, m := range mants {
				for _, mark := range []string{"e", "E"} {
					s := m + mark + sign + e
					if len(s) > maxAmountText {
						continue
					}
					start := time.Now()
					d, err := ParseAmount(s)
					if el := time.Since(start); el > quickly {
						t.Errorf("ParseAmount(%q) took %v", s, el)
					}
					if !errors.Is(err, ErrInvalidAmount) {
						t.Errorf("ParseAmount(%q) = %s, %v; want an error wrapping ErrInvalidAmount", s, d, err)
					}
				}
			}
		}
	}
}

func TestMustAmountPanicsOnInvalid(t *testing.T) {
	defer func() {
		r := recover()
		err, ok := r.(error)
		if !ok || !errors.Is(err, ErrInvalidAmount) {
			t.Errorf("MustAmount(\"-1\") panicked with %v; want an error wrapping ErrInvalidAmount", r)
		}
	}()
	MustAmount("-1")
}

// TestAmountTenTimesOneTenthIsOne is the reason money is kept in Nanos: ten
// records of 0.1 add up to exactly 1, with no float drift.
func TestAmountTenTimesOneTenthIsOne(t *testing.T) {
	tenth, err := ToNanos(MustAmount("0.1"))
	if err != nil {
		t.Fatal(err)
	}
	var sum Nanos
	for i := 0; i < 10; i++ {
		var ok bool
		if sum, ok = sum.Add(tenth); !ok {
			t.Fatalf("overflow after %d additions", i)
		}
	}
	one, err := ToNanos(decimal.NewFromInt(1))
	if err != nil {
		t.Fatal(err)
	}
	if sum != one {
		t.Errorf("ten times 0.1 = %d nanos (%s), want %d", sum, sum, one)
	}
	if !sum.Decimal().Equal(decimal.NewFromInt(1)) || sum.String() != "1" {
		t.Errorf("ten times 0.1 = %s, want exactly 1", sum)
	}
}

// plainAmount is the grammar ParseAmount documents, checked independently of
// its implementation: an optional '+', digits with at most one point and at
// least one digit, and an optional exponent.
var plainAmount = regexp.MustCompile(`^\+?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{
		"0", "12.5", "0.10", ".5", "5.", "1e3", "1.5E-3", "+2", "-1", "", "abc", "NaN", "Inf",
		"1e400", "1e-400", "1e99999999999999999999", "0.1", "0.000000001", "0.0000000001",
		"9223372036.854775807", "9223372036.854775808", "1" + strings.Repeat("0", 50) + "e-59",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start := time.Now()
		d, err := ParseAmount(s)
		if el := time.Since(start); el > 2*quickly {
			t.Errorf("ParseAmount(%q) took %v", s, el)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidAmount) {
				t.Fatalf("ParseAmount(%q) error %v does not wrap ErrInvalidAmount", s, err)
			}
			// A valid amount in the documented syntax must not be refused,
			// except a zero written with an exponent of three digits or more.
			if len(s) <= maxAmountText && plainAmount.MatchString(s) {
				ref, rerr := decimal.NewFromString(s)
				if rerr != nil {
					return
				}
				if _, nerr := ToNanos(ref); nerr == nil && !ref.IsZero() {
					t.Fatalf("ParseAmount(%q) = %v, but it is the valid amount %s", s, err, ref)
				}
			}
			return
		}
		if !plainAmount.MatchString(s) || len(s) > maxAmountText {
			t.Fatalf("ParseAmount accepted %q, which is not a plain decimal of at most %d characters", s, maxAmountText)
		}
		n, err := ToNanos(d)
		if err != nil {
			t.Fatalf("ParseAmount(%q) = %s, but ToNanos fails: %v", s, d, err)
		}
		if !n.Decimal().Equal(d) {
			t.Fatalf("ParseAmount(%q) = %s, but ToNanos gives %d = %s", s, d, n, n.Decimal())
		}
		if ref, err := decimal.NewFromString(s); err != nil || !ref.Equal(d) {
			t.Fatalf("ParseAmount(%q) = %s, decimal.NewFromString = %s, %v", s, d, ref, err)
		}
		text := n.String()
		d2, err := ParseAmount(text)
		if err != nil {
			t.Fatalf("ParseAmount(%q) (String of %d) = %v", text, n, err)
		}
		n2, err := ToNanos(d2)
		if err != nil || n2 != n {
			t.Fatalf("re-parsing %q gives %d, %v; want %d", text, n2, err, n)
		}
	})
}

// toNanosOracle computes ToNanos(coef×10^exp) with math/big, refusing what
// ToNanos must refuse. It is independent of ToNanos's fast and slow paths.
func toNanosOracle(coef int64, exp int32) (Nanos, bool) {
	switch {
	case coef < 0:
		return 0, false
	case coef == 0:
		return 0, true
	}
	shift := int64(exp) + Places
	v := big.NewInt(coef)
	if shift >= 0 {
		if shift > 19 { // coef ≥ 1, so the amount is at least 10^20 nanos
			return 0, false
		}
		v.Mul(v, moneyBigPow10(shift))
	} else {
		if -shift > 19 { // coef < 10^19 cannot be a multiple of 10^20 or more
			return 0, false
		}
		var r big.Int
		v.QuoRem(v, moneyBigPow10(-shift), &r)
		if r.Sign() != 0 {
			return 0, false
		}
	}
	if !v.IsInt64() {
		return 0, false
	}
	return Nanos(v.Int64()), true
}

func FuzzToNanos(f *testing.F) {
	for _, c := range []struct {
		coef int64
		exp  int32
	}{
		{1, 400}, {1, -400}, {1, -1}, {math.MaxInt64, -9}, {922337203685477581, -8},
		{1, -9}, {1, -10}, {0, math.MaxInt32}, {0, math.MinInt32}, {1, math.MinInt32}, {1, math.MaxInt32},
		{-1, 0}, {math.MinInt64, -9}, {10, -10}, {100_000_000_000_000_000, -26}, {1, -28}, {9223372036, 0},
		{9223372037, 0}, {1_000_000_000_000_000_000, -28},
	} {
		f.Add(c.coef, c.exp)
	}
	f.Fuzz(func(t *testing.T, coef int64, exp int32) {
		d := decimal.New(coef, exp)
		start := time.Now()
		n, err := ToNanos(d)
		if el := time.Since(start); el > 2*quickly {
			t.Errorf("ToNanos(%de%d) took %v", coef, exp, el)
		}
		// The rule in words: below 10^(-9-19) the amount is no whole number
		// of nanos unless the coefficient is a multiple of 10^20, which no
		// non-zero int64 is.
		if coef != 0 && int64(exp) < -Places-19 && err == nil {
			t.Fatalf("ToNanos(%de%d) = %d, accepted a sub-nano amount", coef, exp, n)
		}
		want, ok := toNanosOracle(coef, exp)
		if !ok {
			if !errors.Is(err, ErrInvalidAmount) {
				t.Fatalf("ToNanos(%de%d) = %d, %v; want an error wrapping ErrInvalidAmount", coef, exp, n, err)
			}
		} else {
			if err != nil || n != want {
				t.Fatalf("ToNanos(%de%d) = %d, %v; want %d", coef, exp, n, err, want)
			}
			if !n.Decimal().Equal(d) {
				t.Fatalf("ToNanos(%de%d) = %d, whose Decimal %s differs", coef, exp, n, n.Decimal())
			}
		}
		// The same value with a coefficient too large for int64 takes the
		// slow path and must give the same answer.
		const k = 30
		if int64(exp)-k >= math.MinInt32 {
			scaled := new(big.Int).Mul(big.NewInt(coef), moneyBigPow10(k))
			n2, err2 := ToNanos(decimal.NewFromBigInt(scaled, exp-k))
			if (err2 == nil) != ok || n2 != want {
				t.Fatalf("ToNanos(%s×10^%d) = %d, %v; want %d, ok=%v", scaled, exp-k, n2, err2, want, ok)
			}
		}
	})
}
