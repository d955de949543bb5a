-- Migrating down destroys every database signing key: switch authd to
-- AUTHD_SIGNING_KEYS files first (deploy/README.md, "Signing keys"), or no
-- access token signed by a database key verifies any more.
DROP TABLE IF EXISTS signing_keys;
