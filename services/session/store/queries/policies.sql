-- name: GetTenantSessionPolicy :one
SELECT access_token_ttl_seconds, refresh_token_ttl_seconds, refresh_reuse_grace_millis
FROM tenant_session_policies
WHERE tenant_id = @tenant_id;

-- name: GetTenantSuspended :one
SELECT suspended
FROM tenant_statuses
WHERE tenant_id = @tenant_id;
