-- user_tokens holds the live email verification and password reset
-- tokens. Only the SHA-256 of a token is stored; the token itself is in the
-- link sent to the user. A token is deleted when used, when a newer token
-- of the same kind is issued and when the user is deleted.
CREATE TABLE user_tokens (
    token_sha256 bytea       PRIMARY KEY,
    id           uuid        NOT NULL UNIQUE,
    tenant_id    uuid        NOT NULL,
    user_id      uuid        NOT NULL REFERENCES users (id),
    kind         text        NOT NULL CHECK (kind IN ('email_verification', 'password_reset')),
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX user_tokens_user ON user_tokens (user_id, kind);
