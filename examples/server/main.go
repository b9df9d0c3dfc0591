// Command server serves the budget HTTP API over a SQLite or PostgreSQL
// store: a working service to try the endpoints against, and the wiring to
// copy into one.
//
//	go run ./examples/server -demo
//
// It listens on 127.0.0.1:8080 (-addr) with its budgets in ./budget.db
// (-db), or in PostgreSQL with -postgres DSN (tables in the schema
// -postgres-schema), where any number of replicas share them, and serves
// the API under /api/v1/budget/. Requests authenticate with a bearer
// token. With -tokens file.json the tokens come from a file:
//
//	{
//	  "<token>": {"user_id": "root", "admin": true},
//	  "<token>": {"user_id": "alice"}
//	}
//
// Without one, it generates an admin token and a user token for this run
// and prints them with curl commands to paste.
//
// -demo records a week of simulated LLM traffic for a few users (on the
// first run against a database only), so that the endpoints have something
// to show, and saves two templates if they are absent: "intern" ($5 a
// week, view-only) and "researcher" ($200 a month, may modify). It also
// creates, if absent, the team "research" (alice and bob; $40 a month, at
// most $12 of it on gpt-4o*) in the org "acme" (with dave; $100 a month,
// at most $40 on claude-sonnet-*). -webhook URL and -webhook-secret post every alert, signed, to a
// URL (see httpapi.Webhook).
//
// For operators: GET /healthz answers 200 while the process serves, and
// GET /readyz 200 while the store answers (503 otherwise), both without a
// token. -metrics serves the library's OpenTelemetry metrics at /metrics
// in the Prometheus text format; the same meter provider instruments the
// Manager, the store and the webhook sender. -log-format json writes the
// logs as JSON lines instead of text (the welcome text stays plain).
//
// SIGINT or SIGTERM shut it down gracefully: requests in flight finish
// (up to -shutdown-timeout), queued alerts are delivered, then the store
// is closed.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/dashboard"
	"github.com/llmbudget/budget/httpapi"
	"github.com/llmbudget/budget/store/postgres"
	"github.com/llmbudget/budget/store/sqlite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, stop catching them: a second Ctrl-C
		// kills the process without waiting for the graceful shutdown.
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

// config is what the flags say.
type config struct {
	addr            string
	db              string
	postgres        string
	postgresSchema  string
	tokens          string
	demo            bool
	webhook         string
	webhookSecret   string
	shutdownTimeout time.Duration
	metrics         bool
	logFormat       string
}

func parseFlags(args []string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&c.db, "db", "budget.db", "path of the SQLite database, created if absent")
	fs.StringVar(&c.postgres, "postgres", "", "PostgreSQL DSN (postgres://user@host/db); when set, budgets live there instead of -db, shared by every replica")
	fs.StringVar(&c.postgresSchema, "postgres-schema", postgres.DefaultSchema, "PostgreSQL schema the budget tables live in, created if absent; replicas sharing budgets name the same one")
	fs.StringVar(&c.tokens, "tokens", "", `JSON file of bearer tokens: {"<token>": {"user_id": "...", "admin": true}}; without it, two tokens are generated and printed`)
	fs.BoolVar(&c.demo, "demo", false, "record simulated LLM traffic for a few users (skipped if the database already has it), and create a demo team and org with model caps")
	fs.StringVar(&c.webhook, "webhook", "", "URL to POST every alert to, signed (optional)")
	fs.StringVar(&c.webhookSecret, "webhook-secret", "", "secret that signs webhook deliveries (required with -webhook; default $BUDGET_WEBHOOK_SECRET)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long shutdown waits for requests in flight")
	fs.BoolVar(&c.metrics, "metrics", false, "serve OpenTelemetry metrics in the Prometheus text format at /metrics")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.webhookSecret == "" {
		c.webhookSecret = os.Getenv("BUDGET_WEBHOOK_SECRET")
	}
	if c.webhook != "" && c.webhookSecret == "" {
		return c, errors.New("-webhook needs -webhook-secret (or $BUDGET_WEBHOOK_SECRET)")
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return c, fmt.Errorf("-log-format %q: want text or json", c.logFormat)
	}
	return c, nil
}

// run is the whole server: it parses args, opens the store, serves until
// ctx is cancelled, then shuts down gracefully. Everything it prints, logs
// included, goes to stdout.
func run(ctx context.Context, args []string, stdout io.Writer) (err error) {
	cfg, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.logFormat, stdout)

	tokens, generated, err := loadTokens(cfg.tokens)
	if err != nil {
		return err
	}

	// With -metrics, one meter provider instruments the Manager, the store
	// and the webhook sender; without it, meters stays nil, which they
	// take as OpenTelemetry's no-op.
	var (
		meters       metric.MeterProvider
		serveMetrics http.Handler
	)
	if cfg.metrics {
		mp, h, err := newMetrics(ctx, logger)
		if err != nil {
			return err
		}
		// Shut down last, after the store's final batches are counted.
		defer mp.Shutdown(context.Background())
		meters, serveMetrics = mp, h
	}

	store, where, err := openStore(ctx, cfg, meters, logger)
	if err != nil {
		return err
	}
	// Closed last, after the HTTP server and the webhook have stopped.
	defer func() {
		if cerr := store.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("closing the store: %w", cerr))
		} else {
			logger.Info("store closed", "store", where)
		}
	}()

	var webhook *httpapi.Webhook
	if cfg.webhook != "" {
		webhook, err = httpapi.NewWebhook(cfg.webhook, []byte(cfg.webhookSecret), httpapi.WebhookOptions{
			Logger: logger, MeterProvider: meters,
		})
		if err != nil {
			return err
		}
		defer func() {
			// The HTTP server has stopped, so no new alerts arrive: give
			// the queued ones a few seconds to be delivered.
			wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if werr := webhook.Close(wctx); werr != nil {
				logger.Warn("webhook: undelivered alerts abandoned", "err", werr)
			}
			s := webhook.Stats()
			logger.Info("webhook closed", "delivered", s.Delivered, "failed", s.Failed, "dropped", s.Dropped)
		}()
	}

	// The Manager's clock is the real one, except while -demo seeds
	// history at past instants: Record and Settle stamp usage with
	// Options.Now.
	clock := &demoClock{}
	m := budget.NewManager(store, budget.Options{
		Now:           clock.Now,
		IsAdmin:       tokens.isAdmin,
		MeterProvider: meters,
		Logger:        logger,
		OnAlert: func(a budget.Alert) {
			logger.Info("budget alert", "user_id", a.UserID, "level", a.Level.String(),
				"spent_usd", a.Status.Spent.String(), "limit_usd", a.Status.Limit.String(), "at", a.At)
			if webhook != nil {
				webhook.OnAlert(a) // enqueues; never blocks the request
			}
		},
	})

	if cfg.demo {
		if err := seedDemo(ctx, m, clock, time.Now(), logger); err != nil {
			return fmt.Errorf("seeding demo traffic: %w", err)
		}
	}

	api, err := httpapi.New(m, httpapi.Options{Authenticate: tokens.authenticate, Logger: logger})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/budget/", http.StripPrefix("/api/v1/budget", api))
	// ---- DASHBOARD ----
	// The dashboard's pages are public; they ask for a token, keep it in
	// the tab's sessionStorage and send it as a bearer header to the API.
	dash, err := dashboard.New(dashboard.Options{APIBase: "/api/v1/budget"})
	if err != nil {
		return err
	}
	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", dash))
	// The site's root is the user's page, which links to the admin page
	// for admins.
	mux.Handle("GET /{$}", http.RedirectHandler("/dashboard/budget", http.StatusFound))
	// ---- END DASHBOARD ----
	// Probes for orchestrators and load balancers: public, like the
	// dashboard's pages, and saying nothing about any budget.
	mux.Handle("GET /healthz", healthz())
	mux.Handle("GET /readyz", readyz(m, logger))
	if serveMetrics != nil {
		mux.Handle("GET /metrics", serveMetrics)
	}

	srv := &http.Server{
		Handler:           logRequests(logger, mux),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	printWelcome(stdout, base, generated)
	logger.Info("listening", "url", base+"/api/v1/budget/", "store", where)

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err := <-serveErr:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}

	// Stop accepting connections and let the requests in flight finish.
	logger.Info("shutting down", "timeout", cfg.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Out of time: cut the remaining connections.
		srv.Close()
		<-serveErr
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", err)
	}
	logger.Info("http server stopped")
	return nil // the deferred calls close the webhook, then the store
}

// printWelcome prints the generated tokens, if any, and commands to try.
func printWelcome(w io.Writer, base string, gen *generatedTokens) {
	// One write, so that the text is never interleaved with log lines.
	var b strings.Builder
	fmt.Fprintf(&b, "budget API at %s/api/v1/budget/\n", base)
	fmt.Fprintf(&b, "dashboard at %s/dashboard/budget (admins: %s/dashboard/admin/budget); sign in with a token\n", base, base)
	if gen != nil {
		fmt.Fprintf(&b, `
No -tokens file, so these tokens were generated for this run only:

  admin  (user %q, admin):  %s
  user   (user %q):         %s

Try:

  curl -H 'Authorization: Bearer %s' %s/api/v1/budget/status
  curl -H 'Authorization: Bearer %s' %s/api/v1/budget/usage/history
  curl -H 'Authorization: Bearer %s' %s/api/v1/budget/admin/list
`, gen.adminUser, gen.admin, gen.userUser, gen.user,
			gen.user, base, gen.user, base, gen.admin, base)
	}
	b.WriteString("\n")
	io.WriteString(w, b.String())
}

// tokenEntry is one value of the tokens file.
type tokenEntry struct {
	UserID string `json:"user_id"`
	Admin  bool   `json:"admin"`
}

// tokenTable authenticates bearer tokens. It keys principals by the
// SHA-256 of the token, so that a lookup's timing says nothing useful about
// the tokens it holds.
type tokenTable struct {
	byHash map[[sha256.Size]byte]budget.Principal
	admins map[string]bool
}

// generatedTokens are the tokens made up when no file is given.
type generatedTokens struct {
	admin, adminUser string
	user, userUser   string
}

// loadTokens reads the tokens file, or generates an admin and a user token
// when path is empty.
func loadTokens(path string) (*tokenTable, *generatedTokens, error) {
	entries := map[string]tokenEntry{}
	var gen *generatedTokens
	if path == "" {
		gen = &generatedTokens{admin: newToken(), adminUser: "admin", user: newToken(), userUser: "alice"}
		entries[gen.admin] = tokenEntry{UserID: gen.adminUser, Admin: true}
		entries[gen.user] = tokenEntry{UserID: gen.userUser}
	} else {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("tokens: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&entries); err != nil {
			return nil, nil, fmt.Errorf("tokens: %s: %w", path, err)
		}
		if len(entries) == 0 {
			return nil, nil, fmt.Errorf("tokens: %s has no tokens", path)
		}
	}
	t := &tokenTable{byHash: map[[sha256.Size]byte]budget.Principal{}, admins: map[string]bool{}}
	for tok, e := range entries {
		if len(tok) < 16 {
			return nil, nil, fmt.Errorf("tokens: a token for %q is shorter than 16 characters", e.UserID)
		}
		if err := budget.ValidateUserID(e.UserID); err != nil {
			return nil, nil, fmt.Errorf("tokens: %w", err)
		}
		t.byHash[sha256.Sum256([]byte(tok))] = budget.Principal{UserID: e.UserID, Admin: e.Admin}
		if e.Admin {
			t.admins[e.UserID] = true
		}
	}
	return t, gen, nil
}

// newToken returns 32 random bytes, base64url-encoded.
func newToken() string {
	var b [32]byte
	rand.Read(b[:]) // never returns an error
	return "bgt_" + base64.RawURLEncoding.EncodeToString(b[:])
}

func (t *tokenTable) isAdmin(userID string) bool { return t.admins[userID] }

var (
	errNoToken  = errors.New("missing bearer token")
	errBadToken = errors.New("unknown bearer token")
)

// authenticate is httpapi.Options.Authenticate.
func (t *tokenTable) authenticate(r *http.Request) (budget.Principal, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return budget.Principal{}, errNoToken
	}
	p, ok := t.byHash[sha256.Sum256([]byte(strings.TrimSpace(tok)))]
	if !ok {
		return budget.Principal{}, errBadToken
	}
	return p, nil
}

// logRequests logs each request's method, path, status and duration. A
// probe or a scrape that succeeds is logged at debug level, below what the
// server's logger writes, so that a poll every few seconds does not bury
// the requests that matter; one that fails is logged like any request.
func logRequests(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		level := slog.LevelInfo
		if polled[r.URL.Path] && sw.status < 400 {
			level = slog.LevelDebug
		}
		logger.LogAttrs(r.Context(), level, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", sw.status),
			slog.Duration("duration", time.Since(start)),
			slog.Int64("bytes", sw.bytes),
		)
	})
}

// polled are the paths machines poll: probes and the metrics scrape.
var polled = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// demoClock is the Manager's clock: the real time, or a fixed instant while
// demo history is being recorded.
type demoClock struct {
	mu    sync.Mutex
	fixed time.Time // zero: the real time
}

func (c *demoClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fixed.IsZero() {
		return time.Now()
	}
	return c.fixed
}

// Set fixes the clock at t; the zero time restores the real clock.
func (c *demoClock) Set(t time.Time) {
	c.mu.Lock()
	c.fixed = t
	c.mu.Unlock()
}

// openStore opens PostgreSQL when -postgres is set, else the SQLite file,
// and says which for the logs (never the DSN, which may hold a password).
// Both report to meters (nil: no-op) and log to logger.
func openStore(ctx context.Context, cfg config, meters metric.MeterProvider, logger *slog.Logger) (budget.Store, string, error) {
	if cfg.postgres != "" {
		s, err := postgres.Open(ctx, cfg.postgres, postgres.Options{
			Schema: cfg.postgresSchema, MeterProvider: meters, Logger: logger,
		})
		return s, "postgres", err
	}
	s, err := sqlite.Open(ctx, cfg.db, sqlite.Options{MeterProvider: meters, Logger: logger})
	return s, cfg.db, err
}
