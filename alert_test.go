package budget

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

// alertThresholds builds Thresholds from literals.
func alertThresholds(y, o, r string) Thresholds {
	return Thresholds{decimal.RequireFromString(y), decimal.RequireFromString(o), decimal.RequireFromString(r)}
}

func TestThresholdsValidate(t *testing.T) {
	const (
		yellow = "alert_threshold_yellow"
		orange = "alert_threshold_orange"
		red    = "alert_threshold_red"
	)
	tests := []struct {
		name  string
		th    Thresholds
		field string // "" when valid
	}{
		{"defaults", DefaultThresholds(), ""},
		{"small", alertThresholds("0.01", "0.02", "0.03"), ""},
		{"red at 1000", alertThresholds("75", "90", "1000"), ""},
		{"all near 1000", alertThresholds("999.98", "999.99", "1000"), ""},
		{"above 100", alertThresholds("100", "125", "150"), ""},
		{"two places", alertThresholds("75.5", "90.25", "99.99"), ""},
		{"trailing zeros beyond two places", alertThresholds("75.500", "90.0000", "100.00000000000"), ""},
		{"exact with a huge coefficient", Thresholds{decimal.NewFromBigInt(new(big.Int).Mul(big.NewInt(75), moneyBigPow10(40)), -40), decimal.NewFromInt(90), decimal.NewFromInt(100)}, ""},
		{"zero value", Thresholds{}, yellow},
		{"yellow zero", alertThresholds("0", "90", "100"), yellow},
		{"yellow negative", alertThresholds("-1", "90", "100"), yellow},
		{"orange zero", alertThresholds("75", "0", "100"), orange},
		{"orange negative", alertThresholds("75", "-90", "100"), orange},
		{"red negative", alertThresholds("75", "90", "-100"), red},
		{"red 1000.01", alertThresholds("75", "90", "1000.01"), red},
		{"red 1001", alertThresholds("75", "90", "1001"), red},
		{"yellow 1000.01", alertThresholds("1000.01", "1000.02", "1000.03"), yellow},
		{"yellow three places", alertThresholds("75.125", "90", "100"), yellow},
		{"orange three places", alertThresholds("75", "90.001", "100"), orange},
		{"red three places", alertThresholds("75", "90", "99.999"), red},
		{"red 0.001", alertThresholds("0.0001", "0.0002", "0.001"), yellow},
		{"yellow equals orange", alertThresholds("90", "90", "100"), orange},
		{"orange equals red", alertThresholds("75", "100", "100"), red},
		{"yellow above orange", alertThresholds("95", "90", "100"), orange},
		{"orange above red", alertThresholds("75", "110", "100"), red},
		{"decreasing", alertThresholds("100", "90", "75"), orange},
		{"equal with different exponents", alertThresholds("75", "90", "90.00"), red},
		// Extreme exponents are refused, and at once.
		{"yellow 1e-2147483648", Thresholds{decimal.New(1, math.MinInt32), decimal.NewFromInt(90), decimal.NewFromInt(100)}, yellow},
		{"orange 1e-100000000", Thresholds{decimal.NewFromInt(75), decimal.New(1, -100_000_000), decimal.NewFromInt(100)}, orange},
		{"red 1e2147483647", Thresholds{decimal.NewFromInt(75), decimal.NewFromInt(90), decimal.New(1, math.MaxInt32)}, red},
		{"red 1e100000000", Thresholds{decimal.NewFromInt(75), decimal.NewFromInt(90), decimal.New(1, 100_000_000)}, red},
		{"yellow 1e4", Thresholds{decimal.New(1, 4), decimal.New(2, 4), decimal.New(3, 4)}, yellow},
		{"huge coefficient, tiny exponent", Thresholds{decimal.NewFromBigInt(moneyBigPow10(60), math.MinInt32), decimal.NewFromInt(90), decimal.NewFromInt(100)}, yellow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := tt.th.Validate()
			if el := time.Since(start); el > quickly {
				t.Errorf("Validate took %v", el)
			}
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want a *ValidationError", err)
			}
			if ve.Field != tt.field {
				t.Errorf("Field = %q, want %q (%v)", ve.Field, tt.field, err)
			}
			if ve.Reason == "" {
				t.Error("empty Reason")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
			}
			if errors.Is(err, ErrInvalidAmount) {
				t.Errorf("a threshold error matches ErrInvalidAmount: %v", err)
			}
		})
	}
}

func TestThresholdBasisPoints(t *testing.T) {
	for in, want := range map[string]uint64{"0.01": 1, "75": 7500, "75.5": 7550, "90.25": 9025, "100": 10000, "1000": 100000, "75.500": 7550} {
		if got := basisPoints(decimal.RequireFromString(in)); got != want {
			t.Errorf("basisPoints(%s) = %d, want %d", in, got, want)
		}
	}
}

// thresholdOracle is ceil(limit×bp/10000) capped at MaxNanos, in math/big.
func thresholdOracle(limit Nanos, bp uint64) Nanos {
	x := new(big.Int).Mul(big.NewInt(int64(limit)), new(big.Int).SetUint64(bp))
	x.Add(x, big.NewInt(9999))
	x.Quo(x, big.NewInt(10000))
	if !x.IsInt64() {
		return MaxNanos
	}
	return Nanos(x.Int64())
}

func TestThresholdNanos(t *testing.T) {
	tests := []struct {
		name  string
		limit Nanos
		bp    uint64
		want  Nanos
	}{
		{"zero limit", 0, 7500, 0},
		{"zero limit at 1000%", 0, 100000, 0},
		{"$100 at 75%", 100_000_000_000, 7500, 75_000_000_000},
		{"$100 at 100%", 100_000_000_000, 10000, 100_000_000_000},
		{"$100 at 150%", 100_000_000_000, 15000, 150_000_000_000},
		{"$100 at 0.01%", 100_000_000_000, 1, 10_000_000},
		{"one nano at 75% rounds up", 1, 7500, 1},
		{"one nano at 0.01% rounds up", 1, 1, 1},
		{"one nano at 100%", 1, 10000, 1},
		{"one nano at 100.01%", 1, 10001, 2},
		{"one nano at 1000%", 1, 100000, 10},
		{"3 nanos at 33.33%", 3, 3333, 1},
		{"3 nanos at 66.67%", 3, 6667, 3},
		{"9999 nanos at 0.01%", 9999, 1, 1},
		{"10001 nanos at 0.01%", 10001, 1, 2},
		{"max at 100%", MaxNanos, 10000, MaxNanos},
		{"max at 99.99%", MaxNanos, 9999, 9_222_449_699_651_090_330},
		{"max at 0.01%", MaxNanos, 1, 922_337_203_685_478},
		{"max at 100.01% saturates", MaxNanos, 10001, MaxNanos},
		{"max at 1000% saturates", MaxNanos, 100000, MaxNanos},
		{"half max at 200%", MaxNanos / 2, 20000, MaxNanos - 1},
		{"half max at 200.01% saturates", MaxNanos / 2, 20001, MaxNanos},
		// limit×bp/10000 just below 2^64 with a remainder: q+1 used to
		// wrap around to 0.
		{"quotient 2^64-1 with remainder", 9222910891310210297, 20001, MaxNanos},
		{"quotient 2^64-1 with remainder at 200.02%", 9222449791875588249, 20002, MaxNanos},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if o := thresholdOracle(tt.limit, tt.bp); o != tt.want {
				t.Fatalf("test table disagrees with the oracle: want %d, oracle %d", tt.want, o)
			}
			if got := thresholdNanos(tt.limit, tt.bp); got != tt.want {
				t.Errorf("thresholdNanos(%d, %d) = %d, want %d", tt.limit, tt.bp, got, tt.want)
			}
		})
	}
}

// TestThresholdNanosNearOverflow tries, for every valid threshold, the
// limits around the points where limit×bp crosses k×2^64×10000/bp and the
// 128-bit quotient crosses 2^63 and 2^64.
func TestThresholdNanosNearOverflow(t *testing.T) {
	two64 := new(big.Int).Lsh(big.NewInt(1), 64)
	bounds := []*big.Int{
		new(big.Int).Mul(new(big.Int).Lsh(big.NewInt(1), 63), big.NewInt(10000)),
		new(big.Int).Mul(two64, big.NewInt(10000)),
		new(big.Int).Mul(new(big.Int).Sub(two64, big.NewInt(1)), big.NewInt(10000)),
	}
	failures := 0
	for bp := uint64(1); bp <= 100000; bp++ {
		for _, b := range bounds {
			l0 := new(big.Int).Quo(b, new(big.Int).SetUint64(bp))
			for d := int64(-2); d <= 2; d++ {
				l := new(big.Int).Add(l0, big.NewInt(d))
				if !l.IsInt64() || l.Sign() < 0 {
					continue
				}
				limit := Nanos(l.Int64())
				if got, want := thresholdNanos(limit, bp), thresholdOracle(limit, bp); got != want {
					if failures++; failures <= 10 {
						t.Errorf("thresholdNanos(%d, %d) = %d, want %d", limit, bp, got, want)
					}
				}
			}
		}
	}
	if failures > 10 {
		t.Errorf("… and %d more", failures-10)
	}
}

func TestThresholdNanosRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		var limit Nanos
		switch i % 3 {
		case 0:
			limit = Nanos(r.Int64())
		case 1:
			limit = Nanos(r.Int64N(1 << 40))
		default:
			limit = Nanos(r.Int64N(100000))
		}
		bp := 1 + r.Uint64N(100000)
		if got, want := thresholdNanos(limit, bp), thresholdOracle(limit, bp); got != want {
			t.Fatalf("thresholdNanos(%d, %d) = %d, want %d", limit, bp, got, want)
		}
	}
}

// alertPolicy is the Policy the Manager computes for a limit and
// thresholds, with enforcement on.
func alertPolicy(t testing.TB, limit string, th Thresholds) Policy {
	t.Helper()
	if err := th.Validate(); err != nil {
		t.Fatal(err)
	}
	n, err := ToNanos(decimal.RequireFromString(limit))
	if err != nil {
		t.Fatal(err)
	}
	p := Policy{Limit: n, Enforce: true}
	for i, d := range []decimal.Decimal{th.Yellow, th.Orange, th.Red} {
		p.Levels[i] = thresholdNanos(n, basisPoints(d))
	}
	return p
}

func TestPolicyLevel(t *testing.T) {
	const dollar = Nanos(1_000_000_000)
	hundred := alertPolicy(t, "100", DefaultThresholds())
	zero := alertPolicy(t, "0", DefaultThresholds())
	over := alertPolicy(t, "10", alertThresholds("50", "100", "150"))
	tiny := alertPolicy(t, "0.000000003", alertThresholds("33.33", "66.66", "100"))
	max := alertPolicy(t, "9223372036.854775807", alertThresholds("50", "100", "1000"))
	tests := []struct {
		name  string
		p     Policy
		spent Nanos
		want  Level
	}{
		{"nothing spent", hundred, 0, Green},
		{"negative spend", hundred, -1, Green},
		{"one nano", hundred, 1, Green},
		{"just below yellow", hundred, 75*dollar - 1, Green},
		{"exactly yellow", hundred, 75 * dollar, Yellow},
		{"just below orange", hundred, 90*dollar - 1, Yellow},
		{"exactly orange", hundred, 90 * dollar, Orange},
		{"just below red", hundred, 100*dollar - 1, Orange},
		{"exactly red", hundred, 100 * dollar, Red},
		{"over the limit", hundred, 250 * dollar, Red},
		{"max spend", hundred, MaxNanos, Red},
		{"zero limit, nothing spent", zero, 0, Green},
		{"zero limit, one nano", zero, 1, Red},
		{"zero limit, max", zero, MaxNanos, Red},
		{"thresholds over 100%: at the limit", over, 10 * dollar, Orange},
		{"thresholds over 100%: just below 150%", over, 15*dollar - 1, Orange},
		{"thresholds over 100%: exactly 150%", over, 15 * dollar, Red},
		{"thresholds over 100%: exactly 50%", over, 5 * dollar, Yellow},
		{"3 nanos: 1 reaches 33.33%", tiny, 1, Yellow},
		{"3 nanos: 2 reaches 66.66%", tiny, 2, Orange},
		{"3 nanos: 2 is below 66.67%", alertPolicy(t, "0.000000003", alertThresholds("33.33", "66.67", "100")), 2, Yellow},
		{"3 nanos: 3 is red", tiny, 3, Red},
		{"max limit: half", max, MaxNanos/2 + 1, Yellow},
		{"max limit: just below half", max, MaxNanos / 2, Green},
		{"max limit: just below the limit", max, MaxNanos - 1, Yellow},
		// 1000% of MaxNanos saturates at MaxNanos: the most anyone can spend.
		{"max limit: at the limit, red saturated", max, MaxNanos, Red},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Level(tt.spent); got != tt.want {
				t.Errorf("Level(%d) = %v, want %v (levels %v)", tt.spent, got, tt.want, tt.p.Levels)
			}
		})
	}
}

// TestPolicyLevelOracle checks Level against its definition: the highest
// level whose threshold spent×10000 ≥ limit×bp reaches, in math/big.
func TestPolicyLevelOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 20000; i++ {
		y := 1 + r.Uint64N(99998)
		o := y + 1 + r.Uint64N(99999-y)
		rd := o + 1 + r.Uint64N(100000-o)
		th := Thresholds{decimal.New(int64(y), -2), decimal.New(int64(o), -2), decimal.New(int64(rd), -2)}
		limit := Nanos(r.Int64N(1 << uint(1+r.IntN(40))))
		p := alertPolicy(t, limit.String(), th)
		var spent Nanos
		switch r.IntN(3) {
		case 0: // near a threshold
			bp := []uint64{y, o, rd}[r.IntN(3)]
			spent = thresholdOracle(limit, bp) + Nanos(r.Int64N(3)-1)
		case 1:
			spent = Nanos(r.Int64N(int64(limit)*11 + 2))
		default:
			spent = Nanos(r.Int64N(10))
		}
		want := Green
		if spent > 0 {
			for l, bp := range []uint64{y, o, rd} {
				lhs := new(big.Int).Mul(big.NewInt(int64(spent)), big.NewInt(10000))
				rhs := new(big.Int).Mul(big.NewInt(int64(limit)), new(big.Int).SetUint64(bp))
				if lhs.Cmp(rhs) >= 0 {
					want = Level(l + 1)
				}
			}
		}
		if got := p.Level(spent); got != want {
			t.Fatalf("limit %d, thresholds %v/%v/%v bp, spent %d: Level = %v, want %v", limit, y, o, rd, spent, got, want)
		}
	}
}

func TestPolicyAllows(t *testing.T) {
	const limit = Nanos(100)
	on := Policy{Limit: limit, Enforce: true}
	off := Policy{Limit: limit}
	maxOn := Policy{Limit: MaxNanos, Enforce: true}
	zeroOn := Policy{Limit: 0, Enforce: true}
	tests := []struct {
		name                string
		p                   Policy
		spent, held, amount Nanos
		want                bool
	}{
		{"enforce off, within", off, 10, 10, 10, true},
		{"enforce off, over", off, 100, 100, 100, true},
		{"enforce off, overflowing", off, MaxNanos, MaxNanos, MaxNanos, true},
		{"enforce off, zero limit", Policy{}, 0, 0, 1, true},
		{"nothing", on, 0, 0, 0, true},
		{"all of it as amount", on, 0, 0, 100, true},
		{"exactly the limit", on, 50, 30, 20, true},
		{"one nano over", on, 50, 30, 21, false},
		{"one nano over by amount alone", on, 0, 0, 101, false},
		{"spent already over, zero amount", on, 101, 0, 0, false},
		{"held already at limit, one more", on, 0, 100, 1, false},
		{"zero limit, zero amount", zeroOn, 0, 0, 0, true},
		{"zero limit, one nano", zeroOn, 0, 0, 1, false},
		{"max limit, exactly max", maxOn, MaxNanos - 2, 1, 1, true},
		{"max limit, all held", maxOn, 0, MaxNanos, 0, true},
		{"spent+held overflows", maxOn, MaxNanos, 1, 0, false},
		{"held+amount overflows", maxOn, 0, MaxNanos, 1, false},
		{"spent+amount overflows", maxOn, MaxNanos, 0, 1, false},
		{"everything max", maxOn, MaxNanos, MaxNanos, MaxNanos, false},
		{"wrap-around to a small sum", on, MaxNanos, MaxNanos, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Allows(tt.spent, tt.held, tt.amount); got != tt.want {
				t.Errorf("Allows(%d, %d, %d) with limit %d, enforce %v = %v, want %v",
					tt.spent, tt.held, tt.amount, tt.p.Limit, tt.p.Enforce, got, tt.want)
			}
		})
	}
}

func alertSet(ls ...Level) LevelSet {
	var s LevelSet
	for _, l := range ls {
		s = s.With(l)
	}
	return s
}

func TestPolicyAlerts(t *testing.T) {
	const dollar = Nanos(1_000_000_000)
	hundred := alertPolicy(t, "100", DefaultThresholds())
	zero := alertPolicy(t, "0", DefaultThresholds())
	tests := []struct {
		name   string
		p      Policy
		marked LevelSet
		spent  Nanos
		want   LevelSet
	}{
		{"nothing spent", hundred, 0, 0, 0},
		{"green never fires", hundred, 0, 1, 0},
		{"green never fires, green marked", hundred, alertSet(Green), 74 * dollar, 0},
		{"reach yellow", hundred, 0, 75 * dollar, alertSet(Yellow)},
		{"yellow already marked", hundred, alertSet(Yellow), 80 * dollar, 0},
		{"reach orange after yellow", hundred, alertSet(Yellow), 90 * dollar, alertSet(Orange)},
		{"jump to red", hundred, 0, 100 * dollar, alertSet(Yellow, Orange, Red)},
		{"red after yellow", hundred, alertSet(Yellow), 150 * dollar, alertSet(Orange, Red)},
		{"all marked", hundred, alertSet(Yellow, Orange, Red), 150 * dollar, 0},
		{"only orange marked, at red", hundred, alertSet(Orange), 100 * dollar, alertSet(Yellow, Red)},
		{"red marked but spend back at yellow", hundred, alertSet(Red), 76 * dollar, alertSet(Yellow)},
		{"marked above spend fires nothing new", hundred, alertSet(Yellow, Orange, Red), 1, 0},
		{"zero limit, nothing spent", zero, 0, 0, 0},
		{"zero limit, one nano", zero, 0, 1, alertSet(Yellow, Orange, Red)},
		{"zero limit, one nano, yellow marked", zero, alertSet(Yellow), 1, alertSet(Orange, Red)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.p.Alerts(tt.marked, tt.spent)
			if got != tt.want {
				t.Errorf("Alerts(%v, %d) = %v, want %v", tt.marked.Levels(), tt.spent, got.Levels(), tt.want.Levels())
			}
		})
	}
}

func TestLevelSet(t *testing.T) {
	tests := []struct {
		name string
		set  LevelSet
		want []Level
	}{
		{"empty", 0, nil},
		{"yellow", alertSet(Yellow), []Level{Yellow}},
		{"red then yellow, sorted", alertSet(Red, Yellow), []Level{Yellow, Red}},
		{"all, any order", alertSet(Red, Orange, Yellow), []Level{Yellow, Orange, Red}},
		{"with repeats", alertSet(Orange, Orange), []Level{Orange}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.set.Levels()); diff != "" {
				t.Errorf("Levels() mismatch (-want +got):\n%s", diff)
			}
			for l := Yellow; l <= Red; l++ {
				in := false
				for _, w := range tt.want {
					in = in || w == l
				}
				if tt.set.Has(l) != in {
					t.Errorf("Has(%v) = %v, want %v", l, tt.set.Has(l), in)
				}
			}
		})
	}
}

func TestLevelText(t *testing.T) {
	names := map[Level]string{Green: "green", Yellow: "yellow", Orange: "orange", Red: "red"}
	for l, name := range names {
		t.Run(name, func(t *testing.T) {
			if s := l.String(); s != name {
				t.Errorf("String() = %q, want %q", s, name)
			}
			b, err := l.MarshalText()
			if err != nil || string(b) != name {
				t.Errorf("MarshalText() = %q, %v; want %q", b, err, name)
			}
			var back Level = 99
			if err := back.UnmarshalText([]byte(name)); err != nil || back != l {
				t.Errorf("UnmarshalText(%q) = %v, %v; want %v", name, back, err, l)
			}
			if p, err := ParseLevel(name); err != nil || p != l {
				t.Errorf("ParseLevel(%q) = %v, %v; want %v", name, p, err, l)
			}
			j, err := json.Marshal(struct{ L Level }{l})
			if err != nil || string(j) != `{"L":"`+name+`"}` {
				t.Errorf("json.Marshal = %s, %v", j, err)
			}
			var v struct{ L Level }
			if err := json.Unmarshal(j, &v); err != nil || v.L != l {
				t.Errorf("json.Unmarshal(%s) = %v, %v", j, v.L, err)
			}
		})
	}
	if s := Level(4).String(); s != "Level(4)" {
		t.Errorf("Level(4).String() = %q", s)
	}
	for _, l := range []Level{4, 255} {
		if b, err := l.MarshalText(); err == nil {
			t.Errorf("Level(%d).MarshalText() = %q, want an error", l, b)
		}
	}
	for _, s := range []string{"", "Red", "RED", " red", "red ", "purple", "0", "3", "Level(1)"} {
		t.Run("invalid "+s, func(t *testing.T) {
			if l, err := ParseLevel(s); !errors.Is(err, ErrInvalid) {
				t.Errorf("ParseLevel(%q) = %v, %v; want an error wrapping ErrInvalid", s, l, err)
			}
			l := Orange
			if err := l.UnmarshalText([]byte(s)); err == nil || l != Orange {
				t.Errorf("UnmarshalText(%q) = %v and set %v; want an error and no change", s, err, l)
			}
		})
	}
}

// mulDivOracle is floor(a×b/c) capped at MaxInt64, in math/big.
func mulDivOracle(a, b, c uint64) uint64 {
	x := new(big.Int).Mul(new(big.Int).SetUint64(a), new(big.Int).SetUint64(b))
	x.Quo(x, new(big.Int).SetUint64(c))
	if x.Cmp(big.NewInt(math.MaxInt64)) > 0 {
		return math.MaxInt64
	}
	return x.Uint64()
}

func TestMulDiv(t *testing.T) {
	tests := []struct{ a, b, c, want uint64 }{
		{0, 0, 1, 0},
		{1, 1, 1, 1},
		{7, 10000, 3, 23333},
		{75, 10000, 100, 7500},
		{math.MaxInt64, 10000, math.MaxInt64, 10000},
		{math.MaxInt64, 1, 1, math.MaxInt64},
		{math.MaxInt64 + 1, 1, 1, math.MaxInt64},
		{math.MaxUint64, math.MaxUint64, math.MaxUint64, math.MaxInt64},
		{math.MaxUint64, math.MaxUint64, 1, math.MaxInt64},
		{1 << 63, 1 << 63, 1 << 63, math.MaxInt64},
		{1 << 62, 2, 1, math.MaxInt64},
		{1 << 62, 2, 2, 1 << 62},
		{math.MaxInt64, 2, 2, math.MaxInt64},
		{1, 10000, math.MaxInt64, 0},
	}
	for _, tt := range tests {
		if got := mulDiv(tt.a, tt.b, tt.c); got != tt.want {
			t.Errorf("mulDiv(%d, %d, %d) = %d, want %d", tt.a, tt.b, tt.c, got, tt.want)
		}
		if o := mulDivOracle(tt.a, tt.b, tt.c); o != tt.want {
			t.Errorf("table disagrees with the oracle for (%d, %d, %d): %d", tt.a, tt.b, tt.c, o)
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	pick := func() uint64 {
		switch r.IntN(4) {
		case 0:
			return r.Uint64()
		case 1:
			return r.Uint64N(1 << 32)
		case 2:
			return r.Uint64N(100000)
		default:
			return uint64(math.MaxInt64) - r.Uint64N(4) + r.Uint64N(4)
		}
	}
	for i := 0; i < 500000; i++ {
		a, b, c := pick(), pick(), pick()
		if c == 0 {
			c = 1
		}
		if i%2 == 0 {
			b = 10000 // how percent uses it
		}
		if got, want := mulDiv(a, b, c), mulDivOracle(a, b, c); got != want {
			t.Fatalf("mulDiv(%d, %d, %d) = %d, want %d", a, b, c, got, want)
		}
	}
}
