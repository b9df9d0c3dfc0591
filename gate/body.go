package gate

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopspring/decimal"
	"go.opentelemetry.io/otel/trace"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/pricing"
)

// meteredBody passes a response body through while its parser reads the
// usage, and settles the reservation exactly once: when the parser has
// the final usage, at the end of the body, at Close, or when the body is
// abandoned — whichever comes first. After that it only passes bytes.
type meteredBody struct {
	rc            io.ReadCloser
	t             *transport
	req           *http.Request
	ctx           context.Context
	res           *budget.Reservation
	keep          *keepAlive
	price         pricing.Price
	quote         pricing.Quote
	provider      string
	model         string
	contentLength int64
	compressed    bool
	api           api
	user          string

	// Telemetry: the call's span (nil unless traced), and the gate's own
	// time (when metered): spent before the stretch of work that began at
	// the clock reading since. See finish.
	span  trace.Span
	since time.Duration
	spent time.Duration

	sse    *sseParser // the parser, when the body is an event stream
	filter *sseFilter // set when usage-only chunks are removed

	// reads counts Read calls begun and ended, for the idle check.
	reads atomic.Int64

	mu       sync.Mutex // guards parser, received and done: Close may race with Read
	parser   usageParser
	received int64 // body bytes received from upstream
	done     bool
}

// Read returns upstream's bytes as they come: no buffering beyond the
// event being filtered, so a stream's events reach the caller as soon as
// upstream sends them.
func (b *meteredBody) Read(p []byte) (int, error) {
	b.reads.Add(1)
	defer b.reads.Add(1)
	if b.filter != nil {
		return b.filter.read(b, p)
	}
	n, err := b.rc.Read(p)
	b.mu.Lock()
	if !b.done {
		b.startWork()
		b.received += int64(n)
		if n > 0 && !b.compressed {
			b.parser.feed(p[:n])
		}
		switch {
		case b.parser.finished():
			b.settle()
		case err != nil:
			b.ended(err)
		}
		b.stopWork()
	}
	b.mu.Unlock()
	return n, err
}

// ended settles a body whose upstream read failed or reached its end
// before the final usage; b.mu is held.
func (b *meteredBody) ended(err error) {
	if err != io.EOF && b.req.Context().Err() != nil {
		b.settleBound() // the caller cancelled
		return
	}
	b.settle()
}

// Close closes the upstream body and settles, if that was not done: a
// caller that closes before the final usage stopped the call.
func (b *meteredBody) Close() error {
	err := b.rc.Close()
	b.mu.Lock()
	if !b.done {
		b.startWork()
		if b.parser.finished() {
			b.settle()
		} else {
			b.settleBound()
		}
	}
	b.mu.Unlock()
	return err
}

// abandon settles a body left unread and unclosed: what upstream
// generated into the connection is unknown, so at the estimate.
func (b *meteredBody) abandon() {
	b.mu.Lock()
	if !b.done {
		b.startWork()
		b.settleAt(pricing.Usage{InputTokens: b.quote.PromptTokens, OutputTokens: b.quote.OutputTokens}, b.quote.Cost, settledAbandoned)
	}
	b.mu.Unlock()
}

// settle records the call's cost; b.mu is held. With the provider's final
// usage it charges that usage at the price looked up when the call began.
// Otherwise — a stream cut off, usage missing, unreadable, or reporting no
// tokens at all — it charges the estimate, or the partial usage seen if
// that costs more, never zero.
func (b *meteredBody) settle() {
	b.parser.end()
	u, final := b.parser.usage()
	if u == (pricing.Usage{}) {
		final = false
	}
	cost, err := b.price.Cost(u)
	if err != nil {
		final = false
	}
	o := settledUsage
	if !final {
		// The response said it was complete (or could not be read at
		// all) but its usage is not usable; else it was cut short.
		o = settledCut
		if b.compressed || b.parser.finished() {
			o = settledNoUsage
		}
		if err != nil || cost.LessThan(b.quote.Cost) {
			cost = b.quote.Cost
		}
	}
	b.settleAt(u, cost, o)
}

// noEventYet is the chunk allowed for before any event was received.
const noEventYet = 256

// settleBound settles a call the caller stopped before its final usage, at
// an upper bound of what the provider can bill (see New, step 7); b.mu is
// held.
func (b *meteredBody) settleBound() {
	b.parser.end()
	if u, final := b.parser.usage(); final && u != (pricing.Usage{}) {
		b.settle()
		return
	}
	out := b.quote.OutputTokens
	switch {
	case b.sse != nil && !b.compressed:
		chunk := int64(b.sse.maxEvent)
		if chunk == 0 {
			chunk = noEventYet
		}
		out = min(out, b.received+chunk)
	case b.sse == nil && b.rc != nil && b.contentLength > 0 && !b.compressed:
		out = min(out, b.contentLength)
	case b.rc == nil:
		out = min(out, noEventYet) // cancelled before the response
	}
	cost := b.price.MaxCost(b.quote.PromptTokens, out)
	u := pricing.Usage{InputTokens: b.quote.PromptTokens, OutputTokens: out}
	// Anthropic reports the input in message_start: exact, and often
	// below the estimate.
	if pu, _ := b.parser.usage(); pu.Prompt() > 0 {
		pu.OutputTokens = out
		if c, err := b.price.Cost(pu); err == nil && c.LessThan(cost) {
			cost, u = c, pu
		}
	}
	if cost.GreaterThan(b.quote.Cost) {
		cost = b.quote.Cost
	}
	b.settleAt(u, cost, settledStopped)
}

// settleAt settles at cost, recording u's token counts, and reports the
// call's end as o; b.mu is held.
func (b *meteredBody) settleAt(u pricing.Usage, cost decimal.Decimal, o outcome) {
	b.done = true
	b.keep.stop()
	_, err := b.res.Settle(b.ctx, budget.Usage{
		Provider: b.provider, Model: b.model,
		InputTokens: u.Prompt(), OutputTokens: u.OutputTokens, Cost: cost,
	})
	if err != nil {
		if b.t.tel.logging(b.ctx, slog.LevelError) {
			b.t.tel.log.LogAttrs(b.ctx, slog.LevelError, "gate: settling a call failed; its spend is not recorded and its hold counts until it expires",
				b.logAttrs(slog.Any("err", err))...)
		}
		b.t.fail(b.req, err)
	}
	b.finish(o)
}

// sseFilter removes the usage-only chunks of an OpenAI stream whose usage
// the gate asked for. It holds back the bytes of the event being received
// until the event is complete — an event means nothing to a client before
// its blank line anyway — then passes or drops it whole. Every other byte
// passes unchanged and in order.
type sseFilter struct {
	buf   []byte // upstream bytes not yet returned
	r     int    // buf[r:ready] may be returned
	ready int    // the end of the last complete event kept
	line  int    // the start of the line being received
	err   error  // upstream's error, returned once buf is drained
}

// filterBufSize is the size of the buffers an sseFilter starts with,
// pooled: most streams never outgrow one.
const filterBufSize = 32 << 10

var filterBufs = sync.Pool{New: func() any { return new([filterBufSize]byte) }}

func (f *sseFilter) read(b *meteredBody, p []byte) (int, error) {
	for {
		if f.r < f.ready {
			n := copy(p, f.buf[f.r:f.ready])
			f.r += n
			if f.r == len(f.buf) {
				f.buf, f.r, f.ready, f.line = f.buf[:0], 0, 0, 0
			}
			return n, nil
		}
		if f.err != nil {
			if f.r < len(f.buf) {
				n := copy(p, f.buf[f.r:])
				f.r += n
				return n, nil
			}
			if f.buf != nil {
				// Drained for good: only this goroutine reads f.buf.
				if cap(f.buf) == filterBufSize {
					filterBufs.Put((*[filterBufSize]byte)(f.buf[:filterBufSize]))
				}
				f.buf, f.r, f.ready, f.line = nil, 0, 0, 0
			}
			return 0, f.err
		}
		if f.r > 0 && f.r == f.ready {
			// Keep only the incomplete event.
			k := copy(f.buf, f.buf[f.r:])
			f.buf, f.ready, f.line, f.r = f.buf[:k], f.ready-f.r, f.line-f.r, 0
		}
		if f.buf == nil {
			f.buf = filterBufs.Get().(*[filterBufSize]byte)[:0]
		}
		if cap(f.buf)-len(f.buf) < 4096 {
			f.buf = append(f.buf, make([]byte, max(4096, len(p)))...)[:len(f.buf)]
		}
		n, err := b.rc.Read(f.buf[len(f.buf):cap(f.buf)])
		f.buf = f.buf[:len(f.buf)+n]
		b.mu.Lock()
		if b.done {
			f.ready = len(f.buf) // settled: pass the rest as it is
		} else {
			b.startWork()
			b.received += int64(n)
			f.scan(b.sse, len(f.buf)-n)
			if b.parser.finished() {
				b.settle()
			} else if err != nil {
				b.ended(err)
			}
			b.stopWork()
		}
		b.mu.Unlock()
		if err != nil {
			f.err = err
			f.ready = len(f.buf)
		}
	}
}

// scan splits the new bytes buf[from:] into lines for the parser, and
// drops each complete event the parser marks.
func (f *sseFilter) scan(s *sseParser, from int) {
	i := from
	for {
		k := bytes.IndexByte(f.buf[i:], '\n')
		if k < 0 {
			break
		}
		nl := i + k
		s.event += nl + 1 - f.line
		if s.processLine(f.buf[f.line:nl]) {
			if s.drop {
				f.buf = append(f.buf[:f.ready], f.buf[nl+1:]...)
				i, f.line = f.ready, f.ready
				continue
			}
			f.ready = nl + 1
		}
		i, f.line = nl+1, nl+1
	}
	s.release() // f.buf may move before the next scan
	if len(f.buf)-f.ready > maxEventBytes {
		// Too large to be a usage chunk: let it through.
		f.ready = len(f.buf)
	}
}
