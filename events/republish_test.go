package events_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/natstest"
)

// A stream that lost events is rebuilt from the events table, in order,
// without publishing what it still holds.
func TestRepublish(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	ns := natstest.Start(t)
	js := ns.JetStream(t)
	require.NoError(t, events.EnsureStreams(t.Context(), js, service, events.StreamConfig{}))
	store := events.NewStore(service)

	var ids []uuid.UUID
	for i := range 200 {
		ids = append(ids, appendOne(t, pool, store, strconv.Itoa(i)).ID)
	}
	relay, err := events.NewRelay(events.RelayConfig{Service: service, Pool: pool, JS: js, PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = relay.Run(ctx) }()
	require.Eventually(t, func() bool { return outboxRows(t, pool) == 0 }, 10*time.Second, 20*time.Millisecond)
	stop()
	<-done

	// With the relay gone, 300 more events never reach the stream: their
	// outbox rows are lost.
	for i := range 300 {
		ids = append(ids, appendOne(t, pool, store, strconv.Itoa(200+i)).ID)
	}
	_, err = pool.Exec(t.Context(), "DELETE FROM outbox")
	require.NoError(t, err)
	require.Equal(t, uint64(200), streamMsgs(t, js, "ORDERS"))

	var calls int
	res, err := events.Republish(t.Context(), events.RepublishConfig{Service: service, Pool: pool, JS: js, BatchSize: 128,
		Progress: func(done, total uint64) { calls++; assert.Equal(t, uint64(300), total) }})
	require.NoError(t, err)
	assert.Equal(t, uint64(300), res.Published)
	assert.Zero(t, res.Duplicates)
	assert.Equal(t, 3, calls)
	require.Equal(t, uint64(500), streamMsgs(t, js, "ORDERS"))

	s, err := js.Stream(t.Context(), "ORDERS")
	require.NoError(t, err)
	for i, id := range ids {
		msg, err := s.GetMsg(t.Context(), uint64(i+1))
		require.NoError(t, err)
		require.Equal(t, id.String(), msg.Header.Get("ce-id"), "stream order is events-table order")
		require.Equal(t, "orders.order.placed.v1", msg.Header.Get("ce-type"))
	}

	// Nothing is missing now, so a second run publishes nothing.
	res, err = events.Republish(t.Context(), events.RepublishConfig{Service: service, Pool: pool, JS: js})
	require.NoError(t, err)
	assert.Zero(t, res.Published+res.Duplicates)

	// From the start, JetStream de-duplicates within its window.
	res, err = events.Republish(t.Context(), events.RepublishConfig{Service: service, Pool: pool, JS: js, FromStart: true})
	require.NoError(t, err)
	assert.Zero(t, res.Published)
	assert.Equal(t, uint64(500), res.Duplicates)
	assert.Equal(t, uint64(500), streamMsgs(t, js, "ORDERS"))

	// A stream lost entirely and recreated empty gets everything back.
	require.NoError(t, js.DeleteStream(t.Context(), "ORDERS"))
	require.NoError(t, events.EnsureStreams(t.Context(), js, service, events.StreamConfig{}))
	res, err = events.Republish(t.Context(), events.RepublishConfig{Service: service, Pool: pool, JS: js})
	require.NoError(t, err)
	assert.Equal(t, uint64(500), res.Published)
	assert.Equal(t, uint64(500), streamMsgs(t, js, "ORDERS"))
}
