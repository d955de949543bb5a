-- Every refresh token a session has rotated away, older than the one kept in
-- sessions.prev_refresh_token_hash, so a stolen token replayed any number of
-- rotations later is still recognised as reuse and revokes the session.
-- Rows die with their session.
CREATE TABLE refresh_token_history (
    hash       bytea PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE
);

CREATE INDEX refresh_token_history_session_id_idx ON refresh_token_history (session_id);
