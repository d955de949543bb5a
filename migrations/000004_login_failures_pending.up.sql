-- Attempts in flight are kept apart from failures: a claim (internal/throttle
-- Begin) adds one to pending before the password is checked, and settling it
-- takes it back, adding a failure only for a wrong password. pending_at is
-- the time of the newest claim; pending older than the throttle's PendingTTL
-- no longer counts, so a crashed process cannot leave a key blocked. A row
-- may now exist with no failures (only attempts in flight, or after a
-- success on the address); last_failed_at is then the time it was created.
ALTER TABLE login_failures
    ADD COLUMN pending integer NOT NULL DEFAULT 0 CHECK (pending >= 0),
    ADD COLUMN pending_at timestamptz,
    DROP CONSTRAINT login_failures_failures_check,
    ADD CONSTRAINT login_failures_failures_check CHECK (failures >= 0);
