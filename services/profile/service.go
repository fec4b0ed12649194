// Package profile is the authms profile service. (Stub: being written.)
package profile

import (
	"context"
	"embed"
	"io/fs"
	"net/http"

	"github.com/authms/authms/services/internal/platform"
)

// Name is the service's name.
const Name = "profile"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the service's schema migrations.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // embedded above
	}
	return sub
}

// Service is the profile service.
type Service struct{ deps platform.Deps }

var _ platform.Service = (*Service)(nil)

// New builds the service.
func New(d platform.Deps) (*Service, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return &Service{deps: d}, nil
}

// Name returns "profile".
func (s *Service) Name() string { return Name }

// Mount registers the service's handlers.
func (s *Service) Mount(mux *http.ServeMux) {}

// Run runs the service's consumers until ctx ends.
func (s *Service) Run(ctx context.Context) error { <-ctx.Done(); return nil }
