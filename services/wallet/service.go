package wallet

import (
	"context"
	"embed"
	"io/fs"
	"net/http"
	"time"

	"github.com/authms/authms/events"
	"github.com/authms/authms/projections"
	"github.com/authms/authms/schemas/gen/authms/wallet/v1/walletv1connect"
	"github.com/authms/authms/services/internal/platform"
)

// Name is the service's name.
const Name = "wallet"

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

// Service is the wallet service.
type Service struct {
	deps   platform.Deps
	events *events.Store
	now    func() time.Time
}

var _ platform.Service = (*Service)(nil)

// New builds the service from its dependencies.
func New(d platform.Deps) (*Service, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return &Service{deps: d, events: events.NewStore(Name), now: time.Now}, nil
}

// Name returns "wallet".
func (s *Service) Name() string { return Name }

// Mount registers the WalletService Connect handler on mux.
func (s *Service) Mount(mux *http.ServeMux) {
	path, h := walletv1connect.NewWalletServiceHandler(&api{s: s}, s.deps.HandlerOptions...)
	mux.Handle(path, h)
}

// Projectors lists the service's projections; the platform runs them.
func (s *Service) Projectors() []projections.Projector {
	return []projections.Projector{s.walletsProjector()}
}

// Run returns at once: the service has no background work besides its
// projectors.
func (s *Service) Run(context.Context) error { return nil }
