-- Schema version 4 of the budget SQLite store: quarter-hour rollups.
--
-- Usage summed per budget key, UTC quarter hour (the 15-minute slots
-- counted from the Unix epoch), provider and model. Every UTC offset in use
-- is a whole number of quarter hours, so the spend of a local day in any
-- time zone, across any DST change, is a sum of whole slots (see
-- budget.DayTotalsQuery): Daily reads here, never a scan of usage rows.
--
-- A trigger keeps it, in the statement that inserts each usage row, however
-- the row is inserted (one budget, several, the fast paths): no write path
-- needs to know. Like the daily rollups, it is never pruned.
CREATE TABLE usage_quarter (
	user_id       TEXT NOT NULL,
	slot          INTEGER NOT NULL, -- Unix nanoseconds / 900e9, floored
	provider      TEXT NOT NULL,
	model         TEXT NOT NULL,
	cost          INTEGER NOT NULL,
	requests      INTEGER NOT NULL,
	input_tokens  INTEGER NOT NULL,
	output_tokens INTEGER NOT NULL,
	PRIMARY KEY (user_id, slot, provider, model)
) STRICT, WITHOUT ROWID;

-- The usage rows already there.
INSERT INTO usage_quarter (user_id, slot, provider, model, cost, requests, input_tokens, output_tokens)
	SELECT user_id, (at - ((at % 900000000000) + 900000000000) % 900000000000) / 900000000000,
		provider, model, SUM(cost), COUNT(*), SUM(input_tokens), SUM(output_tokens)
	FROM usage GROUP BY 1, 2, 3, 4;

-- Usage that a Prune deleted before this version lives on only in the daily
-- rollups: what a day's rollup holds beyond its slots goes to the day's
-- first slot, so that whole UTC days sum as before.
INSERT INTO usage_quarter (user_id, slot, provider, model, cost, requests, input_tokens, output_tokens)
	SELECT d.user_id, d.day * 96, d.provider, d.model, d.cost - COALESCE(q.cost, 0),
		d.requests - COALESCE(q.requests, 0), d.input_tokens - COALESCE(q.input_tokens, 0),
		d.output_tokens - COALESCE(q.output_tokens, 0)
	FROM usage_daily AS d LEFT JOIN (
		SELECT user_id, (slot - ((slot % 96) + 96) % 96) / 96 AS day, provider, model,
			SUM(cost) AS cost, SUM(requests) AS requests, SUM(input_tokens) AS input_tokens,
			SUM(output_tokens) AS output_tokens
		FROM usage_quarter GROUP BY 1, 2, 3, 4) AS q USING (user_id, day, provider, model)
	WHERE d.requests > COALESCE(q.requests, 0)
	ON CONFLICT (user_id, slot, provider, model) DO UPDATE SET cost = cost + excluded.cost,
		requests = requests + excluded.requests, input_tokens = input_tokens + excluded.input_tokens,
		output_tokens = output_tokens + excluded.output_tokens;

CREATE TRIGGER usage_quarter_rollup AFTER INSERT ON usage BEGIN
	INSERT INTO usage_quarter (user_id, slot, provider, model, cost, requests, input_tokens, output_tokens)
	VALUES (NEW.user_id, (NEW.at - ((NEW.at % 900000000000) + 900000000000) % 900000000000) / 900000000000,
		NEW.provider, NEW.model, NEW.cost, 1, NEW.input_tokens, NEW.output_tokens)
	ON CONFLICT (user_id, slot, provider, model) DO UPDATE SET cost = cost + excluded.cost,
		requests = requests + 1, input_tokens = input_tokens + excluded.input_tokens,
		output_tokens = output_tokens + excluded.output_tokens;
END;
