-- name: EnsureAccount :exec
-- EnsureAccount creates the account's row unless it exists; every failure
-- of a new account counts.
INSERT INTO accounts (tenant_id, account_key, failures_reset_at, updated_at)
VALUES (@tenant_id, @account_key, '1970-01-01 00:00:00+00', @now)
ON CONFLICT (tenant_id, account_key) DO NOTHING;

-- name: LockAccount :one
-- LockAccount reads the account and locks its row until the transaction ends.
SELECT user_id, locked_until, failures_reset_at
FROM accounts
WHERE tenant_id = @tenant_id AND account_key = @account_key
FOR UPDATE;

-- name: GetAccount :one
SELECT user_id, locked_until, failures_reset_at
FROM accounts
WHERE tenant_id = @tenant_id AND account_key = @account_key;

-- name: SetAccountLock :exec
-- SetAccountLock locks the account until locked_until (NULL: unlocks it)
-- and stops counting the failures so far.
UPDATE accounts
SET locked_until = @locked_until, failures_reset_at = @now, updated_at = @now
WHERE tenant_id = @tenant_id AND account_key = @account_key;

-- name: ResetAccountFailures :exec
UPDATE accounts
SET failures_reset_at = @now, updated_at = @now
WHERE tenant_id = @tenant_id AND account_key = @account_key;

-- name: TouchAccount :exec
-- TouchAccount records the account's user, when known, and its last use.
UPDATE accounts
SET user_id = COALESCE(sqlc.narg(user_id)::uuid, user_id), updated_at = @now
WHERE tenant_id = @tenant_id AND account_key = @account_key;

-- name: DeleteIdleAccounts :execrows
-- DeleteIdleAccounts removes accounts unused since before and not locked.
DELETE FROM accounts
WHERE updated_at < @before AND (locked_until IS NULL OR locked_until < @now::timestamptz);
