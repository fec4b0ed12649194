// Package natstest runs an embedded NATS JetStream server for a test, with
// helpers to connect to it and to inject its failure: Stop takes the server
// down, Restart brings it back on the same port and store, so JetStream state
// survives and reconnecting clients carry on.
package natstest

import (
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authms/authms/events/natsembed"
)

// Server is an embedded NATS server owned by one test.
type Server struct {
	host     string
	port     int
	storeDir string
	logger   *slog.Logger

	mu sync.Mutex
	ns *server.Server // nil while stopped
}

// Start runs a JetStream server on 127.0.0.1 and a free port, storing into a
// fresh tb.TempDir, and shuts it down when tb ends. Server warnings and errors
// go to stderr.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{
		host:     "127.0.0.1",
		storeDir: tb.TempDir(),
		logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	ns, err := natsembed.Start(natsembed.Config{
		Host:     s.host,
		Port:     natsembed.RandomPort,
		StoreDir: s.storeDir,
		Logger:   s.logger,
	})
	if err != nil {
		tb.Fatalf("natstest: %v", err)
	}
	addr, ok := ns.Addr().(*net.TCPAddr)
	if !ok {
		ns.Shutdown()
		tb.Fatalf("natstest: unexpected listener address %v", ns.Addr())
	}
	s.port = addr.Port
	s.ns = ns
	tb.Cleanup(s.Stop)
	return s
}

// URL returns the client URL, nats://127.0.0.1:<port>. It stays the same
// across Stop and Restart.
func (s *Server) URL() string {
	return "nats://" + net.JoinHostPort(s.host, strconv.Itoa(s.port))
}

// StoreDir returns the JetStream store directory.
func (s *Server) StoreDir() string { return s.storeDir }

// Connect connects to the server and closes the connection when tb ends. The
// connection reconnects forever, every 50ms, so it survives Stop and Restart;
// opts are applied after these defaults.
func (s *Server) Connect(tb testing.TB, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	defaults := []nats.Option{
		nats.Name(tb.Name()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50 * time.Millisecond),
		nats.ReconnectJitter(0, 0),
	}
	nc, err := nats.Connect(s.URL(), append(defaults, opts...)...)
	if err != nil {
		tb.Fatalf("natstest: connect %s: %v", s.URL(), err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context on a new connection (see Connect).
func (s *Server) JetStream(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	js, err := jetstream.New(s.Connect(tb))
	if err != nil {
		tb.Fatalf("natstest: jetstream: %v", err)
	}
	return js
}

// Stop shuts the server down and waits until it has stopped. Stopping a
// stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ns == nil {
		return
	}
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	s.ns = nil
}

// Restart stops the server if it runs and starts a new one on the same port
// and store directory, so streams, consumers and messages survive.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	ns, err := natsembed.Start(natsembed.Config{
		Host:     s.host,
		Port:     s.port,
		StoreDir: s.storeDir,
		Logger:   s.logger,
	})
	if err != nil {
		tb.Fatalf("natstest: restart: %v", err)
	}
	s.ns = ns
}
