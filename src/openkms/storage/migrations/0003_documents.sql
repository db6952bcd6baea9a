-- A small document store for subsystems with many small record kinds (IAM users, groups, roles,
-- policies, STS sessions, grants ...): one row per (kind, scope, name), JSON text.
CREATE TABLE documents (
    kind       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    name       TEXT NOT NULL,
    doc        TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (kind, scope, name)
);
