-- sessions_tenant_live serves the revocation of a suspended tenant's
-- sessions (LockLiveSessionsOfTenant pages through them by id) and the
-- sweep's search for suspended tenants with live sessions.
CREATE INDEX sessions_tenant_live ON sessions (tenant_id, id) WHERE revoked_at IS NULL;
