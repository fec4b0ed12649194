-- tenant_password_policies caches each tenant's password policy, projected
-- from the TENANT stream (tenant.tenant.created,
-- tenant.tenant.password_policy_changed) and guarded by the tenant
-- aggregate's version. A tenant without a row gets the default policy
-- (12 characters, breached list checked, no history).
CREATE TABLE tenant_password_policies (
    tenant_id      uuid    PRIMARY KEY,
    min_length     integer NOT NULL CHECK (min_length > 0),
    check_breached boolean NOT NULL,
    history_size   integer NOT NULL CHECK (history_size >= 0),
    version        bigint  NOT NULL CHECK (version > 0)
);

-- password_history holds the hashes of a user's recent passwords, newest
-- last, so a policy with a history refuses their reuse; at most 24 (the
-- largest history a policy may ask for) are kept per user. Like
-- credentials, it never leaves the service.
CREATE TABLE password_history (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       uuid        NOT NULL REFERENCES users (id),
    tenant_id     uuid        NOT NULL,
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL
);
CREATE INDEX password_history_user ON password_history (user_id, id);

-- Users registered before keep their current hash as their history.
INSERT INTO password_history (user_id, tenant_id, password_hash, created_at)
SELECT user_id, tenant_id, password_hash, updated_at FROM credentials;
