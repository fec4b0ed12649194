package wallet

import (
	"context"
	"embed"
	"fmt"
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

// Run runs the projector that creates wallets until ctx ends. Its retry
// settings come from Deps.Consumer.
func (s *Service) Run(ctx context.Context) error {
	c, err := projections.NewConsumer(s.walletsProjector(), projections.Config{
		Pool:     s.deps.Pool,
		JS:       s.deps.JS,
		Logger:   s.deps.Logger,
		Consumer: s.deps.Consumer,
	})
	if err != nil {
		return fmt.Errorf("wallet: %w", err)
	}
	return c.Run(ctx)
}
