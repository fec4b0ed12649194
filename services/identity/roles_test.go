package identity_test

import (
	"testing"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/servicestest"
)

func TestRBAC(t *testing.T) {
	t.Parallel()
	e := start(t)
	tenant := e.NewTenant(t)
	u := e.register(t, tenant, "ada@example.com")
	check := func(userID, perm string) bool {
		t.Helper()
		res, err := e.client.CheckPermission(t.Context(), connect.NewRequest(&identityv1.CheckPermissionRequest{TenantId: tenant, UserId: userID, Permission: perm}))
		require.NoError(t, err)
		return res.Msg.GetAllowed()
	}
	assign := func(userID string, roles ...string) (*identityv1.User, error) {
		res, err := e.client.AssignRoles(t.Context(), connect.NewRequest(&identityv1.AssignRolesRequest{TenantId: tenant, UserId: userID, Roles: roles}))
		if err != nil {
			return nil, err
		}
		return res.Msg.GetUser(), nil
	}

	created, err := e.client.CreateRole(t.Context(), connect.NewRequest(&identityv1.CreateRoleRequest{
		TenantId: tenant, Name: "cashier", Permissions: []string{"wallet:read", "wallet:credit", "wallet:read"},
	}))
	require.NoError(t, err)
	cashier := created.Msg.GetRole()
	assert.Equal(t, []string{"wallet:credit", "wallet:read"}, cashier.GetPermissions(), "sorted, distinct")
	var rc identityv1.RoleCreated
	ev := published(t, e.JS, "identity.role.created", cashier.GetId(), &rc)
	assert.Equal(t, "role", ev.AggregateType)
	assert.Equal(t, "cashier", rc.GetName())

	assert.False(t, check(u.GetId(), "wallet:read"), "no roles, no permissions")
	got, err := assign(u.GetId(), "cashier")
	require.NoError(t, err)
	assert.Equal(t, []string{"cashier"}, got.GetRoles())
	var changed identityv1.UserRolesChanged
	published(t, e.JS, "identity.user.roles_changed", u.GetId(), &changed)
	assert.Equal(t, []string{"cashier"}, changed.GetRoles())
	assert.True(t, check(u.GetId(), "wallet:read"))
	assert.False(t, check(u.GetId(), "wallet:debit"))
	assert.False(t, check(u.GetId(), "billing:read"))

	auth, err := e.authenticate(t, tenant, "ada@example.com", password)
	require.NoError(t, err)
	assert.Equal(t, []string{"cashier"}, auth.GetRoles(), "authentication returns the roles for the token")

	_, err = e.client.GrantPermissions(t.Context(), connect.NewRequest(&identityv1.GrantPermissionsRequest{TenantId: tenant, Role: "cashier", Permissions: []string{"wallet:*"}}))
	require.NoError(t, err)
	assert.True(t, check(u.GetId(), "wallet:debit"), "a resource wildcard")
	revoked, err := e.client.RevokePermissions(t.Context(), connect.NewRequest(&identityv1.RevokePermissionsRequest{TenantId: tenant, Role: "cashier", Permissions: []string{"wallet:*", "wallet:read"}}))
	require.NoError(t, err)
	assert.Equal(t, []string{"wallet:credit"}, revoked.Msg.GetRole().GetPermissions())
	assert.Equal(t, int64(3), revoked.Msg.GetRole().GetVersion())
	assert.False(t, check(u.GetId(), "wallet:read"), "revoked")
	assert.True(t, check(u.GetId(), "wallet:credit"))

	roles, err := e.client.ListRoles(t.Context(), connect.NewRequest(&identityv1.ListRolesRequest{TenantId: tenant}))
	require.NoError(t, err)
	require.Len(t, roles.Msg.GetRoles(), 2)
	assert.Equal(t, "admin", roles.Msg.GetRoles()[0].GetName())
	assert.True(t, roles.Msg.GetRoles()[0].GetBuiltIn())
	assert.Equal(t, []string{"*"}, roles.Msg.GetRoles()[0].GetPermissions())
	assert.Equal(t, "cashier", roles.Msg.GetRoles()[1].GetName())

	grace := e.register(t, tenant, "grace@example.com")
	_, err = assign(grace.GetId(), "admin")
	require.NoError(t, err)
	assert.True(t, check(grace.GetId(), "billing:refund"), "admin holds everything")
	_, err = assign(grace.GetId())
	require.NoError(t, err)
	assert.False(t, check(grace.GetId(), "billing:refund"), "roles removed")

	_, err = e.client.DisableUser(t.Context(), connect.NewRequest(&identityv1.DisableUserRequest{TenantId: tenant, UserId: u.GetId()}))
	require.NoError(t, err)
	assert.False(t, check(u.GetId(), "wallet:credit"), "a disabled user holds nothing")

	other := uuid.NewString()
	_, err = e.client.CreateRole(t.Context(), connect.NewRequest(&identityv1.CreateRoleRequest{TenantId: other, Name: "cashier"}))
	require.NoError(t, err, "role names are per tenant")

	failures := []struct {
		name     string
		call     func() error
		wantCode connect.Code
	}{
		{name: "a duplicate role", wantCode: connect.CodeAlreadyExists, call: func() error {
			_, err := e.client.CreateRole(t.Context(), connect.NewRequest(&identityv1.CreateRoleRequest{TenantId: tenant, Name: "cashier"}))
			return err
		}},
		{name: "a role named admin", wantCode: connect.CodeAlreadyExists, call: func() error {
			_, err := e.client.CreateRole(t.Context(), connect.NewRequest(&identityv1.CreateRoleRequest{TenantId: tenant, Name: "admin"}))
			return err
		}},
		{name: "a role named service", wantCode: connect.CodeInvalidArgument, call: func() error {
			_, err := e.client.CreateRole(t.Context(), connect.NewRequest(&identityv1.CreateRoleRequest{TenantId: tenant, Name: "service"}))
			return err
		}},
		{name: "a bad permission", wantCode: connect.CodeInvalidArgument, call: func() error {
			_, err := e.client.CreateRole(t.Context(), connect.NewRequest(&identityv1.CreateRoleRequest{TenantId: tenant, Name: "x", Permissions: []string{"Wallet Read"}}))
			return err
		}},
		{name: "changing admin", wantCode: connect.CodeFailedPrecondition, call: func() error {
			_, err := e.client.RevokePermissions(t.Context(), connect.NewRequest(&identityv1.RevokePermissionsRequest{TenantId: tenant, Role: "admin", Permissions: []string{"*"}}))
			return err
		}},
		{name: "granting to an unknown role", wantCode: connect.CodeNotFound, call: func() error {
			_, err := e.client.GrantPermissions(t.Context(), connect.NewRequest(&identityv1.GrantPermissionsRequest{TenantId: tenant, Role: "teller", Permissions: []string{"wallet:read"}}))
			return err
		}},
		{name: "assigning an unknown role", wantCode: connect.CodeInvalidArgument, call: func() error {
			_, err := assign(grace.GetId(), "teller")
			return err
		}},
		{name: "assigning service", wantCode: connect.CodeInvalidArgument, call: func() error {
			_, err := assign(grace.GetId(), "service")
			return err
		}},
		{name: "checking an unknown user", wantCode: connect.CodeNotFound, call: func() error {
			_, err := e.client.CheckPermission(t.Context(), connect.NewRequest(&identityv1.CheckPermissionRequest{TenantId: tenant, UserId: uuid.NewString(), Permission: "wallet:read"}))
			return err
		}},
		{name: "a wildcard check", wantCode: connect.CodeInvalidArgument, call: func() error {
			_, err := e.client.CheckPermission(t.Context(), connect.NewRequest(&identityv1.CheckPermissionRequest{TenantId: tenant, UserId: grace.GetId(), Permission: "wallet:*"}))
			return err
		}},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.wantCode, connect.CodeOf(tt.call()))
		})
	}
	assert.Equal(t, 3, e.count(t, "SELECT count(*) FROM events WHERE tenant_id = $1 AND subject = 'identity.user.roles_changed'", tenant), "failures wrote nothing")

	_, err = e.client.DeleteUser(t.Context(), connect.NewRequest(&identityv1.DeleteUserRequest{TenantId: tenant, UserId: u.GetId()}))
	require.NoError(t, err)
	assert.Equal(t, 0, e.count(t, "SELECT count(*) FROM user_roles WHERE user_id = $1", u.GetId()))
}

// TestAdminCannotRemoveThemselves: an admin may not take away their own
// admin role, disable or delete themselves (the tenant's only admin would
// leave it with none); another admin, or the operator for roles, may.
func TestAdminCannotRemoveThemselves(t *testing.T) {
	t.Parallel()
	e := start(t)
	tenant := e.NewTenant(t)
	ada := e.register(t, tenant, "ada@example.com")
	grace := e.register(t, tenant, "grace@example.com")
	as := func(user string) identityv1connect.IdentityServiceClient {
		return identityv1connect.NewIdentityServiceClient(e.HTTP, e.URL, servicestest.Bearer(e.Token(t, tenant, user, auth.RoleAdmin)))
	}
	assign := func(c identityv1connect.IdentityServiceClient, user string, roles ...string) error {
		_, err := c.AssignRoles(t.Context(), connect.NewRequest(&identityv1.AssignRolesRequest{TenantId: tenant, UserId: user, Roles: roles}))
		return err
	}
	_, err := e.client.CreateRole(t.Context(), connect.NewRequest(&identityv1.CreateRoleRequest{TenantId: tenant, Name: "cashier"}))
	require.NoError(t, err)
	require.NoError(t, assign(e.client, ada.GetId(), "admin"), "the operator makes the first admin")

	self := as(ada.GetId())
	refused := func(what string, err error) {
		t.Helper()
		require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err), "%s: %v", what, err)
		assert.Contains(t, err.Error(), "ask another admin", what)
	}
	refused("clearing one's own roles", assign(self, ada.GetId()))
	refused("trading one's own admin role for another", assign(self, ada.GetId(), "cashier"))
	_, err = self.DisableUser(t.Context(), connect.NewRequest(&identityv1.DisableUserRequest{TenantId: tenant, UserId: ada.GetId()}))
	refused("disabling oneself", err)
	_, err = self.DeleteUser(t.Context(), connect.NewRequest(&identityv1.DeleteUserRequest{TenantId: tenant, UserId: ada.GetId()}))
	refused("deleting oneself", err)
	require.NoError(t, assign(self, ada.GetId(), "admin", "cashier"), "an admin may add roles of their own, keeping admin")
	got, err := e.client.GetUser(t.Context(), connect.NewRequest(&identityv1.GetUserRequest{TenantId: tenant, UserId: ada.GetId()}))
	require.NoError(t, err)
	assert.Equal(t, []string{"admin", "cashier"}, got.Msg.GetUser().GetRoles(), "the refusals changed nothing")
	assert.Equal(t, identityv1.UserStatus_USER_STATUS_ACTIVE, got.Msg.GetUser().GetStatus())

	require.NoError(t, assign(self, grace.GetId(), "admin"), "an admin makes another")
	require.NoError(t, assign(as(grace.GetId()), ada.GetId(), "cashier"), "another admin takes the role away")
	require.NoError(t, assign(e.client, grace.GetId()), "the operator takes the role away")
	// The check reads the roles identity holds, not the token's: ada's
	// token still says admin, but she is no admin now, and may go.
	_, err = self.DeleteUser(t.Context(), connect.NewRequest(&identityv1.DeleteUserRequest{TenantId: tenant, UserId: ada.GetId()}))
	require.NoError(t, err, "a user who is no admin may delete themselves")
}
