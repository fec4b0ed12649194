package services_test

import (
	"context"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/events"
	adminv1 "github.com/authms/authms/schemas/gen/authms/admin/v1"
	"github.com/authms/authms/schemas/gen/authms/admin/v1/adminv1connect"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	"github.com/authms/authms/services"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/servicestest"
)

// streamsEnv runs identity (which projects the TENANT stream), tenant and
// risk, with a short tail heartbeat.
func streamsEnv(t *testing.T) *servicestest.Env {
	t.Helper()
	return servicestest.StartWith(t, servicestest.Options{TailHeartbeat: 50 * time.Millisecond}, "identity", "tenant", "risk")
}

func streamsClient(env *servicestest.Env, opts ...connect.ClientOption) adminv1connect.StreamServiceClient {
	return adminv1connect.NewStreamServiceClient(env.HTTP, env.URL, opts...)
}

func streamsToken(t *testing.T, env *servicestest.Env, tenant string, roles ...string) connect.ClientOption {
	t.Helper()
	return servicestest.Bearer(env.Token(t, tenant, uuid.NewString(), roles...))
}

func TestAdminListStreams(t *testing.T) {
	t.Parallel()
	env := streamsEnv(t)
	ctx := t.Context()
	tenant := env.NewTenant(t) // a TENANT event, which identity's projector consumes

	res, err := streamsClient(env, env.Operator()).ListStreams(ctx, connect.NewRequest(&adminv1.ListStreamsRequest{}))
	require.NoError(t, err)
	var names []string
	byName := map[string]*adminv1.StreamInfo{}
	for _, s := range res.Msg.GetStreams() {
		names = append(names, s.GetName())
		byName[s.GetName()] = s
	}
	assert.Equal(t, []string{"DLQ_IDENTITY", "DLQ_RISK", "DLQ_TENANT", "IDENTITY", "RISK", "TENANT"}, names,
		"every stream of the services run here, sorted")
	assert.True(t, byName["DLQ_TENANT"].GetDeadLetter())
	ts := byName["TENANT"]
	assert.False(t, ts.GetDeadLetter())
	assert.Equal(t, []string{"tenant.>"}, ts.GetSubjects())
	assert.GreaterOrEqual(t, ts.GetMessages(), uint64(1))
	assert.Equal(t, ts.GetMessages(), ts.GetLastSequence()-ts.GetFirstSequence()+1)
	assert.NotNil(t, ts.GetLastTime())
	require.NotEmpty(t, ts.GetConsumers(), "identity's tenant projector")
	consumers := make([]string, len(ts.GetConsumers()))
	for i, c := range ts.GetConsumers() {
		consumers[i] = c.GetName()
	}
	assert.True(t, slices.IsSorted(consumers), "%v", consumers)

	admin := streamsClient(env, streamsToken(t, env, tenant, auth.RoleAdmin))
	got, err := admin.ListStreams(ctx, connect.NewRequest(&adminv1.ListStreamsRequest{TenantId: tenant}))
	require.NoError(t, err, "a tenant admin reads the figures")
	assert.Len(t, got.Msg.GetStreams(), 6)
	for name, tc := range map[string]struct {
		client adminv1connect.StreamServiceClient
		tenant string
		want   connect.Code
	}{
		"admin without tenant_id": {client: admin, want: connect.CodeNotFound},
		"admin of another tenant": {client: admin, tenant: uuid.NewString(), want: connect.CodeNotFound},
		"user who is no admin":    {client: streamsClient(env, streamsToken(t, env, tenant)), tenant: tenant, want: connect.CodePermissionDenied},
		"service":                 {client: streamsClient(env, servicestest.Bearer(env.ServiceToken(t, "session"))), want: connect.CodePermissionDenied},
		"no credential":           {client: streamsClient(env), want: connect.CodeUnauthenticated},
	} {
		_, err := tc.client.ListStreams(ctx, connect.NewRequest(&adminv1.ListStreamsRequest{TenantId: tc.tenant}))
		assert.Equal(t, tc.want, connect.CodeOf(err), "%s: %v", name, err)
	}
}

// tail is one TailEvents call.
type tail struct {
	stream     *connect.ServerStreamForClient[adminv1.TailEventsResponse]
	cancel     context.CancelFunc
	heartbeats int
}

func openTail(t *testing.T, c adminv1connect.StreamServiceClient, req *adminv1.TailEventsRequest) *tail {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	stream, err := c.TailEvents(ctx, connect.NewRequest(req))
	if err != nil {
		cancel()
		require.NoError(t, err)
	}
	tl := &tail{stream: stream, cancel: cancel}
	t.Cleanup(tl.close)
	return tl
}

func (tl *tail) close() {
	tl.cancel()
	_ = tl.stream.Close()
}

// next returns the next event, counting the heartbeats before it.
func (tl *tail) next(t *testing.T) *adminv1.TailedEvent {
	t.Helper()
	for tl.stream.Receive() {
		if ev := tl.stream.Msg().GetEvent(); ev != nil {
			return ev
		}
		require.NotNil(t, tl.stream.Msg().GetHeartbeat(), "a message is an event or a heartbeat")
		tl.heartbeats++
	}
	require.NoError(t, tl.stream.Err(), "the tail ended")
	t.Fatal("the tail ended without an error")
	return nil
}

// heartbeat waits for the next heartbeat, failing on an event.
func (tl *tail) heartbeat(t *testing.T) {
	t.Helper()
	require.True(t, tl.stream.Receive(), "the tail ended: %v", tl.stream.Err())
	require.Nil(t, tl.stream.Msg().GetEvent(), "an event where only a heartbeat was due")
	require.NotNil(t, tl.stream.Msg().GetHeartbeat())
}

// tailError opens a tail that must fail and returns its error.
func tailError(t *testing.T, c adminv1connect.StreamServiceClient, req *adminv1.TailEventsRequest) error {
	t.Helper()
	tl := openTail(t, c, req)
	defer tl.close()
	for tl.stream.Receive() {
		require.NotNil(t, tl.stream.Msg().GetHeartbeat(), "a tail that should fail sent an event")
		tl.close()
		t.Fatal("a tail that should fail is running")
	}
	return tl.stream.Err()
}

func TestAdminTailEvents(t *testing.T) {
	t.Parallel()
	env := streamsEnv(t)
	ctx := t.Context()
	tenantA, tenantB := env.NewTenant(t), env.NewTenant(t)
	identity := identityv1connect.NewIdentityServiceClient(env.HTTP, env.URL)
	register := func(tenant string) string {
		t.Helper()
		res, err := identity.RegisterUser(ctx, connect.NewRequest(&identityv1.RegisterUserRequest{
			TenantId: tenant, Email: "u" + uuid.NewString()[:8] + "@example.com", Password: "a long passphrase " + uuid.NewString(),
		}))
		require.NoError(t, err)
		return res.Msg.GetUser().GetId()
	}
	a1, b1, a2 := register(tenantA), register(tenantB), register(tenantA)
	stream, err := env.JS.Stream(ctx, events.StreamName("identity"))
	require.NoError(t, err)
	consumers := func() int {
		t.Helper()
		info, err := stream.Info(ctx)
		require.NoError(t, err)
		return info.State.Consumers
	}
	before := consumers()

	operator := streamsClient(env, env.Operator())
	all := openTail(t, operator, &adminv1.TailEventsRequest{Subject: "identity.user.created", Last: 1000})
	var seen []string
	for len(seen) < 3 {
		ev := all.next(t)
		assert.Equal(t, "IDENTITY", ev.GetStream())
		assert.Equal(t, "identity.user.created", ev.GetSubject())
		seen = append(seen, ev.GetAggregateId())
	}
	assert.Equal(t, []string{a1, b1, a2}, seen, "the operator sees every tenant's events, in stream order")

	adminA := streamsClient(env, streamsToken(t, env, tenantA, auth.RoleAdmin))
	mine := openTail(t, adminA, &adminv1.TailEventsRequest{TenantId: tenantA, Subject: "identity.user.created", Last: services.DefaultTenantTailLast})
	ev := mine.next(t)
	assert.Equal(t, a1, ev.GetAggregateId())
	assert.Equal(t, tenantA, ev.GetTenantId())
	assert.Equal(t, "identity.user.created.v1", ev.GetEventType())
	assert.Equal(t, int64(1), ev.GetAggregateVersion())
	assert.NotEmpty(t, ev.GetEventId())
	assert.NotNil(t, ev.GetEventTime())
	assert.NotNil(t, ev.GetStoredTime())
	assert.Empty(t, ev.GetPayloadError())
	assert.Equal(t, a1, ev.GetPayload().GetFields()["userId"].GetStringValue(), "the payload decoded as protojson")
	assert.Equal(t, a2, mine.next(t).GetAggregateId(), "tenant B's event in between is not tenant A's admin's")

	// Live: a new event arrives at both tails; the quiet that follows
	// carries heartbeats.
	a3 := register(tenantA)
	assert.Equal(t, a3, mine.next(t).GetAggregateId())
	assert.Equal(t, a3, all.next(t).GetAggregateId())
	mine.heartbeat(t)
	assert.Greater(t, consumers(), before, "each tail reads through a consumer of its own")

	// Ending the calls deletes their consumers.
	mine.close()
	all.close()
	require.Eventually(t, func() bool { return consumers() == before }, 20*time.Second, 20*time.Millisecond,
		"the tails' consumers outlive their calls")

	// Every stream by default, DLQs when named; a filter picks its streams.
	defaults := openTail(t, operator, &adminv1.TailEventsRequest{Last: 1})
	got := map[string]bool{}
	for !got["IDENTITY"] || !got["TENANT"] {
		name := defaults.next(t).GetStream()
		assert.NotContains(t, name, "DLQ_", "dead-letter streams are tailed only when named")
		got[name] = true
	}
	defaults.close()
	// The client's close only ends the call; the server deletes the
	// tail's consumers as its handler returns.
	require.Eventually(t, func() bool { return consumers() == before }, 20*time.Second, 20*time.Millisecond,
		"the default tail's consumers outlive its call")

	for name, tc := range map[string]struct {
		client adminv1connect.StreamServiceClient
		req    *adminv1.TailEventsRequest
		want   connect.Code
	}{
		"admin without tenant_id": {client: adminA, req: &adminv1.TailEventsRequest{}, want: connect.CodeNotFound},
		"admin of another tenant": {client: adminA, req: &adminv1.TailEventsRequest{TenantId: tenantB}, want: connect.CodeNotFound},
		"user who is no admin": {client: streamsClient(env, streamsToken(t, env, tenantA)),
			req: &adminv1.TailEventsRequest{TenantId: tenantA}, want: connect.CodePermissionDenied},
		"service": {client: streamsClient(env, servicestest.Bearer(env.ServiceToken(t, "session"))),
			req: &adminv1.TailEventsRequest{}, want: connect.CodePermissionDenied},
		"no credential":             {client: streamsClient(env), req: &adminv1.TailEventsRequest{}, want: connect.CodeUnauthenticated},
		"a stream not run here":     {client: operator, req: &adminv1.TailEventsRequest{Streams: []string{"WALLET"}}, want: connect.CodeNotFound},
		"a malformed stream name":   {client: operator, req: &adminv1.TailEventsRequest{Streams: []string{"identity"}}, want: connect.CodeInvalidArgument},
		"a filter no stream holds":  {client: operator, req: &adminv1.TailEventsRequest{Streams: []string{"TENANT"}, Subject: "identity.>"}, want: connect.CodeInvalidArgument},
		"too many of the last ones": {client: operator, req: &adminv1.TailEventsRequest{Last: 1001}, want: connect.CodeInvalidArgument},
		"more of the last ones than an admin may": {client: adminA,
			req: &adminv1.TailEventsRequest{TenantId: tenantA, Last: services.DefaultTenantTailLast + 1}, want: connect.CodeInvalidArgument},
	} {
		err := tailError(t, tc.client, tc.req)
		assert.Equal(t, tc.want, connect.CodeOf(err), "%s: %v", name, err)
	}
	assert.Equal(t, before, consumers(), "refused tails leave no consumer")

	dlq := openTail(t, operator, &adminv1.TailEventsRequest{Streams: []string{"DLQ_IDENTITY"}})
	dlq.heartbeat(t) // an empty stream is followed, quietly
}

// tryTail opens a tail and returns it once the server answers with a
// heartbeat, or nil with the error that refused it.
func tryTail(t *testing.T, c adminv1connect.StreamServiceClient, req *adminv1.TailEventsRequest) (*tail, error) {
	t.Helper()
	tl := openTail(t, c, req)
	if !tl.stream.Receive() {
		tl.close()
		require.Error(t, tl.stream.Err(), "the tail ended without an error")
		return nil, tl.stream.Err()
	}
	require.NotNil(t, tl.stream.Msg().GetHeartbeat(), "an event on a tail of nothing new")
	return tl, nil
}

func TestAdminTailLimits(t *testing.T) {
	t.Parallel()
	env := servicestest.StartWith(t, servicestest.Options{
		TailHeartbeat: 50 * time.Millisecond,
		TailLimits:    services.TailLimits{PerTenant: 2, Total: 3},
	}, "tenant")
	tenantA, tenantB := uuid.NewString(), uuid.NewString()
	adminA := streamsClient(env, streamsToken(t, env, tenantA, auth.RoleAdmin))
	adminB := streamsClient(env, streamsToken(t, env, tenantB, auth.RoleAdmin))
	operator := streamsClient(env, env.Operator())
	reqA := &adminv1.TailEventsRequest{TenantId: tenantA}
	reqB := &adminv1.TailEventsRequest{TenantId: tenantB}
	open := func(c adminv1connect.StreamServiceClient, req *adminv1.TailEventsRequest) *tail {
		t.Helper()
		tl, err := tryTail(t, c, req)
		require.NoError(t, err)
		return tl
	}

	first := open(adminA, reqA)
	open(adminA, reqA)
	_, err := tryTail(t, adminA, reqA)
	require.Equal(t, connect.CodeResourceExhausted, connect.CodeOf(err), "a third tail of tenant A's admins: %v", err)
	assert.Contains(t, err.Error(), "already hold 2 tails open")

	open(adminB, reqB) // another tenant's admins have tails of their own
	_, err = tryTail(t, operator, &adminv1.TailEventsRequest{})
	require.Equal(t, connect.CodeResourceExhausted, connect.CodeOf(err), "a fourth tail in all, even the operator's: %v", err)
	assert.Contains(t, err.Error(), "already serves 3 tails")

	// Ending a tail frees its place once the server has deleted its
	// consumers.
	first.close()
	require.Eventually(t, func() bool {
		tl, err := tryTail(t, adminA, reqA)
		if err != nil {
			require.Equal(t, connect.CodeResourceExhausted, connect.CodeOf(err), "%v", err)
			return false
		}
		tl.close()
		return true
	}, 20*time.Second, 20*time.Millisecond, "an ended tail still counts")
}

// TestAdminTailEndsOnShutdown runs the platform behind the server authms
// dev runs, [services.NewServer] with [services.Platform.EndStreams]
// registered: its graceful shutdown must end an open tail with
// UNAVAILABLE, and complete, rather than wait for the tail to its
// deadline.
func TestAdminTailEndsOnShutdown(t *testing.T) {
	t.Parallel()
	env := streamsEnv(t)
	srv := services.NewServer("", env.Platform.Handler(), servicestest.Logger(t))
	srv.RegisterOnShutdown(env.Platform.EndStreams)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	c := adminv1connect.NewStreamServiceClient(env.HTTP, "http://"+ln.Addr().String(), env.Operator())
	tl, err := tryTail(t, c, &adminv1.TailEventsRequest{})
	require.NoError(t, err, "the tail runs: a heartbeat came")

	// A deadline well past what ending the tail takes, for a shutdown that
	// would otherwise wait forever.
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx), "the shutdown completes: the tail ended")
	require.ErrorIs(t, <-served, http.ErrServerClosed)
	for tl.stream.Receive() {
		require.NotNil(t, tl.stream.Msg().GetHeartbeat(), "no event was published")
	}
	require.Equal(t, connect.CodeUnavailable, connect.CodeOf(tl.stream.Err()), "%v", tl.stream.Err())
	assert.Contains(t, tl.stream.Err().Error(), "shutting down")

	// The platform still serves other calls, but no new tail.
	_, err = c.ListStreams(t.Context(), connect.NewRequest(&adminv1.ListStreamsRequest{}))
	require.Error(t, err, "the server is shut down")
	local := streamsClient(env, env.Operator())
	assert.Equal(t, connect.CodeUnavailable, connect.CodeOf(tailError(t, local, &adminv1.TailEventsRequest{})),
		"a tail opened after EndStreams fails at once")
}
