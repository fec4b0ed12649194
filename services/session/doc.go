// Package session is the authms session service: it logs users in and
// keeps them logged in. It owns login sessions, rotating refresh tokens and
// the Ed25519 keys that sign access tokens, in the session database.
//
// Login asks risk whether the attempt may proceed (AttemptLogin, with the
// client's address: the connection's peer, or X-Forwarded-For when the peer
// is one of the platform's trusted proxies, platform.Deps.Clients), then
// identity whether the credentials are right (AuthenticateUser), reports
// the verdict to risk (ReportLoginResult) and, on success, opens a session. An unknown email, a
// wrong password and a disabled user get one answer, Unauthenticated
// "invalid email or password"; a refusal by risk is ResourceExhausted (busy
// account, throttled address) or PermissionDenied (locked account) with a
// google.rpc.RetryInfo detail and a Retry-After header, which say nothing
// about whether the account exists. Calls to identity and risk carry
// session's own service token (sub "service:session", role "service").
//
// Access tokens are JWTs signed with EdDSA (claims iss, aud, sub, tid, sid,
// roles, iat, nbf, exp, jti) that live the tenant's access token TTL (5 to
// 15 minutes, default 10). The signing keys live in signing_keys with their
// private halves sealed (AES-256-GCM, the "signing-key-encryption" secret);
// every instance checks them every Config.KeyCheckInterval under an
// advisory lock: a successor is published Config.JWKSMaxAge before it
// signs, the key it replaces stays published until the longest access token
// it may have signed has expired, then is deleted. JWKSPath serves them
// from memory (see keyring.published for why that is safe with several
// instances).
//
// Refresh tokens are 32 bytes, base64url, stored as SHA-256 only. Each
// Refresh returns the next token of the session's chain, derived from the
// one presented with HMAC-SHA256 (the "refresh-token-derivation" secret), so
// concurrent refreshes of one token within the tenant's reuse grace get the
// same successor; a used token presented later revokes the session and
// records session.refresh_token.reuse_detected. Refresh asks identity
// (GetUser) for the user's status and current roles first.
//
// Refresh is public and each exchange writes a row, so it is rate limited
// in fixed windows counted in refresh_limits (shared by every instance): a
// token that names a session counts against that session
// (Config.RefreshLimitPerSession, 30 a minute); one that names none
// (malformed or unknown: what a guesser sends) against the client's
// address (RefreshLimitPerAddress, 300 a minute; an IPv6 client by its
// /64), so a guesser never holds back the valid refreshes of the users
// sharing its address. Over a limit the answer is ResourceExhausted with a
// google.rpc.RetryInfo detail and a Retry-After header; refused calls are
// not counted.
//
// Published (stream SESSION, aggregate id = session id):
//   - session.session.created (sessionv1.SessionCreated)
//   - session.session.revoked (sessionv1.SessionRevoked)
//   - session.refresh_token.reuse_detected (sessionv1.RefreshTokenReuseDetected)
//
// Consumed:
//   - stream TENANT, durable consumer "session_tenant_session_policies":
//     tenant.tenant.created, tenant.tenant.session_policy_changed, cached in
//     tenant_session_policies (a tenant not yet projected gets Config's
//     lifetimes);
//   - stream TENANT, durable consumer "session_tenant_statuses":
//     tenant.tenant.created, updated, suspended, reactivated, cached in
//     tenant_statuses: Login and Refresh refuse a suspended tenant's users,
//     and Run revokes the live sessions of a tenant cached as suspended, in
//     batches, as soon as the suspension commits and every
//     Config.KeyCheckInterval;
//   - stream IDENTITY, durable consumer "session_user_revocations":
//     identity.user.password_changed (a reset revokes every session of the
//     user, a change all but keep_session_id), identity.user.disabled,
//     identity.user.deleted and identity.user.roles_changed (every
//     session: any change of roles, granted or removed, since access
//     tokens carry the old set until they expire).
//
// Sessions are aggregates: sessions is their inline read table and every
// change to one holds its row lock. Refresh token rotations are
// operational state, not events.
//
// Login and Refresh are public; Logout ends the caller's own session
// (its sid); ListSessions and the Revoke methods are for the user
// themselves, a tenant admin or a service ([Service.Policies]): the
// request's tenant and user ids are checked against the caller's token by
// the shared auth interceptor, and a mismatch is NotFound.
package session
