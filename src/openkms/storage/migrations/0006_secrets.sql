-- Secrets Manager: one row per secret (its metadata as JSON; name and scheduled deletion as
-- columns for the lookups and the scheduler), one row per secret version (the value encrypted
-- by the service through the KMS; never in clear).
CREATE TABLE secrets (
    arn        TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    region     TEXT NOT NULL,
    name       TEXT NOT NULL,
    deleted_at DOUBLE PRECISION,
    doc        TEXT NOT NULL,
    UNIQUE (account_id, region, name)
);
CREATE INDEX secrets_by_deletion ON secrets (deleted_at);
CREATE TABLE secret_versions (
    secret_arn TEXT NOT NULL REFERENCES secrets (arn) ON DELETE CASCADE,
    version_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    ciphertext BYTEA NOT NULL,
    doc        TEXT NOT NULL,
    PRIMARY KEY (secret_arn, version_id)
);
