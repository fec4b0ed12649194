package services

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/authms/authms/services/internal/clientip"
)

const (
	statusServing    = grpchealth.StatusServing
	statusNotServing = grpchealth.StatusNotServing
)

// corsMaxAge is how long browsers may cache a preflight response.
const corsMaxAge = 2 * time.Hour

// Handler returns the HTTP handler of every running service: their Connect
// APIs (Connect, gRPC and gRPC-web protocols), the admin API over their dead
// letters (authms.admin.v1.DeadLetterService), grpc.health.v1, gRPC
// reflection, the Prometheus metrics at [MetricsPath] and, when
// Config.Console is set, the browser console at "/", behind the origin
// policy of Config.AllowedOrigins (CORS). Serve it with [NewServer] so gRPC clients get
// HTTP/2 without TLS.
//
// Health reports, per service, both its name ("billing") and the full names
// of its APIs ("authms.billing.v1.BillingService"), and "" for the whole
// process. A service whose Run loop fails is reported NOT_SERVING, and so is
// everything once Close begins.
func (p *Platform) Handler() http.Handler { return p.handler }

// consoleSettings returns what SetConsoleConfig set last.
func (p *Platform) consoleSettings() ConsoleConfig {
	if c := p.consoleConfig.Load(); c != nil {
		return *c
	}
	return ConsoleConfig{}
}

func (p *Platform) buildHandler(cfg Config) error {
	mux := http.NewServeMux()
	p.health = grpchealth.NewStaticChecker()
	p.health.SetStatus("", statusServing)
	p.healthNames = make(map[string][]string, len(p.units))
	reflected := []string{grpchealth.HealthV1ServiceName}
	for _, u := range p.units {
		if err := mount(u, mux); err != nil {
			return err
		}
		apis := apiNames(u.info.Name)
		p.healthNames[u.info.Name] = append([]string{u.info.Name}, apis...)
		reflected = append(reflected, apis...)
		p.setStatus(u.info.Name, true)
	}
	admin, err := p.mountAdmin(mux, cfg)
	if err != nil {
		return err
	}
	reflected = append(reflected, admin...)
	// Health, reflection, metrics (and session's JWKS) are plain handlers
	// outside the auth interceptor: they stay open.
	if err := checkPolicies(p.authn, reflected[1:]); err != nil {
		return fmt.Errorf("access policies: %w", err)
	}
	mux.Handle(grpchealth.NewHandler(p.health))
	mux.Handle(MetricsPath, p.metricsHandler())
	reflector := grpcreflect.NewStaticReflector(reflected...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	if cfg.Console != nil {
		c, err := newConsole(cfg.Console, p.consoleSettings)
		if err != nil {
			return err
		}
		// "/" is the mux's least specific pattern: every API path is
		// matched before it.
		mux.Handle("/", c)
	}
	all, allowed, err := parseOrigins(cfg.AllowedOrigins)
	if err != nil {
		return err
	}
	p.handler = withCORS(mux, originPolicy{all: all, allowed: allowed,
		clients: clientip.Resolver{TrustedProxies: cfg.TrustedProxies}, loopbackOnly: cfg.LoopbackOnly})
	return nil
}

// mount registers a service's handlers, turning the ServeMux's panic on a
// pattern registered twice into an error that names the service.
func mount(u *unit, mux *http.ServeMux) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("start %s: mount its API: %v", u.info.Name, r)
		}
	}()
	u.svc.Mount(mux)
	return nil
}

// apiNames returns the full names of the Connect services declared in the
// service's protobuf packages (authms.<service>.v1, ...), as registered by
// the generated code it imports.
func apiNames(service string) []string {
	prefix := "authms." + service + "."
	var names []string
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if strings.HasPrefix(string(fd.Package()), prefix) {
			for i := range fd.Services().Len() {
				names = append(names, string(fd.Services().Get(i).FullName()))
			}
		}
		return true
	})
	slices.Sort(names)
	return names
}

// setStatus reports a service's health under all its names.
func (p *Platform) setStatus(service string, serving bool) {
	status := statusNotServing
	if serving {
		status = statusServing
	}
	for _, name := range p.healthNames[service] {
		p.health.SetStatus(name, status)
	}
}

// NewServer returns an HTTP server for h that speaks HTTP/1.1 and HTTP/2
// without TLS (h2c with prior knowledge), as gRPC clients need. It sets no
// write timeout, since streaming calls may run long; callers stop it with
// Shutdown.
func NewServer(addr string, h http.Handler, logger *slog.Logger) *http.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Addr:              addr,
		Handler:           h,
		Protocols:         Protocols(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.With("component", "http").Handler(), slog.LevelWarn),
	}
	return srv
}

// Protocols returns the protocols authms serves: HTTP/1.1 and unencrypted
// HTTP/2.
func Protocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &p
}
