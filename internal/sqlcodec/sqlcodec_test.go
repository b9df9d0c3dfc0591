package sqlcodec

import (
	"fmt"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/shopspring/decimal"
)

func TestSplit(t *testing.T) {
	day := DayNanos
	for _, c := range []struct {
		from, to    int64
		first, last int64
		rows        string
	}{
		{0, day, 0, 1, "[[0 0] [86400000000000 86400000000000]]"},
		{10, day + 10, 0, 0, "[[10 86400000000010]]"},
		{10, 3*day + 10, 1, 3, "[[10 86400000000000] [259200000000000 259200000000010]]"},
		{-day - 5, day, -1, 1, "[[-86400000000005 -86400000000000] [86400000000000 86400000000000]]"},
	} {
		first, last, rows := Split(c.from, c.to)
		if first != c.first || last != c.last || fmt.Sprint(rows) != c.rows {
			t.Errorf("Split(%d, %d) = %d, %d, %v; want %d, %d, %s", c.from, c.to, first, last, rows, c.first, c.last, c.rows)
		}
	}
	if DayOf(-1) != -1 || DayOf(0) != 0 || DayOf(day-1) != 0 {
		t.Error("DayOf does not floor")
	}
}

func TestUnixRange(t *testing.T) {
	for _, y := range []int{1677, 2262} {
		if _, err := Unix(time.Date(y, 6, 1, 0, 0, 0, 0, time.UTC)); err == nil {
			t.Errorf("year %d accepted", y)
		}
	}
	at := time.Date(2026, 11, 27, 1, 2, 3, 456789012, time.UTC)
	n, err := Unix(at)
	if err != nil || !FromUnix(n).Equal(at) {
		t.Errorf("round trip of %v: %v %v", at, FromUnix(n), err)
	}
}

func TestSettingsRoundTrip(t *testing.T) {
	s := &budget.Settings{UserID: "u", Plan: budget.DefaultUserPlan(), Version: 3}
	s.Limit = decimal.RequireFromString("12.345678901")
	b, err := SettingsJSON(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseSettings(b)
	if err != nil || got.UserID != "u" || !got.Limit.Equal(s.Limit) || got.Version != 3 {
		t.Errorf("round trip: %+v %v", got, err)
	}
	if b, _ := SettingsJSON(nil); b != nil {
		t.Error("nil settings encoded")
	}
	if got, _ := ParseSettings(nil); got != nil {
		t.Error("empty input decoded")
	}
	if _, err := ParseSettings([]byte("{")); err == nil {
		t.Error("corrupt JSON accepted")
	}
}

// row is a Scanner over fixed column values, assigned as the drivers would.
type row []any

func (r row) Scan(dest ...any) error {
	if len(dest) != len(r) {
		return fmt.Errorf("%d destinations for %d columns", len(dest), len(r))
	}
	for i, d := range dest {
		switch d := d.(type) {
		case *string:
			*d = r[i].(string)
		case *int64:
			*d = r[i].(int64)
		case *int:
			*d = r[i].(int)
		case *bool:
			*d = r[i].(bool)
		case **int64:
			*d, _ = r[i].(*int64)
		case *[]byte:
			*d, _ = r[i].([]byte)
		default:
			return fmt.Errorf("column %d: cannot scan into %T", i, d)
		}
	}
	return nil
}

func TestScanSettings(t *testing.T) {
	anchor := int64(86400e9)
	cols := row{"u", int64(12_500_000_000), "custom", 10, &anchor, "Europe/Paris", true,
		"50", "75.5", "100", true, false, true, "notes", (*int64)(nil), int64(4), int64(1e9), int64(2e9)}
	s, err := ScanSettings(cols)
	if err != nil {
		t.Fatal(err)
	}
	if s.UserID != "u" || !s.Limit.Equal(decimal.RequireFromString("12.5")) || s.Period != budget.Custom || s.CustomDays != 10 ||
		!s.CustomAnchor.Equal(time.Unix(86400, 0)) || !s.ResetAt.IsZero() || !s.Thresholds.Orange.Equal(decimal.RequireFromString("75.5")) ||
		!s.Enforce || s.CanModify || !s.CanReset || s.AdminNotes != "notes" || s.Version != 4 || !s.UpdatedAt.Equal(time.Unix(2, 0)) {
		t.Errorf("scanned %+v", s)
	}
	cols[8] = "seventy"
	if _, err := ScanSettings(cols); err == nil {
		t.Error("corrupt thresholds accepted")
	}
	extra := append(row{}, cols...)
	extra[8] = "75"
	var n int64
	if _, err := ScanSettings(append(extra, int64(7)), &n); err != nil || n != 7 {
		t.Errorf("extra column: %d, %v", n, err)
	}
}

func TestScanAudit(t *testing.T) {
	after, err := SettingsJSON(&budget.Settings{UserID: "u", Version: 2})
	if err != nil {
		t.Fatal(err)
	}
	start := int64(3e9)
	cols := row{int64(9), "u", string(budget.AuditManualReset), "admin", true, "why", int64(10e9), int64(20e9), int64(5e9),
		&start, (*int64)(nil), []byte(nil), after, "b-1", "intern", int64(4e9)}
	e, err := ScanAudit(cols)
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != 9 || e.Type != budget.AuditManualReset || !e.ActorAdmin || !e.NewLimit.Equal(decimal.NewFromInt(20)) ||
		!e.PreviousSpent.Equal(decimal.NewFromInt(5)) || !e.PeriodStart.Equal(time.Unix(3, 0)) || !e.PeriodEnd.IsZero() ||
		e.Before != nil || e.After == nil || e.After.Version != 2 || e.BulkID != "b-1" || e.Template != "intern" || !e.At.Equal(time.Unix(4, 0)) {
		t.Errorf("scanned %+v", e)
	}
	cols[12] = []byte("{")
	if _, err := ScanAudit(cols); err == nil {
		t.Error("corrupt settings snapshot accepted")
	}
}

func TestScanTemplate(t *testing.T) {
	p := budget.DefaultUserPlan()
	p.Limit = decimal.RequireFromString("5.5")
	p.CanModify = true
	plan, err := PlanJSON(p)
	if err != nil {
		t.Fatal(err)
	}
	cols := row{"intern", plan, int64(3), int64(7e9)}
	tm, err := ScanTemplate(cols)
	if err != nil {
		t.Fatal(err)
	}
	if tm.Name != "intern" || !tm.Plan.Limit.Equal(p.Limit) || !tm.CanModify || tm.Period != p.Period || tm.Version != 3 || !tm.UpdatedAt.Equal(time.Unix(7, 0)) {
		t.Errorf("scanned %+v", tm)
	}
	cols[1] = []byte("[")
	if _, err := ScanTemplate(cols); err == nil {
		t.Error("corrupt plan accepted")
	}
}

// rows is a Rows over fixed rows.
type rows struct {
	all []row
	i   int
}

func (r *rows) Next() bool { r.i++; return r.i <= len(r.all) }

func (r *rows) Scan(dest ...any) error { return r.all[r.i-1].Scan(dest...) }

func TestScanHistory(t *testing.T) {
	usage := func(seq, at int64) row {
		return row{seq, fmt.Sprint("id", seq), "u", "", "openai", "gpt-4o", int64(10), int64(2), seq * 1000, at}
	}
	all := []row{usage(7, 300), usage(5, 200), usage(4, 200)}
	p, err := ScanHistory(&rows{all: all}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rows) != 2 || p.Rows[1].ID != "id5" || p.Rows[1].Cost != 5000 || !p.Rows[1].At.Equal(time.Unix(0, 200)) {
		t.Fatalf("page %+v", p)
	}
	c, err := budget.ParseUsageCursor(p.Next)
	if err != nil || c.At != 200 || c.Seq != 5 {
		t.Errorf("next page after %+v (%v), want at 200, seq 5", c, err)
	}
	for _, limit := range []int{0, 3} {
		if p, err := ScanHistory(&rows{all: all}, limit); err != nil || len(p.Rows) != 3 || p.Next != "" {
			t.Errorf("limit %d: %d rows, next %q, %v; want all 3 and no next page", limit, len(p.Rows), p.Next, err)
		}
	}
}
