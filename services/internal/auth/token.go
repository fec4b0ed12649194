package auth

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Token defaults, from the access-token contract between session and auth.
const (
	// DefaultIssuer is the iss of every access token unless configured.
	DefaultIssuer = "authms"
	// DefaultAudience is the aud of every access token unless configured.
	DefaultAudience = "authms"
	// DefaultSkew is the clock skew allowed on exp, nbf and iat.
	DefaultSkew = 30 * time.Second
	// MaxTokenLifetime is the longest access-token lifetime a tenant's
	// session policy may set (exp - iat). Longer tokens are refused, so the
	// revocation list never needs to remember a session for longer.
	MaxTokenLifetime = 15 * time.Minute
	// maxTokenSize bounds the compact JWS the verifier parses.
	maxTokenSize = 8 << 10
)

// Errors a [Verifier] wraps. Callers branch on them; clients never see
// which one it was.
var (
	// ErrInvalidToken wraps every reason a token is refused.
	ErrInvalidToken = errors.New("invalid token")
	// ErrUnknownKey is returned by a [KeySource] that has no key of the
	// requested id.
	ErrUnknownKey = errors.New("unknown signing key")
)

// KeySource returns the public keys access tokens are verified with.
type KeySource interface {
	// Key returns the Ed25519 public key whose id is kid, or an error
	// wrapping ErrUnknownKey when it knows none. It must not make a
	// network call per request: sources cache.
	Key(ctx context.Context, kid string) (ed25519.PublicKey, error)
}

// StaticKeys is a fixed set of keys by id (tests, or keys configured
// out of band).
type StaticKeys map[string]ed25519.PublicKey

// Key implements KeySource.
func (s StaticKeys) Key(_ context.Context, kid string) (ed25519.PublicKey, error) {
	if k, ok := s[kid]; ok && len(k) == ed25519.PublicKeySize {
		return k, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownKey, kid)
}

// chain tries its sources in order.
type chain []KeySource

// Chain returns a KeySource that asks each source in turn, moving to the
// next only when one does not know the key.
func Chain(sources ...KeySource) KeySource { return chain(sources) }

func (c chain) Key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	err := fmt.Errorf("%w %q", ErrUnknownKey, kid)
	for _, s := range c {
		if s == nil {
			continue
		}
		k, kerr := s.Key(ctx, kid)
		if kerr == nil {
			return k, nil
		}
		err = kerr
		if !errors.Is(kerr, ErrUnknownKey) {
			return nil, kerr
		}
	}
	return nil, err
}

// VerifierConfig configures a [Verifier].
type VerifierConfig struct {
	// Keys returns the signing keys of access tokens (the session
	// service's). They verify users' tokens and session's own service
	// tokens, no other service's. Required.
	Keys KeySource
	// ServiceKeys are the keys services sign their own service tokens
	// with; each verifies only its service's tokens. Nil: none.
	ServiceKeys ServiceKeys
	// Issuer and Audience must equal the token's iss and aud exactly
	// (defaults DefaultIssuer, DefaultAudience).
	Issuer, Audience string
	// Skew is the clock skew allowed on exp, nbf and iat (default
	// DefaultSkew).
	Skew time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Verifier verifies access tokens.
type Verifier struct {
	keys             KeySource
	serviceKeys      ServiceKeys
	issuer, audience string
	skew             time.Duration
	now              func() time.Time
}

// NewVerifier returns a verifier for cfg.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if cfg.Keys == nil {
		return nil, errors.New("auth verifier: a key source is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Skew < 0 || cfg.Skew > 5*time.Minute {
		return nil, fmt.Errorf("auth verifier: skew %s: want 0 to 5m", cfg.Skew)
	}
	return &Verifier{
		keys:        cfg.Keys,
		serviceKeys: cfg.ServiceKeys,
		issuer:      cmp.Or(cfg.Issuer, DefaultIssuer),
		audience:    cmp.Or(cfg.Audience, DefaultAudience),
		skew:        cmp.Or(cfg.Skew, DefaultSkew),
		now:         cfg.Now,
	}, nil
}

// header is a JWS protected header. Unknown members are ignored, except
// crit, whose presence refuses the token (RFC 7515 4.1.11: we understand
// no extension).
type header struct {
	Alg  string          `json:"alg"`
	Typ  *string         `json:"typ"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
	Jku  json.RawMessage `json:"jku"`
	Jwk  json.RawMessage `json:"jwk"`
	X5u  json.RawMessage `json:"x5u"`
	X5c  json.RawMessage `json:"x5c"`
}

// claims are the access-token claims of the contract. Aud is raw so an
// array is told apart from a string.
type claims struct {
	Iss   string          `json:"iss"`
	Aud   json.RawMessage `json:"aud"`
	Sub   string          `json:"sub"`
	Tid   string          `json:"tid"`
	Sid   string          `json:"sid"`
	Roles []string        `json:"roles"`
	Iat   *float64        `json:"iat"`
	Nbf   *float64        `json:"nbf"`
	Exp   *float64        `json:"exp"`
}

// Verify checks token and returns its principal. Every failure wraps
// ErrInvalidToken; the wrapped reason is for logs, never for clients.
func (v *Verifier) Verify(ctx context.Context, token string) (Principal, error) {
	p, err := v.verify(ctx, token)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return p, nil
}

func (v *Verifier) verify(ctx context.Context, token string) (Principal, error) {
	if len(token) > maxTokenSize {
		return Principal{}, errors.New("token too large")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Principal{}, errors.New("not a compact JWS")
	}
	rawHeader, err := b64(parts[0])
	if err != nil {
		return Principal{}, fmt.Errorf("header: %w", err)
	}
	var h header
	if err := strictJSON(rawHeader, &h); err != nil {
		return Principal{}, fmt.Errorf("header: %w", err)
	}
	// The allow-list: EdDSA (Ed25519) only; "none", HS*, RS*, ES* never.
	if h.Alg != "EdDSA" {
		return Principal{}, fmt.Errorf("alg %q not allowed", h.Alg)
	}
	if h.Typ != nil && !strings.EqualFold(*h.Typ, "JWT") {
		return Principal{}, fmt.Errorf("typ %q", *h.Typ)
	}
	if h.Crit != nil {
		return Principal{}, errors.New("crit header not supported")
	}
	// Keys come from our KeySource only, never from the token.
	if h.Jku != nil || h.Jwk != nil || h.X5u != nil || h.X5c != nil {
		return Principal{}, errors.New("embedded key references not allowed")
	}
	if h.Kid == "" {
		return Principal{}, errors.New("no kid")
	}
	sig, err := b64(parts[2])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return Principal{}, errors.New("malformed signature")
	}
	key, service, err := v.key(ctx, h.Kid)
	if err != nil {
		return Principal{}, fmt.Errorf("key %q: %w", h.Kid, err)
	}
	if !ed25519.Verify(key, []byte(parts[0]+"."+parts[1]), sig) {
		return Principal{}, errors.New("bad signature")
	}
	rawClaims, err := b64(parts[1])
	if err != nil {
		return Principal{}, fmt.Errorf("claims: %w", err)
	}
	var c claims
	if err := strictJSON(rawClaims, &c); err != nil {
		return Principal{}, fmt.Errorf("claims: %w", err)
	}
	if err := v.checkClaims(c); err != nil {
		return Principal{}, err
	}
	p, err := principalOf(c)
	if err != nil {
		return Principal{}, err
	}
	switch {
	case service != "" && p.Subject != servicePrefix+service:
		return Principal{}, fmt.Errorf("the service key of %s signed a token of %q", service, p.Subject)
	case service == "" && p.IsService() && p.Service() != SessionService:
		return Principal{}, fmt.Errorf("an access-token key signed a service token of %q", p.Subject)
	}
	return p, nil
}

// key returns the key of kid and, for a service key, the one service
// whose tokens it may sign. The other keys, session's, sign users' access
// tokens and session's own service tokens only.
func (v *Verifier) key(ctx context.Context, kid string) (ed25519.PublicKey, string, error) {
	if k, ok := v.serviceKeys[kid]; ok && len(k.Public) == ed25519.PublicKeySize {
		return k.Public, k.Service, nil
	}
	key, err := v.keys.Key(ctx, kid)
	return key, "", err
}

// checkClaims checks iss, aud and the validity window.
func (v *Verifier) checkClaims(c claims) error {
	if c.Iss != v.issuer {
		return fmt.Errorf("iss %q", c.Iss)
	}
	// aud must be exactly one string: session mints a single audience, and
	// a token minted for several audiences is not one meant for us alone.
	var aud string
	if err := json.Unmarshal(c.Aud, &aud); err != nil || aud != v.audience {
		return fmt.Errorf("aud %s", c.Aud)
	}
	if c.Exp == nil || c.Nbf == nil || c.Iat == nil {
		return errors.New("exp, nbf and iat are required")
	}
	exp, nbf, iat := numericDate(*c.Exp), numericDate(*c.Nbf), numericDate(*c.Iat)
	now := v.now()
	switch {
	case !now.Before(exp.Add(v.skew)):
		return errors.New("expired")
	case now.Add(v.skew).Before(nbf):
		return errors.New("not valid yet")
	case now.Add(v.skew).Before(iat):
		return errors.New("issued in the future")
	case exp.Sub(iat) > MaxTokenLifetime:
		return fmt.Errorf("lifetime %s exceeds %s", exp.Sub(iat), MaxTokenLifetime)
	}
	return nil
}

// principalOf returns the principal of a user or a service token.
func principalOf(c claims) (Principal, error) {
	if name, ok := strings.CutPrefix(c.Sub, servicePrefix); ok {
		if name == "" || c.Tid != "" || c.Sid != "" || !slices.Contains(c.Roles, RoleService) {
			return Principal{}, errors.New("malformed service token")
		}
		return Principal{Subject: c.Sub, Roles: []string{RoleService}}, nil
	}
	for name, id := range map[string]string{"sub": c.Sub, "tid": c.Tid, "sid": c.Sid} {
		if err := uuid.Validate(id); err != nil {
			return Principal{}, fmt.Errorf("%s: not a UUID", name)
		}
	}
	// "service" is a platform role: a tenant cannot hand it to a user.
	var roles []string
	for _, r := range c.Roles {
		if r != RoleService && r != "" {
			roles = append(roles, r)
		}
	}
	return Principal{Subject: c.Sub, TenantID: c.Tid, SessionID: c.Sid, Roles: roles}, nil
}

// numericDate converts a JWT NumericDate (seconds, maybe fractional).
func numericDate(f float64) time.Time {
	if math.IsNaN(f) || math.IsInf(f, 0) || f > 1<<40 || f < -(1<<40) {
		return time.Time{} // fails every window check: the zero time is long past
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9))
}

// b64 decodes unpadded base64url, as JWS requires.
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

// strictJSON decodes one JSON object and nothing after it.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}
