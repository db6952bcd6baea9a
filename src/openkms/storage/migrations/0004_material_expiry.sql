-- Imported key material that expires: the scheduler finds it by this column.
ALTER TABLE kms_keys ADD COLUMN valid_to DOUBLE PRECISION;
CREATE INDEX kms_keys_valid_to ON kms_keys(valid_to);
