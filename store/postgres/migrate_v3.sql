-- Schema version 3 of the budget PostgreSQL store: budgets at every scope.
--
-- A team's or an org's budget is a row of users under its key (Scope.Key:
-- "\x1f" + kind + ":" + id, which sorts before every user ID), with the
-- settings and counters a user's row has, and its holds, usage and rollups
-- under that key. A model cap's counters are a row under its key
-- (Scope.CapKey: the holder's key, "\x1f", the pattern) marked cap, with
-- placeholder settings no call reads: it is created on first use and never
-- listed. Rows written before this version are users, with no teams, no
-- org and no caps (constant defaults: adding the columns rewrites nothing).

ALTER TABLE users ADD COLUMN teams text[] NOT NULL DEFAULT '{}'; -- sorted
ALTER TABLE users ADD COLUMN org text NOT NULL DEFAULT '';
-- Model caps, in order: cap_patterns[i] is capped at cap_limits[i] nano-USD.
ALTER TABLE users ADD COLUMN cap_patterns text[] NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN cap_limits bigint[] NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN cap boolean NOT NULL DEFAULT false;
