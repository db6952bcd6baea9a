-- Secrets Manager automatic rotation: the scheduler finds due secrets by this column (the
-- opening of the next rotation window; NULL while rotation is off). The secret's doc keeps the
-- same value; this copy is only for the lookup.
ALTER TABLE secrets ADD COLUMN next_rotation_at DOUBLE PRECISION;
CREATE INDEX secrets_by_rotation ON secrets (next_rotation_at);
