-- Undoes 000008. Cutoffs recorded meanwhile are lost; the sessions they
-- revoked stay revoked (each is an ordinary revoked row again), so the v1 feed
-- and the previous release still deny every one of them.
DROP SEQUENCE IF EXISTS auth_revoked_seq;
ALTER TABLE sessions DROP COLUMN IF EXISTS last_iat;
ALTER TABLE sessions DROP COLUMN IF EXISTS revoked_cutoff_id;
ALTER TABLE users DROP COLUMN IF EXISTS tokens_nbf;
DROP TABLE IF EXISTS revocation_cutoffs;
