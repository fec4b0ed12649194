package billing

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/natstest"
	"github.com/authms/authms/events/pg"
	"github.com/authms/authms/events/pg/pgtest"
	"github.com/authms/authms/projections"
	"github.com/authms/authms/projections/projectionstest"
	billingv1 "github.com/authms/authms/schemas/gen/authms/billing/v1"
	"github.com/authms/authms/schemas/gen/authms/billing/v1/billingv1connect"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/services/internal/platform"
	"github.com/authms/authms/services/internal/rpc"
)

// testSecrets holds random 32-byte keys, fixed for one test.
type testSecrets map[string][]byte

func newSecrets(tb testing.TB) testSecrets {
	tb.Helper()
	s := testSecrets{}
	for _, name := range []string{keyEmailEncryption, keyEmailBlindIndex} {
		s[name] = make([]byte, 32)
		_, err := rand.Read(s[name])
		require.NoError(tb, err)
	}
	return s
}

func (s testSecrets) Key(_ context.Context, name string) ([]byte, error) {
	k, ok := s[name]
	if !ok {
		return nil, fmt.Errorf("no key %q", name)
	}
	return k, nil
}

// fixture is a billing service on its own database, with its API served over
// HTTP.
type fixture struct {
	svc    *Service
	pool   *pgxpool.Pool
	js     jetstream.JetStream
	client billingv1connect.BillingServiceClient
	apply  events.Handler
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	pool, _ := pgtest.Provision(tb, Name,
		pg.MigrationSource{Name: "events", FS: events.Migrations},
		pg.MigrationSource{Name: Name, FS: Migrations()})
	js := natstest.Start(tb).JetStream(tb)
	logger := slog.New(slog.DiscardHandler)
	opts, err := rpc.HandlerOptions(logger)
	require.NoError(tb, err)
	svc, err := New(platform.Deps{Service: Name, Pool: pool, JS: js, Logger: logger, Secrets: newSecrets(tb), HandlerOptions: opts})
	require.NoError(tb, err)
	mux := http.NewServeMux()
	svc.Mount(mux)
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return &fixture{
		svc:    svc,
		pool:   pool,
		js:     js,
		client: billingv1connect.NewBillingServiceClient(srv.Client(), srv.URL),
		apply:  projections.Handler(svc.userProfiles(), pool),
	}
}

// identityEvent builds an identity.user.<name> event at the user's aggregate
// version, as identity's relay publishes it.
func identityEvent(tb testing.TB, name string, tenantID, userID uuid.UUID, version int64, payload proto.Message) events.Event {
	tb.Helper()
	data, err := proto.Marshal(payload)
	require.NoError(tb, err)
	return events.Event{
		ID: uuid.Must(uuid.NewV7()), Service: "identity", AggregateType: "user", AggregateID: userID.String(), Name: name,
		TenantID: tenantID.String(), Version: version, Time: time.Now().UTC().Truncate(time.Microsecond),
		MessageName: payload.ProtoReflect().Descriptor().FullName(), Data: data,
	}
}

func userCreated(tb testing.TB, tenantID, userID uuid.UUID, email string) events.Event {
	tb.Helper()
	return identityEvent(tb, "created", tenantID, userID, 1, &identityv1.UserCreated{
		UserId: userID.String(), TenantId: tenantID.String(), Email: email, CreateTime: timestamppb.Now(),
	})
}

func emailChanged(tb testing.TB, tenantID, userID uuid.UUID, version int64, from, to string) events.Event {
	tb.Helper()
	return identityEvent(tb, "email_changed", tenantID, userID, version, &identityv1.UserEmailChanged{
		UserId: userID.String(), TenantId: tenantID.String(), Email: to, PreviousEmail: from,
	})
}

func (f *fixture) getCustomer(tb testing.TB, tenantID, userID uuid.UUID) (*billingv1.Customer, error) {
	tb.Helper()
	res, err := f.client.GetCustomer(tb.Context(), connect.NewRequest(&billingv1.GetCustomerRequest{
		TenantId: tenantID.String(), UserId: userID.String(),
	}))
	if err != nil {
		return nil, err
	}
	return res.Msg.GetCustomer(), nil
}

func (f *fixture) findByEmail(tb testing.TB, tenantID uuid.UUID, email string) (*billingv1.Customer, error) {
	tb.Helper()
	res, err := f.client.FindCustomerByEmail(tb.Context(), connect.NewRequest(&billingv1.FindCustomerByEmailRequest{
		TenantId: tenantID.String(), Email: email,
	}))
	if err != nil {
		return nil, err
	}
	return res.Msg.GetCustomer(), nil
}

func requireCode(tb testing.TB, err error, want connect.Code) {
	tb.Helper()
	require.Error(tb, err)
	assert.Equal(tb, want, connect.CodeOf(err), "error: %v", err)
}

// row is the user's cache row as stored.
func (f *fixture) row(tb testing.TB, userID uuid.UUID) (ciphertext, hash []byte, version int64) {
	tb.Helper()
	require.NoError(tb, f.pool.QueryRow(tb.Context(),
		"SELECT email_ciphertext, email_hash, version FROM user_profiles WHERE user_id = $1", userID).
		Scan(&ciphertext, &hash, &version))
	return ciphertext, hash, version
}

func TestUserProfilesFollowEmailChanges(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenantID, userID := uuid.New(), uuid.New()
	created := userCreated(t, tenantID, userID, "Ada@Example.com")
	changed := emailChanged(t, tenantID, userID, 2, "Ada@Example.com", "ada.lovelace@example.org")

	// Given the user was created and then changed their email...
	require.NoError(t, f.apply(t.Context(), created))
	c, err := f.getCustomer(t, tenantID, userID)
	require.NoError(t, err)
	assert.Equal(t, "Ada@Example.com", c.GetEmail())
	assert.Equal(t, int64(1), c.GetVersion())
	_, oldHash, _ := f.row(t, userID)

	require.NoError(t, f.apply(t.Context(), changed))

	// ...the cache holds the new email, found by its blind index...
	c, err = f.getCustomer(t, tenantID, userID)
	require.NoError(t, err)
	assert.Equal(t, "ada.lovelace@example.org", c.GetEmail())
	assert.Equal(t, int64(2), c.GetVersion())
	assert.Equal(t, changed.Time, c.GetUpdateTime().AsTime())
	found, err := f.findByEmail(t, tenantID, "ada.lovelace@example.org")
	require.NoError(t, err)
	assert.Equal(t, userID.String(), found.GetUserId())
	assert.Equal(t, "ada.lovelace@example.org", found.GetEmail())

	// ...and the old address finds nobody, its hash is gone.
	_, err = f.findByEmail(t, tenantID, "Ada@Example.com")
	requireCode(t, err, connect.CodeNotFound)
	_, newHash, _ := f.row(t, userID)
	assert.NotEqual(t, oldHash, newHash)
	var n int
	require.NoError(t, f.pool.QueryRow(t.Context(), "SELECT count(*) FROM user_profiles WHERE email_hash = $1", oldHash).Scan(&n))
	assert.Zero(t, n)

	// When the older created event arrives again (redelivered, or published
	// anew under another message id), the row does not move back.
	require.NoError(t, f.apply(t.Context(), created))
	again := created
	again.ID = uuid.Must(uuid.NewV7())
	require.NoError(t, f.apply(t.Context(), again))
	c, err = f.getCustomer(t, tenantID, userID)
	require.NoError(t, err)
	assert.Equal(t, "ada.lovelace@example.org", c.GetEmail())
	assert.Equal(t, int64(2), c.GetVersion())
}

func TestUserProfilesOutOfOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenantID, userID := uuid.New(), uuid.New()

	// The email change is applied before the creation it follows.
	require.NoError(t, f.apply(t.Context(), emailChanged(t, tenantID, userID, 3, "b@example.com", "c@example.com")))
	require.NoError(t, f.apply(t.Context(), emailChanged(t, tenantID, userID, 2, "a@example.com", "b@example.com")))
	require.NoError(t, f.apply(t.Context(), userCreated(t, tenantID, userID, "a@example.com")))

	c, err := f.getCustomer(t, tenantID, userID)
	require.NoError(t, err)
	assert.Equal(t, "c@example.com", c.GetEmail())
	assert.Equal(t, int64(3), c.GetVersion())
	for _, old := range []string{"a@example.com", "b@example.com"} {
		_, err := f.findByEmail(t, tenantID, old)
		requireCode(t, err, connect.CodeNotFound)
	}
}

func TestUserProfilesStoreNoPlaintext(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenantID, userID := uuid.New(), uuid.New()
	const email = "grace.hopper@example.com"
	require.NoError(t, f.apply(t.Context(), userCreated(t, tenantID, userID, email)))

	ciphertext, hash, version := f.row(t, userID)
	assert.Equal(t, int64(1), version)
	assert.NotContains(t, string(ciphertext), email)
	assert.NotContains(t, string(ciphertext), "grace")
	assert.Len(t, hash, 32, "HMAC-SHA256")
	assert.NotContains(t, string(hash), "grace")

	// A random nonce: sealing the same email again gives another ciphertext.
	seal, err := f.svc.email.sealer(t.Context())
	require.NoError(t, err)
	again, err := seal.seal(tenantID, userID, email)
	require.NoError(t, err)
	assert.NotEqual(t, ciphertext, again)

	// The ciphertext is bound to its row: copied to another user, it does not open.
	_, err = f.svc.email.open(t.Context(), tenantID, uuid.New(), ciphertext)
	require.Error(t, err)
	_, err = f.svc.email.open(t.Context(), uuid.New(), userID, ciphertext)
	require.Error(t, err)
	tampered := bytes.Clone(ciphertext)
	tampered[len(tampered)-1] ^= 1
	_, err = f.svc.email.open(t.Context(), tenantID, userID, tampered)
	require.Error(t, err)
	plain, err := f.svc.email.open(t.Context(), tenantID, userID, ciphertext)
	require.NoError(t, err)
	assert.Equal(t, email, plain)
}

func TestCustomerLookupIsScopedByTenant(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenantA, tenantB := uuid.New(), uuid.New()
	userA, userB := uuid.New(), uuid.New()
	const email = "shared@example.com"
	require.NoError(t, f.apply(t.Context(), userCreated(t, tenantA, userA, email)))
	require.NoError(t, f.apply(t.Context(), userCreated(t, tenantB, userB, email)))

	_, hashA, _ := f.row(t, userA)
	_, hashB, _ := f.row(t, userB)
	assert.NotEqual(t, hashA, hashB, "the blind index is keyed by tenant")

	tests := []struct {
		name     string
		tenantID uuid.UUID
		email    string
		want     uuid.UUID
	}{
		{name: "tenant A", tenantID: tenantA, email: email, want: userA},
		{name: "tenant B", tenantID: tenantB, email: email, want: userB},
		{name: "case-insensitive", tenantID: tenantA, email: "Shared@EXAMPLE.com", want: userA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := f.findByEmail(t, tt.tenantID, tt.email)
			require.NoError(t, err)
			assert.Equal(t, tt.want.String(), c.GetUserId())
			assert.Equal(t, tt.tenantID.String(), c.GetTenantId())
		})
	}

	_, err := f.getCustomer(t, tenantB, userA)
	requireCode(t, err, connect.CodeNotFound)
	_, err = f.getCustomer(t, tenantA, uuid.New())
	requireCode(t, err, connect.CodeNotFound)
	_, err = f.findByEmail(t, uuid.New(), email)
	requireCode(t, err, connect.CodeNotFound)
}

func TestBillingAPIRejectsBadInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := f.client.GetCustomer(t.Context(), connect.NewRequest(&billingv1.GetCustomerRequest{TenantId: "acme", UserId: uuid.NewString()}))
	requireCode(t, err, connect.CodeInvalidArgument)
	_, err = f.findByEmail(t, uuid.New(), "not an email")
	requireCode(t, err, connect.CodeInvalidArgument)
}

func TestUserProfilesRejectPoison(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenantID := uuid.New()

	bad := userCreated(t, tenantID, uuid.New(), "x@example.com")
	bad.Data = mustMarshal(t, &identityv1.UserCreated{UserId: "not-a-uuid", TenantId: tenantID.String(), Email: "x@example.com"})
	err := f.apply(t.Context(), bad)
	require.Error(t, err)
	assert.True(t, events.IsPermanent(err), "a bad user id is permanent: %v", err)

	garbage := userCreated(t, tenantID, uuid.New(), "x@example.com")
	garbage.Data = []byte{0xff, 0xff}
	err = f.apply(t.Context(), garbage)
	require.Error(t, err)
	assert.True(t, events.IsPermanent(err), "an undecodable payload is permanent: %v", err)

	var n int
	require.NoError(t, f.pool.QueryRow(t.Context(), "SELECT count(*) FROM user_profiles").Scan(&n))
	assert.Zero(t, n)
}

func mustMarshal(tb testing.TB, m proto.Message) []byte {
	tb.Helper()
	b, err := proto.Marshal(m)
	require.NoError(tb, err)
	return b
}

// TestProjectorConsumesIdentityStream runs the service as the platform does:
// identity's events arrive on the IDENTITY stream.
func TestProjectorConsumesIdentityStream(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	require.NoError(t, events.EnsureStreams(t.Context(), f.js, "identity", events.StreamConfig{}))
	require.NoError(t, events.EnsureStreams(t.Context(), f.js, Name, events.StreamConfig{}))
	projectionstest.Run(t, projections.Config{Pool: f.pool, JS: f.js, Logger: slog.New(slog.DiscardHandler)}, f.svc.Projectors()...)

	tenantID, userID := uuid.New(), uuid.New()
	publish(t, f.js, userCreated(t, tenantID, userID, "first@example.com"))
	publish(t, f.js, emailChanged(t, tenantID, userID, 2, "first@example.com", "second@example.com"))

	require.Eventually(t, func() bool {
		c, err := f.findByEmail(t, tenantID, "second@example.com")
		return err == nil && c.GetUserId() == userID.String()
	}, 10*time.Second, 20*time.Millisecond)
	_, err := f.findByEmail(t, tenantID, "first@example.com")
	requireCode(t, err, connect.CodeNotFound)
}

func publish(tb testing.TB, js jetstream.JetStream, ev events.Event) {
	tb.Helper()
	msg := nats.NewMsg(ev.Subject())
	for k, v := range ev.Headers() {
		msg.Header.Set(k, v)
	}
	msg.Data = ev.Data
	_, err := js.PublishMsg(tb.Context(), msg, jetstream.WithMsgID(ev.ID.String()))
	require.NoError(tb, err)
}

// TestRoleIsolation proves the database-per-service rule: billing's role,
// holding only its own credentials, cannot open identity's database.
func TestRoleIsolation(t *testing.T) {
	t.Parallel()
	cluster := pgtest.New(t)
	_, billing := cluster.Provision(t, Name, pg.MigrationSource{Name: "events", FS: events.Migrations},
		pg.MigrationSource{Name: Name, FS: Migrations()})
	identity, err := cluster.Provisioner().Ensure(t.Context(), "identity", uuid.NewString())
	require.NoError(t, err)

	intruder := billing
	intruder.Database = identity.Database
	pool, err := pg.Open(t.Context(), intruder, pg.PoolConfig{})
	if pool != nil {
		pool.Close()
	}
	require.Error(t, err)
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "want a PostgreSQL error, got %v", err)
	assert.Equal(t, "42501", pgErr.Code, "insufficient_privilege: %s", pgErr.Message)
	assert.NotContains(t, err.Error(), billing.Password)

	// The identity role itself can connect: the refusal is about the role.
	own, err := pg.Open(t.Context(), identity, pg.PoolConfig{})
	require.NoError(t, err)
	own.Close()
}
