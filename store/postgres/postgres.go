// Package postgres is a budget.Store in PostgreSQL, for budgets shared by
// many processes on many hosts.
//
// It is exact (money is BIGINT nano-dollars and times BIGINT Unix
// nanoseconds, so every SUM is integer arithmetic and every time keeps its
// nanoseconds), durable (a call returns once PostgreSQL has committed) and
// O(1) in history: per-user counters live on the user's row and are updated
// in the same transaction as each usage row, so Reserve and Status read no
// history, and breakdowns read daily rollups for whole days.
//
// Each Store method is one transaction at READ COMMITTED that starts by
// locking the user's row (SELECT ... FOR UPDATE): calls for one user queue
// on that lock, whichever process or host they come from, and calls for
// different users never wait on each other. A transaction PostgreSQL aborts
// for a serialization failure or a deadlock is run again, a bounded number
// of times. Reads go to the server as they are made (the first one in the
// same round trip as BEGIN); writes are queued and sent with COMMIT in one
// last round trip: two round trips. On the hot path a Store does better:
// it decides on the counters it last saw for the user and sends the
// outcome as one statement that takes the same row lock and writes only if
// the counters are still those, else falls back to the transaction (see
// fast.go), so a Reserve or a Settle usually costs one round trip, and
// holds the row lock only while the server runs it, not across a round
// trip to the client. Those statements, from concurrent calls for
// different users, share commits (see group.go).
//
// Budgets beyond a user's own (teams, orgs, model caps: see budget.Store)
// are rows of the same tables under their keys; a call that spends several
// is one locking transaction that locks every key in increasing key order
// (see scoped.go), so that calls sharing budgets never deadlock, whichever
// hosts they come from. Only calls for a user alone take the fast path.
//
// No usage is ever deleted unless you call Prune, which removes old usage
// rows outside every user's current window and keeps the daily rollups;
// the audit log is never deleted (DeleteTemplate deletes a template, and
// audits it).
//
// The tables live in their own schema (Options.Schema, "budget" by
// default), created and migrated by Open and New under an advisory lock, so
// that any number of instances starting at once migrate it exactly once.
//
// Pick PostgreSQL to share budgets across hosts; store/sqlite is simpler for
// one service on one machine.
package postgres

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/internal/sqlcodec"
	"github.com/shopspring/decimal"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
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
)

// migrations[i] moves a schema from version i to i+1. They only ever run
// forward; a schema at a higher version than len(migrations) was written by
// a newer library and is refused.
var migrations = []string{schemaV1, migrateV2, migrateV3, migrateV4}

// SchemaVersion is the schema version this package writes.
var SchemaVersion = len(migrations)

// ErrNewerSchema is returned by Open and New for a schema written by a newer
// version of this package.
var ErrNewerSchema = errors.New("budget/postgres: database schema is newer than this library")

// DefaultSchema is the schema the tables live in when Options.Schema is
// empty.
const DefaultSchema = "budget"

// Options configure a Store. The zero value is valid.
type Options struct {
	// Schema is the PostgreSQL schema that holds the store's tables,
	// created on first use. Defaults to DefaultSchema. Stores that must
	// not share budgets (tenants, test runs) each take their own. It must
	// be a plain identifier: a letter or underscore, then letters, digits
	// or underscores, 63 bytes at most.
	Schema string
	// MaxRetries is how many times a transaction PostgreSQL aborted for a
	// serialization failure or a deadlock (SQLSTATE 40001, 40P01) is run
	// again before its error is returned. Defaults to 5; negative means
	// never.
	MaxRetries int

	// MeterProvider receives budget.store.batch.size, a histogram of the
	// statements each group commit sends (unit {statement}, attribute
	// store = "postgres"; a statement sent alone is a batch of one).
	// Defaults to none.
	MeterProvider metric.MeterProvider
	// Logger receives what the store handles without returning it: a
	// transaction run again after a serialization failure or deadlock
	// (Warn); a group commit rolled back for one statement's failure and
	// the others sent again (Debug), or rolled back for no statement's
	// failure and each statement sent alone (Warn). Defaults to
	// discarding.
	Logger *slog.Logger
}

// Store is a budget.Store in PostgreSQL. It is safe for concurrent use, and
// any number of Stores, in any number of processes, may share one schema.
type Store struct {
	pool    *pgxpool.Pool
	owned   bool // Close closes the pool
	schema  string
	q       queries
	retries int
	closed  atomic.Bool
	cache   cache // counters last seen, for the fast path
	group   group // fast statements waiting for a commit

	// Counts of fast steps that answered and that found stale counters.
	fastDone, fastStale atomic.Int64
	noFast              bool // tests turn the fast path off

	// locked, when set (by tests), runs inside every write transaction
	// that locks a user's row, right after the lock, with the backend's
	// process ID.
	locked func(ctx context.Context, pid uint32)
	// flushing, when set (by tests), runs before every batch of fast
	// statements is sent, with the backend's process ID and the number of
	// statements.
	flushing func(ctx context.Context, pid uint32, n int)

	log       *slog.Logger
	batchSize metric.Int64Histogram // nil without a MeterProvider
	batchOpts []metric.RecordOption
}

var _ budget.Store = (*Store)(nil)

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// Open connects to the database at dsn (a URL or key=value string, as
// pgxpool.ParseConfig reads it; pool settings such as pool_max_conns go
// there too), then creates or migrates the store's schema. Close closes the
// pool it opened. Use New instead to share a pool the application already
// has.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("budget/postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("budget/postgres: %w", err)
	}
	s, err := New(ctx, pool, opts)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// New returns a Store on a pool the application already has, after creating
// or migrating the store's schema. The pool stays the application's: Close
// marks the Store closed but leaves the pool open.
func New(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Store, error) {
	schema := opts.Schema
	if schema == "" {
		schema = DefaultSchema
	}
	if !identRE.MatchString(schema) {
		return nil, fmt.Errorf("budget/postgres: invalid schema name %q: want a letter or underscore, then letters, digits or underscores, 63 bytes at most", schema)
	}
	retries := opts.MaxRetries
	switch {
	case retries == 0:
		retries = 5
	case retries < 0:
		retries = 0
	}
	if err := migrate(ctx, pool, schema, len(migrations)); err != nil {
		return nil, fmt.Errorf("budget/postgres: migrating schema %q: %w", schema, interpret(err))
	}
	s := &Store{pool: pool, schema: schema, q: newQueries(pgx.Identifier{schema}.Sanitize()), retries: retries, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.MeterProvider != nil {
		// A failure to register leaves a no-op the SDK already reported.
		s.batchSize, _ = opts.MeterProvider.Meter("github.com/llmbudget/budget/store/postgres").Int64Histogram(
			"budget.store.batch.size", metric.WithUnit("{statement}"),
			metric.WithDescription("Statements sent per group commit (one alone included)."),
			metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64))
		s.batchOpts = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("store", "postgres")))}
	}
	return s, nil
}

// lockKey is the advisory lock migrations of schema take.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("github.com/llmbudget/budget/store/postgres migrate " + schema))
	return int64(h.Sum64())
}

// migrate brings the schema up to version target (len(migrations) but in
// tests) in one transaction, holding an advisory lock for the schema, so
// that instances starting at once migrate it exactly once; the others wait,
// then find it current. It creates nothing when the schema is current, so a
// role that may only use the schema can open it.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string, target int) error {
	qs := pgx.Identifier{schema}.Sanitize()
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey(schema)); err != nil {
			return err
		}
		var hasSchema, hasVersion bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
			to_regclass($2) IS NOT NULL`, schema, qs+".schema_version").Scan(&hasSchema, &hasVersion); err != nil {
			return err
		}
		v := 0
		if hasVersion {
			if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM `+qs+`.schema_version`).Scan(&v); err != nil {
				return err
			}
		}
		switch {
		case v > len(migrations):
			return fmt.Errorf("%w: schema %q is at version %d, this library knows up to %d", ErrNewerSchema, schema, v, len(migrations))
		case v >= target:
			return nil
		}
		if !hasSchema {
			if _, err := tx.Exec(ctx, `CREATE SCHEMA `+qs); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+qs+`.schema_version (
			version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SET LOCAL search_path TO `+qs); err != nil {
			return err
		}
		for ; v < target; v++ {
			// No arguments: the simple protocol, which runs a script.
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return fmt.Errorf("migrating to schema version %d: %w", v+1, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO `+qs+`.schema_version (version) VALUES ($1)`, v+1); err != nil {
				return err
			}
		}
		return nil
	})
}

// Schema returns the name of the schema the store's tables live in.
func (s *Store) Schema() string { return s.schema }

// Close marks the store closed and, if Open opened the pool, closes it,
// which waits for the connections calls in flight are using (a pool given
// to New stays open). Calls after Close return budget.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.owned {
		s.pool.Close()
	}
	return nil
}

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return budget.ErrClosed
	}
	return ctx.Err()
}

// interpret translates driver errors into the budget sentinels and clear
// messages, in one place.
func interpret(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %v", budget.ErrNotFound, err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch code := pe.Code; {
		case code == "23505": // unique_violation: an ID already taken
			return fmt.Errorf("%w: %s", budget.ErrDuplicate, cmpOr(pe.Detail, pe.Message))
		case code == "40001" || code == "40P01":
			return fmt.Errorf("budget/postgres: the transaction was aborted by a serialization failure or deadlock: %w", err)
		case code == "22021" || code == "22P05":
			return fmt.Errorf("%w: PostgreSQL cannot store this text (a NUL byte?): %v", budget.ErrInvalid, err)
		case code == "22003":
			return fmt.Errorf("budget/postgres: a sum exceeds the range of BIGINT nano-dollars: %w", err)
		case code == "3F000" || code == "42P01":
			return fmt.Errorf("budget/postgres: the store's schema or tables are missing (dropped after Open?): %w", err)
		case code == "25006":
			return fmt.Errorf("budget/postgres: the server is read-only (a standby?): %w", err)
		case strings.HasPrefix(code, "53"):
			return fmt.Errorf("budget/postgres: the server is out of resources (disk, memory or connections); nothing of this operation was written: %w", err)
		case strings.HasPrefix(code, "57"):
			return fmt.Errorf("budget/postgres: the server ended the session (administrator command, shutdown or crash): %w", err)
		case strings.HasPrefix(code, "08"):
			return fmt.Errorf("budget/postgres: connection failure: %w", err)
		case strings.HasPrefix(code, "28"):
			return fmt.Errorf("budget/postgres: the server refused the credentials: %w", err)
		}
		return err
	}
	if strings.Contains(err.Error(), "closed pool") {
		return fmt.Errorf("%w: %v", budget.ErrClosed, err)
	}
	return err
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// sqlState returns err's SQLSTATE, or "".
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// retryable reports whether PostgreSQL aborted a transaction that may
// simply be run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// ---- transactions ----

// txn is one write transaction on one pooled connection. Reads go to the
// server when made, the first together with BEGIN; writes are queued in w
// and sent with COMMIT in one last round trip. A fast txn (see fast.go) has
// no connection: its writes are only recorded in ops, and sent as one
// statement.
type txn struct {
	ctx   context.Context
	conn  *pgx.Conn
	begun bool
	w     pgx.Batch
	fast  bool
	ops   intents
}

// intents are the writes of a Reserve, Settle, Release, Record or Extend
// besides the counters, as the fast path sends them and the cache
// remembers them. (Extend never takes the fast path: its intent only
// updates the cache.)
type intents struct {
	newHold    string // Reserve: the hold placed
	holdArgs   []any  // its hold_id, amount, expires
	closeHold  string // Settle, Release: the hold closed
	state      int16  // its new state
	usage      []any  // Settle, Record: id, hold_id, provider, model, input, output, cost, at, day
	extendHold string // Extend: the hold whose expiry moved later
	extendTo   int64  // its new expiry
}

// batch returns a new batch for reads, starting with BEGIN if the
// transaction has not begun.
func (t *txn) batch() *pgx.Batch {
	b := &pgx.Batch{}
	if !t.begun {
		b.Queue("begin")
		t.begun = true
	}
	return b
}

// send runs b and its callbacks, returning the first error.
func (t *txn) send(b *pgx.Batch) error { return t.conn.SendBatch(t.ctx, b).Close() }

// row runs one query inside the transaction and scans its row into dest.
func (t *txn) row(sql string, args []any, dest ...any) error {
	b := t.batch()
	b.Queue(sql, args...).QueryRow(func(r pgx.Row) error { return r.Scan(dest...) })
	return t.send(b)
}

// write queues a statement for the commit; a fast txn sends none.
func (t *txn) write(sql string, args ...any) {
	if !t.fast {
		t.w.Queue(sql, args...)
	}
}

// commit sends the queued writes and COMMIT. A statement that fails aborts
// the transaction: the server skips the rest, COMMIT included.
func (t *txn) commit() error {
	if !t.begun && len(t.w.QueuedQueries) == 0 {
		return nil
	}
	if !t.begun {
		t.w.QueuedQueries = append([]*pgx.QueuedQuery{{SQL: "begin"}}, t.w.QueuedQueries...)
		t.begun = true
	}
	t.w.Queue("commit")
	return t.send(&t.w)
}

// transact runs fn in a transaction and commits it, running it again when
// PostgreSQL aborts it for a serialization failure or a deadlock, up to
// the store's retries, after a short jittered pause.
func (s *Store) transact(ctx context.Context, fn func(*txn) error) error {
	for attempt := 0; ; attempt++ {
		err := s.attempt(ctx, fn)
		if err == nil || !retryable(err) {
			return err
		}
		if attempt >= s.retries {
			return fmt.Errorf("gave up after %d attempts: %w", attempt+1, err)
		}
		backoff := time.Duration(1+rand.IntN(4<<min(attempt, 4))) * time.Millisecond
		s.log.WarnContext(ctx, "budget/postgres: transaction aborted by a serialization failure or deadlock; running it again",
			"attempt", attempt+1, "retry_in", backoff, "sqlstate", sqlState(err))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
	}
}

// attempt runs fn and commits, once, on a connection of its own, and
// leaves the connection outside any transaction (or closed) for the pool.
func (s *Store) attempt(ctx context.Context, fn func(*txn) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	t := &txn{ctx: ctx, conn: c.Conn()}
	err = fn(t)
	if err == nil {
		err = t.commit()
	}
	if conn := c.Conn(); !conn.IsClosed() && conn.PgConn().TxStatus() != 'I' {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if _, rerr := conn.Exec(rctx, "rollback"); rerr != nil {
			conn.Close(rctx) // the pool drops it on Release
		}
		cancel()
		if err == nil { // cannot happen: a successful COMMIT ends the transaction
			err = errors.New("budget/postgres: transaction left open after commit")
		}
	}
	return err
}

// ---- conversions ----

// Times are stored as Unix nanoseconds, which cover 1678 to 2262.
func unix(t time.Time) (int64, error) {
	n, err := sqlcodec.Unix(t)
	if err != nil {
		return 0, fmt.Errorf("budget/postgres: %w", err)
	}
	return n, nil
}

// nullUnix is unix for a time that may be zero, stored as NULL.
func nullUnix(t time.Time) (*int64, error) {
	if t.IsZero() {
		return nil, nil
	}
	n, err := unix(t)
	return &n, err
}

// nanos converts a validated decimal amount for storage.
func nanos(d decimal.Decimal) (int64, error) {
	n, err := budget.ToNanos(d)
	return int64(n), err
}

// ---- settings ----

// settingsArgs returns the settings columns (settingsCols), user_id first,
// in order.
func settingsArgs(s budget.Settings) ([]any, error) {
	limit, err := nanos(s.Limit)
	if err != nil {
		return nil, err
	}
	anchor, err1 := nullUnix(s.CustomAnchor)
	resetAt, err2 := nullUnix(s.ResetAt)
	created, err3 := unix(s.CreatedAt)
	updated, err4 := unix(s.UpdatedAt)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, err
	}
	// Arrays are never NULL: an empty one is '{}'.
	teams := append([]string{}, s.Teams...)
	patterns := make([]string, len(s.ModelCaps))
	limits := make([]int64, len(s.ModelCaps))
	for i, c := range s.ModelCaps {
		if limits[i], err = nanos(c.Limit); err != nil {
			return nil, fmt.Errorf("budget/postgres: model cap %q: %w", c.Pattern, err)
		}
		patterns[i] = c.Pattern
	}
	return []any{s.UserID, limit, string(s.Period), s.CustomDays, anchor, s.Timezone, s.Enforce,
		s.Thresholds.Yellow.String(), s.Thresholds.Orange.String(), s.Thresholds.Red.String(),
		s.Visible, s.CanModify, s.CanReset, s.AdminNotes, resetAt, s.Version, created, updated,
		teams, s.Org, patterns, limits}, nil
}

// scopeFields are the settings columns schema version 3 added: the
// membership and the model caps, whose limits are nano-USD.
type scopeFields struct {
	teams, patterns []string
	org             string
	limits          []int64
}

// scanSettings scans a row of settingsCols, then the extra destinations.
func scanSettings(row sqlcodec.Scanner, extra ...any) (budget.Settings, error) {
	var f scopeFields
	s, err := sqlcodec.ScanSettings(row, append([]any{&f.teams, &f.org, &f.patterns, &f.limits}, extra...)...)
	if err != nil {
		return budget.Settings{}, err
	}
	if len(f.patterns) != len(f.limits) {
		return budget.Settings{}, fmt.Errorf("budget/postgres: corrupt model caps of %q: %d patterns, %d limits", s.UserID, len(f.patterns), len(f.limits))
	}
	if len(f.teams) > 0 {
		s.Teams = f.teams
	}
	s.Org = f.org
	for i, p := range f.patterns {
		s.ModelCaps = append(s.ModelCaps, budget.ModelCap{Pattern: p, Limit: budget.Nanos(f.limits[i]).Decimal()})
	}
	return s, nil
}

// noSettings is the error for a key without settings, naming its holder.
func noSettings(key string) error {
	scope, _ := budget.ScopeOfKey(key)
	return fmt.Errorf("%w: no settings for %s %q", budget.ErrNotFound, scope.Kind, scope.ID)
}

// Settings implements budget.Store.
func (s *Store) Settings(ctx context.Context, userID string) (budget.Settings, error) {
	if err := s.check(ctx); err != nil {
		return budget.Settings{}, err
	}
	set, err := scanSettings(s.pool.QueryRow(ctx, s.q.settings, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return budget.Settings{}, noSettings(userID)
	}
	return set, interpret(err)
}

// CreateSettings implements budget.Store. The insert is one statement: a
// concurrent creator's insert makes it wait, then do nothing.
func (s *Store) CreateSettings(ctx context.Context, req budget.CreateRequest) (budget.Settings, bool, error) {
	if err := s.check(ctx); err != nil {
		return budget.Settings{}, false, err
	}
	args, err := settingsArgs(req.Settings)
	if err != nil {
		return budget.Settings{}, false, err
	}
	ws, err1 := unix(req.Policy.Window.Start)
	we, err2 := unix(req.Policy.Window.End)
	if err := errors.Join(err1, err2); err != nil {
		return budget.Settings{}, false, err
	}
	ct, err := s.pool.Exec(ctx, s.q.create, append(args, ws, we)...)
	if err != nil {
		return budget.Settings{}, false, interpret(err)
	}
	if ct.RowsAffected() == 1 {
		return req.Settings.Clone(), true, nil
	}
	set, err := s.Settings(ctx, req.Settings.UserID)
	return set, false, err
}

// ---- counters ----

// acct is a user's counters, read and written inside one transaction (or
// decided on by the fast path): the budget.Counter, whose methods make every
// per-budget decision, and what this store keeps beside it.
type acct struct {
	user    string // the budget's key: the user ID, or a team's, org's or cap's key
	version int64
	c       budget.Counter
	nextExp *int64
	read    snapshot // the counters as read, to skip saving them unchanged
	cap     bool     // a model cap's counters: no settings, rollovers not audited
}

type snapshot struct {
	ws, we, next int64
	hasNext      bool
	spent, held  budget.Nanos
	marked       budget.LevelSet
}

func (a *acct) snap() snapshot {
	c := &a.c
	sn := snapshot{ws: c.Window.Start.UnixNano(), we: c.Window.End.UnixNano(), spent: c.Spent, held: c.Held, marked: c.Marked}
	if a.nextExp != nil {
		sn.next, sn.hasNext = *a.nextExp, true
	}
	return sn
}

func (a *acct) scan(row pgx.Row) error {
	var ws, we, spent, held int64
	var marked int16
	if err := row.Scan(&a.version, &ws, &we, &spent, &held, &a.nextExp, &marked); err != nil {
		return err
	}
	a.c = budget.Counter{
		Window: budget.Window{Start: sqlcodec.FromUnix(ws), End: sqlcodec.FromUnix(we)},
		Spent:  budget.Nanos(spent), Held: budget.Nanos(held), Marked: budget.LevelSet(marked),
	}
	a.read = a.snap()
	return nil
}

// begin locks the user's row and reads the counters, with whatever more
// queues in the same round trip, then applies the steps every
// policy-carrying call starts with: version check, window advance, expiry.
func (s *Store) begin(t *txn, user string, p budget.Policy, now time.Time, more func(*pgx.Batch)) (*acct, error) {
	a := &acct{user: user}
	found := false
	b := t.batch()
	b.Queue(s.q.counters, user).QueryRow(func(r pgx.Row) error {
		err := a.scan(r)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		found = err == nil
		return err
	})
	if more != nil {
		more(b)
	}
	if err := t.send(b); err != nil {
		return nil, err
	}
	if !found {
		return nil, noSettings(user)
	}
	if s.locked != nil {
		s.locked(t.ctx, t.conn.PgConn().PID())
	}
	if err := a.c.Check(user, a.version, p); err != nil {
		return nil, err
	}
	if a.c.Advances(p) {
		if err := s.moveTo(t, a, p, now); err != nil {
			return nil, err
		}
	}
	return a, s.expire(t, a, now)
}

// moveTo moves the counters to p's window, in either direction, recounting
// the spend inside it from the usage rows (by index, reading only the rows
// in the window) and auditing a rollover when the counter says the stored
// window closed.
func (s *Store) moveTo(t *txn, a *acct, p budget.Policy, now time.Time) error {
	if a.c.Window.Equal(p.Window) {
		return nil
	}
	ws, err1 := unix(p.Window.Start)
	we, err2 := unix(p.Window.End)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	var spent int64
	if err := t.row(s.q.sumWindow, []any{a.user, ws, we}, &spent); err != nil {
		return err
	}
	if e, ok := a.c.MoveTo(a.user, p, budget.Nanos(spent), now); ok && !a.cap {
		return s.writeAudit(t, e, nil)
	}
	return nil
}

// expire stops counting holds whose expiry is not after now.
func (s *Store) expire(t *txn, a *acct, now time.Time) error {
	n := now.UnixNano()
	if a.nextExp == nil || *a.nextExp > n {
		return nil
	}
	var gone int64
	if err := t.row(s.q.expire, []any{a.user, n}, &gone, &a.nextExp); err != nil {
		return err
	}
	a.c.Unhold(budget.Nanos(gone))
	return nil
}

// finish marks the alerts p calls for, queues the counters' update if they
// changed, and returns them. (A fast txn's statement always carries them.)
func (s *Store) finish(t *txn, a *acct, p budget.Policy) budget.Totals {
	tot := a.c.Finish(p)
	if sn := a.snap(); sn != a.read && !t.fast {
		var next *int64
		if sn.hasNext {
			next = &sn.next
		}
		t.write(s.q.saveCounters, a.user, sn.ws, sn.we, int64(sn.spent), int64(sn.held), next, int16(sn.marked))
	}
	return tot
}

// step runs one policy-carrying operation for a user: begin (lock, version
// check, advance, expiry, and the read of hold holdID if it is set), then
// do, then finish with the alerts of p. do may be nil. It first tries the
// fast path (fast.go), one statement checked against the counters this
// store last saw; when that cannot answer, it runs the transaction.
func (s *Store) step(ctx context.Context, user string, p budget.Policy, now time.Time,
	holdID string, do func(*txn, *acct, *heldHold) error) (budget.Totals, error) {
	if err := s.check(ctx); err != nil {
		return budget.Totals{}, err
	}
	if e := s.cache.entry(user); e != nil && !s.noFast {
		defer e.busy.Add(-1)
		if e.busy.Add(1) == 1 {
			if tot, done, err := s.fastStep(ctx, e, user, p, now, holdID, do); done {
				return tot, interpret(err)
			}
		}
	}
	return s.lockedStep(ctx, user, p, now, holdID, nil, do)
}

// lockedStep is step's transaction, which locks the user's row: begin, with
// the read of hold holdID if it is set and whatever more queues, in the
// locking round trip (more runs again on every attempt); then do and
// finish. Once it commits, the cache remembers the counters and the hold.
func (s *Store) lockedStep(ctx context.Context, user string, p budget.Policy, now time.Time,
	holdID string, more func(*pgx.Batch), do func(*txn, *acct, *heldHold) error) (budget.Totals, error) {
	var (
		tot budget.Totals
		a   *acct
		ops intents
	)
	err := s.transact(ctx, func(t *txn) error {
		var h heldHold
		reads := more
		if holdID != "" {
			hold := s.readHold(&h, user, holdID)
			reads = func(b *pgx.Batch) {
				hold(b)
				if more != nil {
					more(b)
				}
			}
		}
		var err error
		if a, err = s.begin(t, user, p, now, reads); err != nil {
			return err
		}
		if do != nil {
			if err := do(t, a, &h); err != nil {
				return err
			}
		}
		tot, ops = s.finish(t, a, p), t.ops
		return nil
	})
	if err != nil {
		return budget.Totals{}, interpret(err)
	}
	s.cache.save(user, a, &ops, now)
	return tot, nil
}

// Reserve implements budget.Store.
func (s *Store) Reserve(ctx context.Context, req budget.ReserveRequest) (budget.Totals, bool, error) {
	exp, err := unix(req.ExpiresAt)
	if err != nil {
		return budget.Totals{}, false, err
	}
	if len(req.Also) > 0 {
		return s.reserveScoped(ctx, req, exp)
	}
	var allowed bool
	t, err := s.step(ctx, req.UserID, req.Policy, req.Now, "", func(t *txn, a *acct, _ *heldHold) error {
		var err error
		if allowed, err = a.c.Hold(req.UserID, req.Policy, req.Amount); err != nil || !allowed {
			return err
		}
		// A hold ID taken is a unique violation: ErrDuplicate.
		t.write(s.q.insertHold, req.UserID, req.HoldID, int64(req.Amount), exp)
		t.ops.newHold, t.ops.holdArgs = req.HoldID, []any{req.HoldID, int64(req.Amount), exp}
		if a.nextExp == nil || exp < *a.nextExp {
			a.nextExp = &exp
		}
		return nil
	})
	return t, allowed && err == nil, err
}

// heldHold is a hold as read with the user's lock.
type heldHold struct {
	found   bool
	amount  int64
	expires int64
	state   int16
	counted bool
}

// readHold queues the read of hold id into the locking round trip.
func (s *Store) readHold(h *heldHold, user, id string) func(*pgx.Batch) {
	return func(b *pgx.Batch) {
		*h = heldHold{}
		b.Queue(s.q.hold, user, id).QueryRow(func(r pgx.Row) error {
			err := r.Scan(&h.amount, &h.expires, &h.state, &h.counted)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			h.found = err == nil
			return err
		})
	}
}

// closeHold checks that hold h can be closed, then queues its final state,
// taking it out of the live sum if it still counted. It runs after the
// expiry step, which stopped counting it if it had expired.
func (s *Store) closeHold(t *txn, a *acct, id string, h *heldHold, state int16, now time.Time) error {
	switch {
	case !h.found:
		return fmt.Errorf("%w: no hold %q for user %q", budget.ErrNotFound, id, a.user)
	case h.state != 0:
		return fmt.Errorf("%w: hold %q", budget.ErrReservationClosed, id)
	}
	t.write(s.q.closeHold, a.user, id, state)
	t.ops.closeHold, t.ops.state = id, state
	if h.counted && h.expires > now.UnixNano() {
		a.c.Unhold(budget.Nanos(h.amount))
	}
	return nil
}

// addUsage queues a usage row and its daily rollup, and counts the cost when
// it falls in the window. A usage ID the user already has is a unique
// violation at commit: ErrDuplicate, and nothing is written.
func (s *Store) addUsage(t *txn, a *acct, r budget.UsageRow) error {
	at, err := unix(r.At)
	if err != nil {
		return err
	}
	if err := a.c.Charge(a.user, r.Cost, r.At); err != nil {
		return err
	}
	t.write(s.q.insertUsage, r.UserID, r.ID, r.HoldID, r.Provider, r.Model, r.InputTokens, r.OutputTokens, int64(r.Cost), at)
	t.write(s.q.rollup, r.UserID, sqlcodec.DayOf(at), r.Provider, r.Model, int64(r.Cost), r.InputTokens, r.OutputTokens)
	t.ops.usage = []any{r.ID, r.HoldID, r.Provider, r.Model, r.InputTokens, r.OutputTokens, int64(r.Cost), at, sqlcodec.DayOf(at)}
	return nil
}

// Settle implements budget.Store.
func (s *Store) Settle(ctx context.Context, req budget.SettleRequest) (budget.Totals, error) {
	if len(req.Also) > 0 {
		return s.settleScoped(ctx, req)
	}
	return s.step(ctx, req.Usage.UserID, req.Policy, req.Now, req.HoldID, func(t *txn, a *acct, h *heldHold) error {
		if err := s.closeHold(t, a, req.HoldID, h, 1, req.Now); err != nil {
			return err
		}
		return s.addUsage(t, a, req.Usage)
	})
}

// Release implements budget.Store.
func (s *Store) Release(ctx context.Context, req budget.ReleaseRequest) (budget.Totals, error) {
	if len(req.Also) > 0 {
		return s.releaseScoped(ctx, req)
	}
	return s.step(ctx, req.UserID, req.Policy, req.Now, req.HoldID, func(t *txn, a *acct, h *heldHold) error {
		return s.closeHold(t, a, req.HoldID, h, 2, req.Now)
	})
}

// Extend implements budget.Store. It always takes the locking
// transaction, never the fast path: it is rare (about one call per half
// TTL of a call still running), and its write, to a hold's expiry, is none
// of the fast statements'. It reads the hold in the locking round trip,
// before the expiry step runs, so its checks see the hold as the request
// found it: it still counts if pending, counted and expiring after now.
//
// The fast path decides that no hold has expired when the next_expiry it
// remembers is after now, and checks under the row lock only that
// next_expiry is unchanged; that is sound as long as next_expiry is at or
// before the expiry of every counted hold, which a later expiry keeps.
// Extend keeps it exact besides: the same round trip reads the earliest
// expiry after now of the user's other counted holds, and next_expiry
// becomes the earlier of that and the new expiry (a hold the expiry step
// stops counting expires at or before now, so the read already leaves it
// out). Another Store that remembers the old next_expiry finds its fast
// statement stale and falls back once; one that remembers this hold with
// its old expiry only treats it as expiring sooner, which sends a call
// for it after that instant to the transaction. This Store remembers the
// new expiry.
func (s *Store) Extend(ctx context.Context, req budget.ExtendRequest) (budget.Totals, error) {
	if err := s.check(ctx); err != nil {
		return budget.Totals{}, err
	}
	exp, err := unix(req.ExpiresAt)
	if err != nil {
		return budget.Totals{}, err
	}
	if len(req.Also) > 0 {
		return s.extendScoped(ctx, req, exp)
	}
	n := req.Now.UnixNano()
	var others *int64
	more := func(b *pgx.Batch) {
		others = nil
		b.Queue(s.q.otherExpiry, req.UserID, req.HoldID, n).QueryRow(func(r pgx.Row) error { return r.Scan(&others) })
	}
	return s.lockedStep(ctx, req.UserID, req.Policy, req.Now, req.HoldID, more, func(t *txn, a *acct, h *heldHold) error {
		switch {
		case !h.found:
			return fmt.Errorf("%w: no hold %q for user %q", budget.ErrNotFound, req.HoldID, a.user)
		case h.state != 0:
			return fmt.Errorf("%w: hold %q", budget.ErrReservationClosed, req.HoldID)
		case !h.counted || h.expires <= n:
			return fmt.Errorf("%w: hold %q of user %q", budget.ErrHoldExpired, req.HoldID, a.user)
		case exp <= h.expires:
			return nil
		}
		t.write(s.q.extendHold, a.user, req.HoldID, exp)
		t.ops.extendHold, t.ops.extendTo = req.HoldID, exp
		next := exp
		if others != nil && *others < next {
			next = *others
		}
		a.nextExp = &next
		return nil
	})
}

// Record implements budget.Store.
func (s *Store) Record(ctx context.Context, req budget.RecordRequest) (budget.Totals, error) {
	if len(req.Also) > 0 {
		return s.recordScoped(ctx, req)
	}
	return s.step(ctx, req.Usage.UserID, req.Policy, req.Now, "", func(t *txn, a *acct, _ *heldHold) error {
		return s.addUsage(t, a, req.Usage)
	})
}

// Totals implements budget.Store. When the step would change nothing (the
// counter does not move to another window, no hold has expired and no
// alert is due), it answers from one read, without a transaction or a
// lock.
func (s *Store) Totals(ctx context.Context, req budget.TotalsRequest) (budget.Totals, error) {
	if len(req.Also) > 0 {
		return s.totalsScoped(ctx, req)
	}
	if err := s.check(ctx); err != nil {
		return budget.Totals{}, err
	}
	a := &acct{user: req.UserID}
	err := a.scan(s.pool.QueryRow(ctx, s.q.countersNoLock, req.UserID))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return budget.Totals{}, noSettings(req.UserID)
	case err != nil:
		return budget.Totals{}, interpret(err)
	}
	if err := a.c.Check(req.UserID, a.version, req.Policy); err != nil {
		return budget.Totals{}, err
	}
	if !a.c.Advances(req.Policy) && (a.nextExp == nil || *a.nextExp > req.Now.UnixNano()) && !a.c.Due(req.Policy) {
		return a.c.Totals(), nil
	}
	return s.step(ctx, req.UserID, req.Policy, req.Now, "", nil)
}

// UpdateSettings implements budget.Store.
func (s *Store) UpdateSettings(ctx context.Context, req budget.UpdateRequest) (budget.Totals, error) {
	args, err := settingsArgs(req.Settings)
	if err != nil {
		return budget.Totals{}, err
	}
	var tot budget.Totals
	err = s.transact(ctx, func(t *txn) error {
		a, err := s.begin(t, req.Settings.UserID, req.Current, req.Now, nil)
		if err != nil {
			return err
		}
		if err := a.c.CheckLate(req.Current); err != nil {
			return err
		}
		if err := s.moveTo(t, a, req.Next, req.Now); err != nil {
			return err
		}
		t.write(s.q.updateSettings, args...)
		if err := s.writeAudit(t, req.Audit, nil); err != nil {
			return err
		}
		tot = s.finish(t, a, req.Next)
		return nil
	})
	s.cache.forget(req.Settings.UserID)
	return tot, interpret(err)
}

// Reset implements budget.Store.
func (s *Store) Reset(ctx context.Context, req budget.ResetRequest) (budget.AuditEntry, budget.Totals, error) {
	args, err := settingsArgs(req.Settings)
	if err != nil {
		return budget.AuditEntry{}, budget.Totals{}, err
	}
	var (
		e   budget.AuditEntry
		tot budget.Totals
	)
	err = s.transact(ctx, func(t *txn) error {
		a, err := s.begin(t, req.Settings.UserID, req.Current, req.Now, nil)
		if err != nil {
			return err
		}
		if err := a.c.CheckLate(req.Current); err != nil {
			return err
		}
		e = req.Audit
		e.PreviousSpent = a.c.Spent.Decimal()
		if err := s.writeAudit(t, e, &e.ID); err != nil {
			return err
		}
		t.write(s.q.updateSettings, args...)
		if err := s.moveTo(t, a, req.Next, req.Now); err != nil {
			return err
		}
		tot = s.finish(t, a, req.Next)
		return nil
	})
	s.cache.forget(req.Settings.UserID)
	if err != nil {
		return budget.AuditEntry{}, budget.Totals{}, interpret(err)
	}
	return e.Clone(), tot, nil
}

// ---- audit and defaults ----

// writeAudit queues the insertion of e; when id is set, the commit stores
// the new entry's ID there.
func (s *Store) writeAudit(t *txn, e budget.AuditEntry, id *int64) error {
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
	args := []any{e.UserID, string(e.Type), e.Actor, e.ActorAdmin, e.Reason, money[0], money[1], money[2], ps, pe, before, after,
		e.BulkID, e.Template, at}
	if id == nil {
		t.write(s.q.insertAudit, args...)
		return nil
	}
	t.w.Queue(s.q.insertAudit+` RETURNING id`, args...).QueryRow(func(r pgx.Row) error { return r.Scan(id) })
	return nil
}

// jsonOf encodes settings for a jsonb column; nil is NULL.
func jsonOf(s *budget.Settings) (any, error) {
	b, err := sqlcodec.SettingsJSON(s)
	if b == nil {
		return nil, err
	}
	return json.RawMessage(b), err
}

// Audit implements budget.Store.
func (s *Store) Audit(ctx context.Context, q budget.AuditQuery) ([]budget.AuditEntry, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	before := q.BeforeID()
	var limit *int64
	if q.Limit > 0 {
		l := int64(q.Limit)
		limit = &l
	}
	var (
		sql  string
		args []any
	)
	switch {
	case q.UserID != "" && q.Type != "":
		sql, args = s.q.auditUserType, []any{q.UserID, string(q.Type), before, limit}
	case q.UserID != "":
		sql, args = s.q.auditUser, []any{q.UserID, before, limit}
	case q.Type != "":
		sql, args = s.q.auditType, []any{string(q.Type), before, limit}
	default:
		sql, args = s.q.auditAll, []any{before, limit}
	}
	rows, err := s.pool.Query(ctx, sql, args...)
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
	if err := s.check(ctx); err != nil {
		return budget.Defaults{}, err
	}
	var (
		plan []byte
		d    budget.Defaults
		at   int64
	)
	if err := s.pool.QueryRow(ctx, s.q.defaults).Scan(&plan, &d.Version, &at); err != nil {
		return budget.Defaults{}, interpret(err)
	}
	if d.Version == 0 || plan == nil {
		return budget.Defaults{}, budget.ErrNotFound
	}
	if err := json.Unmarshal(plan, &d.Plan); err != nil {
		return budget.Defaults{}, fmt.Errorf("budget/postgres: corrupt defaults: %w", err)
	}
	d.UpdatedAt = sqlcodec.FromUnix(at)
	return d, nil
}

// UpdateDefaults implements budget.Store. It locks the defaults row, so
// concurrent updates with the same expected version make one change.
func (s *Store) UpdateDefaults(ctx context.Context, req budget.DefaultsRequest) error {
	plan, err := sqlcodec.PlanJSON(req.Defaults.Plan)
	if err != nil {
		return err
	}
	at, err := unix(req.Defaults.UpdatedAt)
	if err != nil {
		return err
	}
	return interpret(s.transact(ctx, func(t *txn) error {
		var version int64
		if err := t.row(s.q.lockDefaults, nil, &version); err != nil {
			return err
		}
		if version != req.ExpectVersion {
			return fmt.Errorf("%w: defaults are at version %d, not %d", budget.ErrConflict, version, req.ExpectVersion)
		}
		t.write(s.q.saveDefaults, json.RawMessage(plan), req.Defaults.Version, at)
		return s.writeAudit(t, req.Audit, nil)
	}))
}

// Templates implements budget.Store.
func (s *Store) Templates(ctx context.Context) ([]budget.Template, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, s.q.templates)
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

// SaveTemplate implements budget.Store. The insert (when no template is
// expected) or update (of the expected version only) is one conditional
// statement, so of concurrent saves expecting one version, one succeeds
// and the others find a conflict.
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
	return interpret(s.transact(ctx, func(t *txn) error {
		var n int64
		if req.ExpectVersion == 0 {
			if err := t.row(s.q.createTemplate, []any{name, json.RawMessage(plan), req.Template.Version, at}, &n); err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("%w: template %q exists", budget.ErrConflict, name)
			}
		} else {
			if err := t.row(s.q.updateTemplate, []any{name, json.RawMessage(plan), req.Template.Version, at, req.ExpectVersion}, &n); err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("%w: template %q is not at version %d", budget.ErrConflict, name, req.ExpectVersion)
			}
		}
		return s.writeAudit(t, req.Audit, nil)
	}))
}

// DeleteTemplate implements budget.Store.
func (s *Store) DeleteTemplate(ctx context.Context, req budget.TemplateRequest) error {
	name := req.Template.Name
	return interpret(s.transact(ctx, func(t *txn) error {
		var (
			n      int64
			exists bool
		)
		if err := t.row(s.q.deleteTemplate, []any{name, req.ExpectVersion}, &n, &exists); err != nil {
			return err
		}
		switch {
		case n == 0 && !exists:
			return fmt.Errorf("%w: no template %q", budget.ErrNotFound, name)
		case n == 0:
			return fmt.Errorf("%w: template %q is not at version %d", budget.ErrConflict, name, req.ExpectVersion)
		}
		return s.writeAudit(t, req.Audit, nil)
	}))
}

// ---- queries ----

// History implements budget.Store, with budget.UsageCursor cursors.
func (s *Store) History(ctx context.Context, q budget.HistoryQuery) (budget.HistoryPage, error) {
	if err := s.check(ctx); err != nil {
		return budget.HistoryPage{}, err
	}
	from, to, before, err := q.Bounds()
	if err != nil {
		return budget.HistoryPage{}, err
	}
	curAt, curSeq := before.At, before.Seq
	var limit *int64
	if q.Limit > 0 {
		l := int64(q.Limit) + 1 // one more says whether there is a next page
		limit = &l
	}
	rows, err := s.pool.Query(ctx, s.q.history, q.UserID, from, to, curAt, curSeq, limit)
	if err != nil {
		return budget.HistoryPage{}, interpret(err)
	}
	defer rows.Close()
	p, err := sqlcodec.ScanHistory(rows, q.Limit)
	if err != nil {
		return budget.HistoryPage{}, interpret(err)
	}
	rows.Close()
	return p, interpret(rows.Err())
}

// Breakdown implements budget.Store. Whole UTC days inside the range come
// from the daily rollups; only the partial days at its edges read usage
// rows. It is one query.
func (s *Store) Breakdown(ctx context.Context, q budget.BreakdownQuery) ([]budget.UsageGroup, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	firstDay, lastDay, spans := sqlcodec.Split(q.From.UnixNano(), q.To.UnixNano())
	spans = append(spans, [2]int64{}) // the query takes two spans; an empty one matches nothing
	rows, err := s.pool.Query(ctx, s.q.breakdown, q.UserID, firstDay, lastDay, spans[0][0], spans[0][1], spans[1][0], spans[1][1])
	if err != nil {
		return nil, interpret(err)
	}
	defer rows.Close()
	var out []budget.UsageGroup
	for rows.Next() {
		var g budget.UsageGroup
		var cost int64
		if err := rows.Scan(&g.Provider, &g.Model, &cost, &g.Requests, &g.InputTokens, &g.OutputTokens); err != nil {
			return nil, interpret(err)
		}
		if cost > int64(budget.MaxNanos) {
			return nil, fmt.Errorf("budget/postgres: breakdown of %q exceeds %s", q.UserID, budget.MaxNanos)
		}
		g.Cost = budget.Nanos(cost)
		out = append(out, g)
	}
	return out, interpret(rows.Err())
}

// Accounts implements budget.Store.
func (s *Store) Accounts(ctx context.Context, q budget.AccountsQuery) ([]budget.Account, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var limit *int64
	if q.Limit > 0 {
		l := int64(q.Limit)
		limit = &l
	}
	sql, args := s.q.accounts, []any{q.After, limit, q.Now.UnixNano()}
	switch q.Kind {
	case "", budget.UserScope:
	case budget.TeamScope, budget.OrgScope:
		// Keys "\x1f<kind>:<id>": after "\x1f<kind>:", before "\x1f<kind>;".
		prefix := budget.Scope{Kind: q.Kind}.Key()
		sql, args = s.q.accountsKind, append(args, prefix, prefix[:len(prefix)-1]+";")
	default:
		return nil, nil // no holder of that kind
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, interpret(err)
	}
	defer rows.Close()
	var out []budget.Account
	for rows.Next() {
		var ws, we, spent, held int64
		set, err := scanSettings(rows, &ws, &we, &spent, &held)
		if err != nil {
			return nil, interpret(err)
		}
		c := budget.Counter{Window: budget.Window{Start: sqlcodec.FromUnix(ws), End: sqlcodec.FromUnix(we)}, Spent: budget.Nanos(spent), Held: budget.Nanos(held)}
		out = append(out, budget.Account{Settings: set, Totals: c.Totals()})
	}
	return out, interpret(rows.Err())
}

// ---- retention ----

// prunePage is how many users one Prune transaction locks.
const prunePage = 500

// Prune deletes usage rows recorded before cutoff, and closed holds that
// expired before it, to bound the tables' growth. Call it from a periodic
// job of your own, with a cut-off as old as your history must reach; any
// instance may run it while others serve calls.
//
// It never deletes a row inside a user's current window, so every counter
// stays equal to the sum of its rows: it works through the users a page at
// a time, each page one transaction that locks those users' rows as a write
// does. The daily rollups are kept, so breakdowns stay exact for whole UTC
// days before the cut-off (a range that starts or ends partway through a
// pruned day loses that day's partial rows). It returns the number of
// usage rows deleted.
func (s *Store) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	c, err := unix(cutoff)
	if err != nil {
		return 0, err
	}
	var total int64
	for after := ""; ; {
		var (
			last *string
			n    int64
		)
		err := s.transact(ctx, func(t *txn) error {
			return t.row(s.q.pruneUsers, []any{after, c, prunePage}, &last, &n)
		})
		if err != nil {
			return total, interpret(err)
		}
		total += n
		if last == nil {
			break
		}
		after = *last
	}
	if err := s.check(ctx); err != nil {
		return total, err
	}
	_, err = s.pool.Exec(ctx, s.q.pruneHolds, c)
	return total, interpret(err)
}
