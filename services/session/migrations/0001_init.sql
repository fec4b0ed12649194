-- The session service's tables. sessions is the inline read table of the
-- session aggregate (session.session.created / revoked); refresh_tokens and
-- signing_keys are operational state that is not published as events.

-- sessions holds one row per login. The row is locked (FOR UPDATE) by every
-- command on the session: refreshes, revocations.
CREATE TABLE sessions (
    id                 uuid        PRIMARY KEY,
    tenant_id          uuid        NOT NULL,
    user_id            uuid        NOT NULL,
    created_at         timestamptz NOT NULL,
    refreshed_at       timestamptz NOT NULL,
    -- expires_at ends the refresh token family: refreshes do not extend it.
    expires_at         timestamptz NOT NULL,
    revoked_at         timestamptz,
    revoke_reason      text,
    ip                 text        NOT NULL,
    user_agent         text        NOT NULL,
    CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL))
);

CREATE INDEX sessions_user ON sessions (tenant_id, user_id, created_at DESC) WHERE revoked_at IS NULL;
CREATE INDEX sessions_expires ON sessions (expires_at);

-- refresh_tokens holds every refresh token of every session, by SHA-256
-- of the token: the token itself is never stored. A token is live until
-- used_at; its successor (generation + 1) is the one its refresh returned.
CREATE TABLE refresh_tokens (
    token_hash     bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    session_id     uuid        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    tenant_id      uuid        NOT NULL,
    generation     bigint      NOT NULL CHECK (generation > 0),
    created_at     timestamptz NOT NULL,
    used_at        timestamptz,
    successor_hash bytea,
    UNIQUE (session_id, generation),
    CHECK ((used_at IS NULL) = (successor_hash IS NULL))
);

-- signing_keys holds the Ed25519 keys that sign access tokens. A key is in
-- the JWKS from created_at, signs from activates_at (one JWKS cache period
-- later, so verifiers know it first), stops signing at retires_at (when its
-- successor activates) and leaves the JWKS, and this table, once the
-- longest access token it may have signed has expired.
CREATE TABLE signing_keys (
    kid          text        PRIMARY KEY,
    public_key   bytea       NOT NULL CHECK (length(public_key) = 32),
    -- private_key is the Ed25519 seed sealed with AES-256-GCM under the
    -- service's signing-key-encryption key: nonce || ciphertext, with the
    -- kid as additional data.
    private_key  bytea       NOT NULL,
    created_at   timestamptz NOT NULL,
    activates_at timestamptz NOT NULL UNIQUE,
    retires_at   timestamptz,
    CHECK (activates_at >= created_at),
    CHECK (retires_at IS NULL OR retires_at >= activates_at)
);

-- tenant_session_policies caches each tenant's session policy, projected
-- from the TENANT stream (tenant.tenant.created,
-- tenant.tenant.session_policy_changed) and guarded by the tenant
-- aggregate's version. A tenant without a row gets the configured defaults.
CREATE TABLE tenant_session_policies (
    tenant_id                  uuid    PRIMARY KEY,
    access_token_ttl_seconds   integer NOT NULL CHECK (access_token_ttl_seconds BETWEEN 300 AND 900),
    refresh_token_ttl_seconds  integer NOT NULL CHECK (refresh_token_ttl_seconds > 0),
    refresh_reuse_grace_millis integer NOT NULL CHECK (refresh_reuse_grace_millis >= 0),
    version                    bigint  NOT NULL CHECK (version > 0)
);
