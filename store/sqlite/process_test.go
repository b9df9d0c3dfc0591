package sqlite_test

// Process tests: several Store handles and several OS processes on one file,
// and a writer killed with SIGKILL mid-batch. Child processes are this test
// binary re-executed with -test.run=^TestHelperProcess$ and ftEnvRole set.

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/sqlite"
	"github.com/llmbudget/budget/store/storetest"
)

// ftStart is the fixed time every Manager in these tests reads: a Thursday
// in the middle of a month, so the monthly window is the same everywhere.
var ftStart = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

var ftAdmin = budget.Principal{UserID: "root", Admin: true}

// ftRace reports whether the test binary was built with -race, which makes
// everything about ten times slower: the longest tests do less then.
func ftRace() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// ftOpen opens a store and closes it when tb ends.
func ftOpen(tb testing.TB, path string) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// ftManager returns a Manager over s reading a clock fixed at ftStart.
func ftManager(s budget.Store) *budget.Manager {
	return budget.NewManager(s, budget.Options{Now: storetest.NewClock(ftStart).Now})
}

// ftUser opens a store on a new file, with user u's limit set to limit,
// and returns the file's path, the store and a Manager over it.
func ftUser(t *testing.T, limit string) (string, *sqlite.Store, *budget.Manager) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "budget.db")
	s := ftOpen(t, path)
	m := ftManager(s)
	ftLimit(t, m, "u", limit)
	return path, s, m
}

// ftLimit sets user's limit as an admin.
func ftLimit(tb testing.TB, m *budget.Manager, user, limit string) {
	tb.Helper()
	d := budget.MustAmount(limit)
	if _, err := m.UpdateSettings(context.Background(), ftAdmin, user, budget.SettingsUpdate{Limit: &d}); err != nil {
		tb.Fatalf("set limit of %s: %v", user, err)
	}
}

// ftRaw opens the database file directly, read-only, bypassing the store.
func ftRaw(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// ftCheckCounters checks, for every budget in the file, that the stored
// counters equal what the rows say: spent is the SUM of the usage in the
// stored window (in usage for a user's own budget, in usage_charged for
// the others), held the SUM of the holds still counted, and the daily
// rollups add up to the usage rows. It returns the number of users.
func ftCheckCounters(tb testing.TB, path string) int {
	tb.Helper()
	rows, err := ftRaw(tb, path).Query(`WITH rows AS (SELECT user_id, at, cost FROM usage
			UNION ALL SELECT user_id, at, cost FROM usage_charged)
		SELECT u.user_id, u.spent, u.held,
		(SELECT COALESCE(SUM(cost), 0) FROM rows WHERE user_id = u.user_id AND at >= u.win_start AND at < u.win_end),
		(SELECT COALESCE(SUM(amount), 0) FROM holds WHERE user_id = u.user_id AND counted = 1),
		(SELECT COALESCE(SUM(cost), 0) FROM rows WHERE user_id = u.user_id),
		(SELECT COUNT(*) FROM rows WHERE user_id = u.user_id),
		(SELECT COALESCE(SUM(cost), 0) FROM usage_daily WHERE user_id = u.user_id),
		(SELECT COALESCE(SUM(requests), 0) FROM usage_daily WHERE user_id = u.user_id)
		FROM users u ORDER BY u.user_id`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			user                                                          string
			spent, held, sumWin, sumHeld, sumAll, count, dayCost, dayReqs int64
		)
		if err := rows.Scan(&user, &spent, &held, &sumWin, &sumHeld, &sumAll, &count, &dayCost, &dayReqs); err != nil {
			tb.Fatal(err)
		}
		n++
		if spent != sumWin {
			tb.Errorf("user %s: users.spent = %d, SUM(cost) of usage in window = %d", user, spent, sumWin)
		}
		if held != sumHeld {
			tb.Errorf("user %s: users.held = %d, SUM(amount) of counted holds = %d", user, held, sumHeld)
		}
		if dayCost != sumAll || dayReqs != count {
			tb.Errorf("user %s: daily rollups say %d nanos in %d requests, usage rows %d in %d", user, dayCost, dayReqs, sumAll, count)
		}
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return n
}

// ftIntegrity runs PRAGMA integrity_check and foreign_key_check.
func ftIntegrity(tb testing.TB, path string) {
	tb.Helper()
	db := ftRaw(tb, path)
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil {
		tb.Fatal(err)
	}
	if res != "ok" {
		tb.Errorf("integrity_check: %s", res)
	}
	rows, err := db.Query("PRAGMA foreign_key_check")
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	if rows.Next() {
		tb.Error("foreign_key_check reports violations")
	}
}

// ---- child processes ----

const (
	ftEnvRole = "BUDGET_SQLITE_TEST_ROLE"
	ftEnvDB   = "BUDGET_SQLITE_TEST_DB"
	ftEnvNow  = "BUDGET_SQLITE_TEST_NOW"
	ftEnvN    = "BUDGET_SQLITE_TEST_N"
	ftEnvUser = "BUDGET_SQLITE_TEST_USER"
	ftEnvMax  = "BUDGET_SQLITE_TEST_MAXBATCH"
)

// ftChild returns a command re-running this test binary as a child in role.
func ftChild(t *testing.T, role, path string, extra ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), ftEnvRole+"="+role, ftEnvDB+"="+path, ftEnvNow+"="+ftStart.Format(time.RFC3339Nano))
	cmd.Env = append(cmd.Env, extra...)
	return cmd
}

// TestHelperProcess is not a test: it is the body of the child processes,
// and does nothing unless ftEnvRole is set.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv(ftEnvRole)
	if role == "" {
		return
	}
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "child %s: "+format+"\n", append([]any{role}, args...)...)
		os.Exit(1)
	}
	now, err := time.Parse(time.RFC3339Nano, os.Getenv(ftEnvNow))
	if err != nil {
		fail("%v", err)
	}
	// The parent holds our stdin: it says GO there, and its end closes
	// when it goes away.
	stdin := bufio.NewReader(os.Stdin)
	ctx := context.Background()
	maxBatch, _ := strconv.Atoi(os.Getenv(ftEnvMax))
	s, err := sqlite.Open(ctx, os.Getenv(ftEnvDB), sqlite.Options{MaxBatch: maxBatch})
	if err != nil {
		fail("%v", err)
	}
	m := budget.NewManager(s, budget.Options{Now: storetest.NewClock(now).Now})
	switch role {
	case "reserve":
		// N goroutines each reserve 0.10 and settle 0.10, after the parent
		// says go; print how many passed.
		n, _ := strconv.Atoi(os.Getenv(ftEnvN))
		user := os.Getenv(ftEnvUser)
		if _, err := m.Status(ctx, user); err != nil {
			fail("status: %v", err)
		}
		fmt.Println("READY")
		if line, err := stdin.ReadString('\n'); err != nil || line != "GO\n" {
			fail("waiting for GO: %q %v", line, err)
		}
		var ok, refused atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				switch passed, err := spendDime(ctx, m, user); {
				case err != nil:
					errs <- err
				case passed:
					ok.Add(1)
				default:
					refused.Add(1)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			fail("%v", err)
		}
		if err := s.Close(); err != nil {
			fail("close: %v", err)
		}
		fmt.Printf("RESULT %d %d\n", ok.Load(), refused.Load())
		os.Exit(0)
	case "record":
		// Record usages u-0, u-1, ... for two users from several goroutines
		// until killed, printing each ID once Record returned nil.
		// Exit once the parent goes away, so that no writer outlives a
		// failed or killed test run.
		go func() {
			io.Copy(io.Discard, stdin)
			os.Exit(3)
		}()
		user := os.Getenv(ftEnvUser)
		var next atomic.Int64
		var mu sync.Mutex
		out := bufio.NewWriter(os.Stdout)
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= 1_000_000 {
						return
					}
					u, id := fmt.Sprintf("%s-%d", user, i%2), fmt.Sprintf("u-%d", i)
					_, err := m.Record(ctx, u, budget.Usage{ID: id, Provider: "p", Model: fmt.Sprintf("m%d", i%3),
						Cost: budget.Nanos(1_000_000 + i%7*1000).Decimal()})
					if err != nil {
						fail("record %s: %v", id, err)
					}
					mu.Lock()
					fmt.Fprintf(out, "%s %s\n", u, id)
					err = out.Flush()
					mu.Unlock()
					if err != nil {
						fail("stdout: %v", err)
					}
				}
			})
		}
		wg.Wait()
		os.Exit(0)
	}
	fail("unknown role")
}

// ---- tests ----

// TestTwoStoresOneFile runs two Managers on two Store handles of one file:
// their writer goroutines serialize through SQLite's file lock, so exactly
// the limit's worth of reserves pass, and the counters match the rows.
func TestTwoStoresOneFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "budget.db")
	a, b := ftManager(ftOpen(t, path)), ftManager(ftOpen(t, path))
	ftLimit(t, a, "u", "10")
	if _, err := b.Status(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	var ok, refused atomic.Int64
	errs := make(chan error, 200)
	var wg sync.WaitGroup
	for i := range 200 {
		m := a
		if i%2 == 1 {
			m = b
		}
		wg.Go(func() {
			switch passed, err := spendDime(ctx, m, "u"); {
			case err != nil:
				errs <- err
			case passed:
				ok.Add(1)
			default:
				refused.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if ok.Load() != 100 || refused.Load() != 100 {
		t.Fatalf("%d passed and %d were refused across two store handles, want 100 and 100", ok.Load(), refused.Load())
	}
	for _, m := range []*budget.Manager{a, b} {
		st, err := m.Status(ctx, "u")
		if err != nil {
			t.Fatal(err)
		}
		if !st.Spent.Equal(budget.MustAmount("10")) || !st.Reserved.IsZero() {
			t.Errorf("status: spent %s reserved %s, want 10 and 0", st.Spent, st.Reserved)
		}
	}
	if n := ftCheckCounters(t, path); n != 1 {
		t.Errorf("%d users in the file, want 1", n)
	}
}

// TestTwoProcesses runs a Manager in each of two child processes on one
// file, all their goroutines released at once: exactly 100 reserves of 0.10
// pass against a limit of 10 in total.
func TestTwoProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "budget.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ftLimit(t, ftManager(s), "u", "10")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	const perChild = 100
	type child struct {
		cmd    *exec.Cmd
		in     io.WriteCloser
		out    *bufio.Reader
		stderr bytes.Buffer
	}
	children := make([]*child, 2)
	for i := range children {
		// Small batches make the two processes take turns at the file's
		// write lock many times before the limit is reached.
		c := &child{cmd: ftChild(t, "reserve", path, ftEnvN+"="+strconv.Itoa(perChild), ftEnvUser+"=u", ftEnvMax+"=4")}
		c.cmd.Stderr = &c.stderr
		if c.in, err = c.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		stdout, err := c.cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		c.out = bufio.NewReader(stdout)
		if err := c.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.cmd.Process.Kill(); c.cmd.Wait() })
		children[i] = c
	}
	for i, c := range children {
		if line, err := c.out.ReadString('\n'); line != "READY\n" {
			t.Fatalf("child %d: got %q (%v) instead of READY; stderr:\n%s", i, line, err, c.stderr.String())
		}
	}
	for _, c := range children {
		io.WriteString(c.in, "GO\n")
	}
	var ok, refused int
	for i, c := range children {
		rest, _ := io.ReadAll(c.out)
		if err := c.cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v; stderr:\n%s", i, err, c.stderr.String())
		}
		var o, r int
		if _, err := fmt.Sscanf(string(rest), "RESULT %d %d\n", &o, &r); err != nil {
			t.Fatalf("child %d printed %q: %v", i, rest, err)
		}
		t.Logf("child %d: %d passed, %d refused", i, o, r)
		ok, refused = ok+o, refused+r
	}
	if ok != 100 || refused != 2*perChild-100 {
		t.Fatalf("%d passed and %d were refused across two processes, want 100 and %d", ok, refused, 2*perChild-100)
	}
	st, err := ftManager(ftOpen(t, path)).Status(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Spent.Equal(budget.MustAmount("10")) || !st.Reserved.IsZero() {
		t.Errorf("status: spent %s reserved %s, want 10 and 0", st.Spent, st.Reserved)
	}
	ftCheckCounters(t, path)
}

// TestCrashKeepsAcknowledgedWrites kills a writer process with SIGKILL while
// its goroutines record usage in group-committed batches: every usage it
// acknowledged is in the file afterwards, the counters match the rows and
// the file is intact. Each round adds to the same file.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "budget.db")
	rounds, acks := 3, 300
	if testing.Short() {
		rounds, acks = 2, 150
	}
	for round := range rounds {
		user := fmt.Sprintf("crash%d", round)
		cmd := ftChild(t, "record", path, ftEnvUser+"="+user)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		// The child exits when its stdin, closed by Wait, reaches EOF.
		if _, err := cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := map[[2]string]bool{}
		sc := bufio.NewScanner(stdout)
		for len(acked) < acks && sc.Scan() {
			u, id, _ := strings.Cut(sc.Text(), " ")
			acked[[2]string{u, id}] = true
		}
		if len(acked) < acks {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: the writer stopped after %d acknowledgements (%v); stderr:\n%s", round, len(acked), sc.Err(), stderr.String())
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		// Lines already in the pipe were acknowledged before the kill.
		for sc.Scan() {
			if u, id, ok := strings.Cut(sc.Text(), " "); ok {
				acked[[2]string{u, id}] = true
			}
		}
		err = cmd.Wait()
		if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.Exited() && runtime.GOOS != "windows" {
			t.Fatalf("round %d: writer ended with %v, want killed; stderr:\n%s", round, err, stderr.String())
		}

		s, err := sqlite.Open(ctx, path, sqlite.Options{})
		if err != nil {
			t.Fatalf("round %d: reopening after the crash: %v", round, err)
		}
		present := map[[2]string]bool{}
		rows, err := ftRaw(t, path).Query("SELECT user_id, id FROM usage WHERE user_id LIKE ?", user+"-%")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k [2]string
			if err := rows.Scan(&k[0], &k[1]); err != nil {
				t.Fatal(err)
			}
			present[k] = true
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		lost := 0
		for k := range acked {
			if !present[k] {
				lost++
				if lost <= 5 {
					t.Errorf("round %d: acknowledged usage %s of %s is missing after the crash", round, k[1], k[0])
				}
			}
		}
		if lost > 0 || len(present) < len(acked) {
			t.Fatalf("round %d: %d of %d acknowledged usages lost; %d rows present", round, lost, len(acked), len(present))
		}
		t.Logf("round %d: %d acknowledged, %d rows present", round, len(acked), len(present))
		ftCheckCounters(t, path)
		ftIntegrity(t, path)

		// The store works on after recovery, and its Status is the rows'.
		m := ftManager(s)
		for i := range 2 {
			u := fmt.Sprintf("%s-%d", user, i)
			if _, err := m.Record(ctx, u, budget.Usage{ID: "after-crash", Cost: budget.MustAmount("1")}); err != nil {
				t.Fatalf("round %d: record after recovery: %v", round, err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		ftCheckCounters(t, path)
	}
}

// spendDime reserves 0.10 for user and settles it at 0.10: passed is false
// when the budget refused the reservation, err any other failure.
func spendDime(ctx context.Context, m *budget.Manager, user string) (passed bool, err error) {
	r, err := m.Reserve(ctx, user, budget.MustAmount("0.10"))
	if errors.Is(err, budget.ErrBudgetExceeded) {
		return false, nil
	}
	if err == nil {
		_, err = r.Settle(ctx, budget.Usage{Cost: budget.MustAmount("0.10")})
	}
	return err == nil, err
}
