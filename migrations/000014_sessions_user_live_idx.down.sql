DROP INDEX CONCURRENTLY IF EXISTS sessions_user_live_idx;
