// Package natsembed runs an in-process NATS server with JetStream, as used by
// `authms dev` and by tests (through package natstest). It owns the server's
// options and routes the server's own log lines into log/slog.
package natsembed

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultPort is the client port of `authms dev`'s embedded server. It is not
// NATS's 4222, which is often taken by a system NATS server.
const DefaultPort = 4223

// RandomPort asks for a free port chosen by the operating system.
const RandomPort = -1

// readyTimeout bounds how long Start waits for the server to accept clients.
const readyTimeout = 10 * time.Second

// Config describes an embedded server.
type Config struct {
	// Host is the interface to listen on; "" means 127.0.0.1, so a development
	// server is never reachable from the network by accident.
	Host string
	// Port is the client port: 0 means DefaultPort, RandomPort a free one
	// (read it back from Server.Addr).
	Port int
	// StoreDir is the JetStream file store directory. It is required: reusing
	// it across restarts keeps streams and consumers.
	StoreDir string
	// Logger receives the server's warnings and errors; nil discards them.
	Logger *slog.Logger
}

// Start starts a JetStream-enabled server and waits until it accepts client
// connections. The caller owns the server: stop it with Shutdown and
// WaitForShutdown.
func Start(cfg Config) (*server.Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("start nats server: no JetStream store directory")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := &server.Options{
		ServerName:             "authms",
		Host:                   cfg.Host,
		Port:                   cfg.Port,
		JetStream:              true,
		StoreDir:               cfg.StoreDir,
		NoSigs:                 true,
		DisableJetStreamBanner: true,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start nats server: %w", err)
	}
	log := &slogLogger{logger: logger.With("component", "nats-server")}
	ns.SetLoggerV2(log, false, false, false)

	// Start sets JetStream up synchronously and starts listening in the
	// background; failures of either are only reported through Fatalf.
	ns.Start()
	deadline := time.Now().Add(readyTimeout)
	for !ns.ReadyForConnections(50 * time.Millisecond) {
		if msg := log.fatal(); msg != "" || time.Now().After(deadline) {
			ns.Shutdown()
			ns.WaitForShutdown()
			if msg == "" {
				msg = "no fatal error logged"
			}
			return nil, fmt.Errorf("start nats server on %s:%d: not ready for connections within %s: %s",
				cfg.Host, cfg.Port, readyTimeout, msg)
		}
	}
	if !ns.JetStreamEnabled() {
		msg := log.fatal()
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("start nats server on %s:%d: JetStream not enabled: %s", cfg.Host, cfg.Port, msg)
	}
	return ns, nil
}

// slogLogger adapts server.Logger to slog: warnings and errors keep their
// level, notices go to debug (the server is chatty at start and stop), and a
// fatal error is logged at error level and remembered for Start, since the
// embedded server must not exit the process.
type slogLogger struct {
	logger *slog.Logger

	mu        sync.Mutex
	lastFatal string
}

var _ server.Logger = (*slogLogger)(nil)

// Noticef logs at debug level.
func (l *slogLogger) Noticef(format string, v ...any) { l.logger.Debug(fmt.Sprintf(format, v...)) }

// Warnf logs at warn level.
func (l *slogLogger) Warnf(format string, v ...any) { l.logger.Warn(fmt.Sprintf(format, v...)) }

// Errorf logs at error level.
func (l *slogLogger) Errorf(format string, v ...any) { l.logger.Error(fmt.Sprintf(format, v...)) }

// Fatalf logs at error level and records the message for Start.
func (l *slogLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.mu.Lock()
	l.lastFatal = msg
	l.mu.Unlock()
	l.logger.Error(msg, "fatal", true)
}

// Debugf logs at debug level.
func (l *slogLogger) Debugf(format string, v ...any) { l.logger.Debug(fmt.Sprintf(format, v...)) }

// Tracef logs at debug level.
func (l *slogLogger) Tracef(format string, v ...any) { l.logger.Debug(fmt.Sprintf(format, v...)) }

func (l *slogLogger) fatal() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastFatal
}
