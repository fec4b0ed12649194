package billing

import (
	"context"
	"embed"
	"io/fs"
	"net/http"

	"github.com/authms/authms/projections"
	"github.com/authms/authms/schemas/gen/authms/billing/v1/billingv1connect"
	"github.com/authms/authms/services/internal/platform"
)

// Name is the service's name.
const Name = "billing"

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

// Service is the billing service.
type Service struct {
	deps  platform.Deps
	email emailCodec
}

var _ platform.Service = (*Service)(nil)

// New builds the service from its dependencies.
func New(d platform.Deps) (*Service, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return &Service{deps: d, email: emailCodec{secrets: d.Secrets}}, nil
}

// Name returns "billing".
func (s *Service) Name() string { return Name }

// Mount registers the BillingService Connect handler on mux.
func (s *Service) Mount(mux *http.ServeMux) {
	path, h := billingv1connect.NewBillingServiceHandler(&api{s: s}, s.deps.HandlerOptions...)
	mux.Handle(path, h)
}

// Projectors lists the service's projections; the platform runs them.
func (s *Service) Projectors() []projections.Projector {
	return []projections.Projector{s.userProfiles()}
}

// Run returns at once: the service has no background work besides its
// projectors.
func (s *Service) Run(context.Context) error { return nil }
