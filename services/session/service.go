package session

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"sync"
	"time"

	"github.com/authms/authms/events"
	"github.com/authms/authms/projections"
	"github.com/authms/authms/schemas/gen/authms/session/v1/sessionv1connect"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/platform"
	"github.com/authms/authms/services/session/store"
)

// Name is the service's name.
const Name = "session"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the service's schema migrations, applied after the
// shared event store's (events.Migrations).
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the directory is embedded above; this cannot fail
	}
	return sub
}

// Bounds of the tenant session policy (schemas/authms/tenant/v1): an access
// token lives 5 to 15 minutes.
const (
	minAccessTokenTTL = 5 * time.Minute
	maxAccessTokenTTL = 15 * time.Minute
	maxReuseGrace     = time.Minute
	// maxRefreshLimit bounds a refresh limit's Max, whose counter
	// (refresh_limits.hits) is a 32-bit integer.
	maxRefreshLimit = 1_000_000
)

// Config tunes the session service. Zero fields take their defaults.
type Config struct {
	// Issuer is the access tokens' iss claim (default "authms").
	Issuer string
	// Audience is the access tokens' aud claim (default "authms").
	Audience string
	// AccessTokenTTL applies to tenants whose session policy session has
	// not projected (default 10 minutes; 5 to 15).
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is the session lifetime for tenants not projected
	// (default 30 days).
	RefreshTokenTTL time.Duration
	// RefreshReuseGrace is how long a refresh token exchanged moments ago
	// still returns the same successor, for tenants not projected (default
	// 5 seconds; at most 1 minute).
	RefreshReuseGrace time.Duration
	// KeyRotation is how long a signing key signs before its successor
	// takes over (default 24 hours).
	KeyRotation time.Duration
	// JWKSMaxAge is the JWKS response's Cache-Control max-age (default 60
	// seconds). A new key is published that long before it signs.
	JWKSMaxAge time.Duration
	// KeyCheckInterval is how often every instance checks whether a key is
	// due for rotation or removal, and reloads the keys it signs with
	// (default half of JWKSMaxAge, 30 seconds). It must be shorter than
	// JWKSMaxAge by at least the verifiers' shortest JWKS cache
	// (auth.MinJWKSTTL, 5 seconds), so every instance knows a key before it
	// activates and no verifier caches a JWKS past that. It also paces the
	// sweep that revokes the sessions of suspended tenants.
	KeyCheckInterval time.Duration
	// ServiceTokenTTL is the lifetime of the token session calls identity
	// and risk with (default 5 minutes); it is renewed when less than a
	// fifth of it is left.
	ServiceTokenTTL time.Duration
	// RefreshLimitPerAddress bounds the Refresh calls of one client
	// address (an IPv6 client by its /64) whose token names no session:
	// malformed, unknown or of a session pruned since, which is what a
	// token guesser sends (default 300 per minute). A token that names a
	// session never counts here, so however many users share an address
	// (a NAT, an office proxy) they refresh unhindered, a guesser among
	// them included; only a client holding stale tokens, a few at most,
	// comes near it.
	RefreshLimitPerAddress RateLimit
	// RefreshLimitPerSession bounds the Refresh calls presenting a token of
	// one session, whatever the address (default 30 per minute: a client
	// refreshes once per access token lifetime, and a burst of concurrent
	// refreshes within the reuse grace fits easily). It also bounds the
	// refresh_tokens rows one session writes.
	RefreshLimitPerSession RateLimit
	// Now is the clock (default time.Now); tests move it to age tokens
	// and keys.
	Now func() time.Time
}

// DefaultConfig returns the production configuration.
func DefaultConfig() Config { return Config{}.withDefaults() }

func (c Config) withDefaults() Config {
	if c.Issuer == "" {
		c.Issuer = "authms"
	}
	if c.Audience == "" {
		c.Audience = "authms"
	}
	if c.AccessTokenTTL == 0 {
		c.AccessTokenTTL = 10 * time.Minute
	}
	if c.RefreshTokenTTL == 0 {
		c.RefreshTokenTTL = 30 * 24 * time.Hour
	}
	if c.RefreshReuseGrace == 0 {
		c.RefreshReuseGrace = 5 * time.Second
	}
	if c.KeyRotation == 0 {
		c.KeyRotation = 24 * time.Hour
	}
	if c.JWKSMaxAge == 0 {
		c.JWKSMaxAge = time.Minute
	}
	if c.KeyCheckInterval == 0 {
		c.KeyCheckInterval = c.JWKSMaxAge / 2
	}
	if c.ServiceTokenTTL == 0 {
		c.ServiceTokenTTL = 5 * time.Minute
	}
	if c.RefreshLimitPerAddress == (RateLimit{}) {
		c.RefreshLimitPerAddress = RateLimit{Max: 300, Window: time.Minute}
	}
	if c.RefreshLimitPerSession == (RateLimit{}) {
		c.RefreshLimitPerSession = RateLimit{Max: 30, Window: time.Minute}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.AccessTokenTTL < minAccessTokenTTL || c.AccessTokenTTL > maxAccessTokenTTL {
		errs = append(errs, fmt.Errorf("access token TTL %v: want 5 to 15 minutes", c.AccessTokenTTL))
	}
	if c.RefreshTokenTTL < time.Hour {
		errs = append(errs, fmt.Errorf("refresh token TTL %v: want at least an hour", c.RefreshTokenTTL))
	}
	if c.RefreshReuseGrace < 0 || c.RefreshReuseGrace > maxReuseGrace {
		errs = append(errs, fmt.Errorf("refresh reuse grace %v: want 0 to 1 minute", c.RefreshReuseGrace))
	}
	if c.JWKSMaxAge < time.Second {
		errs = append(errs, fmt.Errorf("JWKS max-age %v: want at least a second", c.JWKSMaxAge))
	}
	// The JWKS max-age shrinks to JWKSMaxAge-KeyCheckInterval before a
	// reload (keyring.published); below auth's minimum a verifier would
	// raise it, and cache a copy past the activation of a key it lacks.
	if c.KeyCheckInterval <= 0 || c.JWKSMaxAge-c.KeyCheckInterval < auth.MinJWKSTTL {
		errs = append(errs, fmt.Errorf("key check interval %v: want positive and at least %v shorter than the JWKS max-age %v", c.KeyCheckInterval, auth.MinJWKSTTL, c.JWKSMaxAge))
	}
	if c.KeyRotation < 2*c.JWKSMaxAge {
		errs = append(errs, fmt.Errorf("key rotation %v: want at least twice the JWKS max-age %v", c.KeyRotation, c.JWKSMaxAge))
	}
	if c.ServiceTokenTTL < time.Minute || c.ServiceTokenTTL > maxAccessTokenTTL {
		errs = append(errs, fmt.Errorf("service token TTL %v: want 1 to 15 minutes", c.ServiceTokenTTL))
	}
	for name, l := range map[string]RateLimit{"address": c.RefreshLimitPerAddress, "session": c.RefreshLimitPerSession} {
		if l.Max < 1 || l.Max > maxRefreshLimit || l.Window < time.Second || l.Window > time.Hour {
			errs = append(errs, fmt.Errorf("refresh limit per %s %d per %v: want 1 to %d calls per 1 second to 1 hour", name, l.Max, l.Window, maxRefreshLimit))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("session config: %w", err)
	}
	return nil
}

// Service is the session service.
type Service struct {
	deps   platform.Deps
	cfg    Config
	events *events.Store
	keys   *keyring
	peers  *peers
	// suspensions wakes revokeSuspended for a tenant just suspended.
	suspensions chan suspension
	// revokeBatch is how many sessions revokeSessionsOf revokes per
	// transaction (revokeBatchSize; tests lower it).
	revokeBatch int32
}

var _ platform.Service = (*Service)(nil)

// New builds the service from its dependencies with the default Config.
func New(d platform.Deps) (*Service, error) { return NewWithConfig(d, Config{}) }

// NewWithConfig builds the service from its dependencies and cfg (zero
// fields take their defaults).
func NewWithConfig(d platform.Deps, cfg Config) (*Service, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	if d.Peers == nil {
		return nil, errors.New("session deps: peers are required (session calls identity and risk)")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Service{
		deps:   d,
		cfg:    cfg,
		events: events.NewStore(Name),
		// A wake-up that finds the queue full is left to the periodic
		// sweep: suspensions are rare, a burst of them rarer.
		suspensions: make(chan suspension, 64),
		revokeBatch: revokeBatchSize,
	}
	s.keys = newKeyring(d.Pool, d.Secrets, cfg, d.Logger)
	s.peers = newPeers(d.Peers, s.keys, cfg)
	return s, nil
}

// Name returns "session".
func (s *Service) Name() string { return Name }

// Mount registers the SessionService Connect handler and the JWKS
// endpoint on mux.
func (s *Service) Mount(mux *http.ServeMux) {
	path, h := sessionv1connect.NewSessionServiceHandler(&api{s: s}, s.deps.HandlerOptions...)
	mux.Handle(path, h)
	mux.Handle("GET "+JWKSPath, s.jwksHandler())
}

// Projectors lists the service's projections; the platform runs them.
func (s *Service) Projectors() []projections.Projector {
	return []projections.Projector{
		s.sessionPoliciesProjector(), s.tenantStatusesProjector(), s.userRevocationsProjector(),
	}
}

// Run keeps the signing keys rotated and prunes ended sessions and
// finished refresh limit windows, every Config.KeyCheckInterval, and
// revokes the sessions of suspended tenants (revokeSuspended), until ctx
// ends. A failed pass is logged and retried at the next tick.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { s.revokeSuspended(ctx) })
	t := time.NewTicker(s.cfg.KeyCheckInterval)
	defer t.Stop()
	for {
		if err := s.keys.maintain(ctx); err != nil && ctx.Err() == nil {
			s.deps.Logger.WarnContext(ctx, "signing key maintenance failed; retrying at the next tick", "err", err)
		}
		if err := s.prune(ctx); err != nil && ctx.Err() == nil {
			s.deps.Logger.WarnContext(ctx, "pruning ended sessions failed; retrying at the next tick", "err", err)
		}
		if err := s.pruneRefreshLimits(ctx); err != nil && ctx.Err() == nil {
			s.deps.Logger.WarnContext(ctx, "pruning refresh limit counters failed; retrying at the next tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// sessionRetention is how long a session's row (and its refresh tokens) is
// kept after the session expired; ListSessions never shows it.
const sessionRetention = 7 * 24 * time.Hour

// prune deletes sessions that ended more than sessionRetention ago.
func (s *Service) prune(ctx context.Context) error {
	n, err := store.New(s.deps.Pool).DeleteSessionsExpiredBefore(ctx, s.now().Add(-sessionRetention))
	if err != nil {
		return fmt.Errorf("delete ended sessions: %w", err)
	}
	if n > 0 {
		s.deps.Logger.DebugContext(ctx, "pruned ended sessions", "sessions", n)
	}
	return nil
}

// now returns the current time as PostgreSQL stores it.
func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }
