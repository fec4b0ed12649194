// Package authtest mints access tokens for tests that run without the
// session service: a [Signer] holds an Ed25519 key whose public half a
// test installs as the platform's auth.KeySource, and signs tokens shaped
// as session mints them (or shaped as an attacker would).
package authtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/authms/authms/services/internal/auth"
)

// Signer signs test access tokens with one key.
type Signer struct {
	// KID is the key id tokens carry in their header.
	KID string
	// Private is the signing key.
	Private ed25519.PrivateKey
	// Issuer and Audience go in iss and aud (default auth.DefaultIssuer,
	// auth.DefaultAudience).
	Issuer, Audience string
	// Now is the clock of iat when Claims.IssuedAt is zero; nil: time.Now.
	Now func() time.Time
}

// NewSigner returns a signer with a fresh key named kid.
func NewSigner(tb testing.TB, kid string) *Signer {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatalf("authtest: %v", err)
	}
	return &Signer{KID: kid, Private: priv, Issuer: auth.DefaultIssuer, Audience: auth.DefaultAudience}
}

// Public returns the public key.
func (s *Signer) Public() ed25519.PublicKey { return s.Private.Public().(ed25519.PublicKey) }

// Keys returns a key source that knows the signer's key.
func (s *Signer) Keys() auth.StaticKeys { return auth.StaticKeys{s.KID: s.Public()} }

// Claims describes a token; zero fields get the contract's values.
type Claims struct {
	// Subject is the user id, or "service:<name>".
	Subject string
	// TenantID and SessionID: for a user token, a random session when
	// SessionID is empty.
	TenantID, SessionID string
	Roles               []string
	// IssuedAt defaults to now; Lifetime (exp - iat) to 10 minutes.
	IssuedAt time.Time
	Lifetime time.Duration
}

// Map returns the claims as session mints them.
func (s *Signer) Map(c Claims) map[string]any {
	iat := c.IssuedAt
	switch {
	case !iat.IsZero():
	case s.Now != nil:
		iat = s.Now()
	default:
		iat = time.Now()
	}
	life := c.Lifetime
	if life == 0 {
		life = 10 * time.Minute
	}
	m := map[string]any{
		"iss":   s.Issuer,
		"aud":   s.Audience,
		"sub":   c.Subject,
		"roles": append([]string{}, c.Roles...),
		"iat":   iat.Unix(),
		"nbf":   iat.Unix(),
		"exp":   iat.Add(life).Unix(),
		"jti":   uuid.NewString(),
	}
	if c.TenantID != "" {
		m["tid"] = c.TenantID
		sid := c.SessionID
		if sid == "" {
			sid = uuid.NewString()
		}
		m["sid"] = sid
	}
	return m
}

// Header returns the JWS header session uses.
func (s *Signer) Header() map[string]any {
	return map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": s.KID}
}

// Token returns a valid token for c.
func (s *Signer) Token(tb testing.TB, c Claims) string {
	tb.Helper()
	return s.Sign(tb, s.Header(), s.Map(c))
}

// UserToken returns a valid token of user in tenant with roles.
func (s *Signer) UserToken(tb testing.TB, tenantID, userID string, roles ...string) string {
	tb.Helper()
	return s.Token(tb, Claims{Subject: userID, TenantID: tenantID, Roles: roles})
}

// ServiceToken returns a valid service token of service name.
func (s *Signer) ServiceToken(tb testing.TB, name string) string {
	tb.Helper()
	return s.Token(tb, Claims{Subject: "service:" + name, Roles: []string{auth.RoleService}, Lifetime: 5 * time.Minute})
}

// Sign signs any header and claims with the signer's key: tests tamper
// with both to attack the verifier.
func (s *Signer) Sign(tb testing.TB, header, claims map[string]any) string {
	tb.Helper()
	signing := Encode(tb, header) + "." + Encode(tb, claims)
	return signing + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(s.Private, []byte(signing)))
}

// Encode returns v as JSON in unpadded base64url, a JWS segment.
func Encode(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("authtest: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// JWKS returns the signers' public keys as the session service serves
// them.
func JWKS(signers ...*Signer) []byte {
	type jwk struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		X   string `json:"x"`
		Kid string `json:"kid"`
		Use string `json:"use"`
		Alg string `json:"alg"`
	}
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for _, s := range signers {
		set.Keys = append(set.Keys, jwk{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(s.Public()), Kid: s.KID, Use: "sig", Alg: "EdDSA"})
	}
	b, _ := json.Marshal(set) // cannot fail: strings only
	return b
}
