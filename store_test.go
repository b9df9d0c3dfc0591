package budget

import (
	"math"
	"testing"
)

func TestAuditQueryBeforeID(t *testing.T) {
	for before, want := range map[int64]int64{0: math.MaxInt64, -3: math.MaxInt64, 1: 1, 42: 42} {
		if got := (AuditQuery{Before: before}).BeforeID(); got != want {
			t.Errorf("Before %d: BeforeID %d, want %d", before, got, want)
		}
	}
}
