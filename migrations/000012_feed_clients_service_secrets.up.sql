-- The verifier fleet: per service identity, its last feed poll as any
-- replica saw it. Each replica records polls in memory and flushes them here
-- every few seconds (internal/fleet), one row per identity, merging with
-- GREATEST so replicas flushing out of order never move a row backwards.
--
-- Expand only: two new tables. The previous release never names them (and
-- so ignores added service secrets: roll back only after removing them);
-- this release, on the schema before, keeps its fleet view in memory only
-- and refuses to add secrets.
CREATE TABLE feed_clients (
    user_id      uuid PRIMARY KEY,
    last_poll_at timestamptz NOT NULL,
    cursor       bigint NOT NULL,
    user_agent   text
);

-- A service identity's secrets beyond its password (users.password_hash,
-- the "primary" secret): adding one before removing the old one lets a
-- verifier's secret be rotated without an outage (internal/account,
-- secrets.go). At most one such row per identity is written; a login tries
-- the password first, then these. Hashes only, as password_hash.
CREATE TABLE service_secrets (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX service_secrets_user_id_idx ON service_secrets (user_id);
