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

-- name: GetLogin :one
SELECT u.id, u.email, c.password_hash
FROM users u
JOIN credentials c ON c.user_id = u.id
WHERE u.tenant_id = @tenant_id AND u.email_canonical = @email_canonical;

-- name: UpgradePasswordHash :execrows
-- UpgradePasswordHash replaces a hash only if it is still the one that was
-- checked, so a concurrent password change is never overwritten.
UPDATE credentials
SET password_hash = @new_hash, updated_at = @updated_at
WHERE user_id = @user_id AND tenant_id = @tenant_id AND password_hash = @old_hash;
