-- public_requests holds the requests of the last 24 hours that the public
-- request throttle let through, by tenant, client address (an IPv6 client
-- by its /64) and kind: password resets (AttemptPasswordReset) and
-- registrations (AttemptRegistration), each counted against its own limit.
-- It is a counter of its own, not login_attempts: such a request is
-- neither a failed nor a successful login. Requests of one address are
-- serialised by its addresses row lock in a tenant, and by an advisory lock
-- of the address and kind across tenants. Pruned like the attempts.
CREATE TABLE public_requests (
    id         uuid        PRIMARY KEY,
    tenant_id  uuid        NOT NULL,
    ip         text        NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('password_reset', 'registration')),
    created_at timestamptz NOT NULL
);

CREATE INDEX public_requests_ip ON public_requests (tenant_id, ip, kind, created_at);
-- An address's requests of a kind across every tenant (the AllTenants
-- limits), serialised by an advisory lock of the address and kind.
CREATE INDEX public_requests_ip_all_tenants ON public_requests (ip, kind, created_at);
CREATE INDEX public_requests_created ON public_requests (created_at);
