-- name: GetTenantPasswordPolicy :one
SELECT min_length, check_breached, history_size
FROM tenant_password_policies
WHERE tenant_id = @tenant_id;

-- name: GetPasswordHash :one
SELECT password_hash
FROM credentials
WHERE tenant_id = @tenant_id AND user_id = @user_id;

-- name: SetPasswordHash :execrows
UPDATE credentials
SET password_hash = @password_hash, updated_at = @updated_at
WHERE tenant_id = @tenant_id AND user_id = @user_id;

-- name: InsertPasswordHistory :exec
INSERT INTO password_history (user_id, tenant_id, password_hash, created_at)
VALUES (@user_id, @tenant_id, @password_hash, @created_at);

-- name: RecentPasswordHashes :many
SELECT password_hash
FROM password_history
WHERE tenant_id = @tenant_id AND user_id = @user_id
ORDER BY id DESC
LIMIT @max_rows;

-- name: PrunePasswordHistory :exec
DELETE FROM password_history AS h
WHERE h.user_id = @user_id AND h.id NOT IN (
    SELECT r.id FROM password_history AS r WHERE r.user_id = @user_id ORDER BY r.id DESC LIMIT @keep
);
