// Package gate puts a budget in front of LLM API calls as an
// http.RoundTripper: wrap your HTTP client's transport and every call to an
// OpenAI-, Anthropic- or Gemini-style API spends the user's budget, with
// no other change to your code.
//
//	client := openai.NewClient(option.WithHTTPClient(gate.Client(m, prices, gate.Options{})))
//	ctx = gate.WithUser(ctx, "alice")
//	resp, err := client.Chat.Completions.New(ctx, params) // reserved, forwarded, settled
//
// For each call the gate reserves the most the request can cost
// (pricing.Price.Estimate), keeps that hold alive for as long as the call
// runs, forwards the request, reads the usage the provider reports — from
// the JSON response or from the event stream, as the bytes pass through to
// the caller — and settles the actual cost the moment the final usage is
// read. A call the budget refuses never reaches the provider.
//
// Nothing escapes the budget by default: a path the gate does not meter
// (unless listed as free), a model without a price, input it cannot bound
// and a body it cannot read are all refused before any upstream call. When
// the outcome is unclear — a stream cut off by upstream, usage missing or
// unreadable, a body abandoned unread — the call is settled at its
// estimate, never at zero. Only an upstream failure before any tokens (a
// transport error or a non-2xx status) releases the reservation.
//
// # Observability
//
// The gate reports through the OpenTelemetry API and log/slog, to the
// providers and logger in its Options (not the Manager's, which it cannot
// see: give both the same ones). Without them it records nothing, and a
// call pays a few boolean tests: no allocation, no clock reading.
//
// Metrics, on the meter named "github.com/llmbudget/budget/gate":
//
//	budget.gate.overhead   histogram, unit s: the time the gate itself adds
//	                       to a forwarded call; attributes provider, route
//	budget.gate.calls      counter, unit {call}: calls reserved and
//	                       forwarded upstream; attributes provider, route
//	budget.gate.refusals   counter, unit {call}: calls refused before any
//	                       upstream call; attribute reason = limit |
//	                       unsupported_path | no_user | bad_request |
//	                       no_price | unpriced_input | store_error
//	budget.gate.estimates  counter, unit {call}: calls settled at their
//	                       estimate because their cost was unclear;
//	                       attributes provider, reason = cut | no_usage |
//	                       abandoned
//
// provider is openai, anthropic or google; route is chat_completions,
// completions, responses, embeddings, messages or generate_content.
//
// budget.gate.overhead is recorded once per forwarded call, when the call
// is settled or released. It sums the gate's own stretches of work: in
// RoundTrip before the upstream call (finding the user, reading and
// pricing the body, the Manager's Reserve, starting the hold's renewal,
// preparing the forwarded request) and after upstream's response headers
// (wrapping the body, or releasing the reservation of a failed call);
// then, on each read of the body until the call is settled, the reading
// of the usage from the bytes read (and the filtering of the usage chunk
// the gate asked for); and the settling itself, the Manager's Settle
// included, in whichever read, Close or idle check it happens. It
// excludes the upstream's time (waiting for headers and inside each read
// of its body), the caller's time between reads, the renewals, which run
// beside the call, and the bytes passed after the call is settled.
// Refused calls are not observed.
//
// A refusal's reason is no_price for a model missing from the price table
// or without a maximum output (pricing.ErrUnknownModel,
// pricing.ErrNoOutputLimit), unpriced_input for input the gate cannot
// bound (pricing.ErrUnpricedInput), store_error when the Manager's Reserve
// failed otherwise (the store, or the request's context ending). An
// estimate's reason is cut when the body ended or failed before the final
// usage, no_usage when the response was complete but its usage was
// missing, unreadable (a compressed body included) or all zero, abandoned
// when the body was left unread for Options.IdleTimeout.
//
// Cardinality: budget.gate.overhead and budget.gate.calls have at most six
// series (one per route), budget.gate.refusals seven, budget.gate.estimates
// nine. No metric carries a user ID or a model. The instruments are
// synchronous: a gate registers no callback, so several gates on one
// provider add up, and making one per request leaks nothing.
//
// Traces, on the tracer named "github.com/llmbudget/budget/gate": a span
// per metered call, budget.gate.RoundTrip, from the start of RoundTrip to
// the call's settlement or release (or its refusal), so that it is the
// parent of the Manager's budget.Reserve, budget.Extend, budget.Settle and
// budget.Release spans for the call, and of Base's spans for the upstream
// call. Attributes: budget.provider, budget.gate.route, budget.model,
// budget.gate.streamed (the request asked for a stream),
// budget.gate.outcome = usage (settled at the reported usage) | stopped
// (the caller stopped first: settled at an upper bound) | estimate |
// released | refused, with budget.gate.reason for an estimate or a
// refusal as in the metrics, and http.response.status_code for a call
// released after a non-2xx status. A refusal other than by the budget, and
// a transport error, set the status to Error, described by the reason and
// never by the error's text. The user ID appears, as budget.user_id, only
// with Options.TraceUserIDs.
//
// Logs, to Options.Logger: a call settled at its estimate (cut, no usage,
// abandoned) and a hold renewal or release that failed, at Warn; a
// settlement that failed, at Error. Records carry provider, route, user_id
// and, but for renewals, model.
package gate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/pricing"
)

var (
	// ErrUnsupportedPath: the request is not one of the calls the gate
	// meters (see New) nor a free route, and Options.PassThrough is off.
	ErrUnsupportedPath = errors.New("gate: unsupported path")
	// ErrNoUser: the request carries no user to charge — no WithUser on its
	// context, or Options.User returned an empty ID.
	ErrNoUser = errors.New("gate: no user for the request")
	// ErrBadRequest: the gate cannot price the request body: not JSON, no
	// model, compressed, or larger than Options.MaxRequestBytes.
	ErrBadRequest = errors.New("gate: cannot price the request")
)

// Options configure a gate. The zero value is valid.
type Options struct {
	// Base is the transport that makes the upstream calls. Defaults to
	// http.DefaultTransport.
	Base http.RoundTripper

	// User says whose budget a request spends. Defaults to the ID set on
	// the request's context with WithUser. An error, or an empty ID,
	// refuses the request before any upstream call.
	User func(*http.Request) (string, error)

	// Free lists routes that cost nothing, forwarded unbudgeted: each a
	// method, a space and a path whose last segments the request's path
	// must end with, "*" matching within one segment, as path.Match does
	// ("GET /v1/models", "GET /v1/models/*", "POST
	// /v1beta/models/*:countTokens"). CommonFreeRoutes lists those of the
	// three APIs. Everything else that is not metered is refused.
	Free []string

	// PassThrough forwards every request the gate does not meter unchanged
	// instead of refusing it with ErrUnsupportedPath. Those calls escape
	// the budget entirely — image, audio and file calls too: prefer Free,
	// and turn this on only when everything else the client calls is
	// budgeted elsewhere.
	PassThrough bool

	// FitToBudget, when the remaining budget cannot pay a request's
	// maximum output, lowers the request's output limit (max_tokens,
	// max_completion_tokens, max_output_tokens, Gemini's maxOutputTokens;
	// added when the request sets none) to what the budget still pays,
	// and reserves that, instead of refusing. A request is refused only
	// when not even its prompt and MinOutputTokens of output fit. The
	// answer may then stop early for length, as with any max_tokens.
	FitToBudget bool

	// MinOutputTokens is the least output FitToBudget will lower a request
	// to; Anthropic's thinking budget is added to it. Defaults to 16.
	MinOutputTokens int64

	// RefuseWithStatus answers a request the budget refuses with an HTTP
	// 429 response in the provider's own error format — code
	// "budget_exceeded", a message naming the budget and when it resets,
	// the same in fields ("scope", "budget_id", "pattern", "resets_at",
	// in error.budget for OpenAI, error.details for Anthropic, the
	// ErrorInfo's metadata for Gemini), Retry-After, and x-should-retry:
	// false so that SDKs do not retry —
	// instead of an error from RoundTrip. SDKs then raise their usual API
	// error. Off, RoundTrip returns an error matching
	// budget.ErrBudgetExceeded.
	RefuseWithStatus bool

	// RenewEvery is how often the gate extends the hold of a call still in
	// progress (budget.Reservation.Extend), so that no call, however long
	// it runs or streams, outlives its hold. Defaults to half the
	// Manager's HoldTTL.
	RenewEvery time.Duration

	// IdleTimeout is how long a response body may go unread and unclosed
	// before the gate takes it as abandoned: it stops renewing the hold
	// and settles the call at its estimate (what the provider may have
	// generated into the unread connection is unknown). Defaults to the
	// Manager's HoldTTL.
	IdleTimeout time.Duration

	// Now is the clock the gate reads to learn the Manager's HoldTTL from
	// a reservation's expiry. It must be the Manager's clock
	// (budget.Options.Now); defaults to time.Now.
	Now func() time.Time

	// MaxRequestBytes bounds the request body the gate reads to price a
	// call. Larger bodies are refused with ErrBadRequest. Defaults to 32
	// MiB.
	MaxRequestBytes int64

	// OnError is called when settling, releasing or extending a
	// reservation fails where no error can be returned to the caller: at
	// the end of the response body, when releasing after an upstream
	// error, or while renewing the hold of a running call (for example
	// because the store is down). A hold that could not be settled or
	// released stays until its TTL, and the spend of a failed Settle is
	// lost unless you record it, so log it at least. It must be safe for
	// concurrent use. Defaults to doing nothing.
	OnError func(req *http.Request, err error)

	// MeterProvider receives the gate's metrics: budget.gate.overhead,
	// budget.gate.calls, budget.gate.refusals and budget.gate.estimates
	// (see Observability in the package doc). No metric carries a user ID.
	// Nil records nothing and costs nothing. The gate does not take the
	// Manager's providers or logger (a Manager does not expose its
	// options): give both the same ones.
	MeterProvider metric.MeterProvider

	// TracerProvider receives a span per metered call,
	// budget.gate.RoundTrip, the parent of the spans of the Manager's
	// Reserve, Extend, Settle and Release for that call and of Base's
	// spans for the upstream call. Nil traces nothing.
	TracerProvider trace.TracerProvider

	// TraceUserIDs puts the user ID on the gate's spans, as
	// budget.user_id, as budget.Options.TraceUserIDs does on the
	// Manager's; set both alike. Off by default: user IDs may identify
	// people, and trace backends keep them. Metrics never carry user IDs.
	TraceUserIDs bool

	// Logger receives what the gate handles without returning it: calls
	// settled at their estimate because their cost was unclear (a stream
	// cut off by upstream, usage missing or unreadable, a body abandoned
	// unread) and hold renewals or releases that failed (Warn), and
	// settlements that failed (Error). Records carry the user ID, as the
	// Manager's do. Nil discards. OnError is called as before.
	Logger *slog.Logger
}

type userKey struct{}

// WithUser returns a copy of ctx that tells the gate's default
// Options.User whose budget requests made with it spend. Call it once per
// incoming request, before calling the model with that context.
func WithUser(ctx context.Context, userID string) context.Context {
	return context.WithValue(ctx, userKey{}, userID)
}

// UserFromContext returns the user ID set with WithUser, for an
// Options.User that wraps the default.
func UserFromContext(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(userKey{}).(string)
	return id, ok && id != ""
}

func userFromContext(req *http.Request) (string, error) {
	if id, ok := UserFromContext(req.Context()); ok {
		return id, nil
	}
	return "", nil
}

type transport struct {
	m           *budget.Manager
	prices      *pricing.Table
	base        http.RoundTripper
	user        func(*http.Request) (string, error)
	free        []route
	passThrough bool
	fit         bool
	minOutput   int64
	status      bool
	renewEvery  time.Duration
	idle        time.Duration
	now         func() time.Time
	maxBody     int64
	onError     func(*http.Request, error)
	tel         telemetry

	// afterFunc starts the renewal timers; tests replace it.
	afterFunc func(d time.Duration, f func()) (stop func() bool)
}

// New returns a RoundTripper that charges the calls it forwards to m's
// budgets, at prices from prices. It panics if m or prices is nil or an
// Options.Free route is malformed.
//
// It meters POST requests whose path ends in /v1/chat/completions,
// /v1/completions, /v1/responses or /v1/embeddings (OpenAI style, recorded
// with Provider "openai"), /v1/messages (Anthropic style, Provider
// "anthropic"), or /models/{model}:generateContent or
// :streamGenerateContent (Google Gemini, Provider "google"); any prefix
// before them is allowed, so OpenAI-compatible servers under /api/v1 or
// /openai/v1, and Vertex AI's long paths, work too. Options.Free routes
// are forwarded unbudgeted; everything else is refused with
// ErrUnsupportedPath unless Options.PassThrough is set.
//
// A metered call:
//
//  1. reads the body, finds the model and prices the request with
//     pricing.Price.Estimate (the rule is on pricing.Request.PromptTokens);
//     an unknown model is refused with an error wrapping
//     pricing.ErrUnknownModel, input it cannot bound (audio, files, images
//     without a price) with one wrapping pricing.ErrUnpricedInput;
//  2. for an OpenAI stream ("stream": true on chat completions or
//     completions) that does not ask for its usage, splices
//     "stream_options":{"include_usage":true} into the body, keeping
//     every other byte, and later removes the usage-only chunk that
//     answers it, so the caller sees the stream it asked for;
//  3. reserves the estimate — with Options.FitToBudget, lowering the
//     request's output limit to what the budget pays; a refusal is
//     returned as an error matching budget.ErrBudgetExceeded (or a 429,
//     see Options.RefuseWithStatus) and nothing is sent upstream;
//  4. from then until the call is settled, extends the hold every
//     Options.RenewEvery, so a long call keeps the budget it holds;
//  5. forwards the request; a transport error or a non-2xx status
//     releases the reservation — except when the caller cancelled after
//     the request was sent, which settles at the bound of step 7;
//  6. passes the response body through as upstream sends it, unbuffered,
//     reading the usage from it in bounded memory, and settles the moment
//     the final usage is read — an OpenAI stream's usage chunk, an
//     Anthropic message_delta, a responses response.completed, a Gemini
//     chunk with a finishReason, the end of a JSON body — at the reported
//     cost (the request's model at its price, rounded up to 9 places),
//     whether or not the caller then reads on or closes the body;
//  7. if the caller closes the body or cancels the request before the
//     final usage, settles at an upper bound of what the provider can
//     bill: the prompt estimate (or, for Anthropic, the input that
//     message_start reported), plus the output received so far — one
//     token per byte, framing included, since no token is shorter than a
//     byte — plus one chunk more (the largest event seen, or 256 before
//     the first), never more than the estimate; for a JSON answer, which
//     upstream sends only once generated, the output bound is its
//     Content-Length;
//  8. if upstream ends the body or fails before the final usage, the
//     usage is unreadable or reports no tokens at all, or the body is
//     left unread and unclosed for Options.IdleTimeout, settles at the
//     estimate (or the partial usage seen, if that costs more).
//
// A compressed response (the caller set Accept-Encoding itself) cannot be
// read and settles at the estimate.
//
// The returned RoundTripper is safe for concurrent use.
func New(m *budget.Manager, prices *pricing.Table, opts Options) http.RoundTripper {
	if m == nil || prices == nil {
		panic("gate: New with a nil Manager or price Table")
	}
	free, err := parseRoutes(opts.Free)
	if err != nil {
		panic(err.Error())
	}
	t := &transport{
		m: m, prices: prices, base: opts.Base, user: opts.User, free: free,
		passThrough: opts.PassThrough, fit: opts.FitToBudget, minOutput: opts.MinOutputTokens,
		status: opts.RefuseWithStatus, renewEvery: opts.RenewEvery, idle: opts.IdleTimeout,
		now: opts.Now, maxBody: opts.MaxRequestBytes, onError: opts.OnError,
		tel: newTelemetry(opts),
	}
	if t.base == nil {
		t.base = http.DefaultTransport
	}
	if t.user == nil {
		t.user = userFromContext
	}
	if t.minOutput <= 0 {
		t.minOutput = 16
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.maxBody <= 0 {
		t.maxBody = 32 << 20
	}
	t.afterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	return t
}

// Client returns an *http.Client whose transport is New(m, prices, opts):
// hand it to an SDK (option.WithHTTPClient) as it is. It has no timeout of
// its own, since streams can run for minutes; bound calls with their
// contexts.
func Client(m *budget.Manager, prices *pricing.Table, opts Options) *http.Client {
	return &http.Client{Transport: New(m, prices, opts)}
}

// call is what RoundTrip learns about one metered request.
type call struct {
	api      api
	user     string
	body     []byte
	r        pricing.Request
	price    pricing.Price
	quote    pricing.Quote
	injected bool      // the gate asked for the stream's usage itself
	top      [8]member // parseTop's members: most bodies have fewer
}

// RoundTrip implements http.RoundTripper; see New.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	a, model := classify(req.Method, req.URL.Path)
	if a == 0 {
		if t.passThrough || free(t.free, req.Method, req.URL.Path) {
			return t.base.RoundTrip(req)
		}
		closeBody(req)
		err := refuse(fmt.Sprintf("gate: %s %s is not a call the gate meters, so it was not sent; list it in gate.Options.Free if it costs nothing",
			req.Method, req.URL.Path), ErrUnsupportedPath)
		t.tel.refused(req.Context(), nil, err)
		return nil, err
	}
	var start time.Duration // the gate's work begins
	if t.tel.metered {
		start = t.tel.clock()
	}
	ctx := req.Context()
	var span trace.Span // nil unless traced
	if t.tel.tracer != nil {
		ctx, span = t.tel.start(ctx, a)
	}
	st := new(callState)
	c := &st.call
	if err := t.prepare(req, a, model, c); err != nil {
		t.tel.refused(ctx, span, err)
		return nil, err
	}
	t.tel.priced(span, c)
	before := t.now()
	res, edits, err := t.reserve(ctx, req, c)
	if err != nil {
		t.tel.refused(ctx, span, err)
		var le *budget.LimitError
		if t.status && errors.As(err, &le) {
			return refusalResponse(req, a, le, t.now()), nil
		}
		return nil, err
	}
	detached := context.WithoutCancel(ctx)
	k := t.keepAlive(&st.keep, req, detached, res, before, c.user)

	body := apply(c.body, edits)
	sent := &st.sent
	sent.r.Reset(body)
	sent.n = int64(len(body))
	out := st.forward(ctx, req)
	out.Body = sent
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	out.ContentLength = int64(len(body))
	out.TransferEncoding = nil

	mb := &st.mb
	*mb = meteredBody{
		t: t, req: req, ctx: detached, res: res, keep: k,
		price: c.price, quote: c.quote, provider: a.provider(), model: c.r.Model,
		api: a, user: c.user, span: span, since: start,
	}
	t.tel.forwarded(ctx, a)
	mb.stopWork()
	resp, err := t.base.RoundTrip(out)
	mb.startWork()
	if err != nil {
		if ctx.Err() != nil && sent.sent.Load() {
			// The caller gave up after the provider had the request: it
			// may bill the prompt and what it generated before noticing.
			st.sp = sseParser{api: a}
			mb.parser = &st.sp
			mb.mu.Lock()
			mb.settleBound()
			mb.mu.Unlock()
		} else {
			k.stop()
			mb.release(0)
		}
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		k.stop()
		mb.release(resp.StatusCode)
		return resp, nil
	}
	if resp.Body == nil {
		resp.Body = http.NoBody
	}
	mb.rc = resp.Body
	mb.contentLength = resp.ContentLength
	if isEventStream(resp.Header.Get("Content-Type")) {
		sp := &st.sp
		*sp = sseParser{api: a, filter: c.injected}
		mb.parser, mb.sse = sp, sp
		if c.injected {
			mb.filter = &st.filter
		}
	} else {
		st.jp = jsonParser{api: a}
		mb.parser = &st.jp
	}
	if resp.Header.Get("Content-Encoding") != "" {
		mb.compressed = true
	}
	mb.stopWork() // before the keep-alive may read the body
	k.watch(mb)
	resp.Body = mb
	return resp, nil
}

// prepare reads and prices a metered request.
func (t *transport) prepare(req *http.Request, a api, model string, c *call) error {
	what := func() string { return req.Method + " " + req.URL.Path } // only for errors: not built otherwise
	user, err := t.user(req)
	if err != nil || user == "" {
		closeBody(req)
		msg := "gate: no user to charge for " + what() + "; call gate.WithUser on the request's context"
		if err != nil {
			msg = "gate: no user to charge for " + what() + ": " + err.Error()
			return refuse(msg, ErrNoUser, err)
		}
		return refuse(msg, ErrNoUser)
	}
	body, err := t.readBody(req)
	if err != nil {
		return refuse(fmt.Sprintf("gate: cannot price %s: %v", what(), err), ErrBadRequest, err)
	}
	var r pricing.Request
	if a == gemini {
		r, err = pricing.ParseGeminiRequest(model, body)
		r.Stream = strings.HasSuffix(req.URL.Path, ":streamGenerateContent")
	} else {
		r, err = pricing.ParseRequest(body)
	}
	switch {
	case errors.Is(err, pricing.ErrUnpricedInput):
		return refuse(fmt.Sprintf("gate: cannot bound the cost of %s: %s; send such input through a route budgeted another way",
			what(), trimPrefix(err, "pricing: input that cannot be priced: ")), err)
	case err != nil:
		return refuse(fmt.Sprintf("gate: cannot price %s: %s", what(), trimPrefix(err, "pricing: invalid request: ")), ErrBadRequest, err)
	}
	price, err := t.prices.Lookup(r.Model)
	if err != nil {
		return refuse(fmt.Sprintf("gate: no price for model %q, so %s was not sent; add the model to the price table", r.Model, what()), err)
	}
	quote, err := price.Estimate(r)
	switch {
	case errors.Is(err, pricing.ErrUnpricedInput):
		return refuse(fmt.Sprintf("gate: cannot bound the cost of %s: the request has images and model %q has no image price; set its image_tokens in the price list",
			what(), r.Model), err)
	case errors.Is(err, pricing.ErrNoOutputLimit):
		return refuse(fmt.Sprintf("gate: cannot bound the cost of %s: model %q has no maximum output in the price list; set max_tokens in the request", what(), r.Model), err)
	case err != nil:
		return refuse(fmt.Sprintf("gate: cannot price %s: %s", what(), trimPrefix(err, "pricing: invalid request: ")), ErrBadRequest, err)
	}
	// c is fresh (see RoundTrip): set field by field, leaving c.top
	// alone, rather than copying a whole call over it.
	c.api, c.user, c.body, c.r, c.price, c.quote = a, user, body, r, price, quote
	return nil
}

// maxFitTries bounds how often a fitted reservation is retried when other
// calls took the budget between the refusal and the retry.
const maxFitTries = 4

// reserve reserves c's estimate, fitting the output limit to the budget
// when that is on, and returns the body edits the call needs. ctx is the
// request's, with the call's span.
func (t *transport) reserve(ctx context.Context, req *http.Request, c *call) (*budget.Reservation, []edit, error) {
	var top topLevel
	var edits []edit
	parsed := false
	parse := func() {
		if !parsed {
			top, parsed = parseTop(c.body, c.top[:0]), true
		}
	}
	if c.r.Stream && c.api.streamOptions() {
		parse()
		var err error
		if edits, c.injected, err = includeUsage(top); err != nil {
			return nil, nil, refuse(fmt.Sprintf("gate: cannot price %s %s: %v", req.Method, req.URL.Path, err), ErrBadRequest, err)
		}
	}
	var limitEd []edit
	for try := 0; ; try++ {
		res, err := t.m.Reserve(ctx, c.user, c.quote.Cost, budget.WithModel(c.r.Model))
		if err == nil {
			return res, append(edits, limitEd...), nil
		}
		var le *budget.LimitError
		if !errors.As(err, &le) {
			return nil, nil, refuse(fmt.Sprintf("gate: could not reserve budget for %s %s, so it was not sent: %v", req.Method, req.URL.Path, err), err)
		}
		if !t.fit || c.api == embeddings || try == maxFitTries {
			return nil, nil, limitRefusal(req, le)
		}
		n, ferr := c.price.Fit(c.r, le.Limit.Sub(le.Spent).Sub(le.Reserved))
		floor := t.minOutput
		if c.api == messages {
			floor += c.r.ThinkingTokens
		}
		if ferr != nil || n < floor {
			return nil, nil, limitRefusal(req, le)
		}
		r := c.r
		r.MaxOutputTokens = n
		q, err := c.price.Estimate(r)
		if err != nil || !q.Cost.LessThan(c.quote.Cost) {
			return nil, nil, limitRefusal(req, le)
		}
		parse()
		c.r, c.quote, limitEd = r, q, limitEdits(top, c.api, n)
	}
}

// release releases the reservation of a call whose upstream failed before
// any tokens: a transport error (status 0) or a non-2xx status.
func (b *meteredBody) release(status int) {
	if err := b.res.Release(b.ctx); err != nil {
		if b.t.tel.logging(b.ctx, slog.LevelWarn) {
			b.t.tel.log.LogAttrs(b.ctx, slog.LevelWarn, "gate: releasing the reservation of a failed call failed; its hold counts until it expires",
				b.logAttrs(slog.Any("err", err))...)
		}
		b.t.fail(b.req, err)
	}
	b.releasedAfter(status)
	b.finish(released)
}

func (t *transport) fail(req *http.Request, err error) {
	if t.onError != nil {
		t.onError(req, err)
	}
}

// bodySlack is the room readBody leaves after a body of known length, so
// that the gate's usual edit (adding stream_options, 40 bytes) is made in
// place (see apply).
const bodySlack = 64

// readBody reads and closes the request body, up to the size limit.
func (t *transport) readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, errors.New("the body is empty")
	}
	defer req.Body.Close()
	if ce := req.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return nil, fmt.Errorf("the body has Content-Encoding %q; send it uncompressed", ce)
	}
	// Sized from Content-Length, with a byte to spare for seeing EOF and
	// bodySlack for the edits, the body is read into one buffer that never
	// grows; a body without one, or longer than it said, grows as needed.
	size := 512
	if req.ContentLength > 0 && req.ContentLength <= t.maxBody {
		size = int(req.ContentLength) + 1 + bodySlack
	}
	buf := make([]byte, 0, size)
	r := io.LimitReader(req.Body, t.maxBody+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the body: %w", err)
		}
	}
	if int64(len(buf)) > t.maxBody {
		return nil, fmt.Errorf("the body is larger than %d bytes (gate.Options.MaxRequestBytes)", t.maxBody)
	}
	return buf, nil
}

// callState holds what one metered call needs for its lifetime, in one
// allocation.
type callState struct {
	out    http.Request // the request sent upstream (see forward)
	call   call
	sent   sentBody
	mb     meteredBody
	sp     sseParser
	filter sseFilter
	jp     jsonParser
	keep   keepAlive
}

// forward returns the request to send upstream in req's place, with ctx:
// a shallow copy of req in st, which shares req's URL and header (the
// RoundTripper contract lets neither the gate nor the base transport
// change them), but for a header with a Content-Length, copied without it
// (the body the gate sends has its own length). Unlike req.Clone, it
// allocates nothing in the common case.
func (st *callState) forward(ctx context.Context, req *http.Request) *http.Request {
	out := &st.out
	if ctx == req.Context() {
		*out = *req
	} else {
		out = req.WithContext(ctx)
	}
	if _, ok := req.Header["Content-Length"]; ok {
		out.Header = req.Header.Clone()
		out.Header.Del("Content-Length")
	}
	return out
}

// sentBody is the outgoing request body; it records whether the transport
// read all of it, i.e. whether upstream may have the request.
type sentBody struct {
	r    bytes.Reader
	n    int64
	read int64
	sent atomic.Bool
}

func (s *sentBody) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.read += int64(n)
	if s.read >= s.n {
		s.sent.Store(true)
	}
	return n, err
}

func (s *sentBody) Close() error { return nil }

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

func isEventStream(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "text/event-stream")
}

// trimPrefix returns err's text without a package's sentinel prefix, so
// that the gate's message says it once.
func trimPrefix(err error, prefix string) string {
	return strings.TrimPrefix(err.Error(), prefix)
}
