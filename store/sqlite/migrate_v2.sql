-- Schema version 2 of the budget SQLite store: templates, and audit entries
-- that say which bulk change and which template they belong to. Entries
-- written before it keep both empty.

ALTER TABLE audit ADD COLUMN bulk_id TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN template TEXT NOT NULL DEFAULT '';

-- The audit log filtered by type alone, newest first.
CREATE INDEX audit_type ON audit (type, id);

-- Named plans, stored like the defaults. Names compare as BINARY: byte
-- order, the order Templates lists them in.
CREATE TABLE templates (
	name       TEXT PRIMARY KEY,
	plan       TEXT NOT NULL, -- JSON
	version    INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;
