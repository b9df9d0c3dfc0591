package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/llmbudget/budget"
)

func init() {
	cases = append(cases, []struct {
		name string
		run  func(*testing.T, budget.Store)
	}{
		{"ForecastFromRollups", testForecastFromRollups},
		{"ProjectionAlertOnce", testProjectionAlertOnce},
	}...)
}

// testForecastFromRollups checks a forecast's figures on the store: the
// pace window's spend comes from its rollups, from a quarter hour, up to
// now included.
func testForecastFromRollups(t *testing.T, s budget.Store) {
	now := time.Date(2026, 11, 16, 12, 7, 0, 0, time.UTC)
	c := NewClock(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	m := newManager(s, c, budget.Options{})
	configure(t, m, "u", limit("30"))
	from := time.Date(2026, 11, 9, 12, 0, 0, 0, time.UTC)          // now − 7 days, on the quarter hour
	recordAt(t, m, c, "u", from.Add(-time.Nanosecond), "a", "100") // before the window
	recordAt(t, m, c, "u", from, "a", "3")
	recordAt(t, m, c, "u", now.Add(-time.Minute), "a", "2")
	recordAt(t, m, c, "u", now, "a", "2")
	st := status(t, m, "u")
	f := st.Forecast
	if f == nil || !f.PaceFrom.Equal(from) || !f.PaceTo.Equal(now) {
		t.Fatalf("forecast %+v", f)
	}
	wantMoney(t, "pace spend", f.PaceSpend, "7")
	// 7 over 7 days and 7 minutes, per day: 7 × 1440 / 10087, rounded down.
	wantMoney(t, "per day", f.PerDay, "0.999306037")
	if !f.Exceeds || f.LimitAt == nil || !f.LimitAt.Equal(now) {
		t.Errorf("spent %s of 30: exceeds %v, limit at %v", st.Spent, f.Exceeds, f.LimitAt)
	}
}

// testProjectionAlertOnce checks that the projection alert fires once per
// period however many Managers and Status calls race to report it.
func testProjectionAlertOnce(t *testing.T, s budget.Store) {
	c := NewClock(time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC))
	var mu sync.Mutex
	var got []budget.Alert
	opts := budget.Options{AlertOnProjection: true, OnAlert: func(a budget.Alert) {
		mu.Lock()
		got = append(got, a)
		mu.Unlock()
	}}
	m1, m2 := newManager(s, c, opts), newManager(s, c, opts)
	configure(t, m1, "u", limit("100"))
	record(t, m1, "u", "x", "20")
	c.Advance(24 * time.Hour)
	errs := parallel(16, func(i int) error {
		m := m1
		if i%2 == 1 {
			m = m2
		}
		_, err := m.Status(ctx, "u")
		return err
	})
	if n := succeeded(t, errs, nil); n != 16 {
		t.Fatalf("%d of 16 statuses", n)
	}
	if len(got) != 1 || got[0].Kind != budget.AlertProjection {
		t.Fatalf("alerts %+v, want one projection alert", got)
	}
	// A reset starts a period: the alert may fire again.
	if _, err := m1.Reset(ctx, admin, "u", budget.ResetOptions{}); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Hour)
	record(t, m1, "u", "y", "10")
	status(t, m2, "u")
	status(t, m1, "u")
	if len(got) != 2 || got[1].Kind != budget.AlertProjection {
		t.Fatalf("alerts %+v, want a second projection alert after the reset", got)
	}
}
