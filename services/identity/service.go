package identity

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"runtime"
	"time"

	"github.com/authms/authms/events"
	"github.com/authms/authms/projections"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	"github.com/authms/authms/schemas/gen/authms/risk/v1/riskv1connect"
	"github.com/authms/authms/services/internal/breached"
	"github.com/authms/authms/services/internal/platform"
)

// Name is the service's name.
const Name = "identity"

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

// Config tunes the identity service. Zero fields take their defaults.
type Config struct {
	// Password sets the argon2id parameters of new password hashes.
	Password PasswordParams
	// MaxConcurrentHashes bounds the password hashes computed at once, since
	// each one holds Password.Memory KiB; a burst of registrations queues
	// instead of exhausting memory. Default: GOMAXPROCS.
	MaxConcurrentHashes int
	// VerificationTokenTTL is how long an email verification token works
	// (default 24h).
	VerificationTokenTTL time.Duration
	// ResetTokenTTL is how long a password reset token works (default 1h).
	ResetTokenTTL time.Duration
	// ResetRequestInterval is how soon after issuing a user a reset token
	// identity issues another (default 1m). A request within it answers
	// as usual but issues nothing: repeating the request for a victim's
	// address neither replaces their pending link every time nor grows
	// their event history without bound. Negative: no interval.
	ResetRequestInterval time.Duration
	// ResetResponseTime is how long RequestPasswordReset takes at least
	// (default 100ms). A known address costs a token, an event and their
	// transaction, an unknown one a lookup: a few milliseconds apart, which
	// would tell which addresses have accounts. Answering no sooner than
	// this, well above either, hides it. Negative: no floor.
	ResetResponseTime time.Duration
	// LinkBaseURL starts the verification and reset links identity logs
	// when LogLinks is set (default http://localhost:8080, where `authms
	// dev` listens).
	LinkBaseURL string
	// LogLinks logs each verification and reset link, its token included,
	// at info level, so a developer can follow it before a notification
	// service delivers it. For development only (`authms dev` sets it):
	// whoever reads the logs could take over the account. Without it only
	// the token's id is logged.
	LogLinks bool
}

// DefaultConfig returns the production configuration.
func DefaultConfig() Config { return Config{}.withDefaults() }

func (c Config) withDefaults() Config {
	c.Password = c.Password.withDefaults()
	if c.MaxConcurrentHashes == 0 {
		c.MaxConcurrentHashes = runtime.GOMAXPROCS(0)
	}
	if c.VerificationTokenTTL == 0 {
		c.VerificationTokenTTL = 24 * time.Hour
	}
	if c.ResetTokenTTL == 0 {
		c.ResetTokenTTL = time.Hour
	}
	if c.ResetRequestInterval == 0 {
		c.ResetRequestInterval = time.Minute
	}
	if c.ResetResponseTime == 0 {
		c.ResetResponseTime = 100 * time.Millisecond
	}
	if c.LinkBaseURL == "" {
		c.LinkBaseURL = "http://localhost:8080"
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if err := c.Password.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxConcurrentHashes < 1 {
		errs = append(errs, fmt.Errorf("max concurrent hashes must be positive, not %d", c.MaxConcurrentHashes))
	}
	if c.VerificationTokenTTL < 0 || c.ResetTokenTTL < 0 {
		errs = append(errs, fmt.Errorf("token lifetimes must be positive, not %v and %v", c.VerificationTokenTTL, c.ResetTokenTTL))
	}
	if u, err := url.Parse(c.LinkBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("link base URL %q must be an absolute http(s) URL", c.LinkBaseURL))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("identity config: %w", err)
	}
	return nil
}

// Service is the identity service.
type Service struct {
	deps     platform.Deps
	cfg      Config
	events   *events.Store
	hasher   *hasher
	breached *breached.List
	risk     riskv1connect.RiskServiceClient
	now      func() time.Time
}

var _ platform.Service = (*Service)(nil)

// New builds the service from its dependencies with the default Config.
func New(d platform.Deps) (*Service, error) { return NewWithConfig(d, Config{}) }

// NewWithConfig builds the service from its dependencies and cfg (zero
// fields take their defaults). Tests use it for cheap password hashing.
func NewWithConfig(d platform.Deps, cfg Config) (*Service, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	if d.Peers == nil || d.ServiceToken == nil {
		return nil, errors.New("identity deps: peers and a service token are required (identity calls risk)")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	h, err := newHasher(cfg.Password, cfg.MaxConcurrentHashes)
	if err != nil {
		return nil, err
	}
	list, err := breached.Load()
	if err != nil {
		return nil, err
	}
	return &Service{
		deps:     d,
		cfg:      cfg,
		events:   events.NewStore(Name),
		hasher:   h,
		breached: list,
		risk:     newRiskClient(d),
		now:      time.Now,
	}, nil
}

// Name returns "identity".
func (s *Service) Name() string { return Name }

// Mount registers the IdentityService Connect handler on mux.
func (s *Service) Mount(mux *http.ServeMux) {
	path, h := identityv1connect.NewIdentityServiceHandler(&api{s: s}, s.deps.HandlerOptions...)
	mux.Handle(path, h)
}

// Run returns at once: identity has no background work of its own (the
// platform runs its relay).
func (s *Service) Run(context.Context) error { return nil }

// Projectors lists the service's projections; the platform runs them.
func (s *Service) Projectors() []projections.Projector {
	return []projections.Projector{s.passwordPoliciesProjector(), s.tenantsProjector()}
}
