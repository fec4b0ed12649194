-- name: CreateProfile :exec
INSERT INTO profiles (user_id, tenant_id, display_name, locale, timezone, version, create_time, update_time)
VALUES (@user_id, @tenant_id, @display_name, @locale, @timezone, @version, @create_time, @create_time);

-- name: GetProfile :one
SELECT user_id, tenant_id, display_name, locale, timezone, version, create_time, update_time
FROM profiles
WHERE tenant_id = @tenant_id AND user_id = @user_id;

-- name: UpdateProfile :one
UPDATE profiles
SET display_name = @display_name, locale = @locale, timezone = @timezone, version = @version, update_time = @update_time
WHERE tenant_id = @tenant_id AND user_id = @user_id
RETURNING user_id, tenant_id, display_name, locale, timezone, version, create_time, update_time;
