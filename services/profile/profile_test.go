package profile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/natstest"
	"github.com/authms/authms/events/pg"
	"github.com/authms/authms/events/pg/pgtest"
	"github.com/authms/authms/projections"
	"github.com/authms/authms/projections/projectionstest"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	profilev1 "github.com/authms/authms/schemas/gen/authms/profile/v1"
	"github.com/authms/authms/schemas/gen/authms/profile/v1/profilev1connect"
	"github.com/authms/authms/services/internal/platform"
	"github.com/authms/authms/services/internal/rpc"
)

type noSecrets struct{}

func (noSecrets) Key(context.Context, string) ([]byte, error) {
	return nil, errors.New("the profile service uses no keys")
}

// fixture is a profile service on its own database, with its API served over
// HTTP.
type fixture struct {
	svc    *Service
	pool   *pgxpool.Pool
	js     jetstream.JetStream
	client profilev1connect.ProfileServiceClient
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
	svc, err := New(platform.Deps{Service: Name, Pool: pool, JS: js, Logger: logger, Secrets: noSecrets{}, HandlerOptions: opts})
	require.NoError(tb, err)
	mux := http.NewServeMux()
	svc.Mount(mux)
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return &fixture{
		svc:    svc,
		pool:   pool,
		js:     js,
		client: profilev1connect.NewProfileServiceClient(srv.Client(), srv.URL),
		apply:  projections.Handler(svc.defaultProfiles(), pool),
	}
}

// userCreated builds identity.user.created as identity's relay publishes it.
func userCreated(tb testing.TB, tenantID, userID uuid.UUID, email string) events.Event {
	tb.Helper()
	payload := &identityv1.UserCreated{UserId: userID.String(), TenantId: tenantID.String(), Email: email, CreateTime: timestamppb.Now()}
	data, err := proto.Marshal(payload)
	require.NoError(tb, err)
	return events.Event{
		ID: uuid.Must(uuid.NewV7()), Service: "identity", AggregateType: "user", AggregateID: userID.String(), Name: "created",
		TenantID: tenantID.String(), Version: 1, Time: time.Now().UTC(),
		MessageName: payload.ProtoReflect().Descriptor().FullName(), Data: data,
	}
}

// given creates a user's default profile through the projector.
func (f *fixture) given(tb testing.TB, email string) (tenantID, userID uuid.UUID) {
	tb.Helper()
	tenantID, userID = uuid.New(), uuid.New()
	require.NoError(tb, f.apply(tb.Context(), userCreated(tb, tenantID, userID, email)))
	return tenantID, userID
}

func (f *fixture) get(tb testing.TB, tenantID, userID uuid.UUID) (*profilev1.Profile, error) {
	tb.Helper()
	res, err := f.client.GetProfile(tb.Context(), connect.NewRequest(&profilev1.GetProfileRequest{
		TenantId: tenantID.String(), UserId: userID.String(),
	}))
	if err != nil {
		return nil, err
	}
	return res.Msg.GetProfile(), nil
}

func (f *fixture) update(tb testing.TB, req *profilev1.UpdateProfileRequest) (*profilev1.Profile, error) {
	tb.Helper()
	res, err := f.client.UpdateProfile(tb.Context(), connect.NewRequest(req))
	if err != nil {
		return nil, err
	}
	return res.Msg.GetProfile(), nil
}

// recorded returns the profile aggregate's events, decoded.
func (f *fixture) recorded(tb testing.TB, userID uuid.UUID) ([]events.Event, []proto.Message) {
	tb.Helper()
	var evs []events.Event
	require.NoError(tb, pg.InTx(tb.Context(), f.pool, func(tx pgx.Tx) error {
		var err error
		evs, err = f.svc.events.Load(tb.Context(), tx, userID.String())
		return err
	}))
	msgs := make([]proto.Message, len(evs))
	for i, ev := range evs {
		m, err := ev.Payload()
		require.NoError(tb, err)
		msgs[i] = m
	}
	return evs, msgs
}

func (f *fixture) outboxRows(tb testing.TB) int {
	tb.Helper()
	var n int
	require.NoError(tb, f.pool.QueryRow(tb.Context(), "SELECT count(*) FROM outbox").Scan(&n))
	return n
}

func requireCode(tb testing.TB, err error, want connect.Code) {
	tb.Helper()
	require.Error(tb, err)
	require.Equal(tb, want, connect.CodeOf(err), "error: %v", err)
}

func TestDefaultProfileFromUserCreated(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenantID, userID := uuid.New(), uuid.New()
	created := userCreated(t, tenantID, userID, "ada.lovelace@example.com")

	// Given identity.user.created, when the projector applies it (twice: a
	// redelivery, and once more under a new event id as in a replay)...
	require.NoError(t, f.apply(t.Context(), created))
	require.NoError(t, f.apply(t.Context(), created))
	replayed := created
	replayed.ID = uuid.Must(uuid.NewV7())
	require.NoError(t, f.apply(t.Context(), replayed))

	// ...then the user has the default profile...
	p, err := f.get(t, tenantID, userID)
	require.NoError(t, err)
	assert.Empty(t, cmp.Diff(p, &profilev1.Profile{
		UserId: userID.String(), TenantId: tenantID.String(),
		DisplayName: "ada.lovelace", Locale: "en", Timezone: "UTC", Version: 1,
	}, protocmp.Transform(), protocmp.IgnoreFields(&profilev1.Profile{}, "create_time", "update_time")))
	assert.Equal(t, p.GetCreateTime().AsTime(), p.GetUpdateTime().AsTime())

	// ...and exactly one profile.profile.created was recorded, caused by the
	// identity event, and queued for the PROFILE stream.
	evs, msgs := f.recorded(t, userID)
	require.Len(t, evs, 1)
	assert.Equal(t, "profile.profile.created", evs[0].Subject())
	assert.Equal(t, tenantID.String(), evs[0].TenantID)
	assert.Equal(t, int64(1), evs[0].Version)
	assert.Equal(t, created.ID.String(), evs[0].CausationID)
	assert.Empty(t, cmp.Diff(msgs[0], &profilev1.ProfileCreated{
		UserId: userID.String(), TenantId: tenantID.String(), DisplayName: "ada.lovelace", Locale: "en", Timezone: "UTC",
	}, protocmp.Transform()))
	assert.Equal(t, 1, f.outboxRows(t))
}

func TestGetProfileNotFound(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenantID, userID := f.given(t, "someone@example.com")

	_, err := f.get(t, uuid.New(), userID)
	requireCode(t, err, connect.CodeNotFound)
	_, err = f.get(t, tenantID, uuid.New())
	requireCode(t, err, connect.CodeNotFound)
	_, err = f.update(t, &profilev1.UpdateProfileRequest{TenantId: uuid.NewString(), UserId: userID.String(), Locale: proto.String("de")})
	requireCode(t, err, connect.CodeNotFound)
}

func TestUpdateProfile(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenantID, userID := f.given(t, "grace@example.com")
	before, err := f.get(t, tenantID, userID)
	require.NoError(t, err)

	// Only the timezone is given: the rest stays.
	p, err := f.update(t, &profilev1.UpdateProfileRequest{
		TenantId: tenantID.String(), UserId: userID.String(), Timezone: proto.String("Europe/Berlin"),
	})
	require.NoError(t, err)
	assert.Equal(t, "grace", p.GetDisplayName())
	assert.Equal(t, "en", p.GetLocale())
	assert.Equal(t, "Europe/Berlin", p.GetTimezone())
	assert.Equal(t, int64(2), p.GetVersion())
	assert.Equal(t, before.GetCreateTime().AsTime(), p.GetCreateTime().AsTime())
	assert.True(t, p.GetUpdateTime().AsTime().After(before.GetUpdateTime().AsTime()) ||
		p.GetUpdateTime().AsTime().Equal(before.GetUpdateTime().AsTime()))

	// With the right expected version, several fields at once.
	p, err = f.update(t, &profilev1.UpdateProfileRequest{
		TenantId: tenantID.String(), UserId: userID.String(),
		DisplayName: proto.String("Grace Hopper"), Locale: proto.String("pt-BR"), ExpectedVersion: proto.Int64(2),
	})
	require.NoError(t, err)
	assert.Equal(t, int64(3), p.GetVersion())
	got, err := f.get(t, tenantID, userID)
	require.NoError(t, err)
	assert.Empty(t, cmp.Diff(got, p, protocmp.Transform()))

	// Each change recorded profile.profile.updated with the whole profile.
	evs, msgs := f.recorded(t, userID)
	require.Len(t, evs, 3)
	assert.Equal(t, "profile.profile.updated", evs[1].Subject())
	assert.Equal(t, "profile.profile.updated", evs[2].Subject())
	assert.Empty(t, cmp.Diff(msgs[1], &profilev1.ProfileUpdated{
		UserId: userID.String(), TenantId: tenantID.String(), DisplayName: "grace", Locale: "en", Timezone: "Europe/Berlin",
	}, protocmp.Transform()))
	assert.Empty(t, cmp.Diff(msgs[2], &profilev1.ProfileUpdated{
		UserId: userID.String(), TenantId: tenantID.String(), DisplayName: "Grace Hopper", Locale: "pt-BR", Timezone: "Europe/Berlin",
	}, protocmp.Transform()))

	// A stale expected version is Aborted and changes nothing.
	_, err = f.update(t, &profilev1.UpdateProfileRequest{
		TenantId: tenantID.String(), UserId: userID.String(), Locale: proto.String("fr"), ExpectedVersion: proto.Int64(2),
	})
	requireCode(t, err, connect.CodeAborted)

	// Setting what is already there records nothing.
	p, err = f.update(t, &profilev1.UpdateProfileRequest{
		TenantId: tenantID.String(), UserId: userID.String(), Locale: proto.String("pt-BR"),
	})
	require.NoError(t, err)
	assert.Equal(t, int64(3), p.GetVersion())
	evs, _ = f.recorded(t, userID)
	assert.Len(t, evs, 3)
	assert.Equal(t, 3, f.outboxRows(t))
}

func TestConcurrentUpdatesWithSameExpectedVersion(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenantID, userID := f.given(t, "alan@example.com")

	// 20 updates race, all expecting version 1: exactly one wins.
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = f.update(t, &profilev1.UpdateProfileRequest{
				TenantId: tenantID.String(), UserId: userID.String(),
				DisplayName: proto.String(fmt.Sprintf("Alan %d", i)), ExpectedVersion: proto.Int64(1),
			})
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		if err == nil {
			require.Equal(t, -1, winner, "a second update succeeded")
			winner = i
			continue
		}
		require.Equal(t, connect.CodeAborted, connect.CodeOf(err), "update %d: %v", i, err)
	}
	require.NotEqual(t, -1, winner, "no update succeeded")

	p, err := f.get(t, tenantID, userID)
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("Alan %d", winner), p.GetDisplayName())
	assert.Equal(t, int64(2), p.GetVersion())
	evs, _ := f.recorded(t, userID)
	require.Len(t, evs, 2)
	for i, ev := range evs {
		assert.Equal(t, int64(i+1), ev.Version, "versions are gap-free")
	}
}

func TestUpdateProfileRejectsBadInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenantID, userID := f.given(t, "linus@example.com")

	tests := []struct {
		name  string
		req   *profilev1.UpdateProfileRequest
		field string
	}{
		{name: "unknown time zone", field: "timezone",
			req: &profilev1.UpdateProfileRequest{Timezone: proto.String("Mars/Olympus_Mons")}},
		{name: "host-local time zone", field: "timezone",
			req: &profilev1.UpdateProfileRequest{Timezone: proto.String("Local")}},
		{name: "path in time zone", field: "timezone",
			req: &profilev1.UpdateProfileRequest{Timezone: proto.String("../../etc/passwd")}},
		{name: "empty time zone", field: "timezone",
			req: &profilev1.UpdateProfileRequest{Timezone: proto.String("")}},
		{name: "bad locale", field: "locale",
			req: &profilev1.UpdateProfileRequest{Locale: proto.String("English please")}},
		{name: "zero expected version", field: "expected_version",
			req: &profilev1.UpdateProfileRequest{Locale: proto.String("de"), ExpectedVersion: proto.Int64(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.TenantId, tt.req.UserId = tenantID.String(), userID.String()
			_, err := f.update(t, tt.req)
			requireCode(t, err, connect.CodeInvalidArgument)
			assert.Equal(t, []string{tt.field}, violatedFields(t, err))
		})
	}

	// Nothing was written.
	p, err := f.get(t, tenantID, userID)
	require.NoError(t, err)
	assert.Equal(t, int64(1), p.GetVersion())
	assert.Equal(t, "UTC", p.GetTimezone())
	assert.Equal(t, 1, f.outboxRows(t))
}

// violatedFields returns the fields named in err's buf.validate.Violations.
func violatedFields(tb testing.TB, err error) []string {
	tb.Helper()
	var ce *connect.Error
	require.True(tb, errors.As(err, &ce))
	var fields []string
	for _, d := range ce.Details() {
		v, derr := d.Value()
		require.NoError(tb, derr)
		if vs, ok := v.(*validatepb.Violations); ok {
			for _, viol := range vs.GetViolations() {
				for _, el := range viol.GetField().GetElements() {
					fields = append(fields, el.GetFieldName())
				}
			}
		}
	}
	return fields
}

func TestDefaultProfilePoison(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ev := userCreated(t, uuid.New(), uuid.New(), "x@example.com")
	ev.Data, _ = proto.Marshal(&identityv1.UserCreated{UserId: "42", TenantId: uuid.NewString(), Email: "x@example.com"})
	err := f.apply(t.Context(), ev)
	require.Error(t, err)
	assert.True(t, events.IsPermanent(err), "%v", err)
	assert.Equal(t, 0, f.outboxRows(t))
}

// TestProjectorConsumesIdentityStream runs the service as the platform does.
func TestProjectorConsumesIdentityStream(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	require.NoError(t, events.EnsureStreams(t.Context(), f.js, "identity", events.StreamConfig{}))
	require.NoError(t, events.EnsureStreams(t.Context(), f.js, Name, events.StreamConfig{}))
	projectionstest.Run(t, projections.Config{Pool: f.pool, JS: f.js, Logger: slog.New(slog.DiscardHandler)}, f.svc.Projectors()...)

	tenantID, userID := uuid.New(), uuid.New()
	ev := userCreated(t, tenantID, userID, "margaret@example.com")
	msg := nats.NewMsg(ev.Subject())
	for k, v := range ev.Headers() {
		msg.Header.Set(k, v)
	}
	msg.Data = ev.Data
	_, err := f.js.PublishMsg(t.Context(), msg, jetstream.WithMsgID(ev.ID.String()))
	require.NoError(t, err)

	require.Eventually(t, func() bool {
		p, err := f.get(t, tenantID, userID)
		return err == nil && p.GetDisplayName() == "margaret"
	}, 10*time.Second, 20*time.Millisecond)
}
