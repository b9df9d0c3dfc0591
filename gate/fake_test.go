package gate_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/gate"
	"github.com/llmbudget/budget/internal/gatetest"
	"github.com/llmbudget/budget/pricing"
)

// The fake upstream and its harness live in internal/gatetest, shared with
// the e2e module's tests that drive the real SDKs through the gate; this
// file gives them the names this package's tests use.

// The rigs of gatetest fire the gate's renewal timers by hand.
func init() { gatetest.SetAfterFunc = gate.SetAfterFunc }

// The fake upstream answers with these usages, so every test knows the
// exact cost to expect (prices from testdata/prices.json).
const (
	costGPT4o     = gatetest.CostGPT4o
	costGPT4oMini = gatetest.CostGPT4oMini
	costInstruct  = gatetest.CostInstruct
	costEmbedding = gatetest.CostEmbedding
	costClaude    = gatetest.CostClaude

	chatUsage      = gatetest.ChatUsage
	responsesUsage = gatetest.ResponsesUsage
	anthropicUsage = gatetest.AnthropicUsage
	completionJSON = gatetest.CompletionJSON
	embeddingJSON  = gatetest.EmbeddingJSON
)

var (
	chatCompletionJSON = gatetest.ChatCompletionJSON
	chatChunk          = gatetest.ChatChunk
	chatStream         = gatetest.ChatStream
	responseJSON       = gatetest.ResponseJSON
	responsesStream    = gatetest.ResponsesStream
	messageJSON        = gatetest.MessageJSON
	messagesStream     = gatetest.MessagesStream
	writeEvent         = gatetest.WriteEvent
)

// upstream is the fake upstream (gatetest.Upstream): a local server that
// answers like the OpenAI and Anthropic APIs, and records what it received.
type upstream struct {
	*gatetest.Upstream
	calls *atomic.Int64
	// override, when set, is given each request first; it returns true
	// when it has answered.
	override func(w http.ResponseWriter, r *http.Request, body map[string]any) bool
}

func (u *upstream) lastBody(t *testing.T) (raw []byte, contentLength int64) {
	t.Helper()
	return u.LastBody(t)
}

// harness wires a Manager on a memory store with a fixed clock, the test
// price list, a gate and the fake upstream (gatetest.Harness).
type harness struct {
	*gatetest.Harness
	m      *budget.Manager
	prices *pricing.Table
	up     *upstream
	client *http.Client
	ctx    context.Context // carries the user "alice"
}

// newHarness gives alice a monthly budget of limit dollars.
func newHarness(t *testing.T, limit string, opts gate.Options) *harness {
	t.Helper()
	g := gatetest.NewHarness(t, limit, opts)
	up := &upstream{Upstream: g.Up, calls: &g.Up.Calls}
	g.Up.Override = func(w http.ResponseWriter, r *http.Request, body map[string]any) bool {
		return up.override != nil && up.override(w, r, body)
	}
	return &harness{Harness: g, m: g.M, prices: g.Prices, up: up, client: g.Client, ctx: g.Ctx}
}

func loadPrices(t testing.TB) *pricing.Table {
	t.Helper()
	return gatetest.LoadPrices(t)
}

// history returns alice's usage records, newest first.
func (h *harness) history(t *testing.T) []budget.UsageRecord {
	t.Helper()
	return h.History(t)
}

func (h *harness) status(t *testing.T) budget.Status {
	t.Helper()
	return h.Status(t)
}

// wantOneRecord asserts that alice has exactly one usage record, with this
// provider, model and cost, and no live reservation.
func (h *harness) wantOneRecord(t *testing.T, provider, model, cost string) budget.UsageRecord {
	t.Helper()
	return h.WantOneRecord(t, provider, model, cost)
}

// wantNoSpend asserts that alice has no usage and no live reservation.
func (h *harness) wantNoSpend(t *testing.T) {
	t.Helper()
	h.WantNoSpend(t)
}

// estimate returns what the gate reserves for body.
func (h *harness) estimate(t *testing.T, body string) decimal.Decimal {
	t.Helper()
	return h.Estimate(t, body)
}

func (h *harness) quote(t *testing.T, body string) pricing.Quote {
	t.Helper()
	return gatetest.Quote(t, h.prices, body)
}
