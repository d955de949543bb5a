CREATE TABLE users (
    id            uuid PRIMARY KEY,
    username      text NOT NULL CHECK (length(username) BETWEEN 1 AND 256),
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('user', 'admin', 'service')),
    disabled_at   timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

-- Usernames are unique ignoring case; logins look them up through this index.
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));

CREATE TABLE sessions (
    id                      uuid PRIMARY KEY,              -- the sid claim
    user_id                 uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at              timestamptz NOT NULL,
    expires_at              timestamptz NOT NULL,          -- absolute end; refreshes never move it
    last_refreshed_at       timestamptz,
    refresh_token_hash      bytea UNIQUE,                  -- SHA-256; NULL for client_credentials sessions
    prev_refresh_token_hash bytea,                         -- the rotated-away token, for reuse detection
    last_jti                uuid NOT NULL,                 -- newest access token minted for the session
    access_exp              timestamptz NOT NULL,          -- and its expiry: what the feed reports
    revoked_at              timestamptz,
    revoked_reason          text CHECK (length(revoked_reason) <= 200),
    revoked_by_user_id      uuid REFERENCES users (id) ON DELETE SET NULL,
    user_agent              text,
    ip                      inet,
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL)),
    CHECK (access_exp <= expires_at)
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id);

-- Reuse detection looks a presented token up among rotated-away hashes.
CREATE INDEX sessions_prev_refresh_token_hash_idx ON sessions (prev_refresh_token_hash)
    WHERE prev_refresh_token_hash IS NOT NULL;

-- The revocation feed: delta polls range over revoked_at ...
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
-- ... and the full snapshot over revoked rows whose newest token is still alive.
CREATE INDEX sessions_revoked_access_exp_idx ON sessions (access_exp) WHERE revoked_at IS NOT NULL;

-- The pruning job deletes by absolute expiry.
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
