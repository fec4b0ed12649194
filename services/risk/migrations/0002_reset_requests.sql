-- reset_requests holds the password reset requests of the last 24 hours
-- that AttemptPasswordReset let through, by tenant and client address (an
-- IPv6 client by its /64). It is a counter of its own, not login_attempts:
-- a reset request is neither a failed nor a successful login. Requests of
-- one address are serialised by its addresses row lock. Pruned like the
-- attempts.
CREATE TABLE reset_requests (
    id         uuid        PRIMARY KEY,
    tenant_id  uuid        NOT NULL,
    ip         text        NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE INDEX reset_requests_ip ON reset_requests (tenant_id, ip, created_at);
CREATE INDEX reset_requests_created ON reset_requests (created_at);
