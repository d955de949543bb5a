DROP INDEX IF EXISTS sessions_user_id_created_at_idx;
DROP TABLE IF EXISTS login_failures;
