-- Restores the index and the default fillfactor. Neither release names the
-- index; it is put back only so that down undoes up exactly.
CREATE INDEX IF NOT EXISTS sessions_user_id_idx ON sessions (user_id);
ALTER TABLE sessions RESET (fillfactor);
