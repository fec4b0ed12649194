package tenant

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"time"

	"github.com/authms/authms/events"
	"github.com/authms/authms/projections"
	"github.com/authms/authms/schemas/gen/authms/tenant/v1/tenantv1connect"
	"github.com/authms/authms/services/internal/breached"
	"github.com/authms/authms/services/internal/platform"
)

// Name is the service's name.
const Name = "tenant"

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

// Config tunes the tenant service. Zero fields take their defaults.
type Config struct {
	// DNSServer is the address ("host:port") of the DNS server VerifyDomain
	// asks for a domain's TXT records; empty: the system resolver.
	DNSServer string
	// DNSTimeout bounds VerifyDomain's DNS lookup (default 5 seconds).
	DNSTimeout time.Duration
	// InsecureSkipDomainCheck makes VerifyDomain verify a pending domain
	// without looking at DNS, so whoever adds a domain owns it. It is for
	// development without a DNS zone to publish the record in (authms dev
	// with AUTHMS_INSECURE_SKIP_DOMAIN_CHECK=1), never the default; the
	// service warns at start and logs every such verification at warn
	// level.
	InsecureSkipDomainCheck bool
}

func (c Config) withDefaults() Config {
	if c.DNSTimeout == 0 {
		c.DNSTimeout = 5 * time.Second
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.DNSServer != "" {
		if _, _, err := net.SplitHostPort(c.DNSServer); err != nil {
			errs = append(errs, fmt.Errorf("DNS server %q: want host:port", c.DNSServer))
		}
	}
	if c.DNSServer != "" && c.InsecureSkipDomainCheck {
		errs = append(errs, fmt.Errorf("DNS server %q and InsecureSkipDomainCheck: a check that is skipped asks no server; set one", c.DNSServer))
	}
	if c.DNSTimeout < 0 {
		errs = append(errs, fmt.Errorf("DNS timeout %v: want positive", c.DNSTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tenant config: %w", err)
	}
	return nil
}

// Service is the tenant service.
type Service struct {
	deps     platform.Deps
	cfg      Config
	events   *events.Store
	breached *breached.List
	resolver *net.Resolver
	now      func() time.Time
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
	list, err := breached.Load()
	if err != nil {
		return nil, err
	}
	if cfg.InsecureSkipDomainCheck {
		d.Logger.Warn("VerifyDomain verifies domains without checking their DNS TXT record (development only)")
	}
	cfg = cfg.withDefaults()
	return &Service{deps: d, cfg: cfg, events: events.NewStore(Name), breached: list, resolver: newResolver(cfg.DNSServer), now: time.Now}, nil
}

// Name returns "tenant".
func (s *Service) Name() string { return Name }

// Mount registers the TenantService Connect handler on mux.
func (s *Service) Mount(mux *http.ServeMux) {
	path, h := tenantv1connect.NewTenantServiceHandler(&api{s: s}, s.deps.HandlerOptions...)
	mux.Handle(path, h)
}

// Projectors returns none: the tenant service projects no other service's
// events.
func (s *Service) Projectors() []projections.Projector { return nil }

// Run returns at once: the service has no background work of its own.
func (s *Service) Run(context.Context) error { return nil }
