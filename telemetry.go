package budget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
)

// The Manager's metrics, traces and logs, documented in the package doc's
// Observability section, and Ping.

const instrumentationName = "github.com/llmbudget/budget"

// maxModelSeries bounds the provider×model pairs budget.spend is labelled
// with.
const maxModelSeries = 1000

// Reasons a Reserve is counted under, in budget.reserves.
const (
	reserveAllowed = iota
	reserveLimit
	reserveInvalid
	reserveStoreError
	reserveOutcomes
)

// telemetry is a Manager's instruments, tracer and logger.
type telemetry struct {
	log     *slog.Logger
	tracer  trace.Tracer // nil unless Options.TracerProvider is set
	userIDs bool
	metered bool      // Options.MeterProvider is set
	epoch   time.Time // latencies are monotonic readings since epoch

	reserveDur, settleDur metric.Float64Histogram

	// The counters' totals, read by observe. The padding keeps the fields
	// every call reads off the cache lines every Reserve writes.
	_        [64]byte
	reserves [reserveOutcomes]atomic.Int64
	alerts   [Red + 1]atomic.Int64
	_        [64]byte
	models   modelSets

	spendC, reservesC, alertsC metric.Int64Observable
	reserveSets                [reserveOutcomes][]metric.ObserveOption
	levelSets                  [Red + 1][]metric.ObserveOption
}

// Latency buckets, in seconds: 50µs to 10s.
var durationBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

func newTelemetry(opts Options) *telemetry {
	t := &telemetry{log: opts.Logger, userIDs: opts.TraceUserIDs, metered: opts.MeterProvider != nil, epoch: time.Now()}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if opts.TracerProvider != nil {
		t.tracer = opts.TracerProvider.Tracer(instrumentationName)
	}
	mp := opts.MeterProvider
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	meter := mp.Meter(instrumentationName)
	// An instrument that fails to register is a no-op the SDK already
	// reported to the OpenTelemetry error handler: budgets work without it.
	t.spendC, _ = meter.Int64ObservableCounter("budget.spend", metric.WithUnit("{nanoUSD}"),
		metric.WithDescription("Spend recorded by Settle and Record, in nano-US-dollars (1e-9 USD), by provider and model."))
	t.reservesC, _ = meter.Int64ObservableCounter("budget.reserves", metric.WithUnit("{reserve}"),
		metric.WithDescription("Reserve calls, by outcome (allowed, refused) and reason of refusal (limit, invalid, store_error)."))
	t.alertsC, _ = meter.Int64ObservableCounter("budget.alerts", metric.WithUnit("{alert}"),
		metric.WithDescription("Alert levels reached, once per user, period and level."))
	t.reserveDur, _ = meter.Float64Histogram("budget.reserve.duration", metric.WithUnit("s"),
		metric.WithDescription("Latency of Reserve."), metric.WithExplicitBucketBoundaries(durationBuckets...))
	t.settleDur, _ = meter.Float64Histogram("budget.settle.duration", metric.WithUnit("s"),
		metric.WithDescription("Latency of Settle."), metric.WithExplicitBucketBoundaries(durationBuckets...))
	if t.reserveDur == nil || t.settleDur == nil { // a provider that returned no instrument
		t.reserveDur, t.settleDur = metricnoop.Float64Histogram{}, metricnoop.Float64Histogram{}
	}

	// Attribute sets are built once: observing with a prepared option
	// allocates nothing.
	outcome := [reserveOutcomes][]attribute.KeyValue{
		reserveAllowed:    {attribute.String("outcome", "allowed")},
		reserveLimit:      {attribute.String("outcome", "refused"), attribute.String("reason", "limit")},
		reserveInvalid:    {attribute.String("outcome", "refused"), attribute.String("reason", "invalid")},
		reserveStoreError: {attribute.String("outcome", "refused"), attribute.String("reason", "store_error")},
	}
	for i, kv := range outcome {
		t.reserveSets[i] = observeOpts(kv...)
	}
	for l := Yellow; l <= Red; l++ {
		t.levelSets[l] = observeOpts(attribute.String("level", l.String()))
	}
	t.models.other.obs = observeOpts(attribute.String("provider", "_other"), attribute.String("model", "_other"))
	if t.metered && t.spendC != nil && t.reservesC != nil && t.alertsC != nil {
		// Never unregistered: a Manager has no Close (see Observability
		// in the package doc).
		_, _ = meter.RegisterCallback(t.observe, t.spendC, t.reservesC, t.alertsC)
	}
	return t
}

func observeOpts(kv ...attribute.KeyValue) []metric.ObserveOption {
	return []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
}

// observe reports the counters' totals to the SDK as it collects.
func (t *telemetry) observe(_ context.Context, o metric.Observer) error {
	for i := range t.reserves {
		o.ObserveInt64(t.reservesC, t.reserves[i].Load(), t.reserveSets[i]...)
	}
	for l := Yellow; l <= Red; l++ {
		o.ObserveInt64(t.alertsC, t.alerts[l].Load(), t.levelSets[l]...)
	}
	t.models.each(func(e *modelSpend) { o.ObserveInt64(t.spendC, e.n.Load(), e.obs...) })
	return nil
}

// clock returns the start of a measured call: zero when nothing is
// measured. Latencies are durations on the monotonic clock (one reading
// each end), never read from Options.Now.
func (t *telemetry) clock() time.Duration {
	if !t.metered {
		return 0
	}
	return time.Since(t.epoch)
}

// seconds returns the seconds since start, a clock reading.
func (t *telemetry) seconds(start time.Duration) float64 {
	return (time.Since(t.epoch) - start).Seconds()
}

// reserved records a Reserve that started at start and returned *errp.
func (t *telemetry) reserved(ctx context.Context, start time.Duration, errp *error) {
	if !t.metered {
		return
	}
	t.reserveDur.Record(ctx, t.seconds(start))
	i := reserveAllowed
	switch err := *errp; {
	case err == nil:
	case errors.Is(err, ErrBudgetExceeded):
		i = reserveLimit
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrInvalidAmount):
		i = reserveInvalid
	default:
		i = reserveStoreError
	}
	t.reserves[i].Add(1)
}

// settled records a Settle that started at start.
func (t *telemetry) settled(ctx context.Context, start time.Duration) {
	if t.metered {
		t.settleDur.Record(ctx, t.seconds(start))
	}
}

// spent counts committed usage.
func (t *telemetry) spent(row *UsageRow) {
	if t.metered && row.Cost > 0 {
		t.models.get(row.Provider, row.Model).n.Add(int64(row.Cost))
	}
}

// alerted counts levels reached.
func (t *telemetry) alerted(levels LevelSet) {
	if !t.metered {
		return
	}
	for l := Yellow; l <= Red; l++ {
		if levels.Has(l) {
			t.alerts[l].Add(1)
		}
	}
}

// modelSets keeps the spend of each provider×model pair. Reads take no
// lock: the maps are copied on the rare write of a new pair. The map is by
// provider, then model, as a map keyed by two strings hashes slower.
type modelSets struct {
	m     atomic.Pointer[map[string]map[string]*modelSpend]
	n     int        // pairs in m; guarded by mu
	mu    sync.Mutex // serializes writers
	other modelSpend // pairs beyond maxModelSeries
}

// modelSpend is the spend of one pair, in nano-dollars, and its attributes.
type modelSpend struct {
	n   atomic.Int64
	obs []metric.ObserveOption
}

func (s *modelSets) get(provider, model string) *modelSpend {
	if p := s.m.Load(); p != nil {
		if e, ok := (*p)[provider][model]; ok {
			return e
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var old map[string]map[string]*modelSpend
	if p := s.m.Load(); p != nil {
		old = *p
	}
	if e, ok := old[provider][model]; ok {
		return e
	}
	if s.n >= maxModelSeries {
		return &s.other
	}
	next := make(map[string]map[string]*modelSpend, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	models := make(map[string]*modelSpend, len(old[provider])+1)
	for k, v := range old[provider] {
		models[k] = v
	}
	e := &modelSpend{obs: observeOpts(attribute.String("provider", provider), attribute.String("model", model))}
	models[model] = e
	next[provider] = models
	s.n++
	s.m.Store(&next)
	return e
}

// each calls fn with the spend of every pair.
func (s *modelSets) each(fn func(*modelSpend)) {
	if p := s.m.Load(); p != nil {
		for _, models := range *p {
			for _, e := range models {
				fn(e)
			}
		}
	}
	if s.other.n.Load() > 0 {
		fn(&s.other)
	}
}

// Span names of the Manager's calls, and of the store calls inside them.
const (
	spanReserve        = "budget.Reserve"
	spanSettle         = "budget.Settle"
	spanExtend         = "budget.Extend"
	spanRelease        = "budget.Release"
	spanRecord         = "budget.Record"
	spanStatus         = "budget.Status"
	spanStatusFor      = "budget.StatusFor"
	spanSettings       = "budget.Settings"
	spanLookup         = "budget.Lookup"
	spanUpdateSettings = "budget.UpdateSettings"
	spanReset          = "budget.Reset"
	spanDefaults       = "budget.Defaults"
	spanUpdateDefaults = "budget.UpdateDefaults"
	spanBulkUpdate     = "budget.BulkUpdate"
	spanApplyTemplate  = "budget.ApplyTemplate"
	spanAccess         = "budget.Access"
	spanSetAccess      = "budget.SetAccess"
	spanHistory        = "budget.History"
	spanBreakdown      = "budget.Breakdown"
	spanListUsers      = "budget.ListUsers"
	spanAuditLog       = "budget.AuditLog"
	spanTemplates      = "budget.Templates"
	spanTemplate       = "budget.Template"
	spanSaveTemplate   = "budget.SaveTemplate"
	spanDeleteTemplate = "budget.DeleteTemplate"
)

// Span attribute keys.
const (
	attrUserID  = attribute.Key("budget.user_id")
	attrActorID = attribute.Key("budget.actor_id")
	attrAllowed = attribute.Key("budget.allowed")
)

// start starts a span for a Manager call about userID ("" for none), as
// the caller of actor (nil for none). It returns a nil span when nothing
// is traced; end takes that.
func (t *telemetry) start(ctx context.Context, name, userID string, actor *Principal) (context.Context, trace.Span) {
	if t.tracer == nil {
		return ctx, nil
	}
	if !t.userIDs || (userID == "" && actor == nil) {
		return t.tracer.Start(ctx, name)
	}
	attrs := make([]attribute.KeyValue, 0, 2)
	if userID != "" {
		attrs = append(attrs, attrUserID.String(userID))
	}
	if actor != nil {
		attrs = append(attrs, attrActorID.String(actor.UserID))
	}
	return t.tracer.Start(ctx, name, trace.WithAttributes(attrs...))
}

// end ends span, marking it failed when *errp is an error, but for the
// refusal of a Reserve, which is a result.
func (t *telemetry) end(span trace.Span, errp *error) {
	if span == nil {
		return
	}
	switch err := *errp; {
	case err == nil:
	case errors.Is(err, ErrBudgetExceeded):
		span.SetAttributes(attrAllowed.Bool(false))
	default:
		err = t.spanError(err)
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// spanErrors are the errors a span names when user IDs are not traced.
var spanErrors = [...]error{
	ErrBudgetExceeded, ErrReservationClosed, ErrHoldExpired, ErrDuplicate, ErrInvalidAmount, ErrInvalid,
	ErrForbidden, ErrNotFound, ErrConflict, ErrClosed, context.Canceled, context.DeadlineExceeded,
}

// spanError returns what a span may record of err. Error texts name users
// ("no settings for user \"alice\""), so unless the host opted in to user
// IDs in traces, a span gets only the sentinel err matches, or a generic
// text for a store's own failure.
func (t *telemetry) spanError(err error) error {
	if t.userIDs {
		return err
	}
	for _, s := range spanErrors {
		if errors.Is(err, s) {
			return s
		}
	}
	return errStoreFailure
}

var errStoreFailure = errors.New("budget: store failure (the error text is logged, not traced, as it may name a user)")

// retrying logs a conflict the Manager retries: at Warn for a late request
// (a *LateError), else at Debug.
func (t *telemetry) retrying(ctx context.Context, op, userID string, err error, attempt int) {
	var le *LateError
	if errors.As(err, &le) {
		t.log.WarnContext(ctx, "budget: late request retried at the start of the current period (a clock behind another process's, or a call delayed past the period's end)",
			"op", op, "user_id", userID, "period_start", le.Start, "attempt", attempt+1)
		return
	}
	if t.log.Enabled(ctx, slog.LevelDebug) {
		t.log.DebugContext(ctx, "budget: concurrent change; retrying", "op", op, "user_id", userID, "attempt", attempt+1, "err", err)
	}
}

// Ping reports whether the store answers: nil when a cheap read of it (the
// stored defaults for new users) succeeds, else that read's error, which
// matches ErrClosed once the store is closed. A store that opened has
// migrated its schema, so a nil Ping means ready. Call it from a readiness
// probe; it reads no user's data, writes nothing and makes no span.
func (m *Manager) Ping(ctx context.Context) error {
	_, err := m.raw.Defaults(ctx)
	if err == nil || errors.Is(err, ErrNotFound) {
		return nil
	}
	return fmt.Errorf("budget: ping: %w", err)
}
