// Package servicestest runs authms services end to end for a test: an
// embedded NATS JetStream server, throwaway databases on the real
// PostgreSQL named by DATABASE_URL (each service with its own role), the
// services started by the platform runner exactly as `authms dev` starts
// them, and an HTTP server speaking HTTP/1.1 and h2c, so Connect, gRPC and
// gRPC-web clients all work. Everything is torn down when the test ends.
//
// Relays poll every 50ms and consumers retry after 50ms, 100ms, 200ms, so
// tests that wait for events (with require.Eventually) finish fast.
//
// Every API but registration and login needs a credential: [Env.Token]
// mints access tokens with a test signing key the platform trusts (so
// tests run without the session service), [Env.OperatorToken] is the
// platform operator's, and [Bearer], [Env.Operator] and [Env.Impersonate]
// make Connect clients send them.
//
// Identity registers users only in tenants it knows to be active: start
// "tenant" with "identity" and create one with [Env.NewTenant], which
// waits until identity has projected it.
//
// Logs go to the test's output at warn level and above; set
// AUTHMS_TEST_LOG=debug (or info) to see more.
package servicestest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/natstest"
	"github.com/authms/authms/events/pg"
	"github.com/authms/authms/events/pg/pgtest"
	"github.com/authms/authms/services"
	"github.com/authms/authms/services/identity"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/auth/authtest"
	"github.com/authms/authms/services/internal/secrets"
	"github.com/authms/authms/services/risk"
	"github.com/authms/authms/services/session"
	"github.com/authms/authms/services/tenant"
)

// Test tunings: short enough that tests finish fast, long enough not to spin.
var (
	relayPollInterval = 50 * time.Millisecond
	consumerBackoff   = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}
	// consumerAckWait bounds how long a message the server delivered but the
	// client never received (in flight when NATS stopped) waits for its
	// redelivery; a running handler extends it, so it is no handler's limit.
	consumerAckWait = 3 * time.Second
)

// startTimeout bounds provisioning, migrating and starting the services.
const startTimeout = 60 * time.Second

// Env is a running set of services for one test.
type Env struct {
	// URL is the base URL of the HTTP server that serves every API
	// ("http://127.0.0.1:<port>"); pass it to generated Connect clients.
	URL string
	// HTTP is a client for URL that speaks HTTP/2 without TLS, so it works
	// with the Connect, gRPC and gRPC-web protocols alike.
	HTTP *http.Client
	// NATS is the embedded server: Stop and Restart it to inject an outage.
	NATS *natstest.Server
	// JS is a JetStream context on its own connection, for tests that
	// publish or read events directly.
	JS jetstream.JetStream
	// Platform runs the services.
	Platform *services.Platform
	// PG owns the test's databases, all under one unique prefix: use its
	// Provisioner to block a service's database (BlockConnections).
	PG *pgtest.Cluster
	// Secrets holds the services' random keys.
	Secrets *secrets.Memory
	// Signer mints the access tokens the platform trusts (besides the
	// session service's, when it runs): see [Env.Token].
	Signer *authtest.Signer
	// OperatorToken is the platform operator's token (admin APIs,
	// CreateTenant, ListTenants, SuspendTenant, ReactivateTenant;
	// AssignRoles accepts it too).
	OperatorToken string

	serviceSigners map[string]*auth.ServiceSigner // by service name, session's excepted: see [Env.ServiceToken]
	tb             testing.TB
}

// Options changes how [StartWith] runs the services. The zero value is what
// [Start] uses.
type Options struct {
	// Identity configures the identity service. Zero password parameters
	// take servicestest's cheap hashing (argon2id m=1 MiB, t=1), not
	// identity's production defaults; pass identity.DefaultConfig() to
	// hash at production cost (benchmarks do).
	Identity identity.Config
	// Tenant configures the tenant service (services.Config.Tenant): the
	// DNS server domain verification asks, typically one the test runs.
	Tenant tenant.Config
	// Session configures the session service (services.Config.Session):
	// a test clock, short key rotation, refresh limits. The zero value
	// takes session's defaults.
	Session session.Config
	// Risk configures the risk service (services.Config.Risk). The zero
	// value takes risk's production defaults, throttles included: a test
	// that registers more users from one address than the registration
	// throttle lets through passes [ManyRegistrations].
	Risk risk.Config
	// TrustedProxies are the networks whose X-Forwarded-For every service
	// believes (services.Config.TrustedProxies): loopback lets a test
	// call as any client address. Nil: none.
	TrustedProxies []netip.Prefix
	// TracerProvider turns tracing on (services.Config.TracerProvider); a
	// provider with tracetest's in-memory exporter lets a test read the
	// spans. Nil: tracing off.
	TracerProvider trace.TracerProvider
	// MinPositionTimeout bounds a read's wait for its min_position
	// (services.Config.MinPositionTimeout); zero: the default, 5s.
	MinPositionTimeout time.Duration
	// AllowedOrigins are the browser origins allowed to call from another
	// origin (services.Config.AllowedOrigins). Nil: none.
	AllowedOrigins []string
	// LoopbackOnly refuses same-origin requests under a Host that is no
	// loopback name (services.Config.LoopbackOnly).
	LoopbackOnly bool
	// Console is the browser console served at "/"
	// (services.Config.Console). Nil: none.
	Console fs.FS
	// TailHeartbeat is how long the admin API's TailEvents waits before a
	// heartbeat (services.Config.TailHeartbeat); zero: the default, 15s.
	TailHeartbeat time.Duration
	// TailLimits bounds concurrent TailEvents calls
	// (services.Config.TailLimits); zero fields: the defaults.
	TailLimits services.TailLimits
	// Keys replaces the test signer's key as the key source the platform
	// tries before the session service's JWKS. Nil: Env.Signer's key.
	Keys auth.KeySource
}

// ProductionHashing returns identity's production configuration (its
// default argon2id parameters), for Options.Identity in tests and
// benchmarks of packages that may not import identity (other services).
func ProductionHashing() identity.Config { return identity.DefaultConfig() }

// ManyRegistrations returns a risk configuration whose registration
// throttle lets n registrations per tenant and client address through in
// an hour, for Options.Risk in tests and benchmarks that register many
// users from the one address they run at, in packages that may not import
// risk (other services).
func ManyRegistrations(n int) risk.Config {
	p := risk.PublicRequestThrottlePolicy{MaxRequests: n, Window: time.Hour}
	return risk.Config{RegistrationThrottle: p, RegistrationThrottleAllTenants: p}
}

// Start starts the named services (all when none are named) and stops them
// when tb ends. It fails tb if anything cannot start.
func Start(tb testing.TB, names ...string) *Env {
	tb.Helper()
	return StartWith(tb, Options{}, names...)
}

// StartWith is [Start] with opts.
func StartWith(tb testing.TB, opts Options, names ...string) *Env {
	tb.Helper()
	if opts.Identity.Password == (identity.PasswordParams{}) {
		// End-to-end tests exercise the flows, not the hash cost: identity's
		// own tests cover the production argon2id parameters.
		opts.Identity.Password = identity.PasswordParams{Memory: 1024, Iterations: 1}
	}
	cluster := pgtest.New(tb)
	adminURL := pgtest.AdminURL(tb)
	nats := natstest.Start(tb)
	logger := Logger(tb)

	operator, err := randomPassword("")
	if err != nil {
		tb.Fatalf("servicestest: %v", err)
	}
	env := &Env{
		NATS:          nats,
		JS:            nats.JetStream(tb),
		PG:            cluster,
		Secrets:       secrets.NewMemory(),
		Signer:        authtest.NewSigner(tb, "servicestest-"+operator[:8]),
		OperatorToken: operator,
		tb:            tb,
	}
	env.Signer.Now = opts.Session.Now
	keys := opts.Keys
	if keys == nil {
		keys = env.Signer.Keys()
	}
	serviceKeys, err := env.newServiceSigners(opts.Session.Now)
	if err != nil {
		tb.Fatalf("servicestest: %v", err)
	}
	ctx, cancel := context.WithTimeout(tb.Context(), startTimeout)
	defer cancel()
	p, err := services.Start(ctx, services.Config{
		AdminURL:  adminURL,
		Naming:    cluster.Naming(),
		Passwords: randomPassword,
		// The platform's own connection, so closing the test's JS (before
		// Platform.Close, cleanups run last-in first-out) never races a
		// relay's final drain.
		JS:             nats.JetStream(tb),
		Secrets:        env.Secrets,
		Logger:         logger,
		Streams:        events.StreamConfig{Replicas: 1},
		TailHeartbeat:  opts.TailHeartbeat,
		TailLimits:     opts.TailLimits,
		HealthInterval: 100 * time.Millisecond,
		Relay:          events.RelayConfig{PollInterval: relayPollInterval, StandbyInterval: 2 * relayPollInterval},
		Consumer:       events.ConsumerConfig{Backoff: consumerBackoff, AckWait: consumerAckWait},
		// 16 services in parallel tests must fit PostgreSQL's default 100
		// connections; a relay holds one of each pool's.
		Pool:               pg.PoolConfig{MaxConns: 4},
		Tenant:             opts.Tenant,
		Identity:           opts.Identity,
		Session:            opts.Session,
		Risk:               testRisk(opts.Risk),
		TrustedProxies:     opts.TrustedProxies,
		TracerProvider:     opts.TracerProvider,
		MinPositionTimeout: opts.MinPositionTimeout,
		AllowedOrigins:     opts.AllowedOrigins,
		LoopbackOnly:       opts.LoopbackOnly,
		Console:            opts.Console,
		// Tokens are checked against session's clock, which tests move.
		Auth: services.AuthConfig{OperatorToken: operator, Keys: keys, ServiceKeys: serviceKeys, Now: opts.Session.Now},
	}, names...)
	if err != nil {
		tb.Fatalf("servicestest: %v", err)
	}
	env.Platform = p
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Errorf("servicestest: %v", err)
		}
	})

	srv := httptest.NewUnstartedServer(p.Handler())
	srv.Config.Protocols = services.Protocols()
	srv.Config.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	srv.Start()
	tb.Cleanup(srv.Close) // runs before p.Close: in-flight requests finish first
	env.URL = srv.URL
	env.HTTP = H2CClient()
	tb.Cleanup(env.HTTP.CloseIdleConnections)
	return env
}

// Pool returns the service's pool, connected as the service's own role. It
// fails the test when the service is not running.
func (e *Env) Pool(service string) *pgxpool.Pool {
	e.tb.Helper()
	pool := e.Platform.Pool(service)
	if pool == nil {
		e.tb.Fatalf("servicestest: service %q is not running", service)
	}
	return pool
}

// H2CClient returns an HTTP client that speaks HTTP/2 without TLS (prior
// knowledge) to http:// URLs.
func H2CClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}

// Logger returns a logger that writes to tb's output, at the level named
// by AUTHMS_TEST_LOG (debug, info, warn, error; default warn).
func Logger(tb testing.TB) *slog.Logger {
	tb.Helper()
	level := slog.LevelWarn
	if s := os.Getenv("AUTHMS_TEST_LOG"); s != "" {
		if err := level.UnmarshalText([]byte(s)); err != nil {
			tb.Fatalf("servicestest: AUTHMS_TEST_LOG=%q: %v", s, err)
		}
	}
	return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: level}))
}

func randomPassword(string) (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// testRisk is cfg with its across-tenants throttles, unless set, out of a
// test's way: a test calls from one loopback address in as many tenants as
// it makes, so the per-tenant limits, at their production defaults, are
// the ones it meets.
func testRisk(cfg risk.Config) risk.Config {
	loose := risk.PublicRequestThrottlePolicy{MaxRequests: 1_000_000, Window: time.Hour}
	if cfg.ResetThrottleAllTenants == (risk.PublicRequestThrottlePolicy{}) {
		cfg.ResetThrottleAllTenants = loose
	}
	if cfg.RegistrationThrottleAllTenants == (risk.PublicRequestThrottlePolicy{}) {
		cfg.RegistrationThrottleAllTenants = loose
	}
	return cfg
}
