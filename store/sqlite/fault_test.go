package sqlite_test

// Fault tests: files that are not ours, a full disk, cancelled contexts,
// failures inside a group-committed batch, bad paths and concurrent opens.
// Each fault must give an error naming its cause and leave nothing
// half-written.

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/store/sqlite"
)

// ftWaitQueued waits until n write operations are queued behind a blocked
// writer, yielding the processor rather than sleeping.
func ftWaitQueued(tb testing.TB, s *sqlite.Store, n int) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for sqlite.Queued(s) < n {
		if time.Now().After(deadline) {
			tb.Fatalf("only %d of %d operations queued", sqlite.Queued(s), n)
		}
		runtime.Gosched()
	}
}

// ftDataVersion returns PRAGMA data_version on c, which changes whenever
// another connection commits a change to the file.
func ftDataVersion(tb testing.TB, c *sql.Conn) int64 {
	tb.Helper()
	var v int64
	if err := c.QueryRowContext(context.Background(), "PRAGMA data_version").Scan(&v); err != nil {
		tb.Fatal(err)
	}
	return v
}

// ftUsageIDs returns the usage IDs of user in the file.
func ftUsageIDs(tb testing.TB, path, user string) map[string]int64 {
	tb.Helper()
	rows, err := ftRaw(tb, path).Query("SELECT id, cost FROM usage WHERE user_id = ?", user)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	ids := map[string]int64{}
	for rows.Next() {
		var id string
		var cost int64
		if err := rows.Scan(&id, &cost); err != nil {
			tb.Fatal(err)
		}
		ids[id] = cost
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return ids
}

// ftNoSiblings checks that dir holds only the named files.
func ftNoSiblings(tb testing.TB, dir string, names ...string) {
	tb.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range ents {
		found := false
		for _, n := range names {
			found = found || e.Name() == n
		}
		if !found {
			tb.Errorf("%s was left in %s", e.Name(), dir)
		}
	}
}

func TestOpenNotADatabase(t *testing.T) {
	t.Parallel()
	random := make([]byte, 64<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	for name, content := range map[string][]byte{
		"text":   []byte("user,spent\nalice,10.00\nbob,3.50\n"),
		"random": random,
		// A SQLite header with the rest garbage.
		"header": append([]byte("SQLite format 3\x00"), random[:4080]...),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "budget.db")
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded on a file that is not a database")
			}
			if !strings.Contains(err.Error(), "not a SQLite database") && !strings.Contains(err.Error(), "malformed") {
				t.Errorf("error does not say the file is not a SQLite database: %v", err)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
				t.Error("Open changed the file")
			}
			ftNoSiblings(t, dir, "budget.db")
		})
	}
}

// TestOpenEmptyFile: an existing empty file is a new, empty database.
func TestOpenEmptyFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "budget.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	m := ftManager(ftOpen(t, path))
	if _, err := m.Record(context.Background(), "u", budget.Usage{Cost: budget.MustAmount("1")}); err != nil {
		t.Fatal(err)
	}
}

func TestOpenNewerSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "budget.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded on a database of schema version 99")
	}
	if !errors.Is(err, sqlite.ErrNewerSchema) || !strings.Contains(err.Error(), "99") {
		t.Errorf("error = %v, want ErrNewerSchema naming version 99", err)
	}
	var v int
	if err := ftRaw(t, path).QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != 99 {
		t.Errorf("user_version = %d (%v) after the refused Open, want 99", v, err)
	}
}

// ftReadOnly makes paths unwritable until the test ends: with chattr +i
// (immutable, which binds root too) where it works, else with chmod, which
// binds only non-root users.
func ftReadOnly(t *testing.T, paths ...string) {
	t.Helper()
	if chattr, err := exec.LookPath("chattr"); err == nil {
		out, err := exec.Command(chattr, append([]string{"+i"}, paths...)...).CombinedOutput()
		if err == nil {
			t.Cleanup(func() {
				if out, err := exec.Command(chattr, append([]string{"-i"}, paths...)...).CombinedOutput(); err != nil {
					t.Errorf("chattr -i: %v: %s", err, out)
				}
			})
			return
		}
		t.Logf("chattr +i: %v: %s", err, out)
	}
	if os.Geteuid() == 0 {
		t.Skip("running as root, where file modes are not enforced, and chattr +i is unavailable: cannot make a file read-only")
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, fi.Mode().Perm()&^0o222); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(p, fi.Mode().Perm()) })
	}
}

func TestOpenReadOnly(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		roDir  bool // the directory too, so no -wal or -shm can be made
		create bool // open a file that does not exist yet
	}{
		{name: "File"},
		{name: "FileAndDir", roDir: true},
		{name: "NewFileInDir", roDir: true, create: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "ro")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "budget.db")
			s, err := sqlite.Open(ctx, path, sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ftManager(s).Record(ctx, "u", budget.Usage{ID: "before", Cost: budget.MustAmount("1")}); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if c.create {
				path = filepath.Join(dir, "new.db")
			}
			ro := []string{filepath.Join(dir, "budget.db")}
			if c.roDir {
				ro = append(ro, dir)
			}
			ftReadOnly(t, ro...)
			s, err = sqlite.Open(ctx, path, sqlite.Options{})
			if err == nil {
				// Show what a caller would meet at the first write.
				_, werr := ftManager(s).Record(ctx, "u", budget.Usage{ID: "after", Cost: budget.MustAmount("1")})
				s.Close()
				t.Fatalf("Open succeeded on a read-only database; the first write then fails with: %v", werr)
			}
			if msg := err.Error(); !strings.Contains(msg, "read-only") && !strings.Contains(msg, "cannot open") {
				t.Errorf("error does not say the database is read-only or cannot be opened: %v", err)
			}
			if after, _ := os.ReadFile(filepath.Join(dir, "budget.db")); !bytes.Equal(after, before) {
				t.Error("the refused Open changed the file")
			}
			if _, err := os.Stat(filepath.Join(dir, "new.db")); err == nil {
				t.Error("the refused Open created a file")
			}
		})
	}
}

// ftFill returns a usage of about 1 KiB, to fill pages fast.
func ftFill(id string, cost budget.Nanos) budget.Usage {
	return budget.Usage{
		ID: id + strings.Repeat(".", 200), Provider: "provider-" + strings.Repeat("p", 200),
		Model: id + strings.Repeat("m", 250), InputTokens: 1, OutputTokens: 2, Cost: cost.Decimal(),
	}
}

// TestDiskFull caps the file's size on the writer connection and records
// until the database is full: the failing Record says so and counts nothing,
// everything acknowledged before stays, and the store records again once
// there is room.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path, s, m := ftUser(t, "1000")
	pages, err := sqlite.PageCount(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.SetMaxPageCount(s, pages+8); err != nil {
		t.Fatal(err)
	}
	var acked []string
	var failed budget.Usage
	var ferr error
	for i := 0; i < 10000; i++ {
		u := ftFill(fmt.Sprintf("f-%d", i), budget.Nanos(1_000_000+i))
		before, err := m.Status(ctx, "u")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Record(ctx, "u", u); err != nil {
			failed, ferr = u, err
			after, err := m.Status(ctx, "u")
			if err != nil {
				t.Fatal(err)
			}
			if !after.Spent.Equal(before.Spent) {
				t.Errorf("spent went from %s to %s on the Record that failed", before.Spent, after.Spent)
			}
			break
		}
		acked = append(acked, u.ID)
	}
	if ferr == nil {
		t.Fatal("recorded 10000 usages into a capped file without an error")
	}
	t.Logf("full after %d records: %v", len(acked), ferr)
	if !strings.Contains(ferr.Error(), "disk is full") {
		t.Errorf("error does not say the disk is full: %v", ferr)
	}
	if len(acked) == 0 {
		t.Error("the cap left no room for even one record")
	}
	ids := ftUsageIDs(t, path, "u")
	if _, ok := ids[failed.ID]; ok {
		t.Error("the usage whose Record failed is in the file")
	}
	for _, id := range acked {
		if _, ok := ids[id]; !ok {
			t.Errorf("acknowledged usage %.8s is missing", id)
		}
	}
	if len(ids) != len(acked) {
		t.Errorf("%d usage rows, want %d", len(ids), len(acked))
	}
	ftCheckCounters(t, path)

	// Room again: the same usage records, once.
	if _, err := sqlite.SetMaxPageCount(s, 1<<30); err != nil {
		t.Fatal(err)
	}
	before, err := m.Status(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.Record(ctx, "u", failed)
	if err != nil {
		t.Fatalf("record after making room: %v", err)
	}
	if want := before.Spent.Add(failed.Cost); !st.Spent.Equal(want) {
		t.Errorf("spent %s after the retried Record, want %s", st.Spent, want)
	}
	ftCheckCounters(t, path)
	ftIntegrity(t, path)
}

// TestDiskFullInBatch fills the disk with one group-committed batch: each
// operation either committed and is in the file, or failed, says the disk
// is full, and left no trace.
func TestDiskFullInBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path, s, m := ftUser(t, "1000")
	if _, err := m.Record(ctx, "u", ftFill("first", 1)); err != nil {
		t.Fatal(err)
	}
	pages, err := sqlite.PageCount(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.SetMaxPageCount(s, pages+2); err != nil {
		t.Fatal(err)
	}
	release, err := sqlite.BlockWriter(s)
	if err != nil {
		t.Fatal(err)
	}
	const n = 40 // about 40 KiB: far more than two pages
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = m.Record(ctx, "u", ftFill(fmt.Sprintf("b-%d", i), budget.Nanos(1000+i)))
		})
	}
	ftWaitQueued(t, s, n)
	release()
	wg.Wait()
	ids := ftUsageIDs(t, path, "u")
	full := 0
	for i, err := range errs {
		id := ftFill(fmt.Sprintf("b-%d", i), 0).ID
		_, in := ids[id]
		switch {
		case err == nil && !in:
			t.Errorf("Record %d succeeded but its usage is not in the file", i)
		case err != nil && in:
			t.Errorf("Record %d failed (%v) but its usage is in the file", i, err)
		case err != nil:
			full++
			if !strings.Contains(err.Error(), "disk is full") {
				t.Errorf("Record %d failed without saying the disk is full: %v", i, err)
			}
		}
	}
	if full == 0 {
		t.Error("no Record in the batch failed, though the batch cannot fit")
	}
	t.Logf("%d of %d failed", full, n)
	ftCheckCounters(t, path)
	ftIntegrity(t, path)

	// Room again: the failed ones record.
	if _, err := sqlite.SetMaxPageCount(s, 1<<30); err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		if err != nil {
			if _, err := m.Record(ctx, "u", ftFill(fmt.Sprintf("b-%d", i), budget.Nanos(1000+i))); err != nil {
				t.Errorf("Record %d again after making room: %v", i, err)
			}
		}
	}
	if ids := ftUsageIDs(t, path, "u"); len(ids) != n+1 {
		t.Errorf("%d usage rows, want %d", len(ids), n+1)
	}
	ftCheckCounters(t, path)
}

// TestCancelledContext: calls with a cancelled context fail with
// context.Canceled and write nothing, whether the context was cancelled
// before the call or while the write waited in the queue.
func TestCancelledContext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path, s, m := ftUser(t, "10")
	r, err := m.Reserve(ctx, "u", budget.MustAmount("1"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := ftRaw(t, path).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	version := ftDataVersion(t, conn)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	fresh := ftManager(s) // nothing cached: its first call reads settings
	calls := map[string]func() error{
		"Reserve": func() error { _, err := m.Reserve(cancelled, "u", budget.MustAmount("1")); return err },
		"Record": func() error {
			_, err := m.Record(cancelled, "u", budget.Usage{Cost: budget.MustAmount("1")})
			return err
		},
		"Status":  func() error { _, err := m.Status(cancelled, "u"); return err },
		"Settle":  func() error { _, err := r.Settle(cancelled, budget.Usage{Cost: budget.MustAmount("1")}); return err },
		"Release": func() error { return r.Release(cancelled) },
		"UpdateSettings": func() error {
			d := budget.MustAmount("20")
			_, err := m.UpdateSettings(cancelled, ftAdmin, "u", budget.SettingsUpdate{Limit: &d})
			return err
		},
		"fresh Reserve": func() error { _, err := fresh.Reserve(cancelled, "u", budget.MustAmount("1")); return err },
		"new user Record": func() error {
			_, err := fresh.Record(cancelled, "new", budget.Usage{Cost: budget.MustAmount("1")})
			return err
		},
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", name, err)
		}
	}
	if v := ftDataVersion(t, conn); v != version {
		t.Error("calls with a cancelled context changed the file")
	}

	// Cancelled while queued behind a busy writer: skipped, not written.
	release, err := sqlite.BlockWriter(s)
	if err != nil {
		t.Fatal(err)
	}
	queued, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := m.Record(queued, "u", budget.Usage{ID: "queued", Cost: budget.MustAmount("1")})
		done <- err
	}()
	ftWaitQueued(t, s, 1)
	cancel()
	release()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Record cancelled in the queue: %v, want context.Canceled", err)
	}
	if v := ftDataVersion(t, conn); v != version {
		t.Error("a Record cancelled in the queue changed the file")
	}

	// The reservation is still open and settles normally.
	st, err := r.Settle(ctx, budget.Usage{Cost: budget.MustAmount("1")})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Spent.Equal(budget.MustAmount("1")) || !st.Reserved.IsZero() {
		t.Errorf("after settling: spent %s reserved %s, want 1 and 0", st.Spent, st.Reserved)
	}
	if v := ftDataVersion(t, conn); v == version {
		t.Error("data_version did not change on a write: the checks above prove nothing")
	}
	ftCheckCounters(t, path)
}

// TestBatchIsolatesFailures commits one batch holding new usage IDs,
// duplicates of IDs already stored and pairs racing for one new ID: the
// failing operations are undone alone and every other one commits.
func TestBatchIsolatesFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path, s, m := ftUser(t, "1000")
	for i := range 10 {
		if _, err := m.Record(ctx, "u", budget.Usage{ID: fmt.Sprintf("old-%d", i), Cost: budget.MustAmount("1")}); err != nil {
			t.Fatal(err)
		}
	}
	type call struct {
		id   string
		cost budget.Nanos
	}
	var calls []call
	for i := range 30 { // new, distinct
		calls = append(calls, call{fmt.Sprintf("new-%d", i), budget.Nanos(1_000 + i)})
	}
	for i := range 10 { // duplicates of stored IDs
		calls = append(calls, call{fmt.Sprintf("old-%d", i), budget.Nanos(1_000_000)})
	}
	for i := range 5 { // pairs racing for one new ID
		calls = append(calls, call{fmt.Sprintf("pair-%d", i), budget.Nanos(2_000 + i)}, call{fmt.Sprintf("pair-%d", i), budget.Nanos(3_000 + i)})
	}
	before, err := m.Status(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	release, err := sqlite.BlockWriter(s)
	if err != nil {
		t.Fatal(err)
	}
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() {
			_, errs[i] = m.Record(ctx, "u", budget.Usage{ID: c.id, Cost: c.cost.Decimal()})
		})
	}
	ftWaitQueued(t, s, len(calls)) // all in the next batch
	release()
	wg.Wait()

	ids := ftUsageIDs(t, path, "u")
	want := budget.Nanos(0)
	won := map[string]bool{}
	for i, c := range calls {
		err := errs[i]
		switch {
		case strings.HasPrefix(c.id, "new-"):
			if err != nil {
				t.Errorf("Record %s: %v", c.id, err)
			}
		case strings.HasPrefix(c.id, "old-"):
			if !errors.Is(err, budget.ErrDuplicate) {
				t.Errorf("Record of stored %s: %v, want ErrDuplicate", c.id, err)
			}
		case err == nil:
			if won[c.id] {
				t.Errorf("both Records of %s succeeded", c.id)
			}
			won[c.id] = true
		case !errors.Is(err, budget.ErrDuplicate):
			t.Errorf("losing Record of %s: %v, want ErrDuplicate", c.id, err)
		}
		if err == nil {
			want += c.cost
			if got, ok := ids[c.id]; !ok || got != int64(c.cost) {
				t.Errorf("%s is stored with cost %d (%v), want %d", c.id, got, ok, c.cost)
			}
		}
	}
	if len(won) != 5 {
		t.Errorf("%d of 5 racing pairs had a winner", len(won))
	}
	if len(ids) != 10+30+5 {
		t.Errorf("%d usage rows, want 45", len(ids))
	}
	st, err := m.Status(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Spent.Sub(before.Spent); !got.Equal(want.Decimal()) {
		t.Errorf("the batch added %s to spent, want %s", got, want.Decimal())
	}
	ftCheckCounters(t, path)
}

func TestOpenInvalidPath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, path := range []string{"", ":memory:", "a?b", "a#b", "file:a.db", "file::memory:?cache=shared",
		dir, filepath.Join(dir, "missing", "budget.db")} {
		s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", path)
			continue
		}
		t.Logf("Open(%q): %v", path, err)
	}
	ftNoSiblings(t, dir)
}

// TestOpenTwice: a second Open of a migrated file finds version 1 and
// changes nothing.
func TestOpenTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "budget.db")
	s := ftOpen(t, path)
	if _, err := ftManager(s).Record(ctx, "u", budget.Usage{ID: "one", Cost: budget.MustAmount("1")}); err != nil {
		t.Fatal(err)
	}
	schema := func() (int, string) {
		t.Helper()
		db := ftRaw(t, path)
		var v int
		var objects string
		if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow("SELECT group_concat(type || ' ' || name, ', ') FROM (SELECT type, name FROM sqlite_schema ORDER BY name)").Scan(&objects); err != nil {
			t.Fatal(err)
		}
		return v, objects
	}
	v1, objects1 := schema()
	if v1 != sqlite.SchemaVersion {
		t.Errorf("user_version = %d, want %d", v1, sqlite.SchemaVersion)
	}
	conn, err := ftRaw(t, path).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	version := ftDataVersion(t, conn)
	s2 := ftOpen(t, path)
	if v := ftDataVersion(t, conn); v != version {
		t.Error("the second Open wrote to the file")
	}
	if v2, objects2 := schema(); v2 != v1 || objects2 != objects1 {
		t.Errorf("after the second Open: version %d, schema %s; want %d, %s", v2, objects2, v1, objects1)
	}
	st, err := ftManager(s2).Status(ctx, "u")
	if err != nil || !st.Spent.Equal(budget.MustAmount("1")) {
		t.Errorf("status through the second handle: %v, %v", st.Spent, err)
	}
}

// TestOpenFreshConcurrently opens new files from two goroutines at once,
// many times (the race is narrow: about one round in a hundred hits it): every
// Open succeeds and the schema is made once.
func TestOpenFreshConcurrently(t *testing.T) {
	t.Parallel()
	rounds := 300
	if testing.Short() || ftRace() {
		rounds = 60
	}
	dir := t.TempDir()
	var mu sync.Mutex
	var failures []string
	var lanes sync.WaitGroup
	for lane := range 10 {
		lanes.Go(func() {
			for round := lane; round < rounds; round += 10 {
				path := filepath.Join(dir, fmt.Sprintf("budget%d.db", round))
				errs := make([]error, 2)
				var wg sync.WaitGroup
				for i := range errs {
					wg.Go(func() {
						s, err := sqlite.Open(context.Background(), path, sqlite.Options{Durability: sqlite.DurabilityNormal})
						if err == nil {
							err = s.Close()
						}
						errs[i] = err
					})
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("round %d: %v", round, err))
						mu.Unlock()
					}
				}
			}
		})
	}
	lanes.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d concurrent Opens of a new file failed, e.g. %s", len(failures), 2*rounds, failures[0])
	}
	for round := range rounds {
		var v int
		path := filepath.Join(dir, fmt.Sprintf("budget%d.db", round))
		if err := ftRaw(t, path).QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != sqlite.SchemaVersion {
			t.Fatalf("round %d: user_version %d (%v), want %d", round, v, err, sqlite.SchemaVersion)
		}
	}
}

// TestOpenWaitsOutBusyTimeout opens a new file while another connection
// holds its write lock: Open waits the busy timeout before failing, as its
// error says, rather than failing at once when switching the file to WAL
// (the deterministic form of the race TestOpenFreshConcurrently hits).
func TestOpenWaitsOutBusyTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "budget.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	const timeout = 300 * time.Millisecond
	began := time.Now()
	s, err := sqlite.Open(ctx, path, sqlite.Options{BusyTimeout: timeout})
	waited := time.Since(began)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded while another connection held the write lock")
	}
	if !strings.Contains(err.Error(), "locked") {
		t.Errorf("error does not say the database is locked: %v", err)
	}
	if waited < timeout/2 {
		t.Errorf("Open gave up after %v, long before the busy timeout of %v: %v", waited, timeout, err)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open once the lock is gone: %v", err)
	}
	s.Close()
}
