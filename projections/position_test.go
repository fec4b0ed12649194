package projections_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/events"
	"github.com/authms/authms/projections"
)

// shipped is a subject of the source stream that the projector filters out.
const shipped = "orders.order.shipped"

func TestAwaitPosition(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	js := natsWithStreams(t)
	const poison = "order-that-never-applies"
	p := projector(func(ctx context.Context, tx pgx.Tx, ev events.Event) error {
		if ev.AggregateID == poison {
			return errors.New("the warehouse is down")
		}
		return recordEffect(ctx, tx, ev)
	})
	c, err := projections.NewConsumer(p, projections.Config{Pool: pool, JS: js, Consumer: events.ConsumerConfig{
		MaxDeliver: 1_000_000, Backoff: []time.Duration{20 * time.Millisecond}, AckWait: 2 * time.Second,
	}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	cfg := projections.AwaitConfig{Service: service, Pool: pool, JS: js, Projectors: []projections.Projector{p}, Timeout: 10 * time.Second}
	at := func(seq uint64) events.Position { return events.Position{Stream: "ORDERS", Sequence: seq} }

	first := orderPlaced(t, uuid.NewString(), 1, 100)
	publish(t, js, first, first.ID.String()) // 1
	require.NoError(t, projections.AwaitPosition(t.Context(), cfg, at(1)))
	total, _ := orderTotal(t, pool, first.AggregateID)
	assert.Equal(t, int64(100), total, "applied when AwaitPosition returned")

	t.Run("an event the projector filters out", func(t *testing.T) {
		ev := orderPlaced(t, uuid.NewString(), 1, 5)
		ev.Name = "shipped"
		require.Equal(t, shipped, ev.Subject())
		publish(t, js, ev, ev.ID.String()) // 2
		require.NoError(t, projections.AwaitPosition(t.Context(), cfg, at(2)))
	})

	t.Run("an event the projector keeps failing on", func(t *testing.T) {
		bad := orderPlaced(t, poison, 1, 1)
		publish(t, js, bad, bad.ID.String()) // 3
		good := orderPlaced(t, uuid.NewString(), 1, 7)
		publish(t, js, good, good.ID.String()) // 4
		require.NoError(t, projections.AwaitPosition(t.Context(), cfg, at(4)), "the projector moved past the failing event")

		short := cfg
		short.Timeout = 200 * time.Millisecond
		err := projections.AwaitPosition(t.Context(), short, at(3))
		var notApplied *projections.NotAppliedError
		require.ErrorAs(t, err, &notApplied)
		assert.Equal(t, "reports has not yet applied ORDERS sequence 3; retry", err.Error())
	})

	t.Run("the request's deadline bounds the wait", func(t *testing.T) {
		// Sooner than the timeout, the deadline ends the wait: the answer is
		// still "not applied", not a context error.
		dctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		var notApplied *projections.NotAppliedError
		require.ErrorAs(t, projections.AwaitPosition(dctx, cfg, at(3)), &notApplied)
	})

	t.Run("a position past the stream's end", func(t *testing.T) {
		// No wait could see it: refused at once, not after the timeout.
		var unpublished *projections.UnpublishedPositionError
		require.ErrorAs(t, projections.AwaitPosition(t.Context(), cfg, at(1000)), &unpublished)
		assert.Equal(t, "the ORDERS stream has no sequence 1000 (its last is 4)", unpublished.Error())
	})

	t.Run("positions that need no wait", func(t *testing.T) {
		require.NoError(t, projections.AwaitPosition(t.Context(), cfg, events.Position{}))
		require.NoError(t, projections.AwaitPosition(t.Context(), cfg, events.Position{Stream: "REPORTS", Sequence: 1_000_000}),
			"the service's own stream: its reads see its commits")
	})

	t.Run("a stream the service does not project", func(t *testing.T) {
		var notProjected *projections.StreamNotProjectedError
		require.ErrorAs(t, projections.AwaitPosition(t.Context(), cfg, events.Position{Stream: "WALLET", Sequence: 1}), &notProjected)
		assert.Equal(t, "reports does not project the WALLET stream", notProjected.Error())
	})
}
