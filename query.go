package budget

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"math/big"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// Page sizes for the queries.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

func pageSize(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultPageSize, nil
	case n < 1 || n > MaxPageSize:
		return 0, &ValidationError{Field: "limit", Reason: "must be from 1 to 500"}
	}
	return n, nil
}

func checkRange(from, to time.Time) error {
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return &ValidationError{Field: "from", Reason: "must be before to"}
	}
	return nil
}

// UsageRecord is one recorded usage, as History returns it.
type UsageRecord struct {
	ID            string
	UserID        string
	ReservationID string // empty for Record
	Provider      string
	Model         string
	InputTokens   int64
	OutputTokens  int64
	Cost          decimal.Decimal
	At            time.Time
}

// UsageQuery selects usage of one user, or of one team or org.
type UsageQuery struct {
	UserID string
	// Scope, instead of UserID, selects the usage charged to a team or an
	// org (or a user: then it is UserID). Its records name the user who
	// spent in UserID.
	Scope Scope
	// From and To bound the time range [From, To); zero means unbounded.
	From, To time.Time
	// Cursor continues from a previous page's Next.
	Cursor string
	// Limit is the page size: 1 to 500, default 50.
	Limit int
}

// UsagePage is a page of usage history, newest first.
type UsagePage struct {
	Records []UsageRecord
	// Next is the cursor of the next page; empty on the last page.
	Next string
}

// History returns a user's usage, newest first, one page at a time. It reads
// history whatever the budget's visibility: call CanView first when acting
// for someone.
func (m *Manager) History(ctx context.Context, q UsageQuery) (_ UsagePage, err error) {
	ctx, span := m.tel.start(ctx, spanHistory, q.UserID, nil)
	defer m.tel.end(span, &err)
	if q.UserID, err = keyOf(q.UserID, q.Scope); err != nil {
		return UsagePage{}, err
	}
	n, err := pageSize(q.Limit)
	if err != nil {
		return UsagePage{}, err
	}
	if err := checkRange(q.From, q.To); err != nil {
		return UsagePage{}, err
	}
	p, err := m.store.History(ctx, HistoryQuery{UserID: q.UserID, From: q.From, To: q.To, Cursor: q.Cursor, Limit: n})
	if err != nil {
		return UsagePage{}, fmt.Errorf("budget: history of %q: %w", q.UserID, err)
	}
	out := UsagePage{Records: make([]UsageRecord, len(p.Rows)), Next: p.Next}
	for i, r := range p.Rows {
		if user, id, ok := SplitUsageKeyID(r.ID); ok && strings.Contains(q.UserID, keySep) {
			r.UserID, r.ID = user, id // a row charged to a team or org: whose it is
		}
		out.Records[i] = UsageRecord{
			ID: r.ID, UserID: r.UserID, ReservationID: r.HoldID, Provider: r.Provider, Model: r.Model,
			InputTokens: r.InputTokens, OutputTokens: r.OutputTokens, Cost: r.Cost.Decimal(), At: r.At,
		}
	}
	return out, nil
}

// BreakdownItem is the spend of one provider or one model.
type BreakdownItem struct {
	Provider     string // set in ByProvider and ByModel
	Model        string // set in ByModel only
	Cost         decimal.Decimal
	Requests     int64
	InputTokens  int64
	OutputTokens int64
}

// Breakdown is a user's spend in a range, by provider and by model, each
// sorted by cost, highest first.
type Breakdown struct {
	UserID     string
	From, To   time.Time
	Total      BreakdownItem
	ByProvider []BreakdownItem
	ByModel    []BreakdownItem
}

// Breakdown returns userID's spend by provider and by model in [from, to),
// or in the current period when both are zero.
func (m *Manager) Breakdown(ctx context.Context, userID string, from, to time.Time) (_ Breakdown, err error) {
	if err := ValidateUserID(userID); err != nil {
		return Breakdown{}, err
	}
	return m.BudgetBreakdown(ctx, User(userID), from, to)
}

// BudgetBreakdown is Breakdown for the spend charged to any budget holder:
// a user, a team or an org, in its own period when from and to are zero.
// Its UserID is the holder's key (see Scope.Key).
func (m *Manager) BudgetBreakdown(ctx context.Context, scope Scope, from, to time.Time) (_ Breakdown, err error) {
	ctx, span := m.tel.start(ctx, spanBreakdown, scope.String(), nil)
	defer m.tel.end(span, &err)
	if err := scope.Validate(); err != nil {
		return Breakdown{}, err
	}
	userID := scope.Key()
	if from.IsZero() != to.IsZero() {
		return Breakdown{}, &ValidationError{Field: "from", Reason: "give both from and to, or neither for the current period"}
	}
	if from.IsZero() {
		st, err := m.BudgetStatus(ctx, scope)
		if err != nil {
			return Breakdown{}, err
		}
		from, to = st.PeriodStart, st.PeriodEnd
	}
	if err := checkRange(from, to); err != nil {
		return Breakdown{}, err
	}
	groups, err := m.store.Breakdown(ctx, BreakdownQuery{UserID: userID, From: from, To: to})
	if err != nil {
		return Breakdown{}, fmt.Errorf("budget: breakdown of %q: %w", userID, err)
	}
	type key struct{ provider, model string }
	type sum struct {
		cost                    Nanos
		requests, input, output int64
	}
	var total sum
	byProvider, byModel := map[string]*sum{}, map[key]*sum{}
	add := func(s *sum, g UsageGroup) error {
		c, ok := s.cost.Add(g.Cost)
		if !ok {
			return fmt.Errorf("budget: breakdown of %q: sum exceeds %s", userID, MaxNanos)
		}
		s.cost, s.requests, s.input, s.output = c, s.requests+g.Requests, s.input+g.InputTokens, s.output+g.OutputTokens
		return nil
	}
	for _, g := range groups {
		if byProvider[g.Provider] == nil {
			byProvider[g.Provider] = &sum{}
		}
		k := key{g.Provider, g.Model}
		if byModel[k] == nil {
			byModel[k] = &sum{}
		}
		for _, s := range [...]*sum{&total, byProvider[g.Provider], byModel[k]} {
			if err := add(s, g); err != nil {
				return Breakdown{}, err
			}
		}
	}
	item := func(provider, model string, s *sum) BreakdownItem {
		return BreakdownItem{Provider: provider, Model: model, Cost: s.cost.Decimal(), Requests: s.requests, InputTokens: s.input, OutputTokens: s.output}
	}
	b := Breakdown{UserID: userID, From: from, To: to, Total: item("", "", &total)}
	for p, s := range byProvider {
		b.ByProvider = append(b.ByProvider, item(p, "", s))
	}
	for k, s := range byModel {
		b.ByModel = append(b.ByModel, item(k.provider, k.model, s))
	}
	byCost := func(a, b BreakdownItem) int {
		if c := b.Cost.Cmp(a.Cost); c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(a.Provider, b.Provider), strings.Compare(a.Model, b.Model))
	}
	slices.SortFunc(b.ByProvider, byCost)
	slices.SortFunc(b.ByModel, byCost)
	return b, nil
}

// UserQuery selects users for ListUsers.
type UserQuery struct {
	// Search keeps users whose ID contains it, ignoring case by Unicode
	// simple case folding ("ZOË" finds "zoë"), the same on every store. It
	// is at most 256 bytes of UTF-8 without control characters.
	Search string
	// Level, when set, keeps users at that alert level.
	Level *Level
	// ProjectedOver keeps only those whose Forecast projects their spend
	// past their limit by the end of the period (Forecast.Exceeds). It
	// costs one read of the pace rollups per holder the other filters
	// keep.
	ProjectedOver bool
	// Cursor continues from a previous page's Next.
	Cursor string
	// Limit is the page size: 1 to 500, default 50.
	Limit int
}

// validate checks the filters of q (not its paging).
func (q UserQuery) validate() error {
	if len(q.Search) > MaxUserIDLen || !utf8.ValidString(q.Search) || strings.ContainsFunc(q.Search, isControl) {
		return &ValidationError{Field: "q", Reason: "must be at most 256 bytes of UTF-8 without control characters"}
	}
	if q.Level != nil && (*q.Level < Green || *q.Level > Red) {
		return &ValidationError{Field: "level", Reason: "must be green, yellow, orange or red"}
	}
	return nil
}

// UserStatus is one user's settings and status.
type UserStatus struct {
	Settings Settings
	Status   Status
}

// Summary totals every user with settings, whatever the query's filters:
// it describes the whole organisation, not the page.
type Summary struct {
	Users int
	// TotalLimit and TotalSpent are exact sums, however large.
	TotalLimit decimal.Decimal
	TotalSpent decimal.Decimal
	// OverBudget counts users who have spent their whole limit or more.
	OverBudget int
}

// UserPage is a page of users in user ID order, with the summary.
type UserPage struct {
	Users   []UserStatus
	Next    string
	Summary Summary
}

// accountBatch is how many accounts ListUsers reads from the store at once.
const accountBatch = 500

// ListUsers returns users with settings and their status, for admins
// (anyone else gets ErrForbidden). It reads every account to compute the
// summary, so its cost grows with the number of users, not with history.
func (m *Manager) ListUsers(ctx context.Context, actor Principal, q UserQuery) (_ UserPage, err error) {
	return m.ListBudgets(ctx, actor, UserScope, q)
}

// ListBudgets is ListUsers for the holders of one kind: users, teams or
// orgs, in key order, with the summary of that kind. Search matches the
// holder's ID; each entry's Settings.Scope names it.
func (m *Manager) ListBudgets(ctx context.Context, actor Principal, kind ScopeKind, q UserQuery) (_ UserPage, err error) {
	ctx, span := m.tel.start(ctx, spanListUsers, "", &actor)
	defer m.tel.end(span, &err)
	if err := (Scope{kind, "x"}).Validate(); err != nil {
		return UserPage{}, err
	}
	if err := CanAdminister(actor); err != nil {
		return UserPage{}, err
	}
	n, err := pageSize(q.Limit)
	if err != nil {
		return UserPage{}, err
	}
	after := ""
	if q.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		if sc, pat := ScopeOfKey(string(b)); err != nil || sc.Kind != kind || pat != "" || sc.Validate() != nil {
			return UserPage{}, &ValidationError{Field: "cursor", Reason: "not a cursor this query returned"}
		}
		after = string(b)
	}
	if err := q.validate(); err != nil {
		return UserPage{}, err
	}
	var page UserPage
	sum := summer{}
	err = m.eachAccountOf(ctx, kind, func(u UserStatus, p Policy, t Totals) error {
		sum.add(p, t)
		if u.Settings.UserID <= after || !q.matches(u) {
			return nil
		}
		if q.ProjectedOver {
			f, err := m.forecast(ctx, &cached{s: u.Settings, p: p}, t.Spent, p.Window.End, m.now())
			if err != nil {
				return err
			}
			if !f.Exceeds {
				return nil
			}
		}
		if len(page.Users) == n {
			page.Next = base64.RawURLEncoding.EncodeToString([]byte(page.Users[n-1].Settings.UserID))
			return nil
		}
		page.Users = append(page.Users, u)
		return nil
	})
	if err != nil {
		return UserPage{}, err
	}
	page.Summary = sum.summary()
	return page, nil
}

// matches reports whether u passes q's filters.
func (q UserQuery) matches(u UserStatus) bool {
	return (q.Level == nil || u.Status.Level == *q.Level) &&
		(q.Search == "" || strings.Contains(foldCase(u.Settings.Scope().ID), foldCase(q.Search)))
}

// foldCase maps every rune of s to the smallest rune of its Unicode simple
// case folding orbit, so that two strings equal under simple folding map to
// the same string and a substring test on the results ignores case.
func foldCase(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		b.WriteRune(min)
	}
	return b.String()
}

// summer adds up a Summary over accounts, exactly: limits and spend are
// never negative, and their sums are kept in 128 bits, which no number of
// accounts can overflow.
type summer struct {
	users, over  int
	limit, spent nanoSum
}

func (s *summer) add(p Policy, t Totals) {
	s.users++
	if t.Spent > 0 && t.Spent >= p.Limit {
		s.over++
	}
	s.limit.add(p.Limit)
	s.spent.add(t.Spent)
}

func (s *summer) summary() Summary {
	return Summary{Users: s.users, OverBudget: s.over, TotalLimit: s.limit.decimal(), TotalSpent: s.spent.decimal()}
}

// nanoSum is an unsigned 128-bit sum of non-negative amounts.
type nanoSum struct{ hi, lo uint64 }

func (s *nanoSum) add(n Nanos) {
	var carry uint64
	s.lo, carry = bits.Add64(s.lo, uint64(n), 0)
	s.hi += carry
}

func (s nanoSum) decimal() decimal.Decimal {
	v := new(big.Int).SetUint64(s.hi)
	v.Lsh(v, 64).Or(v, new(big.Int).SetUint64(s.lo))
	return decimal.NewFromBigInt(v, -Places)
}

// eachAccount calls fn with every account that has settings, in user ID
// order, with its current status, policy and totals.
func (m *Manager) eachAccount(ctx context.Context, fn func(UserStatus, Policy, Totals) error) error {
	return m.eachAccountOf(ctx, UserScope, fn)
}

// eachAccountOf is eachAccount for the holders of one kind.
func (m *Manager) eachAccountOf(ctx context.Context, kind ScopeKind, fn func(UserStatus, Policy, Totals) error) error {
	now := m.now()
	return m.accountsOf(ctx, kind, now, func(a Account) error {
		st, p, t, err := m.accountStatus(ctx, a, now)
		if err != nil {
			return err
		}
		return fn(UserStatus{Settings: withPeriod(a.Settings, t.Window), Status: st}, p, t)
	})
}

// eachSettings calls fn with the settings of every user who has some, in
// user ID order, as stored: without their status.
func (m *Manager) eachSettings(ctx context.Context, fn func(Settings) error) error {
	return m.accounts(ctx, m.now(), func(a Account) error { return fn(a.Settings) })
}

// accounts calls fn with every account the store holds, in user ID order,
// reading them in batches.
func (m *Manager) accounts(ctx context.Context, now time.Time, fn func(Account) error) error {
	return m.accountsOf(ctx, UserScope, now, fn)
}

// accountsOf is accounts for the holders of one kind.
func (m *Manager) accountsOf(ctx context.Context, kind ScopeKind, now time.Time, fn func(Account) error) error {
	last := ""
	for {
		accts, err := m.store.Accounts(ctx, AccountsQuery{Kind: kind, After: last, Limit: accountBatch, Now: now})
		if err != nil {
			return fmt.Errorf("budget: listing users: %w", err)
		}
		for _, a := range accts {
			if err := fn(a); err != nil {
				return err
			}
		}
		if len(accts) < accountBatch {
			return nil
		}
		last = accts[len(accts)-1].Settings.UserID
	}
}

// accountStatus returns the status of an account read in bulk, asking the
// store for fresh totals only when the stored window is not the current one.
func (m *Manager) accountStatus(ctx context.Context, a Account, now time.Time) (Status, Policy, Totals, error) {
	p, err := m.policy(a.Settings, now)
	if err != nil {
		return Status{}, Policy{}, Totals{}, err
	}
	c, t := &cached{s: a.Settings, p: p}, a.Totals
	if !t.Window.Equal(p.Window) {
		c, err = m.withPolicy(ctx, a.Settings.UserID, now, func(c *cached) (err error) {
			t, err = m.store.Totals(ctx, TotalsRequest{UserID: a.Settings.UserID, Policy: c.p, Now: now})
			return err
		})
		if err != nil {
			return Status{}, Policy{}, Totals{}, fmt.Errorf("budget: status of %q: %w", a.Settings.UserID, err)
		}
	}
	st := newStatus(c, t)
	m.fire(st, t.Alerts, now)
	return st, c.p, t, nil
}

// AuditPage is a page of the audit log, newest first.
type AuditPage struct {
	Entries []AuditEntry
	Next    string
}

// AuditLogQuery selects a page of the audit log.
type AuditLogQuery struct {
	// UserID keeps one user's entries; empty keeps every entry (all users,
	// the defaults and the templates).
	UserID string
	// Scope keeps the entries of one budget holder, a team's or an org's
	// (or a user's: then it is UserID); set at most one of the two.
	Scope Scope
	// Type keeps entries of one type; empty keeps every type.
	Type AuditType
	// Cursor continues from a previous page's Next.
	Cursor string
	// Limit is the page size: 1 to 500, default 50.
	Limit int
}

// AuditLog returns audit entries matching q, newest first. It is for
// admins; anyone else gets ErrForbidden.
func (m *Manager) AuditLog(ctx context.Context, actor Principal, q AuditLogQuery) (_ AuditPage, err error) {
	ctx, span := m.tel.start(ctx, spanAuditLog, q.UserID, &actor)
	defer m.tel.end(span, &err)
	if err := CanAdminister(actor); err != nil {
		return AuditPage{}, err
	}
	if q.UserID != "" {
		if err := ValidateUserID(q.UserID); err != nil {
			return AuditPage{}, err
		}
	}
	if q.Scope != (Scope{}) {
		if q.UserID, err = keyOf(q.UserID, q.Scope); err != nil {
			return AuditPage{}, err
		}
	}
	if q.Type != "" {
		if _, err := ParseAuditType(string(q.Type)); err != nil {
			return AuditPage{}, err
		}
	}
	userID, cursor, limit := q.UserID, q.Cursor, q.Limit
	n, err := pageSize(limit)
	if err != nil {
		return AuditPage{}, err
	}
	var before int64
	if cursor != "" {
		if before, err = strconv.ParseInt(cursor, 10, 64); err != nil || before <= 0 {
			return AuditPage{}, &ValidationError{Field: "cursor", Reason: "not a cursor this query returned"}
		}
	}
	entries, err := m.store.Audit(ctx, AuditQuery{UserID: userID, Type: q.Type, Before: before, Limit: n + 1})
	if err != nil {
		return AuditPage{}, fmt.Errorf("budget: audit log: %w", err)
	}
	page := AuditPage{Entries: entries}
	if len(entries) > n {
		page.Entries = entries[:n]
		page.Next = strconv.FormatInt(entries[n-1].ID, 10)
	}
	return page, nil
}

// keyOf returns the key a query selects: userID's, or scope's when userID
// is empty; one of them must be set, not both.
func keyOf(userID string, scope Scope) (string, error) {
	switch {
	case scope == (Scope{}):
		return userID, ValidateUserID(userID)
	case userID != "":
		return "", &ValidationError{Field: "scope", Reason: "give a user ID or a scope, not both"}
	}
	return scope.Key(), scope.Validate()
}
