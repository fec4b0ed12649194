-- name: InsertRole :exec
INSERT INTO roles (id, tenant_id, name, permissions, version, created_at, updated_at)
VALUES (@id, @tenant_id, @name, @permissions, @version, @created_at, @updated_at);

-- name: GetRoleByName :one
SELECT id, tenant_id, name, permissions, version, created_at, updated_at
FROM roles
WHERE tenant_id = @tenant_id AND name = @name;

-- name: UpdateRolePermissions :execrows
UPDATE roles
SET permissions = @permissions, version = @version, updated_at = @updated_at
WHERE tenant_id = @tenant_id AND id = @id;

-- name: ListRoles :many
SELECT id, tenant_id, name, permissions, version, created_at, updated_at
FROM roles
WHERE tenant_id = @tenant_id
ORDER BY name;

-- name: ExistingRoleNames :many
SELECT name
FROM roles
WHERE tenant_id = @tenant_id AND name = ANY(@names::text[]);

-- name: RolesPermissions :many
SELECT permissions
FROM roles
WHERE tenant_id = @tenant_id AND name = ANY(@names::text[]);

-- name: ListUserRoles :many
SELECT role_name
FROM user_roles
WHERE tenant_id = @tenant_id AND user_id = @user_id
ORDER BY role_name;

-- name: InsertUserRole :exec
INSERT INTO user_roles (user_id, tenant_id, role_name) VALUES (@user_id, @tenant_id, @role_name);

-- name: DeleteUserRoles :exec
DELETE FROM user_roles WHERE tenant_id = @tenant_id AND user_id = @user_id;

-- name: ListRolesOfUsers :many
-- ListRolesOfUsers returns the roles of several users of a tenant at once
-- (a page of ListUsers), in user and role name order.
SELECT user_id, role_name
FROM user_roles
WHERE tenant_id = @tenant_id AND user_id = ANY(@user_ids::uuid[])
ORDER BY user_id, role_name;
