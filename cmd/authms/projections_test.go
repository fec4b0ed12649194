package main

import (
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	"github.com/authms/authms/services/servicestest"
)

func runCLI(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	c, out := dlqCLI(t, env, "", false)
	err := c.run(t.Context(), func() {}, args)
	return out.String(), err
}

func TestProjectionsListRebuildAndRepublish(t *testing.T) {
	t.Parallel()
	svc := servicestest.Start(t, "tenant", "identity", "risk", "billing")
	env := map[string]string{"NATS_URL": svc.NATS.URL(), "AUTHMS_API_URL": svc.URL, "AUTHMS_OPERATOR_TOKEN": svc.OperatorToken}
	ident := identityv1connect.NewIdentityServiceClient(svc.HTTP, svc.URL, svc.Impersonate())
	tenant := svc.NewTenant(t)
	for _, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		_, err := ident.RegisterUser(t.Context(), connect.NewRequest(&identityv1.RegisterUserRequest{
			TenantId: tenant, Email: email, Password: "plover-quartz-89-lantern"}))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		out, err := runCLI(t, env, "projections", "ls")
		return err == nil && containsAll(out, "billing.user_profiles", "IDENTITY", "3 ", "caught_up", "yes")
	}, 15*time.Second, 50*time.Millisecond)

	out, err := runCLI(t, env, "projections", "rebuild", "billing.user_profiles")
	require.Error(t, err, "no terminal and no --yes")
	assert.Contains(t, err.Error(), "--yes")
	out, err = runCLI(t, env, "projections", "rebuild", "--yes", "billing.user_profiles")
	require.NoError(t, err, out)
	assert.Contains(t, out, "rebuilt billing.user_profiles: 3 events replayed up to sequence 3")

	_, err = runCLI(t, env, "projections", "rebuild", "--yes", "billing.nope")
	require.Error(t, err)
	assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err))
	_, err = runCLI(t, env, "projections", "rebuild", "--yes", "billing")
	require.ErrorIs(t, err, errUsage)

	// The IDENTITY stream is lost; republishing rebuilds it from the events table.
	require.NoError(t, svc.JS.DeleteStream(t.Context(), "IDENTITY"))
	out, err = runCLI(t, env, "events", "republish", "--yes", "identity")
	require.NoError(t, err, out)
	assert.Contains(t, out, "republished identity: 3 events stored, 0 sent again and dropped by the stream as duplicates")
	stream, err := svc.JS.Stream(t.Context(), "IDENTITY")
	require.NoError(t, err)
	assert.Equal(t, uint64(3), stream.CachedInfo().State.Msgs)
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
