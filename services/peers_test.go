package services_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/schemas/gen/authms/tenant/v1/tenantv1connect"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/servicestest"
)

// Services reach each other in process over real HTTP, through the same
// handler stack remote clients meet, with every Connect protocol.
func TestPeersCallInProcess(t *testing.T) {
	t.Parallel()
	env := servicestest.Start(t, "tenant")
	httpClient, url := env.Platform.Peers().Client("tenant")

	protocols := []struct {
		name string
		opts []connect.ClientOption
	}{
		{name: "connect", opts: []connect.ClientOption{env.Impersonate(auth.RoleAdmin)}},
		{name: "grpc", opts: []connect.ClientOption{connect.WithGRPC(), env.Impersonate(auth.RoleAdmin)}},
		{name: "grpc-web", opts: []connect.ClientOption{connect.WithGRPCWeb(), env.Impersonate(auth.RoleAdmin)}},
	}
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			client := tenantv1connect.NewTenantServiceClient(httpClient, url, p.opts...)
			created, err := client.CreateTenant(t.Context(), connect.NewRequest(&tenantv1.CreateTenantRequest{Slug: "peers-" + p.name, DisplayName: "Peers"}))
			require.NoError(t, err)
			got, err := client.GetTenant(t.Context(), connect.NewRequest(&tenantv1.GetTenantRequest{TenantId: created.Msg.GetTenant().GetId()}))
			require.NoError(t, err)
			assert.Equal(t, "peers-"+p.name, got.Msg.GetTenant().GetSlug())

			// Bad input meets the same validation as from outside.
			_, err = client.CreateTenant(t.Context(), connect.NewRequest(&tenantv1.CreateTenantRequest{Slug: "-", DisplayName: "x"}))
			assert.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
		})
	}

	// A service that is not running here answers as unknown.
	idClient, idURL := env.Platform.Peers().Client("identity")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, idURL+"/authms.identity.v1.IdentityService/GetUser", http.NoBody)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := idClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	// After Close, calls fail instead of hanging.
	require.NoError(t, env.Platform.Close())
	client := tenantv1connect.NewTenantServiceClient(httpClient, url, env.Impersonate())
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = client.GetTenant(ctx, connect.NewRequest(&tenantv1.GetTenantRequest{TenantId: "3f8e2a51-6c0d-4b7e-9a12-5d4c3b2a1f00"}))
	assert.Equal(t, connect.CodeUnavailable, connect.CodeOf(err))
}
