package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmbudget/budget"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
)

// The headers of a webhook delivery.
const (
	// HeaderWebhookID carries the alert's unique ID, the same on every
	// attempt to deliver it: receivers dedupe on it.
	HeaderWebhookID = "Budget-Webhook-Id"
	// HeaderWebhookTimestamp carries the time of the attempt in Unix
	// seconds, as a decimal integer.
	HeaderWebhookTimestamp = "Budget-Webhook-Timestamp"
	// HeaderWebhookSignature carries "v1=" and the lowercase hex
	// HMAC-SHA256, keyed with the shared secret, of the timestamp header's
	// value, a ".", and the raw request body.
	HeaderWebhookSignature = "Budget-Webhook-Signature"
)

// WebhookEventType is the "type" of every alert payload.
const WebhookEventType = "budget.alert"

// Errors returned by VerifyWebhook, wrapped with details.
var (
	// ErrWebhookSignature: the signature header is missing, malformed, or
	// matches neither the body nor the secret.
	ErrWebhookSignature = errors.New("httpapi: invalid webhook signature")
	// ErrWebhookTimestamp: the timestamp header is missing, malformed, or
	// outside the tolerance (a replayed or badly delayed delivery).
	ErrWebhookTimestamp = errors.New("httpapi: invalid webhook timestamp")
)

// WebhookPayload is the JSON body of an alert delivery. Money and the
// percentage are decimal strings, exact, never floats; times are RFC 3339
// in UTC.
//
//	{"id":"evt_5f0c…","type":"budget.alert","user_id":"alice","level":"orange",
//	 "spent_usd":"27.5","limit_usd":"30","percent_used":"91.66",
//	 "period_start":"2025-03-01T00:00:00Z","period_end":"2025-04-01T00:00:00Z",
//	 "at":"2025-03-14T09:12:00Z"}
//
// An alert on another budget than the user's own (a team's, an org's, or
// a model cap) names it with "scope", "budget_id" and "pattern" (a cap's);
// the figures are that budget's, and "user_id" is the user whose call
// crossed the level, or "" when a settings change did.
type WebhookPayload struct {
	// ID is unique per alert and the same on every retry of it.
	ID     string `json:"id"`
	Type   string `json:"type"`
	UserID string `json:"user_id"`
	// Scope ("user", "team" or "org"), BudgetID and Pattern name the
	// budget, when it is not the user's own.
	Scope       string       `json:"scope,omitempty"`
	BudgetID    string       `json:"budget_id,omitempty"`
	Pattern     string       `json:"pattern,omitempty"`
	Level       budget.Level `json:"level"`
	SpentUSD    string       `json:"spent_usd"`
	LimitUSD    string       `json:"limit_usd"`
	PercentUsed string       `json:"percent_used"`
	PeriodStart time.Time    `json:"period_start"`
	PeriodEnd   time.Time    `json:"period_end"`
	At          time.Time    `json:"at"`
}

// WebhookOptions configure a Webhook. The zero value is valid.
type WebhookOptions struct {
	// Client sends the requests. Defaults to a client with a 5-second
	// timeout that does not follow redirects (a redirect is a failed
	// delivery, not retried).
	Client *http.Client

	// MaxAttempts bounds the attempts per alert, the first included.
	// Defaults to 5.
	MaxAttempts int

	// Backoff is the base delay before the first retry; each later retry
	// waits twice as long as the one before, up to MaxBackoff, and each
	// delay is jittered to between half and all of its value. A
	// Retry-After in seconds on a 429 or 503 lengthens the delay, still
	// up to MaxBackoff. Defaults: 500 ms and 30 s.
	Backoff    time.Duration
	MaxBackoff time.Duration

	// QueueSize bounds the alerts waiting for delivery. When the queue is
	// full, OnAlert drops the alert, counts it in Stats().Dropped and
	// logs it: it never blocks. Defaults to 1024.
	QueueSize int

	// Workers is the number of goroutines delivering. Defaults to 1, which
	// delivers alerts in the order they were raised; more deliver faster
	// to a slow receiver but may reorder them.
	Workers int

	// Logger receives each alert's outcome: a delivery at Info, a failed
	// attempt to be retried at Warn, an alert given up on at Error (at
	// Warn when abandoned by Close), a drop at Warn. Defaults to
	// slog.Default().
	Logger *slog.Logger

	// MeterProvider receives budget.webhook.deliveries, a counter (unit
	// {delivery}) with attribute outcome: delivered, failed and dropped
	// count alerts as Stats does; retried counts failed attempts that are
	// tried again. Pass the provider given to budget.Options. Defaults to
	// none.
	MeterProvider metric.MeterProvider

	// After waits between attempts, as time.After does (the default).
	// Tests inject a channel that fires at once.
	After func(time.Duration) <-chan time.Time

	// Now stamps each attempt's timestamp header. Defaults to time.Now.
	Now func() time.Time
}

// WebhookStats count what a Webhook did with the alerts it was given.
type WebhookStats struct {
	// Delivered alerts were answered with a 2xx.
	Delivered uint64
	// Failed alerts exhausted their attempts, got a status that is not
	// retried, or were abandoned by a Close whose context ended.
	Failed uint64
	// Dropped alerts found the queue full, or arrived after Close.
	Dropped uint64
}

// Webhook is a ready Options.OnAlert: it POSTs each alert as a JSON
// WebhookPayload to a URL, signed so that the receiver can check it came
// from the holder of the shared secret (see VerifyWebhook).
//
//	wh, err := httpapi.NewWebhook("https://hooks.example.com/budget", secret, httpapi.WebhookOptions{})
//	m := budget.NewManager(store, budget.Options{OnAlert: wh.OnAlert})
//	defer wh.Close(ctx)
//
// Every request carries three headers:
//
//	Budget-Webhook-Id: <the alert's id, the same on every retry>
//	Budget-Webhook-Timestamp: <unix seconds of this attempt>
//	Budget-Webhook-Signature: v1=<hex of HMAC-SHA256(secret, timestamp + "." + body)>
//
// OnAlert only enqueues, so the request whose spend raised the alert never
// waits for the receiver. Background workers deliver each alert with up to
// MaxAttempts attempts, retrying after network errors, 429 and 5xx answers
// with exponential backoff and jitter, and giving up on any other status.
// Delivery is at least once: a receiver dedupes on the id.
type Webhook struct {
	url         string
	secret      []byte
	client      *http.Client
	maxAttempts int
	backoff     time.Duration
	maxBackoff  time.Duration
	log         *slog.Logger
	after       func(time.Duration) <-chan time.Time
	now         func() time.Time

	mu     sync.RWMutex // guards closed and sends on queue
	closed bool
	queue  chan budget.Alert

	ctx    context.Context // cancelled when Close gives up waiting
	cancel context.CancelFunc
	wg     sync.WaitGroup

	delivered, failed, dropped atomic.Uint64

	deliveries                                      metric.Int64Counter
	outDelivered, outRetried, outFailed, outDropped []metric.AddOption
}

// NewWebhook returns a Webhook posting to rawURL, an absolute http or https
// URL, signing with secret, which must not be empty. It starts the
// delivery workers; stop them with Close.
func NewWebhook(rawURL string, secret []byte, opts WebhookOptions) (*Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("httpapi: webhook URL %q: %w", rawURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("httpapi: webhook URL %q: must be an absolute http or https URL", u.Redacted())
	}
	if len(secret) == 0 {
		return nil, errors.New("httpapi: webhook secret must not be empty")
	}
	if opts.MaxAttempts < 0 || opts.Backoff < 0 || opts.MaxBackoff < 0 || opts.QueueSize < 0 || opts.Workers < 0 {
		return nil, errors.New("httpapi: webhook options must not be negative")
	}
	w := &Webhook{
		url:         u.String(),
		secret:      bytes.Clone(secret),
		client:      opts.Client,
		maxAttempts: cmp.Or(opts.MaxAttempts, 5),
		backoff:     cmp.Or(opts.Backoff, 500*time.Millisecond),
		maxBackoff:  cmp.Or(opts.MaxBackoff, 30*time.Second),
		log:         opts.Logger,
		after:       opts.After,
		now:         opts.Now,
		queue:       make(chan budget.Alert, cmp.Or(opts.QueueSize, 1024)),
	}
	if w.client == nil {
		w.client = &http.Client{
			Timeout: 5 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	if w.after == nil {
		w.after = time.After
	}
	if w.now == nil {
		w.now = time.Now
	}
	w.maxBackoff = max(w.maxBackoff, w.backoff)
	mp := opts.MeterProvider
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	// A failure to register leaves a no-op the SDK already reported.
	w.deliveries, _ = mp.Meter("github.com/llmbudget/budget/httpapi").Int64Counter("budget.webhook.deliveries",
		metric.WithUnit("{delivery}"),
		metric.WithDescription("Webhook alerts delivered, failed or dropped, and failed attempts retried, by outcome."))
	if w.deliveries == nil {
		w.deliveries, _ = metricnoop.NewMeterProvider().Meter("").Int64Counter("budget.webhook.deliveries")
	}
	outcome := func(o string) []metric.AddOption {
		return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", o)))}
	}
	w.outDelivered, w.outRetried, w.outFailed, w.outDropped = outcome("delivered"), outcome("retried"), outcome("failed"), outcome("dropped")
	w.ctx, w.cancel = context.WithCancel(context.Background())
	for range cmp.Or(opts.Workers, 1) {
		w.wg.Add(1)
		go w.work()
	}
	return w, nil
}

// OnAlert enqueues a for delivery and returns at once. When the queue is
// full, or after Close, it drops the alert, counts and logs it. Pass it as
// budget.Options.OnAlert.
func (w *Webhook) OnAlert(a budget.Alert) {
	w.mu.RLock()
	ok := false
	if !w.closed {
		select {
		case w.queue <- a:
			ok = true
		default:
		}
	}
	w.mu.RUnlock()
	if !ok {
		n := w.dropped.Add(1)
		w.deliveries.Add(context.Background(), 1, w.outDropped...)
		w.log.Warn("budget webhook: alert dropped (queue full or webhook closed)",
			"user_id", a.UserID, "level", a.Level.String(), "dropped_total", n)
	}
}

// Stats returns what the webhook did so far.
func (w *Webhook) Stats() WebhookStats {
	return WebhookStats{Delivered: w.delivered.Load(), Failed: w.failed.Load(), Dropped: w.dropped.Load()}
}

// Close stops accepting alerts and waits until the queued ones are
// delivered or given up. If ctx ends first, it cancels the deliveries in
// flight, abandons the queued alerts (counted as failed), waits for the
// workers to stop and returns ctx's error. Close is safe to call more than
// once.
func (w *Webhook) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()

	done := make(chan struct{})
	go func() {
		w.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		w.cancel()
		return nil
	case <-ctx.Done():
		w.cancel()
		<-done
		return ctx.Err()
	}
}

// work delivers queued alerts until the queue is closed and empty.
func (w *Webhook) work() {
	defer w.wg.Done()
	for a := range w.queue {
		if w.ctx.Err() != nil {
			w.fail()
			w.log.Warn("budget webhook: alert abandoned at shutdown", "user_id", a.UserID, "level", a.Level.String())
			continue
		}
		w.deliver(a)
	}
}

// deliver sends one alert, retrying as configured.
func (w *Webhook) deliver(a budget.Alert) {
	id, body, err := newWebhookPayload(a)
	if err != nil {
		w.fail()
		w.log.Error("budget webhook: encoding alert", "user_id", a.UserID, "err", err)
		return
	}
	log := w.log.With("webhook_id", id, "user_id", a.UserID, "level", a.Level.String())
	for attempt := 1; ; attempt++ {
		retry, wait, err := w.attempt(id, body)
		if err == nil {
			w.delivered.Add(1)
			w.deliveries.Add(context.Background(), 1, w.outDelivered...)
			log.Info("budget webhook: delivered", "attempts", attempt)
			return
		}
		if w.ctx.Err() != nil {
			w.fail()
			log.Warn("budget webhook: delivery abandoned at shutdown", "attempts", attempt, "err", err)
			return
		}
		if !retry || attempt >= w.maxAttempts {
			w.fail()
			log.Error("budget webhook: delivery failed, giving up", "attempts", attempt, "err", err)
			return
		}
		d := w.delay(attempt)
		if wait > d {
			d = min(wait, w.maxBackoff)
		}
		w.deliveries.Add(context.Background(), 1, w.outRetried...)
		log.Warn("budget webhook: delivery failed, retrying", "attempt", attempt, "retry_in", d, "err", err)
		select {
		case <-w.after(d):
		case <-w.ctx.Done():
			w.fail()
			log.Warn("budget webhook: delivery abandoned at shutdown", "attempts", attempt)
			return
		}
	}
}

// fail counts an alert given up on.
func (w *Webhook) fail() {
	w.failed.Add(1)
	w.deliveries.Add(context.Background(), 1, w.outFailed...)
}

// delay is the jittered backoff before retry number n (1 for the first):
// base×2^(n−1), capped, then between half and all of that.
func (w *Webhook) delay(n int) time.Duration {
	d := w.backoff
	for i := 1; i < n && d < w.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.maxBackoff)
	half := d / 2
	return half + mrand.N(d-half+1)
}

// attempt makes one request. It reports whether a failure is worth
// retrying and, from a Retry-After header, how long the receiver asked to
// wait.
func (w *Webhook) attempt(id string, body []byte) (retry bool, wait time.Duration, err error) {
	ts := strconv.FormatInt(w.now().Unix(), 10)
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return false, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "llmbudget-webhook/1")
	req.Header.Set(HeaderWebhookID, id)
	req.Header.Set(HeaderWebhookTimestamp, ts)
	req.Header.Set(HeaderWebhookSignature, "v1="+webhookSign(w.secret, ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		return true, 0, err
	}
	// Drain a little so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, 0, nil
	case c == http.StatusTooManyRequests || c >= 500:
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			wait = time.Duration(s) * time.Second
		}
		return true, wait, fmt.Errorf("receiver answered %s", resp.Status)
	default:
		return false, 0, fmt.Errorf("receiver answered %s (not retried)", resp.Status)
	}
}

// newWebhookPayload encodes a with a fresh random ID.
func newWebhookPayload(a budget.Alert) (string, []byte, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	id := "evt_" + hex.EncodeToString(b[:])
	p := WebhookPayload{
		ID: id, Type: WebhookEventType, UserID: a.UserID, Level: a.Level,
		SpentUSD: a.Status.Spent.String(), LimitUSD: a.Status.Limit.String(),
		PercentUsed: a.Status.Percent.String(),
		PeriodStart: a.Status.PeriodStart.UTC(), PeriodEnd: a.Status.PeriodEnd.UTC(), At: a.At.UTC(),
	}
	if a.Scope.Kind != "" && (a.Scope != budget.User(a.UserID) || a.Pattern != "") {
		p.Scope, p.BudgetID, p.Pattern = string(a.Scope.Kind), a.Scope.ID, a.Pattern
	}
	body, err := json.Marshal(p)
	return id, body, err
}

// webhookSign returns the hex HMAC-SHA256 of timestamp + "." + body.
func webhookSign(secret []byte, timestamp string, body []byte) string {
	return hex.EncodeToString(webhookMAC(secret, timestamp, body))
}

func webhookMAC(secret []byte, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// VerifyWebhook checks a webhook delivery on the receiving side: that its
// Budget-Webhook-Timestamp is within tolerance of now (either way; 5
// minutes when tolerance is not positive) and that its
// Budget-Webhook-Signature is the HMAC-SHA256 under secret of that
// timestamp, ".", and body, the raw request body, compared in constant
// time. The header may list several comma-separated "v1=" signatures (as
// during a secret rotation); one match suffices. The error wraps
// ErrWebhookTimestamp or ErrWebhookSignature.
//
//	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
//	if err == nil {
//		err = httpapi.VerifyWebhook(r, body, secret, 5*time.Minute, time.Now())
//	}
//	if err != nil { http.Error(w, "bad signature", http.StatusUnauthorized); return }
//	var p httpapi.WebhookPayload
//	err = json.Unmarshal(body, &p) // then dedupe on p.ID
func VerifyWebhook(r *http.Request, body []byte, secret []byte, tolerance time.Duration, now time.Time) error {
	if len(secret) == 0 {
		return fmt.Errorf("%w: empty secret", ErrWebhookSignature)
	}
	if tolerance <= 0 {
		tolerance = 5 * time.Minute
	}
	ts := r.Header.Get(HeaderWebhookTimestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || ts == "" || ts[0] == '+' || ts[0] == '-' {
		return fmt.Errorf("%w: missing or malformed %s header", ErrWebhookTimestamp, HeaderWebhookTimestamp)
	}
	// Compare in seconds, so that a huge timestamp cannot overflow.
	if diff := now.Unix() - sec; diff > int64(tolerance/time.Second) || -diff > int64(tolerance/time.Second) {
		return fmt.Errorf("%w: timestamp %s is outside the tolerance of %s", ErrWebhookTimestamp, ts, tolerance)
	}
	header := r.Header.Get(HeaderWebhookSignature)
	if header == "" {
		return fmt.Errorf("%w: missing %s header", ErrWebhookSignature, HeaderWebhookSignature)
	}
	want := webhookMAC(secret, ts, body)
	for part := range strings.SplitSeq(header, ",") {
		hexSig, ok := strings.CutPrefix(strings.TrimSpace(part), "v1=")
		if !ok {
			continue
		}
		got, err := hex.DecodeString(hexSig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 signature matches", ErrWebhookSignature)
}
