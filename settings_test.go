package budget_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/memory"
)

// TestValidateUserID: "." and ".." are refused, as no URL can name them
// (parsers drop them even percent-encoded); other IDs with dots and
// slashes fit one encoded path segment and are valid.
func TestValidateUserID(t *testing.T) {
	for _, id := range []string{"alice", "x//y", "team/../root", "a/.", "./a", ".a", "...", "Zoë"} {
		if err := budget.ValidateUserID(id); err != nil {
			t.Errorf("ValidateUserID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", ".", "..", "a\x00", "a\nb", "\xff", strings.Repeat("a", budget.MaxUserIDLen+1)} {
		if err := budget.ValidateUserID(id); !errors.Is(err, budget.ErrInvalid) {
			t.Errorf("ValidateUserID(%q) = %v, want ErrInvalid", id, err)
		}
	}
	now := t0
	m := testManager(memory.New(), &now, budget.Options{})
	if _, err := m.UpdateSettings(ctx, admin, "..", budget.SettingsUpdate{}); !errors.Is(err, budget.ErrInvalid) {
		t.Errorf("UpdateSettings(\"..\") = %v", err)
	}
}
