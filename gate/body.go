package gate

import (
	"context"
	"io"
	"net/http"
	"sync"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/pricing"
)

// meteredBody passes a response body through untouched while its parser
// reads the usage, and settles the reservation exactly once: at the end of
// the body (EOF or a read error) or at Close, whichever comes first.
type meteredBody struct {
	rc       io.ReadCloser
	t        *transport
	req      *http.Request
	ctx      context.Context
	res      *budget.Reservation
	price    pricing.Price
	quote    pricing.Quote
	provider string
	model    string

	mu     sync.Mutex // guards parser and done: Close may race with Read
	parser usageParser
	done   bool
}

// Read returns upstream's bytes as they come: no buffering, so a stream's
// first chunk reaches the caller as soon as upstream sends it.
func (b *meteredBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.mu.Lock()
	if !b.done {
		if n > 0 {
			b.parser.feed(p[:n])
		}
		if err != nil {
			b.settle()
		}
	}
	b.mu.Unlock()
	return n, err
}

// Close closes the upstream body and settles, if the end was not reached.
func (b *meteredBody) Close() error {
	err := b.rc.Close()
	b.mu.Lock()
	if !b.done {
		b.settle()
	}
	b.mu.Unlock()
	return err
}

// settle records the call's cost; b.mu is held. With the provider's final
// usage it charges that usage at the price looked up when the call began.
// Otherwise — a stream cut off, usage missing, unreadable, or reporting no
// tokens at all — it charges the estimate, or the partial usage seen if
// that costs more, never zero.
func (b *meteredBody) settle() {
	b.done = true
	b.parser.end()
	u, final := b.parser.usage()
	if u == (pricing.Usage{}) {
		final = false
	}
	cost, err := b.price.Cost(u)
	if err != nil {
		final = false
	}
	if !final && (err != nil || cost.LessThan(b.quote.Cost)) {
		cost = b.quote.Cost
	}
	_, err = b.res.Settle(b.ctx, budget.Usage{
		Provider: b.provider, Model: b.model,
		InputTokens: u.Prompt(), OutputTokens: u.OutputTokens, Cost: cost,
	})
	if err != nil {
		b.t.fail(b.req, err)
	}
}
