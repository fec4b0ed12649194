package identity_test

import (
	"fmt"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/schemas/gen/authms/tenant/v1/tenantv1connect"
)

// Identity registers users only in tenants it knows to be active, and a
// login in any other tenant fails as a wrong password does.
func TestUnknownAndSuspendedTenantsAreRefused(t *testing.T) {
	t.Parallel()
	e := start(t)
	tenants := tenantv1connect.NewTenantServiceClient(e.HTTP, e.URL, e.Impersonate())
	tenant := e.NewTenant(t)
	u := e.register(t, tenant, "ada@example.com")
	_, wrong := e.authenticate(t, tenant, "ada@example.com", "a wrong password here")
	require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(wrong))
	bcryptHash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	require.NoError(t, err)

	refused := func(t *testing.T, tenant string) {
		t.Helper()
		_, err := e.client.RegisterUser(t.Context(), connect.NewRequest(&identityv1.RegisterUserRequest{
			TenantId: tenant, Email: "grace@example.com", Password: password,
		}))
		assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "RegisterUser")
		assert.EqualError(t, err, "not_found: tenant not found")
		_, err = e.client.ImportUser(t.Context(), connect.NewRequest(&identityv1.ImportUserRequest{
			TenantId: tenant, Email: "grace@example.com", BcryptHash: string(bcryptHash),
		}))
		assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "ImportUser")
		assert.EqualError(t, err, "not_found: tenant not found")
		_, err = e.authenticate(t, tenant, "ada@example.com", password)
		assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "AuthenticateUser, the right password")
		assert.Equal(t, wrong.Error(), err.Error(), "reads as a wrong password")
		assert.Equal(t, 0, e.count(t, "SELECT count(*) FROM users WHERE tenant_id = $1 AND email = 'grace@example.com'", tenant))
	}
	t.Run("an unknown tenant", func(t *testing.T) { refused(t, uuid.NewString()) })

	t.Run("a suspended tenant", func(t *testing.T) {
		_, err := tenants.SuspendTenant(t.Context(), connect.NewRequest(&tenantv1.SuspendTenantRequest{TenantId: tenant}))
		require.NoError(t, err)
		e.WaitTenant(t, tenant, "suspended")
		refused(t, tenant)
	})

	t.Run("a re-activated tenant", func(t *testing.T) {
		_, err := tenants.ReactivateTenant(t.Context(), connect.NewRequest(&tenantv1.ReactivateTenantRequest{TenantId: tenant}))
		require.NoError(t, err)
		e.WaitTenant(t, tenant, "active")
		res, err := e.authenticate(t, tenant, "ada@example.com", password)
		require.NoError(t, err)
		assert.Equal(t, u.GetId(), res.GetUserId())
		grace := e.register(t, tenant, "grace@example.com")
		assert.Equal(t, tenant, grace.GetTenantId())
	})
}

// CreateTenant's position, passed as RegisterUser's min_position, makes a
// tenant usable the moment it is created: identity waits until it has
// projected the tenant instead of answering that it does not know it.
func TestRegisterUserWaitsForTheTenantsPosition(t *testing.T) {
	t.Parallel()
	e := start(t)
	tenants := tenantv1connect.NewTenantServiceClient(e.HTTP, e.URL, e.Operator())
	for i := range 5 {
		created, err := tenants.CreateTenant(t.Context(), connect.NewRequest(&tenantv1.CreateTenantRequest{
			Slug: fmt.Sprintf("fresh-%d-%s", i, uuid.NewString()[:8]), DisplayName: "Fresh",
		}))
		require.NoError(t, err)
		pos := created.Msg.GetPosition()
		require.NotNil(t, pos, "CreateTenant reports where its event landed")
		assert.Equal(t, "TENANT", pos.GetStream())
		res, err := e.client.RegisterUser(t.Context(), connect.NewRequest(&identityv1.RegisterUserRequest{
			TenantId: created.Msg.GetTenant().GetId(), Email: "first@example.com", Password: password, MinPosition: pos,
		}))
		require.NoError(t, err)
		assert.Equal(t, created.Msg.GetTenant().GetId(), res.Msg.GetUser().GetTenantId())
	}
}
