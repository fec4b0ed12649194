package events_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/natstest"
	"github.com/authms/authms/events/pg"
	"github.com/authms/authms/events/pg/pgtest"
	"github.com/authms/authms/projections"
)

// TestClusterLosesStreamLeader runs a three-node JetStream cluster with the
// service's streams at three replicas, and shuts the stream's leader down
// while a relay publishes and a projector consumes: a new leader takes over,
// no event is lost and the projector applies every event.
func TestClusterLosesStreamLeader(t *testing.T) {
	t.Parallel()
	cluster := natstest.StartCluster(t, 3)
	js := cluster.JetStream(t)
	ctx := t.Context()
	require.NoError(t, events.EnsureStreams(ctx, js, service, events.StreamConfig{Replicas: 3}))
	require.NoError(t, events.EnsureStreams(ctx, js, "billing", events.StreamConfig{Replicas: 3}))
	stream, err := js.Stream(ctx, "ORDERS")
	require.NoError(t, err)
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, info.Config.Replicas)
	require.NotNil(t, info.Cluster)

	pgc := pgtest.New(t)
	source, _ := pgc.Provision(t, service, pg.MigrationSource{Name: "events", FS: events.Migrations})
	sink, _ := pgc.Provision(t, "billing", pg.MigrationSource{Name: "events", FS: events.Migrations})

	relay, err := events.NewRelay(events.RelayConfig{
		Service: service, Pool: source, JS: js,
		BatchSize: 100, PollInterval: 50 * time.Millisecond, AckTimeout: 2 * time.Second,
	})
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() { _ = relay.Run(runCtx) })

	projector := projections.Projector{
		Service: "billing", Name: "orders", Source: service,
		Handlers: map[string]projections.Apply{
			"orders.order.placed": func(context.Context, pgx.Tx, events.Event) error { return nil },
		},
	}
	consumer, err := projections.NewConsumer(projector, projections.Config{
		Pool: sink, JS: js,
		Consumer: events.ConsumerConfig{Backoff: []time.Duration{50 * time.Millisecond}, AckWait: 5 * time.Second},
	})
	require.NoError(t, err)
	wg.Go(func() { _ = consumer.Run(runCtx) })

	// Append 2,000 events in small transactions; shut the stream leader
	// down half-way, while the relay publishes and the projector consumes.
	const total, perTx = 2000, 20
	store := events.NewStore(service)
	want := make([]uuid.UUID, 0, total)
	var leader string
	for len(want) < total {
		if len(want) == total/2 {
			require.Eventually(t, func() bool { return streamMsgs(t, js, "ORDERS") > 0 }, 30*time.Second, 10*time.Millisecond,
				"the relay publishes to the cluster")
			info, err := stream.Info(ctx)
			require.NoError(t, err)
			leader = info.Cluster.Leader
			require.NotEmpty(t, leader)
			t.Logf("shutting down stream leader %s with %d of %d events appended, %d in the stream", leader, len(want), total, info.State.Msgs)
			cluster.Shutdown(leader)
		}
		err := pg.InTx(ctx, source, func(tx pgx.Tx) error {
			changes := make([]events.Change, perTx)
			for i := range changes {
				changes[i] = events.Change{Name: "placed", Payload: wrapperspb.String("order")}
			}
			evs, err := store.Append(ctx, tx, events.Aggregate{Type: "order", ID: uuid.NewString(), TenantID: "t1"}, 0, changes...)
			for _, e := range evs {
				want = append(want, e.ID)
			}
			return err
		})
		require.NoError(t, err)
	}

	require.Eventually(t, func() bool { return outboxRows(t, source) == 0 }, time.Minute, 20*time.Millisecond,
		"the relay publishes everything through the new leader")
	require.Eventually(t, func() bool {
		info, err := stream.Info(ctx)
		return err == nil && info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != leader
	}, 30*time.Second, 20*time.Millisecond, "the stream has a new leader")
	byID, n := streamEventIDs(t, js, "ORDERS")
	for _, id := range want {
		require.Positive(t, byID[id.String()], "event %s is in the stream", id)
	}
	assert.Len(t, byID, total, "distinct events in the stream")
	// Every replica keeps the Nats-Msg-Id window, so a re-publish after the
	// leader change is normally dropped; the test only requires that
	// nothing is lost, duplicates being the consumers' to absorb.
	t.Logf("stream holds %d messages for %d events", n, total)

	require.Eventually(t, func() bool {
		var got int
		err := sink.QueryRow(ctx, "SELECT count(*) FROM processed_events WHERE consumer = $1", projector.Durable()).Scan(&got)
		require.NoError(t, err)
		return got == total
	}, time.Minute, 50*time.Millisecond, "the projector applies every event")
	dlq, err := js.Stream(ctx, "DLQ_BILLING")
	require.NoError(t, err)
	dinfo, err := dlq.Info(ctx)
	require.NoError(t, err)
	assert.Zero(t, dinfo.State.Msgs, "nothing dead-lettered")
}
