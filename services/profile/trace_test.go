package profile_test

import (
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	"github.com/authms/authms/services/servicestest"
)

// A request's correlation id and trace context travel with its events, and
// the profile created in reaction names the identity event as its cause.
func TestTraceFollowsTheRegistration(t *testing.T) {
	t.Parallel()
	env := servicestest.Start(t, "tenant", "identity", "risk", "profile")
	client := identityv1connect.NewIdentityServiceClient(env.HTTP, env.URL, env.Impersonate())

	const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	req := connect.NewRequest(&identityv1.RegisterUserRequest{
		TenantId: env.NewTenant(t), Email: "trace@example.com", Password: "a long passphrase here",
	})
	req.Header().Set("X-Correlation-Id", "signup-42")
	req.Header().Set("traceparent", traceparent)
	res, err := client.RegisterUser(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, "signup-42", res.Header().Get("X-Correlation-Id"))

	identity, err := env.JS.Stream(t.Context(), "IDENTITY")
	require.NoError(t, err)
	var created *jetstream.RawStreamMsg
	require.Eventually(t, func() bool {
		created, err = identity.GetLastMsgForSubject(t.Context(), "identity.user.created")
		return err == nil
	}, 15*time.Second, 20*time.Millisecond, "the relay publishes the event")
	assert.Equal(t, "signup-42", created.Header.Get("ce-correlationid"))
	assert.Equal(t, traceparent, created.Header.Get("traceparent"))

	profiles, err := env.JS.Stream(t.Context(), "PROFILE")
	require.NoError(t, err)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		msg, err := profiles.GetLastMsgForSubject(t.Context(), "profile.profile.created")
		if !assert.NoError(c, err) {
			return
		}
		assert.Equal(c, res.Msg.GetUser().GetId(), msg.Header.Get("ce-subject"))
		assert.Equal(c, "signup-42", msg.Header.Get("ce-correlationid"), "the reaction shares the correlation id")
		assert.Equal(c, created.Header.Get("ce-id"), msg.Header.Get("ce-causationid"), "and names its cause")
		assert.Equal(c, traceparent, msg.Header.Get("traceparent"))
	}, 15*time.Second, 20*time.Millisecond)

	// Without a header the server makes a correlation id.
	res, err = client.RegisterUser(t.Context(), connect.NewRequest(&identityv1.RegisterUserRequest{
		TenantId: env.NewTenant(t), Email: "trace2@example.com", Password: "a long passphrase here",
	}))
	require.NoError(t, err)
	_, err = uuid.Parse(res.Header().Get("X-Correlation-Id"))
	assert.NoError(t, err)
}
