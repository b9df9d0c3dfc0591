-- A schema at version 2, as commit 2f99ca0 of this package (the last
-- before schema version 3) made it: pg_dump --no-owner --no-privileges
-- --inserts of the schema budget_v2_fixture after the program in
-- v2fixture/main.go ran on it at that commit (see there). TestMigrateV2
-- loads it under another name and opens it.
--
--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: budget_v2_fixture; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA budget_v2_fixture;


--
-- Name: expect_fresh(boolean); Type: FUNCTION; Schema: budget_v2_fixture; Owner: -
--

CREATE FUNCTION budget_v2_fixture.expect_fresh(ok boolean) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
BEGIN
	IF ok IS NOT TRUE THEN
		RAISE EXCEPTION 'budget: the counters changed since this store last saw them' USING ERRCODE = 'BGT01';
	END IF;
	RETURN true;
END $$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: audit; Type: TABLE; Schema: budget_v2_fixture; Owner: -
--

CREATE TABLE budget_v2_fixture.audit (
    id bigint NOT NULL,
    user_id text NOT NULL COLLATE pg_catalog."C",
    type text NOT NULL,
    actor text NOT NULL,
    actor_admin boolean NOT NULL,
    reason text NOT NULL,
    previous_limit bigint NOT NULL,
    new_limit bigint NOT NULL,
    previous_spent bigint NOT NULL,
    period_start bigint,
    period_end bigint,
    before jsonb,
    after jsonb,
    at bigint NOT NULL,
    bulk_id text DEFAULT ''::text NOT NULL,
    template text DEFAULT ''::text NOT NULL
);


--
-- Name: audit_id_seq; Type: SEQUENCE; Schema: budget_v2_fixture; Owner: -
--

ALTER TABLE budget_v2_fixture.audit ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME budget_v2_fixture.audit_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: defaults; Type: TABLE; Schema: budget_v2_fixture; Owner: -
--

CREATE TABLE budget_v2_fixture.defaults (
    one smallint NOT NULL,
    plan jsonb,
    version bigint NOT NULL,
    updated_at bigint NOT NULL,
    CONSTRAINT defaults_one_check CHECK ((one = 1))
);


--
-- Name: holds; Type: TABLE; Schema: budget_v2_fixture; Owner: -
--

CREATE TABLE budget_v2_fixture.holds (
    user_id text NOT NULL COLLATE pg_catalog."C",
    hold_id text NOT NULL COLLATE pg_catalog."C",
    amount bigint NOT NULL,
    expires bigint NOT NULL,
    state smallint NOT NULL,
    counted boolean NOT NULL
)
WITH (fillfactor='80');


--
-- Name: schema_version; Type: TABLE; Schema: budget_v2_fixture; Owner: -
--

CREATE TABLE budget_v2_fixture.schema_version (
    version integer NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: templates; Type: TABLE; Schema: budget_v2_fixture; Owner: -
--

CREATE TABLE budget_v2_fixture.templates (
    name text NOT NULL COLLATE pg_catalog."C",
    plan jsonb NOT NULL,
    version bigint NOT NULL,
    updated_at bigint NOT NULL
);


--
-- Name: usage; Type: TABLE; Schema: budget_v2_fixture; Owner: -
--

CREATE TABLE budget_v2_fixture.usage (
    seq bigint NOT NULL,
    user_id text NOT NULL COLLATE pg_catalog."C",
    id text NOT NULL COLLATE pg_catalog."C",
    hold_id text NOT NULL,
    provider text NOT NULL,
    model text NOT NULL,
    input_tokens bigint NOT NULL,
    output_tokens bigint NOT NULL,
    cost bigint NOT NULL,
    at bigint NOT NULL
);


--
-- Name: usage_daily; Type: TABLE; Schema: budget_v2_fixture; Owner: -
--

CREATE TABLE budget_v2_fixture.usage_daily (
    user_id text NOT NULL COLLATE pg_catalog."C",
    day bigint NOT NULL,
    provider text NOT NULL COLLATE pg_catalog."C",
    model text NOT NULL COLLATE pg_catalog."C",
    cost bigint NOT NULL,
    requests bigint NOT NULL,
    input_tokens bigint NOT NULL,
    output_tokens bigint NOT NULL
);


--
-- Name: usage_seq_seq; Type: SEQUENCE; Schema: budget_v2_fixture; Owner: -
--

ALTER TABLE budget_v2_fixture.usage ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME budget_v2_fixture.usage_seq_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: users; Type: TABLE; Schema: budget_v2_fixture; Owner: -
--

CREATE TABLE budget_v2_fixture.users (
    user_id text NOT NULL COLLATE pg_catalog."C",
    limit_nanos bigint NOT NULL,
    period text NOT NULL,
    custom_days integer NOT NULL,
    custom_anchor bigint,
    timezone text NOT NULL,
    enforce boolean NOT NULL,
    yellow text NOT NULL,
    orange text NOT NULL,
    red text NOT NULL,
    visible boolean NOT NULL,
    can_modify boolean NOT NULL,
    can_reset boolean NOT NULL,
    admin_notes text NOT NULL,
    reset_at bigint,
    version bigint NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    win_start bigint NOT NULL,
    win_end bigint NOT NULL,
    spent bigint NOT NULL,
    held bigint NOT NULL,
    next_expiry bigint,
    marked smallint NOT NULL
)
WITH (fillfactor='70');


--
-- Data for Name: audit; Type: TABLE DATA; Schema: budget_v2_fixture; Owner: -
--

INSERT INTO budget_v2_fixture.audit OVERRIDING SYSTEM VALUE VALUES (1, '', 'defaults', 'root', true, '', 30000000000, 20000000000, 0, NULL, NULL, '{"Limit": "30", "Period": "monthly", "UserID": "", "Enforce": true, "ResetAt": "0001-01-01T00:00:00Z", "Version": 1, "Visible": true, "CanReset": false, "Timezone": "", "CanModify": false, "CreatedAt": "0001-01-01T00:00:00Z", "PeriodEnd": "0001-01-01T00:00:00Z", "UpdatedAt": "0001-01-01T00:00:00Z", "AdminNotes": "", "CustomDays": 0, "Thresholds": {"Red": "100", "Orange": "90", "Yellow": "75"}, "PeriodStart": "0001-01-01T00:00:00Z", "CustomAnchor": "0001-01-01T00:00:00Z"}', '{"Limit": "20", "Period": "monthly", "UserID": "", "Enforce": true, "ResetAt": "0001-01-01T00:00:00Z", "Version": 2, "Visible": true, "CanReset": false, "Timezone": "", "CanModify": false, "CreatedAt": "0001-01-01T00:00:00Z", "PeriodEnd": "0001-01-01T00:00:00Z", "UpdatedAt": "0001-01-01T00:00:00Z", "AdminNotes": "", "CustomDays": 0, "Thresholds": {"Red": "100", "Orange": "90", "Yellow": "75"}, "PeriodStart": "0001-01-01T00:00:00Z", "CustomAnchor": "0001-01-01T00:00:00Z"}', 1773144000000000000, '', '');
INSERT INTO budget_v2_fixture.audit OVERRIDING SYSTEM VALUE VALUES (2, '', 'template', 'root', true, '', 0, 5000000000, 0, NULL, NULL, NULL, '{"Limit": "5", "Period": "monthly", "UserID": "", "Enforce": true, "ResetAt": "0001-01-01T00:00:00Z", "Version": 1, "Visible": true, "CanReset": false, "Timezone": "", "CanModify": false, "CreatedAt": "0001-01-01T00:00:00Z", "PeriodEnd": "0001-01-01T00:00:00Z", "UpdatedAt": "0001-01-01T00:00:00Z", "AdminNotes": "", "CustomDays": 0, "Thresholds": {"Red": "100", "Orange": "90", "Yellow": "75"}, "PeriodStart": "0001-01-01T00:00:00Z", "CustomAnchor": "0001-01-01T00:00:00Z"}', 1773144000000000000, '', 'intern');
INSERT INTO budget_v2_fixture.audit OVERRIDING SYSTEM VALUE VALUES (3, 'alice', 'settings', 'root', true, '', 20000000000, 50000000000, 0, NULL, NULL, '{"Limit": "20", "Period": "monthly", "UserID": "alice", "Enforce": true, "ResetAt": "0001-01-01T00:00:00Z", "Version": 1, "Visible": true, "CanReset": false, "Timezone": "", "CanModify": false, "CreatedAt": "2026-03-10T12:00:00Z", "PeriodEnd": "0001-01-01T00:00:00Z", "UpdatedAt": "2026-03-10T12:00:00Z", "AdminNotes": "", "CustomDays": 0, "Thresholds": {"Red": "100", "Orange": "90", "Yellow": "75"}, "PeriodStart": "0001-01-01T00:00:00Z", "CustomAnchor": "0001-01-01T00:00:00Z"}', '{"Limit": "50", "Period": "monthly", "UserID": "alice", "Enforce": true, "ResetAt": "0001-01-01T00:00:00Z", "Version": 2, "Visible": true, "CanReset": false, "Timezone": "", "CanModify": false, "CreatedAt": "2026-03-10T12:00:00Z", "PeriodEnd": "0001-01-01T00:00:00Z", "UpdatedAt": "2026-03-10T12:00:00Z", "AdminNotes": "research team", "CustomDays": 0, "Thresholds": {"Red": "100", "Orange": "90", "Yellow": "75"}, "PeriodStart": "0001-01-01T00:00:00Z", "CustomAnchor": "0001-01-01T00:00:00Z"}', 1773144000000000000, '', '');
INSERT INTO budget_v2_fixture.audit OVERRIDING SYSTEM VALUE VALUES (4, 'bob', 'settings', 'root', true, '', 20000000000, 3000000000, 0, NULL, NULL, '{"Limit": "20", "Period": "monthly", "UserID": "bob", "Enforce": true, "ResetAt": "0001-01-01T00:00:00Z", "Version": 1, "Visible": true, "CanReset": false, "Timezone": "", "CanModify": false, "CreatedAt": "2026-03-10T12:02:00Z", "PeriodEnd": "0001-01-01T00:00:00Z", "UpdatedAt": "2026-03-10T12:02:00Z", "AdminNotes": "", "CustomDays": 0, "Thresholds": {"Red": "100", "Orange": "90", "Yellow": "75"}, "PeriodStart": "0001-01-01T00:00:00Z", "CustomAnchor": "0001-01-01T00:00:00Z"}', '{"Limit": "3", "Period": "daily", "UserID": "bob", "Enforce": true, "ResetAt": "0001-01-01T00:00:00Z", "Version": 2, "Visible": true, "CanReset": false, "Timezone": "Europe/Paris", "CanModify": false, "CreatedAt": "2026-03-10T12:02:00Z", "PeriodEnd": "0001-01-01T00:00:00Z", "UpdatedAt": "2026-03-10T12:02:00Z", "AdminNotes": "", "CustomDays": 0, "Thresholds": {"Red": "100", "Orange": "90", "Yellow": "75"}, "PeriodStart": "0001-01-01T00:00:00Z", "CustomAnchor": "0001-01-01T00:00:00Z"}', 1773144120000000000, '', '');
INSERT INTO budget_v2_fixture.audit OVERRIDING SYSTEM VALUE VALUES (5, 'bob', 'automatic', 'system', false, 'period ended', 3000000000, 3000000000, 500000000, 1773097200000000000, 1773183600000000000, NULL, NULL, 1773230520000000000, '', '');
INSERT INTO budget_v2_fixture.audit OVERRIDING SYSTEM VALUE VALUES (6, 'bob', 'manual', 'root', true, 'new project', 3000000000, 3000000000, 250000000, 1773183600000000000, 1773230520000000000, NULL, NULL, 1773230520000000000, '', '');


--
-- Data for Name: defaults; Type: TABLE DATA; Schema: budget_v2_fixture; Owner: -
--

INSERT INTO budget_v2_fixture.defaults VALUES (1, '{"Limit": "20", "Period": "monthly", "Enforce": true, "Visible": true, "CanReset": false, "Timezone": "", "CanModify": false, "CustomDays": 0, "Thresholds": {"Red": "100", "Orange": "90", "Yellow": "75"}, "CustomAnchor": "0001-01-01T00:00:00Z"}', 2, 1773144000000000000);


--
-- Data for Name: holds; Type: TABLE DATA; Schema: budget_v2_fixture; Owner: -
--

INSERT INTO budget_v2_fixture.holds VALUES ('alice', 'h-8e2748d2ec91-1', 2000000000, 1773147660000000000, 1, false);
INSERT INTO budget_v2_fixture.holds VALUES ('alice', 'h-8e2748d2ec91-2', 3000000000, 1773147720000000000, 0, true);


--
-- Data for Name: schema_version; Type: TABLE DATA; Schema: budget_v2_fixture; Owner: -
--

INSERT INTO budget_v2_fixture.schema_version VALUES (1, '2026-12-02 19:44:40.610021+00');
INSERT INTO budget_v2_fixture.schema_version VALUES (2, '2026-12-02 19:44:40.610021+00');


--
-- Data for Name: templates; Type: TABLE DATA; Schema: budget_v2_fixture; Owner: -
--

INSERT INTO budget_v2_fixture.templates VALUES ('intern', '{"Limit": "5", "Period": "monthly", "Enforce": true, "Visible": true, "CanReset": false, "Timezone": "", "CanModify": false, "CustomDays": 0, "Thresholds": {"Red": "100", "Orange": "90", "Yellow": "75"}, "CustomAnchor": "0001-01-01T00:00:00Z"}', 1, 1773144000000000000);


--
-- Data for Name: usage; Type: TABLE DATA; Schema: budget_v2_fixture; Owner: -
--

INSERT INTO budget_v2_fixture.usage OVERRIDING SYSTEM VALUE VALUES (1, 'alice', 'u1', '', 'openai', 'gpt-4o', 1000, 200, 1250000000, 1773144000000000000);
INSERT INTO budget_v2_fixture.usage OVERRIDING SYSTEM VALUE VALUES (2, 'alice', 'u2', 'h-8e2748d2ec91-1', 'anthropic', 'claude-opus-4-5', 10, 20, 1500000001, 1773144060000000000);
INSERT INTO budget_v2_fixture.usage OVERRIDING SYSTEM VALUE VALUES (3, 'bob', 'b1', '', 'openai', 'gpt-4o-mini', 0, 0, 500000000, 1773144120000000000);
INSERT INTO budget_v2_fixture.usage OVERRIDING SYSTEM VALUE VALUES (4, 'bob', 'b2', '', 'openai', 'gpt-4o-mini', 0, 0, 250000000, 1773230520000000000);


--
-- Data for Name: usage_daily; Type: TABLE DATA; Schema: budget_v2_fixture; Owner: -
--

INSERT INTO budget_v2_fixture.usage_daily VALUES ('alice', 20522, 'openai', 'gpt-4o', 1250000000, 1, 1000, 200);
INSERT INTO budget_v2_fixture.usage_daily VALUES ('alice', 20522, 'anthropic', 'claude-opus-4-5', 1500000001, 1, 10, 20);
INSERT INTO budget_v2_fixture.usage_daily VALUES ('bob', 20522, 'openai', 'gpt-4o-mini', 500000000, 1, 0, 0);
INSERT INTO budget_v2_fixture.usage_daily VALUES ('bob', 20523, 'openai', 'gpt-4o-mini', 250000000, 1, 0, 0);


--
-- Data for Name: users; Type: TABLE DATA; Schema: budget_v2_fixture; Owner: -
--

INSERT INTO budget_v2_fixture.users VALUES ('alice', 50000000000, 'monthly', 0, NULL, '', true, '75', '90', '100', true, false, false, 'research team', NULL, 2, 1773144000000000000, 1773144000000000000, 1772323200000000000, 1775001600000000000, 2750000001, 3000000000, 1773147660000000000, 0);
INSERT INTO budget_v2_fixture.users VALUES ('bob', 3000000000, 'daily', 0, NULL, 'Europe/Paris', true, '75', '90', '100', true, false, false, '', 1773230520000000000, 3, 1773144120000000000, 1773144120000000000, 1773230520000000000, 1773270000000000000, 250000000, 0, NULL, 0);


--
-- Name: audit_id_seq; Type: SEQUENCE SET; Schema: budget_v2_fixture; Owner: -
--

SELECT pg_catalog.setval('budget_v2_fixture.audit_id_seq', 6, true);


--
-- Name: usage_seq_seq; Type: SEQUENCE SET; Schema: budget_v2_fixture; Owner: -
--

SELECT pg_catalog.setval('budget_v2_fixture.usage_seq_seq', 4, true);


--
-- Name: audit audit_pkey; Type: CONSTRAINT; Schema: budget_v2_fixture; Owner: -
--

ALTER TABLE ONLY budget_v2_fixture.audit
    ADD CONSTRAINT audit_pkey PRIMARY KEY (id);


--
-- Name: defaults defaults_pkey; Type: CONSTRAINT; Schema: budget_v2_fixture; Owner: -
--

ALTER TABLE ONLY budget_v2_fixture.defaults
    ADD CONSTRAINT defaults_pkey PRIMARY KEY (one);


--
-- Name: holds holds_pkey; Type: CONSTRAINT; Schema: budget_v2_fixture; Owner: -
--

ALTER TABLE ONLY budget_v2_fixture.holds
    ADD CONSTRAINT holds_pkey PRIMARY KEY (user_id, hold_id);


--
-- Name: schema_version schema_version_pkey; Type: CONSTRAINT; Schema: budget_v2_fixture; Owner: -
--

ALTER TABLE ONLY budget_v2_fixture.schema_version
    ADD CONSTRAINT schema_version_pkey PRIMARY KEY (version);


--
-- Name: templates templates_pkey; Type: CONSTRAINT; Schema: budget_v2_fixture; Owner: -
--

ALTER TABLE ONLY budget_v2_fixture.templates
    ADD CONSTRAINT templates_pkey PRIMARY KEY (name);


--
-- Name: usage_daily usage_daily_pkey; Type: CONSTRAINT; Schema: budget_v2_fixture; Owner: -
--

ALTER TABLE ONLY budget_v2_fixture.usage_daily
    ADD CONSTRAINT usage_daily_pkey PRIMARY KEY (user_id, day, provider, model);


--
-- Name: usage usage_pkey; Type: CONSTRAINT; Schema: budget_v2_fixture; Owner: -
--

ALTER TABLE ONLY budget_v2_fixture.usage
    ADD CONSTRAINT usage_pkey PRIMARY KEY (user_id, id);


--
-- Name: users users_pkey; Type: CONSTRAINT; Schema: budget_v2_fixture; Owner: -
--

ALTER TABLE ONLY budget_v2_fixture.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (user_id);


--
-- Name: audit_type; Type: INDEX; Schema: budget_v2_fixture; Owner: -
--

CREATE INDEX audit_type ON budget_v2_fixture.audit USING btree (type, id);


--
-- Name: audit_user; Type: INDEX; Schema: budget_v2_fixture; Owner: -
--

CREATE INDEX audit_user ON budget_v2_fixture.audit USING btree (user_id, id);


--
-- Name: holds_live; Type: INDEX; Schema: budget_v2_fixture; Owner: -
--

CREATE INDEX holds_live ON budget_v2_fixture.holds USING btree (user_id, expires) WHERE counted;


--
-- Name: usage_user_at; Type: INDEX; Schema: budget_v2_fixture; Owner: -
--

CREATE INDEX usage_user_at ON budget_v2_fixture.usage USING btree (user_id, at, seq);


--
-- PostgreSQL database dump complete
--


