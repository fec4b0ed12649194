package services

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/authms/authms/services/internal/platform"
)

// inProcessHost names the platform's own API in peer URLs. It never
// resolves: peer connections are in-memory pipes to the platform's handler.
const inProcessHost = "authms.internal"

// peers gives services clients of each other's Connect APIs. A service
// named in urls is reached there (another process, behind a load
// balancer); every other one is reached in process, over HTTP on an
// in-memory connection to the platform's own handler, so a call passes
// through exactly the handlers, interceptors and CORS layer a remote client
// meets.
type peers struct {
	urls   map[string]string // service -> base URL
	remote *http.Client
	local  *http.Client
	ln     *memListener
	srv    *http.Server
}

func newPeers(urls map[string]string, logger *slog.Logger) *peers {
	ln := newMemListener()
	transport := &http.Transport{
		Protocols:           Protocols(),
		DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return ln.dial(ctx) },
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     time.Minute,
	}
	srv := NewServer(inProcessHost, http.NotFoundHandler(), logger.With("component", "peers"))
	return &peers{
		urls:   urls,
		remote: &http.Client{Timeout: 30 * time.Second},
		local:  &http.Client{Transport: transport},
		ln:     ln,
		srv:    srv,
	}
}

// Client returns the HTTP client and base URL of service's API.
func (p *peers) Client(service string) (connect.HTTPClient, string) {
	if u, ok := p.urls[service]; ok {
		return p.remote, strings.TrimSuffix(u, "/")
	}
	return p.local, "http://" + inProcessHost
}

// serve serves h to in-process peers until close.
func (p *peers) serve(h http.Handler) {
	p.srv.Handler = h
	go func() { _ = p.srv.Serve(p.ln) }()
}

// close stops serving peers; calls in flight end with an error.
func (p *peers) close() {
	p.local.CloseIdleConnections()
	_ = p.srv.Close()
	_ = p.ln.Close()
}

// memListener is a net.Listener whose connections are in-memory pipes.
type memListener struct {
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func newMemListener() *memListener {
	return &memListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

var errPeersClosed = errors.New("in-process peer connections are closed")

func (l *memListener) dial(ctx context.Context) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
	case <-ctx.Done():
		_ = server.Close()
		_ = client.Close()
		return nil, ctx.Err()
	}
	_ = server.Close()
	_ = client.Close()
	return nil, errPeersClosed
}

// Accept implements net.Listener.
func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (l *memListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

// Addr implements net.Listener.
func (l *memListener) Addr() net.Addr { return memAddr{} }

type memAddr struct{}

func (memAddr) Network() string { return "memory" }
func (memAddr) String() string  { return inProcessHost }

// Peers returns what the platform's services reach each other with.
func (p *Platform) Peers() platform.Peers { return p.peers }
