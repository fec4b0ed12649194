-- name: LockSigningKeys :exec
-- LockSigningKeys serialises key rotation across instances until the
-- transaction ends.
SELECT pg_advisory_xact_lock(hashtextextended('session.signing_keys', 0));

-- name: ListSigningKeys :many
SELECT kid, public_key, private_key, created_at, activates_at, retires_at
FROM signing_keys
ORDER BY activates_at;

-- name: InsertSigningKey :exec
INSERT INTO signing_keys (kid, public_key, private_key, created_at, activates_at)
VALUES (@kid, @public_key, @private_key, @created_at, @activates_at);

-- name: RetireSigningKeys :exec
-- RetireSigningKeys sets when the keys that activate before a new key stop
-- signing: when it activates.
UPDATE signing_keys SET retires_at = @retires_at::timestamptz
WHERE activates_at < @retires_at::timestamptz AND retires_at IS NULL;

-- name: DeleteSigningKeysRetiredBefore :execrows
DELETE FROM signing_keys
WHERE retires_at < @before::timestamptz;
