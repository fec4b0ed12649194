// Package risk is the authms risk service: it defends logins against brute
// force and credential stuffing. It owns login attempts, per-account
// lockouts and per-address throttles (of failed logins, and of the public
// requests: password reset requests and registrations), in the risk
// database.
//
// An account is a tenant and an email. The email is never stored or
// published: the account is keyed by HMAC-SHA256, under the service's
// "email-blind-index" key, of the tenant id and the canonical email
// (trimmed, NFC, lower case, IDNA ASCII domain), so any spelling of an
// address is one account. A client address is keyed as is, except that an
// IPv6 client is throttled by its /64, which one subscriber usually holds
// whole.
//
// The login flow: session calls AttemptLogin before it checks a password
// and ReportLoginResult after; identity does the same around the current
// password of ChangePassword and ChangeEmail, so those checks count
// against the account's lockout like logins. AttemptLogin locks the account's and the
// address's rows (SELECT ... FOR UPDATE, account first), counts the
// failures in the window and the reservations in flight, and reserves an
// attempt only if both stay under their limits, all in one transaction: however many
// attempts run in parallel, at most max_failures of them are let through
// before the lock. A reservation lapses after Config.ReservationTTL if
// never reported. ReportLoginResult (and RecordLoginAttempt, for attempts
// that were not reserved) counts a failure, locks the account when its
// failures reach max_failures in the window, and throttles the address
// when its failures reach the throttle's limit; a success clears the
// account's failures. A lock lifts by itself after lockout_duration, or
// through UnlockAccount.
//
// The lockout policy applied is, in order: the one in the request (the
// caller's cached copy of the tenant's); the tenant's, projected from the
// TENANT stream into tenant_lockout_policies; Config.Lockout (5 failures in
// 15 minutes lock for 15 minutes). The address throttle is the request's or
// Config.IPThrottle (100 failures in 5 minutes).
//
// The public request throttle: identity calls AttemptPasswordReset for
// each RequestPasswordReset before it looks the email up, and
// AttemptRegistration for each RegisterUser before it hashes the password
// or looks the email up. Both are attemptPublicRequest, for a kind of
// request: it counts the address's requests of that kind in
// public_requests, a counter of its own (see attemptPublicRequest for why
// not the login throttle's), and denies one once the address has the
// kind's limit in the window (Config.ResetThrottle and
// Config.RegistrationThrottle, each 20 in 15 minutes by default), under
// the address's row lock like AttemptLogin, or the address's limit across
// every tenant (the AllTenants policies, 100 in 15 minutes), under an
// advisory lock of the address and kind. Kinds do not count against
// each other. A denied request does not count; no event is recorded.
//
// Attempts are operational state, not events (an event per attempt would
// flood the stream during an attack): the events record the decisions.
// Commands on an account or an address are serialised by its row lock,
// which is why they append without the event store's advisory lock.
//
// Published (stream RISK):
//   - risk.account.locked (riskv1.AccountLocked)
//   - risk.account.unlocked (riskv1.AccountUnlocked)
//   - risk.ip.throttled (riskv1.IpThrottled)
//
// Consumed (stream TENANT, durable consumer "risk_tenant_lockout_policies"):
//   - tenant.tenant.created, tenant.tenant.lockout_policy_changed: the
//     tenant's lockout policy.
//
// The password checks take the service token of their callers only:
// session and identity for AttemptLogin and ReportLoginResult, session for
// RecordLoginAttempt and CheckLogin, identity for AttemptPasswordReset and
// AttemptRegistration. UnlockAccount takes an admin of the tenant (see
// Policies).
package risk
