package projections_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/natstest"
	"github.com/authms/authms/events/pg"
	"github.com/authms/authms/events/pg/pgtest"
	"github.com/authms/authms/projections"
)

// The tests project the events of a made-up "orders" service into a
// "reports" service's database.
const (
	source  = "orders"
	service = "reports"
	placed  = "orders.order.placed"
	durable = "reports_order_totals"
)

// schema is the reports service's own tables: a version-guarded projection
// and an append-only log of every effect a handler had, so duplicates show.
var schema = fstest.MapFS{"0001_init.sql": {Data: []byte(`
CREATE TABLE order_totals (
    order_id  text   PRIMARY KEY,
    tenant_id text   NOT NULL,
    total     bigint NOT NULL,
    version   bigint NOT NULL
);
CREATE TABLE effects (event_id uuid NOT NULL);
`)}}

func provision(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, _ := pgtest.Provision(t, service,
		pg.MigrationSource{Name: "events", FS: events.Migrations},
		pg.MigrationSource{Name: service, FS: schema})
	return pool
}

// orderPlaced builds an orders.order.placed event as a relay would publish
// it: aggregate version and total as given.
func orderPlaced(t *testing.T, orderID string, version, total int64) events.Event {
	t.Helper()
	payload := wrapperspb.Int64(total)
	data, err := proto.Marshal(payload)
	require.NoError(t, err)
	return events.Event{
		ID: uuid.Must(uuid.NewV7()), Service: source, AggregateType: "order", AggregateID: orderID, Name: "placed",
		TenantID: "t1", Version: version, Time: time.Now().UTC(),
		MessageName: payload.ProtoReflect().Descriptor().FullName(), Data: data,
	}
}

var totals = projections.Table{Name: "order_totals", Key: []string{"order_id"}, Columns: []string{"tenant_id", "total"}}

// recordEffect is an Apply that logs the event and upserts the order total.
func recordEffect(ctx context.Context, tx pgx.Tx, ev events.Event) error {
	var total wrapperspb.Int64Value
	if err := ev.Unmarshal(&total); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO effects (event_id) VALUES ($1)", ev.ID); err != nil {
		return err
	}
	_, err := totals.Upsert(ctx, tx, ev.AggregateID, ev.TenantID, total.GetValue(), ev.Version)
	return err
}

func projector(apply projections.Apply) projections.Projector {
	return projections.Projector{Service: service, Name: "order_totals", Source: source,
		Handlers: map[string]projections.Apply{placed: apply}}
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), sql, args...).Scan(&n))
	return n
}

func effects(t *testing.T, pool *pgxpool.Pool, id uuid.UUID) int {
	t.Helper()
	return count(t, pool, "SELECT count(*) FROM effects WHERE event_id = $1", id)
}

func processed(t *testing.T, pool *pgxpool.Pool, id uuid.UUID) int {
	t.Helper()
	return count(t, pool, "SELECT count(*) FROM processed_events WHERE consumer = $1 AND event_id = $2", durable, id)
}

func orderTotal(t *testing.T, pool *pgxpool.Pool, orderID string) (total, version int64) {
	t.Helper()
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT total, version FROM order_totals WHERE order_id = $1", orderID).
		Scan(&total, &version))
	return total, version
}

func TestDurable(t *testing.T) {
	t.Parallel()
	assert.Equal(t, durable, projector(recordEffect).Durable())
}

func TestHandlerAppliesOnce(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	h := projections.Handler(projector(recordEffect), pool)
	ev := orderPlaced(t, uuid.NewString(), 1, 100)

	// Given the event was handled, when it is delivered again, sequentially
	// and by several instances at once...
	require.NoError(t, h(t.Context(), ev))
	require.NoError(t, h(t.Context(), ev))
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = h(t.Context(), ev) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}

	// ...then it had one effect, recorded once as processed.
	assert.Equal(t, 1, effects(t, pool, ev.ID))
	assert.Equal(t, 1, processed(t, pool, ev.ID))
	total, version := orderTotal(t, pool, ev.AggregateID)
	assert.Equal(t, int64(100), total)
	assert.Equal(t, int64(1), version)
}

func TestHandlerRollsBackAFailedApply(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	var calls atomic.Int32
	h := projections.Handler(projector(func(ctx context.Context, tx pgx.Tx, ev events.Event) error {
		if err := recordEffect(ctx, tx, ev); err != nil {
			return err
		}
		if calls.Add(1) == 1 {
			return errors.New("the warehouse is down")
		}
		return nil
	}), pool)
	ev := orderPlaced(t, uuid.NewString(), 1, 100)

	err := h(t.Context(), ev)
	require.ErrorContains(t, err, "the warehouse is down")
	assert.Equal(t, 0, effects(t, pool, ev.ID), "the failed attempt's writes are rolled back")
	assert.Equal(t, 0, processed(t, pool, ev.ID), "a failed event is not marked processed, so it is retried")

	require.NoError(t, h(t.Context(), ev))
	require.NoError(t, h(t.Context(), ev))
	assert.Equal(t, 1, effects(t, pool, ev.ID))
	assert.Equal(t, 1, processed(t, pool, ev.ID))
	assert.Equal(t, int32(2), calls.Load(), "the retry applied it; the redelivery after it was skipped")
}

func TestHandlerSkipsOtherSubjects(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	h := projections.Handler(projector(recordEffect), pool)
	ev := orderPlaced(t, uuid.NewString(), 1, 100)
	ev.Name = "cancelled"

	require.NoError(t, h(t.Context(), ev))
	assert.Equal(t, 0, effects(t, pool, ev.ID))
	assert.Equal(t, 0, processed(t, pool, ev.ID))
}

func TestTableUpsertNeverMovesBackwards(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	type write struct {
		version, total int64
		written        bool
	}
	tests := []struct {
		name        string
		writes      []write
		wantTotal   int64
		wantVersion int64
	}{
		{name: "in order", writes: []write{{1, 10, true}, {2, 20, true}}, wantTotal: 20, wantVersion: 2},
		{name: "newer then older", writes: []write{{2, 20, true}, {1, 10, false}}, wantTotal: 20, wantVersion: 2},
		{name: "same version twice", writes: []write{{1, 10, true}, {1, 99, false}}, wantTotal: 10, wantVersion: 1},
		{name: "gap", writes: []write{{1, 10, true}, {5, 50, true}, {3, 30, false}}, wantTotal: 50, wantVersion: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			orderID := uuid.NewString()
			for _, w := range tt.writes {
				var written bool
				err := pg.InTx(t.Context(), pool, func(tx pgx.Tx) error {
					var err error
					written, err = totals.Upsert(t.Context(), tx, orderID, "t1", w.total, w.version)
					return err
				})
				require.NoError(t, err)
				assert.Equal(t, w.written, written, "version %d written", w.version)
			}
			total, version := orderTotal(t, pool, orderID)
			assert.Equal(t, tt.wantTotal, total)
			assert.Equal(t, tt.wantVersion, version)
		})
	}
}

func TestTableUpsertChecksValueCount(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	err := pg.InTx(t.Context(), pool, func(tx pgx.Tx) error {
		_, err := totals.Upsert(t.Context(), tx, uuid.NewString(), "t1", int64(1))
		return err
	})
	require.ErrorContains(t, err, "3 values for 4 columns")
}

func TestTableUpsertCustomVersionColumn(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Provision(t, service,
		pg.MigrationSource{Name: "events", FS: events.Migrations},
		pg.MigrationSource{Name: service, FS: fstest.MapFS{"0001_init.sql": {Data: []byte(
			`CREATE TABLE seen (tenant_id text, user_id text, name text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (tenant_id, user_id));`)}}})
	seen := projections.Table{Name: "seen", Key: []string{"tenant_id", "user_id"}, Columns: []string{"name"}, VersionColumn: "seq"}
	for _, w := range []struct {
		name string
		seq  int64
	}{{"b", 2}, {"a", 1}} {
		require.NoError(t, pg.InTx(t.Context(), pool, func(tx pgx.Tx) error {
			_, err := seen.Upsert(t.Context(), tx, "t1", "u1", w.name, w.seq)
			return err
		}))
	}
	var name string
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT name FROM seen WHERE tenant_id = 't1' AND user_id = 'u1'").Scan(&name))
	assert.Equal(t, "b", name)
}

// publish puts ev on the source stream as a relay would, with msgID as
// Nats-Msg-Id (the event id, unless a test simulates a second publication).
func publish(t *testing.T, js jetstream.JetStream, ev events.Event, msgID string) {
	t.Helper()
	msg := nats.NewMsg(ev.Subject())
	for k, v := range ev.Headers() {
		msg.Header.Set(k, v)
	}
	msg.Data = ev.Data
	_, err := js.PublishMsg(t.Context(), msg, jetstream.WithMsgID(msgID))
	require.NoError(t, err)
}

// run runs p's consumer until the test ends.
func run(t *testing.T, p projections.Projector, pool *pgxpool.Pool, js jetstream.JetStream) *events.Consumer {
	t.Helper()
	c, err := projections.NewConsumer(p, projections.Config{Pool: pool, JS: js, Consumer: events.ConsumerConfig{
		MaxDeliver: 3, Backoff: []time.Duration{10 * time.Millisecond}, AckWait: 2 * time.Second,
	}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

func natsWithStreams(t *testing.T) jetstream.JetStream {
	t.Helper()
	js := natstest.Start(t).JetStream(t)
	require.NoError(t, events.EnsureStreams(t.Context(), js, source, events.StreamConfig{}))
	require.NoError(t, events.EnsureStreams(t.Context(), js, service, events.StreamConfig{}))
	return js
}

func TestConsumerAppliesRepublishedEventOnce(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	js := natsWithStreams(t)
	c := run(t, projector(recordEffect), pool, js)

	// The same event published twice under different message ids (as after a
	// republish outside JetStream's de-duplication window) reaches the
	// projector twice and has one effect.
	ev := orderPlaced(t, uuid.NewString(), 1, 100)
	publish(t, js, ev, ev.ID.String())
	publish(t, js, ev, "republished-"+ev.ID.String())
	require.Eventually(t, func() bool { return c.Stats().Handled == 2 }, 10*time.Second, 20*time.Millisecond)

	assert.Equal(t, 1, effects(t, pool, ev.ID))
	assert.Equal(t, 1, processed(t, pool, ev.ID))
}

func TestConsumerDeadLettersAfterMaxDeliver(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	js := natsWithStreams(t)
	var calls atomic.Int32
	c := run(t, projector(func(ctx context.Context, tx pgx.Tx, ev events.Event) error {
		calls.Add(1)
		if err := recordEffect(ctx, tx, ev); err != nil {
			return err
		}
		return errors.New("the warehouse is down")
	}), pool, js)

	ev := orderPlaced(t, uuid.NewString(), 1, 100)
	publish(t, js, ev, ev.ID.String())

	dlq, err := js.Stream(t.Context(), events.DLQStreamName(service))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := dlq.Info(t.Context())
		return err == nil && info.State.Msgs == 1
	}, 10*time.Second, 20*time.Millisecond)

	dl, err := dlq.GetMsg(t.Context(), 1)
	require.NoError(t, err)
	assert.Equal(t, "dlq.reports.orders.order.placed", dl.Subject)
	assert.Equal(t, ev.ID.String(), dl.Header.Get(events.HeaderID), "the envelope travels with the dead letter")
	assert.Equal(t, ev.Data, dl.Data)
	assert.Contains(t, dl.Header.Get(events.HeaderDLQError), "the warehouse is down")
	assert.Equal(t, "3", dl.Header.Get(events.HeaderDLQAttempts))
	assert.Equal(t, placed, dl.Header.Get(events.HeaderDLQSubject))
	assert.Equal(t, "1", dl.Header.Get(events.HeaderDLQSequence))
	assert.Equal(t, durable, dl.Header.Get(events.HeaderDLQConsumer))
	assert.Equal(t, "ORDERS", dl.Header.Get(events.HeaderDLQStream))
	assert.Equal(t, "false", dl.Header.Get(events.HeaderDLQPermanent))

	// The original is terminated: nothing pending or awaiting an ack, and no
	// further attempt; the source stream itself is untouched.
	cons, err := js.Consumer(t.Context(), events.StreamName(source), durable)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0 && info.NumRedelivered == 0
	}, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, uint64(1), c.Stats().DeadLettered)
	assert.Equal(t, int32(3), calls.Load())
	src, err := js.Stream(t.Context(), events.StreamName(source))
	require.NoError(t, err)
	info, err := src.Info(t.Context())
	require.NoError(t, err)
	assert.Equal(t, uint64(1), info.State.Msgs)

	// Every failed attempt rolled back: no effect, not marked processed.
	assert.Equal(t, 0, effects(t, pool, ev.ID))
	assert.Equal(t, 0, processed(t, pool, ev.ID))
}

func TestConsumerDeadLettersPoisonAtOnce(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	js := natsWithStreams(t)
	c := run(t, projector(recordEffect), pool, js)

	// A payload that is not the message the envelope names cannot be decoded:
	// a permanent error, dead-lettered on the first attempt.
	ev := orderPlaced(t, uuid.NewString(), 1, 100)
	ev.Data = []byte{0xff, 0xff, 0xff}
	publish(t, js, ev, ev.ID.String())
	good := orderPlaced(t, uuid.NewString(), 1, 7)
	publish(t, js, good, good.ID.String())

	require.Eventually(t, func() bool { s := c.Stats(); return s.DeadLettered == 1 && s.Handled == 1 },
		10*time.Second, 20*time.Millisecond)
	dlq, err := js.Stream(t.Context(), events.DLQStreamName(service))
	require.NoError(t, err)
	dl, err := dlq.GetMsg(t.Context(), 1)
	require.NoError(t, err)
	assert.Equal(t, "1", dl.Header.Get(events.HeaderDLQAttempts))
	assert.Equal(t, "true", dl.Header.Get(events.HeaderDLQPermanent))
	assert.Equal(t, 1, effects(t, pool, good.ID), "a poison message does not block the ones behind it")
}
