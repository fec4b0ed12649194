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
	"slices"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authms/authms/events"
	"github.com/authms/authms/projections"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/clientip"
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
	// Positions reports where the events the service's commands commit
	// land in its stream, for write responses ([Deps.Position]). Nil:
	// responses carry no position (a service run without a relay).
	Positions *events.Positions
	// MinPositionTimeout bounds how long a read waits for its min_position
	// ([Deps.AwaitPosition]); default 5s, and never past the request's
	// deadline.
	MinPositionTimeout time.Duration
	// Peers reaches the other services' Connect APIs. A service that calls
	// peers requires it; the platform runner always sets it.
	Peers Peers
	// ServiceToken is the service's own credential for its calls to peers
	// (auth.Bearer adds it): a service token of the service's name, signed
	// with its auth.ServiceKeyName secret, which the platform's verifiers
	// trust for that service only. The platform runner sets it for the
	// services whose Definition says they call peers (CallsPeers), and
	// leaves it nil for the others.
	ServiceToken auth.TokenSource
	// Clients finds the address of the client behind a request, for the
	// services that rate-limit or record it. Its trusted proxies are the
	// platform's one setting (services.Config.TrustedProxies), so every
	// service sees the same client; the zero value trusts no proxy.
	Clients clientip.Resolver
}

// Peers reaches the Connect APIs of the other services: a service calls a
// peer only through its generated client, never through its database.
type Peers interface {
	// Client returns the HTTP client and the base URL to pass to service's
	// generated New<X>ServiceClient. Credentials are the caller's to add
	// (a client interceptor).
	Client(service string) (connect.HTTPClient, string)
}

// Position returns the position of events a command of the service
// committed, for its response: the zero Position when there is none to
// report in time (see [events.Positions.Await]). The write succeeded
// either way, so it never fails; a misuse is logged.
func (d Deps) Position(ctx context.Context, eventIDs ...uuid.UUID) events.Position {
	if slices.Contains(eventIDs, uuid.Nil) { // a command that found no event to report
		eventIDs = slices.DeleteFunc(slices.Clone(eventIDs), func(id uuid.UUID) bool { return id == uuid.Nil })
	}
	if d.Positions == nil {
		return events.Position{}
	}
	pos, err := d.Positions.Await(ctx, eventIDs...)
	if err != nil {
		d.Logger.ErrorContext(ctx, "no position for the response", "err", err)
	}
	return pos
}

// AwaitPosition waits until projectors, the service's, have applied pos,
// within MinPositionTimeout (see [projections.AwaitPosition]). Reads call
// it with their request's min_position before they read.
func (d Deps) AwaitPosition(ctx context.Context, projectors []projections.Projector, pos events.Position) error {
	return projections.AwaitPosition(ctx, projections.AwaitConfig{
		Service: d.Service, Pool: d.Pool, JS: d.JS, Projectors: projectors, Timeout: d.MinPositionTimeout,
	}, pos)
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
	// Policies says who may call each procedure the service mounts. A
	// procedure without a policy refuses every call, and the platform
	// refuses to start a service that leaves one undeclared.
	Policies() auth.Policies
}
