-- The verifier fleet: per service identity, its last feed poll as any
-- replica saw it. Each replica records polls in memory and flushes them here
-- every few seconds (internal/fleet), one row per identity, merging with
-- GREATEST so replicas flushing out of order never move a row backwards.
--
-- Expand only: a new table. The previous release never names it; this
-- release, on the schema before, keeps its fleet view in memory only.
CREATE TABLE feed_clients (
    user_id      uuid PRIMARY KEY,
    last_poll_at timestamptz NOT NULL,
    cursor       bigint NOT NULL,
    user_agent   text
);
