// Package gate puts a budget in front of LLM API calls as an
// http.RoundTripper: wrap your HTTP client's transport and every call to an
// OpenAI- or Anthropic-style API spends the user's budget, with no other
// change to your code.
//
//	rt := gate.New(m, prices, gate.Options{})
//	client := openai.NewClient(option.WithHTTPClient(&http.Client{Transport: rt}))
//	ctx = gate.WithUser(ctx, "alice")
//	resp, err := client.Chat.Completions.New(ctx, params) // reserved, forwarded, settled
//
// For each call the gate reserves the most the request can cost
// (pricing.Price.Estimate), forwards it, reads the usage the provider
// reports — from the JSON response or from the event stream, as the bytes
// pass through to the caller — and settles the actual cost. A call the
// budget refuses never reaches the provider: RoundTrip returns an error
// matching budget.ErrBudgetExceeded.
//
// Nothing escapes the budget by default: a path the gate does not
// understand, a model without a price, and a body it cannot read are all
// refused before any upstream call. When the outcome is unclear — a stream
// cut off, usage missing or unreadable — the call is settled at its
// estimate, never at zero. Only an upstream failure before any tokens (a
// transport error or a non-2xx status) releases the reservation.
package gate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/pricing"
)

var (
	// ErrUnsupportedPath: the request is not one of the calls the gate
	// meters (see New), and Options.PassThrough is off.
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

	// PassThrough forwards requests the gate does not meter (other paths,
	// other methods) unchanged instead of refusing them with
	// ErrUnsupportedPath. Those calls escape the budget entirely: turn it on
	// only when everything else the client calls is free (listing models,
	// fetching files) or budgeted elsewhere.
	PassThrough bool

	// MaxRequestBytes bounds the request body the gate reads to price a
	// call. Larger bodies are refused with ErrBadRequest. Defaults to 32
	// MiB.
	MaxRequestBytes int64

	// OnError is called when settling or releasing a reservation fails
	// where no error can be returned to the caller: at the end of the
	// response body, or when releasing after an upstream error (for
	// example because the store is down). The hold then stays until its
	// TTL, and the spend of a failed Settle is lost unless you record it,
	// so log it at least. It must be safe for concurrent use. Defaults to
	// doing nothing.
	OnError func(req *http.Request, err error)
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
	return "", fmt.Errorf("%w: call gate.WithUser on the request's context", ErrNoUser)
}

type transport struct {
	m           *budget.Manager
	prices      *pricing.Table
	base        http.RoundTripper
	user        func(*http.Request) (string, error)
	passThrough bool
	maxBody     int64
	onError     func(*http.Request, error)
}

// New returns a RoundTripper that charges the calls it forwards to m's
// budgets, at prices from prices. It panics if m or prices is nil.
//
// It meters POST requests whose path ends in /v1/chat/completions,
// /v1/completions, /v1/responses or /v1/embeddings (OpenAI style, recorded
// with Provider "openai") or /v1/messages (Anthropic style, Provider
// "anthropic"); any prefix before /v1 is allowed, so OpenAI-compatible
// servers under /api/v1 or /openai/v1 work too. Everything else is refused
// with ErrUnsupportedPath unless Options.PassThrough is set.
//
// A metered call:
//
//  1. reads the body, finds the model and prices the request with
//     pricing.Price.Estimate; an unknown model is refused with an error
//     wrapping pricing.ErrUnknownModel;
//  2. for an OpenAI stream ("stream": true on chat completions or
//     completions), sets stream_options.include_usage so the stream reports
//     its usage, rewriting the body and its Content-Length; the caller then
//     sees one extra final chunk with empty choices;
//  3. reserves the estimate; a refusal is returned as an error matching
//     budget.ErrBudgetExceeded and nothing is sent upstream;
//  4. forwards the request; a transport error or a non-2xx status releases
//     the reservation;
//  5. passes the response body through untouched, byte for byte, as
//     upstream sends it, while reading the usage from it — from the final
//     SSE events of a stream, or from the top-level "usage" of a JSON body,
//     in bounded memory;
//  6. settles once, when the body reaches its end or is closed, at the
//     reported cost (the request's model at its price, rounded up to 9
//     places). If the body ends or is closed before the usage is known, or
//     the usage is unreadable or reports no tokens at all, it settles at
//     the estimate.
//
// Read the response body to its end (every SDK does) to be charged the
// actual cost. A compressed response (the caller set Accept-Encoding
// itself) cannot be read and settles at the estimate.
//
// The returned RoundTripper is safe for concurrent use.
func New(m *budget.Manager, prices *pricing.Table, opts Options) http.RoundTripper {
	if m == nil || prices == nil {
		panic("gate: New with a nil Manager or price Table")
	}
	t := &transport{
		m: m, prices: prices, base: opts.Base, user: opts.User,
		passThrough: opts.PassThrough, maxBody: opts.MaxRequestBytes, onError: opts.OnError,
	}
	if t.base == nil {
		t.base = http.DefaultTransport
	}
	if t.user == nil {
		t.user = userFromContext
	}
	if t.maxBody <= 0 {
		t.maxBody = 32 << 20
	}
	return t
}

// RoundTrip implements http.RoundTripper; see New.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	api := classify(req.Method, req.URL.Path)
	if api == 0 {
		if t.passThrough {
			return t.base.RoundTrip(req)
		}
		closeBody(req)
		return nil, fmt.Errorf("%w: %s %s (set gate.Options.PassThrough to forward it unbudgeted)", ErrUnsupportedPath, req.Method, req.URL.Path)
	}
	user, err := t.user(req)
	if err == nil && user == "" {
		err = ErrNoUser
	}
	if err != nil {
		closeBody(req)
		return nil, fmt.Errorf("gate: %s %s: %w", req.Method, req.URL.Path, err)
	}
	body, err := t.readBody(req)
	if err != nil {
		return nil, fmt.Errorf("gate: %s %s: %w", req.Method, req.URL.Path, err)
	}
	r, err := pricing.ParseRequest(body)
	if err != nil {
		return nil, fmt.Errorf("gate: %s %s: %w: %w", req.Method, req.URL.Path, ErrBadRequest, err)
	}
	price, err := t.prices.Lookup(r.Model)
	if err != nil {
		return nil, fmt.Errorf("gate: %s %s: %w", req.Method, req.URL.Path, err)
	}
	quote, err := price.Estimate(r)
	if err != nil {
		return nil, fmt.Errorf("gate: %s %s: model %q: %w", req.Method, req.URL.Path, r.Model, err)
	}
	if r.Stream && api.streamOptions() {
		if body, err = includeUsage(body); err != nil {
			return nil, fmt.Errorf("gate: %s %s: %w: %w", req.Method, req.URL.Path, ErrBadRequest, err)
		}
	}

	ctx := req.Context()
	res, err := t.m.Reserve(ctx, user, quote.Cost)
	if err != nil {
		return nil, fmt.Errorf("gate: %s %s: %w", req.Method, req.URL.Path, err)
	}
	// Settling and releasing must happen even if the caller's context is
	// cancelled by then: the call was made.
	closeCtx := context.WithoutCancel(ctx)

	out := req.Clone(ctx)
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	out.ContentLength = int64(len(body))
	out.TransferEncoding = nil
	out.Header.Del("Content-Length")

	resp, err := t.base.RoundTrip(out)
	if err != nil {
		t.release(closeCtx, req, res)
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		t.release(closeCtx, req, res)
		return resp, nil
	}
	if resp.Body == nil {
		resp.Body = http.NoBody
	}
	mb := &meteredBody{
		rc: resp.Body, t: t, req: req, ctx: closeCtx, res: res, price: price, quote: quote,
		provider: api.provider(), model: r.Model,
	}
	if isEventStream(resp.Header.Get("Content-Type")) {
		mb.parser = &sseParser{api: api}
	} else {
		mb.parser = &jsonParser{api: api}
	}
	resp.Body = mb
	return resp, nil
}

func (t *transport) release(ctx context.Context, req *http.Request, res *budget.Reservation) {
	if err := res.Release(ctx); err != nil {
		t.fail(req, err)
	}
}

func (t *transport) fail(req *http.Request, err error) {
	if t.onError != nil {
		t.onError(req, err)
	}
}

// readBody reads and closes the request body, up to the size limit.
func (t *transport) readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, fmt.Errorf("%w: empty body", ErrBadRequest)
	}
	defer req.Body.Close()
	if ce := req.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return nil, fmt.Errorf("%w: the body has Content-Encoding %q", ErrBadRequest, ce)
	}
	var buf bytes.Buffer
	if req.ContentLength > 0 && req.ContentLength <= t.maxBody {
		buf.Grow(int(req.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(req.Body, t.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("gate: reading the request body: %w", err)
	}
	if n > t.maxBody {
		return nil, fmt.Errorf("%w: the body is larger than %d bytes", ErrBadRequest, t.maxBody)
	}
	return buf.Bytes(), nil
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

func isEventStream(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "text/event-stream")
}
