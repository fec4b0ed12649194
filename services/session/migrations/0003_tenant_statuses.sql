-- tenant_statuses caches whether each tenant is suspended, projected from
-- the TENANT stream (tenant.tenant.created, updated, suspended,
-- reactivated) and guarded by the tenant aggregate's version. Login and
-- Refresh refuse a suspended tenant's users; a tenant without a row counts
-- as active (identity refuses logins into tenants it does not know).
CREATE TABLE tenant_statuses (
    tenant_id uuid    PRIMARY KEY,
    suspended boolean NOT NULL,
    version   bigint  NOT NULL CHECK (version > 0)
);
