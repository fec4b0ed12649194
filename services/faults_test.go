package services_test

// Faults that must lose nothing, injected for real: the NATS server stopped
// under load, PostgreSQL sessions of a service terminated mid-transaction,
// and a projector slower than its AckWait running as two instances. Each
// test waits for outcomes (require.Eventually) and asserts them; none
// asserts a duration.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
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
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	"github.com/authms/authms/services/servicestest"
)

const (
	// faultPassword passes identity's password rules.
	faultPassword = "plover-quartz-89-lantern"
	// faultWorkers is the number of concurrent API callers.
	faultWorkers = 12
	// settle bounds every wait for the pipeline to catch up after a fault.
	settle = time.Minute
	poll   = 20 * time.Millisecond
)

// registrar registers users of one tenant through identity's API and keeps
// the outcome of every call.
type registrar struct {
	client identityv1connect.IdentityServiceClient
	tenant uuid.UUID

	next atomic.Int64 // emails handed out

	mu      sync.Mutex
	users   []string // ids of the users whose registration succeeded
	failed  map[connect.Code]int
	details []string // up to 10 unexpected errors
}

func newRegistrar(t *testing.T, env *servicestest.Env) *registrar {
	t.Helper()
	return &registrar{
		client: identityv1connect.NewIdentityServiceClient(env.HTTP, env.URL, env.Impersonate()),
		tenant: uuid.MustParse(env.NewTenant(t)),
		failed: map[connect.Code]int{},
	}
}

// register registers one new user and records the outcome.
func (r *registrar) register(ctx context.Context) {
	n := r.next.Add(1)
	res, err := r.client.RegisterUser(ctx, connect.NewRequest(&identityv1.RegisterUserRequest{
		TenantId: r.tenant.String(),
		Email:    fmt.Sprintf("fault-%d@example.com", n),
		Password: faultPassword,
	}))
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		code := connect.CodeOf(err)
		r.failed[code]++
		if code != connect.CodeUnavailable && len(r.details) < 10 {
			r.details = append(r.details, err.Error())
		}
		return
	}
	r.users = append(r.users, res.Msg.GetUser().GetId())
}

// run registers n users with faultWorkers concurrent callers and returns
// when all calls have returned.
func (r *registrar) run(ctx context.Context, n int) {
	var wg sync.WaitGroup
	var left atomic.Int64
	left.Store(int64(n))
	for range faultWorkers {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				r.register(ctx)
			}
		})
	}
	wg.Wait()
}

func (r *registrar) succeeded() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.users...)
}

// userCreatedBySubject counts the identity.user.created messages on the
// IDENTITY stream by user (the ce-subject header, the aggregate id).
func userCreatedBySubject(t *testing.T, js jetstream.JetStream) map[string]int {
	t.Helper()
	ctx := t.Context()
	s, err := js.Stream(ctx, events.StreamName("identity"))
	require.NoError(t, err)
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("identity.user.created"))
	require.NoError(t, err)
	want := int(info.State.Subjects["identity.user.created"])
	got := make(map[string]int, want)
	if want == 0 {
		return got
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"identity.user.created"}})
	require.NoError(t, err)
	for read := 0; read < want; {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		n := 0
		for msg := range batch.Messages() {
			got[msg.Headers().Get(events.HeaderSubject)]++
			n++
		}
		require.NoError(t, batch.Error())
		require.Positive(t, n, "read %d of %d identity.user.created messages, then nothing", read, want)
		read += n
	}
	return got
}

// requireOnePerUser asserts that the stream carries exactly one
// identity.user.created for every user in users, and none for anyone else.
func requireOnePerUser(t *testing.T, js jetstream.JetStream, users []string) {
	t.Helper()
	got := userCreatedBySubject(t, js)
	for _, u := range users {
		require.Equal(t, 1, got[u], "identity.user.created messages for user %s", u)
	}
	require.Len(t, got, len(users), "users with an identity.user.created message")
}

// retry runs fn again, a few times, while it fails because the database
// is unavailable: a pool may still hold sessions a test terminated.
func retry(fn func() error) error {
	var err error
	for range 5 {
		if err = fn(); !pg.IsUnavailable(err) {
			return err
		}
	}
	return err
}

// queryCount runs a count(*) query.
func queryCount(ctx context.Context, pool *pgxpool.Pool, sql string, args ...any) (int, error) {
	var n int
	err := retry(func() error { return pool.QueryRow(ctx, sql, args...).Scan(&n) })
	return n, err
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	n, err := queryCount(t.Context(), pool, sql, args...)
	require.NoError(t, err)
	return n
}

// countIs is a require.Eventually condition: it never fails the test (the
// condition runs on another goroutine), a failed query is just "not yet".
func countIs(ctx context.Context, pool *pgxpool.Pool, want int, sql string, args ...any) bool {
	n, err := queryCount(ctx, pool, sql, args...)
	return err == nil && n == want
}

func requireOutboxDrained(t *testing.T, env *servicestest.Env, services ...string) {
	t.Helper()
	for _, svc := range services {
		require.Eventually(t, func() bool { return countIs(t.Context(), env.Pool(svc), 0, "SELECT count(*) FROM outbox") },
			settle, poll, "%s's outbox drains", svc)
	}
}

func dlqDepth(t *testing.T, js jetstream.JetStream, service string) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), events.DLQStreamName(service))
	require.NoError(t, err)
	info, err := s.Info(t.Context())
	require.NoError(t, err)
	return info.State.Msgs
}

// userVersions returns the user ids and versions of a table with user_id
// and version columns, for one tenant.
func userVersions(ctx context.Context, pool *pgxpool.Pool, table string, tenant uuid.UUID) (map[string]int64, error) {
	var out map[string]int64
	err := retry(func() error {
		rows, err := pool.Query(ctx, "SELECT user_id::text, version FROM "+pgx.Identifier{table}.Sanitize()+" WHERE tenant_id = $1", tenant)
		if err != nil {
			return err
		}
		out = map[string]int64{}
		for rows.Next() {
			var id string
			var v int64
			if err := rows.Scan(&id, &v); err != nil {
				rows.Close()
				return err
			}
			out[id] = v
		}
		return rows.Err()
	})
	return out, err
}

func userIDs(t *testing.T, pool *pgxpool.Pool, table string, tenant uuid.UUID) map[string]int64 {
	t.Helper()
	out, err := userVersions(t.Context(), pool, table, tenant)
	require.NoError(t, err)
	return out
}

// TestNATSOutageUnderLoad stops the NATS server for seconds while users
// register, then restarts it. Registrations need only identity's database
// (the event goes to the outbox), so they keep succeeding; once NATS is
// back every registration is published exactly once and reaches wallet
// and billing.
func TestNATSOutageUnderLoad(t *testing.T) {
	t.Parallel()
	const users = 300
	env := servicestest.StartWith(t, servicestest.Options{Risk: servicestest.ManyRegistrations(users)},
		"tenant", "identity", "risk", "wallet", "billing")
	reg := newRegistrar(t, env)

	done := make(chan struct{})
	go func() { defer close(done); reg.run(context.Background(), users) }()

	// Stop NATS a third of the way in, for 3s of registrations.
	for len(reg.succeeded()) < users/3 {
		select {
		case <-done:
			t.Fatalf("registrations ended before the outage: %d succeeded, failures %v %v", len(reg.succeeded()), reg.failed, reg.details)
		case <-time.After(5 * time.Millisecond):
		}
	}
	env.NATS.Stop()
	stoppedAt := len(reg.succeeded())
	time.Sleep(3 * time.Second) // the outage
	duringOutage := len(reg.succeeded()) - stoppedAt
	env.NATS.Restart(t)
	<-done
	t.Logf("%d registrations succeeded while NATS was down", duringOutage)

	require.Empty(t, reg.failed, "registrations do not need NATS: %v", reg.details)
	ids := reg.succeeded()
	require.Len(t, ids, users)
	assert.Positive(t, duringOutage, "registrations went on during the outage")

	restarted := time.Now()
	requireOutboxDrained(t, env, "identity", "wallet")
	t.Logf("outboxes drained %s after the restart", time.Since(restarted))
	requireOnePerUser(t, env.JS, ids)

	billing, wallet := env.Pool("billing"), env.Pool("wallet")
	require.Eventually(t, func() bool {
		return countIs(t.Context(), billing, users, "SELECT count(*) FROM user_profiles WHERE tenant_id = $1", reg.tenant) &&
			countIs(t.Context(), wallet, users, "SELECT count(*) FROM wallets WHERE tenant_id = $1", reg.tenant)
	}, settle, poll, "every user reaches billing's cache and gets a wallet")
	t.Logf("projections complete %s after the restart", time.Since(restarted))
	profiles := userIDs(t, billing, "user_profiles", reg.tenant)
	wallets := userIDs(t, wallet, "wallets", reg.tenant)
	for _, id := range ids {
		assert.Contains(t, profiles, id)
		assert.Contains(t, wallets, id)
	}
	assert.Zero(t, dlqDepth(t, env.JS, "billing"), "nothing dead-lettered by billing")
	assert.Zero(t, dlqDepth(t, env.JS, "wallet"), "nothing dead-lettered by wallet")
}

// terminator terminates every session of one database, again and again,
// through an admin connection.
type terminator struct {
	admin    *pgxpool.Pool
	database string
	killed   int
}

func newTerminator(t *testing.T, env *servicestest.Env, service string) *terminator {
	t.Helper()
	admin, err := pgxpool.New(t.Context(), pgtest.AdminURL(t))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	return &terminator{admin: admin, database: env.PG.Naming().Database(service)}
}

// run terminates the database's sessions every interval until stop closes.
func (k *terminator) run(t *testing.T, interval time.Duration, stop <-chan struct{}) {
	t.Helper()
	for {
		var n int
		err := k.admin.QueryRow(t.Context(), `
WITH t AS (
	SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
	WHERE datname = $1 AND pid <> pg_backend_pid()
)
SELECT count(*) FROM t WHERE ok`, k.database).Scan(&n)
		require.NoError(t, err)
		k.killed += n
		select {
		case <-stop:
			return
		case <-time.After(interval):
		}
	}
}

// TestBillingSessionsTerminated terminates the sessions of billing's
// database again and again while users register and change their email:
// billing's projector loses its connections mid-transaction, yet every user
// ends up in billing's cache once, at the user's latest version, and
// nothing is dead-lettered.
func TestBillingSessionsTerminated(t *testing.T) {
	t.Parallel()
	const users = 200
	env := servicestest.StartWith(t, servicestest.Options{Risk: servicestest.ManyRegistrations(users)}, "tenant", "identity", "risk", "billing")
	reg := newRegistrar(t, env)
	killer := newTerminator(t, env, "billing")

	stop := make(chan struct{})
	var changed sync.Map // user id -> new email
	go func() {
		defer close(stop)
		reg.run(context.Background(), users)
		// Every other user changes email: version 2 in billing's cache.
		for i, id := range reg.succeeded() {
			if i%2 == 1 {
				continue
			}
			email := fmt.Sprintf("changed-%d@example.com", i)
			_, err := reg.client.ChangeEmail(context.Background(), connect.NewRequest(&identityv1.ChangeEmailRequest{
				TenantId: reg.tenant.String(), UserId: id, CurrentPassword: faultPassword, Email: email,
			}))
			if err == nil {
				changed.Store(id, email)
			}
		}
	}()
	killer.run(t, 100*time.Millisecond, stop)
	// Some more seconds of terminations while billing catches up.
	more := make(chan struct{})
	time.AfterFunc(2*time.Second, func() { close(more) })
	killer.run(t, 100*time.Millisecond, more)
	t.Logf("terminated %d billing sessions", killer.killed)

	require.Empty(t, reg.failed, "identity is not affected: %v", reg.details)
	ids := reg.succeeded()
	require.Len(t, ids, users)
	var nChanged int
	changed.Range(func(any, any) bool { nChanged++; return true })
	require.Equal(t, users/2, nChanged, "every email change succeeded")

	billing := env.Pool("billing")
	want := make(map[string]int64, users)
	for _, id := range ids {
		want[id] = 1
		if _, ok := changed.Load(id); ok {
			want[id] = 2
		}
	}
	require.Eventually(t, func() bool {
		got, err := userVersions(t.Context(), billing, "user_profiles", reg.tenant)
		if err != nil || len(got) != len(want) {
			return false
		}
		for id, v := range want {
			if got[id] != v {
				return false
			}
		}
		return true
	}, settle, poll, "every user in billing's cache at its latest version")
	assert.Equal(t, 2*users-users/2, // created for all, email_changed for half
		count(t, billing, "SELECT count(*) FROM processed_events WHERE consumer = 'billing_user_profiles'"))
	assert.Zero(t, dlqDepth(t, env.JS, "billing"), "a database outage dead-letters nothing")
}

// TestIdentitySessionsTerminated terminates the sessions of identity's
// database again and again while users register. A registration either
// fails with Unavailable, or succeeds and its event reaches the stream;
// every user identity stored has exactly one identity.user.created.
func TestIdentitySessionsTerminated(t *testing.T) {
	t.Parallel()
	const users = 300
	env := servicestest.StartWith(t, servicestest.Options{Risk: servicestest.ManyRegistrations(users)}, "tenant", "identity", "risk")
	reg := newRegistrar(t, env)
	killer := newTerminator(t, env, "identity")

	stop := make(chan struct{})
	go func() { defer close(stop); reg.run(context.Background(), users) }()
	killer.run(t, 50*time.Millisecond, stop)
	t.Logf("terminated %d identity sessions; registrations failed: %v", killer.killed, reg.failed)

	for code := range reg.failed {
		assert.Equal(t, connect.CodeUnavailable, code, "a terminated session is an outage, not an internal error: %v", reg.details)
	}
	ids := reg.succeeded()
	require.NotEmpty(t, ids)

	requireOutboxDrained(t, env, "identity")
	got := userCreatedBySubject(t, env.JS)
	for _, id := range ids {
		assert.Equal(t, 1, got[id], "identity.user.created messages for registered user %s", id)
	}
	// A registration whose commit raced the termination may have committed
	// although the caller saw Unavailable: it has its event as well. What
	// never happens is a stored user without its event, or an event twice.
	var stored map[string]bool
	err := retry(func() error {
		rows, err := env.Pool("identity").Query(t.Context(), "SELECT id::text FROM users WHERE tenant_id = $1", reg.tenant)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		stored = map[string]bool{}
		for _, id := range ids {
			stored[id] = true
		}
		return err
	})
	require.NoError(t, err)
	for id, n := range got {
		assert.True(t, stored[id], "event for user %s, who is not stored", id)
		assert.Equal(t, 1, n, "identity.user.created messages for user %s", id)
	}
	assert.Len(t, got, len(stored), "every stored user has its event")
}

// TestSlowProjectorTwoInstances runs two instances of one projector (two
// consumers sharing a durable) with a 1s AckWait, and a projection that
// takes 2.5s for some events, so the projection is slower than AckWait:
//   - fetching one message at a time, nothing is redelivered: the consumer
//     extends the ack deadline of the message it handles (InProgress);
//   - fetching 100 at a time, messages waiting behind a slow one outlive
//     their AckWait and JetStream redelivers them to the other instance;
//     the projection's processed_events makes the second delivery a no-op.
//
// Either way every event's effect is applied exactly once.
func TestSlowProjectorTwoInstances(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		batch int
		// redeliveryFree: no event reaches the handler twice.
		redeliveryFree bool
	}{
		{name: "one message per fetch", batch: 1, redeliveryFree: true},
		{name: "batches", batch: 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testSlowProjector(t, tt.batch, tt.redeliveryFree)
		})
	}
}

func testSlowProjector(t *testing.T, batch int, redeliveryFree bool) {
	pool, _ := pgtest.Provision(t, "sink", pg.MigrationSource{Name: "events", FS: events.Migrations})
	_, err := pool.Exec(t.Context(), `CREATE TABLE applied (event_id uuid PRIMARY KEY, times int NOT NULL)`)
	require.NoError(t, err)
	ns := natstest.Start(t)
	js := ns.JetStream(t)
	require.NoError(t, events.EnsureStreams(t.Context(), js, "source", events.StreamConfig{}))
	require.NoError(t, events.EnsureStreams(t.Context(), js, "sink", events.StreamConfig{}))

	const total, slowEvery = 40, 10
	projector := projections.Projector{
		Service: "sink", Name: "applied", Source: "source",
		Handlers: map[string]projections.Apply{
			"source.thing.happened": func(ctx context.Context, tx pgx.Tx, ev events.Event) error {
				var s wrapperspb.Int64Value
				if err := ev.Unmarshal(&s); err != nil {
					return err
				}
				if s.GetValue()%slowEvery == 0 {
					time.Sleep(2500 * time.Millisecond) // slower than AckWait
				}
				_, err := tx.Exec(ctx, `INSERT INTO applied (event_id, times) VALUES ($1, 1)
ON CONFLICT (event_id) DO UPDATE SET times = applied.times + 1`, ev.ID)
				return err
			},
		},
	}
	var deliveries sync.Map // event id -> *atomic.Int32: handler calls
	project := projections.Handler(projector, pool)
	handler := func(ctx context.Context, ev events.Event) error {
		n, _ := deliveries.LoadOrStore(ev.ID, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		return project(ctx, ev)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	instances := make([]*events.Consumer, 2)
	for i := range instances {
		instances[i], err = events.NewConsumer(js, events.ConsumerConfig{
			Service:  projector.Service,
			Durable:  projector.Durable(),
			Stream:   events.StreamName(projector.Source),
			Subjects: []string{"source.thing.happened"},
			Handler:  handler,
			AckWait:  time.Second,
			Backoff:  []time.Duration{50 * time.Millisecond},
			Batch:    batch,
		})
		require.NoError(t, err)
		wg.Go(func() { _ = instances[i].Run(ctx) })
	}

	for i := range total {
		publishEvent(t, js, wrapperspb.Int64(int64(i)))
	}

	require.Eventually(t, func() bool {
		return countIs(t.Context(), pool, total, "SELECT count(*) FROM processed_events WHERE consumer = $1", projector.Durable())
	}, settle, poll, "every event is processed")
	assert.Equal(t, total, count(t, pool, "SELECT count(*) FROM applied"))
	assert.Zero(t, count(t, pool, "SELECT count(*) FROM applied WHERE times <> 1"), "no effect applied twice")
	assert.Zero(t, dlqDepth(t, js, "sink"))

	calls := 0
	deliveries.Range(func(_, n any) bool {
		calls += int(n.(*atomic.Int32).Load())
		return true
	})
	t.Logf("the handler ran %d times for %d events; instances handled %d and %d",
		calls, total, instances[0].Stats().Handled, instances[1].Stats().Handled)
	if redeliveryFree {
		assert.Equal(t, total, calls, "a message being handled is never redelivered")
	}
}

// publishEvent publishes v as a source.thing.happened event, as a relay would.
func publishEvent(t *testing.T, js jetstream.JetStream, v *wrapperspb.Int64Value) {
	t.Helper()
	data, err := proto.Marshal(v)
	require.NoError(t, err)
	ev := events.Event{
		ID: uuid.Must(uuid.NewV7()), Service: "source", AggregateType: "thing", AggregateID: uuid.NewString(), Name: "happened",
		TenantID: uuid.NewString(), Version: 1, Time: time.Now().UTC(),
		MessageName: v.ProtoReflect().Descriptor().FullName(), Data: data,
	}
	msg := nats.NewMsg(ev.Subject())
	for k, h := range ev.Headers() {
		msg.Header.Set(k, h)
	}
	msg.Data = data
	_, err = js.PublishMsg(t.Context(), msg, jetstream.WithMsgID(ev.ID.String()))
	require.NoError(t, err)
}
