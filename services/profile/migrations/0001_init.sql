-- The profile service's own tables. profiles is the source of truth for a
-- user's extended attributes; each row is the current state of one profile
-- aggregate (aggregate type "profile", aggregate id = the user id) whose
-- events live in the events table.

CREATE TABLE profiles (
    user_id      uuid        PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    display_name text        NOT NULL,
    locale       text        NOT NULL,
    timezone     text        NOT NULL,
    -- version is the profile aggregate's version: the number of its events.
    version      bigint      NOT NULL CHECK (version > 0),
    create_time  timestamptz NOT NULL,
    update_time  timestamptz NOT NULL
);

CREATE INDEX profiles_tenant_id_idx ON profiles (tenant_id);
