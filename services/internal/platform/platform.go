// Package platform holds what the process gives every service: its own
// database pool (its own credentials only), the JetStream context, a logger,
// secrets and the Connect handler options shared by all APIs. Services are
// built from a Deps and never reach for globals.
package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authms/authms/projections"
)

// Deps are a service's dependencies.
type Deps struct {
	// Service is the service's name, e.g. "billing".
	Service string
	// Pool connects to the service's own database as its own role.
	Pool *pgxpool.Pool
	// JS publishes to and consumes from JetStream.
	JS     jetstream.JetStream
	Logger *slog.Logger
	// Secrets returns the service's named secret keys.
	Secrets Secrets
	// HandlerOptions go to every Connect handler the service mounts:
	// validation, error hygiene, tracing.
	HandlerOptions []connect.HandlerOption
}

// Validate reports a missing dependency.
func (d Deps) Validate() error {
	var errs []error
	if d.Service == "" {
		errs = append(errs, errors.New("service name is required"))
	}
	if d.Pool == nil {
		errs = append(errs, errors.New("database pool is required"))
	}
	if d.JS == nil {
		errs = append(errs, errors.New("jetstream is required"))
	}
	if d.Logger == nil {
		errs = append(errs, errors.New("logger is required"))
	}
	if d.Secrets == nil {
		errs = append(errs, errors.New("secrets are required"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s deps: %w", d.Service, err)
	}
	return nil
}

// Secrets returns a 32-byte key by name (e.g. "email-encryption"), the same
// key every time for the same service and name.
type Secrets interface {
	Key(ctx context.Context, name string) ([]byte, error)
}

// Service is what every authms service implements.
type Service interface {
	// Name is the service's name, e.g. "billing".
	Name() string
	// Mount registers the service's Connect handlers on mux.
	Mount(mux *http.ServeMux)
	// Projectors lists the projections the service maintains. The runner
	// runs one durable consumer for each, so it can also list, re-drive and
	// rebuild them.
	Projectors() []projections.Projector
	// Run runs any other background work until ctx ends; a service with none
	// returns nil at once.
	Run(ctx context.Context) error
}
