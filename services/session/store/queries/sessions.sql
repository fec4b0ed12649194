-- name: InsertSession :exec
INSERT INTO sessions (id, tenant_id, user_id, created_at, refreshed_at, expires_at, ip, user_agent)
VALUES (@id, @tenant_id, @user_id, @created_at, @created_at, @expires_at, @ip, @user_agent);

-- name: LockSession :one
-- LockSession reads the session and locks its row until the transaction ends.
SELECT id, tenant_id, user_id, created_at, refreshed_at, expires_at, revoked_at, revoke_reason, ip, user_agent
FROM sessions
WHERE id = @id AND tenant_id = @tenant_id
FOR UPDATE;

-- name: TouchSession :exec
UPDATE sessions SET refreshed_at = @now
WHERE id = @id AND tenant_id = @tenant_id;

-- name: RevokeSession :exec
UPDATE sessions SET revoked_at = @now::timestamptz, revoke_reason = @reason::text
WHERE id = @id AND tenant_id = @tenant_id AND revoked_at IS NULL;

-- name: ListLiveSessions :many
SELECT id, tenant_id, user_id, created_at, refreshed_at, expires_at, revoked_at, revoke_reason, ip, user_agent
FROM sessions
WHERE tenant_id = @tenant_id AND user_id = @user_id AND revoked_at IS NULL AND expires_at > @now
ORDER BY created_at DESC, id DESC
LIMIT @max_sessions;

-- name: LockLiveSessionsOfUser :many
-- LockLiveSessionsOfUser locks the user's sessions that are not revoked
-- (expired ones included, so a revocation is recorded for them too), in id
-- order so concurrent revocations never deadlock.
SELECT id, expires_at
FROM sessions
WHERE tenant_id = @tenant_id AND user_id = @user_id AND revoked_at IS NULL
ORDER BY id
FOR UPDATE;

-- name: DeleteSessionsExpiredBefore :execrows
-- DeleteSessionsExpiredBefore removes sessions (and their refresh tokens)
-- that ended before before; their events stay.
DELETE FROM sessions
WHERE expires_at < @before;

-- name: GetSession :one
SELECT id, tenant_id, user_id, created_at, refreshed_at, expires_at, revoked_at, revoke_reason, ip, user_agent
FROM sessions
WHERE id = @id AND tenant_id = @tenant_id;

-- name: LockLiveSessionsOfTenant :many
-- LockLiveSessionsOfTenant locks up to max of the tenant's live sessions
-- after the id after, in id order, so concurrent revocations never
-- deadlock. Batches page by id (sessions_tenant_live), so each costs its
-- own size, not that of the batches before it.
SELECT id, user_id
FROM sessions
WHERE tenant_id = @tenant_id AND revoked_at IS NULL AND expires_at > @now AND id > @after
ORDER BY id
LIMIT @max
FOR UPDATE;

-- name: ListSuspendedTenantsWithLiveSessions :many
-- ListSuspendedTenantsWithLiveSessions returns the tenants session knows
-- suspended that still have a live session.
SELECT t.tenant_id
FROM tenant_statuses t
WHERE t.suspended AND EXISTS (
    SELECT 1 FROM sessions s
    WHERE s.tenant_id = t.tenant_id AND s.revoked_at IS NULL AND s.expires_at > @now
)
ORDER BY t.tenant_id;
