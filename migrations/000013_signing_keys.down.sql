-- Refused while database signing keys exist: dropping them would make every
-- access token they signed unverifiable at once. Switch authd to
-- AUTHD_SIGNING_KEYS files first (deploy/README.md, "Signing keys"), let the
-- database keys' tokens expire, then DELETE FROM signing_keys by hand.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM signing_keys) THEN
        RAISE EXCEPTION 'signing_keys holds database signing keys; switch to AUTHD_SIGNING_KEYS files and delete them first (deploy/README.md)';
    END IF;
END
$$;
DROP TABLE signing_keys;
