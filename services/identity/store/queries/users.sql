-- name: InsertUser :exec
INSERT INTO users (id, tenant_id, email, email_canonical, version, created_at, updated_at, status, email_verified)
VALUES (@id, @tenant_id, @email, @email_canonical, @version, @created_at, @updated_at, @status, @email_verified);

-- name: GetUser :one
SELECT id, tenant_id, email, email_canonical, version, created_at, updated_at, status, email_verified
FROM users
WHERE tenant_id = @tenant_id AND id = @id;

-- name: UpdateUserEmail :execrows
UPDATE users
SET email = @email, email_canonical = @email_canonical, email_verified = false, version = @version, updated_at = @updated_at
WHERE tenant_id = @tenant_id AND id = @id;

-- name: InsertCredential :exec
INSERT INTO credentials (user_id, tenant_id, password_hash, updated_at)
VALUES (@user_id, @tenant_id, @password_hash, @updated_at);

-- name: GetLogin :one
SELECT u.id, u.email, u.status, u.email_verified, c.password_hash
FROM users u
JOIN credentials c ON c.user_id = u.id
WHERE u.tenant_id = @tenant_id AND u.email_canonical = @email_canonical;

-- name: UpgradePasswordHash :execrows
-- UpgradePasswordHash replaces a hash only if it is still the one that was
-- checked, so a concurrent password change is never overwritten.
UPDATE credentials
SET password_hash = @new_hash, updated_at = @updated_at
WHERE user_id = @user_id AND tenant_id = @tenant_id AND password_hash = @old_hash;

-- name: TouchUser :execrows
-- TouchUser records a new version of a user whose event changes no column
-- of its row.
UPDATE users
SET version = @version, updated_at = @updated_at
WHERE tenant_id = @tenant_id AND id = @id;

-- name: SetUserStatus :execrows
UPDATE users
SET status = @status, version = @version, updated_at = @updated_at
WHERE tenant_id = @tenant_id AND id = @id;

-- name: DeletePasswordHistory :exec
DELETE FROM password_history WHERE tenant_id = @tenant_id AND user_id = @user_id;

-- name: DeleteCredential :exec
DELETE FROM credentials WHERE tenant_id = @tenant_id AND user_id = @user_id;

-- name: DeleteUser :execrows
DELETE FROM users WHERE tenant_id = @tenant_id AND id = @id;

-- name: SetEmailVerified :execrows
UPDATE users
SET email_verified = true, version = @version, updated_at = @updated_at
WHERE tenant_id = @tenant_id AND id = @id;

-- name: ListUsers :many
-- ListUsers pages through a tenant's users in email_canonical order: those
-- after @after (the last email_canonical of the previous page; '' on the
-- first page) whose email_canonical contains @query ('' keeps every user).
-- users_tenant_email_key (tenant_id, email_canonical) serves the order and
-- the cursor, so a page costs an index range scan, not a sort of the
-- tenant. strpos, not LIKE, so % and _ in a query are plain characters.
SELECT id, tenant_id, email, email_canonical, version, created_at, updated_at, status, email_verified
FROM users
WHERE tenant_id = @tenant_id
  AND email_canonical > @after::text
  AND (@query::text = '' OR strpos(email_canonical, @query::text) > 0)
ORDER BY email_canonical
LIMIT @row_limit::int;
