package sqlite

import (
	"context"
	"database/sql"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/internal/sqlcodec"
)

// dailySlotsSQL sums a budget's usage per zone span and local day, for
// user ?3, over the whole quarter hours ?1 from the quarter-hour rollups
// (schema version 4); dailySQL adds the rest. ?1 and the other pieces are
// JSON arrays of [zone, lo, hi, shift] (sqlcodec.Pieces). Each piece is one
// index range: the pieces are the outer loop (CROSS JOIN keeps them there),
// so a range of ten years costs a seek per DST change, not a scan.
// dailySlotsSQL alone serves a range of quarter hours (days in a zone other
// than UTC).
var dailySlotsSQL = `WITH s (zone, lo, hi, k) AS MATERIALIZED (
		SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?1))
	SELECT s.zone, ` + sqlcodec.QuarterDayExpr("q.slot", "s.k") + `, q.provider, q.model,
		SUM(q.cost), SUM(q.requests), SUM(q.input_tokens), SUM(q.output_tokens)
		FROM s CROSS JOIN usage_quarter AS q
		WHERE q.user_id = ?3 AND q.slot >= s.lo AND q.slot < s.hi
		GROUP BY 1, 2, 3, 4`

// dailySQL returns dailySlotsSQL followed by the slivers ?2 from the usage
// rows in table (usage or usage_charged, see stmts.usageOf) and the whole
// UTC days ?4 of UTC spans from the daily rollups.
func dailySQL(table string) string {
	return dailySlotsSQL + `
	UNION ALL
	SELECT r.zone, ` + sqlcodec.RowDayExpr("u.at", "r.k") + `, u.provider, u.model,
		SUM(u.cost), COUNT(*), SUM(u.input_tokens), SUM(u.output_tokens)
		FROM (SELECT value ->> 0 AS zone, value ->> 1 AS lo, value ->> 2 AS hi, value ->> 3 AS k FROM json_each(?2)) AS r
		CROSS JOIN ` + table + ` AS u
		WHERE u.user_id = ?3 AND u.at >= r.lo AND u.at < r.hi
		GROUP BY 1, 2, 3, 4
	UNION ALL
	SELECT d.zone, ud.day, ud.provider, ud.model, ud.cost, ud.requests, ud.input_tokens, ud.output_tokens
		FROM (SELECT value ->> 0 AS zone, value ->> 1 AS lo, value ->> 2 AS hi FROM json_each(?4)) AS d
		CROSS JOIN usage_daily AS ud
		WHERE ud.user_id = ?3 AND ud.day >= d.lo AND ud.day < d.hi`
}

// Daily implements budget.Store: one statement, reading the daily rollups
// for whole UTC days of a UTC span, the quarter-hour rollups for the other
// whole quarter hours, and usage rows only for the slivers q.Parts leaves
// (a quarter hour at most at each edge).
func (s *Store) Daily(ctx context.Context, q budget.DayTotalsQuery) ([]budget.DayTotals, error) {
	if err := s.reading(ctx); err != nil {
		return nil, err
	}
	p := sqlcodec.SplitDays(q)
	var (
		rows *sql.Rows
		err  error
	)
	switch {
	case p.Days.Len()+p.Slots.Len()+p.Rows.Len() == 0:
		return nil, nil
	case p.Days.Len()+p.Rows.Len() == 0:
		rows, err = s.st.dailySlots.QueryContext(ctx, p.Slots.JSON(), nil, q.UserID)
	default:
		rows, err = s.st.usageOf(q.UserID).daily.QueryContext(ctx, p.Slots.JSON(), p.Rows.JSON(), q.UserID, p.Days.JSON())
	}
	if err != nil {
		return nil, interpret(err)
	}
	defer rows.Close()
	out, err := sqlcodec.ScanDays(rows, q.UserID)
	if err != nil {
		return nil, interpret(err)
	}
	return out, interpret(rows.Err())
}
