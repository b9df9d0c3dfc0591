package budget

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracedStore is the Store a traced Manager calls: each call is a span,
// the child of the Manager call's span, named "budget.store." and the
// method. An optional interface the Manager ever checks a store for must
// be forwarded here too, or tracing would hide it.
type tracedStore struct {
	s Store
	t *telemetry
}

// start starts a store call's span about userID ("" for none).
func (ts tracedStore) start(ctx context.Context, name, userID string) (context.Context, trace.Span) {
	if ts.t.userIDs && userID != "" {
		return ts.t.tracer.Start(ctx, name, trace.WithAttributes(attrUserID.String(userID)))
	}
	return ts.t.tracer.Start(ctx, name)
}

// end ends a store call's span. ErrNotFound and ErrConflict are answers the
// Manager acts on (it creates settings, it reloads and retries), not
// failures: they are recorded as events, with the status left unset.
func (ts tracedStore) end(span trace.Span, errp *error) {
	switch err := *errp; {
	case err == nil:
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict):
		span.RecordError(ts.t.spanError(err))
	default:
		err = ts.t.spanError(err)
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

func (ts tracedStore) Settings(ctx context.Context, userID string) (_ Settings, err error) {
	ctx, span := ts.start(ctx, "budget.store.Settings", userID)
	defer ts.end(span, &err)
	return ts.s.Settings(ctx, userID)
}

func (ts tracedStore) CreateSettings(ctx context.Context, req CreateRequest) (_ Settings, _ bool, err error) {
	ctx, span := ts.start(ctx, "budget.store.CreateSettings", req.Settings.UserID)
	defer ts.end(span, &err)
	return ts.s.CreateSettings(ctx, req)
}

func (ts tracedStore) UpdateSettings(ctx context.Context, req UpdateRequest) (_ Totals, err error) {
	ctx, span := ts.start(ctx, "budget.store.UpdateSettings", req.Settings.UserID)
	defer ts.end(span, &err)
	return ts.s.UpdateSettings(ctx, req)
}

func (ts tracedStore) Reserve(ctx context.Context, req ReserveRequest) (_ Totals, _ bool, err error) {
	ctx, span := ts.start(ctx, "budget.store.Reserve", req.UserID)
	defer ts.end(span, &err)
	return ts.s.Reserve(ctx, req)
}

func (ts tracedStore) Settle(ctx context.Context, req SettleRequest) (_ Totals, err error) {
	ctx, span := ts.start(ctx, "budget.store.Settle", req.Usage.UserID)
	defer ts.end(span, &err)
	return ts.s.Settle(ctx, req)
}

func (ts tracedStore) Release(ctx context.Context, req ReleaseRequest) (_ Totals, err error) {
	ctx, span := ts.start(ctx, "budget.store.Release", req.UserID)
	defer ts.end(span, &err)
	return ts.s.Release(ctx, req)
}

func (ts tracedStore) Extend(ctx context.Context, req ExtendRequest) (_ Totals, err error) {
	ctx, span := ts.start(ctx, "budget.store.Extend", req.UserID)
	defer ts.end(span, &err)
	return ts.s.Extend(ctx, req)
}

func (ts tracedStore) Record(ctx context.Context, req RecordRequest) (_ Totals, err error) {
	ctx, span := ts.start(ctx, "budget.store.Record", req.Usage.UserID)
	defer ts.end(span, &err)
	return ts.s.Record(ctx, req)
}

func (ts tracedStore) Totals(ctx context.Context, req TotalsRequest) (_ Totals, err error) {
	ctx, span := ts.start(ctx, "budget.store.Totals", req.UserID)
	defer ts.end(span, &err)
	return ts.s.Totals(ctx, req)
}

func (ts tracedStore) Reset(ctx context.Context, req ResetRequest) (_ AuditEntry, _ Totals, err error) {
	ctx, span := ts.start(ctx, "budget.store.Reset", req.Settings.UserID)
	defer ts.end(span, &err)
	return ts.s.Reset(ctx, req)
}

func (ts tracedStore) Defaults(ctx context.Context) (_ Defaults, err error) {
	ctx, span := ts.start(ctx, "budget.store.Defaults", "")
	defer ts.end(span, &err)
	return ts.s.Defaults(ctx)
}

func (ts tracedStore) UpdateDefaults(ctx context.Context, req DefaultsRequest) (err error) {
	ctx, span := ts.start(ctx, "budget.store.UpdateDefaults", "")
	defer ts.end(span, &err)
	return ts.s.UpdateDefaults(ctx, req)
}

func (ts tracedStore) Templates(ctx context.Context) (_ []Template, err error) {
	ctx, span := ts.start(ctx, "budget.store.Templates", "")
	defer ts.end(span, &err)
	return ts.s.Templates(ctx)
}

func (ts tracedStore) SaveTemplate(ctx context.Context, req TemplateRequest) (err error) {
	ctx, span := ts.start(ctx, "budget.store.SaveTemplate", "")
	defer ts.end(span, &err)
	return ts.s.SaveTemplate(ctx, req)
}

func (ts tracedStore) DeleteTemplate(ctx context.Context, req TemplateRequest) (err error) {
	ctx, span := ts.start(ctx, "budget.store.DeleteTemplate", "")
	defer ts.end(span, &err)
	return ts.s.DeleteTemplate(ctx, req)
}

func (ts tracedStore) History(ctx context.Context, q HistoryQuery) (_ HistoryPage, err error) {
	ctx, span := ts.start(ctx, "budget.store.History", q.UserID)
	defer ts.end(span, &err)
	return ts.s.History(ctx, q)
}

func (ts tracedStore) Breakdown(ctx context.Context, q BreakdownQuery) (_ []UsageGroup, err error) {
	ctx, span := ts.start(ctx, "budget.store.Breakdown", q.UserID)
	defer ts.end(span, &err)
	return ts.s.Breakdown(ctx, q)
}

func (ts tracedStore) Accounts(ctx context.Context, q AccountsQuery) (_ []Account, err error) {
	ctx, span := ts.start(ctx, "budget.store.Accounts", "")
	defer ts.end(span, &err)
	return ts.s.Accounts(ctx, q)
}

func (ts tracedStore) Audit(ctx context.Context, q AuditQuery) (_ []AuditEntry, err error) {
	ctx, span := ts.start(ctx, "budget.store.Audit", q.UserID)
	defer ts.end(span, &err)
	return ts.s.Audit(ctx, q)
}

func (ts tracedStore) Daily(ctx context.Context, q DayTotalsQuery) (_ []DayTotals, err error) {
	ctx, span := ts.start(ctx, "budget.store.Daily", q.UserID)
	defer ts.end(span, &err)
	return ts.s.Daily(ctx, q)
}

func (ts tracedStore) Import(ctx context.Context, req ImportRequest) (_ []Totals, err error) {
	ctx, span := ts.start(ctx, "budget.store.Import", "")
	defer ts.end(span, &err)
	return ts.s.Import(ctx, req)
}

// Close is the store's own: a Manager never closes its store.
func (ts tracedStore) Close() error { return ts.s.Close() }
