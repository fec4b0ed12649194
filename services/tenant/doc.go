// Package tenant is the authms tenant service: it owns tenants (slug,
// display name, status), their configuration — password, MFA, session and
// lockout policies, white-label branding and domains. Password policies
// check the breached-password list authms ships (services/internal/breached,
// shared with identity).
//
// A tenant is an event-sourced aggregate (type "tenant", id = tenant id) in
// the tenant database. Every command runs in one PostgreSQL transaction
// that locks the tenant, checks the optional expected_version (a mismatch
// is Aborted), decides, updates the inline read tables (tenants, domains)
// and appends one event to the events table and the outbox. A command that
// changes nothing appends nothing. Each policy is replaced whole by its own
// command, and its event carries the whole new policy, so projectors in
// other services upsert it guarded by the tenant's version.
//
// A tenant's status is the platform operator's: SuspendTenant and
// ReactivateTenant take the operator token, and an UpdateTenant (a tenant
// admin's) that sets the status is PermissionDenied.
//
// Domains: AddDomain stores a domain pending, in IDNA ASCII form and lower
// case, with the SHA-256 of a random verification token that only the
// response carries. The tenant publishes the token as a TXT record of
// _authms-challenge.<domain>; VerifyDomain looks it up (through the system
// resolver, or Config.DNSServer) and verifies the domain when a record
// hashes to the stored SHA-256. The lookup runs before the command's
// transaction, so no lock waits on DNS. Several tenants may have the same
// domain pending, so adding a domain first squats nothing; only one
// tenant can verify it. Config.InsecureSkipDomainCheck (authms dev
// with AUTHMS_INSECURE_SKIP_DOMAIN_CHECK=1) verifies without DNS and logs a
// warning.
//
// Published (stream TENANT, subjects tenant.tenant.<event>):
//   - tenant.tenant.created (tenantv1.TenantCreated, with the default policies)
//   - tenant.tenant.updated (tenantv1.TenantUpdated: the display name)
//   - tenant.tenant.suspended, reactivated (tenantv1.TenantSuspended,
//     TenantReactivated)
//   - tenant.tenant.password_policy_changed (tenantv1.PasswordPolicyChanged)
//   - tenant.tenant.mfa_policy_changed (tenantv1.MfaPolicyChanged)
//   - tenant.tenant.session_policy_changed (tenantv1.SessionPolicyChanged)
//   - tenant.tenant.lockout_policy_changed (tenantv1.LockoutPolicyChanged)
//   - tenant.tenant.branding_changed (tenantv1.BrandingChanged)
//   - tenant.tenant.domain_added, domain_verified, domain_removed
//     (tenantv1.DomainAdded, DomainVerified, DomainRemoved)
//
// Consumed: nothing.
//
// Who may call what is [Service.Policies]: the operator creates, lists,
// suspends and reactivates tenants; a tenant's admins change the rest;
// its users read it; services also check passwords.
package tenant
