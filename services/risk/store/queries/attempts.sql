-- name: InsertAttempt :exec
INSERT INTO login_attempts (id, tenant_id, account_key, ip, outcome, created_at, expires_at, finished_at)
VALUES (@id, @tenant_id, @account_key, @ip, @outcome, @created_at, @expires_at, sqlc.narg(finished_at));

-- name: GetAttempt :one
SELECT id, tenant_id, account_key, ip, outcome, created_at, expires_at, finished_at
FROM login_attempts
WHERE tenant_id = @tenant_id AND id = @id;

-- name: FinishAttempt :execrows
-- FinishAttempt records the outcome of a reservation; 0 rows means it was
-- finished before.
UPDATE login_attempts
SET outcome = @outcome, finished_at = @now::timestamptz
WHERE tenant_id = @tenant_id AND id = @id AND outcome = 'pending';

-- name: AccountAttempts :one
-- AccountAttempts counts the account's failures after since and its live
-- reservations at now, with the oldest failure and the first reservation to
-- lapse (now when there is none).
SELECT count(*) FILTER (WHERE outcome = 'failure')::integer AS failures,
       COALESCE(min(finished_at) FILTER (WHERE outcome = 'failure'), @now::timestamptz)::timestamptz AS oldest_failure,
       count(*) FILTER (WHERE outcome = 'pending')::integer AS pending,
       COALESCE(min(expires_at) FILTER (WHERE outcome = 'pending'), @now::timestamptz)::timestamptz AS first_expiry
FROM login_attempts
WHERE tenant_id = @tenant_id AND account_key = @account_key
  AND ((outcome = 'failure' AND finished_at > @since::timestamptz) OR (outcome = 'pending' AND expires_at > @now::timestamptz));

-- name: AddressAttempts :one
-- AddressAttempts is AccountAttempts for a client address.
SELECT count(*) FILTER (WHERE outcome = 'failure')::integer AS failures,
       COALESCE(min(finished_at) FILTER (WHERE outcome = 'failure'), @now::timestamptz)::timestamptz AS oldest_failure,
       count(*) FILTER (WHERE outcome = 'pending')::integer AS pending,
       COALESCE(min(expires_at) FILTER (WHERE outcome = 'pending'), @now::timestamptz)::timestamptz AS first_expiry
FROM login_attempts
WHERE tenant_id = @tenant_id AND ip = @ip
  AND ((outcome = 'failure' AND finished_at > @since::timestamptz) OR (outcome = 'pending' AND expires_at > @now::timestamptz));

-- name: DeleteAttemptsBefore :execrows
DELETE FROM login_attempts
WHERE created_at < @before;
