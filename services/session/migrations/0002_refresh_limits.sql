-- refresh_limits counts Refresh calls in fixed windows, per client address
-- (scope 'address': an IPv6 client by its /64) and per session (scope
-- 'session': the refresh token family). Every session instance counts in
-- this one table, so a limit holds however many instances serve Refresh.
-- It is operational state, like refresh_tokens: not events, and pruned
-- once a window is over.
CREATE TABLE refresh_limits (
    scope        text        NOT NULL CHECK (scope IN ('address', 'session')),
    key          text        NOT NULL,
    window_start timestamptz NOT NULL,
    hits         integer     NOT NULL CHECK (hits > 0),
    PRIMARY KEY (scope, key)
);

CREATE INDEX refresh_limits_window ON refresh_limits (window_start);
