package budget

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Sentinel errors. Match them with errors.Is; the typed errors below carry
// the details and unwrap to one of these.
var (
	// ErrBudgetExceeded: a Reserve would take an enforced budget past its
	// limit. errors.As gives a *LimitError.
	ErrBudgetExceeded = errors.New("budget: budget exceeded")
	// ErrReservationClosed: the reservation was already settled or released.
	ErrReservationClosed = errors.New("budget: reservation already closed")
	// ErrHoldExpired: Extend found the reservation's hold already expired
	// (it stopped counting at its expiry); Settle still records spend.
	ErrHoldExpired = errors.New("budget: reservation hold expired")
	// ErrDuplicate: a usage with this ID was already recorded for the user.
	ErrDuplicate = errors.New("budget: usage already recorded")
	// ErrInvalidAmount: an amount is negative, has more than 9 decimal
	// places or is too large.
	ErrInvalidAmount = errors.New("budget: invalid amount")
	// ErrInvalid: an argument other than an amount is invalid. errors.As
	// gives a *ValidationError naming the field.
	ErrInvalid = errors.New("budget: invalid argument")
	// ErrForbidden: the principal may not do this. errors.As gives a
	// *PermissionError.
	ErrForbidden = errors.New("budget: forbidden")
	// ErrNotFound: no such user settings, hold or defaults.
	ErrNotFound = errors.New("budget: not found")
	// ErrConflict: the settings changed since they were read (a stale
	// IfVersion, or a store's compare-and-set lost a race).
	ErrConflict = errors.New("budget: conflicting change")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("budget: store closed")
)

// LimitError is the refusal of a Reserve: what the limit is, what is spent and
// held, what was asked for, and when the period ends and the budget frees up.
//
// The figures are those of the budget that refused: the user's own, or
// when one of their teams, their org or a model cap binds, that one's
// (Scope and Pattern name it).
type LimitError struct {
	UserID string
	// Scope is the holder of the budget that refused: the user, a team
	// or an org.
	Scope Scope
	// Pattern is the model cap's pattern when a cap refused.
	Pattern   string
	Limit     decimal.Decimal
	Spent     decimal.Decimal
	Reserved  decimal.Decimal
	Requested decimal.Decimal
	// PeriodEnd is when the refusing budget's period ends and it frees up.
	PeriodEnd time.Time
}

func (e *LimitError) Error() string {
	which := ""
	if e.Scope.Kind != "" && e.Scope != User(e.UserID) {
		which = " by the " + string(e.Scope.Kind) + " " + strconv.Quote(e.Scope.ID) + " budget"
	}
	if e.Pattern != "" {
		which += " cap on " + e.Pattern
	}
	return fmt.Sprintf("budget: budget exceeded for %q%s: limit %s, spent %s, reserved %s, requested %s; the period ends %s",
		e.UserID, which, e.Limit, e.Spent, e.Reserved, e.Requested, e.PeriodEnd.Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrBudgetExceeded) true.
func (e *LimitError) Is(target error) bool { return target == ErrBudgetExceeded }

// ValidationError says which field of an input is invalid and why. Field
// names follow the JSON contract of the HTTP API (limit_usd, timezone, ...).
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string {
	return "budget: invalid " + e.Field + ": " + e.Reason
}

// Is makes errors.Is(err, ErrInvalid) true, and ErrInvalidAmount for money
// fields.
func (e *ValidationError) Is(target error) bool {
	return target == ErrInvalid || (target == ErrInvalidAmount && (e.Field == "limit_usd" || strings.HasSuffix(e.Field, ".limit_usd")))
}

// LateError is the ErrConflict a store returns for a settings change or a
// reset computed at an instant before the user's current period began: the
// caller's clock lags another process's, or the call was delayed past a
// period's end. Start is when the stored period began; the Manager retries
// with its clock reading no earlier than that.
type LateError struct {
	Start time.Time
}

func (e *LateError) Error() string {
	return "budget: conflicting change: computed before the current period began at " + e.Start.Format(time.RFC3339Nano)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *LateError) Is(target error) bool { return target == ErrConflict }

// PermissionError says what a principal was refused and why.
type PermissionError struct {
	Action string // view, update, reset or administer
	Field  string // for updates, the first field the principal may not change
	Reason string
	// Hidden is true when the refusal is because an admin hid the budget.
	Hidden bool
}

func (e *PermissionError) Error() string {
	s := "budget: forbidden to " + e.Action
	if e.Field != "" {
		s += " " + e.Field
	}
	return s + ": " + e.Reason
}

// Is makes errors.Is(err, ErrForbidden) true.
func (e *PermissionError) Is(target error) bool { return target == ErrForbidden }
