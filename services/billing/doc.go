// Package billing is the authms billing service. It will own plans,
// subscriptions, invoices and payments in its own database (authms_billing);
// today it owns the user_profiles cache and the BillingService API that
// reads it.
//
// It consumes identity.user.created and identity.user.email_changed from the
// IDENTITY stream and projects them into user_profiles: one row per user with
// the email sealed with AES-256-GCM (key "email-encryption", bound to the
// tenant and user) and a blind index, an HMAC-SHA256 of the normalised email
// scoped by tenant (key "email-blind-index"), for exact lookup without
// storing the address in the clear. Rows carry the identity user's aggregate
// version and only ever move forward, so redelivered or reordered events
// never revert them. The cache is never a source of truth: it can be dropped
// and rebuilt by replaying the IDENTITY stream.
//
// It publishes no events yet.
package billing
