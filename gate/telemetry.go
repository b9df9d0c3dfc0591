package gate

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/pricing"
)

// The gate's metrics, traces and logs, documented in the package doc's
// Observability section. Everything here is built once, in New: with no
// providers and no logger, a call pays a few boolean tests and nothing
// else.

const instrumentationName = "github.com/llmbudget/budget/gate"

// spanRoundTrip is the name of a metered call's span.
const spanRoundTrip = "budget.gate.RoundTrip"

// Span attribute keys. The user ID uses the Manager's key.
const (
	attrProvider = attribute.Key("budget.provider")
	attrModel    = attribute.Key("budget.model")
	attrRoute    = attribute.Key("budget.gate.route")
	attrStreamed = attribute.Key("budget.gate.streamed")
	attrOutcome  = attribute.Key("budget.gate.outcome")
	attrReason   = attribute.Key("budget.gate.reason")
	attrUserID   = attribute.Key("budget.user_id")
	attrStatus   = attribute.Key("http.response.status_code")
)

// nAPIs bounds the api values, for arrays indexed by api.
const nAPIs = int(gemini) + 1

// route names an api in metrics, spans and logs.
func (a api) route() string {
	switch a {
	case chatCompletions:
		return "chat_completions"
	case completions:
		return "completions"
	case responses:
		return "responses"
	case embeddings:
		return "embeddings"
	case messages:
		return "messages"
	case gemini:
		return "generate_content"
	}
	return ""
}

// Providers, as indexes: see api.provider.
const (
	providerOpenAI = iota
	providerAnthropic
	providerGoogle
	nProviders
)

func (a api) providerIndex() int {
	switch a {
	case messages:
		return providerAnthropic
	case gemini:
		return providerGoogle
	}
	return providerOpenAI
}

// Reasons a call is refused before any upstream call, in
// budget.gate.refusals.
const (
	refusedLimit       = iota // the budget cannot pay the estimate
	refusedUnsupported        // ErrUnsupportedPath
	refusedNoUser             // ErrNoUser
	refusedBadRequest         // ErrBadRequest
	refusedNoPrice            // pricing.ErrUnknownModel, pricing.ErrNoOutputLimit
	refusedUnpriced           // pricing.ErrUnpricedInput
	refusedStoreError         // Reserve failed otherwise
	nRefusals
)

var refusalNames = [nRefusals]string{
	refusedLimit:       "limit",
	refusedUnsupported: "unsupported_path",
	refusedNoUser:      "no_user",
	refusedBadRequest:  "bad_request",
	refusedNoPrice:     "no_price",
	refusedUnpriced:    "unpriced_input",
	refusedStoreError:  "store_error",
}

// refusalReason classifies an error RoundTrip returns instead of calling
// upstream.
func refusalReason(err error) int {
	switch {
	case errors.Is(err, budget.ErrBudgetExceeded):
		return refusedLimit
	case errors.Is(err, ErrUnsupportedPath):
		return refusedUnsupported
	case errors.Is(err, ErrNoUser):
		return refusedNoUser
	case errors.Is(err, pricing.ErrUnknownModel), errors.Is(err, pricing.ErrNoOutputLimit):
		return refusedNoPrice
	case errors.Is(err, pricing.ErrUnpricedInput):
		return refusedUnpriced
	case errors.Is(err, ErrBadRequest):
		return refusedBadRequest
	}
	return refusedStoreError
}

// outcome is how a forwarded call ended.
type outcome uint8

const (
	settledUsage     outcome = iota // at the provider's final usage
	settledStopped                  // the caller stopped first: at an upper bound
	settledCut                      // at the estimate: the body ended or failed before the final usage
	settledNoUsage                  // at the estimate: the response is complete, its usage is not usable
	settledAbandoned                // at the estimate: the body was left unread for IdleTimeout
	released                        // upstream failed before any tokens
)

// The reasons of the estimate outcomes, in budget.gate.estimates.
const nEstimates = int(settledAbandoned-settledCut) + 1

func (o outcome) estimate() bool { return o >= settledCut && o <= settledAbandoned }

// name and reason are the outcome as span attributes.
func (o outcome) name() string {
	switch o {
	case settledUsage:
		return "usage"
	case settledStopped:
		return "stopped"
	case released:
		return "released"
	}
	return "estimate"
}

func (o outcome) reason() string {
	switch o {
	case settledCut:
		return "cut"
	case settledNoUsage:
		return "no_usage"
	case settledAbandoned:
		return "abandoned"
	}
	return ""
}

// overheadBuckets are budget.gate.overhead's bucket bounds, in seconds:
// 10µs to 10s, the Manager's latency buckets with two below them, since
// the gate's own work on a fast store takes microseconds.
var overheadBuckets = []float64{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// telemetry is a gate's instruments, tracer and logger.
type telemetry struct {
	metered bool         // Options.MeterProvider is set
	tracer  trace.Tracer // nil unless Options.TracerProvider is set
	userIDs bool
	log     *slog.Logger // nil unless Options.Logger is set
	epoch   time.Time    // durations are monotonic readings since epoch

	overhead                   metric.Float64Histogram
	calls, refusals, estimates metric.Int64Counter

	// Attribute sets are built once: recording with a prepared option
	// allocates nothing.
	routeRecord [nAPIs][]metric.RecordOption
	routeAdd    [nAPIs][]metric.AddOption
	refusalAdd  [nRefusals][]metric.AddOption
	estimateAdd [nProviders][nEstimates][]metric.AddOption
}

func newTelemetry(opts Options) telemetry {
	t := telemetry{log: opts.Logger, userIDs: opts.TraceUserIDs, metered: opts.MeterProvider != nil, epoch: time.Now()}
	if opts.TracerProvider != nil {
		t.tracer = opts.TracerProvider.Tracer(instrumentationName)
	}
	if !t.metered {
		return t
	}
	meter := opts.MeterProvider.Meter(instrumentationName)
	// An instrument that fails to register is a no-op the SDK already
	// reported to the OpenTelemetry error handler: budgets work without it.
	// The counters are synchronous, unlike the Manager's observed ones:
	// a gate registers no callback, so gates made per request, or several
	// on one provider, neither leak nor collide; they add up.
	t.overhead, _ = meter.Float64Histogram("budget.gate.overhead", metric.WithUnit("s"),
		metric.WithDescription("Time the gate itself adds to a forwarded call (pricing, Reserve, reading usage, Settle), excluding the upstream's time, by provider and route."),
		metric.WithExplicitBucketBoundaries(overheadBuckets...))
	t.calls, _ = meter.Int64Counter("budget.gate.calls", metric.WithUnit("{call}"),
		metric.WithDescription("Metered calls reserved and forwarded upstream, by provider and route."))
	t.refusals, _ = meter.Int64Counter("budget.gate.refusals", metric.WithUnit("{call}"),
		metric.WithDescription("Calls refused before any upstream call, by reason (limit, unsupported_path, no_user, bad_request, no_price, unpriced_input, store_error)."))
	t.estimates, _ = meter.Int64Counter("budget.gate.estimates", metric.WithUnit("{call}"),
		metric.WithDescription("Calls settled at their estimate because their cost was unclear, by provider and reason (cut, no_usage, abandoned)."))
	if t.overhead == nil {
		t.overhead = metricnoop.Float64Histogram{}
	}
	for _, c := range []*metric.Int64Counter{&t.calls, &t.refusals, &t.estimates} {
		if *c == nil {
			*c = metricnoop.Int64Counter{}
		}
	}

	providers := [nProviders]string{providerOpenAI: "openai", providerAnthropic: "anthropic", providerGoogle: "google"}
	for a := chatCompletions; int(a) < nAPIs; a++ {
		set := metric.WithAttributeSet(attribute.NewSet(
			attribute.String("provider", a.provider()), attribute.String("route", a.route())))
		t.routeRecord[a] = []metric.RecordOption{set}
		t.routeAdd[a] = []metric.AddOption{set}
	}
	for i, name := range refusalNames {
		t.refusalAdd[i] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", name)))}
	}
	for p, provider := range providers {
		for i := range nEstimates {
			t.estimateAdd[p][i] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(
				attribute.String("provider", provider), attribute.String("reason", (settledCut+outcome(i)).reason())))}
		}
	}
	return t
}

// clock returns a monotonic reading; only called when metered.
func (t *telemetry) clock() time.Duration { return time.Since(t.epoch) }

// logging reports whether the logger takes records at level.
func (t *telemetry) logging(ctx context.Context, level slog.Level) bool {
	return t.log != nil && t.log.Enabled(ctx, level)
}

// start starts the span of a metered call; only called when traced.
func (t *telemetry) start(ctx context.Context, a api) (context.Context, trace.Span) {
	return t.tracer.Start(ctx, spanRoundTrip, trace.WithAttributes(
		attrProvider.String(a.provider()), attrRoute.String(a.route())))
}

// priced adds what prepare learnt to a call's span.
func (t *telemetry) priced(span trace.Span, c *call) {
	if span == nil {
		return
	}
	if t.userIDs {
		span.SetAttributes(attrModel.String(c.r.Model), attrStreamed.Bool(c.r.Stream), attrUserID.String(c.user))
		return
	}
	span.SetAttributes(attrModel.String(c.r.Model), attrStreamed.Bool(c.r.Stream))
}

// forwarded counts a call reserved and about to be sent upstream.
func (t *telemetry) forwarded(ctx context.Context, a api) {
	if t.metered {
		t.calls.Add(ctx, 1, t.routeAdd[a]...)
	}
}

// refused reports a call refused with err before any upstream call, and
// ends its span (nil when not traced). The span's status names the reason,
// never err's text, which may carry the user ID or the request's URL.
func (t *telemetry) refused(ctx context.Context, span trace.Span, err error) {
	if !t.metered && span == nil {
		return
	}
	reason := refusalReason(err)
	if t.metered {
		t.refusals.Add(ctx, 1, t.refusalAdd[reason]...)
	}
	if span != nil {
		span.SetAttributes(attrOutcome.String("refused"), attrReason.String(refusalNames[reason]))
		if reason != refusedLimit { // a refusal by the budget is a result
			span.SetStatus(codes.Error, "refused: "+refusalNames[reason])
		}
		span.End()
	}
}

// Per-call accounting, on the call's meteredBody: the gate's own time is
// summed over the stretches of work between upstream's, as measured by
// startWork and stopWork, and reported once by finish.

// startWork begins a stretch of the gate's own work; b.mu is held, or the
// body is not yet shared.
func (b *meteredBody) startWork() {
	if b.t.tel.metered {
		b.since = b.t.tel.clock()
	}
}

// stopWork ends a stretch of the gate's own work; as startWork.
func (b *meteredBody) stopWork() {
	if b.t.tel.metered {
		b.spent += b.t.tel.clock() - b.since
	}
}

// finish reports the end of a forwarded call, settled or released, during
// a stretch of work: its overhead, its outcome, and the end of its span.
func (b *meteredBody) finish(o outcome) {
	tel := &b.t.tel
	if tel.metered {
		tel.overhead.Record(b.ctx, (b.spent + tel.clock() - b.since).Seconds(), tel.routeRecord[b.api]...)
		if o.estimate() {
			tel.estimates.Add(b.ctx, 1, tel.estimateAdd[b.api.providerIndex()][o-settledCut]...)
		}
	}
	if o.estimate() && tel.logging(b.ctx, slog.LevelWarn) {
		var msg string
		switch o {
		case settledCut:
			msg = "gate: the response ended before its final usage (cut off by upstream); settled at the estimate"
		case settledNoUsage:
			msg = "gate: the response carried no usable usage (missing, unreadable, compressed or all zero); settled at the estimate"
		default:
			msg = "gate: the response body was left unread and unclosed for IdleTimeout; settled at the estimate"
		}
		tel.log.LogAttrs(b.ctx, slog.LevelWarn, msg, b.logAttrs(slog.Int64("received_bytes", b.received))...)
	}
	if b.span != nil {
		if r := o.reason(); r != "" {
			b.span.SetAttributes(attrOutcome.String(o.name()), attrReason.String(r))
		} else {
			b.span.SetAttributes(attrOutcome.String(o.name()))
		}
		b.span.End()
	}
}

// logAttrs are the attributes of a log record about b's call, then more.
func (b *meteredBody) logAttrs(more ...slog.Attr) []slog.Attr {
	return append([]slog.Attr{
		slog.String("provider", b.provider), slog.String("route", b.api.route()),
		slog.String("model", b.model), slog.String("user_id", b.user),
	}, more...)
}

// releasedAfter records in the call's span why it was released: the
// upstream's status, or a transport error (whose text is left out: it
// may hold the request's URL and its key).
func (b *meteredBody) releasedAfter(status int) {
	if b.span == nil {
		return
	}
	if status == 0 {
		b.span.SetStatus(codes.Error, "upstream transport error")
		return
	}
	b.span.SetAttributes(attrStatus.Int(status))
}
