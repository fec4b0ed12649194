-- name: InsertUser :exec
INSERT INTO users (id, tenant_id, email, email_canonical, version, created_at, updated_at)
VALUES (@id, @tenant_id, @email, @email_canonical, @version, @created_at, @updated_at);

-- name: GetUser :one
SELECT id, tenant_id, email, email_canonical, version, created_at, updated_at
FROM users
WHERE tenant_id = @tenant_id AND id = @id;

-- name: UpdateUserEmail :execrows
UPDATE users
SET email = @email, email_canonical = @email_canonical, version = @version, updated_at = @updated_at
WHERE tenant_id = @tenant_id AND id = @id;

-- name: InsertCredential :exec
INSERT INTO credentials (user_id, tenant_id, password_hash, updated_at)
VALUES (@user_id, @tenant_id, @password_hash, @updated_at);
