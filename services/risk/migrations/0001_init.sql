-- risk's own tables, applied after the shared event store (events, outbox,
-- processed_events). accounts, addresses and login_attempts are the
-- operational state of the lockout and throttle decisions: individual
-- attempts are not events (risk publishes only its decisions), so unlike
-- other services' inline tables they cannot be rebuilt by replay; they
-- only ever matter for the last 24 hours and are pruned after that.

-- accounts holds one row per tenant and email that had a login attempt.
-- The email is never stored: account_key is HMAC-SHA256 of the tenant and
-- the canonical email under the service's email-blind-index key. The row
-- is locked (FOR UPDATE) by every command on the account, which makes the
-- check-and-reserve of AttemptLogin atomic.
CREATE TABLE accounts (
    tenant_id         uuid        NOT NULL,
    account_key       bytea       NOT NULL CHECK (length(account_key) = 32),
    -- user_id is the user the email belongs to, once a caller reported it.
    user_id           uuid,
    locked_until      timestamptz,
    -- Failures up to failures_reset_at no longer count: it moves on a
    -- success, a lockout and an unlock.
    failures_reset_at timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, account_key)
);

-- addresses holds one row per tenant and client address (an IPv6 client by
-- its /64) that had a login attempt; it is locked like accounts.
CREATE TABLE addresses (
    tenant_id       uuid        NOT NULL,
    ip              text        NOT NULL,
    -- throttled_until is set when risk.ip.throttled is published, so it is
    -- published at most once per window.
    throttled_until timestamptz,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, ip)
);

-- login_attempts holds the attempts of the last 24 hours: "pending" is a
-- reservation made by AttemptLogin, which lapses at expires_at unless
-- ReportLoginResult finishes it as "failure" or "success".
CREATE TABLE login_attempts (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    account_key bytea       NOT NULL,
    ip          text        NOT NULL,
    outcome     text        NOT NULL CHECK (outcome IN ('pending', 'failure', 'success')),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    finished_at timestamptz,
    CHECK ((outcome = 'pending') = (finished_at IS NULL))
);

CREATE INDEX login_attempts_account ON login_attempts (tenant_id, account_key, outcome, finished_at);
CREATE INDEX login_attempts_ip ON login_attempts (tenant_id, ip, outcome, finished_at);
CREATE INDEX login_attempts_created ON login_attempts (created_at);

-- tenant_lockout_policies caches each tenant's lockout policy, projected from
-- the TENANT stream (tenant.tenant.created, tenant.tenant.lockout_policy_changed)
-- and guarded by the tenant aggregate's version. A tenant without a row gets
-- the service's default policy.
CREATE TABLE tenant_lockout_policies (
    tenant_id        uuid    PRIMARY KEY,
    max_failures     integer NOT NULL CHECK (max_failures > 0),
    window_seconds   integer NOT NULL CHECK (window_seconds > 0),
    duration_seconds integer NOT NULL CHECK (duration_seconds > 0),
    version          bigint  NOT NULL CHECK (version > 0)
);
