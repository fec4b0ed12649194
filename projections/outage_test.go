package projections_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/pg"
	"github.com/authms/authms/events/pg/pgtest"
	"github.com/authms/authms/projections"
)

// While the projector's own database refuses connections, the consumer waits
// instead of spending delivery attempts: with MaxDeliver 3 and a 10ms backoff,
// any attempt it spent on the outage would dead-letter events.
func TestOutageSpendsNoDeliveryAttempts(t *testing.T) {
	t.Parallel()
	cluster := pgtest.New(t)
	pool, _ := cluster.Provision(t, service,
		pg.MigrationSource{Name: "events", FS: events.Migrations},
		pg.MigrationSource{Name: service, FS: schema})
	js := natsWithStreams(t)
	c := run(t, projector(recordEffect), pool, js)

	publish(t, js, orderPlaced(t, "before", 1, 1), uuid.NewString())
	require.Eventually(t, func() bool { return c.Stats().Handled == 1 }, 10*time.Second, 10*time.Millisecond)

	prov := cluster.Provisioner()
	require.NoError(t, prov.BlockConnections(t.Context(), service))
	const n = 200
	for i := range n {
		publish(t, js, orderPlaced(t, fmt.Sprint("o", i), 1, int64(i)), uuid.NewString())
	}
	require.Eventually(t, func() bool { return c.Stats().Stalled }, 10*time.Second, 10*time.Millisecond,
		"the consumer notices the outage")
	time.Sleep(time.Second) // long enough for a naive consumer to burn every attempt
	require.NoError(t, prov.AllowConnections(t.Context(), service))

	require.Eventually(t, func() bool { return c.Stats().Handled == n+1 }, 30*time.Second, 20*time.Millisecond)
	st := c.Stats()
	assert.Zero(t, st.DeadLettered)
	assert.NotZero(t, st.Outages)
	assert.False(t, st.Stalled)
	assert.Equal(t, n+1, count(t, pool, "SELECT count(*) FROM effects"), "every event applied once")

	dlq, err := js.Stream(t.Context(), events.DLQStreamName(service))
	require.NoError(t, err)
	info, err := dlq.Info(t.Context())
	require.NoError(t, err)
	assert.Zero(t, info.State.Msgs, "an outage fills no dead-letter stream")
}

// A projector that fails on one event records the failure outside the
// rolled-back transaction, reports it in its state, and clears it once it
// applies that event.
func TestProjectorRecordsItsFailure(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	js := natsWithStreams(t)
	broken := make(chan struct{})
	p := projector(func(ctx context.Context, tx pgx.Tx, ev events.Event) error {
		select {
		case <-broken:
			return recordEffect(ctx, tx, ev)
		default:
			return errors.New("the exchange rate table is empty")
		}
	})
	c, err := projections.NewConsumer(p, projections.Config{Pool: pool, JS: js, Consumer: events.ConsumerConfig{
		MaxDeliver: 1000, Backoff: []time.Duration{20 * time.Millisecond},
	}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	ev := orderPlaced(t, "stuck", 1, 5)
	publish(t, js, ev, ev.ID.String())

	var st projections.State
	require.Eventually(t, func() bool {
		st, err = projections.ReadState(t.Context(), pool, p)
		require.NoError(t, err)
		return st.Failure != nil && st.Failure.Failures >= 3
	}, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, uint64(0), st.Checkpoint, "nothing applied yet")
	assert.Equal(t, uint64(1), st.Failure.Sequence)
	assert.Equal(t, ev.ID.String(), st.Failure.EventID)
	assert.Equal(t, placed, st.Failure.Subject)
	assert.Contains(t, st.Failure.Error, "the exchange rate table is empty")
	assert.Equal(t, 0, count(t, pool, "SELECT count(*) FROM effects"), "the failed transaction left nothing")

	close(broken)
	require.Eventually(t, func() bool {
		st, err = projections.ReadState(t.Context(), pool, p)
		require.NoError(t, err)
		return st.Failure == nil
	}, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, uint64(1), st.Checkpoint)
	assert.Equal(t, 1, effects(t, pool, ev.ID))
}
