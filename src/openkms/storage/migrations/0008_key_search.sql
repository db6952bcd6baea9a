-- The searchable attributes of a key beside its document (the console's key search, issue #20):
-- kept by insert_key and update_key, which every write path of a key goes through. Existing rows
-- are filled from their documents by the migration runner (sql.py, BACKFILLS), in the same
-- transaction. Aliases and tags already have their own tables.
ALTER TABLE kms_keys ADD COLUMN key_spec TEXT;
ALTER TABLE kms_keys ADD COLUMN key_usage TEXT;
ALTER TABLE kms_keys ADD COLUMN origin TEXT;
ALTER TABLE kms_keys ADD COLUMN multi_region INTEGER;
ALTER TABLE kms_keys ADD COLUMN description TEXT;
-- A search walks one account's keys in key id order; the filters and the text (key id,
-- description) read from this index alone, not from rows that hold the whole document.
-- PostgreSQL leaves the description out (postgres.py: a B-tree entry must stay under ~2.7 kB).
CREATE INDEX kms_keys_search ON kms_keys(account_id, region, key_id, state, key_spec, key_usage, origin, multi_region, description);
