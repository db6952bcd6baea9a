-- A portable insertion order for a key's material versions (PostgreSQL has no rowid): each new
-- version of a key is numbered one past the highest so far; list_materials orders by
-- (created_at, seq). Existing versions are numbered by (created_at, material_id).
ALTER TABLE key_materials ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
UPDATE key_materials SET seq = (
    SELECT COUNT(*) FROM key_materials AS earlier
    WHERE earlier.key_arn = key_materials.key_arn
      AND (earlier.created_at < key_materials.created_at
           OR (earlier.created_at = key_materials.created_at
               AND earlier.material_id <= key_materials.material_id))
);
