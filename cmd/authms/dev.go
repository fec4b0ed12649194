package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/authms/authms/events/natsembed"
	"github.com/authms/authms/events/pg"
	"github.com/authms/authms/services"
	"github.com/authms/authms/services/identity"
	"github.com/authms/authms/services/tenant"
	"github.com/authms/authms/web"
)

// shutdownTimeout bounds how long in-flight requests may take to finish.
const shutdownTimeout = 30 * time.Second

// servicesConfig is the configuration shared by dev and migrate: the admin
// URL from DATABASE_URL, and development passwords and keys under dataDir.
func (c *cli) servicesConfig(dataDir string, logger *slog.Logger) (services.Config, error) {
	origins, err := services.ParseAllowedOrigins(c.list("AUTHMS_CORS_ORIGINS"))
	if err != nil {
		return services.Config{}, fmt.Errorf("AUTHMS_CORS_ORIGINS: %w", err)
	}
	proxies, err := services.ParseTrustedProxies(c.list("AUTHMS_TRUSTED_PROXIES"))
	if err != nil {
		return services.Config{}, fmt.Errorf("AUTHMS_TRUSTED_PROXIES: %w", err)
	}
	skipDomainCheck, err := c.flag("AUTHMS_INSECURE_SKIP_DOMAIN_CHECK")
	if err != nil {
		return services.Config{}, err
	}
	return services.Config{
		AdminURL:       c.env("DATABASE_URL", defaultDatabaseURL),
		Naming:         pg.Naming{Prefix: c.getenv("AUTHMS_DATABASE_PREFIX")},
		Passwords:      func(svc string) (string, error) { return pg.DevPassword(dataDir, svc) },
		Secrets:        services.DevSecrets(dataDir),
		Logger:         logger,
		AllowedOrigins: origins,
		TrustedProxies: proxies,
		// Until the notification service delivers them, identity logs its
		// verification and reset links (at info) under this base URL.
		Identity: identity.Config{LinkBaseURL: c.getenv("AUTHMS_LINK_BASE_URL"), LogLinks: true},
		// VerifyDomain asks the system resolver, or AUTHMS_DNS_SERVER. A
		// developer with no DNS zone to publish a domain's challenge record
		// in opts out with AUTHMS_INSECURE_SKIP_DOMAIN_CHECK; tenant then
		// warns at start and at every verification.
		Tenant: tenant.Config{DNSServer: strings.TrimSpace(c.getenv("AUTHMS_DNS_SERVER")), InsecureSkipDomainCheck: skipDomainCheck},
	}, nil
}

// flag reads a boolean environment variable: unset is false, otherwise 1,
// true, 0 or false (strconv.ParseBool).
func (c *cli) flag(name string) (bool, error) {
	v := strings.TrimSpace(c.getenv(name))
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: want 1 or 0", name, v)
	}
	return b, nil
}

// list returns the comma-separated values of the environment variable
// name, trimmed, empty ones dropped.
func (c *cli) list(name string) []string {
	var out []string
	for v := range strings.SplitSeq(c.getenv(name), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// flagDefault is flag with a default for an unset variable.
func (c *cli) flagDefault(name string, def bool) (bool, error) {
	if strings.TrimSpace(c.getenv(name)) == "" {
		return def, nil
	}
	return c.flag(name)
}

// natsPort reads AUTHMS_NATS_PORT: the client port of authms dev's
// embedded NATS server (natsembed.DefaultPort by default), 0 for a free
// one, so a second authms dev (browser tests) runs beside the first.
func (c *cli) natsPort() (int, error) {
	v := strings.TrimSpace(c.getenv("AUTHMS_NATS_PORT"))
	if v == "" {
		return natsembed.DefaultPort, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("AUTHMS_NATS_PORT=%q: want a port from 0 (a free one) to 65535", v)
	}
	return n, nil
}

// natsReplicas reads NATS_REPLICAS: how many servers of a NATS cluster
// keep a copy of each stream (1 by default, 3 in production). JetStream
// allows at most 5.
func (c *cli) natsReplicas() (int, error) {
	v := c.getenv("NATS_REPLICAS")
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 5 {
		return 0, fmt.Errorf("NATS_REPLICAS=%q: want a number of stream replicas from 1 to 5", v)
	}
	return n, nil
}

// dev runs every service (or the named ones) in this process.
func (c *cli) dev(ctx context.Context, stopSignals func(), args []string) (err error) {
	fs := c.newFlags("dev", "authms dev [flags] [service...]")
	httpAddr := fs.String("http", c.env("AUTHMS_HTTP_ADDR", defaultHTTPAddr), "API listen `address` (AUTHMS_HTTP_ADDR)")
	dataDir := fs.String("data", c.env("AUTHMS_DATA_DIR", defaultDataDir), "development data `directory`: NATS store, database passwords, keys (AUTHMS_DATA_DIR)")
	natsPortDefault, err := c.natsPort()
	if err != nil {
		return err
	}
	natsPort := fs.Int("nats-port", natsPortDefault, "client `port` of the embedded NATS server, 0 for a free one (AUTHMS_NATS_PORT)")
	bootstrapDefault, err := c.flagDefault("AUTHMS_DEV_BOOTSTRAP", true)
	if err != nil {
		return err
	}
	bootstrap := fs.Bool("bootstrap", bootstrapDefault, "ensure the tenant dev and its admin "+devAdminEmail+" (AUTHMS_DEV_BOOTSTRAP)")
	names, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *natsPort < 0 || *natsPort > 65535 {
		return fmt.Errorf("-nats-port %d: want a port from 0 (a free one) to 65535", *natsPort)
	}
	replicas, err := c.natsReplicas()
	if err != nil {
		return err
	}
	logger, err := c.logger()
	if err != nil {
		return err
	}
	defer func() {
		if err == nil {
			logger.Info("authms dev stopped")
		}
	}()

	// NATS: the one in NATS_URL, or an embedded server.
	natsURL := c.getenv("NATS_URL")
	var ns *server.Server
	if natsURL == "" {
		port := *natsPort
		if port == 0 {
			port = natsembed.RandomPort
		}
		ns, err = natsembed.Start(natsembed.Config{
			Port:     port,
			StoreDir: filepath.Join(*dataDir, "nats"),
			Logger:   logger,
		})
		if err != nil {
			return fmt.Errorf("%w (is another authms dev running? set AUTHMS_NATS_PORT=0 for a free port, or NATS_URL to use a running server)", err)
		}
		defer func() {
			ns.Shutdown()
			ns.WaitForShutdown()
			logger.Info("nats server stopped")
		}()
		natsURL = ns.ClientURL()
	}
	nc, err := nats.Connect(natsURL,
		nats.Name("authms dev"),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected; the outboxes hold events until it is back", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { logger.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }))
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	// Listen before starting the services, so a taken port fails fast.
	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("listen for the API: %w", err)
	}
	defer ln.Close()

	cfg, err := c.servicesConfig(*dataDir, logger)
	if err != nil {
		return err
	}
	// Listening on loopback alone, the API is reached under loopback names
	// only; a page under any other is a DNS-rebinding page's.
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && tcp.IP.IsLoopback() {
		cfg.LoopbackOnly = true
	}
	operatorAt := "AUTHMS_OPERATOR_TOKEN"
	if cfg.Auth.OperatorToken = strings.TrimSpace(c.getenv("AUTHMS_OPERATOR_TOKEN")); cfg.Auth.OperatorToken == "" {
		if cfg.Auth.OperatorToken, operatorAt, err = services.DevOperatorToken(ctx, *dataDir); err != nil {
			return err
		}
	}
	cfg.JS = js
	cfg.Streams.Replicas = replicas
	cfg.Console = web.Console()
	tp, flushSpans, err := c.tracing(ctx, logger)
	if err != nil {
		return err
	}
	defer flushSpans() // after the services stopped: their last spans too
	cfg.TracerProvider = tp
	p, err := services.Start(ctx, cfg, names...)
	if err != nil {
		return err
	}
	srv := services.NewServer(*httpAddr, p.Handler(), logger)
	srv.RegisterOnShutdown(p.EndStreams) // open tails would hold the shutdown to its deadline
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	boot, err := c.devBootstrap(ctx, *bootstrap, ln.Addr(), cfg.Auth.OperatorToken, *dataDir, p, logger)
	switch {
	case err != nil && ctx.Err() != nil:
		err = nil // Ctrl-C during the bootstrap: a clean stop
		logger.Info("shutting down")
	case err != nil:
		// Stop what started; the error says why.
	default:
		c.printDev(devBanner{addr: ln.Addr(), natsURL: natsURL, embedded: ns != nil, dataDir: *dataDir, operatorAt: operatorAt, bootstrap: boot}, p)
		select {
		case <-ctx.Done():
			stopSignals() // a second Ctrl-C kills the process
			logger.Info("shutting down: finishing in-flight requests (Ctrl-C again to force)")
		case err = <-serveErr:
			logger.Error("the API server failed; shutting down", "err", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var errs []error
	if serr := srv.Shutdown(sctx); serr != nil {
		errs = append(errs, fmt.Errorf("stop the API server: %w", serr))
	}
	if cerr := p.Close(); cerr != nil {
		errs = append(errs, cerr)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("serve the API: %w", err))
	}
	// The relays waited for JetStream's acks; the deferred calls now close
	// the connection and stop the embedded server.
	return errors.Join(errs...)
}

// devBootstrap runs the bootstrap (bootstrapDev) unless it is off or a
// service it calls does not run here, and gives the console its tenant.
// It returns nil when it did not run.
func (c *cli) devBootstrap(ctx context.Context, on bool, addr net.Addr, operatorToken, dataDir string, p *services.Platform, logger *slog.Logger) (*devBootstrap, error) {
	if !on {
		return nil, nil
	}
	running := make(map[string]bool)
	for _, s := range p.Services() {
		running[s.Name] = true
	}
	for _, name := range bootstrapServices {
		if !running[name] {
			logger.Info("dev bootstrap skipped: it needs the "+strings.Join(bootstrapServices, ", ")+" services", "missing", name)
			return nil, nil
		}
	}
	b, err := bootstrapDev(ctx, loopbackURL(addr), operatorToken, dataDir, logger)
	if err != nil {
		return nil, fmt.Errorf("dev bootstrap (AUTHMS_DEV_BOOTSTRAP=0 turns it off): %w", err)
	}
	p.SetConsoleConfig(services.ConsoleConfig{Tenant: &b.tenant})
	return &b, nil
}

// tracing turns OpenTelemetry tracing on when the OTEL_ environment
// variables ask for it; it is off by default, and then tp is nil. flush
// exports the last spans: call it after the services stopped.
func (c *cli) tracing(ctx context.Context, logger *slog.Logger) (tp trace.TracerProvider, flush func(), err error) {
	tp, shutdown, err := services.TracingFromEnv(ctx, c.getenv, c.stdout)
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: %w", err)
	}
	if tp == nil {
		return nil, func() {}, nil
	}
	// authms passes tp along explicitly; the globals serve libraries.
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	logger.Info("tracing on")
	return tp, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			logger.Warn("exporting the last spans failed", "err", err)
		}
	}, nil
}

// devBanner is what printDev reports.
type devBanner struct {
	addr       net.Addr
	natsURL    string
	embedded   bool // the NATS server is authms dev's own
	dataDir    string
	operatorAt string
	bootstrap  *devBootstrap // nil: the bootstrap did not run
}

// printDev tells the developer where everything is.
func (c *cli) printDev(b devBanner, p *services.Platform) {
	api := "http://" + b.addr.String()
	if tcp, ok := b.addr.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		api = fmt.Sprintf("http://localhost:%d", tcp.Port)
	}
	natsNote := "(NATS_URL)"
	if b.embedded {
		natsNote = "(embedded, store " + filepath.Join(b.dataDir, "nats") + ")"
	}
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "authms dev is running. Ctrl-C stops it.\n\n")
	fmt.Fprintf(w, "Console\t%s/\tbrowser console\n", api)
	fmt.Fprintf(w, "API\t%s\tConnect, gRPC and gRPC-web; grpc.health.v1 and reflection\n", api)
	fmt.Fprintf(w, "NATS\t%s\t%s\n", b.natsURL, natsNote)
	if boot := b.bootstrap; boot != nil {
		fmt.Fprintf(w, "Tenant\t%s %s\t%s\n", boot.tenant.Slug, boot.tenant.ID, boot.tenant.Name)
		if boot.passwordFile != "" {
			fmt.Fprintf(w, "Admin\t%s\tpassword in %s\n", devAdminEmail, boot.passwordFile)
		} else {
			fmt.Fprintf(w, "Admin\tnone made\tthe tenant dev existed before this data directory's bootstrap\n")
		}
	}
	fmt.Fprintf(w, "Secrets\t%s\tdatabase passwords and keys\n", filepath.Join(b.dataDir, "secrets"))
	fmt.Fprintf(w, "Operator\t%s\toperator token: admin APIs, CreateTenant, ListTenants, SuspendTenant, ReactivateTenant, AssignRoles (the CLI reads it)\n", b.operatorAt)
	for i, s := range p.Services() {
		label := ""
		if i == 0 {
			label = "Databases"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\tstream %s\n", label, s.Name, s.Database.String(), s.Stream)
	}
	_ = w.Flush()
	fmt.Fprintf(c.stdout, "\nHealth:  curl -s -H 'Content-Type: application/json' -d '{}' %s/grpc.health.v1.Health/Check\n", api)
	fmt.Fprintf(c.stdout, "Metrics: curl -s %s%s\n", api, services.MetricsPath)
	events, cli := devHints(c.argv0, b.natsURL, api, b.dataDir)
	fmt.Fprintf(c.stdout, "Events:  %s\n", events)
	if cli != "" {
		fmt.Fprintf(c.stdout, "CLI:     %s\n", cli)
	}
	fmt.Fprintln(c.stdout)
}

// devHints returns the banner's commands for this authms dev: the Events
// line's tail, and the CLI line's ("" when the CLI's defaults reach this
// process as documented: `authms` on the PATH, the default NATS and API
// URLs and data directory). Each runs as printed in another shell, from
// the same directory: it calls authms as it was started (argv0) and sets
// NATS_URL, AUTHMS_API_URL and (for the operator token the admin commands
// read) AUTHMS_DATA_DIR where they differ from the CLI's defaults, as with
// AUTHMS_NATS_PORT=0 or another AUTHMS_HTTP_ADDR.
func devHints(argv0, natsURL, apiURL, dataDir string) (events, cli string) {
	cmd := cliCommand(argv0)
	var natsEnv, apiEnv, dataEnv string
	if natsURL != defaultNATSURL {
		natsEnv = "NATS_URL=" + shellQuote(natsURL) + " "
	}
	if apiURL != defaultAPIURL {
		apiEnv = "AUTHMS_API_URL=" + shellQuote(apiURL) + " "
	}
	if dataDir != defaultDataDir {
		dataEnv = "AUTHMS_DATA_DIR=" + shellQuote(dataDir) + " "
	}
	events = natsEnv + cmd + " events tail '>'"
	if natsEnv == "" && apiEnv == "" && dataEnv == "" && cmd == "authms" {
		return events, ""
	}
	return events, natsEnv + apiEnv + dataEnv + cmd + " projections ls  (dlq and events need the same variables)"
}

// cliCommand returns how a shell runs the authms that argv0 (os.Args[0])
// names: `authms` when it came from the PATH (or argv0 is unknown), `go
// run ./cmd/authms` for a binary `go run` built, and otherwise the path it
// was started by, such as ./bin/authms under `task dev`.
func cliCommand(argv0 string) string {
	switch {
	case argv0 == "" || !strings.ContainsRune(argv0, filepath.Separator):
		return "authms"
	case filepath.Base(filepath.Dir(argv0)) == "exe" && strings.Contains(argv0, "go-build"):
		return "go run ./cmd/authms"
	}
	return shellQuote(argv0)
}

// shellQuote quotes s for a POSIX shell when it holds anything but the
// characters URLs and paths are usually made of.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:@%+=,-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// migrate provisions and migrates the databases, then exits.
func (c *cli) migrate(ctx context.Context, args []string) error {
	fs := c.newFlags("migrate", "authms migrate [flags] [service...]")
	dataDir := fs.String("data", c.env("AUTHMS_DATA_DIR", defaultDataDir), "development data `directory` holding database passwords (AUTHMS_DATA_DIR)")
	names, err := parse(fs, args)
	if err != nil {
		return err
	}
	logger, err := c.logger()
	if err != nil {
		return err
	}
	cfg, err := c.servicesConfig(*dataDir, logger)
	if err != nil {
		return err
	}
	infos, err := services.Migrate(ctx, cfg, names...)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SERVICE\tDATABASE")
	for _, s := range infos {
		fmt.Fprintf(w, "%s\t%s\n", s.Name, s.Database.String())
	}
	return w.Flush()
}
