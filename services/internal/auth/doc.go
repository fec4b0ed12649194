// Package auth authenticates and authorises every call to an authms API.
//
// An [Authenticator] is a Connect interceptor (unary and streaming) that
// every service's handlers are mounted with. For each call it looks up the
// [Policy] its service declared for the procedure ([Policies]), reads the
// `Authorization: Bearer` header, verifies the credential and puts the
// caller's [Principal] in the context, where handlers read it with
// [FromContext]. It fails closed: a procedure without a declared policy
// refuses every call, a missing or bad token is Unauthenticated (the
// message says "invalid token" and never which check failed), a missing
// role is PermissionDenied, and a request whose tenant_id is not the
// token's tenant, or whose user_id is not the caller's (when the policy
// lets only the owner or a tenant admin in), is NotFound, so ids of other
// tenants and users are never confirmed.
//
// Credentials:
//
//   - Access tokens: JWTs minted by the session service (compact JWS,
//     EdDSA over Ed25519 only; any other alg, "none" included, is refused).
//     [Verifier] requires iss and aud to equal the configured values
//     exactly (aud must be a single string: an array is refused even when
//     it contains the expected audience, since session never mints one),
//     exp, nbf and iat with a 30s skew, a lifetime of at most
//     [MaxTokenLifetime], and a kid that a [KeySource] knows. [JWKS] is
//     the production key source: the session service's
//     /.well-known/jwks.json, cached for its Cache-Control max-age less
//     its Age (a shared cache's copy is older than it looks; bounded),
//     refreshed at most once per [JWKSConfig.MinRefresh] when a
//     token names an unknown kid, with concurrent refreshes merged into
//     one. No request makes a network call otherwise.
//   - Service tokens: access tokens whose sub is "service:<name>", with no
//     tid and the role "service"; only procedures whose policy allows
//     services accept them.
//   - The operator token: a random secret (AUTHMS_OPERATOR_TOKEN, or
//     generated once by `authms dev`) accepted as the principal "operator"
//     by the platform-wide procedures whose policy is [Operator] (the admin
//     APIs, CreateTenant, ListTenants, SuspendTenant, ReactivateTenant) or
//     allows it ([Policy.OrOperator]: identity's AssignRoles, so a new
//     tenant gets its first admin), and by nothing else.
//
// [Revocations] is the event-fed revocation list: an ordered JetStream
// consumer of the SESSION stream's session.session.revoked events that
// keeps revoked session ids (the envelope's aggregate id) for the longest
// access-token lifetime, so a revoked session's access token fails on its
// next API call. It tolerates the SESSION stream not existing yet and NATS
// outages: it keeps serving with the last list it knew, logs, and reports
// its state in the authms_auth_revocations_synced metric.
package auth
