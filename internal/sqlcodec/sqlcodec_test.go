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

func TestContains(t *testing.T) {
	if got := Contains(`a%b_c\d`); got != `%a\%b\_c\\d%` {
		t.Errorf("Contains = %q", got)
	}
}
