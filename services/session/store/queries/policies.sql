-- name: GetTenantSessionPolicy :one
SELECT access_token_ttl_seconds, refresh_token_ttl_seconds, refresh_reuse_grace_millis
FROM tenant_session_policies
WHERE tenant_id = @tenant_id;

-- name: GetTenantSuspended :one
SELECT suspended
FROM tenant_statuses
WHERE tenant_id = @tenant_id;

-- name: ShareTenantStatus :exec
-- ShareTenantStatus takes the tenant's status lock shared until the
-- transaction ends: Logins and revocation batches share it, and a status
-- change (LockTenantStatus) waits for them and they for it. It is a
-- transaction-level advisory lock, not a row lock, so it costs no write
-- (FOR SHARE by many Logins made MultiXacts and rewrote the row) and holds
-- whether or not the tenant has a status row yet.
--
-- The key is the two-int form (class, object): class
-- hashtext('session.tenant_statuses'), object hashtext of the tenant id.
-- PostgreSQL keeps two-int keys apart from single-bigint ones, which are
-- all authms's other advisory locks (the relay's, migrations', event
-- appends', signing keys'), so it meets none of them; two tenants whose ids
-- hash alike only share a lock, which costs waiting, never correctness.
-- Take it in a statement of its own, before reading the status: a
-- statement's snapshot predates a lock wait within it.
SELECT pg_advisory_xact_lock_shared(hashtext('session.tenant_statuses'), hashtext(CAST(sqlc.arg(tenant_id)::uuid AS text)));

-- name: LockTenantStatus :exec
-- LockTenantStatus takes the tenant's status lock (see ShareTenantStatus)
-- exclusively until the transaction ends, so a status change waits for the
-- Logins and revocation batches in flight and holds off new ones.
SELECT pg_advisory_xact_lock(hashtext('session.tenant_statuses'), hashtext(CAST(sqlc.arg(tenant_id)::uuid AS text)));
