// Package identity is the authms identity service: it owns users and their
// credentials.
//
// A user is an event-sourced aggregate (type "user") in the identity
// database. Every command runs in one PostgreSQL transaction that locks the
// aggregate, checks its version, updates the inline read tables (users, with
// one email per tenant, and credentials, with the argon2id password hash)
// and appends the new events to the events table and the outbox.
//
// Published (stream IDENTITY):
//   - identity.user.created (identityv1.UserCreated)
//   - identity.user.email_changed (identityv1.UserEmailChanged)
//
// Consumed: nothing yet.
//
// Passwords are 12 to 128 characters (declarative rules in the API schema);
// the service also refuses a list of common passwords and passwords that
// contain the local part of the user's email. Hashes use argon2id with the
// parameters of [PasswordParams], stored as PHC strings; a password or its
// hash never appears in an event, a log line or a response.
//
// AuthenticateUser checks an email and a password. Every failure (unknown
// email, wrong or empty password) is the same Unauthenticated error after
// the same work: without a stored hash to check, a dummy argon2id hash
// with the configured parameters runs. A successful login re-hashes a
// password whose stored hash is weaker than the configured parameters.
package identity
