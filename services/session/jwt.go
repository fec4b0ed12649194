package session

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
)

// serviceSubject is the sub claim of session's own service token.
const serviceSubject = "service:session"

// roleService is the role of internal callers.
const roleService = "service"

// claims are an access token's claims (the contract between session and
// the auth interceptor).
type claims struct {
	Issuer    string   `json:"iss"`
	Audience  string   `json:"aud"`
	Subject   string   `json:"sub"`
	TenantID  string   `json:"tid,omitempty"`
	SessionID string   `json:"sid,omitempty"`
	Roles     []string `json:"roles"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	Expires   int64    `json:"exp"`
	ID        string   `json:"jti"`
}

// header is the JOSE header of every token session signs.
type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

// grant is what a token is minted for.
type grant struct {
	subject, tenantID, sessionID string
	roles                        []string
	ttl                          time.Duration
}

// mint signs a JWT for g with the key that signs now; it returns the token
// and its expiry.
func (k *keyring) mint(ctx context.Context, g grant) (string, time.Time, error) {
	key, err := k.current(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	now := k.now().Truncate(time.Second)
	exp := now.Add(g.ttl)
	roles := g.roles
	if roles == nil {
		roles = []string{}
	}
	c := claims{
		Issuer: k.cfg.Issuer, Audience: k.cfg.Audience, Subject: g.subject, TenantID: g.tenantID, SessionID: g.sessionID,
		Roles: roles, IssuedAt: now.Unix(), NotBefore: now.Unix(), Expires: exp.Unix(), ID: uuid.NewString(),
	}
	token, err := sign(key, c)
	if err != nil {
		return "", time.Time{}, err
	}
	return token, exp, nil
}

// sign returns the compact JWS of c signed with key (EdDSA, RFC 8037).
func sign(key signingKey, c claims) (string, error) {
	h, err := json.Marshal(header{Alg: "EdDSA", Typ: "JWT", Kid: key.kid})
	if err != nil {
		return "", fmt.Errorf("encode JWT header: %w", err)
	}
	p, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode JWT claims: %w", err)
	}
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	sig := ed25519.Sign(key.private, []byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// serviceToken is session's own credential for its calls to identity and
// risk: a JWT with sub "service:session" and role "service", cached and
// renewed once less than a fifth of its lifetime is left.
type serviceToken struct {
	keys *keyring
	ttl  time.Duration

	mu      sync.Mutex
	token   string
	expires time.Time
}

// Token implements auth.TokenSource.
func (t *serviceToken) Token(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token != "" && t.keys.now().Before(t.expires.Add(-t.ttl/5)) {
		return t.token, nil
	}
	token, exp, err := t.keys.mint(ctx, grant{subject: serviceSubject, roles: []string{roleService}, ttl: t.ttl})
	if err != nil {
		return "", fmt.Errorf("mint the service token: %w", err)
	}
	t.token, t.expires = token, exp
	return token, nil
}
