-- Failed logins on POST /token, counted per account (lower(username), whether
-- or not such a user exists) and per client IP, so the brute-force backoff
-- holds across restarts and replicas. The delay is derived from failures and
-- last_failed_at by internal/throttle; a row quiet for a day counts as zero.
CREATE TABLE login_failures (
    scope          text NOT NULL CHECK (scope IN ('account', 'ip')),
    key            text NOT NULL CHECK (length(key) <= 4096),
    failures       integer NOT NULL CHECK (failures > 0),
    last_failed_at timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);

-- Forgetting quiet rows ranges over last_failed_at.
CREATE INDEX login_failures_last_failed_at_idx ON login_failures (last_failed_at);

-- GET /users pages in lower(username) order through users_username_lower_key;
-- GET /sessions pages a user's sessions newest first.
CREATE INDEX sessions_user_id_created_at_idx ON sessions (user_id, created_at DESC, id DESC);
