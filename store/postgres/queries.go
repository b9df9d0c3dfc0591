package postgres

import (
	"strconv"
	"strings"

	"github.com/llmbudget/budget/internal/sqlcodec"
)

// queries are the store's SQL, with table names qualified by the quoted
// schema. pgx prepares and caches each text per connection on first use.
type queries struct {
	settings, create, updateSettings, createCaps      string
	countersRead                                      string
	counters, countersNoLock, saveCounters, sumWindow string
	expire                                            string
	insertHold, hold, closeHold, insertUsage, rollup  string
	extendHold, otherExpiry                           string
	insertAudit                                       string
	defaults, lockDefaults, saveDefaults              string
	history, breakdown, accounts, accountsKind        string
	auditUser, auditUserType, auditType, auditAll     string
	templates, createTemplate, updateTemplate         string
	deleteTemplate                                    string
	pruneUsers, pruneHolds                            string

	// The fast path's statements (fast.go).
	fastGuard, fastReserve, fastSettle, fastRelease, fastRecord string
}

// The fast path's statements share their first twelve parameters: the
// user, the new spent, held, next_expiry and marked, then the version,
// window and counters the store last saw. g updates the user's row only if
// it still holds those, locking it; every write after it reads from g (or
// from h, which reads from g), so it runs after the lock and writes nothing
// when g found no row; and the final SELECT fails the whole statement,
// with SQLSTATE staleCode, unless g (and h) updated exactly one row.
const fastG = `WITH g AS (UPDATE {s}.users SET spent = $2, held = $3, next_expiry = $4, marked = $5
		WHERE user_id = $1 AND version = $6 AND win_start = $7 AND win_end = $8 AND spent = $9 AND held = $10
		AND next_expiry IS NOT DISTINCT FROM $11 AND marked = $12 RETURNING 1)`

// fastH closes the pending, counted hold $13 with state $14.
const fastH = `,
	h AS (UPDATE {s}.holds x SET state = $14, counted = false FROM g
		WHERE x.user_id = $1 AND x.hold_id = $13 AND x.state = 0 AND x.counted RETURNING 1)`

// fastUsage inserts a usage row and its rollup from parameters n to n+8
// (id, hold_id, provider, model, input and output tokens, cost, at, day),
// once per row of from.
func fastUsage(n int, from string) string {
	// Longer names first: at one position the first pattern that matches wins.
	r := strings.NewReplacer("$IN", p(n+4), "$OUT", p(n+5), "$I", p(n), "$H", p(n+1), "$P", p(n+2), "$M", p(n+3),
		"$C", p(n+6), "$AT", p(n+7), "$D", p(n+8), "FROM x", "FROM "+from)
	return r.Replace(`,
	u AS (INSERT INTO {s}.usage (user_id, id, hold_id, provider, model, input_tokens, output_tokens, cost, at)
		SELECT $1, $I, $H, $P, $M, $IN, $OUT, $C, $AT FROM x),
	r AS (INSERT INTO {s}.usage_daily AS d (user_id, day, provider, model, cost, requests, input_tokens, output_tokens)
		SELECT $1, $D, $P, $M, $C, 1, $IN, $OUT FROM x
		ON CONFLICT (user_id, day, provider, model) DO UPDATE SET cost = d.cost + excluded.cost,
		requests = d.requests + 1, input_tokens = d.input_tokens + excluded.input_tokens,
		output_tokens = d.output_tokens + excluded.output_tokens)`)
}

func p(n int) string { return "$" + strconv.Itoa(n) }

const (
	fastCheckG  = ` SELECT {s}.expect_fresh((SELECT COUNT(*) FROM g) = 1)`
	fastCheckGH = ` SELECT {s}.expect_fresh((SELECT COUNT(*) FROM g) = 1 AND (SELECT COUNT(*) FROM h) = 1)`
)

const countersCols = `version, win_start, win_end, spent, held, next_expiry, marked`

// settingsCols are the settings columns: those sqlcodec.ScanSettings reads,
// then schema version 3's membership and model caps (scopeFields).
const settingsCols = sqlcodec.SettingsCols + `, teams, org, cap_patterns, cap_limits`

// accountsCols are the columns of Accounts: the settings, then the
// counters, with the live holds recounted only for a holder with one
// expired at $3.
const accountsCols = settingsCols + `, win_start, win_end, spent,
	CASE WHEN next_expiry <= $3 THEN (SELECT COALESCE(SUM(amount), 0)::bigint FROM {s}.holds h
		WHERE h.user_id = u.user_id AND h.counted AND h.expires > $3) ELSE held END`

// newQueries returns the queries for the schema whose quoted name is q.
func newQueries(q string) queries {
	r := strings.NewReplacer("{s}", q)
	return queries{
		settings: r.Replace(`SELECT ` + settingsCols + ` FROM {s}.users WHERE user_id = $1 AND NOT cap`),
		create: r.Replace(`INSERT INTO {s}.users (` + settingsCols + `, win_start, win_end, spent, held, marked)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
				$23, $24, 0, 0, 0)
			ON CONFLICT (user_id) DO NOTHING`),
		updateSettings: r.Replace(`UPDATE {s}.users SET limit_nanos = $2, period = $3, custom_days = $4,
			custom_anchor = $5, timezone = $6, enforce = $7, yellow = $8, orange = $9, red = $10, visible = $11,
			can_modify = $12, can_reset = $13, admin_notes = $14, reset_at = $15, version = $16, created_at = $17,
			updated_at = $18, teams = $19, org = $20, cap_patterns = $21, cap_limits = $22 WHERE user_id = $1`),
		// createCaps creates the counters of model caps $1 (keys, sorted)
		// not yet used, starting in windows [$2, $3), in key order: a row
		// with placeholder settings, marked cap. It runs alone, before the
		// transaction that locks them, and waits on no lock.
		createCaps: r.Replace(`INSERT INTO {s}.users (` + settingsCols + `, win_start, win_end, spent, held, marked, cap)
			SELECT k, 0, '', 0, NULL, '', false, '0', '0', '0', false, false, false, '', NULL, 0, 0, 0, '{}', '', '{}', '{}',
				ws, we, 0, 0, 0, true
			FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS c (k, ws, we) ORDER BY k COLLATE "C"
			ON CONFLICT (user_id) DO NOTHING`),
		// countersRead reads the counters of keys $1 without a lock, for
		// Totals of several budgets: one statement, so one snapshot.
		countersRead: r.Replace(`SELECT user_id, ` + countersCols + ` FROM {s}.users WHERE user_id = ANY($1::text[])`),

		counters:       r.Replace(`SELECT ` + countersCols + ` FROM {s}.users WHERE user_id = $1 FOR UPDATE`),
		countersNoLock: r.Replace(`SELECT ` + countersCols + ` FROM {s}.users WHERE user_id = $1`),
		saveCounters: r.Replace(`UPDATE {s}.users SET win_start = $2, win_end = $3, spent = $4, held = $5,
			next_expiry = $6, marked = $7 WHERE user_id = $1`),
		sumWindow: r.Replace(`SELECT COALESCE(SUM(cost), 0)::bigint FROM {s}.usage WHERE user_id = $1 AND at >= $2 AND at < $3`),
		// expire stops counting the holds expired at $2 and returns their
		// sum and the earliest expiry among those still counted (the
		// subquery reads the rows as they were before the update).
		expire: r.Replace(`WITH gone AS (
				UPDATE {s}.holds SET counted = false WHERE user_id = $1 AND counted AND expires <= $2 RETURNING amount)
			SELECT (SELECT COALESCE(SUM(amount), 0)::bigint FROM gone),
				(SELECT MIN(expires) FROM {s}.holds WHERE user_id = $1 AND counted AND expires > $2)`),

		insertHold: r.Replace(`INSERT INTO {s}.holds (user_id, hold_id, amount, expires, state, counted)
			VALUES ($1, $2, $3, $4, 0, true)`),
		hold:       r.Replace(`SELECT amount, expires, state, counted FROM {s}.holds WHERE user_id = $1 AND hold_id = $2`),
		closeHold:  r.Replace(`UPDATE {s}.holds SET state = $3, counted = false WHERE user_id = $1 AND hold_id = $2`),
		extendHold: r.Replace(`UPDATE {s}.holds SET expires = $3 WHERE user_id = $1 AND hold_id = $2`),
		// otherExpiry is the earliest expiry after $3 of user $1's counted
		// holds other than $2 (by the live-hold index).
		otherExpiry: r.Replace(`SELECT MIN(expires) FROM {s}.holds WHERE user_id = $1 AND counted AND expires > $3 AND hold_id <> $2`),
		insertUsage: r.Replace(`INSERT INTO {s}.usage (user_id, id, hold_id, provider, model, input_tokens, output_tokens, cost, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`),
		rollup: r.Replace(`INSERT INTO {s}.usage_daily AS d (user_id, day, provider, model, cost, requests, input_tokens, output_tokens)
			VALUES ($1, $2, $3, $4, $5, 1, $6, $7)
			ON CONFLICT (user_id, day, provider, model) DO UPDATE SET cost = d.cost + excluded.cost,
			requests = d.requests + 1, input_tokens = d.input_tokens + excluded.input_tokens,
			output_tokens = d.output_tokens + excluded.output_tokens`),

		insertAudit: r.Replace(`INSERT INTO {s}.audit (user_id, type, actor, actor_admin, reason, previous_limit, new_limit,
			previous_spent, period_start, period_end, before, after, bulk_id, template, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`),

		defaults:     r.Replace(`SELECT plan, version, updated_at FROM {s}.defaults WHERE one = 1`),
		lockDefaults: r.Replace(`SELECT version FROM {s}.defaults WHERE one = 1 FOR UPDATE`),
		saveDefaults: r.Replace(`UPDATE {s}.defaults SET plan = $1, version = $2, updated_at = $3 WHERE one = 1`),

		history: r.Replace(`SELECT ` + sqlcodec.UsageCols + `
			FROM {s}.usage WHERE user_id = $1 AND at >= $2 AND at < $3 AND (at, seq) < ($4, $5)
			ORDER BY at DESC, seq DESC LIMIT $6`),
		// breakdown sums the daily rollups of days [$2, $3) and the usage
		// rows in [$4, $5) and [$6, $7): the partial days at the edges.
		breakdown: r.Replace(`SELECT provider, model, SUM(cost)::bigint, SUM(requests)::bigint,
				SUM(input_tokens)::bigint, SUM(output_tokens)::bigint FROM (
			SELECT provider, model, cost, requests, input_tokens, output_tokens
				FROM {s}.usage_daily WHERE user_id = $1 AND day >= $2 AND day < $3
			UNION ALL
			SELECT provider, model, cost, 1, input_tokens, output_tokens
				FROM {s}.usage WHERE user_id = $1 AND ((at >= $4 AND at < $5) OR (at >= $6 AND at < $7))
			) x GROUP BY provider, model`),
		// accounts lists users: the keys from ' ' up, as a user ID starts
		// with no control character and every team's or org's key with
		// "\x1f"; a user's caps are rows too, marked cap.
		accounts: r.Replace(`SELECT ` + accountsCols + `
			FROM {s}.users u WHERE user_id > $1 AND user_id >= ' ' AND NOT cap ORDER BY user_id LIMIT $2`),
		// accountsKind lists the teams or the orgs: the keys in ($4, $5),
		// "\x1fteam:" to "\x1fteam;" (the caps among them marked cap).
		accountsKind: r.Replace(`SELECT ` + accountsCols + `
			FROM {s}.users u WHERE user_id > $1 AND user_id > $4 AND user_id < $5 AND NOT cap ORDER BY user_id LIMIT $2`),

		auditUser: r.Replace(`SELECT ` + sqlcodec.AuditCols + ` FROM {s}.audit WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`),
		auditUserType: r.Replace(`SELECT ` + sqlcodec.AuditCols + ` FROM {s}.audit WHERE user_id = $1 AND type = $2 AND id < $3
			ORDER BY id DESC LIMIT $4`),
		auditType: r.Replace(`SELECT ` + sqlcodec.AuditCols + ` FROM {s}.audit WHERE type = $1 AND id < $2 ORDER BY id DESC LIMIT $3`),
		auditAll:  r.Replace(`SELECT ` + sqlcodec.AuditCols + ` FROM {s}.audit WHERE id < $1 ORDER BY id DESC LIMIT $2`),

		templates: r.Replace(`SELECT ` + sqlcodec.TemplateCols + ` FROM {s}.templates ORDER BY name`),
		// createTemplate inserts template $1 unless one of that name
		// exists (waiting for a concurrent insert to commit or roll back),
		// and returns how many rows it inserted.
		createTemplate: r.Replace(`WITH i AS (INSERT INTO {s}.templates (name, plan, version, updated_at)
				VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING RETURNING 1)
			SELECT COUNT(*) FROM i`),
		// updateTemplate rewrites template $1 only at version $5, and
		// returns how many rows it updated.
		updateTemplate: r.Replace(`WITH u AS (UPDATE {s}.templates SET plan = $2, version = $3, updated_at = $4
				WHERE name = $1 AND version = $5 RETURNING 1)
			SELECT COUNT(*) FROM u`),
		// deleteTemplate deletes template $1 only at version $2, and
		// returns how many rows it deleted and whether the template
		// existed when the statement began.
		deleteTemplate: r.Replace(`WITH d AS (DELETE FROM {s}.templates WHERE name = $1 AND version = $2 RETURNING 1)
			SELECT (SELECT COUNT(*) FROM d), EXISTS (SELECT 1 FROM {s}.templates WHERE name = $1)`),

		// pruneUsers locks a page of users, in ID order after $1, and
		// deletes their usage before both the cut-off $2 and the start of
		// their window; it returns the last user ID and the rows deleted.
		pruneUsers: r.Replace(`WITH u AS (
				SELECT user_id, win_start FROM {s}.users WHERE user_id > $1 ORDER BY user_id LIMIT $3 FOR UPDATE),
			d AS (DELETE FROM {s}.usage x USING u WHERE x.user_id = u.user_id AND x.at < $2 AND x.at < u.win_start RETURNING 1)
			SELECT (SELECT MAX(user_id) FROM u), (SELECT COUNT(*) FROM d)`),
		pruneHolds: r.Replace(`DELETE FROM {s}.holds WHERE state <> 0 AND expires < $1`),

		fastGuard: r.Replace(fastG + fastCheckG),
		// fastReserve places hold $13 of $14, expiring at $15.
		fastReserve: r.Replace(fastG + `,
	n AS (INSERT INTO {s}.holds (user_id, hold_id, amount, expires, state, counted)
		SELECT $1, $13, $14, $15, 0, true FROM g)` + fastCheckG),
		fastSettle:  r.Replace(fastG + fastH + fastUsage(15, "h") + fastCheckGH),
		fastRelease: r.Replace(fastG + fastH + fastCheckGH),
		fastRecord:  r.Replace(fastG + fastUsage(13, "g") + fastCheckG),
	}
}
