package tenant

import (
	"context"
	"embed"
	"io/fs"
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

// Service is the tenant service.
type Service struct {
	deps     platform.Deps
	events   *events.Store
	breached *breached.List
	now      func() time.Time
}

var _ platform.Service = (*Service)(nil)

// New builds the service from its dependencies.
func New(d platform.Deps) (*Service, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	list, err := breached.Load()
	if err != nil {
		return nil, err
	}
	return &Service{deps: d, events: events.NewStore(Name), breached: list, now: time.Now}, nil
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
