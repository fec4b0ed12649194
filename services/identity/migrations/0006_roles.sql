-- roles is the current state of every role aggregate: a named set of
-- permissions in a tenant. The built-in role "admin" has no row: every
-- tenant has it implicitly.
CREATE TABLE roles (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    name        text        NOT NULL,
    -- permissions are sorted and distinct.
    permissions text[]      NOT NULL,
    version     bigint      NOT NULL CHECK (version > 0),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    CONSTRAINT roles_tenant_name_key UNIQUE (tenant_id, name)
);

-- user_roles holds the names of the roles assigned to each user, written
-- with the user's identity.user.roles_changed event.
CREATE TABLE user_roles (
    user_id   uuid NOT NULL REFERENCES users (id),
    tenant_id uuid NOT NULL,
    role_name text NOT NULL,
    PRIMARY KEY (user_id, role_name)
);
