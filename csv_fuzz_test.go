package budget_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/memory"
)

// fuzzManager returns a Manager over a memory store with two users, and
// functions that export its settings and audit log.
func fuzzManager(t *testing.T) (*budget.Manager, func() string) {
	now := t0
	m := testManager(memory.New(), &now, budget.Options{})
	for _, u := range []string{"alice", "bob"} {
		if _, err := m.UpdateSettings(ctx, admin, u, budget.SettingsUpdate{Limit: ptr(budget.MustAmount("10"))}); err != nil {
			t.Fatal(err)
		}
	}
	state := func() string {
		var b bytes.Buffer
		if err := m.ExportSettings(ctx, admin, &b); err != nil {
			t.Fatal(err)
		}
		if err := m.ExportAudit(ctx, admin, &b, budget.AuditLogQuery{}); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	return m, state
}

// checkImport checks what any import must do with any input: never panic;
// a dry run changes nothing; the real run fails exactly when the dry run
// does, with an *ImportError for bad input, and then changes nothing; a
// run that succeeds applied every row, and leaves a file whose export
// imports back with no change.
func checkImport(t *testing.T, run func(*budget.Manager, budget.ImportOptions) (budget.ImportResult, error)) {
	m, state := fuzzManager(t)
	before := state()
	dry, dryErr := run(m, budget.ImportOptions{DryRun: true})
	if state() != before {
		t.Fatalf("a dry run changed the store (err %v)", dryErr)
	}
	res, err := run(m, budget.ImportOptions{})
	if (err == nil) != (dryErr == nil) {
		t.Fatalf("the dry run said %v, the real run %v", dryErr, err)
	}
	if err != nil {
		var ie *budget.ImportError
		if !errors.As(err, &ie) || !errors.Is(err, budget.ErrInvalid) || len(ie.Rows) == 0 || res.Applied {
			t.Fatalf("a failed import: %+v, %v", res, err)
		}
		if state() != before {
			t.Fatalf("a failed import changed the store: %v", err)
		}
		return
	}
	if res.Changed != dry.Changed || len(res.Rows) != len(dry.Rows) {
		t.Fatalf("the dry run reported %d changes in %d rows, the run %d in %d", dry.Changed, len(dry.Rows), res.Changed, len(res.Rows))
	}
	var b bytes.Buffer
	if err := m.ExportSettings(ctx, admin, &b); err != nil {
		t.Fatal(err)
	}
	file := b.String()
	again, err := m.ImportSettings(ctx, admin, bytes.NewReader(b.Bytes()), budget.ImportOptions{})
	if err != nil || again.Changed != 0 {
		t.Fatalf("the export of an import imports back with changes: %+v, %v\n%s", again, err, file)
	}
}

func FuzzImportSettings(f *testing.F) {
	for _, s := range []string{
		"user_id,limit_usd\nalice,20\n",
		"\uFEFFuser_id,limit_usd,timezone,admin_notes\r\nalice,20,Europe/Paris,\"a, \"\"b\"\"\"\r\ncarol,5,,'=1+1\r\n",
		"user_id,budget_period,custom_period_days,custom_period_anchor\nbob,custom,10,2026-01-02T03:04:05Z\n",
		"user_id,alert_threshold_yellow,alert_threshold_orange,alert_threshold_red\nalice,50,60,70\n",
		"user_id,enforce_budget,budget_visible_to_user,user_can_modify_limit,user_can_reset_budget\nalice,TRUE,false,1,0\n",
		"user_id,limit_usd\nalice,abc\n",
		"user_id,limit\nalice,1\n",
		"user_id,limit_usd\nalice\n",
		"user_id,limit_usd\n\"alice,1\n",
		"user_id\na\"b\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkImport(t, func(m *budget.Manager, o budget.ImportOptions) (budget.ImportResult, error) {
			return m.ImportSettings(ctx, admin, bytes.NewReader(data), o)
		})
	})
}

func FuzzImportSeed(f *testing.F) {
	for _, s := range [][2]string{
		{"id,user_id,monthly_limit_usd,budget_period,enforce_budget\n1,carol,29.999999999999996,monthly,1\n", ""},
		{"user_id,monthly_limit_usd,custom_limit_usd,budget_period,current_period_start,current_period_end\nd,1,2,custom,2025-12-01 00:00:00,2025-12-15 00:00:00\n", ""},
		{"user_id,alert_threshold_yellow,alert_threshold_orange\ne,33.333333333333336,66.66666666666667\n", ""},
		{"", "user_id,reset_type,reset_by,previous_limit,new_limit,previous_spent,reason,reset_at\nalice,manual,root,10.0,10.0,1e-05,x,2025-12-14 10:30:00.5\n"},
		{"user_id\nzed\n", "user_id,reset_type,previous_limit,new_limit,previous_spent,reset_at\nzed,automatic,1,1,0,2025-01-01\n"},
		{"user_id,monthly_limit_usd\nx,inf\n", "user_id,reset_type\nalice,manual\n"},
	} {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, settings, resets []byte) {
		checkImport(t, func(m *budget.Manager, o budget.ImportOptions) (budget.ImportResult, error) {
			var sr, rr *bytes.Reader
			if len(settings) > 0 {
				sr = bytes.NewReader(settings)
			}
			if len(resets) > 0 {
				rr = bytes.NewReader(resets)
			}
			// Typed nil readers are not nil io.Readers: pass nil itself.
			switch {
			case sr == nil && rr == nil:
				return m.ImportSeed(ctx, admin, nil, nil, o)
			case sr == nil:
				return m.ImportSeed(ctx, admin, nil, rr, o)
			case rr == nil:
				return m.ImportSeed(ctx, admin, sr, nil, o)
			}
			return m.ImportSeed(ctx, admin, sr, rr, o)
		})
	})
}
