-- name: EnsureAddress :exec
INSERT INTO addresses (tenant_id, ip, updated_at)
VALUES (@tenant_id, @ip, @now)
ON CONFLICT (tenant_id, ip) DO NOTHING;

-- name: LockAddress :one
-- LockAddress reads the address and locks its row until the transaction ends.
SELECT throttled_until
FROM addresses
WHERE tenant_id = @tenant_id AND ip = @ip
FOR UPDATE;

-- name: SetAddressThrottled :exec
UPDATE addresses
SET throttled_until = @throttled_until, updated_at = @now
WHERE tenant_id = @tenant_id AND ip = @ip;

-- name: TouchAddress :exec
UPDATE addresses SET updated_at = @now
WHERE tenant_id = @tenant_id AND ip = @ip;

-- name: DeleteIdleAddresses :execrows
DELETE FROM addresses
WHERE updated_at < @before;
