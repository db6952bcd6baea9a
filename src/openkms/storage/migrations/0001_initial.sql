-- openkms schema, version 1. Portable SQL: SQLite and PostgreSQL run the same statements.
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE access_keys (
    access_key_id  TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts(account_id),
    principal_arn  TEXT NOT NULL,
    wrapped_secret BYTEA NOT NULL,
    status         TEXT NOT NULL,
    created_at     DOUBLE PRECISION NOT NULL
);
CREATE INDEX access_keys_account ON access_keys(account_id);

CREATE TABLE kms_keys (
    arn         TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL,
    region      TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    state       TEXT NOT NULL,
    deletion_at DOUBLE PRECISION,
    doc         TEXT NOT NULL
);
CREATE UNIQUE INDEX kms_keys_scope ON kms_keys(account_id, region, key_id);
CREATE INDEX kms_keys_deletion ON kms_keys(deletion_at);

CREATE TABLE key_materials (
    key_arn     TEXT NOT NULL REFERENCES kms_keys(arn) ON DELETE CASCADE,
    material_id TEXT NOT NULL,
    wrapped     BYTEA NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    state       TEXT NOT NULL,
    doc         TEXT NOT NULL,
    PRIMARY KEY (key_arn, material_id)
);

CREATE TABLE aliases (
    account_id TEXT NOT NULL,
    region     TEXT NOT NULL,
    alias_name TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, region, alias_name)
);
CREATE INDEX aliases_key ON aliases(account_id, region, key_id);

CREATE TABLE key_tags (
    key_arn   TEXT NOT NULL REFERENCES kms_keys(arn) ON DELETE CASCADE,
    tag_key   TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (key_arn, tag_key)
);
