-- Schema version 5 of the budget SQLite store: the usage charged to a
-- budget other than a user's own lives in a table of its own.
--
-- A team's, an org's and a model cap's usage rows (keys containing
-- char(31), see budget.Scope.Key and budget.Scope.CapKey) move from usage
-- to usage_charged, which has the same columns. It is keyed by budget and
-- time, so each budget's rows sit in time order and a step appends a busy
-- team's rows to one page, where in usage each needed a row of its own and
-- a place in two indexes (by ID, whose team rows sort by member, and by
-- time). Its rows are written in the same step as the user's row, and are
-- unique as that row is (usage's UNIQUE (user_id, id)): id is
-- budget.UsageKeyID(user, usage ID), and part of the key. seq is the user's
-- row's seq (rows moved keep their own, from the same sequence): it orders
-- a budget's rows of one instant as they were written, as in usage.
-- A user's own usage stays in usage, unchanged.
CREATE TABLE usage_charged (
	user_id       TEXT NOT NULL REFERENCES users(user_id), -- the budget's key
	at            INTEGER NOT NULL,
	seq           INTEGER NOT NULL,
	id            TEXT NOT NULL,
	hold_id       TEXT NOT NULL,
	provider      TEXT NOT NULL,
	model         TEXT NOT NULL,
	input_tokens  INTEGER NOT NULL,
	output_tokens INTEGER NOT NULL,
	cost          INTEGER NOT NULL,
	PRIMARY KEY (user_id, at, seq, id)
) STRICT, WITHOUT ROWID;

-- The rows there, moved before the trigger below: their rollups are already
-- counted.
INSERT INTO usage_charged (user_id, at, seq, id, hold_id, provider, model, input_tokens, output_tokens, cost)
	SELECT user_id, at, seq, id, hold_id, provider, model, input_tokens, output_tokens, cost
	FROM usage WHERE instr(user_id, char(31)) > 0;
DELETE FROM usage WHERE instr(user_id, char(31)) > 0;

-- The quarter-hour rollups of the rows to come, as usage's trigger keeps
-- them for a user's rows.
CREATE TRIGGER usage_charged_quarter_rollup AFTER INSERT ON usage_charged BEGIN
	INSERT INTO usage_quarter (user_id, slot, provider, model, cost, requests, input_tokens, output_tokens)
	VALUES (NEW.user_id, (NEW.at - ((NEW.at % 900000000000) + 900000000000) % 900000000000) / 900000000000,
		NEW.provider, NEW.model, NEW.cost, 1, NEW.input_tokens, NEW.output_tokens)
	ON CONFLICT (user_id, slot, provider, model) DO UPDATE SET cost = cost + excluded.cost,
		requests = requests + 1, input_tokens = input_tokens + excluded.input_tokens,
		output_tokens = output_tokens + excluded.output_tokens;
END;
