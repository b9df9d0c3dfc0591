-- Schema version 3 of the budget SQLite store: budgets at every scope.
--
-- A row of users is now one budget's settings and counters under its key
-- (budget.Scope.Key): a user's (the user ID, as before), a team's or an
-- org's (keys starting with char(31)), or a model cap's
-- (budget.Scope.CapKey). A cap has no settings of its own: its row holds
-- placeholder settings, cap = 1, and only its counters mean anything; it
-- is created on the cap's first use and never listed. Holds, usage rows and
-- daily rollups of every budget are kept under its key, like a user's.
-- Rows written before keep what they had: users with no team, no org and
-- no model caps.

-- The teams a user belongs to, as a JSON array of team IDs in increasing
-- order; '' for none.
ALTER TABLE users ADD COLUMN teams TEXT NOT NULL DEFAULT '';
-- The org a user or a team belongs to; '' for none.
ALTER TABLE users ADD COLUMN org TEXT NOT NULL DEFAULT '';
-- The budget's model caps, as a JSON array of {"pattern": TEXT,
-- "limit_nanos": INTEGER} in the settings' order, limits in exact integer
-- nano-USD; '' for none.
ALTER TABLE users ADD COLUMN model_caps TEXT NOT NULL DEFAULT '';
-- 1 for a model cap's counters, 0 for a holder with settings.
ALTER TABLE users ADD COLUMN cap INTEGER NOT NULL DEFAULT 0 CHECK (cap IN (0, 1));

-- Holds are keyed by hold first: the rows of one hold, under the user's
-- key and each other budget's, sit side by side, so a step over several
-- budgets writes one page of holds rather than one per budget. Lookups
-- name both columns; the live holds of a key are found through holds_live.
CREATE TABLE holds_v3 (
	user_id  TEXT NOT NULL REFERENCES users(user_id),
	hold_id  TEXT NOT NULL,
	amount   INTEGER NOT NULL,
	expires  INTEGER NOT NULL,
	state    INTEGER NOT NULL, -- 0 pending, 1 settled, 2 released
	counted  INTEGER NOT NULL, -- 1 while the amount is in users.held
	PRIMARY KEY (hold_id, user_id)
) STRICT, WITHOUT ROWID;
INSERT INTO holds_v3 (user_id, hold_id, amount, expires, state, counted)
	SELECT user_id, hold_id, amount, expires, state, counted FROM holds;
DROP TABLE holds;
ALTER TABLE holds_v3 RENAME TO holds;
CREATE INDEX holds_live ON holds (user_id, expires) WHERE counted = 1;
