-- Failures are also counted per account and client address (scope
-- 'account_ip', key lower(account) || '|' || address; an address never
-- contains '|'), so a guesser on one address reaches the backoff of that
-- address long before the account-wide one that would refuse the owner
-- everywhere (internal/throttle). Expand only: the CHECK is widened, so the
-- previous release, which writes 'account' and 'ip' rows only, runs on it
-- unchanged; this release, on the schema before, sees its 'account_ip' writes
-- refused by the old CHECK and counts without them (internal/throttle).
ALTER TABLE login_failures
    DROP CONSTRAINT login_failures_scope_check,
    ADD CONSTRAINT login_failures_scope_check CHECK (scope IN ('account', 'account_ip', 'ip'));
