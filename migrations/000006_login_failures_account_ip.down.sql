-- The lock comes first, so that no 'account_ip' row written by a replica of
-- this release after the DELETE can make the narrower CHECK fail.
LOCK TABLE login_failures IN ACCESS EXCLUSIVE MODE;
DELETE FROM login_failures WHERE scope = 'account_ip';
ALTER TABLE login_failures
    DROP CONSTRAINT login_failures_scope_check,
    ADD CONSTRAINT login_failures_scope_check CHECK (scope IN ('account', 'ip'));
