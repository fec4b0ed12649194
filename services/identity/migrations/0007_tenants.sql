-- tenants records the tenants identity knows and whether they are active,
-- projected from the TENANT stream (tenant.tenant.created,
-- tenant.tenant.updated) and guarded by the tenant aggregate's version.
-- Registration, import and authentication refuse a tenant without a row
-- or with a status other than 'active'.
CREATE TABLE tenants (
    tenant_id uuid   PRIMARY KEY,
    status    text   NOT NULL CHECK (status IN ('active', 'suspended')),
    version   bigint NOT NULL CHECK (version > 0)
);
