package events_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/natstest"
)

func newPositions(t *testing.T, pool *pgxpool.Pool, timeout time.Duration) *events.Positions {
	t.Helper()
	p, err := events.NewPositions(events.PositionsConfig{Service: service, Pool: pool, Timeout: timeout, PollInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

// streamSequence returns the sequence at which the stream stored the event
// with Nats-Msg-Id id, reading the stream from the start.
func streamSequence(t *testing.T, js jetstream.JetStream, id uuid.UUID) uint64 {
	t.Helper()
	stream, err := js.Stream(t.Context(), events.StreamName(service))
	require.NoError(t, err)
	for seq := uint64(1); seq <= stream.CachedInfo().State.LastSeq; seq++ {
		msg, err := stream.GetMsg(t.Context(), seq)
		require.NoError(t, err)
		if msg.Header.Get(nats.MsgIdHdr) == id.String() {
			return seq
		}
	}
	t.Fatalf("event %s is not in the stream", id)
	return 0
}

func TestPositionsAwait(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	js := natstest.Start(t).JetStream(t)
	require.NoError(t, events.EnsureStreams(t.Context(), js, service, events.StreamConfig{}))
	startRelay(t, pool, js)
	positions := newPositions(t, pool, 10*time.Second)
	store := events.NewStore(service)

	first := appendOne(t, pool, store, "first")
	got, err := positions.Await(t.Context(), first.ID)
	require.NoError(t, err)
	assert.Equal(t, events.Position{Stream: "ORDERS", Sequence: streamSequence(t, js, first.ID)}, got)

	second, third := appendOne(t, pool, store, "second"), appendOne(t, pool, store, "third")
	got, err = positions.Await(t.Context(), third.ID, second.ID)
	require.NoError(t, err)
	assert.Equal(t, events.Position{Stream: "ORDERS", Sequence: streamSequence(t, js, third.ID)}, got, "the highest of the two")
	assert.Greater(t, got.Sequence, streamSequence(t, js, second.ID))

	got, err = positions.Await(t.Context())
	require.NoError(t, err)
	assert.True(t, got.IsZero(), "no events, no position")
}

func TestPositionsAwaitUnknownEvent(t *testing.T) {
	t.Parallel()
	positions := newPositions(t, provision(t), 10*time.Second)
	_, err := positions.Await(t.Context(), uuid.Must(uuid.NewV7()))
	require.ErrorContains(t, err, "no such event")
}

// TestPositionsNATSStopped: the relay cannot publish, so Await gives up
// after its timeout without an error (the write succeeded); once NATS is
// back the position is there.
func TestPositionsNATSStopped(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	srv := natstest.Start(t)
	js := srv.JetStream(t)
	require.NoError(t, events.EnsureStreams(t.Context(), js, service, events.StreamConfig{}))
	startRelay(t, pool, js)
	positions := newPositions(t, pool, 300*time.Millisecond)
	srv.Stop()

	ev := appendOne(t, pool, events.NewStore(service), "while NATS is down")
	got, err := positions.Await(t.Context(), ev.ID)
	require.NoError(t, err)
	assert.True(t, got.IsZero(), "timed out: no position, got %v", got)

	srv.Restart(t)
	require.Eventually(t, func() bool {
		got, err = positions.Await(t.Context(), ev.ID)
		return err == nil && !got.IsZero()
	}, 30*time.Second, 10*time.Millisecond)
	assert.Equal(t, events.Position{Stream: "ORDERS", Sequence: streamSequence(t, js, ev.ID)}, got)
}

// TestRelayRecordsDuplicateSequence: a relay that died between publishing
// and deleting leaves rows JetStream already stored; the next relay's
// publish is acknowledged as a duplicate carrying the stored copy's
// sequence, which is the one recorded.
func TestRelayRecordsDuplicateSequence(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	js := natstest.Start(t).JetStream(t)
	require.NoError(t, events.EnsureStreams(t.Context(), js, service, events.StreamConfig{}))
	store := events.NewStore(service)
	ev := appendOne(t, pool, store, "published twice")
	publish(t, js, "an unrelated event first") // so the copy's sequence is not 1 by chance
	msg := nats.NewMsg(ev.Subject())
	for k, v := range ev.Headers() {
		msg.Header.Set(k, v)
	}
	msg.Data = ev.Data
	ack, err := js.PublishMsg(t.Context(), msg, jetstream.WithMsgID(ev.ID.String()))
	require.NoError(t, err)
	publish(t, js, "and one after it")

	startRelay(t, pool, js)
	got, err := newPositions(t, pool, 10*time.Second).Await(t.Context(), ev.ID)
	require.NoError(t, err)
	assert.Equal(t, events.Position{Stream: "ORDERS", Sequence: ack.Sequence}, got)
	assert.Equal(t, uint64(3), streamMsgs(t, js, "ORDERS"), "the relay's copy was de-duplicated")
	assert.Zero(t, outboxRows(t, pool))
}
