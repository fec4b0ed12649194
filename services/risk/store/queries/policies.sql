-- name: GetTenantLockoutPolicy :one
SELECT max_failures, window_seconds, duration_seconds
FROM tenant_lockout_policies
WHERE tenant_id = @tenant_id;
