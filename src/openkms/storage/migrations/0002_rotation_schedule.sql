-- Automatic rotation: the scheduler finds due keys by this column.
ALTER TABLE kms_keys ADD COLUMN next_rotation_at DOUBLE PRECISION;
CREATE INDEX kms_keys_next_rotation ON kms_keys(next_rotation_at);
