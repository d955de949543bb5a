-- Bumped whenever a password is set or reset, but not when a login merely
-- re-hashes the same password with newer parameters. A login inserts its
-- session only if the version it verified is still current, which closes the
-- race with a concurrent reset without refusing logins that race a rehash.
ALTER TABLE users ADD COLUMN credentials_version bigint NOT NULL DEFAULT 1;
