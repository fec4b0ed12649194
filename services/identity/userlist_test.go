package identity_test

import (
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/servicestest"
)

func TestListUsers(t *testing.T) {
	t.Parallel()
	e := start(t)
	tenant, other := e.NewTenant(t), e.NewTenant(t)
	admin := e.register(t, tenant, "Admin@Example.com")
	for _, addr := range []string{"carol@example.com", "Bob@Example.org", "under_score@example.com", "per%cent@example.com", "dave@example.net"} {
		e.register(t, tenant, addr)
	}
	e.register(t, other, "eve@example.com")
	bob := e.register(t, tenant, "bob2@example.com")
	_, err := e.client.AssignRoles(t.Context(), connect.NewRequest(&identityv1.AssignRolesRequest{TenantId: tenant, UserId: bob.GetId(), Roles: []string{auth.RoleAdmin}}))
	require.NoError(t, err)
	as := func(tenantID, userID string, roles ...string) identityv1connect.IdentityServiceClient {
		return identityv1connect.NewIdentityServiceClient(e.HTTP, e.URL, servicestest.Bearer(e.Token(t, tenantID, userID, roles...)))
	}
	client := as(tenant, admin.GetId(), auth.RoleAdmin)
	// Another admin disables bob: an admin may not disable themselves.
	_, err = client.DisableUser(t.Context(), connect.NewRequest(&identityv1.DisableUserRequest{TenantId: tenant, UserId: bob.GetId()}))
	require.NoError(t, err)
	list := func(req *identityv1.ListUsersRequest) (*identityv1.ListUsersResponse, error) {
		req.TenantId = tenant
		res, err := client.ListUsers(t.Context(), connect.NewRequest(req))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	}
	emails := func(users []*identityv1.User) []string {
		out := make([]string, len(users))
		for i, u := range users {
			out[i] = u.GetEmail()
		}
		return out
	}

	t.Run("all, in canonical email order, one page", func(t *testing.T) {
		res, err := list(&identityv1.ListUsersRequest{})
		require.NoError(t, err)
		assert.Equal(t, []string{"Admin@Example.com", "bob2@example.com", "Bob@Example.org", "carol@example.com",
			"dave@example.net", "per%cent@example.com", "under_score@example.com"}, emails(res.GetUsers()),
			"ordered by the lower-case address; another tenant's users are not listed")
		assert.Empty(t, res.GetNextPageToken())
		got := res.GetUsers()[1]
		assert.Equal(t, bob.GetId(), got.GetId())
		assert.Equal(t, []string{auth.RoleAdmin}, got.GetRoles(), "roles as GetUser shows them")
		assert.Equal(t, identityv1.UserStatus_USER_STATUS_DISABLED, got.GetStatus())
		assert.Equal(t, identityv1.UserStatus_USER_STATUS_ACTIVE, res.GetUsers()[0].GetStatus())
		assert.Empty(t, res.GetUsers()[0].GetRoles())
	})

	t.Run("pages", func(t *testing.T) {
		var got []string
		token, pages := "", 0
		for {
			res, err := list(&identityv1.ListUsersRequest{PageSize: 3, PageToken: token})
			require.NoError(t, err)
			pages++
			assert.LessOrEqual(t, len(res.GetUsers()), 3)
			got = append(got, emails(res.GetUsers())...)
			if token = res.GetNextPageToken(); token == "" {
				break
			}
			require.Less(t, pages, 10, "the pages never end")
		}
		assert.Equal(t, 3, pages)
		assert.Len(t, got, 7)
		assert.Equal(t, "Admin@Example.com", got[0])
		assert.Equal(t, "under_score@example.com", got[6])

		res, err := list(&identityv1.ListUsersRequest{PageSize: 7})
		require.NoError(t, err)
		assert.Len(t, res.GetUsers(), 7)
		assert.Empty(t, res.GetNextPageToken(), "a page that ends the list has no next page, even when full")
	})

	t.Run("query", func(t *testing.T) {
		res, err := list(&identityv1.ListUsersRequest{Query: "  BOB"})
		require.NoError(t, err)
		assert.Equal(t, []string{"bob2@example.com", "Bob@Example.org"}, emails(res.GetUsers()), "a case-insensitive substring")

		res, err = list(&identityv1.ListUsersRequest{Query: "EXAMPLE.COM", PageSize: 2})
		require.NoError(t, err)
		assert.Equal(t, []string{"Admin@Example.com", "bob2@example.com"}, emails(res.GetUsers()))
		next, err := list(&identityv1.ListUsersRequest{Query: "example.com", PageSize: 2, PageToken: res.GetNextPageToken()})
		require.NoError(t, err, "the same query, however spelled")
		assert.Equal(t, []string{"carol@example.com", "per%cent@example.com"}, emails(next.GetUsers()))

		res, err = list(&identityv1.ListUsersRequest{Query: "_"})
		require.NoError(t, err)
		assert.Equal(t, []string{"under_score@example.com"}, emails(res.GetUsers()), "_ is no wildcard")
		res, err = list(&identityv1.ListUsersRequest{Query: "%"})
		require.NoError(t, err)
		assert.Equal(t, []string{"per%cent@example.com"}, emails(res.GetUsers()), "% is no wildcard")
		res, err = list(&identityv1.ListUsersRequest{Query: "nobody"})
		require.NoError(t, err)
		assert.Empty(t, res.GetUsers())
		assert.Empty(t, res.GetNextPageToken())
	})

	t.Run("bad page tokens", func(t *testing.T) {
		res, err := list(&identityv1.ListUsersRequest{Query: "example", PageSize: 1})
		require.NoError(t, err)
		require.NotEmpty(t, res.GetNextPageToken())
		for name, req := range map[string]*identityv1.ListUsersRequest{
			"not base64":        {PageToken: "!!!"},
			"made up":           {PageToken: "AAAAAAAAAAAAAA"},
			"of another query":  {Query: "bob", PageToken: res.GetNextPageToken()},
			"of no query":       {PageToken: res.GetNextPageToken()},
			"truncated":         {Query: "example", PageToken: res.GetNextPageToken()[:8]},
			"page size too big": {PageSize: 501},
		} {
			_, err := list(req)
			require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "%s: %v", name, err)
		}
		_, err = list(&identityv1.ListUsersRequest{PageToken: "!!!"})
		assert.Equal(t, []string{"page_token"}, violations(t, err))
	})

	t.Run("admins only, of their own tenant", func(t *testing.T) {
		_, err := as(tenant, admin.GetId()).ListUsers(t.Context(), connect.NewRequest(&identityv1.ListUsersRequest{TenantId: tenant}))
		assert.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err), "a user who is not an admin: %v", err)
		_, err = client.ListUsers(t.Context(), connect.NewRequest(&identityv1.ListUsersRequest{TenantId: other}))
		assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "another tenant: %v", err)
		_, err = identityv1connect.NewIdentityServiceClient(e.HTTP, e.URL, e.Operator()).ListUsers(t.Context(),
			connect.NewRequest(&identityv1.ListUsersRequest{TenantId: tenant}))
		assert.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err), "the operator token opens no tenant's user list: %v", err)
	})
}
