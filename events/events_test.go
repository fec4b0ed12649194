package events_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
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
)

const service = "orders"

func provision(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, _ := pgtest.Provision(t, service, pg.MigrationSource{Name: "events", FS: events.Migrations})
	return pool
}

// appendOne appends one event to a new aggregate and returns it.
func appendOne(t *testing.T, pool *pgxpool.Pool, store *events.Store, payload string) events.Event {
	t.Helper()
	var out []events.Event
	err := pg.InTx(t.Context(), pool, func(tx pgx.Tx) error {
		var err error
		out, err = store.Append(t.Context(), tx, events.Aggregate{Type: "order", ID: uuid.NewString(), TenantID: "t1"}, 0,
			events.Change{Name: "placed", Payload: wrapperspb.String(payload)})
		return err
	})
	require.NoError(t, err)
	return out[0]
}

func startRelay(t *testing.T, pool *pgxpool.Pool, js jetstream.JetStream) *events.Relay {
	t.Helper()
	relay, err := events.NewRelay(events.RelayConfig{Service: service, Pool: pool, JS: js, PollInterval: 50 * time.Millisecond,
		StandbyInterval: 100 * time.Millisecond, AckTimeout: 2 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = relay.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return relay
}

func outboxRows(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM outbox").Scan(&n))
	return n
}

func streamMsgs(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), stream)
	require.NoError(t, err)
	info, err := s.Info(t.Context())
	require.NoError(t, err)
	return info.State.Msgs
}

func TestEnvelopeRoundTrip(t *testing.T) {
	t.Parallel()
	data, err := proto.Marshal(wrapperspb.String("hello"))
	require.NoError(t, err)
	in := events.Event{
		ID: uuid.New(), Service: "identity", AggregateType: "user", AggregateID: "u1", Name: "email_changed",
		TypeVersion: 2, TenantID: "t1", Version: 7, Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
		CorrelationID: "c1", CausationID: "e0", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		MessageName: "google.protobuf.StringValue", Data: data,
	}
	h := nats.Header{}
	for k, v := range in.Headers() {
		h.Set(k, v)
	}
	assert.Equal(t, "identity.user.email_changed.v2", h.Get("ce-type"))
	assert.Equal(t, "/authms/identity", h.Get("ce-source"))
	assert.Equal(t, "1.0", h.Get("ce-specversion"))

	got, err := events.FromMsg(in.Subject(), h, data)
	require.NoError(t, err)
	assert.Equal(t, in, got)

	p, err := got.Payload()
	require.NoError(t, err)
	assert.Equal(t, "hello", p.(*wrapperspb.StringValue).GetValue())

	_, err = events.FromMsg("identity.user.created", nats.Header{"ce-id": {"not-a-uuid"}}, nil)
	require.Error(t, err)
	assert.True(t, events.IsPermanent(err), "a malformed envelope can never be handled")
}

func TestAppendOptimisticConcurrency(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	store := events.NewStore(service)
	agg := events.Aggregate{Type: "order", ID: uuid.NewString(), TenantID: "t1"}
	require.NoError(t, pg.InTx(t.Context(), pool, func(tx pgx.Tx) error {
		_, err := store.Append(t.Context(), tx, agg, 0, events.Change{Name: "placed", Payload: wrapperspb.String("v1")})
		return err
	}))

	const writers = 20
	var ok, conflicts atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := pg.InTx(t.Context(), pool, func(tx pgx.Tx) error {
				_, err := store.Append(t.Context(), tx, agg, 1, events.Change{Name: "paid", Payload: wrapperspb.String(strconv.Itoa(i))})
				return err
			})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, events.ErrConcurrency):
				conflicts.Add(1)
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	assert.Equal(t, int32(1), ok.Load())
	assert.Equal(t, int32(writers-1), conflicts.Load())

	var loaded []events.Event
	require.NoError(t, pg.InTx(t.Context(), pool, func(tx pgx.Tx) error {
		var err error
		loaded, err = store.Load(t.Context(), tx, agg.ID)
		return err
	}))
	require.Len(t, loaded, 2)
	for i, e := range loaded {
		assert.Equal(t, int64(i+1), e.Version, "versions are gap-free")
	}
	assert.Equal(t, "orders.order.paid.v1", loaded[1].Type())
	assert.Equal(t, 2, outboxRows(t, pool), "every stored event is in the outbox, no more")
}

func TestRelayPublishesInOrderOnce(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	ns := natstest.Start(t)
	js := ns.JetStream(t)
	require.NoError(t, events.EnsureStreams(t.Context(), js, service, events.StreamConfig{}))
	store := events.NewStore(service)

	const n = 300
	want := make([]uuid.UUID, n)
	for i := range n {
		want[i] = appendOne(t, pool, store, strconv.Itoa(i)).ID
	}
	startRelay(t, pool, js)
	require.Eventually(t, func() bool { return outboxRows(t, pool) == 0 }, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, uint64(n), streamMsgs(t, js, "ORDERS"))

	s, err := js.Stream(t.Context(), "ORDERS")
	require.NoError(t, err)
	for i := range n {
		msg, err := s.GetMsg(t.Context(), uint64(i+1))
		require.NoError(t, err)
		assert.Equal(t, want[i].String(), msg.Header.Get("ce-id"), "stream order is outbox order")
		assert.Equal(t, want[i].String(), msg.Header.Get(jetstream.MsgIDHeader))
	}
}

// TestRelayReadsAheadInOrder drains a backlog of many batches, some of
// them with gaps in the outbox ids (rolled back appends), so the relay
// reads ahead for some batches and not for others: the stream still holds
// every event once, in outbox order, and every event's position is
// recorded.
func TestRelayReadsAheadInOrder(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	js := natstest.Start(t).JetStream(t)
	require.NoError(t, events.EnsureStreams(t.Context(), js, service, events.StreamConfig{}))
	store := events.NewStore(service)

	const n, batch = 650, 50
	want := make([]uuid.UUID, 0, n)
	for i := range n {
		if i%170 == 10 { // an outbox id taken and rolled back
			err := pg.InTx(t.Context(), pool, func(tx pgx.Tx) error {
				_, err := store.Append(t.Context(), tx, events.Aggregate{Type: "order", ID: uuid.NewString(), TenantID: "t1"}, 0,
					events.Change{Name: "placed", Payload: wrapperspb.String("rolled back")})
				require.NoError(t, err)
				return errors.New("roll back")
			})
			require.Error(t, err)
		}
		want = append(want, appendOne(t, pool, store, strconv.Itoa(i)).ID)
	}
	relay, err := events.NewRelay(events.RelayConfig{Service: service, Pool: pool, JS: js, BatchSize: batch,
		PollInterval: 50 * time.Millisecond, AckTimeout: 2 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = relay.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { return outboxRows(t, pool) == 0 }, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, uint64(n), streamMsgs(t, js, "ORDERS"))

	s, err := js.Stream(t.Context(), "ORDERS")
	require.NoError(t, err)
	for i := range n {
		msg, err := s.GetMsg(t.Context(), uint64(i+1))
		require.NoError(t, err)
		require.Equal(t, want[i].String(), msg.Header.Get("ce-id"), "stream order is outbox order at sequence %d", i+1)
	}
	var recorded int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*) FROM event_positions AS p
		JOIN unnest($1::uuid[]) WITH ORDINALITY AS w(id, seq) ON w.id = p.event_id AND w.seq = p.stream_sequence`, want).Scan(&recorded))
	assert.Equal(t, n, recorded, "every event's position is recorded")
}

func TestRelaySurvivesNATSOutage(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	ns := natstest.Start(t)
	js := ns.JetStream(t)
	require.NoError(t, events.EnsureStreams(t.Context(), js, service, events.StreamConfig{}))
	store := events.NewStore(service)
	relay := startRelay(t, pool, js)

	appendOne(t, pool, store, "before")
	require.Eventually(t, func() bool { return outboxRows(t, pool) == 0 }, 10*time.Second, 20*time.Millisecond)

	ns.Stop()
	const during = 50
	for i := range during {
		appendOne(t, pool, store, fmt.Sprint("during-", i))
	}
	// Nothing can be published while NATS is down, and nothing is lost.
	require.Eventually(t, func() bool { return relay.Stats().Failures > 0 }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, during, outboxRows(t, pool))

	ns.Restart(t)
	require.Eventually(t, func() bool { return outboxRows(t, pool) == 0 }, 30*time.Second, 50*time.Millisecond)
	assert.Equal(t, uint64(during+1), streamMsgs(t, js, "ORDERS"), "every event published exactly once")
}

func TestOneActiveRelay(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	ns := natstest.Start(t)
	js := ns.JetStream(t)
	require.NoError(t, events.EnsureStreams(t.Context(), js, service, events.StreamConfig{}))
	a := startRelay(t, pool, js)
	b := startRelay(t, pool, js)
	require.Eventually(t, func() bool { return a.Stats().Active || b.Stats().Active }, 10*time.Second, 20*time.Millisecond)
	// Give the standby several chances to (wrongly) take the lock too.
	time.Sleep(300 * time.Millisecond)
	assert.NotEqual(t, a.Stats().Active, b.Stats().Active, "exactly one relay is active")
}

func TestEnsureStreamsOverlap(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	js := ns.JetStream(t)
	_, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "SQUATTER", Subjects: []string{"orders.>"}})
	require.NoError(t, err)
	err = events.EnsureStreams(t.Context(), js, service, events.StreamConfig{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "overlap")
	require.NoError(t, events.EnsureStreams(t.Context(), js, "billing", events.StreamConfig{}))
	require.NoError(t, events.EnsureStreams(t.Context(), js, "billing", events.StreamConfig{}), "idempotent")
}

// publish puts a well-formed event on the ORDERS stream without a database.
func publish(t *testing.T, js jetstream.JetStream, payload string) events.Event {
	t.Helper()
	data, err := proto.Marshal(wrapperspb.String(payload))
	require.NoError(t, err)
	ev := events.Event{ID: uuid.New(), Service: service, AggregateType: "order", AggregateID: uuid.NewString(), Name: "placed",
		TenantID: "t1", Version: 1, Time: time.Now().UTC(), MessageName: "google.protobuf.StringValue", Data: data}
	msg := nats.NewMsg(ev.Subject())
	for k, v := range ev.Headers() {
		msg.Header.Set(k, v)
	}
	msg.Data = data
	_, err = js.PublishMsg(t.Context(), msg, jetstream.WithMsgID(ev.ID.String()))
	require.NoError(t, err)
	return ev
}

func runConsumer(t *testing.T, js jetstream.JetStream, h events.Handler) *events.Consumer {
	t.Helper()
	c, err := events.NewConsumer(js, events.ConsumerConfig{
		Service: "billing", Durable: "billing_orders", Stream: "ORDERS", Handler: h,
		MaxDeliver: 3, Backoff: []time.Duration{10 * time.Millisecond}, AckWait: 2 * time.Second,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

func TestConsumerDeadLetters(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	js := ns.JetStream(t)
	require.NoError(t, events.EnsureStreams(t.Context(), js, service, events.StreamConfig{}))
	require.NoError(t, events.EnsureStreams(t.Context(), js, "billing", events.StreamConfig{}))

	var attempts sync.Map // payload -> *atomic.Int32
	c := runConsumer(t, js, func(ctx context.Context, ev events.Event) error {
		var s wrapperspb.StringValue
		if err := ev.Unmarshal(&s); err != nil {
			return err
		}
		n, _ := attempts.LoadOrStore(s.GetValue(), new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		switch s.GetValue() {
		case "transient":
			return errors.New("the ledger is down")
		case "poison":
			return events.Permanent(errors.New("order total is negative"))
		}
		return nil
	})
	good := publish(t, js, "good")
	transient := publish(t, js, "transient")
	poison := publish(t, js, "poison")

	dlq, err := js.Stream(t.Context(), "DLQ_BILLING")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return c.Stats().DeadLettered == 2 }, 10*time.Second, 20*time.Millisecond)

	byEvent := map[string]*jetstream.RawStreamMsg{}
	for seq := uint64(1); seq <= 2; seq++ {
		m, err := dlq.GetMsg(t.Context(), seq)
		require.NoError(t, err)
		byEvent[m.Header.Get("ce-id")] = m
	}
	require.NotContains(t, byEvent, good.ID.String())

	tm := byEvent[transient.ID.String()]
	require.NotNil(t, tm)
	assert.Equal(t, "dlq.billing.orders.order.placed", tm.Subject)
	assert.Equal(t, "3", tm.Header.Get(events.HeaderDLQAttempts), "dead-lettered after MaxDeliver attempts")
	assert.Equal(t, "the ledger is down", tm.Header.Get(events.HeaderDLQError))
	assert.Equal(t, "orders.order.placed", tm.Header.Get(events.HeaderDLQSubject))
	assert.Equal(t, "ORDERS", tm.Header.Get(events.HeaderDLQStream))
	assert.Equal(t, "2", tm.Header.Get(events.HeaderDLQSequence))
	assert.Equal(t, "billing_orders", tm.Header.Get(events.HeaderDLQConsumer))
	assert.Equal(t, "false", tm.Header.Get(events.HeaderDLQPermanent))

	pm := byEvent[poison.ID.String()]
	require.NotNil(t, pm)
	assert.Equal(t, "1", pm.Header.Get(events.HeaderDLQAttempts), "a permanent error is not retried")
	assert.Equal(t, "true", pm.Header.Get(events.HeaderDLQPermanent))

	n, _ := attempts.Load("good")
	assert.Equal(t, int32(1), n.(*atomic.Int32).Load())

	// The source stream is untouched and the consumer has nothing pending.
	assert.Equal(t, uint64(3), streamMsgs(t, js, "ORDERS"))
	cons, err := js.Consumer(t.Context(), "ORDERS", "billing_orders")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	}, 5*time.Second, 20*time.Millisecond)
}
