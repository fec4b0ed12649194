package servicestest_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/pg"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/services"
	"github.com/authms/authms/services/servicestest"
)

func TestStartServesHealthOverEveryProtocol(t *testing.T) {
	t.Parallel()
	env := servicestest.Start(t)

	protocols := []struct {
		name string
		opts []connect.ClientOption
	}{
		{name: "connect", opts: nil},
		{name: "connect-get", opts: []connect.ClientOption{connect.WithHTTPGet()}},
		{name: "grpc", opts: []connect.ClientOption{connect.WithGRPC()}},
		{name: "grpc-web", opts: []connect.ClientOption{connect.WithGRPCWeb()}},
	}
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			client := grpchealth.NewClient(env.HTTP, env.URL, p.opts...)
			for _, service := range append([]string{""}, services.Names()...) {
				res, err := client.Check(t.Context(), &grpchealth.CheckRequest{Service: service})
				require.NoError(t, err, "service %q", service)
				assert.Equal(t, grpchealth.StatusServing, res.Status, "service %q", service)
			}
			_, err := client.Check(t.Context(), &grpchealth.CheckRequest{Service: "nosuchservice"})
			assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err))
		})
	}
}

func TestStartServesReflection(t *testing.T) {
	t.Parallel()
	env := servicestest.Start(t, "identity")

	stream := grpcreflect.NewClient(env.HTTP, env.URL, connect.WithGRPC()).NewStream(t.Context())
	t.Cleanup(func() { _, _ = stream.Close() })
	names, err := stream.ListServices()
	require.NoError(t, err)
	assert.Contains(t, names, protoreflect.FullName("grpc.health.v1.Health"))
	assert.Contains(t, names, protoreflect.FullName("authms.identity.v1.IdentityService"),
		"the identity service's API, registered by its generated code")
}

func TestStartAllowsBrowsers(t *testing.T) {
	t.Parallel()
	env := servicestest.StartWith(t, servicestest.Options{AllowedOrigins: []string{"https://console.example.com"}}, "wallet")

	req, err := http.NewRequestWithContext(t.Context(), http.MethodOptions, env.URL+"/grpc.health.v1.Health/Check", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "https://console.example.com")
	req.Header.Set("Access-Control-Request-Method", http.MethodPost)
	// As browsers send it: lowercase and sorted.
	req.Header.Set("Access-Control-Request-Headers", "authorization,connect-protocol-version,content-type")
	res, err := env.HTTP.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = res.Body.Close() })
	assert.Equal(t, http.StatusNoContent, res.StatusCode)
	assert.Equal(t, "https://console.example.com", res.Header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, res.Header.Get("Access-Control-Allow-Headers"), "authorization")
}

func TestStartGivesEachServiceItsOwnRole(t *testing.T) {
	t.Parallel()
	env := servicestest.Start(t)

	for _, name := range services.Names() {
		var user, db string
		err := env.Pool(name).QueryRow(t.Context(), "SELECT current_user, current_database()").Scan(&user, &db)
		require.NoError(t, err, name)
		assert.Equal(t, env.PG.Naming().Role(name), user, name)
		assert.Equal(t, env.PG.Naming().Database(name), db, name)

		var super bool
		require.NoError(t, env.Pool(name).QueryRow(t.Context(),
			"SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super), name)
		assert.False(t, super, "%s's role is not a superuser", name)

		_, err = env.JS.Stream(t.Context(), events.StreamName(name))
		require.NoError(t, err, "%s's stream exists", name)
		_, err = env.JS.Stream(t.Context(), events.DLQStreamName(name))
		require.NoError(t, err, "%s's dead-letter stream exists", name)
	}
}

// appendUserCreated records an identity event in identity's own database,
// as a command would.
func appendUserCreated(t *testing.T, env *servicestest.Env, email string) *identityv1.UserCreated {
	t.Helper()
	payload := &identityv1.UserCreated{UserId: uuid.NewString(), TenantId: "tenant-1", Email: email}
	err := pg.InTx(t.Context(), env.Pool("identity"), func(tx pgx.Tx) error {
		_, err := events.NewStore("identity").Append(t.Context(), tx,
			events.Aggregate{Type: "user", ID: payload.UserId, TenantID: payload.TenantId}, 0,
			events.Change{Name: "created", Payload: payload})
		return err
	})
	require.NoError(t, err)
	return payload
}

func lastUserCreated(ctx context.Context, t *testing.T, env *servicestest.Env) (*identityv1.UserCreated, bool) {
	t.Helper()
	stream, err := env.JS.Stream(ctx, events.StreamName("identity"))
	require.NoError(t, err)
	msg, err := stream.GetLastMsgForSubject(ctx, "identity.user.created")
	if err != nil {
		return nil, false
	}
	ev, err := events.FromMsg(msg.Subject, msg.Header, msg.Data)
	require.NoError(t, err)
	var got identityv1.UserCreated
	require.NoError(t, ev.Unmarshal(&got))
	return &got, true
}

func TestStartRunsRelays(t *testing.T) {
	t.Parallel()
	env := servicestest.Start(t, "identity")

	want := appendUserCreated(t, env, "ada@example.com")
	require.Eventually(t, func() bool {
		got, ok := lastUserCreated(t.Context(), t, env)
		return ok && proto.Equal(got, want)
	}, 10*time.Second, 20*time.Millisecond, "the relay publishes the outbox to the IDENTITY stream")
}

func TestCloseDrainsOutbox(t *testing.T) {
	t.Parallel()
	env := servicestest.Start(t, "identity")
	require.Eventually(t, func() bool { return env.Platform.Relay("identity").Stats().Active },
		10*time.Second, 10*time.Millisecond, "identity's relay becomes active")

	want := appendUserCreated(t, env, "grace@example.com")
	require.NoError(t, env.Platform.Close())

	got, ok := lastUserCreated(t.Context(), t, env)
	require.True(t, ok, "the event reached the stream before Close returned")
	assert.Empty(t, cmp.Diff(got, want, protocmp.Transform()))

	// After Close the process reports itself not serving.
	client := grpchealth.NewClient(env.HTTP, env.URL)
	for _, service := range []string{"", "identity", "authms.identity.v1.IdentityService"} {
		res, err := client.Check(t.Context(), &grpchealth.CheckRequest{Service: service})
		require.NoError(t, err)
		assert.Equal(t, grpchealth.StatusNotServing, res.Status, "service %q", service)
	}
}
