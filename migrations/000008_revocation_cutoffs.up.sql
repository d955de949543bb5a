-- Feed v2: one entry for a mass revocation (internal/feed explains the rule).
--
-- A cutoff denies every token of its user (user_id set) or of every user
-- (user_id NULL: the issuer-wide cutoff of POST /sessions/revoke-all) whose
-- iat is before nbf. revoked_at is when it was decided, the time the feed's
-- cursor ranges over, exactly as sessions.revoked_at; exp is when the last
-- token it denies has expired, after which it is never served.
--
-- Expand only: a new table, a nullable column, a column with a constant
-- DEFAULT (no table rewrite) and a sequence. The previous release neither
-- reads nor writes any of them, and its INSERTs into users and sessions,
-- which do not name the new columns, still succeed. This release finds out
-- at start-up, and again every few seconds, whether the schema has them
-- (internal/postgres, Schema) and takes the per-session path until it does.
CREATE TABLE revocation_cutoffs (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id            uuid REFERENCES users (id) ON DELETE CASCADE,
    revoked_at         timestamptz NOT NULL,
    nbf                bigint NOT NULL,
    exp                timestamptz NOT NULL,
    reason             text NOT NULL CHECK (length(reason) <= 200),
    revoked_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    -- Issuer-wide only: when the job had marked every session it covers.
    swept_at           timestamptz
);

-- The feed's follower ranges over revoked_at, as over sessions.revoked_at.
CREATE INDEX revocation_cutoffs_revoked_at_idx ON revocation_cutoffs (revoked_at);
-- Every bearer check and mint reads the newest issuer-wide cutoff.
CREATE INDEX revocation_cutoffs_issuer_idx ON revocation_cutoffs (nbf DESC) WHERE user_id IS NULL;

-- The user's newest cutoff, where the bearer check and the mint path read it
-- without a second lookup: no token of the user may carry an iat before it.
ALTER TABLE users ADD COLUMN tokens_nbf bigint NOT NULL DEFAULT 0;

-- The cutoff a session was revoked under, if any: such a session is not
-- listed again in the v2 feed's sessions (its cutoff denies its tokens).
ALTER TABLE sessions ADD COLUMN revoked_cutoff_id bigint;

-- The iat of the session's newest access token: a cutoff covers the session
-- (and the v2 feed leaves it out) only if its nbf is later. NULL, for
-- sessions written before this step, is covered by no cutoff.
ALTER TABLE sessions ADD COLUMN last_iat bigint;

-- Sequence numbers of the messages on auth:revoked, so a verifier notices a
-- lost one. nextval is not transactional: a rolled-back revocation leaves a
-- gap that is never filled, which costs the verifiers one extra poll.
CREATE SEQUENCE auth_revoked_seq;
