package budget

import (
	"time"

	"github.com/shopspring/decimal"
)

// AuditType says what an audit entry records.
type AuditType string

// The kinds of audit entries.
const (
	// AuditManualReset: a user or an admin reset a budget by hand.
	AuditManualReset AuditType = "manual"
	// AuditAutomaticReset: a period ended and the next began.
	AuditAutomaticReset AuditType = "automatic"
	// AuditSettings: a user's settings changed (or were first created by
	// an admin's update).
	AuditSettings AuditType = "settings"
	// AuditDefaults: the defaults for new regular users changed.
	AuditDefaults AuditType = "defaults"
)

// SystemActor is the actor of automatic entries.
const SystemActor = "system"

// AuditEntry is one line of the audit log. Entries are never changed or
// deleted; IDs increase in the order entries are appended.
type AuditEntry struct {
	ID     int64
	UserID string // empty for AuditDefaults
	Type   AuditType
	// Actor is the user ID of who acted, or SystemActor.
	Actor      string
	ActorAdmin bool
	Reason     string
	// PreviousLimit, NewLimit and PreviousSpent describe resets: the limit
	// before and after, and the settled spend in the period that ended.
	// Settings changes carry the limits too.
	PreviousLimit decimal.Decimal
	NewLimit      decimal.Decimal
	PreviousSpent decimal.Decimal
	// PeriodStart and PeriodEnd bound the period a reset ended.
	PeriodStart time.Time
	PeriodEnd   time.Time
	// Before and After are the settings around a settings or defaults
	// change (for defaults, only their Plan is meaningful); nil otherwise.
	Before *Settings
	After  *Settings
	At     time.Time
}

// Clone returns a copy of e that shares nothing mutable with it.
func (e AuditEntry) Clone() AuditEntry {
	if e.Before != nil {
		b := *e.Before
		e.Before = &b
	}
	if e.After != nil {
		a := *e.After
		e.After = &a
	}
	return e
}
