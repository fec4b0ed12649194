-- name: ListDomains :many
-- ListDomains returns the domains of the given tenants, by tenant and name.
SELECT tenant_id, name, verification_token_hash, verified_at, created_at
FROM domains
WHERE tenant_id = ANY(@tenant_ids::uuid[])
ORDER BY tenant_id, name;

-- name: GetDomain :one
SELECT tenant_id, name, verification_token_hash, verified_at, created_at
FROM domains
WHERE tenant_id = @tenant_id AND name = @name;

-- name: DomainVerifiedByAnother :one
-- DomainVerifiedByAnother reports whether a tenant other than tenant_id has
-- verified the domain.
SELECT EXISTS (
    SELECT 1 FROM domains
    WHERE name = @name AND tenant_id <> @tenant_id AND verified_at IS NOT NULL
);

-- name: InsertDomain :exec
INSERT INTO domains (tenant_id, name, verification_token_hash, created_at)
VALUES (@tenant_id, @name, @verification_token_hash, @created_at);

-- name: SetDomainVerified :execrows
UPDATE domains SET verified_at = @verified_at
WHERE tenant_id = @tenant_id AND name = @name AND verified_at IS NULL;

-- name: DeleteDomain :execrows
DELETE FROM domains
WHERE tenant_id = @tenant_id AND name = @name;
