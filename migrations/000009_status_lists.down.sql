-- Drops what the up step added. The previous release never names any of it.
ALTER TABLE sessions
    DROP COLUMN IF EXISTS status_idx,
    DROP COLUMN IF EXISTS status_list_id;
DROP TABLE IF EXISTS status_lists;
