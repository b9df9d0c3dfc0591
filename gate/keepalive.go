package gate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/llmbudget/budget"
)

// keepAlive extends a reservation's hold while its call is in progress, so
// that a call that outlives the Manager's HoldTTL never lets other calls
// take the budget it holds. It runs on a timer, not a goroutine of its
// own: the timer's function extends the hold and arms the next one.
//
// It stops when the call is settled or released, when the hold is found
// closed or already lapsed (ErrHoldExpired: a lapsed hold is never
// revived, so that is reported to Options.OnError), and when the response
// body is abandoned: not read, not closed, for Options.IdleTimeout, which
// settles it at its estimate.
type keepAlive struct {
	t        *transport
	req      *http.Request
	res      *budget.Reservation
	ctx      context.Context
	user     string // for logs
	interval time.Duration
	idleMax  int // ticks without a read before the body is abandoned

	mu        sync.Mutex
	stopped   bool
	stopTimer func() bool
	body      *meteredBody
	lastReads int64
	idle      int
}

// keepAlive starts renewing res, reserved for user at the gate's clock
// reading before, in k, and returns k; ctx is the request's, without its
// cancellation.
func (t *transport) keepAlive(k *keepAlive, req *http.Request, ctx context.Context, res *budget.Reservation, before time.Time, user string) *keepAlive {
	ttl := res.ExpiresAt().Sub(before)
	interval := t.renewEvery
	if interval <= 0 {
		interval = ttl / 2
		if interval <= 0 {
			interval = time.Second // the clocks disagree: renew often rather than late
		}
	}
	idle := t.idle
	if idle <= 0 {
		idle = max(ttl, interval)
	}
	*k = keepAlive{
		t: t, req: req, res: res, ctx: ctx, user: user,
		interval: interval, idleMax: max(1, int((idle+interval-1)/interval)),
	}
	k.mu.Lock()
	k.stopTimer = t.afterFunc(interval, k.tick)
	k.mu.Unlock()
	return k
}

// watch starts the idle check on the response body.
func (k *keepAlive) watch(b *meteredBody) {
	k.mu.Lock()
	k.body, k.lastReads = b, b.reads.Load()
	k.mu.Unlock()
}

// stop ends the renewals; the call is settled or released.
func (k *keepAlive) stop() {
	k.mu.Lock()
	k.stopped = true
	if k.stopTimer != nil {
		k.stopTimer()
	}
	k.mu.Unlock()
}

func (k *keepAlive) tick() {
	k.mu.Lock()
	if k.stopped {
		k.mu.Unlock()
		return
	}
	if b := k.body; b != nil {
		n := b.reads.Load()
		if n == k.lastReads && n%2 == 0 { // no Read since the last tick, none in progress
			k.idle++
		} else {
			k.idle = 0
		}
		k.lastReads = n
		if k.idle >= k.idleMax {
			k.stopped = true
			k.mu.Unlock()
			b.abandon()
			return
		}
	}
	k.mu.Unlock()

	next := k.interval
	_, err := k.res.Extend(k.ctx)
	switch {
	case err == nil:
	case errors.Is(err, budget.ErrReservationClosed):
		return
	case errors.Is(err, budget.ErrHoldExpired):
		k.warn("gate: the hold of a running call lapsed before it was renewed; its cost will still be recorded, but other calls may have spent the budget it held", err)
		k.t.fail(k.req, fmt.Errorf("gate: the hold of %s %s lapsed while the call ran (renewed too late); its cost will still be recorded: %w",
			k.req.Method, k.req.URL.Path, err))
		return
	default:
		k.warn("gate: could not renew the hold of a running call; retrying sooner", err)
		k.t.fail(k.req, err)
		next = max(k.interval/4, time.Millisecond) // retry sooner: the hold is running out
	}
	k.mu.Lock()
	if !k.stopped {
		k.stopTimer = k.t.afterFunc(next, k.tick)
	}
	k.mu.Unlock()
}

// warn logs a renewal that failed with err.
func (k *keepAlive) warn(msg string, err error) {
	tel := &k.t.tel
	if !tel.logging(k.ctx, slog.LevelWarn) {
		return
	}
	a, _ := classify(k.req.Method, k.req.URL.Path)
	tel.log.LogAttrs(k.ctx, slog.LevelWarn, msg,
		slog.String("provider", a.provider()), slog.String("route", a.route()),
		slog.String("user_id", k.user), slog.Any("err", err))
}
