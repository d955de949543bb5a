-- Signing keys kept in the database, so that every replica signs with the
-- same key and a rotation needs no restart (internal/keyring). Only used
-- when AUTHD_KEY_ENCRYPTION_KEY is set; with AUTHD_SIGNING_KEYS the keys
-- stay in files and this table stays empty.
--
-- The private key is sealed (AES-256-GCM, internal/keys seal.go) under the
-- key-encryption key, which never reaches the database: kek_id names it so a
-- replica with the wrong one says so. A key is published in the JWKS from
-- publish_at and signs from sign_at until superseded_at, when a newer key
-- begins to sign; each replica keeps it published for as long after that as
-- the tokens it signed live (its own configuration decides), then its row is
-- deleted: a retired private key is kept nowhere.
--
-- Expand only: a new table. The previous release never names it (it signs
-- with files only); this release refuses database keys on the schema before.
CREATE TABLE signing_keys (
    kid           text PRIMARY KEY,
    alg           text NOT NULL CHECK (alg IN ('EdDSA', 'ES256')),
    sealed        bytea NOT NULL,
    kek_id        text NOT NULL,
    created_at    timestamptz NOT NULL,
    publish_at    timestamptz NOT NULL,
    sign_at       timestamptz NOT NULL CHECK (sign_at >= publish_at),
    superseded_at timestamptz CHECK (superseded_at >= sign_at)
);
