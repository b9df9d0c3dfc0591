package budget

import (
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/shopspring/decimal"
)

// Level is a budget's alert level, from settled spend against the limit.
type Level uint8

// The alert levels, in increasing order of severity. A budget is Green below
// its yellow threshold, then Yellow, Orange and Red at or above each
// threshold. A zero limit is Red as soon as anything is spent.
const (
	Green Level = iota
	Yellow
	Orange
	Red
)

var levelNames = [...]string{"green", "yellow", "orange", "red"}

// String returns the level's name: "green", "yellow", "orange" or "red".
func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("Level(%d)", uint8(l))
}

// MarshalText encodes the level as its name.
func (l Level) MarshalText() ([]byte, error) {
	if int(l) >= len(levelNames) {
		return nil, fmt.Errorf("budget: invalid level %d", uint8(l))
	}
	return []byte(levelNames[l]), nil
}

// UnmarshalText decodes a level name.
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// ParseLevel returns the level with the given name.
func ParseLevel(s string) (Level, error) {
	for i, n := range levelNames {
		if n == s {
			return Level(i), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown alert level %q (want green, yellow, orange or red)", ErrInvalid, s)
}

// LevelSet is a set of levels, one bit per level. Stores keep the set of
// levels already alerted in the current window as a LevelSet.
type LevelSet uint8

// Has reports whether l is in the set.
func (s LevelSet) Has(l Level) bool { return s&(1<<l) != 0 }

// With returns the set with l added.
func (s LevelSet) With(l Level) LevelSet { return s | 1<<l }

// Levels returns the alert levels in the set (Yellow, Orange, Red; Green is
// never alerted) in increasing order.
func (s LevelSet) Levels() []Level {
	var out []Level
	for l := Yellow; l <= Red; l++ {
		if s.Has(l) {
			out = append(out, l)
		}
	}
	return out
}

// Thresholds are the alert thresholds in percent of the limit. They must be
// strictly increasing, each in (0, 1000], with at most two decimal places.
type Thresholds struct {
	Yellow, Orange, Red decimal.Decimal
}

// DefaultThresholds are 75, 90 and 100 percent.
func DefaultThresholds() Thresholds {
	return Thresholds{decimal.NewFromInt(75), decimal.NewFromInt(90), decimal.NewFromInt(100)}
}

var (
	maxThreshold = decimal.NewFromInt(1000)
	hundredths   = decimal.New(1, -2)
)

// Validate reports whether the thresholds are usable; the error is a
// *ValidationError naming the offending threshold.
func (t Thresholds) Validate() error {
	named := [...]struct {
		field string
		v     decimal.Decimal
	}{{"alert_threshold_yellow", t.Yellow}, {"alert_threshold_orange", t.Orange}, {"alert_threshold_red", t.Red}}
	for i, n := range named {
		if err := validThreshold(n.field, n.v); err != nil {
			return err
		}
		if i > 0 && !n.v.GreaterThan(named[i-1].v) {
			return &ValidationError{Field: n.field, Reason: "thresholds must increase: yellow < orange < red"}
		}
	}
	return nil
}

// validThreshold reports whether v can be a threshold on its own: in
// (0, 1000] with at most two decimal places.
func validThreshold(field string, v decimal.Decimal) error {
	// Digit counts settle extreme exponents first, so that the decimal
	// comparisons below never expand a number like 1e-2000000000.
	digits, exp := int64(v.NumDigits()), int64(v.Exponent())
	// A value of digits+exp > 4 is at least 10^4; a non-zero coefficient
	// of fewer than -(exp+2) digits is no whole number of hundredths.
	outOfRange := &ValidationError{Field: field, Reason: "must be above 0 and at most 1000 percent"}
	tooFine := &ValidationError{Field: field, Reason: "must have at most 2 decimal places"}
	switch {
	case v.Sign() <= 0 || digits+exp > 4:
		return outOfRange
	case exp+2 < -digits:
		return tooFine
	case v.GreaterThan(maxThreshold):
		return outOfRange
	case !v.Mod(hundredths).IsZero():
		return tooFine
	}
	return nil
}

// basisPoints returns a validated threshold in hundredths of a percent.
func basisPoints(d decimal.Decimal) uint64 {
	return uint64(d.Shift(2).IntPart())
}

// thresholdNanos returns the least spend that reaches bp hundredths of a
// percent of limit: ceil(limit × bp / 10000), exact in 128 bits, capped at
// MaxNanos.
func thresholdNanos(limit Nanos, bp uint64) Nanos {
	hi, lo := bits.Mul64(uint64(limit), bp)
	if hi >= 10000 {
		return MaxNanos
	}
	q, r := bits.Div64(hi, lo, 10000)
	// Saturate before rounding up: q+1 would wrap to 0 when q is 2^64-1
	// (e.g. a limit of 9222910891310210297 at 200.01%).
	if q >= math.MaxInt64 {
		return MaxNanos
	}
	if r != 0 {
		q++
	}
	return Nanos(q)
}

// Alert is what Options.OnAlert receives when a user's settled spend first
// reaches a level in a period.
type Alert struct {
	// Kind says what the alert reports: AlertLevel, a level reached, or,
	// with Options.AlertOnProjection, AlertProjection, the forecast
	// passing the limit.
	Kind AlertKind
	// UserID is the user whose call crossed the level; empty when a
	// settings change did, on a team's or org's budget.
	UserID string
	// Scope is the holder of the budget that crossed it: the user, or
	// one of their teams or their org.
	Scope Scope
	// Pattern is the model cap's pattern when the budget is a cap.
	Pattern string
	Level   Level
	// Status is the budget's status just after the spend that crossed the
	// level.
	Status Status
	At     time.Time
}

// mulDiv returns floor(a×b/c) in 128 bits, saturating at MaxInt64.
func mulDiv(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, c)
	return min(q, math.MaxInt64)
}
