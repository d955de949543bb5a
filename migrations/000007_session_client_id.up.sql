-- The OAuth client a session was issued to: the client_id its password grant
-- named (authd when it named none) or its service identity's name
-- (client_credentials). Every access token of the session carries it as
-- client_id (RFC 9068), and a refresh that names another is refused.
--
-- Expand only. The column is nullable, so the previous release's INSERTs,
-- which do not name it, still succeed; their sessions record no client
-- (internal/session reads that as the service identity's name or authd, and
-- a user session's first refresh records the client it names). This release,
-- on the schema before, reads the column through to_jsonb and writes it only
-- where it exists (internal/postgres/sessions.go). The CHECK is NOT VALID:
-- every existing row is NULL, so nothing needs scanning under the lock.
ALTER TABLE sessions
    ADD COLUMN client_id text,
    ADD CONSTRAINT sessions_client_id_check CHECK (octet_length(client_id) BETWEEN 1 AND 256) NOT VALID;
