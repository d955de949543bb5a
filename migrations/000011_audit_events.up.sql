-- The audit log: one row per security-relevant change, written in the
-- transaction of the change itself (internal/postgres/audit.go), kept for
-- AUTHD_AUDIT_RETENTION independently of session pruning. No foreign keys:
-- a row outlives the session it names, and must not stop anything being
-- deleted. No secret, token or hash is ever written to it.
--
-- Append-only: a trigger refuses every UPDATE; rows leave only through the
-- retention job's DELETE.
--
-- Expand only: a new table. The previous release never names it; this
-- release, on the schema before, writes no audit rows (RefreshSchema).
CREATE TABLE audit_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL,
    type            text NOT NULL,
    actor           text NOT NULL,
    subject_user_id uuid,
    session_id      uuid,
    ip              inet,
    user_agent      text,
    detail          jsonb NOT NULL DEFAULT '{}'
);

-- The listing's keyset (newest first) and the retention job's range.
CREATE INDEX audit_events_at_idx ON audit_events (at, id);
CREATE INDEX audit_events_subject_idx ON audit_events (subject_user_id, at, id) WHERE subject_user_id IS NOT NULL;
CREATE INDEX audit_events_actor_idx ON audit_events (actor, at, id);
CREATE INDEX audit_events_session_idx ON audit_events (session_id, at, id) WHERE session_id IS NOT NULL;

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END $$;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
