// Package sqlite is the embedded default budget.Store: one file, no server,
// pure Go (modernc.org/sqlite, no cgo).
//
// It is durable (an acknowledged write survives a crash and, with the default
// DurabilityFull, a power loss), exact (money is INTEGER nano-dollars, so
// every SUM is integer arithmetic) and O(1) in history: per-user counters are
// updated in the same transaction as each usage row, so Reserve and Status
// read no history, and breakdowns read daily rollups for whole days.
//
// Writes go through one writer goroutine that batches concurrent callers into
// one immediate transaction (group commit): each operation runs in its own
// savepoint, in arrival order, and each caller is acknowledged only after the
// batch commits. One fsync then serves many callers, which is the only way
// past the few thousand durable commits per second a disk allows. Several
// processes may share one file: the immediate transactions serialize them
// through SQLite's own locks.
//
// Pick SQLite for one service on one machine; pick store/postgres to share
// budgets across hosts.
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/internal/sqlcodec"
	"github.com/shopspring/decimal"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"
)

var (
	//go:embed schema.sql
	schemaV1 string
	//go:embed migrate_v2.sql
	migrateV2 string
	//go:embed migrate_v3.sql
	migrateV3 string
	//go:embed migrate_v4.sql
	migrateV4 string
	//go:embed migrate_v5.sql
	migrateV5 string
)

// migrations[i] moves a database from schema version i to i+1. They only
// ever run forward; a database at a higher version than len(migrations) was
// written by a newer library and is refused.
var migrations = []string{schemaV1, migrateV2, migrateV3, migrateV4, migrateV5}

// SchemaVersion is the schema version this package writes.
var SchemaVersion = len(migrations)

// ErrNewerSchema is returned by Open for a database written by a newer
// version of this package.
var ErrNewerSchema = errors.New("budget/sqlite: database schema is newer than this library")

// Durability says when a commit counts as done.
type Durability int

const (
	// DurabilityFull (synchronous=FULL, the default) fsyncs the WAL on
	// every commit: an acknowledged write survives a crash of the process
	// and a power loss.
	DurabilityFull Durability = iota
	// DurabilityNormal (synchronous=NORMAL) fsyncs only at checkpoints:
	// several times faster per commit, and an acknowledged write still
	// survives a crash of the process, but the last commits before a
	// power loss or OS crash can be lost — money spent at the model but
	// missing from the budget. Choose it only when that is acceptable.
	DurabilityNormal
)

// Options configure a Store. The zero value is valid.
type Options struct {
	// Durability defaults to DurabilityFull.
	Durability Durability
	// BusyTimeout is how long a write waits for another process holding
	// the file's write lock before failing. Defaults to 10 seconds.
	BusyTimeout time.Duration
	// MaxBatch bounds how many operations one transaction commits.
	// Defaults to 256.
	MaxBatch int
	// ReadConns is the number of connections for reads. Defaults to 4.
	ReadConns int

	// MeterProvider receives budget.store.batch.size, a histogram of the
	// operations each write transaction commits (unit {operation},
	// attribute store = "sqlite"): how well group commit shares fsyncs.
	// Defaults to none.
	MeterProvider metric.MeterProvider
	// Logger receives batch fallbacks at Debug: an operation of a batch
	// failed (a duplicate usage ID, an unknown hold, ...), so the batch
	// was rolled back and run again with each operation in a savepoint.
	// Defaults to discarding.
	Logger *slog.Logger
}

// Store is a budget.Store in a SQLite file. It is safe for concurrent use.
type Store struct {
	w, r *sql.DB
	st   stmts
	max  int

	mu     sync.RWMutex // guards closed and sends on ops
	closed bool
	ops    chan *op
	done   chan struct{}

	cc *counterCache // the writer's (cache.go)

	log       *slog.Logger
	batchSize metric.Int64Histogram // nil without a MeterProvider
	batchOpts []metric.RecordOption
}

var _ budget.Store = (*Store)(nil)

// op is one write operation waiting for the writer.
type op struct {
	ctx      context.Context
	fn       func(*sql.Tx) error
	counters bool // fn changes counters only through begin/finish (cache.go)
	err      error
	done     chan struct{}
}

// Open opens or creates the database at path and migrates it to
// SchemaVersion. It refuses a file that is not a SQLite database, a
// database from a newer version of this package, and a file it cannot
// write.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("budget/sqlite: invalid path %q: give the path of a file", path)
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("budget/sqlite: invalid path %q: a path may not contain '?' or '#'", path)
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.ReadConns <= 0 {
		opts.ReadConns = 4
	}
	sync := "FULL"
	if opts.Durability == DurabilityNormal {
		sync = "NORMAL"
	}
	dsn := fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(%s)&_pragma=foreign_keys(1)&_txlock=immediate",
		path, opts.BusyTimeout.Milliseconds(), sync)
	// The writer keeps temporary storage in memory: a statement that writes
	// several rows (a step over several budgets, scopes.go) keeps a
	// statement journal, which would otherwise spill to a temporary file.
	w, err := sql.Open("sqlite", dsn+"&_pragma=temp_store(MEMORY)")
	if err != nil {
		return nil, fmt.Errorf("budget/sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := migrateRetry(ctx, w, opts.BusyTimeout); err != nil {
		w.Close()
		return nil, fmt.Errorf("budget/sqlite: open %s: %w", path, interpret(err))
	}
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("budget/sqlite: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(opts.ReadConns)
	r.SetMaxIdleConns(opts.ReadConns)
	s := &Store{w: w, r: r, max: opts.MaxBatch, ops: make(chan *op, 4*opts.MaxBatch), done: make(chan struct{}),
		cc: newCounterCache(), log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.MeterProvider != nil {
		// A failure to register leaves a no-op the SDK already reported.
		s.batchSize, _ = opts.MeterProvider.Meter("github.com/llmbudget/budget/store/sqlite").Int64Histogram(
			"budget.store.batch.size", metric.WithUnit("{operation}"),
			metric.WithDescription("Operations committed per write transaction (group commit)."),
			metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
		s.batchOpts = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("store", "sqlite")))}
	}
	if err := s.st.prepare(ctx, w, r); err != nil {
		s.st.close()
		w.Close()
		r.Close()
		return nil, fmt.Errorf("budget/sqlite: open %s: %w", path, interpret(err))
	}
	go s.writer()
	return s, nil
}

// migrate brings the schema up to date in one immediate transaction, so
// that processes opening a new file at once migrate it exactly once.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("%w: the file is at version %d, this library knows up to %d", ErrNewerSchema, v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrating to schema version %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(v+1)); err != nil {
			return err
		}
	}
	// BEGIN IMMEDIATE on a read-only file starts only a read transaction;
	// a write that changes nothing fails there, so Open refuses the file.
	if _, err := tx.ExecContext(ctx, "UPDATE users SET spent = spent WHERE 0"); err != nil {
		return err
	}
	return tx.Commit()
}

// migrateRetry runs migrate, retrying while the file is busy: a connection
// switching a new file to WAL needs an exclusive lock, and SQLite returns
// SQLITE_BUSY at once, without waiting out the busy timeout, to one of two
// connections racing to do it.
func migrateRetry(ctx context.Context, db *sql.DB, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		err := migrate(ctx, db)
		var se *sqlite3.Error
		left := time.Until(deadline)
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3lib.SQLITE_BUSY || left <= 0 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(min(delay, left)):
		}
	}
}

// interpret translates driver errors into the budget sentinels and clear
// messages, in one place.
func interpret(err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3lib.SQLITE_NOTADB:
			return fmt.Errorf("the file is not a SQLite database: %w", err)
		case sqlite3lib.SQLITE_READONLY:
			return fmt.Errorf("the database is read-only: %w", err)
		case sqlite3lib.SQLITE_FULL:
			return fmt.Errorf("the disk is full; nothing of this operation was written: %w", err)
		case sqlite3lib.SQLITE_BUSY:
			return fmt.Errorf("the database stayed locked by another connection past the busy timeout: %w", err)
		case sqlite3lib.SQLITE_CANTOPEN:
			return fmt.Errorf("cannot open the database file: %w", err)
		}
	}
	if errors.Is(err, sql.ErrConnDone) || strings.Contains(err.Error(), "database is closed") ||
		strings.Contains(err.Error(), "statement is closed") {
		return fmt.Errorf("%w: %v", budget.ErrClosed, err)
	}
	return err
}

// Close waits for queued writes to commit, then closes the database.
// Calls after Close return budget.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.ops)
	s.mu.Unlock()
	<-s.done
	s.st.close()
	return errors.Join(s.r.Close(), s.w.Close())
}

// reading reports ErrClosed once the store is closed, so that reads fail
// with the sentinel rather than a driver message.
func (s *Store) reading(ctx context.Context) error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return budget.ErrClosed
	}
	return ctx.Err()
}

// write runs fn in the writer's next batch and returns its error, or the
// batch's commit error. It returns only once the outcome is durable or
// failed; a context cancelled before fn starts skips fn.
func (s *Store) write(ctx context.Context, fn func(*sql.Tx) error) error {
	return s.enqueue(&op{ctx: ctx, fn: fn, done: make(chan struct{})})
}

// writeCounters is write for fn that changes counters only through
// begin/finish (step, stepMany), which may then use the writer's cache.
func (s *Store) writeCounters(ctx context.Context, fn func(*sql.Tx) error) error {
	return s.enqueue(&op{ctx: ctx, fn: fn, counters: true, done: make(chan struct{})})
}

// enqueue hands o to the writer and waits for its outcome.
func (s *Store) enqueue(o *op) error {
	if err := o.ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return budget.ErrClosed
	}
	s.ops <- o
	s.mu.RUnlock()
	<-o.done
	return o.err
}

// writer is the single goroutine that writes: it takes whatever operations
// are waiting, up to MaxBatch, and commits them in one transaction.
func (s *Store) writer() {
	defer close(s.done)
	batch := make([]*op, 0, s.max)
	for first := range s.ops {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < s.max {
			select {
			case o, ok := <-s.ops:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		s.commit(batch)
		if s.batchSize != nil {
			s.batchSize.Record(context.Background(), int64(len(batch)), s.batchOpts...)
		}
		for _, o := range batch {
			close(o.done)
		}
	}
}

// commit runs a batch in one immediate transaction.
//
// Most batches succeed whole: every operation checks what can refuse it
// before it writes, and a refused Reserve is a result, not an error. So a
// batch first runs plainly; only if an operation returns an error is the
// transaction rolled back and the batch run again with each operation in
// its own savepoint, so that one that fails is undone alone and the others
// commit. If the commit fails, or an operation's error made SQLite roll the
// whole transaction back (a full disk, an I/O error), every operation in
// the batch fails with that error and nothing of the batch is written.
func (s *Store) commit(batch []*op) {
	if s.run(batch, false) {
		return
	}
	var cause error // the error of the operation that stopped the batch
	for _, o := range batch {
		if o.err != nil && o.ctx.Err() == nil {
			cause = o.err
		}
		o.err = nil
	}
	s.log.Debug("budget/sqlite: an operation of a batch failed; the batch is run again with each operation in a savepoint",
		"batch_size", len(batch), "err", cause)
	s.run(batch, true)
}

// run runs a batch in one transaction, each operation in a savepoint when
// isolate is set. Without isolation it gives up and returns false, having
// rolled back, when an operation of a batch of several fails.
//
// Without isolation, operations flagged counters use the writer's counter
// cache (cache.go); with isolation, where a savepoint may undo an
// operation's writes, none does.
func (s *Store) run(batch []*op, isolate bool) bool {
	fail := func(err error) bool {
		for _, o := range batch {
			if o.err == nil {
				o.err = err
			}
		}
		return true
	}
	cc := s.cc
	rollback := func(tx *sql.Tx) {
		tx.Rollback()
		cc.reset()
	}
	tx, err := s.w.BeginTx(context.Background(), nil)
	if err != nil {
		cc.reset()
		return fail(interpret(err))
	}
	if isolate {
		cc.reset()
	} else if err := s.validate(tx); err != nil {
		rollback(tx)
		return fail(interpret(err))
	}
	for _, o := range batch {
		if err := o.ctx.Err(); err != nil {
			o.err = err
			continue
		}
		if !isolate {
			if !o.counters {
				// It reads and writes rows itself: save the cache's
				// changes first, and read them again after.
				if err := s.flush(tx); err != nil {
					rollback(tx)
					return fail(interpret(err))
				}
				cc.reset()
			}
			cc.on = o.counters
			o.err = o.fn(tx)
			cc.on = false
			if o.err != nil {
				rollback(tx)
				return len(batch) == 1 // a lone operation's error is final
			}
			continue
		}
		if _, err := tx.Stmt(s.st.savepoint).Exec(); err != nil {
			o.err = interpret(err)
			continue
		}
		if o.err = o.fn(tx); o.err != nil {
			if _, err := tx.Stmt(s.st.rollbackTo).Exec(); err != nil {
				// SQLite rolled the whole transaction back on o's error
				// (it may for SQLITE_FULL, IOERR, NOMEM): that error is
				// every operation's cause, not "no such savepoint".
				tx.Rollback()
				return fail(interpret(o.err))
			}
		}
		if _, err := tx.Stmt(s.st.release).Exec(); err != nil {
			tx.Rollback()
			return fail(interpret(err))
		}
	}
	if err := s.flush(tx); err != nil {
		rollback(tx)
		return fail(interpret(err))
	}
	if err := tx.Commit(); err != nil {
		rollback(tx)
		return fail(interpret(err))
	}
	if len(cc.rows) > maxCached {
		cc.reset()
	}
	return true
}

// Times are stored as Unix nanoseconds, which cover 1678 to 2262.
func unix(t time.Time) (int64, error) {
	n, err := sqlcodec.Unix(t)
	if err != nil {
		return 0, fmt.Errorf("budget/sqlite: %w", err)
	}
	return n, nil
}

func nullUnix(t time.Time) (sql.NullInt64, error) {
	if t.IsZero() {
		return sql.NullInt64{}, nil
	}
	n, err := unix(t)
	return sql.NullInt64{Int64: n, Valid: true}, err
}

// nanos converts a validated decimal amount for storage.
func nanos(d decimal.Decimal) (int64, error) {
	n, err := budget.ToNanos(d)
	return int64(n), err
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// ---- settings ----

// settingsCols are the settings columns: sqlcodec.SettingsCols, then the
// membership and model caps of schema version 3.
const settingsCols = sqlcodec.SettingsCols + `, teams, org, model_caps`

// settingsArgs returns the settings columns after user_id, in order.
func settingsArgs(s budget.Settings) ([]any, error) {
	limit, err := nanos(s.Limit)
	if err != nil {
		return nil, err
	}
	anchor, err := nullUnix(s.CustomAnchor)
	if err != nil {
		return nil, err
	}
	resetAt, err := nullUnix(s.ResetAt)
	if err != nil {
		return nil, err
	}
	created, err := unix(s.CreatedAt)
	if err != nil {
		return nil, err
	}
	updated, err := unix(s.UpdatedAt)
	if err != nil {
		return nil, err
	}
	teams, caps, err := scopesText(s)
	if err != nil {
		return nil, err
	}
	return []any{limit, string(s.Period), s.CustomDays, anchor, s.Timezone, b2i(s.Enforce),
		s.Thresholds.Yellow.String(), s.Thresholds.Orange.String(), s.Thresholds.Red.String(),
		b2i(s.Visible), b2i(s.CanModify), b2i(s.CanReset), s.AdminNotes, resetAt, s.Version, created, updated,
		teams, s.Org, caps}, nil
}

// storedCap is a model cap as the model_caps column keeps it: the limit in
// integer nano-USD, so that it round-trips exactly.
type storedCap struct {
	Pattern string `json:"pattern"`
	Limit   int64  `json:"limit_nanos"`
}

// scopesText encodes the teams and model_caps columns: JSON arrays, or ""
// for none.
func scopesText(s budget.Settings) (teams, caps string, err error) {
	if len(s.Teams) > 0 {
		b, err := json.Marshal(s.Teams)
		if err != nil {
			return "", "", err
		}
		teams = string(b)
	}
	if len(s.ModelCaps) > 0 {
		cs := make([]storedCap, len(s.ModelCaps))
		for i, c := range s.ModelCaps {
			n, err := nanos(c.Limit)
			if err != nil {
				return "", "", fmt.Errorf("budget/sqlite: model cap %q: %w", c.Pattern, err)
			}
			cs[i] = storedCap{c.Pattern, n}
		}
		b, err := json.Marshal(cs)
		if err != nil {
			return "", "", err
		}
		caps = string(b)
	}
	return teams, caps, nil
}

// scanSettings scans a row of settingsCols, then the extra destinations.
func scanSettings(row sqlcodec.Scanner, extra ...any) (budget.Settings, error) {
	var teams, org, caps string
	set, err := sqlcodec.ScanSettings(row, append([]any{&teams, &org, &caps}, extra...)...)
	if err != nil {
		return budget.Settings{}, err
	}
	set.Org = org
	if teams != "" {
		if err := json.Unmarshal([]byte(teams), &set.Teams); err != nil {
			return budget.Settings{}, fmt.Errorf("budget/sqlite: corrupt teams of %q: %w", set.UserID, err)
		}
	}
	if caps != "" {
		var cs []storedCap
		if err := json.Unmarshal([]byte(caps), &cs); err != nil {
			return budget.Settings{}, fmt.Errorf("budget/sqlite: corrupt model caps of %q: %w", set.UserID, err)
		}
		set.ModelCaps = make([]budget.ModelCap, len(cs))
		for i, c := range cs {
			set.ModelCaps[i] = budget.ModelCap{Pattern: c.Pattern, Limit: budget.Nanos(c.Limit).Decimal()}
		}
	}
	return set, nil
}

// Settings implements budget.Store.
func (s *Store) Settings(ctx context.Context, userID string) (budget.Settings, error) {
	if err := s.reading(ctx); err != nil {
		return budget.Settings{}, err
	}
	set, err := scanSettings(s.st.settingsR.QueryRowContext(ctx, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return budget.Settings{}, fmt.Errorf("%w: no settings for user %q", budget.ErrNotFound, userID)
	}
	return set, interpret(err)
}

// CreateSettings implements budget.Store.
func (s *Store) CreateSettings(ctx context.Context, req budget.CreateRequest) (budget.Settings, bool, error) {
	args, err := settingsArgs(req.Settings)
	if err != nil {
		return budget.Settings{}, false, err
	}
	ws, err1 := unix(req.Policy.Window.Start)
	we, err2 := unix(req.Policy.Window.End)
	if err := errors.Join(err1, err2); err != nil {
		return budget.Settings{}, false, err
	}
	var (
		out     budget.Settings
		created bool
	)
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.Stmt(s.st.create).Exec(append(append([]any{req.Settings.UserID}, args...), ws, we)...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			out, created = req.Settings.Clone(), true
			return nil
		}
		out, err = scanSettings(tx.Stmt(s.st.settings).QueryRow(req.Settings.UserID))
		return err
	})
	return out, created, interpret(err)
}

// ---- counters ----

// acct is a user's counters, read and written inside one transaction: the
// budget.Counter, whose methods make every per-budget decision, and what
// this store keeps beside it.
type acct struct {
	user    string // the budget's key: a user ID, Scope.Key or Scope.CapKey
	version int64
	limit   int64
	c       budget.Counter
	nextExp sql.NullInt64

	// For a step over several budgets (scopes.go):
	p     budget.Policy // the policy the step decides this budget by
	cap   bool          // a model cap's counters: no settings, no version, no audit
	found bool          // its row was read
}

func (a *acct) scan(row sqlcodec.Scanner) error {
	var ws, we int64
	var spent, held, marked int64
	if err := row.Scan(&a.version, &a.limit, &ws, &we, &spent, &held, &a.nextExp, &marked); err != nil {
		return err
	}
	a.c = budget.Counter{
		Window: budget.Window{Start: sqlcodec.FromUnix(ws), End: sqlcodec.FromUnix(we)},
		Spent:  budget.Nanos(spent), Held: budget.Nanos(held), Marked: budget.LevelSet(marked),
	}
	return nil
}

// begin reads the user's counters and applies the steps every
// policy-carrying call starts with: version check, window advance, expiry.
func (s *Store) begin(tx *sql.Tx, user string, p budget.Policy, now time.Time) (*acct, error) {
	a := &acct{user: user}
	if !s.cc.load(a) {
		if err := a.scan(tx.Stmt(s.st.counters).QueryRow(user)); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return nil, fmt.Errorf("%w: no settings for user %q", budget.ErrNotFound, user)
			}
			return nil, err
		}
		s.cc.keep(a)
	}
	if err := a.c.Check(user, a.version, p); err != nil {
		return nil, err
	}
	if a.c.Advances(p) {
		if err := s.moveTo(tx, a, p, now); err != nil {
			return nil, err
		}
	}
	return a, s.expire(tx, a, now)
}

// beginChecked is begin for settings changes and resets, which refuse a
// late request (a *budget.LateError) instead of deciding it against the
// stored window; the transaction's rollback undoes what begin did.
func (s *Store) beginChecked(tx *sql.Tx, user string, p budget.Policy, now time.Time) (*acct, error) {
	a, err := s.begin(tx, user, p, now)
	if err != nil {
		return nil, err
	}
	if err := a.c.CheckLate(p); err != nil {
		return nil, err
	}
	return a, nil
}

// moveTo moves the counters to p's window, in either direction, recounting
// the spend inside it from the usage rows (by index, reading only the rows
// in the window) and auditing a rollover when the counter says the stored
// window closed.
func (s *Store) moveTo(tx *sql.Tx, a *acct, p budget.Policy, now time.Time) error {
	if a.c.Window.Equal(p.Window) {
		return nil
	}
	ws, err1 := unix(p.Window.Start)
	we, err2 := unix(p.Window.End)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	var spent int64
	if err := tx.Stmt(s.st.usageOf(a.user).sumWindow).QueryRow(a.user, ws, we).Scan(&spent); err != nil {
		return err
	}
	if e, ok := a.c.MoveTo(a.user, p, budget.Nanos(spent), now); ok && !a.cap {
		return s.insertAudit(tx, e)
	}
	return nil
}

// expire stops counting holds whose expiry is not after now.
func (s *Store) expire(tx *sql.Tx, a *acct, now time.Time) error {
	n := now.UnixNano()
	if !a.nextExp.Valid || a.nextExp.Int64 > n {
		return nil
	}
	var gone int64
	if err := tx.Stmt(s.st.sumExpired).QueryRow(a.user, n).Scan(&gone); err != nil {
		return err
	}
	if _, err := tx.Stmt(s.st.expire).Exec(a.user, n); err != nil {
		return err
	}
	a.c.Unhold(budget.Nanos(gone))
	return tx.Stmt(s.st.nextExpiry).QueryRow(a.user).Scan(&a.nextExp)
}

// finish marks the alerts p calls for, saves the counters (in the cache
// when it holds them) and returns them.
func (s *Store) finish(tx *sql.Tx, a *acct, p budget.Policy) (budget.Totals, error) {
	t := a.c.Finish(p)
	if s.cc.save(a) {
		return t, nil
	}
	c := &a.c
	_, err := tx.Stmt(s.st.saveCounters).Exec(c.Window.Start.UnixNano(), c.Window.End.UnixNano(),
		int64(c.Spent), int64(c.Held), a.nextExp, int64(c.Marked), a.user)
	return t, err
}

// Reserve implements budget.Store.
func (s *Store) Reserve(ctx context.Context, req budget.ReserveRequest) (budget.Totals, bool, error) {
	if len(req.Also) > 0 {
		return s.reserveMany(ctx, req)
	}
	exp, err := unix(req.ExpiresAt)
	if err != nil {
		return budget.Totals{}, false, err
	}
	var allowed bool
	t, err := s.step(ctx, req.UserID, req.Policy, req.Now, func(tx *sql.Tx, a *acct) error {
		var err error
		if allowed, err = a.c.Hold(req.UserID, req.Policy, req.Amount); err != nil || !allowed {
			return err
		}
		res, err := tx.Stmt(s.st.insertHold).Exec(req.UserID, req.HoldID, int64(req.Amount), exp)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: hold %q exists", budget.ErrDuplicate, req.HoldID)
		}
		if !a.nextExp.Valid || exp < a.nextExp.Int64 {
			a.nextExp = sql.NullInt64{Int64: exp, Valid: true}
		}
		return nil
	})
	return t, allowed && err == nil, err
}

// heldHold is a pending hold as openHold read it.
type heldHold struct {
	amount  int64
	expires int64
	counted bool
}

// openHold reads the pending hold id, or says why it cannot be closed.
func (s *Store) openHold(tx *sql.Tx, a *acct, id string) (heldHold, error) {
	var amount, expires, st, counted int64
	err := tx.Stmt(s.st.hold).QueryRow(a.user, id).Scan(&amount, &expires, &st, &counted)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return heldHold{}, fmt.Errorf("%w: no hold %q for user %q", budget.ErrNotFound, id, a.user)
	case err != nil:
		return heldHold{}, err
	case st != 0:
		return heldHold{}, fmt.Errorf("%w: hold %q", budget.ErrReservationClosed, id)
	}
	return heldHold{amount, expires, counted == 1}, nil
}

// closeHold gives the hold its final state, taking it out of the live sum
// if it still counted.
func (s *Store) closeHold(tx *sql.Tx, a *acct, id string, h heldHold, state int) error {
	if _, err := tx.Stmt(s.st.closeHold).Exec(state, a.user, id); err != nil {
		return err
	}
	if h.counted {
		a.c.Unhold(budget.Nanos(h.amount))
	}
	return nil
}

// addUsage inserts a usage row and its daily rollup, refusing a duplicate ID,
// and counts the cost when it falls in the window.
func (s *Store) addUsage(tx *sql.Tx, a *acct, r budget.UsageRow) error {
	at, err := unix(r.At)
	if err != nil {
		return err
	}
	if err := a.c.Charge(a.user, r.Cost, r.At); err != nil {
		return err
	}
	res, err := tx.Stmt(s.st.insertUsage).Exec(r.UserID, r.ID, r.HoldID, r.Provider, r.Model, r.InputTokens, r.OutputTokens, int64(r.Cost), at)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: usage %q of user %q", budget.ErrDuplicate, r.ID, r.UserID)
	}
	if _, err := tx.Stmt(s.st.rollup).Exec(r.UserID, sqlcodec.DayOf(at), r.Provider, r.Model, int64(r.Cost), r.InputTokens, r.OutputTokens); err != nil {
		return err
	}
	return nil
}

// step runs one policy-carrying operation for a user in the writer: begin
// (version check, advance, expiry), then do, then finish with the alerts of
// p. do may be nil.
func (s *Store) step(ctx context.Context, user string, p budget.Policy, now time.Time, do func(*sql.Tx, *acct) error) (budget.Totals, error) {
	var t budget.Totals
	err := s.writeCounters(ctx, func(tx *sql.Tx) error {
		a, err := s.begin(tx, user, p, now)
		if err != nil {
			return err
		}
		if do != nil {
			if err := do(tx, a); err != nil {
				return err
			}
		}
		t, err = s.finish(tx, a, p)
		return err
	})
	return t, interpret(err)
}

// Settle implements budget.Store.
func (s *Store) Settle(ctx context.Context, req budget.SettleRequest) (budget.Totals, error) {
	if len(req.Also) > 0 {
		return s.settleMany(ctx, req)
	}
	return s.step(ctx, req.Usage.UserID, req.Policy, req.Now, func(tx *sql.Tx, a *acct) error {
		h, err := s.openHold(tx, a, req.HoldID)
		if err != nil {
			return err
		}
		if err := s.addUsage(tx, a, req.Usage); err != nil {
			return err
		}
		return s.closeHold(tx, a, req.HoldID, h, 1)
	})
}

// Release implements budget.Store.
func (s *Store) Release(ctx context.Context, req budget.ReleaseRequest) (budget.Totals, error) {
	if len(req.Also) > 0 {
		return s.releaseMany(ctx, req)
	}
	return s.step(ctx, req.UserID, req.Policy, req.Now, func(tx *sql.Tx, a *acct) error {
		h, err := s.openHold(tx, a, req.HoldID)
		if err != nil {
			return err
		}
		return s.closeHold(tx, a, req.HoldID, h, 2)
	})
}

// Extend implements budget.Store. Its checks run after begin's window and
// expiry steps, whose writes an error rolls back with the rest: a hold
// those steps stopped counting (counted = 0) no longer counts, and is not
// revived.
//
// users.next_expiry stays at or before the earliest expiry of a counted
// hold, which is all that expire, Totals, Accounts and the fast paths rely
// on; when it was this hold's old expiry, it is read again from the
// live-hold index, so that the calls after the old expiry do not run the
// expiry step (and miss Totals' read-only answer) for nothing.
func (s *Store) Extend(ctx context.Context, req budget.ExtendRequest) (budget.Totals, error) {
	exp, err := unix(req.ExpiresAt)
	if err != nil {
		return budget.Totals{}, err
	}
	if len(req.Also) > 0 {
		return s.extendMany(ctx, req, exp)
	}
	return s.step(ctx, req.UserID, req.Policy, req.Now, func(tx *sql.Tx, a *acct) error {
		h, err := s.openHold(tx, a, req.HoldID)
		if err != nil {
			return err
		}
		if !h.counted || h.expires <= req.Now.UnixNano() {
			return fmt.Errorf("%w: hold %q of user %q", budget.ErrHoldExpired, req.HoldID, a.user)
		}
		return s.extendOne(tx, a, req.HoldID, h, exp)
	})
}

// extendOne moves the expiry of a's counted hold id, read as h, to exp
// when that is later, keeping a.nextExp at or before the earliest expiry.
func (s *Store) extendOne(tx *sql.Tx, a *acct, id string, h heldHold, exp int64) error {
	if exp <= h.expires {
		return nil
	}
	if _, err := tx.Stmt(s.st.extendHold).Exec(exp, a.user, id); err != nil {
		return err
	}
	if a.nextExp.Valid && a.nextExp.Int64 < h.expires {
		return nil // before the old expiry: it bounds the new earliest too
	}
	return tx.Stmt(s.st.nextExpiry).QueryRow(a.user).Scan(&a.nextExp)
}

// Record implements budget.Store.
func (s *Store) Record(ctx context.Context, req budget.RecordRequest) (budget.Totals, error) {
	if len(req.Also) > 0 {
		return s.recordMany(ctx, req)
	}
	return s.step(ctx, req.Usage.UserID, req.Policy, req.Now, func(tx *sql.Tx, a *acct) error {
		return s.addUsage(tx, a, req.Usage)
	})
}

// Totals implements budget.Store. When the step would change nothing (the
// counter does not move to another window, no hold has expired and no
// alert is due), it answers from a read connection without entering the
// write queue.
func (s *Store) Totals(ctx context.Context, req budget.TotalsRequest) (budget.Totals, error) {
	if len(req.Also) > 0 {
		return s.totalsMany(ctx, req)
	}
	if err := s.reading(ctx); err != nil {
		return budget.Totals{}, err
	}
	a := &acct{user: req.UserID}
	err := a.scan(s.st.countersR.QueryRowContext(ctx, req.UserID))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return budget.Totals{}, fmt.Errorf("%w: no settings for user %q", budget.ErrNotFound, req.UserID)
	case err != nil:
		return budget.Totals{}, interpret(err)
	}
	if err := a.c.Check(req.UserID, a.version, req.Policy); err != nil {
		return budget.Totals{}, err
	}
	if !a.c.Advances(req.Policy) && (!a.nextExp.Valid || a.nextExp.Int64 > req.Now.UnixNano()) && !a.c.Due(req.Policy) {
		return a.c.Totals(), nil
	}
	return s.step(ctx, req.UserID, req.Policy, req.Now, nil)
}

// UpdateSettings implements budget.Store.
func (s *Store) UpdateSettings(ctx context.Context, req budget.UpdateRequest) (budget.Totals, error) {
	args, err := settingsArgs(req.Settings)
	if err != nil {
		return budget.Totals{}, err
	}
	var t budget.Totals
	err = s.write(ctx, func(tx *sql.Tx) error {
		a, err := s.beginChecked(tx, req.Settings.UserID, req.Current, req.Now)
		if err != nil {
			return err
		}
		if err := s.moveTo(tx, a, req.Next, req.Now); err != nil {
			return err
		}
		if _, err := tx.Stmt(s.st.updateSettings).Exec(append(args, req.Settings.UserID)...); err != nil {
			return err
		}
		if err := s.insertAudit(tx, req.Audit); err != nil {
			return err
		}
		t, err = s.finish(tx, a, req.Next)
		return err
	})
	return t, interpret(err)
}

// Reset implements budget.Store.
func (s *Store) Reset(ctx context.Context, req budget.ResetRequest) (budget.AuditEntry, budget.Totals, error) {
	args, err := settingsArgs(req.Settings)
	if err != nil {
		return budget.AuditEntry{}, budget.Totals{}, err
	}
	var (
		e budget.AuditEntry
		t budget.Totals
	)
	err = s.write(ctx, func(tx *sql.Tx) error {
		a, err := s.beginChecked(tx, req.Settings.UserID, req.Current, req.Now)
		if err != nil {
			return err
		}
		e = req.Audit
		e.PreviousSpent = a.c.Spent.Decimal()
		if err := s.insertAudit(tx, e); err != nil {
			return err
		}
		if err := tx.Stmt(s.st.lastID).QueryRow().Scan(&e.ID); err != nil {
			return err
		}
		if _, err := tx.Stmt(s.st.updateSettings).Exec(append(args, req.Settings.UserID)...); err != nil {
			return err
		}
		if err := s.moveTo(tx, a, req.Next, req.Now); err != nil {
			return err
		}
		t, err = s.finish(tx, a, req.Next)
		return err
	})
	if err != nil {
		return budget.AuditEntry{}, budget.Totals{}, interpret(err)
	}
	return e.Clone(), t, nil
}

// ---- audit and defaults ----

func (s *Store) insertAudit(tx *sql.Tx, e budget.AuditEntry) error {
	var money [3]int64
	for i, d := range [...]decimal.Decimal{e.PreviousLimit, e.NewLimit, e.PreviousSpent} {
		n, err := nanos(d)
		if err != nil {
			return err
		}
		money[i] = n
	}
	ps, err1 := nullUnix(e.PeriodStart)
	pe, err2 := nullUnix(e.PeriodEnd)
	at, err3 := unix(e.At)
	before, err4 := jsonOf(e.Before)
	after, err5 := jsonOf(e.After)
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return err
	}
	_, err := tx.Stmt(s.st.insertAudit).Exec(e.UserID, string(e.Type), e.Actor, b2i(e.ActorAdmin), e.Reason,
		money[0], money[1], money[2], ps, pe, before, after, e.BulkID, e.Template, at)
	return err
}

func jsonOf(s *budget.Settings) (sql.NullString, error) {
	b, err := sqlcodec.SettingsJSON(s)
	return sql.NullString{String: string(b), Valid: b != nil}, err
}

// Audit implements budget.Store.
func (s *Store) Audit(ctx context.Context, q budget.AuditQuery) ([]budget.AuditEntry, error) {
	if err := s.reading(ctx); err != nil {
		return nil, err
	}
	before := q.BeforeID()
	limit := q.Limit
	if limit <= 0 {
		limit = -1
	}
	var (
		stmt *sql.Stmt
		args []any
	)
	switch {
	case q.UserID != "" && q.Type != "":
		stmt, args = s.st.auditUserType, []any{q.UserID, string(q.Type), before, limit}
	case q.UserID != "":
		stmt, args = s.st.auditUser, []any{q.UserID, before, limit}
	case q.Type != "":
		stmt, args = s.st.auditType, []any{string(q.Type), before, limit}
	default:
		stmt, args = s.st.auditAll, []any{before, limit}
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return nil, interpret(err)
	}
	defer rows.Close()
	var out []budget.AuditEntry
	for rows.Next() {
		e, err := sqlcodec.ScanAudit(rows)
		if err != nil {
			return nil, interpret(err)
		}
		out = append(out, e)
	}
	return out, interpret(rows.Err())
}

// Defaults implements budget.Store.
func (s *Store) Defaults(ctx context.Context) (budget.Defaults, error) {
	if err := s.reading(ctx); err != nil {
		return budget.Defaults{}, err
	}
	var (
		plan string
		d    budget.Defaults
		at   int64
	)
	err := s.st.defaults.QueryRowContext(ctx).Scan(&plan, &d.Version, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return budget.Defaults{}, budget.ErrNotFound
	}
	if err != nil {
		return budget.Defaults{}, interpret(err)
	}
	if err := json.Unmarshal([]byte(plan), &d.Plan); err != nil {
		return budget.Defaults{}, fmt.Errorf("budget/sqlite: corrupt defaults: %w", err)
	}
	d.UpdatedAt = sqlcodec.FromUnix(at)
	return d, nil
}

// UpdateDefaults implements budget.Store.
func (s *Store) UpdateDefaults(ctx context.Context, req budget.DefaultsRequest) error {
	plan, err := sqlcodec.PlanJSON(req.Defaults.Plan)
	if err != nil {
		return err
	}
	at, err := unix(req.Defaults.UpdatedAt)
	if err != nil {
		return err
	}
	return interpret(s.write(ctx, func(tx *sql.Tx) error {
		var version int64
		err := tx.Stmt(s.st.defaultsVersion).QueryRow().Scan(&version)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if version != req.ExpectVersion {
			return fmt.Errorf("%w: defaults are at version %d, not %d", budget.ErrConflict, version, req.ExpectVersion)
		}
		if _, err := tx.Stmt(s.st.saveDefaults).Exec(string(plan), req.Defaults.Version, at); err != nil {
			return err
		}
		return s.insertAudit(tx, req.Audit)
	}))
}

// Templates implements budget.Store.
func (s *Store) Templates(ctx context.Context) ([]budget.Template, error) {
	if err := s.reading(ctx); err != nil {
		return nil, err
	}
	rows, err := s.st.templates.QueryContext(ctx)
	if err != nil {
		return nil, interpret(err)
	}
	defer rows.Close()
	var out []budget.Template
	for rows.Next() {
		t, err := sqlcodec.ScanTemplate(rows)
		if err != nil {
			return nil, interpret(err)
		}
		out = append(out, t)
	}
	return out, interpret(rows.Err())
}

// templateVersion returns the stored version of the template name, 0 for
// none.
func (s *Store) templateVersion(tx *sql.Tx, name string) (int64, error) {
	var v int64
	err := tx.Stmt(s.st.templateVersion).QueryRow(name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

// SaveTemplate implements budget.Store.
func (s *Store) SaveTemplate(ctx context.Context, req budget.TemplateRequest) error {
	plan, err := sqlcodec.PlanJSON(req.Template.Plan)
	if err != nil {
		return err
	}
	at, err := unix(req.Template.UpdatedAt)
	if err != nil {
		return err
	}
	name := req.Template.Name
	return interpret(s.write(ctx, func(tx *sql.Tx) error {
		v, err := s.templateVersion(tx, name)
		if err != nil {
			return err
		}
		if v != req.ExpectVersion {
			return fmt.Errorf("%w: template %q is at version %d, not %d", budget.ErrConflict, name, v, req.ExpectVersion)
		}
		if _, err := tx.Stmt(s.st.saveTemplate).Exec(name, string(plan), req.Template.Version, at); err != nil {
			return err
		}
		return s.insertAudit(tx, req.Audit)
	}))
}

// DeleteTemplate implements budget.Store.
func (s *Store) DeleteTemplate(ctx context.Context, req budget.TemplateRequest) error {
	name := req.Template.Name
	return interpret(s.write(ctx, func(tx *sql.Tx) error {
		v, err := s.templateVersion(tx, name)
		switch {
		case err != nil:
			return err
		case v == 0:
			return fmt.Errorf("%w: no template %q", budget.ErrNotFound, name)
		case v != req.ExpectVersion:
			return fmt.Errorf("%w: template %q is at version %d, not %d", budget.ErrConflict, name, v, req.ExpectVersion)
		}
		if _, err := tx.Stmt(s.st.deleteTemplate).Exec(name); err != nil {
			return err
		}
		return s.insertAudit(tx, req.Audit)
	}))
}

// ---- queries ----

// History implements budget.Store, with budget.UsageCursor cursors.
func (s *Store) History(ctx context.Context, q budget.HistoryQuery) (budget.HistoryPage, error) {
	if err := s.reading(ctx); err != nil {
		return budget.HistoryPage{}, err
	}
	from, to, before, err := q.Bounds()
	if err != nil {
		return budget.HistoryPage{}, err
	}
	curAt, curSeq := before.At, before.Seq
	// The rows before the cursor have at <= curAt: bounding at by it too
	// lets the index scan start at the cursor, where SQLite otherwise
	// starts at to and walks every newer row of a deep page.
	if curAt < math.MaxInt64 && curAt+1 < to {
		to = curAt + 1
	}
	limit := q.Limit
	if limit <= 0 {
		limit = math.MaxInt32
	}
	rows, err := s.st.usageOf(q.UserID).history.QueryContext(ctx, q.UserID, from, to, curAt, curSeq, limit+1)
	if err != nil {
		return budget.HistoryPage{}, interpret(err)
	}
	defer rows.Close()
	p, err := sqlcodec.ScanHistory(rows, q.Limit)
	if err != nil {
		return budget.HistoryPage{}, interpret(err)
	}
	return p, interpret(rows.Err())
}

// Breakdown implements budget.Store. Whole UTC days inside the range come
// from the daily rollups; only the partial days at its edges read usage rows.
func (s *Store) Breakdown(ctx context.Context, q budget.BreakdownQuery) ([]budget.UsageGroup, error) {
	if err := s.reading(ctx); err != nil {
		return nil, err
	}
	firstDay, lastDay, spans := sqlcodec.Split(q.From.UnixNano(), q.To.UnixNano())
	type key struct{ provider, model string }
	groups := map[key]*budget.UsageGroup{}
	add := func(rows *sql.Rows) error {
		defer rows.Close()
		for rows.Next() {
			var g budget.UsageGroup
			var cost int64
			if err := rows.Scan(&g.Provider, &g.Model, &cost, &g.Requests, &g.InputTokens, &g.OutputTokens); err != nil {
				return err
			}
			k := key{g.Provider, g.Model}
			if old := groups[k]; old != nil {
				c, ok := old.Cost.Add(budget.Nanos(cost))
				if !ok {
					return fmt.Errorf("budget/sqlite: breakdown of %q exceeds %s", q.UserID, budget.MaxNanos)
				}
				old.Cost, old.Requests = c, old.Requests+g.Requests
				old.InputTokens += g.InputTokens
				old.OutputTokens += g.OutputTokens
				continue
			}
			g.Cost = budget.Nanos(cost)
			groups[k] = &g
		}
		return rows.Err()
	}
	if firstDay < lastDay {
		rows, err := s.st.breakdownDays.QueryContext(ctx, q.UserID, firstDay, lastDay)
		if err != nil {
			return nil, interpret(err)
		}
		if err := add(rows); err != nil {
			return nil, interpret(err)
		}
	}
	for _, sp := range spans {
		if sp[0] >= sp[1] {
			continue
		}
		rows, err := s.st.usageOf(q.UserID).breakdownRows.QueryContext(ctx, q.UserID, sp[0], sp[1])
		if err != nil {
			return nil, interpret(err)
		}
		if err := add(rows); err != nil {
			return nil, interpret(err)
		}
	}
	out := make([]budget.UsageGroup, 0, len(groups))
	for _, g := range groups {
		out = append(out, *g)
	}
	return out, nil
}

// Accounts implements budget.Store.
func (s *Store) Accounts(ctx context.Context, q budget.AccountsQuery) ([]budget.Account, error) {
	if err := s.reading(ctx); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = -1
	}
	var (
		rows *sql.Rows
		err  error
	)
	switch kind := cmp.Or(q.Kind, budget.UserScope); kind {
	case budget.UserScope:
		rows, err = s.st.accounts.QueryContext(ctx, max(q.After, usersAfter), limit)
	case budget.TeamScope, budget.OrgScope:
		lo, hi := keyRange(kind)
		rows, err = s.st.accountsIn.QueryContext(ctx, max(q.After, lo), hi, limit)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, interpret(err)
	}
	defer rows.Close()
	var out []budget.Account
	now := q.Now.UnixNano()
	for rows.Next() {
		var (
			ws, we, spent, held int64
			nextExp             sql.NullInt64
		)
		set, err := scanSettings(rows, &ws, &we, &spent, &held, &nextExp)
		if err != nil {
			return nil, interpret(err)
		}
		if nextExp.Valid && nextExp.Int64 <= now {
			if err := s.st.liveHeld.QueryRowContext(ctx, set.UserID, now).Scan(&held); err != nil {
				return nil, interpret(err)
			}
		}
		c := budget.Counter{Window: budget.Window{Start: sqlcodec.FromUnix(ws), End: sqlcodec.FromUnix(we)}, Spent: budget.Nanos(spent), Held: budget.Nanos(held)}
		out = append(out, budget.Account{Settings: set, Totals: c.Totals()})
	}
	return out, interpret(rows.Err())
}

// usersAfter sorts after every team's and org's key, "\x1fteam:..." and
// "\x1forg:...", and before every user ID, which starts with a character
// at or above ' ' (budget.ValidateUserID).
const usersAfter = "\x1f\x7f"

// keyRange returns the bounds, both excluded, of the keys of a team or org
// kind: its key prefix ("\x1fteam:"), and that prefix with ':' advanced to
// ';'. The caps of those holders are in the range too, with cap = 1.
func keyRange(kind budget.ScopeKind) (lo, hi string) {
	lo = budget.Scope{Kind: kind}.Key()
	return lo, lo[:len(lo)-1] + ";"
}

// ---- retention ----

// Prune deletes usage rows recorded before cutoff, and closed holds that
// expired before it, to bound the file's growth. Call it from a periodic job
// of your own, with a cut-off as old as your history must reach.
//
// It never deletes a row inside a user's current window, so every counter
// stays equal to the sum of its rows; and the daily rollups are kept, so
// breakdowns stay exact for whole UTC days before the cut-off (a range that
// starts or ends partway through a pruned day loses that day's partial rows).
// It returns the number of usage rows deleted.
func (s *Store) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	c, err := unix(cutoff)
	if err != nil {
		return 0, err
	}
	var n int64
	err = s.write(ctx, func(tx *sql.Tx) error {
		n = 0
		for _, table := range []string{"usage", "usage_charged"} {
			res, err := tx.ExecContext(ctx, `DELETE FROM `+table+` AS u WHERE at < ?
				AND at < (SELECT win_start FROM users WHERE users.user_id = u.user_id)`, c)
			if err != nil {
				return err
			}
			d, _ := res.RowsAffected()
			n += d
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM holds WHERE state <> 0 AND expires < ?`, c)
		return err
	})
	return n, interpret(err)
}
