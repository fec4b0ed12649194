-- name: GetTenantSessionPolicy :one
SELECT access_token_ttl_seconds, refresh_token_ttl_seconds, refresh_reuse_grace_millis
FROM tenant_session_policies
WHERE tenant_id = @tenant_id;

-- name: GetTenantSuspended :one
SELECT suspended
FROM tenant_statuses
WHERE tenant_id = @tenant_id;

-- name: ShareTenantSuspended :one
-- ShareTenantSuspended is GetTenantSuspended holding the row's share lock
-- until the transaction ends: a status change waits for the holder to
-- commit, and the holder waits for a status change in progress.
SELECT suspended
FROM tenant_statuses
WHERE tenant_id = @tenant_id
FOR SHARE;
