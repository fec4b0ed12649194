// Package identity is the authms identity service: it owns users, their
// credentials, email verification, password reset, and each tenant's roles
// and permissions.
//
// Users and roles are event-sourced aggregates (types "user" and "role")
// in the identity database. Every command runs in one PostgreSQL
// transaction that locks the aggregate, rehydrates it from its events,
// decides, updates the inline read tables and appends the new events to
// the events table and the outbox. The read tables: users (one canonical
// email per tenant, status, email_verified), credentials (the password
// hash), password_history, user_tokens (SHA-256 of live tokens), roles and
// user_roles.
//
// Published (stream IDENTITY):
//   - identity.user.created (identityv1.UserCreated), by RegisterUser and ImportUser
//   - identity.user.email_changed (identityv1.UserEmailChanged), with the previous
//     address for the warning sent there
//   - identity.user.password_changed (identityv1.UserPasswordChanged), reason CHANGED or RESET
//   - identity.user.disabled, identity.user.enabled, identity.user.deleted
//     (identityv1.UserDisabled, UserEnabled, UserDeleted)
//   - identity.user.roles_changed (identityv1.UserRolesChanged)
//   - identity.user.email_verification_requested, identity.user.email_verified,
//     identity.user.password_reset_requested (token ids, never tokens)
//   - identity.role.created, identity.role.permissions_granted,
//     identity.role.permissions_revoked (identityv1.RoleCreated, ...)
//
// Consumed (stream TENANT):
//   - tenant.tenant.created and tenant.tenant.password_policy_changed,
//     projected into tenant_password_policies (durable
//     identity_tenant_password_policies); a tenant identity has not heard
//     of gets the default policy (12 characters, breached list, no history).
//   - tenant.tenant.created and tenant.tenant.updated, projected into
//     tenants (durable identity_tenants): the tenants identity knows and
//     their status. RegisterUser and ImportUser in a tenant identity does
//     not know (not created, or not projected yet) or that is not active
//     are NotFound ("tenant not found"); AuthenticateUser there fails as
//     a wrong password does (see below). The other commands name users
//     that already exist and do not check the tenant.
//
// Emails. Addresses are parsed by services/internal/email: Unicode local
// parts and IDNA domains are accepted; invisible characters, labels that
// mix scripts and Cyrillic or Greek imitations of Latin are refused
// (InvalidArgument on email). Uniqueness and login matching use the
// canonical form (NFC, local part lower-cased, A-label domain) that risk
// keys accounts by too; the spelling the user chose is kept for display.
//
// Passwords are 12 to 128 characters (schema rules), at least the tenant's
// minimum length, not on the breached-password list authms ships
// (services/internal/breached, when the tenant's policy says so), not on
// identity's own list of common passwords, not containing the email's
// local part, and not among the user's last N passwords (tenant policy).
// Hashes use argon2id with the parameters of [PasswordParams], stored as
// PHC strings; ImportUser accepts bcrypt hashes. A successful login
// re-hashes a bcrypt hash, or an argon2id hash weaker than the configured
// parameters, in the same call. A password or its hash never appears in an
// event, a log line or a response.
//
// Calls (risk, with identity's own service token, platform.Deps.ServiceToken):
//   - ChangePassword and ChangeEmail check the current password as a login
//     attempt of the user's account: AttemptLogin, the hash, then
//     ReportLoginResult (reauthenticate). Wrong passwords count against the
//     tenant's lockout like failed logins, and a locked account is refused
//     as Login refuses it (rpc.DeniedError); ChangeEmail needs the current
//     password for the same reason as ChangePassword: with a stolen access
//     token alone, moving the email would let the thief reset the password.
//     The caller re-authenticates: a tenant admin changing another user's
//     email gives the admin's own password (callerOf), which they know and
//     whose wrong guesses count against the admin's account, not the
//     user's.
//   - RequestPasswordReset asks AttemptPasswordReset, per tenant and client
//     address, before it looks the email up (throttle): past risk's
//     reset throttle it is ResourceExhausted for every email alike.
//   - RegisterUser asks AttemptRegistration, per tenant and client
//     address, once it knows the tenant is active (an unknown or suspended
//     tenant is NotFound and not counted) and before it hashes the
//     password or looks the email up (throttle): past risk's registration
//     throttle it is ResourceExhausted for new and taken emails alike, and
//     records nothing (no user, no identity.registration.address_taken).
//     ImportUser, an admin's, is not throttled.
//
// The client address is the connection's peer, or X-Forwarded-For read from
// the right when the peer is one of the platform's trusted proxies
// (services/internal/clientip). Risk unreachable, these four calls fail
// (Unavailable) rather than go unchecked.
//
// AuthenticateUser is enumeration-safe: an unknown or suspended tenant, an
// unknown email, a wrong or empty password and a disabled or deleted user
// all get the same Unauthenticated error after one hash (a dummy argon2id hash with the configured
// parameters when there is no stored hash to check). RequestPasswordReset
// answers the same for every email; the known-user path also writes the
// token and its event (a database transaction of about a millisecond),
// which the others skip.
//
// Tokens for email verification and password reset are 32 random bytes
// (base64url), stored only as SHA-256, single-use, expiring
// (Config.VerificationTokenTTL, default 24h; Config.ResetTokenTTL, default
// 1h), and a new token replaces the older one of its kind. Their events
// carry the token's id; until the notification service delivers the
// links, identity logs them at info level ("email verification link",
// "password reset link") under Config.LinkBaseURL when Config.LogLinks is
// set, as `authms dev` does. Otherwise it logs only the token's id: a
// link in a production log would let whoever reads it take over the
// account. A reset is issued at most once per Config.ResetRequestInterval
// (default 1m) for a user; a request within it answers the same and issues
// nothing. Imported bcrypt hashes may have a cost of at most 14.
//
// Roles: CreateRole, GrantPermissions, RevokePermissions, ListRoles,
// AssignRoles (the user's full set) and CheckPermission. Permissions are
// "<resource>:<action>", "<resource>:*" or "*"; every tenant has the
// built-in role admin (holding "*"), and "service" is reserved for
// internal callers. A disabled user holds no permissions.
//
// DeleteUser removes the user's rows (credentials, history, tokens,
// roles), so its email is free again and reads are NotFound; the events
// table keeps its history, and identity.user.deleted tells every other
// service to forget the user.
package identity
