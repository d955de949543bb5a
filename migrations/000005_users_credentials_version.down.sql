ALTER TABLE users DROP COLUMN IF EXISTS credentials_version;
