package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/llmbudget/budget"
)

// Import implements budget.Store. The whole request is one operation of
// the writer, so one transaction: each item is CreateSettings' insert
// (when Create) and UpdateSettings' step, then the extra audit entries are
// appended; an error in any of them rolls the operation back to its
// savepoint, and nothing of it is written (see commit).
func (s *Store) Import(ctx context.Context, req budget.ImportRequest) ([]budget.Totals, error) {
	type prepared struct {
		initial, next []any
		ws, we        int64
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
			if items[i].ws, err = unix(it.Current.Window.Start); err != nil {
				return nil, err
			}
			if items[i].we, err = unix(it.Current.Window.End); err != nil {
				return nil, err
			}
		}
	}
	out := make([]budget.Totals, len(req.Items))
	err := s.write(ctx, func(tx *sql.Tx) error {
		for i, it := range req.Items {
			user := it.Settings.UserID
			if it.Create {
				res, err := tx.Stmt(s.st.create).Exec(append(append([]any{user}, items[i].initial...), items[i].ws, items[i].we)...)
				if err != nil {
					return err
				}
				if n, _ := res.RowsAffected(); n != 1 {
					return fmt.Errorf("%w: %q has settings since they were read", budget.ErrConflict, user)
				}
			}
			a, err := s.beginChecked(tx, user, it.Current, req.Now)
			if err != nil {
				return err
			}
			if err := s.moveTo(tx, a, it.Next, req.Now); err != nil {
				return err
			}
			if _, err := tx.Stmt(s.st.updateSettings).Exec(append(items[i].next, user)...); err != nil {
				return err
			}
			if err := s.insertAudit(tx, it.Audit); err != nil {
				return err
			}
			if out[i], err = s.finish(tx, a, it.Next); err != nil {
				return err
			}
		}
		for _, e := range req.Audit {
			if err := s.insertAudit(tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, interpret(err)
	}
	return out, nil
}
