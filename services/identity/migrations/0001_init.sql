-- identity's own tables, applied after the shared event store (events,
-- outbox, processed_events). Both are inline read tables written in the
-- same transaction as the user's events; the events table stays the source
-- of truth and can rebuild them.

-- users is the current state of every user aggregate.
CREATE TABLE users (
    id              uuid        PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    -- email is the address as the user typed it (trimmed); email_canonical
    -- is its lower-case form, which decides uniqueness within a tenant.
    email           text        NOT NULL,
    email_canonical text        NOT NULL,
    -- version is the user aggregate's version: the number of its events.
    version         bigint      NOT NULL CHECK (version > 0),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT users_tenant_email_key UNIQUE (tenant_id, email_canonical)
);

-- credentials holds one password hash per user, as an argon2id PHC string
-- ($argon2id$v=19$m=...,t=...,p=...$salt$hash). It never leaves the service
-- and never appears in an event.
CREATE TABLE credentials (
    user_id       uuid        PRIMARY KEY REFERENCES users (id),
    tenant_id     uuid        NOT NULL,
    password_hash text        NOT NULL,
    updated_at    timestamptz NOT NULL
);
