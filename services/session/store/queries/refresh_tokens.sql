-- name: InsertRefreshToken :exec
INSERT INTO refresh_tokens (token_hash, session_id, tenant_id, generation, created_at)
VALUES (@token_hash, @session_id, @tenant_id, @generation, @created_at);

-- name: GetRefreshToken :one
SELECT token_hash, session_id, tenant_id, generation, created_at, used_at, successor_hash
FROM refresh_tokens
WHERE token_hash = @token_hash;

-- name: LockRefreshToken :one
-- LockRefreshToken reads the token and locks its row; callers hold the
-- session's lock first.
SELECT token_hash, session_id, tenant_id, generation, created_at, used_at, successor_hash
FROM refresh_tokens
WHERE token_hash = @token_hash
FOR UPDATE;

-- name: UseRefreshToken :execrows
UPDATE refresh_tokens SET used_at = @now::timestamptz, successor_hash = @successor_hash
WHERE token_hash = @token_hash AND used_at IS NULL;
