-- name: InsertResetRequest :exec
INSERT INTO reset_requests (id, tenant_id, ip, created_at)
VALUES (@id, @tenant_id, @ip, @created_at);

-- name: AddressResetRequests :one
-- AddressResetRequests counts the address's reset requests after since,
-- with the oldest (now when there is none).
SELECT count(*)::integer AS requests,
       COALESCE(min(created_at), @now::timestamptz)::timestamptz AS oldest
FROM reset_requests
WHERE tenant_id = @tenant_id AND ip = @ip AND created_at > @since::timestamptz;

-- name: DeleteResetRequestsBefore :execrows
DELETE FROM reset_requests
WHERE created_at < @before;
