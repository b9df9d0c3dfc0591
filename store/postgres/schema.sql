-- Schema version 1 of the budget PostgreSQL store. It runs with search_path
-- set to the store's schema (Options.Schema), so names are unqualified here.
--
-- Money is BIGINT nano-USD and times are BIGINT Unix nanoseconds: every SUM
-- is exact integer arithmetic (cast back to BIGINT, so an overflow is an
-- error, never a wrap), and times keep the nanoseconds that timestamptz
-- would round to microseconds. Keys are COLLATE "C": byte order, the order
-- the other stores list users in, whatever the database's locale.

CREATE TABLE users (
	user_id       text COLLATE "C" PRIMARY KEY,
	limit_nanos   bigint NOT NULL,
	period        text NOT NULL,
	custom_days   integer NOT NULL,
	custom_anchor bigint,
	timezone      text NOT NULL,
	enforce       boolean NOT NULL,
	yellow        text NOT NULL,
	orange        text NOT NULL,
	red           text NOT NULL,
	visible       boolean NOT NULL,
	can_modify    boolean NOT NULL,
	can_reset     boolean NOT NULL,
	admin_notes   text NOT NULL,
	reset_at      bigint,
	version       bigint NOT NULL,
	created_at    bigint NOT NULL,
	updated_at    bigint NOT NULL,
	-- The counters: the window last seen, the settled spend in it, the sum
	-- of live holds, the earliest expiry among them, the alerted levels.
	-- Every write transaction locks this row first (SELECT ... FOR UPDATE).
	win_start     bigint NOT NULL,
	win_end       bigint NOT NULL,
	spent         bigint NOT NULL,
	held          bigint NOT NULL,
	next_expiry   bigint,
	marked        smallint NOT NULL
) WITH (fillfactor = 70); -- room for HOT updates of the counters

-- holds and usage name their user without a foreign key: every write of
-- them first locks (or, on the fast path, updates) the user's row in the
-- same transaction, and users are never deleted, so the constraint would
-- only add a lookup to every insert.
CREATE TABLE holds (
	user_id text COLLATE "C" NOT NULL,
	hold_id text COLLATE "C" NOT NULL,
	amount  bigint NOT NULL,
	expires bigint NOT NULL,
	state   smallint NOT NULL, -- 0 pending, 1 settled, 2 released
	counted boolean NOT NULL,  -- true while the amount is in users.held
	PRIMARY KEY (user_id, hold_id)
) WITH (fillfactor = 80);

CREATE INDEX holds_live ON holds (user_id, expires) WHERE counted;

CREATE TABLE usage (
	seq           bigint GENERATED ALWAYS AS IDENTITY, -- insertion order
	user_id       text COLLATE "C" NOT NULL,
	id            text COLLATE "C" NOT NULL,
	hold_id       text NOT NULL,
	provider      text NOT NULL,
	model         text NOT NULL,
	input_tokens  bigint NOT NULL,
	output_tokens bigint NOT NULL,
	cost          bigint NOT NULL,
	at            bigint NOT NULL,
	PRIMARY KEY (user_id, id)
);

CREATE INDEX usage_user_at ON usage (user_id, at, seq);

-- Daily rollups (UTC days) of usage by provider and model, updated in the
-- same transaction as each usage row: breakdowns read whole days here.
CREATE TABLE usage_daily (
	user_id       text COLLATE "C" NOT NULL,
	day           bigint NOT NULL, -- Unix nanoseconds / 86400e9, floored
	provider      text COLLATE "C" NOT NULL,
	model         text COLLATE "C" NOT NULL,
	cost          bigint NOT NULL,
	requests      bigint NOT NULL,
	input_tokens  bigint NOT NULL,
	output_tokens bigint NOT NULL,
	PRIMARY KEY (user_id, day, provider, model)
);

CREATE TABLE audit (
	id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id        text COLLATE "C" NOT NULL, -- empty for defaults changes
	type           text NOT NULL,
	actor          text NOT NULL,
	actor_admin    boolean NOT NULL,
	reason         text NOT NULL,
	previous_limit bigint NOT NULL,
	new_limit      bigint NOT NULL,
	previous_spent bigint NOT NULL,
	period_start   bigint,
	period_end     bigint,
	before         jsonb, -- settings
	after          jsonb,
	at             bigint NOT NULL
);

CREATE INDEX audit_user ON audit (user_id, id);

-- The defaults for new regular users: one row, version 0 (and no plan)
-- until an admin stores some. UpdateDefaults locks it.
CREATE TABLE defaults (
	one        smallint PRIMARY KEY CHECK (one = 1),
	plan       jsonb,
	version    bigint NOT NULL,
	updated_at bigint NOT NULL
);

INSERT INTO defaults (one, plan, version, updated_at) VALUES (1, NULL, 0, 0);

-- expect_fresh fails the statement it is called from unless ok: the fast
-- path's writes (fast.go) call it to abort, with SQLSTATE BGT01, when the
-- user's counters are no longer those the store last saw.
CREATE FUNCTION expect_fresh(ok boolean) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	IF ok IS NOT TRUE THEN
		RAISE EXCEPTION 'budget: the counters changed since this store last saw them' USING ERRCODE = 'BGT01';
	END IF;
	RETURN true;
END $$;
