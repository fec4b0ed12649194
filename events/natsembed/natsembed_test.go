package natsembed_test

import (
	"bytes"
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/events/natsembed"
)

// syncBuffer is a bytes.Buffer safe for the server's logging goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestStart(t *testing.T) {
	t.Parallel()
	ns, err := natsembed.Start(natsembed.Config{Port: natsembed.RandomPort, StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	assert.True(t, ns.JetStreamEnabled())
	addr := ns.Addr().(*net.TCPAddr)
	assert.Equal(t, "127.0.0.1", addr.IP.String(), "listens on loopback by default")

	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.Publish("identity.user.created", []byte("x")))
	require.NoError(t, nc.Flush())
}

func TestStartPortInUse(t *testing.T) {
	t.Parallel()
	first, err := natsembed.Start(natsembed.Config{Port: natsembed.RandomPort, StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { first.Shutdown(); first.WaitForShutdown() })

	var logs syncBuffer
	_, err = natsembed.Start(natsembed.Config{
		Port:     first.Addr().(*net.TCPAddr).Port,
		StoreDir: t.TempDir(),
		Logger:   slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "address already in use")
	assert.Contains(t, logs.String(), "level=ERROR")
}

func TestStartNeedsStoreDir(t *testing.T) {
	t.Parallel()
	_, err := natsembed.Start(natsembed.Config{Port: natsembed.RandomPort})
	assert.ErrorContains(t, err, "store directory")
}
