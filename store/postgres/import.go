package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/llmbudget/budget"
)

// Import implements budget.Store in one transaction: it locks each item's
// row in the items' (key) order, the order every transaction here locks
// in, so that an import and the calls it meets never deadlock; creates
// the budgets that are new (an insert that finds the row taken is
// ErrConflict); and runs UpdateSettings' step on each. An error rolls the
// whole transaction back.
func (s *Store) Import(ctx context.Context, req budget.ImportRequest) ([]budget.Totals, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	type prepared struct {
		initial, next []any
	}
	items := make([]prepared, len(req.Items))
	for i, it := range req.Items {
		var err error
		if items[i].next, err = settingsArgs(it.Settings); err != nil {
			return nil, err
		}
		if it.Create {
			if items[i].initial, err = settingsArgs(it.Initial); err != nil {
				return nil, err
			}
			ws, err1 := unix(it.Current.Window.Start)
			we, err2 := unix(it.Current.Window.End)
			if err := errors.Join(err1, err2); err != nil {
				return nil, err
			}
			items[i].initial = append(items[i].initial, ws, we)
		}
	}
	out := make([]budget.Totals, len(req.Items))
	err := s.transact(ctx, func(t *txn) error {
		for i, it := range req.Items {
			user := it.Settings.UserID
			if it.Create {
				var one int
				err := t.row(s.q.create+` RETURNING 1`, items[i].initial, &one)
				if errors.Is(err, pgx.ErrNoRows) {
					return fmt.Errorf("%w: %q has settings since they were read", budget.ErrConflict, user)
				}
				if err != nil {
					return err
				}
			}
			a, err := s.begin(t, user, it.Current, req.Now, nil)
			if err != nil {
				return err
			}
			if err := a.c.CheckLate(it.Current); err != nil {
				return err
			}
			if err := s.moveTo(t, a, it.Next, req.Now); err != nil {
				return err
			}
			t.write(s.q.updateSettings, items[i].next...)
			if err := s.writeAudit(t, it.Audit, nil); err != nil {
				return err
			}
			out[i] = s.finish(t, a, it.Next)
		}
		for _, e := range req.Audit {
			if err := s.writeAudit(t, e, nil); err != nil {
				return err
			}
		}
		return nil
	})
	for _, it := range req.Items {
		s.cache.forget(it.Settings.UserID)
	}
	if err != nil {
		return nil, interpret(err)
	}
	return out, nil
}
