package services_test

// Benchmarks of the registration path, end to end: a Connect client calls
// RegisterUser on the real HTTP server of servicestest (tenant, identity,
// profile, wallet and billing on the real PostgreSQL of DATABASE_URL and an
// embedded NATS JetStream server), all users in one tenant. They run only under -bench; see
// docs/benchmarks.md for the command and the numbers.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/events"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	"github.com/authms/authms/services/identity"
	"github.com/authms/authms/services/servicestest"
)

const (
	// benchClients is the number of concurrent callers of BenchmarkRegister.
	benchClients = 16
	// benchPassword passes identity's password rules.
	benchPassword = "plover-quartz-89-lantern"
	// benchIdentityProjectors is the number of durable consumers of the IDENTITY
	// stream: profile's, wallet's and billing's projectors.
	benchIdentityProjectors = 3
	// benchBillingProjector is billing's user_profiles projector (durable name).
	benchBillingProjector = "billing_user_profiles"
	// benchDrainTimeout bounds the wait for the projectors to catch up.
	benchDrainTimeout = 2 * time.Minute
)

// benchCheapHashing is servicestest's default password hashing (argon2id m=1 MiB,
// t=1), spelled out so the benchmark names what it measures.
var benchCheapHashing = identity.Config{Password: identity.PasswordParams{Memory: 1024, Iterations: 1}}

// benchRegistrations lets every registration of a benchmark through risk's
// registration throttle: they all come from one address, one env serves
// every round and -count, and the throttle's check (one transaction in
// risk) is part of each registration measured.
var benchRegistrations = servicestest.ManyRegistrations(math.MaxInt32)

// benchEnv is a running platform and a Connect client of identity.
type benchEnv struct {
	env    *servicestest.Env
	client identityv1connect.IdentityServiceClient
	tenant string
	prefix string       // makes emails unique across envs
	seq    atomic.Int64 // emails handed out
	done   atomic.Int64 // registrations that succeeded

	stored  map[string]time.Time // see storedTimes
	scanned uint64               // the last stream sequence in stored
}

func startBenchEnv(b *testing.B, id identity.Config) *benchEnv {
	b.Helper()
	env := servicestest.StartWith(b, servicestest.Options{Identity: id, Risk: benchRegistrations},
		"tenant", "identity", "risk", "profile", "wallet", "billing")
	return &benchEnv{
		env:    env,
		client: identityv1connect.NewIdentityServiceClient(env.HTTP, env.URL, env.Impersonate()),
		tenant: env.NewTenant(b),
		prefix: uuid.NewString()[:8],
	}
}

// register registers a new user and returns it.
func (e *benchEnv) register(ctx context.Context) (*identityv1.User, error) {
	n := e.seq.Add(1)
	res, err := e.client.RegisterUser(ctx, connect.NewRequest(&identityv1.RegisterUserRequest{
		TenantId: e.tenant,
		Email:    fmt.Sprintf("bench-%s-%d@example.com", e.prefix, n),
		Password: benchPassword,
	}))
	if err != nil {
		return nil, err
	}
	e.done.Add(1)
	return res.Msg.GetUser(), nil
}

// waitDrained waits until the IDENTITY stream holds every event of the
// registrations so far and each projector consuming it has acknowledged
// them all (a projector acks after its transaction commits). It returns how
// long that took.
func (e *benchEnv) waitDrained(b *testing.B) time.Duration {
	b.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(b.Context(), benchDrainTimeout)
	defer cancel()
	stream, err := e.env.JS.Stream(ctx, events.StreamName("identity"))
	require.NoError(b, err)
	want := uint64(e.done.Load())
	for {
		drained, err := benchStreamDrained(ctx, stream, want)
		require.NoError(b, err, "wait for the projectors")
		if drained {
			return time.Since(start)
		}
		select {
		case <-ctx.Done():
			b.Fatalf("the projectors did not catch up with %d registrations within %s", want, benchDrainTimeout)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// benchStreamDrained reports whether stream holds at least want messages and
// all benchIdentityProjectors of its consumers have acknowledged every one.
func benchStreamDrained(ctx context.Context, stream jetstream.Stream, want uint64) (bool, error) {
	info, err := stream.Info(ctx)
	if err != nil {
		return false, err
	}
	if info.State.Msgs < want {
		return false, nil
	}
	consumers, idle := 0, 0
	list := stream.ListConsumers(ctx)
	for c := range list.Info() {
		consumers++
		if c.NumPending == 0 && c.NumAckPending == 0 {
			idle++
		}
	}
	if err := list.Err(); err != nil {
		return false, err
	}
	return consumers >= benchIdentityProjectors && idle == consumers, nil
}

// BenchmarkRegister measures registrations per second through the Connect
// API with benchClients concurrent callers, at production password hashing
// cost and at servicestest's cheap cost (the pipeline's own ceiling). After
// each round, with the timer stopped, it waits for the three projectors to
// catch up and reports how long that took after the last response
// (drain-ms), and the registrations per second counted until every
// projector has applied them (e2e-registrations/s): a throughput the
// projectors cannot follow shows there.
func BenchmarkRegister(b *testing.B) {
	cases := []struct {
		name string
		cfg  identity.Config
	}{
		{name: "argon2id=m19MiB-t2-p1", cfg: identity.DefaultConfig()},
		{name: "argon2id=m1MiB-t1-p1", cfg: benchCheapHashing},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			e := startBenchEnv(b, c.cfg) // once for every round and -count
			b.Run(fmt.Sprintf("clients=%d", benchClients), func(b *testing.B) {
				e.waitDrained(b)
				ctx := b.Context()
				var (
					next     atomic.Int64
					firstErr error
					errOnce  sync.Once
					wg       sync.WaitGroup
				)
				b.ResetTimer()
				for range benchClients {
					wg.Go(func() {
						for next.Add(1) <= int64(b.N) {
							if _, err := e.register(ctx); err != nil {
								errOnce.Do(func() { firstErr = err })
								next.Store(math.MaxInt64 / 2) // stop the other callers
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				require.NoError(b, firstErr, "register")
				elapsed := b.Elapsed()
				drain := e.waitDrained(b)
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "registrations/s")
				b.ReportMetric(benchMS(drain), "drain-ms")
				b.ReportMetric(float64(b.N)/(elapsed+drain).Seconds(), "e2e-registrations/s")
			})
		})
	}
}

// benchRates are the steady offered rates of BenchmarkCommitToProjector, in
// registrations per second: a busy one and a quiet one.
var benchRates = []int{200, 20}

// BenchmarkCommitToProjector measures how long a committed registration
// takes to reach billing's user_profiles projector, at each of benchRates
// (cheap hashing; b.N is the number of registrations, so -benchtime=2000x
// offers 2,000 registrations over 10 s at 200/s). Both ends are timestamps
// recorded by the system, not observed by polling:
//
//   - start: the event's time (events.occurred_at = ce-time), taken in
//     identity's transaction by Store.Append, just before the last insert
//     and the commit;
//   - end: processed_events.processed_at of consumer billing_user_profiles,
//     PostgreSQL's now() of the projector's transaction, i.e. when that
//     transaction began, before billing seals the email, upserts the row
//     and commits.
//
// Both are read from the same host clock (identity's process and
// PostgreSQL run on one machine). It also reports the client's view:
// response-to-projector (processed_at minus the time the RegisterUser
// response reached the client; negative when the projector started first)
// and the RegisterUser round trip.
func BenchmarkCommitToProjector(b *testing.B) {
	e := startBenchEnv(b, benchCheapHashing) // once for every rate, round and -count
	for _, rate := range benchRates {
		b.Run(fmt.Sprintf("rate=%drps", rate), func(b *testing.B) { benchCommitToProjector(b, e, rate) })
	}
}

// benchCommitToProjector offers b.N registrations at rate per second and
// reports the latencies BenchmarkCommitToProjector describes.
func benchCommitToProjector(b *testing.B, e *benchEnv, rate int) {
	e.waitDrained(b)
	ctx := b.Context()
	type sample struct {
		userID    string
		sent, got time.Time
	}
	samples := make([]sample, b.N)
	interval := time.Second / time.Duration(rate)
	var (
		failed atomic.Int64
		errMu  sync.Mutex
		errs   []error
		wg     sync.WaitGroup
	)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		// An open loop: each request leaves on schedule, whether or not
		// the earlier ones have been answered.
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		wg.Go(func() {
			sent := time.Now()
			u, err := e.register(ctx)
			if err != nil {
				if failed.Add(1) <= 3 {
					errMu.Lock()
					errs = append(errs, err)
					errMu.Unlock()
				}
				return
			}
			samples[i] = sample{userID: u.GetId(), sent: sent, got: time.Now()}
		})
	}
	wg.Wait()
	b.StopTimer()
	require.Zero(b, failed.Load(), "registrations failed, among them: %v", errors.Join(errs...))
	offered := float64(b.N) / b.Elapsed().Seconds()
	e.waitDrained(b)

	userIDs := make([]string, len(samples))
	for i, s := range samples {
		userIDs[i] = s.userID
	}
	committed := benchEventTimes(b, e, userIDs)
	projected := benchProjectedTimes(b, e, committed)
	stored := e.storedTimes(b)
	var commitToProj, commitToStored, storedToProj, respToProj, roundTrip []time.Duration
	for _, s := range samples {
		c := committed[s.userID]
		p, ok := projected[c.eventID]
		require.True(b, ok, "billing has not processed the created event %s of user %s", c.eventID, s.userID)
		st, ok := stored[c.eventID]
		require.True(b, ok, "the identity stream does not hold the created event %s of user %s", c.eventID, s.userID)
		commitToProj = append(commitToProj, p.Sub(c.at))
		commitToStored = append(commitToStored, st.Sub(c.at))
		storedToProj = append(storedToProj, p.Sub(st))
		respToProj = append(respToProj, p.Sub(s.got))
		roundTrip = append(roundTrip, s.got.Sub(s.sent))
	}
	b.ReportMetric(offered, "registrations/s")
	benchReportPercentiles(b, "", commitToProj, 0.50, 0.90, 0.99, 1)
	benchReportPercentiles(b, "relay-", commitToStored, 0.50, 0.99)
	benchReportPercentiles(b, "consume-", storedToProj, 0.50, 0.99)
	benchReportPercentiles(b, "resp-to-proj-", respToProj, 0.50, 0.99)
	benchReportPercentiles(b, "register-", roundTrip, 0.50, 0.99)
}

// storedTimes returns when JetStream stored each message of the identity
// stream (the server's timestamp), by event id (ce-id).
func (e *benchEnv) storedTimes(b *testing.B) map[string]time.Time {
	b.Helper()
	ctx := b.Context()
	stream, err := e.env.JS.Stream(ctx, events.StreamName("identity"))
	require.NoError(b, err)
	info, err := stream.Info(ctx)
	require.NoError(b, err)
	if e.stored == nil {
		e.stored = make(map[string]time.Time)
	}
	for seq := max(e.scanned+1, info.State.FirstSeq); seq <= info.State.LastSeq; seq++ {
		msg, err := stream.GetMsg(ctx, seq)
		require.NoError(b, err, "identity stream message %d", seq)
		e.stored[msg.Header.Get(events.HeaderID)] = msg.Time
		e.scanned = seq
	}
	return e.stored
}

// benchCreatedEvent is a user's created event in identity's event store.
type benchCreatedEvent struct {
	eventID string
	at      time.Time // occurred_at
}

// benchEventTimes returns the created event of each user, by user id.
func benchEventTimes(b *testing.B, e *benchEnv, userIDs []string) map[string]benchCreatedEvent {
	b.Helper()
	rows, err := e.env.Pool("identity").Query(b.Context(),
		`SELECT aggregate_id, id::text, occurred_at FROM events WHERE aggregate_id = ANY($1) AND version = 1`, userIDs)
	require.NoError(b, err)
	defer rows.Close()
	out := make(map[string]benchCreatedEvent, len(userIDs))
	for rows.Next() {
		var user string
		var ev benchCreatedEvent
		require.NoError(b, rows.Scan(&user, &ev.eventID, &ev.at))
		out[user] = ev
	}
	require.NoError(b, rows.Err())
	require.Len(b, out, len(userIDs), "users with a created event in identity")
	return out
}

// benchProjectedTimes returns when billing's projector processed each event, by
// event id.
func benchProjectedTimes(b *testing.B, e *benchEnv, created map[string]benchCreatedEvent) map[string]time.Time {
	b.Helper()
	ids := make([]string, 0, len(created))
	for _, c := range created {
		ids = append(ids, c.eventID)
	}
	rows, err := e.env.Pool("billing").Query(b.Context(),
		`SELECT event_id::text, processed_at FROM processed_events WHERE consumer = $1 AND event_id = ANY($2::uuid[])`,
		benchBillingProjector, ids)
	require.NoError(b, err)
	defer rows.Close()
	out := make(map[string]time.Time, len(ids))
	for rows.Next() {
		var id string
		var at time.Time
		require.NoError(b, rows.Scan(&id, &at))
		out[id] = at
	}
	require.NoError(b, rows.Err())
	return out
}

// benchReportPercentiles reports the given quantiles of ds in milliseconds as
// <prefix>p50-ms, ...; quantile 1 is reported as <prefix>max-ms.
func benchReportPercentiles(b *testing.B, prefix string, ds []time.Duration, quantiles ...float64) {
	b.Helper()
	if len(ds) == 0 {
		return
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	for _, q := range quantiles {
		// Nearest rank: the smallest value with at least q of the samples at
		// or below it.
		i := max(int(math.Ceil(q*float64(len(ds))))-1, 0)
		name := fmt.Sprintf("%sp%g-ms", prefix, q*100)
		if q == 1 {
			name = prefix + "max-ms"
		}
		b.ReportMetric(benchMS(ds[i]), name)
	}
}

func benchMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
