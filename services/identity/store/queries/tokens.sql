-- name: InsertUserToken :exec
INSERT INTO user_tokens (token_sha256, id, tenant_id, user_id, kind, created_at, expires_at)
VALUES (@token_sha256, @id, @tenant_id, @user_id, @kind, @created_at, @expires_at);

-- name: DeleteUserTokens :exec
DELETE FROM user_tokens WHERE tenant_id = @tenant_id AND user_id = @user_id AND kind = @kind;

-- name: DeleteAllUserTokens :exec
DELETE FROM user_tokens WHERE tenant_id = @tenant_id AND user_id = @user_id;

-- name: GetUserToken :one
SELECT id, user_id, expires_at
FROM user_tokens
WHERE tenant_id = @tenant_id AND token_sha256 = @token_sha256 AND kind = @kind;

-- name: ConsumeUserToken :execrows
-- ConsumeUserToken deletes a live token of the user: it works once.
DELETE FROM user_tokens
WHERE tenant_id = @tenant_id AND token_sha256 = @token_sha256 AND kind = @kind
  AND user_id = @user_id AND expires_at > @now;

-- name: LastUserTokenTime :one
-- LastUserTokenTime is when the user's newest token of the kind was issued.
SELECT created_at FROM user_tokens
WHERE tenant_id = @tenant_id AND user_id = @user_id AND kind = @kind
ORDER BY created_at DESC
LIMIT 1;
