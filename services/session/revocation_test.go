package session_test

import (
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	sessionv1 "github.com/authms/authms/schemas/gen/authms/session/v1"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/servicestest"
)

// liveSessions returns the ids of a user's live sessions.
func (e *env) liveSessions(t *testing.T, tenant, user string) []string {
	t.Helper()
	res, err := e.session.ListSessions(t.Context(), connect.NewRequest(&sessionv1.ListSessionsRequest{TenantId: tenant, UserId: user}))
	require.NoError(t, err)
	var ids []string
	for _, s := range res.Msg.GetSessions() {
		ids = append(ids, s.GetId())
	}
	return ids
}

func TestIdentityEventsRevokeSessions(t *testing.T) {
	t.Parallel()
	e := start(t, servicestest.Options{})
	tenant := e.newTenant(t)

	t.Run("a password change keeps the session it was made from", func(t *testing.T) {
		alice := e.register(t, tenant, "alice@example.com")
		keep, other := e.mustLogin(t, tenant, "alice@example.com"), e.mustLogin(t, tenant, "alice@example.com")
		_, err := e.identity.ChangePassword(t.Context(), connect.NewRequest(&identityv1.ChangePasswordRequest{
			TenantId: tenant, UserId: alice, CurrentPassword: password, NewPassword: "a brand new passphrase",
			KeepSessionId: new(keep.GetSession().GetId()),
		}))
		require.NoError(t, err)
		require.Eventually(t, func() bool { return len(e.liveSessions(t, tenant, alice)) == 1 }, 10*time.Second, 20*time.Millisecond)
		assert.Equal(t, []string{keep.GetSession().GetId()}, e.liveSessions(t, tenant, alice))
		_, err = e.refresh(t.Context(), other.GetTokens().GetRefreshToken())
		assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "effective on the next refresh")
		_, err = e.refresh(t.Context(), keep.GetTokens().GetRefreshToken())
		require.NoError(t, err)
		assert.Equal(t, []string{"session.session.created", "session.session.revoked"}, e.subjects(t, other.GetSession().GetId()))
		assert.Equal(t, 1, e.count(t, "SELECT count(*) FROM sessions WHERE id = $1 AND revoke_reason = 'REVOKE_REASON_PASSWORD_CHANGED'",
			other.GetSession().GetId()))
	})

	t.Run("a disabled user loses every session", func(t *testing.T) {
		bob := e.register(t, tenant, "bob@example.com")
		s1 := e.mustLogin(t, tenant, "bob@example.com")
		e.mustLogin(t, tenant, "bob@example.com")
		_, err := e.identity.DisableUser(t.Context(), connect.NewRequest(&identityv1.DisableUserRequest{TenantId: tenant, UserId: bob}))
		require.NoError(t, err)
		// Refused at once by identity, before the event arrives.
		_, err = e.refresh(t.Context(), s1.GetTokens().GetRefreshToken())
		assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
		require.Eventually(t, func() bool { return len(e.liveSessions(t, tenant, bob)) == 0 }, 10*time.Second, 20*time.Millisecond)
		_, err = e.login(t.Context(), tenant, "bob@example.com", password)
		assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
	})

	t.Run("a deleted user loses every session", func(t *testing.T) {
		carol := e.register(t, tenant, "carol@example.com")
		e.mustLogin(t, tenant, "carol@example.com")
		_, err := e.identity.DeleteUser(t.Context(), connect.NewRequest(&identityv1.DeleteUserRequest{TenantId: tenant, UserId: carol}))
		require.NoError(t, err)
		require.Eventually(t, func() bool { return len(e.liveSessions(t, tenant, carol)) == 0 }, 10*time.Second, 20*time.Millisecond)
		assert.Equal(t, 1, e.count(t, "SELECT count(*) FROM sessions WHERE user_id = $1 AND revoke_reason = 'REVOKE_REASON_USER_DELETED'", carol))
	})
}

func TestRolesChangedRevokesSessions(t *testing.T) {
	t.Parallel()
	e := start(t, servicestest.Options{})
	tenant := e.newTenant(t)
	alice := e.register(t, tenant, "alice@example.com")
	ctx := t.Context()
	assignRoles := func(roles ...string) {
		t.Helper()
		operator := identityv1connect.NewIdentityServiceClient(e.HTTP, e.URL, e.Operator())
		_, err := operator.AssignRoles(ctx, connect.NewRequest(&identityv1.AssignRolesRequest{TenantId: tenant, UserId: alice, Roles: roles}))
		require.NoError(t, err)
	}
	revoked := func(login *sessionv1.LoginResponse) bool {
		return e.count(t, "SELECT count(*) FROM sessions WHERE id = $1 AND revoke_reason = 'REVOKE_REASON_ROLES_CHANGED'", login.GetSession().GetId()) == 1
	}

	// Given a session from before alice was made admin: the grant revokes
	// it too (any change does), and a fresh login carries the role.
	before := e.mustLogin(t, tenant, "alice@example.com")
	assignRoles(auth.RoleAdmin)
	require.Eventually(t, func() bool { return revoked(before) }, 10*time.Second, 20*time.Millisecond, "the grant revokes")
	admin := e.mustLogin(t, tenant, "alice@example.com")
	_, c := mustVerify(t, admin.GetTokens().GetAccessToken(), e.jwks(t))
	require.Equal(t, []string{auth.RoleAdmin}, c.Roles)
	asAdmin := identityv1connect.NewIdentityServiceClient(e.HTTP, e.URL, servicestest.Bearer(admin.GetTokens().GetAccessToken()))
	_, err := asAdmin.GetUser(ctx, connect.NewRequest(&identityv1.GetUserRequest{TenantId: tenant, UserId: alice}))
	require.NoError(t, err)

	// When the role is removed, then the admin's session is revoked, the
	// revocation list refuses its access token on the next call (so it
	// cannot re-grant itself), its refresh token is refused too, and a
	// fresh login has no role.
	assignRoles()
	require.Eventually(t, func() bool { return revoked(admin) }, 10*time.Second, 20*time.Millisecond, "the removal revokes")
	require.Eventually(t, func() bool {
		_, err := asAdmin.GetUser(ctx, connect.NewRequest(&identityv1.GetUserRequest{TenantId: tenant, UserId: alice}))
		return connect.CodeOf(err) == connect.CodeUnauthenticated
	}, 10*time.Second, 20*time.Millisecond, "the demoted admin's access token is refused")
	_, err = asAdmin.AssignRoles(ctx, connect.NewRequest(&identityv1.AssignRolesRequest{TenantId: tenant, UserId: alice, Roles: []string{auth.RoleAdmin}}))
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "the demoted admin cannot re-grant itself")
	_, err = e.refresh(ctx, admin.GetTokens().GetRefreshToken())
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
	assert.Equal(t, []string{"session.session.created", "session.session.revoked"}, e.subjects(t, admin.GetSession().GetId()))
	_, c = mustVerify(t, e.mustLogin(t, tenant, "alice@example.com").GetTokens().GetAccessToken(), e.jwks(t))
	assert.Empty(t, c.Roles)
	u, err := e.identity.GetUser(ctx, connect.NewRequest(&identityv1.GetUserRequest{TenantId: tenant, UserId: alice}))
	require.NoError(t, err)
	assert.Empty(t, u.Msg.GetUser().GetRoles(), "alice is still not admin")
}
