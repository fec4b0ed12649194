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

-- name: AddressPublicRequestsAllTenants :one
-- AddressPublicRequestsAllTenants counts the address's requests of one
-- kind after since in every tenant, with the oldest (now when there is
-- none).
SELECT count(*)::integer AS requests,
       COALESCE(min(created_at), @now::timestamptz)::timestamptz AS oldest
FROM public_requests
WHERE ip = @ip AND kind = @kind AND created_at > @since::timestamptz;

-- name: LockAddressRequests :exec
-- LockAddressRequests serialises an address's requests of one kind across
-- every tenant, until the transaction ends. The key is one bigint, hashed
-- from "risk.public_requests|<kind>|<ip>".
SELECT pg_advisory_xact_lock(hashtextextended('risk.public_requests|' || @kind::text || '|' || @ip::text, 0));

-- name: DeletePublicRequestsBefore :execrows
DELETE FROM public_requests
WHERE created_at < @before;
