package events_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/natstest"
	"github.com/authms/authms/events/pg"
	"github.com/authms/authms/events/pg/pgtest"
)

// Environment of the relay child process of TestRelayKilledMidBatch.
const (
	envRelayChild    = "AUTHMS_TEST_RELAY_CHILD" // "1" makes TestHelperRelayProcess run
	envRelayNATS     = "AUTHMS_TEST_RELAY_NATS_URL"
	envRelayDatabase = "AUTHMS_TEST_RELAY_DATABASE_URL"
	envRelayPauseAt  = "AUTHMS_TEST_RELAY_PAUSE_AT"
	// relayPausedLine is what the child prints once its relay is stuck in
	// the middle of a batch.
	relayPausedLine = "authms-test-relay: paused mid-batch"
	childBatchSize  = 500
)

// appendMany appends n events, in transactions of up to 1,000 (50
// aggregates of up to 20 events each), and returns their ids in order.
func appendMany(t *testing.T, pool *pgxpool.Pool, n int) []uuid.UUID {
	t.Helper()
	store := events.NewStore(service)
	ids := make([]uuid.UUID, 0, n)
	for len(ids) < n {
		err := pg.InTx(t.Context(), pool, func(tx pgx.Tx) error {
			for range 50 {
				k := min(20, n-len(ids))
				if k == 0 {
					return nil
				}
				changes := make([]events.Change, k)
				for i := range changes {
					changes[i] = events.Change{Name: "placed", Payload: wrapperspb.String(strconv.Itoa(len(ids) + i))}
				}
				evs, err := store.Append(t.Context(), tx, events.Aggregate{Type: "order", ID: uuid.NewString(), TenantID: "t1"}, 0, changes...)
				if err != nil {
					return err
				}
				for _, e := range evs {
					ids = append(ids, e.ID)
				}
			}
			return nil
		})
		require.NoError(t, err)
	}
	return ids
}

// streamEventIDs reads every message of stream and counts them by ce-id.
func streamEventIDs(t *testing.T, js jetstream.JetStream, stream string) (byID map[string]int, total int) {
	t.Helper()
	ctx := t.Context()
	s, err := js.Stream(ctx, stream)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	byID = make(map[string]int, info.State.Msgs)
	if info.State.Msgs == 0 {
		return byID, 0
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	for total < int(info.State.Msgs) {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		got := 0
		for msg := range batch.Messages() {
			byID[msg.Headers().Get(events.HeaderID)]++
			total++
			got++
		}
		require.NoError(t, batch.Error())
		require.Positive(t, got, "stream %s: read %d of %d messages, then nothing", stream, total, info.State.Msgs)
	}
	return byID, total
}

// requireExactlyOnce asserts that stream holds every one of want exactly
// once and nothing else.
func requireExactlyOnce(t *testing.T, js jetstream.JetStream, stream string, want []uuid.UUID) {
	t.Helper()
	byID, total := streamEventIDs(t, js, stream)
	var missing, dup int
	for _, id := range want {
		switch byID[id.String()] {
		case 0:
			missing++
		case 1:
		default:
			dup++
		}
	}
	assert.Zero(t, missing, "events missing from %s", stream)
	assert.Zero(t, dup, "events stored more than once in %s", stream)
	assert.Len(t, byID, len(want), "distinct ce-id in %s", stream)
	assert.Equal(t, len(want), total, "messages in %s", stream)
}

// pausingJS makes a relay stop, forever, in the middle of its publishes: at
// the pauseAt-th PublishMsgAsync it prints relayPausedLine and blocks, so
// the batch's earlier messages are published (and may be stored) while
// their outbox rows are not deleted yet.
type pausingJS struct {
	jetstream.JetStream
	pauseAt   int64
	published atomic.Int64
}

func (j *pausingJS) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if j.published.Add(1) == j.pauseAt {
		fmt.Println(relayPausedLine)
		select {} // until SIGKILL
	}
	return j.JetStream.PublishMsgAsync(m, opts...)
}

// TestHelperRelayProcess is not a test of its own: TestRelayKilledMidBatch
// runs the test binary again with only this test selected, to get a relay
// in a process it can SIGKILL. The relay uses the database and NATS server
// of the parent test, named in the environment.
func TestHelperRelayProcess(t *testing.T) {
	if os.Getenv(envRelayChild) != "1" {
		t.Skip("the relay child process of TestRelayKilledMidBatch; it runs only there")
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv(envRelayDatabase))
	require.NoError(t, err)
	nc, err := nats.Connect(os.Getenv(envRelayNATS))
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	pauseAt, err := strconv.ParseInt(os.Getenv(envRelayPauseAt), 10, 64)
	require.NoError(t, err)
	relay, err := events.NewRelay(events.RelayConfig{
		Service:      service,
		Pool:         pool,
		JS:           &pausingJS{JetStream: js, pauseAt: pauseAt},
		BatchSize:    childBatchSize,
		PollInterval: 50 * time.Millisecond,
	})
	require.NoError(t, err)
	_ = relay.Run(ctx) // until the parent kills the process
}

// TestRelayKilledMidBatch kills (SIGKILL) a relay process in the middle of a
// batch: some of the batch's messages are in the stream while their outbox
// rows are not deleted. A relay started afterwards publishes those rows
// again; JetStream drops the re-publishes by Nats-Msg-Id, so the stream
// holds every event exactly once.
//
// This holds because the restart comes within the stream's de-duplication
// window (2 minutes). A relay that stays down longer re-publishes at most
// one batch that JetStream stores a second time; consumers absorb those
// through processed_events.
func TestRelayKilledMidBatch(t *testing.T) {
	t.Parallel()
	pool, creds := pgtest.Provision(t, service, pg.MigrationSource{Name: "events", FS: events.Migrations})
	ns := natstest.Start(t)
	js := ns.JetStream(t)
	require.NoError(t, events.EnsureStreams(t.Context(), js, service, events.StreamConfig{}))

	const total = 20_000
	want := appendMany(t, pool, total)
	require.Equal(t, total, outboxRows(t, pool))

	// The child relays 5 whole batches, then stops half-way through the
	// sixth.
	pauseAt := 5*childBatchSize + childBatchSize/2 + 1
	child := exec.Command(os.Args[0], "-test.run=^TestHelperRelayProcess$", "-test.count=1")
	child.Env = append(os.Environ(),
		envRelayChild+"=1",
		envRelayNATS+"="+ns.URL(),
		envRelayDatabase+"="+creds.ConnString(),
		envRelayPauseAt+"="+strconv.Itoa(pauseAt),
	)
	child.Stderr = os.Stderr
	stdout, err := child.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, child.Start())
	var killOnce sync.Once
	kill := func() error {
		var err error
		killOnce.Do(func() {
			_ = child.Process.Kill() // SIGKILL
			err = child.Wait()
		})
		return err
	}
	t.Cleanup(func() { _ = kill() })

	paused := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == relayPausedLine {
				close(paused)
			}
		}
	}()
	select {
	case <-paused:
	case <-time.After(2 * time.Minute):
		t.Fatal("the relay child never reached the middle of its sixth batch")
	}
	// Wait until the stream stores messages whose outbox rows still exist:
	// the half-published batch.
	require.Eventually(t, func() bool {
		return int(streamMsgs(t, js, "ORDERS"))+outboxRows(t, pool) > total
	}, 30*time.Second, 10*time.Millisecond, "the paused batch's published messages reach the stream")

	err = kill()
	var exitErr *exec.ExitError
	require.True(t, errors.As(err, &exitErr), "the child ends by the signal, not on its own: %v", err)
	require.Equal(t, syscall.SIGKILL, exitErr.Sys().(syscall.WaitStatus).Signal())

	// A statement the child had sent before it died (the previous batch's
	// delete, which runs while the next batch publishes) still completes:
	// count the outbox only once PostgreSQL has ended the child's session,
	// which releases its relay lock.
	admin, err := pgxpool.New(t.Context(), pgtest.AdminURL(t))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	require.Eventually(t, func() bool { return relayLockHolder(t, admin, creds.Database) == 0 }, time.Minute, 20*time.Millisecond,
		"PostgreSQL ends the killed relay's session")

	inStream, inOutbox := int(streamMsgs(t, js, "ORDERS")), outboxRows(t, pool)
	t.Logf("killed the relay: %d messages in the stream, %d rows in the outbox", inStream, inOutbox)
	require.Positive(t, inStream)
	require.Less(t, inStream, total)
	require.Greater(t, inStream+inOutbox, total, "some rows are published but not deleted")

	// A new relay takes the lock once PostgreSQL has noticed the dead
	// session, and publishes the rest, re-publishing the half batch.
	relay := startRelay(t, pool, js)
	require.Eventually(t, func() bool { return outboxRows(t, pool) == 0 }, time.Minute, 20*time.Millisecond)
	// The relay counts a batch just after the statement deleting its rows
	// commits, so the count may trail the empty outbox for a moment.
	var published uint64
	assert.Eventually(t, func() bool { published = relay.Stats().Published; return published == uint64(inOutbox) }, 5*time.Second, 10*time.Millisecond,
		"every remaining row was published, duplicates included")
	t.Logf("the new relay published %d", published)
	requireExactlyOnce(t, js, "ORDERS", want)
}

// relayLockHolder returns the backend pid holding service's relay lock in
// database, or 0.
func relayLockHolder(t *testing.T, admin *pgxpool.Pool, database string) int32 {
	t.Helper()
	// The relay's lock key, as events.NewRelay derives it; a bigint
	// advisory lock shows in pg_locks as classid (high 32 bits), objid (low
	// 32 bits) and objsubid 1.
	h := fnv.New64a()
	h.Write([]byte("authms relay " + service))
	key := h.Sum64()
	var pid int32
	err := admin.QueryRow(t.Context(), `
SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database
WHERE l.locktype = 'advisory' AND l.granted AND d.datname = $1
  AND l.classid = $2::bigint::oid AND l.objid = $3::bigint::oid AND l.objsubid = 1`,
		database, int64(key>>32), int64(key&0xffffffff)).Scan(&pid)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0
	}
	require.NoError(t, err)
	return pid
}

// TestRelayFailover runs two relays of one service, each with its own pool
// as two instances would, and kills the active relay's lock session twice,
// the first time while it drains a backlog, while events are appended: a
// relay takes the lock over within seconds (the standby, or the same relay
// on a new session), the relay that lost its lock stops relaying, and every
// event reaches the stream exactly once.
func TestRelayFailover(t *testing.T) {
	t.Parallel()
	pool, creds := pgtest.Provision(t, service, pg.MigrationSource{Name: "events", FS: events.Migrations})
	ns := natstest.Start(t)
	js := ns.JetStream(t)
	require.NoError(t, events.EnsureStreams(t.Context(), js, service, events.StreamConfig{}))
	admin, err := pgxpool.New(t.Context(), pgtest.AdminURL(t))
	require.NoError(t, err)
	t.Cleanup(admin.Close)

	const (
		batchSize = 100
		kills     = 2
	)
	// A backlog before any relay runs: the first kill comes while the active
	// relay is still draining it.
	want := appendMany(t, pool, 10_000)

	relays := make([]*events.Relay, 2)
	for i := range relays {
		p, err := pg.Open(t.Context(), creds, pg.PoolConfig{MaxConns: 3})
		require.NoError(t, err)
		t.Cleanup(p.Close)
		relays[i], err = events.NewRelay(events.RelayConfig{
			Service: service, Pool: p, JS: js,
			// Small batches make a backlog take many rounds, so a relay that
			// lost its lock has the chance to (wrongly) keep going.
			BatchSize:       batchSize,
			PollInterval:    50 * time.Millisecond,
			StandbyInterval: 200 * time.Millisecond,
			AckTimeout:      2 * time.Second,
		})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = relays[i].Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	active := func() []int {
		var out []int
		for i, r := range relays {
			if r.Stats().Active {
				out = append(out, i)
			}
		}
		return out
	}

	require.Eventually(t, func() bool { return len(active()) == 1 && relayLockHolder(t, admin, creds.Database) != 0 },
		10*time.Second, 10*time.Millisecond, "one relay takes the lock")

	// Keep appending while the lock sessions are killed.
	var (
		mu       sync.Mutex
		appended []uuid.UUID
	)
	stop := make(chan struct{})
	appending := make(chan error, 1)
	go func() {
		store := events.NewStore(service)
		for {
			select {
			case <-stop:
				appending <- nil
				return
			default:
			}
			var evs []events.Event
			err := pg.InTx(context.Background(), pool, func(tx pgx.Tx) error {
				var err error
				evs, err = store.Append(context.Background(), tx, events.Aggregate{Type: "order", ID: uuid.NewString(), TenantID: "t1"}, 0,
					events.Change{Name: "placed", Payload: wrapperspb.String("a")}, events.Change{Name: "paid", Payload: wrapperspb.String("b")})
				return err
			})
			if err != nil {
				appending <- err
				return
			}
			mu.Lock()
			for _, e := range evs {
				appended = append(appended, e.ID)
			}
			mu.Unlock()
		}
	}()

	for range kills {
		pid := relayLockHolder(t, admin, creds.Database)
		require.NotZero(t, pid)
		was := active()
		require.Len(t, was, 1)
		t.Logf("outbox backlog at the kill: %d rows", outboxRows(t, pool))
		var ok bool
		require.NoError(t, admin.QueryRow(t.Context(), "SELECT pg_terminate_backend($1)", pid).Scan(&ok))
		require.True(t, ok, "terminate the lock session %d", pid)
		require.Eventually(t, func() bool {
			holder := relayLockHolder(t, admin, creds.Database)
			return holder != 0 && holder != pid && len(active()) == 1
		}, 15*time.Second, 10*time.Millisecond, "a relay takes the lock over after session %d of relay %d died", pid, was[0])
		t.Logf("killed relay %d's lock session %d; relay %v is active now", was[0], pid, active())
	}
	close(stop)
	require.NoError(t, <-appending)
	mu.Lock()
	want = append(want, appended...)
	mu.Unlock()

	require.Eventually(t, func() bool { return outboxRows(t, pool) == 0 }, 30*time.Second, 20*time.Millisecond)
	requireExactlyOnce(t, js, "ORDERS", want)
	assert.Len(t, active(), 1, "exactly one relay is active")
	// A relay that lost its lock finishes at most the batch it was
	// publishing, which the new active relay may publish again: no more
	// than one batch per kill is published twice.
	published := relays[0].Stats().Published + relays[1].Stats().Published
	t.Logf("published %d acks for %d events", published, len(want))
	assert.LessOrEqual(t, published, uint64(len(want)+kills*batchSize),
		"a relay without the lock stops relaying")
}
