package budget

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

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

// HistoryQuery selects usage of one user.
type UsageQuery struct {
	UserID string
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
func (m *Manager) History(ctx context.Context, q UsageQuery) (UsagePage, error) {
	if err := ValidateUserID(q.UserID); err != nil {
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
func (m *Manager) Breakdown(ctx context.Context, userID string, from, to time.Time) (Breakdown, error) {
	if err := ValidateUserID(userID); err != nil {
		return Breakdown{}, err
	}
	if from.IsZero() != to.IsZero() {
		return Breakdown{}, &ValidationError{Field: "from", Reason: "give both from and to, or neither for the current period"}
	}
	if from.IsZero() {
		st, err := m.Status(ctx, userID)
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
	// Search keeps users whose ID contains it, ignoring case.
	Search string
	// Level, when set, keeps users at that alert level.
	Level *Level
	// Cursor continues from a previous page's Next.
	Cursor string
	// Limit is the page size: 1 to 500, default 50.
	Limit int
}

// UserStatus is one user's settings and status.
type UserStatus struct {
	Settings Settings
	Status   Status
}

// Summary totals every user with settings, whatever the query's filters.
type Summary struct {
	Users      int
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
func (m *Manager) ListUsers(ctx context.Context, actor Principal, q UserQuery) (UserPage, error) {
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
		if err != nil || ValidateUserID(string(b)) != nil {
			return UserPage{}, &ValidationError{Field: "cursor", Reason: "not a cursor this query returned"}
		}
		after = string(b)
	}
	if len(q.Search) > MaxUserIDLen {
		return UserPage{}, &ValidationError{Field: "q", Reason: "must be at most 256 bytes"}
	}
	now := m.now()
	var (
		page                   UserPage
		totalLimit, totalSpent Nanos
		last                   string
	)
	for {
		accts, err := m.store.Accounts(ctx, AccountsQuery{Search: q.Search, After: last, Limit: accountBatch, Now: now})
		if err != nil {
			return UserPage{}, fmt.Errorf("budget: listing users: %w", err)
		}
		for _, a := range accts {
			st, p, t, err := m.accountStatus(ctx, a, now)
			if err != nil {
				return UserPage{}, err
			}
			var okLimit, okSpent bool
			totalLimit, okLimit = totalLimit.Add(p.Limit)
			totalSpent, okSpent = totalSpent.Add(t.Spent)
			if !okLimit || !okSpent {
				return UserPage{}, fmt.Errorf("budget: listing users: totals exceed %s", MaxNanos)
			}
			page.Summary.Users++
			if t.Spent > 0 && t.Spent >= p.Limit {
				page.Summary.OverBudget++
			}
			if a.Settings.UserID <= after || (q.Level != nil && st.Level != *q.Level) {
				continue
			}
			if len(page.Users) == n {
				page.Next = base64.RawURLEncoding.EncodeToString([]byte(page.Users[n-1].Settings.UserID))
				continue
			}
			page.Users = append(page.Users, UserStatus{Settings: withPeriod(a.Settings, t.Window), Status: st})
		}
		if len(accts) < accountBatch {
			break
		}
		last = accts[len(accts)-1].Settings.UserID
	}
	page.Summary.TotalLimit, page.Summary.TotalSpent = totalLimit.Decimal(), totalSpent.Decimal()
	return page, nil
}

// accountStatus returns the status of an account read in bulk, asking the
// store for fresh totals only when the stored window is not the current one.
func (m *Manager) accountStatus(ctx context.Context, a Account, now time.Time) (Status, Policy, Totals, error) {
	p, err := m.policy(a.Settings, now)
	if err != nil {
		return Status{}, Policy{}, Totals{}, err
	}
	c, t := &cached{a.Settings, p}, a.Totals
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

// AuditLog returns audit entries, newest first: userID's, or every entry
// (all users and the defaults) when userID is empty. It is for admins;
// anyone else gets ErrForbidden.
func (m *Manager) AuditLog(ctx context.Context, actor Principal, userID, cursor string, limit int) (AuditPage, error) {
	if err := CanAdminister(actor); err != nil {
		return AuditPage{}, err
	}
	if userID != "" {
		if err := ValidateUserID(userID); err != nil {
			return AuditPage{}, err
		}
	}
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
	entries, err := m.store.Audit(ctx, AuditQuery{UserID: userID, Before: before, Limit: n + 1})
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
