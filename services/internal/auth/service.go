package auth

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
)

// ServiceKeyName names the secret (platform.Secrets) a service signs its
// own service tokens with: the 32 bytes are the seed of an Ed25519 key.
const ServiceKeyName = "service-token-signing"

// ServiceTokenTTL is the lifetime of the service tokens a [ServiceSigner]
// mints; one is renewed when less than a fifth of it is left.
const ServiceTokenTTL = 5 * time.Minute

// ServiceKey is the public half of a service's service-token key.
type ServiceKey struct {
	// Service is the service whose tokens the key signs ("identity").
	Service string
	Public  ed25519.PublicKey
}

// ServiceKeys are the services' service-token keys by kid. A token a
// service key verifies is accepted only as that service's own service
// token (sub "service:<Service>"): a service's key cannot sign for a user
// or for another service, unlike the session service's keys, which sign
// every user's access token.
type ServiceKeys map[string]ServiceKey

// ServiceSignerConfig configures a [ServiceSigner].
type ServiceSignerConfig struct {
	// Service is the name the tokens carry in sub ("service:<Service>").
	Service string
	// Seed is the service's ServiceKeyName secret (ed25519.SeedSize bytes).
	Seed []byte
	// Issuer and Audience are the tokens' iss and aud (defaults
	// DefaultIssuer, DefaultAudience), the ones verifiers require.
	Issuer, Audience string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// ServiceSigner mints one service's service tokens, for its calls to
// other services: a JWT with sub "service:<name>", role "service", no tid
// or sid, signed with the service's own key ([ServiceKeyName]), cached and
// renewed once less than a fifth of [ServiceTokenTTL] is left. Verifiers
// know its public half through [VerifierConfig.ServiceKeys].
type ServiceSigner struct {
	service, kid     string
	key              ed25519.PrivateKey
	issuer, audience string
	now              func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

// NewServiceSigner returns the signer of cfg.Service.
func NewServiceSigner(cfg ServiceSignerConfig) (*ServiceSigner, error) {
	if cfg.Service == "" {
		return nil, errors.New("service signer: a service name is required")
	}
	if len(cfg.Seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("service signer %s: the key seed must be %d bytes, not %d", cfg.Service, ed25519.SeedSize, len(cfg.Seed))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	key := ed25519.NewKeyFromSeed(cfg.Seed)
	sum := sha256.Sum256(key.Public().(ed25519.PublicKey))
	return &ServiceSigner{
		service: cfg.Service,
		// The kid names the service and the key, so a new secret is a new
		// kid and the session service's kids (UUIDs) never collide.
		kid:      "service-" + cfg.Service + "-" + hex.EncodeToString(sum[:8]),
		key:      key,
		issuer:   cmp.Or(cfg.Issuer, DefaultIssuer),
		audience: cmp.Or(cfg.Audience, DefaultAudience),
		now:      cfg.Now,
	}, nil
}

// Key returns the kid and public half verifiers need.
func (s *ServiceSigner) Key() (string, ServiceKey) {
	return s.kid, ServiceKey{Service: s.service, Public: s.key.Public().(ed25519.PublicKey)}
}

// Token returns a valid service token of the service.
func (s *ServiceSigner) Token(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.token != "" && now.Before(s.expires.Add(-ServiceTokenTTL/5)) {
		return s.token, nil
	}
	iat := now.Truncate(time.Second)
	exp := iat.Add(ServiceTokenTTL)
	header, err := json.Marshal(map[string]string{"alg": "EdDSA", "typ": "JWT", "kid": s.kid})
	if err != nil {
		return "", fmt.Errorf("service token header: %w", err)
	}
	claims, err := json.Marshal(map[string]any{
		"iss": s.issuer, "aud": s.audience, "sub": servicePrefix + s.service, "roles": []string{RoleService},
		"iat": iat.Unix(), "nbf": iat.Unix(), "exp": exp.Unix(), "jti": uuid.NewString(),
	})
	if err != nil {
		return "", fmt.Errorf("service token claims: %w", err)
	}
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
	s.token = input + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(s.key, []byte(input)))
	s.expires = exp
	return s.token, nil
}

// TokenSource gives the bearer token of a client's calls.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// Bearer returns a client interceptor that sends every unary call with
// "Authorization: Bearer <token>" from tokens.
func Bearer(tokens TokenSource) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if req.Spec().IsClient {
				t, err := tokens.Token(ctx)
				if err != nil {
					return nil, err
				}
				req.Header().Set("Authorization", "Bearer "+t)
			}
			return next(ctx, req)
		}
	}
}
