-- The projector writes user_profiles with projections.Table.Upsert (the
-- version-guarded upsert every projection shares); these queries read it.

-- name: GetUserProfile :one
SELECT user_id, tenant_id, email_ciphertext, version, updated_at
FROM user_profiles
WHERE tenant_id = @tenant_id AND user_id = @user_id;

-- name: FindUserProfilesByEmailHash :many
-- Several rows can share a hash only while the cache catches up with email
-- changes (one user's old address given to another user); newest first.
SELECT user_id, tenant_id, email_ciphertext, version, updated_at
FROM user_profiles
WHERE tenant_id = @tenant_id AND email_hash = @email_hash
ORDER BY updated_at DESC, user_id;
