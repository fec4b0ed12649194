package services_test

import (
	"fmt"
	"net/http"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	adminv1 "github.com/authms/authms/schemas/gen/authms/admin/v1"
	"github.com/authms/authms/schemas/gen/authms/admin/v1/adminv1connect"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	sessionv1 "github.com/authms/authms/schemas/gen/authms/session/v1"
	"github.com/authms/authms/schemas/gen/authms/session/v1/sessionv1connect"
	"github.com/authms/authms/services/servicestest"
)

// TestBrowserProtocols walks the console's path over the protocols
// browsers and other clients use: gRPC-web over HTTP/1.1 (what a browser
// without Connect speaks), gRPC over HTTP/2 and Connect. A user
// registers, logs in and reads their account with the access token (an
// authenticated unary call), and the operator follows a projection
// rebuild (a server stream) to its end.
func TestBrowserProtocols(t *testing.T) {
	t.Parallel()
	env := servicestest.Start(t, "tenant", "identity", "risk", "session")
	tenantID := env.NewTenant(t)
	http1 := &http.Client{}
	t.Cleanup(http1.CloseIdleConnections)

	protocols := []struct {
		name   string
		client connect.HTTPClient
		opts   []connect.ClientOption
	}{
		{name: "grpc-web", client: http1, opts: []connect.ClientOption{connect.WithGRPCWeb()}},
		{name: "grpc", client: env.HTTP, opts: []connect.ClientOption{connect.WithGRPC()}},
		{name: "connect", client: http1},
	}
	for _, p := range protocols {
		// One at a time: rebuilds of one projection do not run side by side.
		t.Run(p.name, func(t *testing.T) {
			email := fmt.Sprintf("ada-%s@example.com", p.name)
			const password = "correct horse battery staple"
			users := identityv1connect.NewIdentityServiceClient(p.client, env.URL, p.opts...)
			reg, err := users.RegisterUser(t.Context(), connect.NewRequest(&identityv1.RegisterUserRequest{TenantId: tenantID, Email: email, Password: password}))
			require.NoError(t, err)
			userID := reg.Msg.GetUser().GetId()
			require.NotEmpty(t, userID)

			login, err := sessionv1connect.NewSessionServiceClient(p.client, env.URL, p.opts...).Login(t.Context(), connect.NewRequest(&sessionv1.LoginRequest{
				TenantId: tenantID, Email: email, Password: password,
			}))
			require.NoError(t, err)
			assert.Equal(t, userID, login.Msg.GetSession().GetUserId())
			assert.Equal(t, tenantID, login.Msg.GetSession().GetTenantId())
			assert.Equal(t, "Bearer", login.Msg.GetTokens().GetTokenType())

			asUser := identityv1connect.NewIdentityServiceClient(p.client, env.URL,
				append(p.opts, servicestest.Bearer(login.Msg.GetTokens().GetAccessToken()))...)
			got, err := asUser.GetUser(t.Context(), connect.NewRequest(&identityv1.GetUserRequest{TenantId: tenantID, UserId: userID}))
			require.NoError(t, err)
			assert.Equal(t, email, got.Msg.GetUser().GetEmail())
			assert.Equal(t, userID, got.Msg.GetUser().GetId())
			_, err = identityv1connect.NewIdentityServiceClient(p.client, env.URL, p.opts...).
				GetUser(t.Context(), connect.NewRequest(&identityv1.GetUserRequest{TenantId: tenantID, UserId: userID}))
			assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "without the token")

			projections := adminv1connect.NewProjectionServiceClient(p.client, env.URL, append(p.opts, env.Operator())...)
			stream, err := projections.RebuildProjection(t.Context(), connect.NewRequest(&adminv1.RebuildProjectionRequest{Service: "risk", Name: "tenant_lockout_policies"}))
			require.NoError(t, err)
			var phases []string
			var last *adminv1.RebuildProjectionResponse
			for stream.Receive() {
				last = stream.Msg()
				if len(phases) == 0 || phases[len(phases)-1] != last.GetPhase() {
					phases = append(phases, last.GetPhase())
				}
			}
			require.NoError(t, stream.Err())
			require.NoError(t, stream.Close())
			require.NotNil(t, last, "the stream sent progress")
			assert.Equal(t, "done", last.GetPhase())
			assert.Greater(t, len(phases), 1, "progress before the end: %v", phases)
			assert.GreaterOrEqual(t, last.GetReplayed(), uint64(1), "the tenant's creation at least")
			assert.NotZero(t, last.GetLastSequence())
			assert.Zero(t, last.GetSkipped())
		})
	}
}
