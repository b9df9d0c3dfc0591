package budget_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/memory"
)

// readCSV parses an export, failing t on anything that is not RFC 4180.
func readCSV(t *testing.T, b []byte) [][]string {
	t.Helper()
	if len(b) > 0 && !bytes.HasSuffix(b, []byte("\r\n")) {
		t.Errorf("the file does not end in CRLF")
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("the export is not CSV: %v\n%s", err, b)
	}
	return rows
}

func TestExportUsage(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.UTC)
	m := testManager(memory.New(), &now, budget.Options{})
	for i, u := range []budget.Usage{
		{ID: "=cmd|' /C calc'!A0", Provider: "+openai", Model: "-gpt", Cost: budget.MustAmount("0.000000001"), InputTokens: 1, OutputTokens: 2},
		{ID: "plain, \"quoted\"", Provider: "@anthropic", Model: "\tclaude", Cost: budget.MustAmount("12345.6789"), InputTokens: 3},
		{ID: "'apostrophe", Provider: "multi\nline", Model: "m", Cost: budget.MustAmount("1")},
	} {
		now = now.Add(time.Duration(i+1) * time.Minute)
		if _, err := m.Record(ctx, "alice", u); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := m.ExportUsage(ctx, budget.Principal{UserID: "alice"}, &b, budget.UsageQuery{UserID: "alice"}); err != nil {
		t.Fatal(err)
	}
	rows := readCSV(t, b.Bytes())
	want := [][]string{
		budget.UsageColumns,
		{"''apostrophe", "alice", "", "multi\nline", "m", "0", "0", "1", "2026-11-26T10:06:00.123456789Z"},
		{"plain, \"quoted\"", "alice", "", "'@anthropic", "'\tclaude", "3", "0", "12345.6789", "2026-11-26T10:03:00.123456789Z"},
		{"'=cmd|' /C calc'!A0", "alice", "", "'+openai", "'-gpt", "1", "2", "0.000000001", "2026-11-26T10:01:00.123456789Z"},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d:\n%s", len(rows), len(want), b.String())
	}
	for i := range want {
		if strings.Join(rows[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("row %d: %q, want %q", i, rows[i], want[i])
		}
	}
	for i, r := range rows[1:] {
		at, err := time.Parse(time.RFC3339, r[8])
		if err != nil || at.Nanosecond() != 123456789 {
			t.Errorf("row %d: time %q: %v", i, r[8], err)
		}
		for _, c := range r {
			if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
				t.Errorf("row %d: cell %q starts a formula", i, c)
			}
		}
	}
	// A range, and the permissions.
	b.Reset()
	if err := m.ExportUsage(ctx, admin, &b, budget.UsageQuery{UserID: "alice", From: now.Add(-4 * time.Minute), To: now}); err != nil {
		t.Fatal(err)
	}
	if n := len(readCSV(t, b.Bytes())); n != 2 {
		t.Errorf("ranged export: %d rows, want the header and one", n)
	}
	if err := m.ExportUsage(ctx, budget.Principal{UserID: "bob"}, &b, budget.UsageQuery{UserID: "alice"}); !errors.Is(err, budget.ErrForbidden) {
		t.Errorf("bob exporting alice's usage: %v", err)
	}
}

// TestExportUsagePages checks an export across many store pages, through
// a writer that fails partway.
func TestExportUsagePages(t *testing.T) {
	now := t0
	m := testManager(memory.New(), &now, budget.Options{})
	const n = 3*budget.MaxPageSize + 7
	for range n {
		now = now.Add(time.Second)
		if _, err := m.Record(ctx, "u", budget.Usage{Cost: budget.MustAmount("0.01")}); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := m.ExportUsage(ctx, admin, &b, budget.UsageQuery{UserID: "u"}); err != nil {
		t.Fatal(err)
	}
	rows := readCSV(t, b.Bytes())
	if len(rows) != n+1 {
		t.Fatalf("%d rows, want %d", len(rows), n+1)
	}
	for i := 2; i < len(rows); i++ {
		if rows[i][8] >= rows[i-1][8] {
			t.Fatalf("rows %d and %d not newest first: %s, %s", i-1, i, rows[i-1][8], rows[i][8])
		}
	}
	boom := errors.New("disk full")
	if err := m.ExportUsage(ctx, admin, &failingWriter{left: 10000, err: boom}, budget.UsageQuery{UserID: "u"}); !errors.Is(err, boom) {
		t.Errorf("export to a failing writer: %v", err)
	}
}

type failingWriter struct {
	left int
	err  error
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		return 0, w.err
	}
	w.left -= len(p)
	return len(p), nil
}

func TestExportAudit(t *testing.T) {
	now := t0
	m := testManager(memory.New(), &now, budget.Options{})
	if _, err := m.UpdateSettings(ctx, admin, "alice", budget.SettingsUpdate{Limit: ptr(budget.MustAmount("45")), AdminNotes: ptr("=danger")}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	if _, err := m.Reset(ctx, admin, "alice", budget.ResetOptions{Reason: "-new project"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.UpdateBudget(ctx, admin, budget.Team("research"), budget.SettingsUpdate{Limit: ptr(budget.MustAmount("1"))}); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := m.ExportAudit(ctx, admin, &b, budget.AuditLogQuery{}); err != nil {
		t.Fatal(err)
	}
	rows := readCSV(t, b.Bytes())
	if strings.Join(rows[0], ",") != strings.Join(budget.AuditColumns, ",") || len(rows) != 4 {
		t.Fatalf("audit export:\n%s", b.String())
	}
	team, reset, set := rows[1], rows[2], rows[3]
	if team[2] != "team:research" || team[3] != "" || team[4] != "settings" {
		t.Errorf("the team's entry %q", team)
	}
	if reset[2] != "user:alice" || reset[3] != "alice" || reset[4] != "manual" || reset[7] != "'-new project" ||
		reset[8] != "45" || reset[11] != "2026-11-01T00:00:00Z" || reset[12] != "2026-11-26T11:00:00Z" {
		t.Errorf("the reset entry %q", reset)
	}
	if set[9] != "45" || !strings.Contains(set[15], "limit_usd: 30 -> 45") || !strings.Contains(set[15], "admin_notes:  -> =danger") {
		t.Errorf("the settings entry %q", set)
	}
	b.Reset()
	if err := m.ExportAudit(ctx, admin, &b, budget.AuditLogQuery{UserID: "alice", Type: budget.AuditManualReset}); err != nil || len(readCSV(t, b.Bytes())) != 2 {
		t.Errorf("filtered audit export: %v\n%s", err, b.String())
	}
	if err := m.ExportAudit(ctx, budget.Principal{UserID: "alice"}, &b, budget.AuditLogQuery{}); !errors.Is(err, budget.ErrForbidden) {
		t.Errorf("a user's audit export: %v", err)
	}
	if err := m.ExportSettings(ctx, budget.Principal{UserID: "alice"}, &b); !errors.Is(err, budget.ErrForbidden) {
		t.Errorf("a user's settings export: %v", err)
	}
}

// TestImportSpreadsheetFile reads what spreadsheets write: a byte order
// mark, CRLF, TRUE and FALSE, quoted cells.
func TestImportSpreadsheetFile(t *testing.T) {
	now := t0
	m := testManager(memory.New(), &now, budget.Options{})
	file := "\uFEFFuser_id,limit_usd,enforce_budget,admin_notes\r\n\"alice\",12.50,FALSE,\"two\r\nlines\"\r\nbob,3,TRUE,\r\n"
	res, err := m.ImportSettings(ctx, admin, strings.NewReader(file), budget.ImportOptions{})
	if err != nil || !res.Applied || res.Created != 2 {
		t.Fatalf("%+v, %v", res, err)
	}
	a, _ := m.Lookup(ctx, "alice")
	if !a.Limit.Equal(budget.MustAmount("12.5")) || a.Enforce || a.AdminNotes != "two\nlines" {
		t.Errorf("alice %+v", a)
	}
	if res.Rows[1].Line != 4 {
		t.Errorf("bob's line %d, want 4 (alice's notes span two)", res.Rows[1].Line)
	}
}

// TestImportRowErrors checks that every bad row is reported, each on its
// line and column, and nothing is written.
func TestImportRowErrors(t *testing.T) {
	now := t0
	m := testManager(memory.New(), &now, budget.Options{})
	file := "user_id,limit_usd,alert_threshold_yellow,alert_threshold_orange,custom_period_days\n" +
		"ok,1,,,\n" +
		"neg,-1,,,\n" +
		"fine,1.0000000001,,,\n" +
		"th,1,95,90,\n" +
		"short,1\n" +
		"days,1,,,x\n" +
		"ok,2,,,\n"
	res, err := m.ImportSettings(ctx, admin, strings.NewReader(file), budget.ImportOptions{})
	var ie *budget.ImportError
	if !errors.As(err, &ie) || !errors.Is(err, budget.ErrInvalidAmount) || !errors.Is(err, budget.ErrInvalid) {
		t.Fatalf("%v", err)
	}
	var got []string
	for _, r := range ie.Rows {
		got = append(got, strconv.Itoa(r.Line)+":"+r.Column)
	}
	if want := "3:limit_usd 4:limit_usd 5:alert_threshold_orange 6: 7:custom_period_days 8:user_id"; strings.Join(got, " ") != want {
		t.Errorf("errors at %s, want %s", strings.Join(got, " "), want)
	}
	if len(res.Rows) != 7 || res.Rows[0].Err != nil || res.Rows[4].Err == nil || res.Applied {
		t.Errorf("rows %+v", res.Rows)
	}
	if _, err := m.Lookup(ctx, "ok"); !errors.Is(err, budget.ErrNotFound) {
		t.Errorf("a failed import created ok: %v", err)
	}
}
