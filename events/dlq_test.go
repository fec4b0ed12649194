package events_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/eventsdb"
	"github.com/authms/authms/events/natstest"
	"github.com/authms/authms/events/pg"
	"github.com/authms/authms/events/pg/pgtest"
)

// The dead-letter tests run a projector of the "shop" service over the
// ORDERS stream; its dead letters land in DLQ_SHOP.
const (
	shop        = "shop"
	shopDurable = "shop_order_log"
)

var shopSchema = fstest.MapFS{"0001_init.sql": {Data: []byte(`
CREATE TABLE order_log (event_id uuid NOT NULL, payload text NOT NULL);
`)}}

// orderLog is a projector handler as projections.Handler builds them: its
// write and the processed_events mark commit together, so re-applying an
// event is skipped. It fails permanently for the payload "poison" while
// broken holds, like a bug fixed by a later deploy.
type orderLog struct {
	pool   *pgxpool.Pool
	broken atomic.Bool
}

func (o *orderLog) handle(ctx context.Context, ev events.Event) error {
	var s wrapperspb.StringValue
	if err := ev.Unmarshal(&s); err != nil {
		return err
	}
	if s.GetValue() == "poison" && o.broken.Load() {
		return events.Permanent(fmt.Errorf("order %s: total is negative", ev.AggregateID))
	}
	return pgx.BeginFunc(ctx, o.pool, func(tx pgx.Tx) error {
		n, err := eventsdb.New(tx).MarkProcessed(ctx, eventsdb.MarkProcessedParams{Consumer: shopDurable, EventID: ev.ID})
		if err != nil || n == 0 {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO order_log (event_id, payload) VALUES ($1, $2)", ev.ID, s.GetValue())
		return err
	})
}

func (o *orderLog) applied(t *testing.T, payload string) int {
	t.Helper()
	var n int
	require.NoError(t, o.pool.QueryRow(t.Context(), "SELECT count(*) FROM order_log WHERE payload = $1", payload).Scan(&n))
	return n
}

func natstestJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	return natstest.Start(t).JetStream(t)
}

// dlqEnv starts NATS with the ORDERS and DLQ_SHOP streams, the shop
// database, and the order_log consumer with its handler broken.
func dlqEnv(t *testing.T) (jetstream.JetStream, *orderLog, *events.Consumer) {
	t.Helper()
	pool, _ := pgtest.Provision(t, shop,
		pg.MigrationSource{Name: "events", FS: events.Migrations},
		pg.MigrationSource{Name: shop, FS: shopSchema})
	js := natstestJS(t)
	require.NoError(t, events.EnsureStreams(t.Context(), js, service, events.StreamConfig{}))
	require.NoError(t, events.EnsureStreams(t.Context(), js, shop, events.StreamConfig{}))
	log := &orderLog{pool: pool}
	log.broken.Store(true)
	c, err := events.NewConsumer(js, events.ConsumerConfig{
		Service: shop, Durable: shopDurable, Stream: events.StreamName(service), Handler: log.handle,
		MaxDeliver: 3, Backoff: []time.Duration{10 * time.Millisecond}, AckWait: 2 * time.Second,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return js, log, c
}

func TestDeadLetterListRedrivePurge(t *testing.T) {
	t.Parallel()
	js, log, c := dlqEnv(t)
	ctx := t.Context()

	before := time.Now().UTC()
	publish(t, js, "good")
	poison := publish(t, js, "poison")
	require.Eventually(t, func() bool { s := c.Stats(); return s.DeadLettered == 1 && s.Handled == 1 },
		10*time.Second, 20*time.Millisecond)

	// ls: the dead letter, with where it came from and why.
	list, err := events.ListDeadLetters(ctx, js, shop, events.DeadLetterFilter{})
	require.NoError(t, err)
	require.Len(t, list, 1)
	dl := list[0]
	assert.Equal(t, uint64(1), dl.Sequence)
	assert.Equal(t, shop, dl.Service)
	assert.Equal(t, "orders.order.placed", dl.Subject)
	assert.Equal(t, "ORDERS", dl.Stream)
	assert.Equal(t, uint64(2), dl.StreamSequence)
	assert.Equal(t, shopDurable, dl.Consumer)
	assert.Equal(t, 1, dl.Attempts)
	assert.True(t, dl.Permanent)
	assert.Contains(t, dl.Error, "total is negative")
	require.NoError(t, dl.EventErr)
	assert.Equal(t, poison.ID, dl.Event.ID)
	assert.Equal(t, "ORDERS", dl.Event.Stream)
	assert.Equal(t, uint64(2), dl.Event.Sequence)
	assert.False(t, dl.PublishedAt.Before(before.Truncate(time.Second)), "published %v, test began %v", dl.PublishedAt, before)
	assert.False(t, dl.LastFailedAt.Before(dl.PublishedAt))
	assert.Equal(t, dl.LastFailedAt, dl.FirstFailedAt)
	assert.Equal(t, poison.Data, dl.Data)

	got, err := events.GetDeadLetter(ctx, js, shop, dl.Sequence)
	require.NoError(t, err)
	assert.Equal(t, dl.Event.ID, got.Event.ID)
	assert.Equal(t, dl.Error, got.Error)

	other, err := events.ListDeadLetters(ctx, js, shop, events.DeadLetterFilter{Consumer: "shop_other"})
	require.NoError(t, err)
	assert.Empty(t, other)

	// redrive while the handler still fails: kept, with the new error and
	// one more attempt, under a new sequence.
	var rerr *events.RedriveError
	err = events.Redrive(ctx, js, shop, dl.Sequence, c.Config().Handler)
	require.ErrorAs(t, err, &rerr)
	assert.Equal(t, dl.Sequence, rerr.Sequence)
	assert.Greater(t, rerr.NewSequence, dl.Sequence)
	assert.True(t, events.IsPermanent(err))
	_, err = events.GetDeadLetter(ctx, js, shop, dl.Sequence)
	require.ErrorIs(t, err, events.ErrDeadLetterNotFound)
	kept, err := events.GetDeadLetter(ctx, js, shop, rerr.NewSequence)
	require.NoError(t, err)
	assert.Equal(t, 2, kept.Attempts)
	assert.Contains(t, kept.Error, "total is negative")
	assert.Equal(t, dl.FirstFailedAt, kept.FirstFailedAt, "the first failure time is kept")
	assert.False(t, kept.LastFailedAt.Before(dl.LastFailedAt))
	assert.Equal(t, dl.Event.ID, kept.Event.ID)
	assert.Equal(t, dl.StreamSequence, kept.StreamSequence)
	assert.Equal(t, "orders.order.placed", kept.Subject)
	assert.Equal(t, 0, log.applied(t, "poison"))

	// Fix the cause: the re-drive applies the event once and the dead letter
	// leaves the DLQ.
	log.broken.Store(false)
	require.NoError(t, events.Redrive(ctx, js, shop, rerr.NewSequence, c.Config().Handler))
	assert.Equal(t, 1, log.applied(t, "poison"))
	list, err = events.ListDeadLetters(ctx, js, shop, events.DeadLetterFilter{})
	require.NoError(t, err)
	assert.Empty(t, list)
	require.ErrorIs(t, events.Redrive(ctx, js, shop, rerr.NewSequence, c.Config().Handler), events.ErrDeadLetterNotFound)
	assert.Equal(t, 1, log.applied(t, "good"), "the good event was applied once, by the consumer")
}

// deadLetter stores a dead letter of consumer directly in DLQ_SHOP.
func deadLetter(t *testing.T, js jetstream.JetStream, consumer string, data []byte) uint64 {
	t.Helper()
	ev := events.Event{Service: service, AggregateType: "order", Name: "placed"}
	msg := nats.NewMsg(events.DLQSubject(shop, ev.Subject()))
	msg.Header.Set(events.HeaderDLQSubject, ev.Subject())
	msg.Header.Set(events.HeaderDLQConsumer, consumer)
	msg.Header.Set(events.HeaderDLQAttempts, "5")
	msg.Header.Set(events.HeaderDLQError, "boom")
	msg.Data = data
	ack, err := js.PublishMsg(t.Context(), msg)
	require.NoError(t, err)
	return ack.Sequence
}

func TestPurgeDeadLettersByConsumer(t *testing.T) {
	t.Parallel()
	js := natstestJS(t)
	ctx := t.Context()
	require.NoError(t, events.EnsureStreams(ctx, js, shop, events.StreamConfig{}))

	n, err := events.PurgeDeadLetters(ctx, js, shop, events.DeadLetterFilter{})
	require.NoError(t, err)
	assert.Zero(t, n, "an empty DLQ")

	a1 := deadLetter(t, js, "shop_a", []byte("1"))
	b1 := deadLetter(t, js, "shop_b", []byte("2"))
	a2 := deadLetter(t, js, "shop_a", []byte("3"))
	b2 := deadLetter(t, js, "shop_b", []byte("4"))

	list, err := events.ListDeadLetters(ctx, js, shop, events.DeadLetterFilter{Consumer: "shop_a"})
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, a1, list[0].Sequence)
	assert.Equal(t, a2, list[1].Sequence)
	// Not authms events: still listed, with why they are not.
	require.Error(t, list[0].EventErr)
	assert.Equal(t, 5, list[0].Attempts)
	assert.Equal(t, "orders.order.placed", list[0].Subject)

	n, err = events.PurgeDeadLetters(ctx, js, shop, events.DeadLetterFilter{Consumer: "shop_a"})
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	list, err = events.ListDeadLetters(ctx, js, shop, events.DeadLetterFilter{})
	require.NoError(t, err)
	require.Len(t, list, 2, "only shop_a's dead letters are gone; gaps are skipped")
	assert.Equal(t, []uint64{b1, b2}, []uint64{list[0].Sequence, list[1].Sequence})

	n, err = events.PurgeDeadLetters(ctx, js, shop, events.DeadLetterFilter{})
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	list, err = events.ListDeadLetters(ctx, js, shop, events.DeadLetterFilter{})
	require.NoError(t, err)
	assert.Empty(t, list)
}

func TestRedriveOfMalformedDeadLetterKeepsIt(t *testing.T) {
	t.Parallel()
	js := natstestJS(t)
	ctx := t.Context()
	require.NoError(t, events.EnsureStreams(ctx, js, shop, events.StreamConfig{}))
	seq := deadLetter(t, js, "shop_a", []byte("not an event"))

	var called atomic.Bool
	err := events.Redrive(ctx, js, shop, seq, func(context.Context, events.Event) error { called.Store(true); return nil })
	var rerr *events.RedriveError
	require.ErrorAs(t, err, &rerr)
	assert.False(t, called.Load(), "a message that is not an event never reaches the handler")
	kept, err := events.GetDeadLetter(ctx, js, shop, rerr.NewSequence)
	require.NoError(t, err)
	assert.Equal(t, 6, kept.Attempts)
	assert.True(t, kept.Permanent)
	assert.Equal(t, []byte("not an event"), kept.Data)
}

func TestDeadLettersOfUnknownService(t *testing.T) {
	t.Parallel()
	js := natstestJS(t)
	_, err := events.ListDeadLetters(t.Context(), js, "nosuch", events.DeadLetterFilter{})
	require.ErrorIs(t, err, events.ErrNoDeadLetterStream)
	_, err = events.GetDeadLetter(t.Context(), js, "nosuch", 1)
	require.ErrorIs(t, err, events.ErrNoDeadLetterStream)
	require.True(t, errors.Is(events.Redrive(t.Context(), js, "nosuch", 1, func(context.Context, events.Event) error { return nil }),
		events.ErrNoDeadLetterStream))
}
