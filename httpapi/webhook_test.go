package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/httpapi"
	"github.com/llmbudget/budget/store/memory"
)

var whSecret = []byte("s3cret")

// whDelivery is one request a test whReceiver saw.
type whDelivery struct {
	header http.Header
	body   []byte
}

// whReceiver is an httptest server that records deliveries and answers each
// with the next status of its script (the last one repeating).
type whReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	got      []whDelivery
	statuses []int
}

func newWHReceiver(t *testing.T, statuses ...int) *whReceiver {
	t.Helper()
	rc := &whReceiver{statuses: statuses}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, whDelivery{r.Header.Clone(), body})
		code := http.StatusNoContent
		if n := len(rc.got); len(rc.statuses) > 0 {
			code = rc.statuses[min(n, len(rc.statuses))-1]
		}
		rc.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *whReceiver) deliveries() []whDelivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]whDelivery(nil), rc.got...)
}

// whInstant is a WebhookOptions.After that fires at once and records the
// delays asked for, so that no test sleeps for real.
type whInstant struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (in *whInstant) after(d time.Duration) <-chan time.Time {
	in.mu.Lock()
	in.delays = append(in.delays, d)
	in.mu.Unlock()
	c := make(chan time.Time, 1)
	c <- time.Time{}
	return c
}

func (in *whInstant) waits() []time.Duration {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]time.Duration(nil), in.delays...)
}

var whAlertTime = time.Date(2025, time.March, 14, 9, 12, 0, 0, time.UTC)

func whAlert(user string, level budget.Level) budget.Alert {
	return budget.Alert{
		UserID: user, Level: level, At: whAlertTime,
		Status: budget.Status{
			UserID: user, Limit: budget.MustAmount("30"), Spent: budget.MustAmount("27.500000001"),
			Percent: budget.MustAmount("91.66"), Level: level, Period: budget.Monthly,
			PeriodStart: time.Date(2025, time.March, 1, 0, 0, 0, 0, time.UTC),
			PeriodEnd:   time.Date(2025, time.April, 1, 0, 0, 0, 0, time.UTC),
		},
	}
}

// newTestWH returns a webhook to url with whInstant backoff, closed at
// the end of the test.
func newTestWH(t *testing.T, url string, opts httpapi.WebhookOptions) (*httpapi.Webhook, *whInstant) {
	t.Helper()
	in := &whInstant{}
	if opts.After == nil {
		opts.After = in.after
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	wh, err := httpapi.NewWebhook(url, whSecret, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = wh.Close(ctx)
	})
	return wh, in
}

// whClose drains wh, failing the test if that takes unreasonably long.
func whClose(t *testing.T, wh *httpapi.Webhook) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := wh.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func whVerify(d whDelivery, secret []byte, now time.Time) error {
	r := httptest.NewRequest(http.MethodPost, "/hook", nil)
	r.Header = d.header
	return httpapi.VerifyWebhook(r, d.body, secret, 5*time.Minute, now)
}

func TestNewWebhookValidates(t *testing.T) {
	for _, u := range []string{"", "/relative/path", "ftp://example.com/x", "example.com/hook", "http://", "http://%zz"} {
		if wh, err := httpapi.NewWebhook(u, whSecret, httpapi.WebhookOptions{Logger: slog.New(slog.DiscardHandler)}); err == nil {
			wh.Close(context.Background())
			t.Errorf("NewWebhook(%q) succeeded, want an error", u)
		}
	}
	if _, err := httpapi.NewWebhook("https://example.com/hook", nil, httpapi.WebhookOptions{}); err == nil {
		t.Error("NewWebhook with an empty secret succeeded")
	}
	if _, err := httpapi.NewWebhook("https://example.com/hook", whSecret, httpapi.WebhookOptions{MaxAttempts: -1}); err == nil {
		t.Error("NewWebhook with negative MaxAttempts succeeded")
	}
	wh, err := httpapi.NewWebhook("http://127.0.0.1:9/hook", whSecret, httpapi.WebhookOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestWebhookPayloadAndSignature(t *testing.T) {
	rc := newWHReceiver(t)
	sent := time.Unix(1741943520, 0)
	wh, _ := newTestWH(t, rc.URL+"/hook", httpapi.WebhookOptions{Now: func() time.Time { return sent }})
	wh.OnAlert(whAlert("alice", budget.Orange))
	whClose(t, wh)

	got := rc.deliveries()
	if len(got) != 1 {
		t.Fatalf("got %d deliveries, want 1", len(got))
	}
	d := got[0]
	if ct := d.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if ts := d.header.Get(httpapi.HeaderWebhookTimestamp); ts != strconv.FormatInt(sent.Unix(), 10) {
		t.Errorf("timestamp header = %q, want %d", ts, sent.Unix())
	}
	if sig := d.header.Get(httpapi.HeaderWebhookSignature); !strings.HasPrefix(sig, "v1=") || len(sig) != 3+64 {
		t.Errorf("signature header = %q, want v1=<64 hex digits>", sig)
	}

	var raw map[string]any
	if err := json.Unmarshal(d.body, &raw); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"type": "budget.alert", "user_id": "alice", "level": "orange",
		"spent_usd": "27.500000001", "limit_usd": "30", "percent_used": "91.66",
		"period_start": "2025-03-01T00:00:00Z", "period_end": "2025-04-01T00:00:00Z",
		"at": "2025-03-14T09:12:00Z",
	}
	for k, v := range want {
		if raw[k] != v {
			t.Errorf("payload %s = %#v, want %#v", k, raw[k], v)
		}
	}
	id, _ := raw["id"].(string)
	if !strings.HasPrefix(id, "evt_") || id != d.header.Get(httpapi.HeaderWebhookID) {
		t.Errorf("payload id %q, header id %q: want the same evt_ id", id, d.header.Get(httpapi.HeaderWebhookID))
	}
	if len(raw) != len(want)+1 {
		t.Errorf("payload has %d fields, want %d: %s", len(raw), len(want)+1, d.body)
	}

	// The whReceiver's side.
	if err := whVerify(d, whSecret, sent.Add(time.Minute)); err != nil {
		t.Errorf("VerifyWebhook: %v", err)
	}
	if err := whVerify(d, []byte("wrong"), sent); !errors.Is(err, httpapi.ErrWebhookSignature) {
		t.Errorf("VerifyWebhook with the wrong secret = %v, want ErrWebhookSignature", err)
	}
	tampered := whDelivery{d.header, []byte(strings.Replace(string(d.body), "27.5", "2.75", 1))}
	if err := whVerify(tampered, whSecret, sent); !errors.Is(err, httpapi.ErrWebhookSignature) {
		t.Errorf("VerifyWebhook of a tampered body = %v, want ErrWebhookSignature", err)
	}
	for _, now := range []time.Time{sent.Add(6 * time.Minute), sent.Add(-6 * time.Minute)} {
		if err := whVerify(d, whSecret, now); !errors.Is(err, httpapi.ErrWebhookTimestamp) {
			t.Errorf("VerifyWebhook at %s after sending = %v, want ErrWebhookTimestamp", now.Sub(sent), err)
		}
	}
	// A re-signed timestamp without the secret does not verify.
	h := d.header.Clone()
	h.Set(httpapi.HeaderWebhookTimestamp, strconv.FormatInt(sent.Unix()+1, 10))
	if err := whVerify(whDelivery{h, d.body}, whSecret, sent); !errors.Is(err, httpapi.ErrWebhookSignature) {
		t.Errorf("VerifyWebhook with a changed timestamp = %v, want ErrWebhookSignature", err)
	}
	// Missing or malformed headers.
	for _, mod := range []func(http.Header){
		func(h http.Header) { h.Del(httpapi.HeaderWebhookTimestamp) },
		func(h http.Header) { h.Set(httpapi.HeaderWebhookTimestamp, "soon") },
		func(h http.Header) { h.Del(httpapi.HeaderWebhookSignature) },
		func(h http.Header) { h.Set(httpapi.HeaderWebhookSignature, "v1=zz") },
		func(h http.Header) {
			h.Set(httpapi.HeaderWebhookSignature, strings.Replace(h.Get(httpapi.HeaderWebhookSignature), "v1=", "v0=", 1))
		},
	} {
		h := d.header.Clone()
		mod(h)
		if err := whVerify(whDelivery{h, d.body}, whSecret, sent); err == nil {
			t.Errorf("VerifyWebhook accepted headers %v", h)
		}
	}
	// Several signatures, one of them valid (a secret rotation).
	h = d.header.Clone()
	h.Set(httpapi.HeaderWebhookSignature, "v1=00ff, "+d.header.Get(httpapi.HeaderWebhookSignature))
	if err := whVerify(whDelivery{h, d.body}, whSecret, sent); err != nil {
		t.Errorf("VerifyWebhook with a list of signatures: %v", err)
	}

	if s := wh.Stats(); s != (httpapi.WebhookStats{Delivered: 1}) {
		t.Errorf("Stats = %+v", s)
	}
}

// TestWebhookNamesTheBudget: an alert on a team's, an org's or a cap's
// budget names it; one on the user's own budget keeps the plain payload.
func TestWebhookNamesTheBudget(t *testing.T) {
	rc := newWHReceiver(t)
	wh, _ := newTestWH(t, rc.URL+"/hook", httpapi.WebhookOptions{})
	own := whAlert("alice", budget.Orange)
	own.Scope = budget.User("alice")
	team := whAlert("alice", budget.Red)
	team.Scope, team.Status.Scope = budget.Team("research"), budget.Team("research")
	ownCap := whAlert("alice", budget.Yellow)
	ownCap.Scope, ownCap.Pattern = budget.User("alice"), "gpt-4o*"
	orgCap := whAlert("", budget.Yellow) // a settings change crossed it
	orgCap.Scope, orgCap.Pattern = budget.Org("acme"), "claude-*"
	for _, a := range []budget.Alert{own, team, ownCap, orgCap} {
		wh.OnAlert(a)
	}
	whClose(t, wh)
	var got []string
	for _, d := range rc.deliveries() {
		var p httpapi.WebhookPayload
		if err := json.Unmarshal(d.body, &p); err != nil {
			t.Fatal(err)
		}
		got = append(got, p.UserID+"|"+p.Scope+"|"+p.BudgetID+"|"+p.Pattern+"|"+p.Level.String())
		if p.Scope == "" && strings.Contains(string(d.body), "scope") {
			t.Errorf("the user's own alert: %s", d.body)
		}
	}
	want := []string{"alice||||orange", "alice|team|research||red", "alice|user|alice|gpt-4o*|yellow", "|org|acme|claude-*|yellow"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("payloads (-want +got):\n%s", d)
	}
}

func TestWebhookRetriesWithSameID(t *testing.T) {
	for _, code := range []int{http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			rc := newWHReceiver(t, code, code, http.StatusOK)
			wh, in := newTestWH(t, rc.URL, httpapi.WebhookOptions{
				Backoff: 100 * time.Millisecond, MaxBackoff: 150 * time.Millisecond,
			})
			wh.OnAlert(whAlert("bob", budget.Red))
			whClose(t, wh)

			got := rc.deliveries()
			if len(got) != 3 {
				t.Fatalf("got %d attempts, want 3", len(got))
			}
			id := got[0].header.Get(httpapi.HeaderWebhookID)
			for i, d := range got {
				if d.header.Get(httpapi.HeaderWebhookID) != id || string(d.body) != string(got[0].body) {
					t.Errorf("attempt %d: id %q, body %s; want id %q and the first body", i+1, d.header.Get(httpapi.HeaderWebhookID), d.body, id)
				}
				if err := whVerify(d, whSecret, time.Now()); err != nil {
					t.Errorf("attempt %d: %v", i+1, err)
				}
			}
			// Exponential with jitter: [50ms, 100ms], then [75ms, 150ms] (capped).
			w := in.waits()
			if len(w) != 2 || w[0] < 50*time.Millisecond || w[0] > 100*time.Millisecond ||
				w[1] < 75*time.Millisecond || w[1] > 150*time.Millisecond {
				t.Errorf("backoff delays = %v", w)
			}
			if s := wh.Stats(); s != (httpapi.WebhookStats{Delivered: 1}) {
				t.Errorf("Stats = %+v", s)
			}
		})
	}
}

func TestWebhookRetryAfter(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	wh, in := newTestWH(t, srv.URL, httpapi.WebhookOptions{Backoff: time.Millisecond})
	wh.OnAlert(whAlert("bob", budget.Red))
	whClose(t, wh)
	if w := in.waits(); len(w) != 1 || w[0] != 7*time.Second {
		t.Errorf("delays = %v, want [7s]", w)
	}
}

func TestWebhookGivesUpAfterMaxAttempts(t *testing.T) {
	rc := newWHReceiver(t, http.StatusBadGateway)
	wh, in := newTestWH(t, rc.URL, httpapi.WebhookOptions{MaxAttempts: 4})
	wh.OnAlert(whAlert("carol", budget.Yellow))
	whClose(t, wh)
	if n := len(rc.deliveries()); n != 4 {
		t.Errorf("got %d attempts, want 4", n)
	}
	if w := in.waits(); len(w) != 3 {
		t.Errorf("waited %d times, want 3", len(w))
	}
	if s := wh.Stats(); s != (httpapi.WebhookStats{Failed: 1}) {
		t.Errorf("Stats = %+v", s)
	}
}

func TestWebhookDefaultMaxAttempts(t *testing.T) {
	rc := newWHReceiver(t, http.StatusInternalServerError)
	wh, _ := newTestWH(t, rc.URL, httpapi.WebhookOptions{})
	wh.OnAlert(whAlert("carol", budget.Yellow))
	whClose(t, wh)
	if n := len(rc.deliveries()); n != 5 {
		t.Errorf("got %d attempts, want the default 5", n)
	}
}

func TestWebhookNoRetryOn4xx(t *testing.T) {
	for _, code := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound, http.StatusFound} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			rc := newWHReceiver(t, code, http.StatusOK)
			wh, in := newTestWH(t, rc.URL, httpapi.WebhookOptions{})
			wh.OnAlert(whAlert("dave", budget.Red))
			whClose(t, wh)
			if n := len(rc.deliveries()); n != 1 {
				t.Errorf("got %d attempts, want 1", n)
			}
			if w := in.waits(); len(w) != 0 {
				t.Errorf("waited %v", w)
			}
			if s := wh.Stats(); s != (httpapi.WebhookStats{Failed: 1}) {
				t.Errorf("Stats = %+v", s)
			}
		})
	}
}

// whRoundTrip is an http.RoundTripper from a function.
type whRoundTrip func(*http.Request) (*http.Response, error)

func (f whRoundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestWebhookRetriesNetworkErrors(t *testing.T) {
	rc := newWHReceiver(t)
	var calls atomic.Int32
	client := &http.Client{Transport: whRoundTrip(func(r *http.Request) (*http.Response, error) {
		if calls.Add(1) <= 2 {
			return nil, errors.New("connection reset by peer")
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	wh, _ := newTestWH(t, rc.URL, httpapi.WebhookOptions{Client: client})
	wh.OnAlert(whAlert("erin", budget.Orange))
	whClose(t, wh)
	if calls.Load() != 3 || len(rc.deliveries()) != 1 {
		t.Errorf("%d attempts, %d delivered; want 3 and 1", calls.Load(), len(rc.deliveries()))
	}
	if s := wh.Stats(); s != (httpapi.WebhookStats{Delivered: 1}) {
		t.Errorf("Stats = %+v", s)
	}
}

// whHangingReceiver blocks every request until release is closed, and
// signals each arrival on entered.
func whHangingReceiver(t *testing.T) (url string, entered <-chan struct{}, release func(), count func() int) {
	t.Helper()
	in := make(chan struct{}, 1000)
	gate := make(chan struct{})
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		in <- struct{}{}
		select {
		case <-gate:
			n.Add(1)
		case <-r.Context().Done():
		}
	}))
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(srv.Close)
	t.Cleanup(release) // runs first: unblock handlers before the server closes
	return srv.URL, in, release, func() int { return int(n.Load()) }
}

func whWaitFor(t *testing.T, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for the whReceiver")
	}
}

func TestWebhookOnAlertNeverBlocks(t *testing.T) {
	url, entered, release, count := whHangingReceiver(t)
	wh, _ := newTestWH(t, url, httpapi.WebhookOptions{QueueSize: 2, Workers: 1})

	wh.OnAlert(whAlert("u0", budget.Yellow))
	whWaitFor(t, entered) // the worker is now stuck on the first alert

	const more = 100
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range more {
			wh.OnAlert(whAlert("u"+strconv.Itoa(i+1), budget.Yellow))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("OnAlert blocked on a hanging whReceiver")
	}
	// Two fit in the queue; the rest are dropped.
	if s := wh.Stats(); s.Dropped != more-2 || s.Delivered != 0 {
		t.Errorf("Stats = %+v, want %d dropped", s, more-2)
	}

	release()
	whClose(t, wh)
	if s := wh.Stats(); s != (httpapi.WebhookStats{Delivered: 3, Dropped: more - 2}) {
		t.Errorf("Stats after Close = %+v", s)
	}
	if n := count(); n != 3 {
		t.Errorf("whReceiver completed %d requests, want 3", n)
	}

	// After Close, alerts are dropped, not sent and no panic.
	wh.OnAlert(whAlert("late", budget.Red))
	if s := wh.Stats(); s.Dropped != more-1 {
		t.Errorf("Dropped after Close = %d, want %d", s.Dropped, more-1)
	}
	if err := wh.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestWebhookCloseDrains(t *testing.T) {
	url, entered, release, count := whHangingReceiver(t)
	wh, _ := newTestWH(t, url, httpapi.WebhookOptions{Workers: 1})
	for i := range 5 {
		wh.OnAlert(whAlert("u"+strconv.Itoa(i), budget.Red))
	}
	whWaitFor(t, entered)

	closed := make(chan error, 1)
	go func() { closed <- wh.Close(context.Background()) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v before the queue drained", err)
	default:
	}
	release()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if n := count(); n != 5 {
		t.Errorf("whReceiver completed %d requests before Close returned, want 5", n)
	}
	if s := wh.Stats(); s != (httpapi.WebhookStats{Delivered: 5}) {
		t.Errorf("Stats = %+v", s)
	}
}

func TestWebhookCloseDeadlineAbandons(t *testing.T) {
	url, entered, _, _ := whHangingReceiver(t)
	wh, _ := newTestWH(t, url, httpapi.WebhookOptions{Workers: 1})
	for i := range 3 {
		wh.OnAlert(whAlert("u"+strconv.Itoa(i), budget.Red))
	}
	whWaitFor(t, entered)

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // already over: Close must cancel the hanging request and return
	if err := wh.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close = %v, want context.Canceled", err)
	}
	if s := wh.Stats(); s != (httpapi.WebhookStats{Failed: 3}) {
		t.Errorf("Stats = %+v, want 3 failed", s)
	}
}

func TestWebhookAsOnAlert(t *testing.T) {
	// End to end through a Manager: each level reached is delivered once.
	rc := newWHReceiver(t)
	wh, _ := newTestWH(t, rc.URL, httpapi.WebhookOptions{})
	plan := budget.DefaultUserPlan()
	plan.Limit = budget.MustAmount("1")
	m := budget.NewManager(whMemoryStore(t), budget.Options{UserPlan: &plan, OnAlert: wh.OnAlert})
	ctx := context.Background()
	for _, c := range []string{"0.8", "0.15", "0.1"} {
		if _, err := m.Record(ctx, "alice", budget.Usage{Provider: "openai", Model: "gpt-4o", Cost: budget.MustAmount(c)}); err != nil {
			t.Fatal(err)
		}
	}
	whClose(t, wh)
	var levels []string
	ids := map[string]bool{}
	for _, d := range rc.deliveries() {
		var p httpapi.WebhookPayload
		if err := json.Unmarshal(d.body, &p); err != nil {
			t.Fatal(err)
		}
		levels = append(levels, p.Level.String())
		ids[p.ID] = true
		if p.UserID != "alice" || p.LimitUSD != "1" {
			t.Errorf("payload %+v", p)
		}
	}
	if strings.Join(levels, ",") != "yellow,orange,red" || len(ids) != 3 {
		t.Errorf("levels %v with %d distinct ids, want yellow,orange,red with 3", levels, len(ids))
	}
}

func whMemoryStore(t *testing.T) budget.Store {
	s := memory.New()
	t.Cleanup(func() { s.Close() })
	return s
}
