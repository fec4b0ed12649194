-- tenant's own tables, applied after the shared event store (events,
-- outbox, processed_events). They are inline read tables written in the
-- same transaction as the tenant's events.

-- tenants holds one row per tenant with its policies. Durations are whole
-- seconds. The CHECKs repeat the API's bounds as the last line of defence.
CREATE TABLE tenants (
    id                          uuid        PRIMARY KEY,
    slug                        text        NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    display_name                text        NOT NULL CHECK (display_name <> ''),
    status                      text        NOT NULL CHECK (status IN ('active', 'suspended')),
    password_min_length         integer     NOT NULL CHECK (password_min_length BETWEEN 12 AND 128),
    password_check_breached     boolean     NOT NULL,
    password_history_size       integer     NOT NULL CHECK (password_history_size BETWEEN 0 AND 24),
    mfa_requirement             text        NOT NULL CHECK (mfa_requirement IN ('optional', 'required')),
    access_token_ttl_seconds    integer     NOT NULL CHECK (access_token_ttl_seconds BETWEEN 300 AND 900),
    refresh_token_ttl_seconds   integer     NOT NULL CHECK (refresh_token_ttl_seconds BETWEEN 3600 AND 7776000),
    refresh_reuse_grace_seconds integer     NOT NULL CHECK (refresh_reuse_grace_seconds BETWEEN 0 AND 60),
    lockout_max_failures        integer     NOT NULL CHECK (lockout_max_failures BETWEEN 3 AND 100),
    lockout_window_seconds      integer     NOT NULL CHECK (lockout_window_seconds BETWEEN 60 AND 86400),
    lockout_duration_seconds    integer     NOT NULL CHECK (lockout_duration_seconds BETWEEN 60 AND 86400),
    branding_name               text        NOT NULL,
    branding_primary_color      text        NOT NULL CHECK (branding_primary_color ~ '^(#[0-9a-f]{6})?$'),
    branding_logo_ref           text        NOT NULL,
    -- version is the tenant aggregate's version: 1 when created, +1 per event.
    version                     bigint      NOT NULL CHECK (version > 0),
    created_at                  timestamptz NOT NULL,
    updated_at                  timestamptz NOT NULL,
    CONSTRAINT tenants_slug_key UNIQUE (slug)
);

-- ListTenants pages oldest first by (created_at, id).
CREATE INDEX tenants_oldest ON tenants (created_at, id);

-- domains holds a tenant's domains, in IDNA ASCII form, lower case. Several
-- tenants may have the same domain pending (so nobody can squat a domain by
-- adding it first), but only one can verify it.
CREATE TABLE domains (
    tenant_id               uuid        NOT NULL REFERENCES tenants (id),
    name                    text        NOT NULL,
    -- verification_token_hash is SHA-256 of the token AddDomain returned.
    verification_token_hash bytea       NOT NULL,
    verified_at             timestamptz,
    created_at              timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE UNIQUE INDEX domains_verified_name_key ON domains (name) WHERE verified_at IS NOT NULL;
