-- Drops the column with its CHECK. The previous release never names it.
ALTER TABLE sessions DROP COLUMN IF EXISTS client_id;
