// Package services is the platform runner: the registry of authms services
// and the code that runs any set of them in one process, as `authms dev`
// and the end-to-end tests (package servicestest) do.
//
// [Start] gives every service what production gives it, and nothing more:
// its own database and role (provisioned with an admin connection that only
// the runner holds), a pool that connects with that role's credentials only,
// the shared event-store tables and its own migrations applied, its event
// and dead-letter streams, and a [platform.Deps]. It then runs, per service,
// the outbox relay (the runner owns relays, services do not) and the
// service's own Run loop (its consumers and projectors). [Platform.Handler]
// serves every service's Connect API on one handler, with gRPC health,
// reflection, the browser console (Config.Console) and CORS, so Connect,
// gRPC and gRPC-web clients (browsers included) all reach it. Services still talk to each other only through
// their APIs and events, even in one process.
package services

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/grpchealth"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/pg"
	"github.com/authms/authms/projections"
	"github.com/authms/authms/services/billing"
	"github.com/authms/authms/services/identity"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/clientip"
	"github.com/authms/authms/services/internal/obs"
	"github.com/authms/authms/services/internal/platform"
	"github.com/authms/authms/services/internal/rpc"
	"github.com/authms/authms/services/internal/secrets"
	"github.com/authms/authms/services/profile"
	"github.com/authms/authms/services/risk"
	"github.com/authms/authms/services/session"
	"github.com/authms/authms/services/tenant"
	"github.com/authms/authms/services/wallet"
)

// Definition describes a service the platform can run.
type Definition struct {
	// Name is the service's name, e.g. "billing": one lowercase word.
	Name string
	// Migrations holds the service's NNNN_name.sql files; they are applied
	// after the shared event-store migrations. Nil means none.
	Migrations fs.FS
	// New builds the service from its dependencies.
	New func(platform.Deps) (platform.Service, error)
	// CallsPeers says the service calls other services' APIs with a
	// service token of its own (platform.Deps.ServiceToken). Only these
	// services get a service-token key: a key nobody needs is one more
	// credential to steal. Session signs its own with its access-token keys.
	CallsPeers bool
}

// Definitions returns every service authms can run, in start order, built
// with their default settings.
func Definitions() []Definition { return definitions(Config{}) }

// definitions returns every service, built with cfg's per-service settings.
func definitions(cfg Config) []Definition {
	return []Definition{
		define(tenant.Name, tenant.Migrations(), func(d platform.Deps) (*tenant.Service, error) {
			return tenant.NewWithConfig(d, cfg.Tenant)
		}),
		define(identity.Name, identity.Migrations(), func(d platform.Deps) (*identity.Service, error) {
			return identity.NewWithConfig(d, cfg.Identity)
		}).callingPeers(),
		define(profile.Name, profile.Migrations(), func(d platform.Deps) (*profile.Service, error) { return profile.New(d) }),
		define(wallet.Name, wallet.Migrations(), func(d platform.Deps) (*wallet.Service, error) { return wallet.New(d) }),
		define(billing.Name, billing.Migrations(), func(d platform.Deps) (*billing.Service, error) { return billing.New(d) }),
		define(risk.Name, risk.Migrations(), func(d platform.Deps) (*risk.Service, error) {
			return risk.NewWithConfig(d, cfg.Risk)
		}),
		define(session.Name, session.Migrations(), func(d platform.Deps) (*session.Service, error) {
			return session.NewWithConfig(d, cfg.Session)
		}),
	}
}

// define adapts a service package's typed constructor to a Definition.
func define[S platform.Service](name string, migrations fs.FS, build func(platform.Deps) (S, error)) Definition {
	return Definition{
		Name:       name,
		Migrations: migrations,
		New: func(d platform.Deps) (platform.Service, error) {
			s, err := build(d)
			if err != nil {
				return nil, err
			}
			return s, nil
		},
	}
}

// callingPeers returns d with CallsPeers set.
func (d Definition) callingPeers() Definition {
	d.CallsPeers = true
	return d
}

// Names returns the names of every service authms can run.
func Names() []string {
	defs := Definitions()
	names := make([]string, len(defs))
	for i, d := range defs {
		names[i] = d.Name
	}
	return names
}

// SecretStore gives each service its own secret keys.
type SecretStore = secrets.Store

// DevSecrets returns the development key store: keys are generated on first
// use and kept under <dataDir>/secrets, one 0600 file per service and name.
func DevSecrets(dataDir string) SecretStore { return secrets.NewFiles(dataDir) }

// EnvSecrets returns the production key store: keys are read from
// AUTHMS_<SERVICE>_<NAME>_KEY (standard base64 of 32 bytes); a missing key is
// an error, never a generated one.
func EnvSecrets() SecretStore { return secrets.NewEnv(nil) }

// ParseTrustedProxies parses Config.TrustedProxies from networks in CIDR
// notation; a bare address is the network of that one address.
func ParseTrustedProxies(cidrs []string) ([]netip.Prefix, error) {
	return clientip.ParsePrefixes(cidrs)
}

// Config configures the services a Platform runs.
type Config struct {
	// AdminURL is a superuser connection string (DATABASE_URL). It is used
	// only to create databases and roles; services connect with their own
	// role.
	AdminURL string
	// Naming names the databases and roles; the zero value gives
	// "authms_<service>".
	Naming pg.Naming
	// Passwords returns a service's database password (development:
	// pg.DevPassword; tests: random). The runner sets the role's password to
	// it on every start.
	Passwords func(service string) (string, error)
	// JS is the JetStream context every service, relay and consumer uses.
	// The caller owns its connection and closes it after Platform.Close.
	JS jetstream.JetStream
	// Secrets gives every service its secret keys.
	Secrets SecretStore
	// Logger receives every log line, with a "service" attribute; nil
	// discards them.
	Logger *slog.Logger
	// Streams sets the limits of the event and dead-letter streams.
	Streams events.StreamConfig
	// TailHeartbeat is how long the admin API's TailEvents stays silent
	// before it sends a heartbeat, so a console tells a quiet feed from a
	// dead one (default [DefaultTailHeartbeat]; tests shorten it).
	TailHeartbeat time.Duration
	// TailLimits bounds the admin API's TailEvents calls, each of which
	// holds a JetStream consumer per stream tailed; zero fields take the
	// defaults of [TailLimits].
	TailLimits TailLimits
	// Relay tunes every relay (BatchSize, PollInterval, ...); Service, Pool,
	// JS and Logger are filled in per service.
	Relay events.RelayConfig
	// Positions tunes how long a write waits for the stream position of its
	// events (Timeout, default 2s; PollInterval); Service, Pool and Logger
	// are filled in per service.
	Positions events.PositionsConfig
	// MinPositionTimeout bounds how long a read waits for its min_position
	// to be applied (default 5s, never past the request's deadline).
	MinPositionTimeout time.Duration
	// Consumer carries retry settings (MaxDeliver, Backoff, AckWait) that
	// services pass to their consumers and projectors.
	Consumer events.ConsumerConfig
	// Pool tunes every service's connection pool.
	Pool pg.PoolConfig
	// HealthInterval is how often each service's database is checked for
	// grpc.health.v1 (default 2s).
	HealthInterval time.Duration
	// TrustedProxies are the networks whose X-Forwarded-For names the
	// client (the load balancer's, the ingress'): every service that
	// rate-limits or records client addresses (session, identity) resolves
	// them alike. None by default: the client is the connection's peer, so
	// behind a proxy every client would share its address.
	TrustedProxies []netip.Prefix
	// AllowedOrigins lists the origins (scheme://host[:port]) of the
	// browser pages allowed to call the APIs from another origin (CORS).
	// Empty allows none: the console authms serves itself is same-origin
	// and needs no CORS. [AllowAllOrigins] ("*") alone allows every
	// origin, for development only. A request from any other origin is
	// refused with 403 before it reaches a handler.
	AllowedOrigins []string
	// LoopbackOnly says the APIs listen on loopback addresses only, as
	// `authms dev` on 127.0.0.1 or localhost does. A browser then reaches
	// them under a loopback name only (localhost, *.localhost, 127.0.0.0/8,
	// [::1]), so a request whose Origin matches a Host that is another name
	// comes from a DNS-rebinding page and is refused like any cross-origin
	// one. Off, every Host is the server's own: behind a proxy its name is
	// the deployment's.
	LoopbackOnly bool
	// Console holds the built browser console (web.Console(): index.html
	// at its root, content-hashed files under assets/), served at "/"
	// beside the APIs, with index.html for the console's own routes. An
	// FS without index.html serves a page that says how to build it. Nil
	// serves no console.
	Console fs.FS
	// Tenant configures the tenant service (the DNS server domain
	// verification asks); zero fields take tenant's production defaults.
	Tenant tenant.Config
	// Identity configures the identity service (password hashing cost,
	// links); zero fields take identity's production defaults.
	Identity identity.Config
	// Session configures the session service (token lifetimes, key
	// rotation, refresh reuse grace, issuer, refresh limits); zero fields
	// take session's production defaults.
	Session session.Config
	// Risk configures the risk service (default lockout, login and public
	// request throttles, retention); zero fields take risk's production
	// defaults.
	Risk risk.Config
	// PeerURLs gives the base URL of services that run in another process
	// (service name -> URL). Every other service is reached in process.
	PeerURLs map[string]string
	// Auth configures authentication: token issuer and audience, the
	// operator token, extra verification keys (tests).
	Auth AuthConfig
	// TracerProvider traces every API call (a server span) and every event
	// a projector applies (a consumer span, child of the call that recorded
	// the event). Nil turns tracing off; [TracingFromEnv] builds one from
	// the OTEL_ environment variables.
	TracerProvider trace.TracerProvider
}

// validateProvisioning reports what provisioning and migrating need.
func (c Config) validateProvisioning() []error {
	var errs []error
	if c.AdminURL == "" {
		errs = append(errs, errors.New("an admin database URL (DATABASE_URL) is required"))
	}
	if c.Passwords == nil {
		errs = append(errs, errors.New("a password source is required"))
	}
	return errs
}

// Validate reports a missing or unusable setting.
func (c Config) Validate() error {
	errs := c.validateProvisioning()
	if c.JS == nil {
		errs = append(errs, errors.New("a JetStream context is required"))
	}
	if c.Secrets == nil {
		errs = append(errs, errors.New("a secret store is required"))
	}
	if _, _, err := parseOrigins(c.AllowedOrigins); err != nil {
		errs = append(errs, err)
	}
	if err := c.TailLimits.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("services config: %w", err)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Consumer.Tracer == nil {
		c.Consumer.Tracer = c.consumerTracer()
	}
	return c
}

// ServiceInfo describes a running or migrated service.
type ServiceInfo struct {
	// Name is the service's name.
	Name string
	// Database holds the service's database credentials; print them with
	// String or log them, both redact the password.
	Database pg.Credentials
	// Stream is the service's JetStream event stream, e.g. "IDENTITY".
	Stream string
}

// selectDefinitions returns the definitions of names, all of them when
// names is empty, in registry order.
func selectDefinitions(cfg Config, names []string) ([]Definition, error) {
	defs := definitions(cfg)
	if len(names) == 0 {
		return defs, nil
	}
	known := make(map[string]bool, len(defs))
	for _, d := range defs {
		known[d.Name] = true
	}
	want := make(map[string]bool, len(names))
	var errs []error
	for _, n := range names {
		switch {
		case !known[n]:
			errs = append(errs, fmt.Errorf("unknown service %q (known: %s)", n, strings.Join(Names(), ", ")))
		case want[n]:
			errs = append(errs, fmt.Errorf("service %q named twice", n))
		}
		want[n] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(defs, func(d Definition) bool { return !want[d.Name] }), nil
}

// forEach runs fn for every definition concurrently and returns the results
// in definition order, with every failure joined.
func forEach[T any](defs []Definition, fn func(Definition) (T, error)) ([]T, error) {
	out := make([]T, len(defs))
	errs := make([]error, len(defs))
	var wg sync.WaitGroup
	for i, d := range defs {
		wg.Go(func() { out[i], errs[i] = fn(d) })
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// provision ensures a service's database and role, opens a pool with the
// service's own credentials and applies its migrations.
func provision(ctx context.Context, cfg Config, prov *pg.Provisioner, def Definition) (*pgxpool.Pool, pg.Credentials, error) {
	password, err := cfg.Passwords(def.Name)
	if err != nil {
		return nil, pg.Credentials{}, fmt.Errorf("password: %w", err)
	}
	creds, err := prov.Ensure(ctx, def.Name, password)
	if err != nil {
		return nil, pg.Credentials{}, err
	}
	pool, err := pg.Open(ctx, creds, cfg.Pool)
	if err != nil {
		return nil, pg.Credentials{}, err
	}
	sources := []pg.MigrationSource{{Name: "events", FS: events.Migrations}}
	if def.Migrations != nil {
		sources = append(sources, pg.MigrationSource{Name: def.Name, FS: def.Migrations})
	}
	if err := pg.Migrate(ctx, pool, sources...); err != nil {
		pool.Close()
		return nil, pg.Credentials{}, err
	}
	return pool, creds, nil
}

// Migrate provisions the named services' databases and roles (all services
// when names is empty) and applies their migrations, concurrently. Only
// AdminURL, Naming, Passwords, Pool and Logger are used.
func Migrate(ctx context.Context, cfg Config, names ...string) ([]ServiceInfo, error) {
	cfg = cfg.withDefaults()
	if err := errors.Join(cfg.validateProvisioning()...); err != nil {
		return nil, fmt.Errorf("services config: %w", err)
	}
	defs, err := selectDefinitions(cfg, names)
	if err != nil {
		return nil, err
	}
	prov, err := pg.NewProvisioner(ctx, cfg.AdminURL, cfg.Naming, cfg.Logger)
	if err != nil {
		return nil, err
	}
	defer prov.Close()
	return forEach(defs, func(def Definition) (ServiceInfo, error) {
		start := time.Now()
		pool, creds, err := provision(ctx, cfg, prov, def)
		if err != nil {
			return ServiceInfo{}, fmt.Errorf("migrate %s: %w", def.Name, err)
		}
		pool.Close()
		cfg.Logger.Info("service database migrated", "service", def.Name, "database", creds.Database,
			"took", time.Since(start).Round(time.Millisecond))
		return ServiceInfo{Name: def.Name, Database: creds, Stream: events.StreamName(def.Name)}, nil
	})
}

// unit is one service prepared to run.
type unit struct {
	info       ServiceInfo
	pool       *pgxpool.Pool
	svc        platform.Service
	relay      *events.Relay
	positions  *events.Positions
	consumers  []*events.Consumer // one per projector, in the same order
	runFailed  atomic.Bool        // the service's Run loop ended with an error
	projectors []projections.Projector
	logger     *slog.Logger
}

// shared is what the platform gives every service it prepares.
type shared struct {
	metrics *obs.Metrics
	peers   *peers
	authn   *auth.Authenticator
	signers map[string]*auth.ServiceSigner // by service name
}

// prepare provisions, migrates and builds one service without starting it.
func prepare(ctx context.Context, cfg Config, prov *pg.Provisioner, def Definition, sh shared) (u *unit, err error) {
	metrics, authn := sh.metrics, sh.authn
	logger := cfg.Logger.With("service", def.Name)
	pool, creds, err := provision(ctx, cfg, prov, def)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			pool.Close()
		}
	}()
	if err := events.EnsureStreams(ctx, cfg.JS, def.Name, cfg.Streams); err != nil {
		return nil, err
	}
	opts, err := rpc.HandlerOptions(logger, rpc.WithTracing(cfg.TracerProvider), rpc.WithAuth(authn))
	if err != nil {
		return nil, fmt.Errorf("handler options: %w", err)
	}
	pc := cfg.Positions
	pc.Service, pc.Pool, pc.Logger = def.Name, pool, cfg.Logger
	positions, err := events.NewPositions(pc)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			positions.Close()
		}
	}()
	deps := platform.Deps{
		Service:            def.Name,
		Pool:               pool,
		JS:                 cfg.JS,
		Logger:             logger,
		Secrets:            cfg.Secrets.Service(def.Name),
		HandlerOptions:     opts,
		Positions:          positions,
		MinPositionTimeout: cfg.MinPositionTimeout,
		Peers:              sh.peers,
		Clients:            clientip.Resolver{TrustedProxies: cfg.TrustedProxies},
	}
	if signer, ok := sh.signers[def.Name]; ok { // not a typed nil in the interface
		deps.ServiceToken = signer
	}
	svc, err := def.New(deps)
	if err != nil {
		return nil, fmt.Errorf("new: %w", err)
	}
	if svc.Name() != def.Name {
		return nil, fmt.Errorf("new: the service calls itself %q", svc.Name())
	}
	if err := authn.Declare(svc.Policies()); err != nil {
		return nil, fmt.Errorf("access policies: %w", err)
	}
	var consumers []*events.Consumer
	projectors := svc.Projectors()
	for _, proj := range projectors {
		// The source service may not run in this process, or may start
		// later: create its stream as it would (EnsureStreams is
		// idempotent), so the projector's durable consumer exists and waits
		// for events instead of retrying, and listing projections works.
		if err := events.EnsureStreams(ctx, cfg.JS, proj.Source, cfg.Streams); err != nil {
			return nil, err
		}
		// The consumer adds the service attribute itself, as the relay does.
		c, err := projections.NewConsumer(proj, projections.Config{Pool: pool, JS: cfg.JS, Logger: cfg.Logger, Consumer: cfg.Consumer})
		if err != nil {
			return nil, err
		}
		consumers = append(consumers, c)
	}
	rc := cfg.Relay
	rc.Service, rc.Pool, rc.JS = def.Name, pool, cfg.JS
	rc.Logger = cfg.Logger // the relay adds the service attribute itself
	rc.OnBatch = metrics.RelayObserver(def.Name)
	relay, err := events.NewRelay(rc)
	if err != nil {
		return nil, err
	}
	return &unit{
		info:       ServiceInfo{Name: def.Name, Database: creds, Stream: events.StreamName(def.Name)},
		pool:       pool,
		svc:        svc,
		relay:      relay,
		positions:  positions,
		consumers:  consumers,
		projectors: projectors,
		logger:     logger,
	}, nil
}

// Platform is a set of running services: their APIs behind one
// [Platform.Handler], their relays and their Run loops.
type Platform struct {
	logger  *slog.Logger
	js      jetstream.JetStream
	streams events.StreamConfig
	units   []*unit
	byName  map[string]*unit
	handler http.Handler
	metrics *obs.Metrics
	peers   *peers
	authn   *auth.Authenticator

	health      *grpchealth.StaticChecker
	healthNames map[string][]string // service -> names reported by health

	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	runErrs []error

	closeOnce sync.Once
	closeErr  error

	// streamsEnded is closed by EndStreams: the long-lived server streams
	// (TailEvents) end when it is.
	streamsEnded   chan struct{}
	endStreamsOnce sync.Once

	consoleConfig atomic.Pointer[ConsoleConfig]
}

func newPlatform(cfg Config, units []*unit, metrics *obs.Metrics, peers *peers, authn *auth.Authenticator) (*Platform, error) {
	p := &Platform{
		peers:   peers,
		authn:   authn,
		logger:  cfg.Logger,
		js:      cfg.JS,
		streams: cfg.Streams,
		units:   units,
		byName:  make(map[string]*unit, len(units)),

		streamsEnded: make(chan struct{}),
	}
	for _, u := range units {
		p.byName[u.info.Name] = u
	}
	p.observe(metrics)
	if err := p.buildHandler(cfg); err != nil {
		return nil, err
	}
	peers.serve(p.handler)
	return p, nil
}

// Start provisions, migrates and starts the named services (all services
// when names is empty). Services are prepared concurrently; if any fails,
// nothing is left running and the error names every service that failed.
// ctx bounds the start only: the services run until [Platform.Close].
func Start(ctx context.Context, cfg Config, names ...string) (*Platform, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	defs, err := selectDefinitions(cfg, names)
	if err != nil {
		return nil, err
	}
	prov, err := pg.NewProvisioner(ctx, cfg.AdminURL, cfg.Naming, cfg.Logger)
	if err != nil {
		return nil, err
	}
	defer prov.Close()
	metrics, err := newMetrics()
	if err != nil {
		return nil, err
	}

	signers, serviceKeys, err := serviceSigners(ctx, cfg, defs)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	peers := newPeers(cfg.PeerURLs, cfg.Logger)
	authn, revocations, err := newAuth(cfg, peers, metrics, serviceKeys)
	if err != nil {
		peers.close()
		return nil, fmt.Errorf("auth: %w", err)
	}
	units, err := forEach(defs, func(def Definition) (*unit, error) {
		u, err := prepare(ctx, cfg, prov, def, shared{metrics: metrics, peers: peers, authn: authn, signers: signers})
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", def.Name, err)
		}
		return u, nil
	})
	closeAll := func() {
		peers.close()
		for _, u := range units {
			if u != nil {
				u.positions.Close()
				u.pool.Close()
			}
		}
	}
	if err != nil {
		closeAll()
		return nil, err
	}
	p, err := newPlatform(cfg, units, metrics, peers, authn)
	if err != nil {
		closeAll()
		return nil, err
	}
	// The loops outlive Start's ctx but keep its values.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	p.wg.Go(func() { _ = revocations.Run(runCtx) }) // logs and retries its own failures
	for _, u := range units {
		p.wg.Go(func() { _ = u.relay.Run(runCtx) }) // the relay logs and retries its own failures
		for _, c := range u.consumers {
			p.wg.Go(func() { _ = c.Run(runCtx) }) // consumers log and retry their own failures
		}
		p.wg.Go(func() { p.run(runCtx, u) })
		p.wg.Go(func() { p.watchHealth(runCtx, u, cmp.Or(cfg.HealthInterval, defaultHealthInterval)) })
		u.logger.Info("service started", "database", u.info.Database.Database, "stream", u.info.Stream)
	}
	return p, nil
}

// EndStreams ends the long-lived server streams, and makes any opened later
// fail at once: every TailEvents call returns UNAVAILABLE "the server is
// shutting down", which tells its client to reconnect (to this process
// once it is back, or to another replica). Register it with the HTTP
// server that serves [Platform.Handler] (srv.RegisterOnShutdown): an
// [http.Server.Shutdown] waits for the active requests to end, and a tail
// never ends by itself, so one open tail would hold the shutdown to its
// deadline.
//
// RebuildProjection and RepublishEvents are not ended: they are bounded
// work an operator started and waits on, and the shutdown lets them finish
// within its deadline; past it, the process stops with the shutdown's
// error and the operator reruns them (both are safe to rerun). Close calls
// EndStreams too; it is safe to call more than once.
func (p *Platform) EndStreams() {
	p.endStreamsOnce.Do(func() { close(p.streamsEnded) })
}

// run runs a service's own loop and records how it ended.
func (p *Platform) run(ctx context.Context, u *unit) {
	err := u.svc.Run(ctx)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			u.logger.Error("service stopped running; its API is reported not serving", "err", err)
			u.runFailed.Store(true)
			p.setStatus(u.info.Name, false)
		}
		p.mu.Lock()
		p.runErrs = append(p.runErrs, fmt.Errorf("run %s: %w", u.info.Name, err))
		p.mu.Unlock()
	case ctx.Err() == nil:
		u.logger.Debug("service has nothing to run in the background")
	}
}

// Pool returns the pool of a running service (connected as its own role),
// or nil when the service is not running.
func (p *Platform) Pool(service string) *pgxpool.Pool {
	if u := p.byName[service]; u != nil {
		return u.pool
	}
	return nil
}

// Relay returns the outbox relay of a running service, or nil.
func (p *Platform) Relay(service string) *events.Relay {
	if u := p.byName[service]; u != nil {
		return u.relay
	}
	return nil
}

// Consumers returns the projector consumers of a running service, or nil.
func (p *Platform) Consumers(service string) []*events.Consumer {
	if u := p.byName[service]; u != nil {
		return u.consumers
	}
	return nil
}

// Services describes the running services in start order.
func (p *Platform) Services() []ServiceInfo {
	out := make([]ServiceInfo, len(p.units))
	for i, u := range p.units {
		out[i] = u.info
	}
	return out
}

// Close stops the platform: health turns to not serving, the services' Run
// loops and the relays are cancelled and awaited (relays publish what is
// left in their outbox within their drain timeout), then the pools close.
// It returns the errors the services' Run loops returned. Stop the HTTP
// server first, so in-flight requests finish while the databases are still
// open. Close is idempotent.
func (p *Platform) Close() error {
	p.closeOnce.Do(func() {
		p.EndStreams()
		for _, u := range p.units {
			p.setStatus(u.info.Name, false)
		}
		p.health.SetStatus("", statusNotServing)
		p.cancel()
		p.wg.Wait()
		p.peers.close()
		for _, u := range p.units {
			u.positions.Close()
			u.pool.Close()
		}
		p.mu.Lock()
		p.closeErr = errors.Join(p.runErrs...)
		p.mu.Unlock()
		p.logger.Info("services stopped", "services", len(p.units))
	})
	return p.closeErr
}
