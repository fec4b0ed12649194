package risk

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"time"

	"github.com/authms/authms/events"
	"github.com/authms/authms/projections"
	"github.com/authms/authms/schemas/gen/authms/risk/v1/riskv1connect"
	"github.com/authms/authms/services/internal/platform"
	"github.com/authms/authms/services/risk/store"
)

// Name is the service's name.
const Name = "risk"

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

// LockoutPolicy locks an account after MaxFailures failed logins within
// Window, for Duration.
type LockoutPolicy struct {
	MaxFailures int
	Window      time.Duration
	Duration    time.Duration
}

// IPThrottlePolicy throttles a client address after MaxFailures failed
// logins from it within Window, until the oldest leaves the window.
type IPThrottlePolicy struct {
	MaxFailures int
	Window      time.Duration
}

// PublicRequestThrottlePolicy lets at most MaxRequests public requests of
// one kind (password reset requests, registrations) from a client address
// through within Window.
type PublicRequestThrottlePolicy struct {
	MaxRequests int
	Window      time.Duration
}

// maxWindow is the longest window or lockout a policy may have.
const maxWindow = 24 * time.Hour

// Config tunes the risk service. Zero fields take their defaults.
type Config struct {
	// Lockout applies to tenants whose policy risk has not projected and
	// to requests that carry none (default 5 failures in 15 minutes lock
	// for 15 minutes).
	Lockout LockoutPolicy
	// IPThrottle applies to requests that carry none (default 100 failures
	// in 5 minutes).
	IPThrottle IPThrottlePolicy
	// ResetThrottle applies to AttemptPasswordReset requests that carry
	// none (default 20 requests in 15 minutes).
	ResetThrottle PublicRequestThrottlePolicy
	// RegistrationThrottle applies to AttemptRegistration requests that
	// carry none (default 20 registrations in 15 minutes: one person
	// registers once, so an office behind one NAT signing up together gets
	// through in a few windows, while one client cannot keep identity
	// hashing passwords or notifying account owners; raise it where users
	// register in bulk from one address).
	RegistrationThrottle PublicRequestThrottlePolicy
	// ResetThrottleAllTenants and RegistrationThrottleAllTenants limit an
	// address's requests of the kind across every tenant (default 100 in
	// 15 minutes each): without them one client spreads its requests over
	// every tenant whose id it knows, each tenant's limit anew.
	ResetThrottleAllTenants        PublicRequestThrottlePolicy
	RegistrationThrottleAllTenants PublicRequestThrottlePolicy
	// ReservationTTL is how long an attempt AttemptLogin allowed counts
	// against the limits before ReportLoginResult (default 1 minute).
	ReservationTTL time.Duration
	// Retention is how long attempts and idle accounts are kept; it must
	// cover the longest window (default 25 hours).
	Retention time.Duration
	// PruneInterval is how often old attempts are deleted (default 5
	// minutes).
	PruneInterval time.Duration
}

// DefaultConfig returns the production configuration.
func DefaultConfig() Config { return Config{}.withDefaults() }

func (c Config) withDefaults() Config {
	if c.Lockout == (LockoutPolicy{}) {
		c.Lockout = LockoutPolicy{MaxFailures: 5, Window: 15 * time.Minute, Duration: 15 * time.Minute}
	}
	if c.IPThrottle == (IPThrottlePolicy{}) {
		c.IPThrottle = IPThrottlePolicy{MaxFailures: 100, Window: 5 * time.Minute}
	}
	if c.ResetThrottle == (PublicRequestThrottlePolicy{}) {
		c.ResetThrottle = PublicRequestThrottlePolicy{MaxRequests: 20, Window: 15 * time.Minute}
	}
	if c.RegistrationThrottle == (PublicRequestThrottlePolicy{}) {
		c.RegistrationThrottle = PublicRequestThrottlePolicy{MaxRequests: 20, Window: 15 * time.Minute}
	}
	if c.ResetThrottleAllTenants == (PublicRequestThrottlePolicy{}) {
		c.ResetThrottleAllTenants = PublicRequestThrottlePolicy{MaxRequests: 100, Window: 15 * time.Minute}
	}
	if c.RegistrationThrottleAllTenants == (PublicRequestThrottlePolicy{}) {
		c.RegistrationThrottleAllTenants = PublicRequestThrottlePolicy{MaxRequests: 100, Window: 15 * time.Minute}
	}
	if c.ReservationTTL == 0 {
		c.ReservationTTL = time.Minute
	}
	if c.Retention == 0 {
		c.Retention = maxWindow + time.Hour
	}
	if c.PruneInterval == 0 {
		c.PruneInterval = 5 * time.Minute
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Lockout.MaxFailures < 1 || c.Lockout.Window <= 0 || c.Lockout.Duration <= 0 ||
		c.Lockout.Window > maxWindow || c.Lockout.Duration > maxWindow {
		errs = append(errs, fmt.Errorf("lockout policy %+v: want at least 1 failure, window and duration in (0, 24h]", c.Lockout))
	}
	if c.IPThrottle.MaxFailures < 1 || c.IPThrottle.Window <= 0 || c.IPThrottle.Window > maxWindow {
		errs = append(errs, fmt.Errorf("IP throttle policy %+v: want at least 1 failure, window in (0, 24h]", c.IPThrottle))
	}
	for _, k := range publicRequestKinds {
		perTenant, allTenants := c.throttles(k)
		for i, p := range []PublicRequestThrottlePolicy{perTenant, allTenants} {
			if p.MaxRequests < 1 || p.Window <= 0 || p.Window > maxWindow {
				scope := [...]string{"per tenant", "across tenants"}[i]
				errs = append(errs, fmt.Errorf("%s throttle policy %s %+v: want at least 1 request, window in (0, 24h]", k, scope, p))
			}
		}
	}
	if c.ReservationTTL <= 0 {
		errs = append(errs, fmt.Errorf("reservation TTL %v must be positive", c.ReservationTTL))
	}
	if c.Retention < maxWindow+c.ReservationTTL {
		errs = append(errs, fmt.Errorf("retention %v must cover the longest window (%v) and a reservation", c.Retention, maxWindow))
	}
	if c.PruneInterval <= 0 {
		errs = append(errs, fmt.Errorf("prune interval %v must be positive", c.PruneInterval))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("risk config: %w", err)
	}
	return nil
}

// Service is the risk service.
type Service struct {
	deps   platform.Deps
	cfg    Config
	events *events.Store
	now    func() time.Time
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
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Service{deps: d, cfg: cfg.withDefaults(), events: events.NewStore(Name), now: time.Now}, nil
}

// Name returns "risk".
func (s *Service) Name() string { return Name }

// Mount registers the RiskService Connect handler on mux.
func (s *Service) Mount(mux *http.ServeMux) {
	path, h := riskv1connect.NewRiskServiceHandler(&api{s: s}, s.deps.HandlerOptions...)
	mux.Handle(path, h)
}

// Projectors lists the service's projections; the platform runs them.
func (s *Service) Projectors() []projections.Projector {
	return []projections.Projector{s.lockoutPoliciesProjector()}
}

// Run prunes attempts, public requests, accounts and addresses older than
// Config.Retention every Config.PruneInterval until ctx ends. A failed pass
// is logged and retried at the next tick.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.prune(ctx); err != nil && ctx.Err() == nil {
				s.deps.Logger.WarnContext(ctx, "pruning old login attempts failed; retrying at the next tick", "err", err)
			}
		}
	}
}

// prune deletes what no decision needs any more.
func (s *Service) prune(ctx context.Context) error {
	now := s.now().UTC()
	before := now.Add(-s.cfg.Retention)
	q := store.New(s.deps.Pool)
	attempts, err := q.DeleteAttemptsBefore(ctx, before)
	if err != nil {
		return fmt.Errorf("delete old attempts: %w", err)
	}
	accounts, err := q.DeleteIdleAccounts(ctx, store.DeleteIdleAccountsParams{Before: before, Now: now})
	if err != nil {
		return fmt.Errorf("delete idle accounts: %w", err)
	}
	requests, err := q.DeletePublicRequestsBefore(ctx, before)
	if err != nil {
		return fmt.Errorf("delete old public requests: %w", err)
	}
	addresses, err := q.DeleteIdleAddresses(ctx, before)
	if err != nil {
		return fmt.Errorf("delete idle addresses: %w", err)
	}
	if attempts+accounts+requests+addresses > 0 {
		s.deps.Logger.DebugContext(ctx, "pruned login attempts", "attempts", attempts, "accounts", accounts,
			"public_requests", requests, "addresses", addresses)
	}
	return nil
}
