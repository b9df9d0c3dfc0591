package storetest

import (
	"context"

	"github.com/llmbudget/budget"
)

// Daily implements budget.Store.
func (f *Faulty) Daily(ctx context.Context, q budget.DayTotalsQuery) ([]budget.DayTotals, error) {
	return faultCall(f, ctx, Call{Method: "Daily", UserID: q.UserID}, func(ctx context.Context) ([]budget.DayTotals, error) {
		return f.store.Daily(ctx, q)
	}, nil)
}

// Import implements budget.Store.
func (f *Faulty) Import(ctx context.Context, req budget.ImportRequest) ([]budget.Totals, error) {
	return faultCall(f, ctx, Call{Method: "Import"}, func(ctx context.Context) ([]budget.Totals, error) {
		return f.store.Import(ctx, req)
	}, nil)
}
