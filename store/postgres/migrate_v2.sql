-- Schema version 2 of the budget PostgreSQL store: templates, and audit
-- entries that say which bulk change and which template they belong to.
-- Entries written before it keep both empty (a constant default: adding
-- the columns rewrites nothing).

ALTER TABLE audit ADD COLUMN bulk_id text NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN template text NOT NULL DEFAULT '';

-- The audit log filtered by type alone, newest first.
CREATE INDEX audit_type ON audit (type, id);

-- Named plans, stored like the defaults. Names are COLLATE "C": byte
-- order, the order Templates lists them in. SaveTemplate and
-- DeleteTemplate write only a row still at the version they expect.
CREATE TABLE templates (
	name       text COLLATE "C" PRIMARY KEY,
	plan       jsonb NOT NULL,
	version    bigint NOT NULL,
	updated_at bigint NOT NULL
);
