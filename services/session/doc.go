// Package session is the authms session service: it logs users in and
// keeps them logged in. It owns login sessions, rotating refresh tokens and
// the Ed25519 keys that sign access tokens, in the session database.
//
// Placeholder: the full description follows with the tests.
package session
