-- The billing service's own tables. Plans and subscriptions come later.

-- user_profiles caches identity's users for billing, projected from
-- identity.user.created and identity.user.email_changed. It is never a source
-- of truth: it can be dropped and rebuilt by replaying the IDENTITY stream.
CREATE TABLE user_profiles (
    user_id          uuid        PRIMARY KEY,
    tenant_id        uuid        NOT NULL,
    -- email_ciphertext is the email sealed with AES-256-GCM (key
    -- "email-encryption", additional data "<tenant_id>|<user_id>").
    email_ciphertext bytea       NOT NULL,
    -- email_hash is the blind index: HMAC-SHA256 (key "email-blind-index")
    -- of "<tenant_id>|<lower-cased, trimmed email>".
    email_hash       bytea       NOT NULL,
    -- version is the identity user aggregate's version this row reflects;
    -- upserts only ever move it forward.
    version          bigint      NOT NULL CHECK (version > 0),
    updated_at       timestamptz NOT NULL
);

CREATE INDEX user_profiles_tenant_id_email_hash_idx ON user_profiles (tenant_id, email_hash);
