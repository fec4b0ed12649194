package projections_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
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

// appliedLog is an Apply that records the events it was called with, in
// order, before applying them as recordEffect does.
type appliedLog struct {
	mu  sync.Mutex
	ids []uuid.UUID
}

func (l *appliedLog) apply(ctx context.Context, tx pgx.Tx, ev events.Event) error {
	l.mu.Lock()
	l.ids = append(l.ids, ev.ID)
	l.mu.Unlock()
	return recordEffect(ctx, tx, ev)
}

func (l *appliedLog) calls() []uuid.UUID {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ids)
}

// withSequence returns ev as delivered at stream sequence seq.
func withSequence(ev events.Event, seq uint64) events.Event {
	ev.Stream, ev.Sequence = "ORDERS", seq
	return ev
}

func streamSequence(t *testing.T, id uuid.UUID) string {
	t.Helper()
	return "SELECT stream_sequence FROM processed_events WHERE consumer = '" + durable + "' AND event_id = '" + id.String() + "'"
}

func TestBatchHandlerAppliesInOrderOnce(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	var log appliedLog
	p := projector(log.apply)
	batch := projections.BatchHandler(p, pool)
	order := uuid.NewString()
	first := withSequence(orderPlaced(t, order, 1, 100), 1)
	second := withSequence(orderPlaced(t, order, 2, 200), 2)
	other := withSequence(orderPlaced(t, uuid.NewString(), 1, 5), 3)
	other.Name = "cancelled"        // a subject the projector does not handle
	again := withSequence(first, 4) // the first event, published a second time
	third := withSequence(orderPlaced(t, uuid.NewString(), 1, 7), 5)

	require.NoError(t, batch(t.Context(), []events.Event{first, second, other, again, third}))
	assert.Equal(t, []uuid.UUID{first.ID, second.ID, third.ID}, log.calls(), "stream order, each once, other subjects skipped")
	total, version := orderTotal(t, pool, order)
	assert.Equal(t, int64(200), total)
	assert.Equal(t, int64(2), version)
	for _, ev := range []events.Event{first, second, third} {
		assert.Equal(t, 1, effects(t, pool, ev.ID))
		assert.Equal(t, 1, processed(t, pool, ev.ID))
	}
	assert.Equal(t, 0, processed(t, pool, other.ID))
	assert.Equal(t, 1, count(t, pool, streamSequence(t, first.ID)), "recorded at its first delivery")
	assert.Equal(t, 5, count(t, pool, streamSequence(t, third.ID)))

	// A redelivered batch is skipped through processed_events: no Apply runs.
	require.NoError(t, batch(t.Context(), []events.Event{first, second, other, again, third}))
	assert.Len(t, log.calls(), 3)

	// A batch that overlaps applied events applies only the new ones; so does
	// the one-event handler.
	fourth := withSequence(orderPlaced(t, order, 3, 300), 6)
	require.NoError(t, batch(t.Context(), []events.Event{second, third, fourth}))
	require.NoError(t, projections.Handler(p, pool)(t.Context(), first))
	assert.Equal(t, []uuid.UUID{first.ID, second.ID, third.ID, fourth.ID}, log.calls())
	total, version = orderTotal(t, pool, order)
	assert.Equal(t, int64(300), total)
	assert.Equal(t, int64(3), version)
	assert.Equal(t, 4, count(t, pool, "SELECT count(*) FROM effects"))

	// Concurrent deliveries of the same batch (two instances) apply it once.
	fifth := withSequence(orderPlaced(t, uuid.NewString(), 1, 9), 7)
	sixth := withSequence(orderPlaced(t, uuid.NewString(), 1, 9), 8)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = batch(t.Context(), []events.Event{fifth, sixth}) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, 1, effects(t, pool, fifth.ID))
	assert.Equal(t, 1, effects(t, pool, sixth.ID))
}

func TestBatchHandlerRollsBackTheWholeBatch(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	failing := uuid.NewString()
	permanent := false
	p := projector(func(ctx context.Context, tx pgx.Tx, ev events.Event) error {
		if err := recordEffect(ctx, tx, ev); err != nil {
			return err
		}
		if ev.AggregateID == failing {
			if permanent {
				return events.Permanent(errors.New("order total is negative"))
			}
			return errors.New("the warehouse is down")
		}
		return nil
	})
	batch := projections.BatchHandler(p, pool)
	good := withSequence(orderPlaced(t, uuid.NewString(), 1, 1), 1)
	bad := withSequence(orderPlaced(t, failing, 1, 2), 2)
	after := withSequence(orderPlaced(t, uuid.NewString(), 1, 3), 3)

	err := batch(t.Context(), []events.Event{good, bad, after})
	require.ErrorContains(t, err, "the warehouse is down")
	assert.ErrorContains(t, err, bad.ID.String(), "the error names the failing event")
	assert.False(t, events.IsPermanent(err))
	assert.Equal(t, 0, count(t, pool, "SELECT count(*) FROM effects"), "nothing of the batch is applied")
	assert.Equal(t, 0, count(t, pool, "SELECT count(*) FROM processed_events"), "nothing is marked processed")
	assert.Equal(t, 0, count(t, pool, "SELECT count(*) FROM projector_failures"),
		"a failed batch records no failure: the events are retried one at a time, and that records it")

	permanent = true
	err = batch(t.Context(), []events.Event{good, bad, after})
	assert.True(t, events.IsPermanent(err), "a permanent error stays permanent: %v", err)
}

func TestBatchHandlerClearsTheFailureRecord(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	var broken atomic.Bool
	broken.Store(true)
	stuck := uuid.NewString()
	p := projector(func(ctx context.Context, tx pgx.Tx, ev events.Event) error {
		if ev.AggregateID == stuck && broken.Load() {
			return errors.New("the exchange rate table is empty")
		}
		return recordEffect(ctx, tx, ev)
	})
	batch := projections.BatchHandler(p, pool)
	state := func() projections.State {
		st, err := projections.ReadState(t.Context(), pool, p)
		require.NoError(t, err)
		return st
	}

	// The event at sequence 5 fails on its own: its failure is recorded.
	failing := withSequence(orderPlaced(t, stuck, 1, 1), 5)
	require.Error(t, projections.Handler(p, pool)(t.Context(), failing))
	require.NotNil(t, state().Failure)
	assert.Equal(t, uint64(5), state().Failure.Sequence)

	// Events before it do not clear it...
	require.NoError(t, batch(t.Context(), []events.Event{
		withSequence(orderPlaced(t, uuid.NewString(), 1, 1), 3), withSequence(orderPlaced(t, uuid.NewString(), 1, 1), 4)}))
	require.NotNil(t, state().Failure)
	assert.Equal(t, uint64(4), state().Checkpoint)

	// ...and neither does a batch of events applied before.
	broken.Store(false)
	later := withSequence(orderPlaced(t, uuid.NewString(), 1, 1), 6)
	require.NoError(t, projections.Handler(p, pool)(t.Context(), later))
	_, err := pool.Exec(t.Context(), `INSERT INTO projector_failures (consumer, stream_sequence, event_id, subject, failures, error, first_failed_at, last_failed_at)
VALUES ($1, 5, $2, $3, 1, 'again', now(), now())`, durable, failing.ID, placed)
	require.NoError(t, err)
	require.NoError(t, batch(t.Context(), []events.Event{later, later}))
	require.NotNil(t, state().Failure, "a redelivery applies nothing and clears nothing")

	// A batch that applies the failing event clears it.
	require.NoError(t, batch(t.Context(), []events.Event{failing, withSequence(orderPlaced(t, uuid.NewString(), 1, 1), 7)}))
	st := state()
	assert.Nil(t, st.Failure)
	assert.Equal(t, uint64(7), st.Checkpoint)
	assert.Equal(t, 1, effects(t, pool, failing.ID))
}

// runBatched runs p's consumer as projections.NewConsumer builds it, with
// its BatchHandler wrapped by wrap, until the test ends.
func runBatched(t *testing.T, p projections.Projector, cfg projections.Config, wrap func(events.BatchHandler) events.BatchHandler) *events.Consumer {
	t.Helper()
	pc, err := projections.NewConsumer(p, cfg)
	require.NoError(t, err)
	cc := pc.Config()
	require.NotNil(t, cc.BatchHandler, "projections.NewConsumer wires the batch handler")
	cc.BatchHandler = wrap(cc.BatchHandler)
	c, err := events.NewConsumer(cfg.JS, cc)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

// A batch with a poison event (permanent) and a failing one (transient)
// dead-letters only those two, each after its own attempts, and applies the
// rest exactly once.
func TestConsumerBatchDeadLettersOnlyTheFailingEvents(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	js := natsWithStreams(t)
	const n = 20
	evs := make([]events.Event, n)
	for i := range evs {
		evs[i] = orderPlaced(t, fmt.Sprint("o", i), 1, int64(i))
	}
	poison, flaky := 7, 13
	evs[poison].Data = []byte{0xff, 0xff, 0xff} // cannot be decoded: permanent
	flakyOrder := evs[flaky].AggregateID
	// Published before the consumer starts: its first fetch delivers them
	// together.
	for _, ev := range evs {
		publish(t, js, ev, ev.ID.String())
	}

	var mu sync.Mutex
	var failedBatches []int // sizes of the batches that failed
	c := runBatched(t, projector(func(ctx context.Context, tx pgx.Tx, ev events.Event) error {
		if ev.AggregateID == flakyOrder {
			return errors.New("the warehouse is down")
		}
		return recordEffect(ctx, tx, ev)
	}), projections.Config{Pool: pool, JS: js, Consumer: events.ConsumerConfig{
		MaxDeliver: 3, Backoff: []time.Duration{10 * time.Millisecond}, AckWait: 2 * time.Second,
	}}, func(next events.BatchHandler) events.BatchHandler {
		return func(ctx context.Context, evs []events.Event) error {
			err := next(ctx, evs)
			if err != nil {
				mu.Lock()
				failedBatches = append(failedBatches, len(evs))
				mu.Unlock()
			}
			return err
		}
	})

	require.Eventually(t, func() bool { s := c.Stats(); return s.DeadLettered == 2 && s.Handled == n-2 },
		20*time.Second, 20*time.Millisecond)
	mu.Lock()
	assert.Greater(t, slices.Max(append(failedBatches, 0)), 1, "a failing event failed a batch of several")
	mu.Unlock()

	dlq, err := js.Stream(t.Context(), events.DLQStreamName(service))
	require.NoError(t, err)
	attempts := map[string]string{}
	for seq := uint64(1); seq <= 2; seq++ {
		dl, err := dlq.GetMsg(t.Context(), seq)
		require.NoError(t, err)
		attempts[dl.Header.Get(events.HeaderID)] = dl.Header.Get(events.HeaderDLQAttempts)
	}
	assert.Equal(t, map[string]string{evs[poison].ID.String(): "1", evs[flaky].ID.String(): "3"}, attempts,
		"only the failing events are dead-lettered, each with its own attempts")
	assert.Equal(t, uint64(1+3), c.Stats().Failures)

	for i, ev := range evs {
		want := 1
		if i == poison || i == flaky {
			want = 0
		}
		assert.Equal(t, want, effects(t, pool, ev.ID), "event %d", i)
		assert.Equal(t, want, processed(t, pool, ev.ID), "event %d", i)
	}
	assert.Equal(t, uint64(n), c.Stats().LastSequence)
}

// An outage of the projector's database in the middle of a batch is waited
// out: no delivery attempt is spent (with MaxDeliver 1 any would
// dead-letter), the batch is applied once the database is back, each event
// once.
func TestConsumerBatchOutageSpendsNoDeliveryAttempts(t *testing.T) {
	t.Parallel()
	cluster := pgtest.New(t)
	pool, _ := cluster.Provision(t, service,
		pg.MigrationSource{Name: "events", FS: events.Migrations},
		pg.MigrationSource{Name: service, FS: schema})
	js := natsWithStreams(t)
	const n = 20
	evs := make([]events.Event, n)
	for i := range evs {
		evs[i] = orderPlaced(t, fmt.Sprint("o", i), 1, int64(i))
		publish(t, js, evs[i], evs[i].ID.String())
	}

	// The database goes away while the first batch of several events has
	// its transaction open, at its second event.
	var inBatch atomic.Int32 // size of the batch being applied, 0 outside one
	var outageBatch int      // size of the batch the outage hit
	var applies atomic.Int32
	reached, proceed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	c := runBatched(t, projector(func(ctx context.Context, tx pgx.Tx, ev events.Event) error {
		if size := inBatch.Load(); size > 1 && applies.Add(1) == 2 {
			once.Do(func() { outageBatch = int(size); close(reached); <-proceed })
		}
		return recordEffect(ctx, tx, ev)
	}), projections.Config{Pool: pool, JS: js, Consumer: events.ConsumerConfig{
		MaxDeliver: 1, Backoff: []time.Duration{10 * time.Millisecond}, AckWait: time.Second,
	}}, func(next events.BatchHandler) events.BatchHandler {
		return func(ctx context.Context, evs []events.Event) error {
			inBatch.Store(int32(len(evs)))
			defer inBatch.Store(0)
			return next(ctx, evs)
		}
	})

	select {
	case <-reached:
	case <-time.After(20 * time.Second):
		t.Fatal("the projector never applied a batch of several events")
	}
	prov := cluster.Provisioner()
	require.NoError(t, prov.BlockConnections(t.Context(), service))
	close(proceed)
	require.Eventually(t, func() bool { return c.Stats().Stalled }, 10*time.Second, 10*time.Millisecond,
		"the consumer notices the outage")
	time.Sleep(1500 * time.Millisecond) // longer than AckWait: the held messages are kept alive
	require.NoError(t, prov.AllowConnections(t.Context(), service))

	require.Eventually(t, func() bool { return c.Stats().Handled == n }, 30*time.Second, 20*time.Millisecond)
	st := c.Stats()
	assert.Zero(t, st.DeadLettered)
	assert.Zero(t, st.Failures, "the outage is no event's failure")
	assert.NotZero(t, st.Outages)
	assert.Greater(t, outageBatch, 1)
	for i, ev := range evs {
		assert.Equal(t, 1, effects(t, pool, ev.ID), "event %d", i)
	}
	assert.Equal(t, n, count(t, pool, "SELECT count(*) FROM processed_events"))
}

// A rebuild recorded that it covered the stream through a sequence: the
// projector skips the events up to it, applies the ones after it, counts
// it in its checkpoint, and a position up to it counts as applied.
func TestRebuiltThroughSequence(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	_, err := pool.Exec(t.Context(), "INSERT INTO projector_rebuilds (consumer, through_sequence) VALUES ($1, 10)", durable)
	require.NoError(t, err)
	var log appliedLog
	p := projector(log.apply)

	st, err := projections.ReadState(t.Context(), pool, p)
	require.NoError(t, err)
	assert.Equal(t, uint64(10), st.Checkpoint, "a rebuild's sequence is a checkpoint")

	covered := withSequence(orderPlaced(t, uuid.NewString(), 1, 1), 9)
	last := withSequence(orderPlaced(t, uuid.NewString(), 1, 2), 10)
	after := withSequence(orderPlaced(t, uuid.NewString(), 1, 3), 11)
	unknown := orderPlaced(t, uuid.NewString(), 1, 4) // no stream sequence: only its id can tell
	require.NoError(t, projections.BatchHandler(p, pool)(t.Context(), []events.Event{covered, last, after}))
	require.NoError(t, projections.Handler(p, pool)(t.Context(), unknown))
	assert.Equal(t, []uuid.UUID{after.ID, unknown.ID}, log.calls(), "events up to the rebuilt sequence are skipped")
	assert.Equal(t, 0, processed(t, pool, covered.ID))
	assert.Equal(t, 1, processed(t, pool, after.ID))

	st, err = projections.ReadState(t.Context(), pool, p)
	require.NoError(t, err)
	assert.Equal(t, uint64(11), st.Checkpoint)

	js := natsWithStreams(t) // ORDERS is empty: only the database can tell
	cfg := projections.AwaitConfig{Service: service, Pool: pool, JS: js, Projectors: []projections.Projector{p}, Timeout: 300 * time.Millisecond}
	require.NoError(t, projections.AwaitPosition(t.Context(), cfg, events.Position{Stream: "ORDERS", Sequence: 7}))
	require.NoError(t, projections.AwaitPosition(t.Context(), cfg, events.Position{Stream: "ORDERS", Sequence: 11}))
	var unpublished *projections.UnpublishedPositionError
	require.ErrorAs(t, projections.AwaitPosition(t.Context(), cfg, events.Position{Stream: "ORDERS", Sequence: 12}), &unpublished,
		"past the rebuild, only the stream could tell, and it does not hold 12")
}
