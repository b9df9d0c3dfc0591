package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/internal/sqlcodec"
)

// stmts are the store's prepared statements: the write ones on the writer
// connection (used inside transactions with tx.Stmt), the read ones on the
// read pool.
type stmts struct {
	// writer
	settings, create, updateSettings                   *sql.Stmt
	counters, saveCounters                             *sql.Stmt
	sumExpired, expire, nextExpiry                     *sql.Stmt
	insertHold, hold, closeHold, extendHold            *sql.Stmt
	insertUsage, rollup                                *sql.Stmt
	insertAudit, lastID, defaultsVersion, saveDefaults *sql.Stmt
	templateVersion, saveTemplate, deleteTemplate      *sql.Stmt
	savepoint, rollbackTo, release, dataVersion        *sql.Stmt
	// writer, for a step over several budgets (see scopes.go)
	createCap, holdsMany, closeHoldAll        *sql.Stmt
	insertHoldMany, insertCharged, rollupMany *sql.Stmt
	// readers
	settingsR, countersR, breakdownDays           *sql.Stmt
	accounts, accountsIn, liveHeld, defaults      *sql.Stmt
	templates, countersManyR                      *sql.Stmt
	auditUser, auditUserType, auditType, auditAll *sql.Stmt
	// readers, for the insights (daily.go)
	dailySlots *sql.Stmt
	// the statements that read usage rows, for a user's own budget and
	// for the others (see usageOf)
	own, charged usageStmts
	all          []*sql.Stmt
}

// usageStmts are the statements that read a budget's usage rows, prepared
// for each of the two tables that hold them.
type usageStmts struct {
	sumWindow                     *sql.Stmt // writer
	history, breakdownRows, daily *sql.Stmt // readers
}

// usageOf returns the statements that read the usage rows of the budget
// under key: a user's own budget keeps them in usage, the others (a
// team's, an org's, a model cap's) in usage_charged (migrate_v5.sql).
func (s *stmts) usageOf(key string) *usageStmts {
	if scope, pattern := budget.ScopeOfKey(key); scope.Kind == budget.UserScope && pattern == "" {
		return &s.own
	}
	return &s.charged
}

func (s *stmts) prepare(ctx context.Context, w, r *sql.DB) error {
	for _, p := range []struct {
		db  *sql.DB
		dst **sql.Stmt
		sql string
	}{
		{w, &s.settings, `SELECT ` + settingsCols + ` FROM users WHERE user_id = ? AND cap = 0`},
		{w, &s.create, `INSERT INTO users (` + settingsCols + `, win_start, win_end, spent, held, marked)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0)
			ON CONFLICT (user_id) DO NOTHING`},
		{w, &s.updateSettings, `UPDATE users SET limit_nanos = ?, period = ?, custom_days = ?, custom_anchor = ?,
			timezone = ?, enforce = ?, yellow = ?, orange = ?, red = ?, visible = ?, can_modify = ?, can_reset = ?,
			admin_notes = ?, reset_at = ?, version = ?, created_at = ?, updated_at = ?, teams = ?, org = ?, model_caps = ?
			WHERE user_id = ?`},
		{w, &s.counters, `SELECT version, limit_nanos, win_start, win_end, spent, held, next_expiry, marked FROM users WHERE user_id = ?`},
		{w, &s.saveCounters, `UPDATE users SET win_start = ?, win_end = ?, spent = ?, held = ?, next_expiry = ?, marked = ? WHERE user_id = ?`},
		{w, &s.sumExpired, `SELECT COALESCE(SUM(amount), 0) FROM holds WHERE user_id = ? AND counted = 1 AND expires <= ?`},
		{w, &s.expire, `UPDATE holds SET counted = 0 WHERE user_id = ? AND counted = 1 AND expires <= ?`},
		{w, &s.nextExpiry, `SELECT MIN(expires) FROM holds WHERE user_id = ? AND counted = 1`},
		{w, &s.insertHold, `INSERT INTO holds (user_id, hold_id, amount, expires, state, counted) VALUES (?, ?, ?, ?, 0, 1)
			ON CONFLICT DO NOTHING`},
		{w, &s.hold, `SELECT amount, expires, state, counted FROM holds WHERE user_id = ? AND hold_id = ?`},
		{w, &s.closeHold, `UPDATE holds SET state = ?, counted = 0 WHERE user_id = ? AND hold_id = ?`},
		{w, &s.extendHold, `UPDATE holds SET expires = ? WHERE user_id = ? AND hold_id = ?`},
		{w, &s.insertUsage, `INSERT INTO usage (user_id, id, hold_id, provider, model, input_tokens, output_tokens, cost, at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, id) DO NOTHING`},
		{w, &s.rollup, `INSERT INTO usage_daily (user_id, day, provider, model, cost, requests, input_tokens, output_tokens)
			VALUES (?, ?, ?, ?, ?, 1, ?, ?)
			ON CONFLICT (user_id, day, provider, model) DO UPDATE SET cost = cost + excluded.cost,
			requests = requests + 1, input_tokens = input_tokens + excluded.input_tokens,
			output_tokens = output_tokens + excluded.output_tokens`},
		{w, &s.insertAudit, `INSERT INTO audit (user_id, type, actor, actor_admin, reason, previous_limit, new_limit,
			previous_spent, period_start, period_end, before, after, bulk_id, template, at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{w, &s.lastID, `SELECT last_insert_rowid()`},
		{w, &s.savepoint, `SAVEPOINT op`},
		{w, &s.rollbackTo, `ROLLBACK TO op`},
		{w, &s.release, `RELEASE op`},
		{w, &s.dataVersion, `PRAGMA data_version`},
		{w, &s.defaultsVersion, `SELECT version FROM defaults WHERE one = 1`},
		{w, &s.saveDefaults, `INSERT INTO defaults (one, plan, version, updated_at) VALUES (1, ?, ?, ?)
			ON CONFLICT (one) DO UPDATE SET plan = excluded.plan, version = excluded.version, updated_at = excluded.updated_at`},
		{w, &s.createCap, `INSERT INTO users (user_id, limit_nanos, period, custom_days, timezone, enforce, yellow, orange, red,
			visible, can_modify, can_reset, admin_notes, version, created_at, updated_at, win_start, win_end, spent, held, marked, cap)
			VALUES (?, 0, '', 0, '', 0, '0', '0', '0', 0, 0, 0, '', 0, ?, ?, ?, ?, 0, 0, 0, 1)
			ON CONFLICT (user_id) DO NOTHING`},
		// A step over several budgets names them in one JSON array of
		// keys, the user's first (json_each's key 0).
		// (A join that probes users or holds for each key of json_each,
		// the outer loop as CROSS JOIN makes it, costs less than user_id
		// IN (SELECT value FROM json_each(?)), which first builds an
		// ephemeral index of the keys.)
		// Holds are keyed by hold first: one range of the primary key
		// holds the hold's rows under every budget.
		{w, &s.holdsMany, `SELECT user_id, amount, expires, state, counted FROM holds WHERE hold_id = ?`},
		{w, &s.closeHoldAll, `UPDATE holds SET state = ?, counted = 0 WHERE hold_id = ?`},
		{w, &s.insertHoldMany, `INSERT INTO holds (user_id, hold_id, amount, expires, state, counted)
			SELECT value, ?, ?, ?, 0, 1 FROM json_each(?) WHERE true ON CONFLICT DO NOTHING`},
		// The rows of the user's usage row ?2 (ID ?1) under the other
		// budgets: every key but the user's (json_each's key 0).
		{w, &s.insertCharged, `INSERT INTO usage_charged (user_id, at, seq, id, hold_id, provider, model, input_tokens, output_tokens, cost)
			SELECT value, ?3, ?2, ?1, ?4, ?5, ?6, ?7, ?8, ?9 FROM json_each(?10) WHERE key > 0`},
		{w, &s.rollupMany, `INSERT INTO usage_daily (user_id, day, provider, model, cost, requests, input_tokens, output_tokens)
			SELECT value, ?, ?, ?, ?, 1, ?, ? FROM json_each(?) WHERE true
			ON CONFLICT (user_id, day, provider, model) DO UPDATE SET cost = cost + excluded.cost,
			requests = requests + 1, input_tokens = input_tokens + excluded.input_tokens,
			output_tokens = output_tokens + excluded.output_tokens`},
		{w, &s.templateVersion, `SELECT version FROM templates WHERE name = ?`},
		{w, &s.saveTemplate, `INSERT INTO templates (name, plan, version, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET plan = excluded.plan, version = excluded.version, updated_at = excluded.updated_at`},
		{w, &s.deleteTemplate, `DELETE FROM templates WHERE name = ?`},

		{r, &s.settingsR, `SELECT ` + settingsCols + ` FROM users WHERE user_id = ? AND cap = 0`},
		// Totals' read-only answer over several budgets: one statement,
		// so one snapshot of them all.
		{r, &s.countersManyR, `SELECT ` + countersManyCols + ` FROM json_each(?) AS k CROSS JOIN users ON users.user_id = k.value`},
		{r, &s.countersR, `SELECT version, limit_nanos, win_start, win_end, spent, held, next_expiry, marked FROM users WHERE user_id = ?`},
		{r, &s.breakdownDays, `SELECT provider, model, SUM(cost), SUM(requests), SUM(input_tokens), SUM(output_tokens)
			FROM usage_daily WHERE user_id = ? AND day >= ? AND day < ? GROUP BY provider, model`},
		// Users' keys sort after every team's and org's (see accountsRange);
		// a user's model caps sort among users and are left out by cap.
		{r, &s.accounts, `SELECT ` + settingsCols + `, win_start, win_end, spent, held, next_expiry FROM users
			WHERE user_id > ? AND cap = 0 ORDER BY user_id LIMIT ?`},
		{r, &s.accountsIn, `SELECT ` + settingsCols + `, win_start, win_end, spent, held, next_expiry FROM users
			WHERE user_id > ? AND user_id < ? AND cap = 0 ORDER BY user_id LIMIT ?`},
		{r, &s.liveHeld, `SELECT COALESCE(SUM(amount), 0) FROM holds WHERE user_id = ? AND counted = 1 AND expires > ?`},
		{r, &s.auditUser, `SELECT ` + sqlcodec.AuditCols + ` FROM audit WHERE user_id = ? AND id < ? ORDER BY id DESC LIMIT ?`},
		{r, &s.auditUserType, `SELECT ` + sqlcodec.AuditCols + ` FROM audit WHERE user_id = ? AND type = ? AND id < ?
			ORDER BY id DESC LIMIT ?`},
		{r, &s.auditType, `SELECT ` + sqlcodec.AuditCols + ` FROM audit WHERE type = ? AND id < ? ORDER BY id DESC LIMIT ?`},
		{r, &s.auditAll, `SELECT ` + sqlcodec.AuditCols + ` FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?`},
		{r, &s.defaults, `SELECT plan, version, updated_at FROM defaults WHERE one = 1`},
		{r, &s.templates, `SELECT ` + sqlcodec.TemplateCols + ` FROM templates ORDER BY name`},
		{r, &s.dailySlots, dailySlotsSQL},
	} {
		st, err := p.db.PrepareContext(ctx, p.sql)
		if err != nil {
			return err
		}
		*p.dst = st
		s.all = append(s.all, st)
	}
	for _, u := range []struct {
		dst   *usageStmts
		table string
	}{{&s.own, "usage"}, {&s.charged, "usage_charged"}} {
		for _, p := range []struct {
			db  *sql.DB
			dst **sql.Stmt
			sql string
		}{
			{w, &u.dst.sumWindow, `SELECT COALESCE(SUM(cost), 0) FROM ` + u.table + ` WHERE user_id = ? AND at >= ? AND at < ?`},
			{r, &u.dst.history, `SELECT ` + sqlcodec.UsageCols + ` FROM ` + u.table + `
				WHERE user_id = ? AND at >= ? AND at < ? AND (at, seq) < (?, ?) ORDER BY at DESC, seq DESC LIMIT ?`},
			{r, &u.dst.breakdownRows, `SELECT provider, model, SUM(cost), COUNT(*), SUM(input_tokens), SUM(output_tokens)
				FROM ` + u.table + ` WHERE user_id = ? AND at >= ? AND at < ? GROUP BY provider, model`},
			{r, &u.dst.daily, dailySQL(u.table)},
		} {
			st, err := p.db.PrepareContext(ctx, p.sql)
			if err != nil {
				return err
			}
			*p.dst = st
			s.all = append(s.all, st)
		}
	}
	return nil
}

func (s *stmts) close() error {
	var errs []error
	for _, st := range s.all {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}
