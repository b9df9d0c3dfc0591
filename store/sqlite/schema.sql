-- Schema version 1 of the budget SQLite store. Money is INTEGER nano-USD and
-- times are INTEGER Unix nanoseconds, so every SUM is exact integer
-- arithmetic. STRICT tables refuse values of the wrong type.

CREATE TABLE users (
	user_id       TEXT PRIMARY KEY,
	limit_nanos   INTEGER NOT NULL,
	period        TEXT NOT NULL,
	custom_days   INTEGER NOT NULL,
	custom_anchor INTEGER,
	timezone      TEXT NOT NULL,
	enforce       INTEGER NOT NULL,
	yellow        TEXT NOT NULL,
	orange        TEXT NOT NULL,
	red           TEXT NOT NULL,
	visible       INTEGER NOT NULL,
	can_modify    INTEGER NOT NULL,
	can_reset     INTEGER NOT NULL,
	admin_notes   TEXT NOT NULL,
	reset_at      INTEGER,
	version       INTEGER NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	-- The counters: the window last seen, the settled spend in it, the sum
	-- of live holds, the earliest expiry among them, the alerted levels.
	win_start     INTEGER NOT NULL,
	win_end       INTEGER NOT NULL,
	spent         INTEGER NOT NULL,
	held          INTEGER NOT NULL,
	next_expiry   INTEGER,
	marked        INTEGER NOT NULL
) STRICT;

CREATE TABLE holds (
	user_id  TEXT NOT NULL REFERENCES users(user_id),
	hold_id  TEXT NOT NULL,
	amount   INTEGER NOT NULL,
	expires  INTEGER NOT NULL,
	state    INTEGER NOT NULL, -- 0 pending, 1 settled, 2 released
	counted  INTEGER NOT NULL, -- 1 while the amount is in users.held
	PRIMARY KEY (user_id, hold_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX holds_live ON holds (user_id, expires) WHERE counted = 1;

CREATE TABLE usage (
	seq           INTEGER PRIMARY KEY,
	user_id       TEXT NOT NULL REFERENCES users(user_id),
	id            TEXT NOT NULL,
	hold_id       TEXT NOT NULL,
	provider      TEXT NOT NULL,
	model         TEXT NOT NULL,
	input_tokens  INTEGER NOT NULL,
	output_tokens INTEGER NOT NULL,
	cost          INTEGER NOT NULL,
	at            INTEGER NOT NULL,
	UNIQUE (user_id, id)
) STRICT;

CREATE INDEX usage_user_at ON usage (user_id, at, seq);

-- Daily rollups (UTC days) of usage by provider and model, updated in the
-- same transaction as each usage row: breakdowns read whole days here.
CREATE TABLE usage_daily (
	user_id       TEXT NOT NULL,
	day           INTEGER NOT NULL, -- Unix nanoseconds / 86400e9, floored
	provider      TEXT NOT NULL,
	model         TEXT NOT NULL,
	cost          INTEGER NOT NULL,
	requests      INTEGER NOT NULL,
	input_tokens  INTEGER NOT NULL,
	output_tokens INTEGER NOT NULL,
	PRIMARY KEY (user_id, day, provider, model)
) STRICT, WITHOUT ROWID;

CREATE TABLE audit (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id        TEXT NOT NULL, -- empty for defaults changes
	type           TEXT NOT NULL,
	actor          TEXT NOT NULL,
	actor_admin    INTEGER NOT NULL,
	reason         TEXT NOT NULL,
	previous_limit INTEGER NOT NULL,
	new_limit      INTEGER NOT NULL,
	previous_spent INTEGER NOT NULL,
	period_start   INTEGER,
	period_end     INTEGER,
	before         TEXT, -- JSON settings
	after          TEXT,
	at             INTEGER NOT NULL
) STRICT;

CREATE INDEX audit_user ON audit (user_id, id);

CREATE TABLE defaults (
	one        INTEGER PRIMARY KEY CHECK (one = 1),
	plan       TEXT NOT NULL, -- JSON
	version    INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;
