-- name: InsertPublicRequest :exec
INSERT INTO public_requests (id, tenant_id, ip, kind, created_at)
VALUES (@id, @tenant_id, @ip, @kind, @created_at);

-- name: AddressPublicRequests :one
-- AddressPublicRequests counts the address's requests of one kind after
-- since, with the oldest (now when there is none).
SELECT count(*)::integer AS requests,
       COALESCE(min(created_at), @now::timestamptz)::timestamptz AS oldest
FROM public_requests
WHERE tenant_id = @tenant_id AND ip = @ip AND kind = @kind AND created_at > @since::timestamptz;

-- name: DeletePublicRequestsBefore :execrows
DELETE FROM public_requests
WHERE created_at < @before;
