-- name: GetTenantStatus :one
SELECT status
FROM tenants
WHERE tenant_id = @tenant_id;
