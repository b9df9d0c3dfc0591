package postgres

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/internal/sqlcodec"
)

// dailySQL sums a budget's usage per zone span and local day, for user $1:
// the whole quarter hours ($2 to $5: zone, first and end slot, shift, as
// arrays) from the quarter-hour rollups (schema version 4), the slivers ($6
// to $9) from usage rows, and the whole UTC days of UTC spans ($10 to $12)
// from the daily rollups. Each piece is one index range of a nested loop
// over the few pieces: a range of ten years costs a seek per DST change.
const dailySQL = `WITH s AS (SELECT * FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) AS s (zone, lo, hi, k)),
	r AS (SELECT * FROM unnest($6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[]) AS r (zone, lo, hi, k)),
	d AS (SELECT * FROM unnest($10::bigint[], $11::bigint[], $12::bigint[]) AS d (zone, lo, hi))
	SELECT s.zone, {qday}, q.provider, q.model, SUM(q.cost)::bigint, SUM(q.requests)::bigint,
		SUM(q.input_tokens)::bigint, SUM(q.output_tokens)::bigint
		FROM s JOIN {s}.usage_quarter q ON q.user_id = $1 AND q.slot >= s.lo AND q.slot < s.hi
		GROUP BY 1, 2, 3, 4
	UNION ALL
	SELECT r.zone, {rday}, u.provider, u.model, SUM(u.cost)::bigint, COUNT(*),
		SUM(u.input_tokens)::bigint, SUM(u.output_tokens)::bigint
		FROM r JOIN {s}.usage u ON u.user_id = $1 AND u.at >= r.lo AND u.at < r.hi
		GROUP BY 1, 2, 3, 4
	UNION ALL
	SELECT d.zone, ud.day, ud.provider, ud.model, ud.cost, ud.requests, ud.input_tokens, ud.output_tokens
		FROM d JOIN {s}.usage_daily ud ON ud.user_id = $1 AND ud.day >= d.lo AND ud.day < d.hi`

// dailyQuery returns dailySQL for the store's schema.
func (s *Store) dailyQuery() string {
	return strings.NewReplacer("{s}", pgx.Identifier{s.schema}.Sanitize(),
		"{qday}", sqlcodec.QuarterDayExpr("q.slot", "s.k"), "{rday}", sqlcodec.RowDayExpr("u.at", "r.k")).Replace(dailySQL)
}

// Daily implements budget.Store: one query, reading the daily rollups for
// whole UTC days of a UTC span, the quarter-hour rollups for the other
// whole quarter hours, and usage rows only for the slivers q.Parts leaves
// (a quarter hour at most at each edge).
func (s *Store) Daily(ctx context.Context, q budget.DayTotalsQuery) ([]budget.DayTotals, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	p := sqlcodec.SplitDays(q)
	if p.Days.Len()+p.Slots.Len()+p.Rows.Len() == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, s.dailyQuery(), q.UserID,
		nonNil(p.Slots.Zone), nonNil(p.Slots.Lo), nonNil(p.Slots.Hi), nonNil(p.Slots.Shift),
		nonNil(p.Rows.Zone), nonNil(p.Rows.Lo), nonNil(p.Rows.Hi), nonNil(p.Rows.Shift),
		nonNil(p.Days.Zone), nonNil(p.Days.Lo), nonNil(p.Days.Hi))
	if err != nil {
		return nil, interpret(err)
	}
	defer rows.Close()
	out, err := sqlcodec.ScanDays(rows, q.UserID)
	if err != nil {
		return nil, interpret(err)
	}
	rows.Close()
	return out, interpret(rows.Err())
}

// nonNil returns v, or an empty slice for nil: a nil slice is SQL NULL,
// whose unnest is no rows anyway, but an empty array says what is meant.
func nonNil(v []int64) []int64 {
	if v == nil {
		return []int64{}
	}
	return v
}
