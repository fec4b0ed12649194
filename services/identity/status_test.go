package identity_test

import (
	"testing"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
)

func TestDisableEnableDelete(t *testing.T) {
	t.Parallel()
	e := start(t)
	tenant := e.NewTenant(t)
	u := e.register(t, tenant, "ada@example.com")
	get := func() (*identityv1.User, error) {
		res, err := e.client.GetUser(t.Context(), connect.NewRequest(&identityv1.GetUserRequest{TenantId: tenant, UserId: u.GetId()}))
		if err != nil {
			return nil, err
		}
		return res.Msg.GetUser(), nil
	}
	got, err := get()
	require.NoError(t, err)
	assert.Equal(t, identityv1.UserStatus_USER_STATUS_ACTIVE, got.GetStatus())

	dis, err := e.client.DisableUser(t.Context(), connect.NewRequest(&identityv1.DisableUserRequest{TenantId: tenant, UserId: u.GetId()}))
	require.NoError(t, err)
	assert.Equal(t, identityv1.UserStatus_USER_STATUS_DISABLED, dis.Msg.GetUser().GetStatus())
	assert.Equal(t, int64(2), dis.Msg.GetUser().GetVersion())
	var disabled identityv1.UserDisabled
	published(t, e.JS, "identity.user.disabled", u.GetId(), &disabled)
	assert.Equal(t, tenant, disabled.GetTenantId())

	_, err = e.authenticate(t, tenant, "ada@example.com", password)
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "a disabled user cannot authenticate")
	_, wrong := e.authenticate(t, tenant, "ada@example.com", "a wrong password here")
	assert.Equal(t, wrong.Error(), err.Error(), "and is told what a wrong password is told")

	again, err := e.client.DisableUser(t.Context(), connect.NewRequest(&identityv1.DisableUserRequest{TenantId: tenant, UserId: u.GetId()}))
	require.NoError(t, err)
	assert.Equal(t, int64(2), again.Msg.GetUser().GetVersion(), "disabling twice is a no-op")

	en, err := e.client.EnableUser(t.Context(), connect.NewRequest(&identityv1.EnableUserRequest{TenantId: tenant, UserId: u.GetId()}))
	require.NoError(t, err)
	assert.Equal(t, identityv1.UserStatus_USER_STATUS_ACTIVE, en.Msg.GetUser().GetStatus())
	published(t, e.JS, "identity.user.enabled", u.GetId(), &identityv1.UserEnabled{})
	_, err = e.authenticate(t, tenant, "ada@example.com", password)
	require.NoError(t, err, "enabled again")

	_, err = e.client.DisableUser(t.Context(), connect.NewRequest(&identityv1.DisableUserRequest{TenantId: uuid.NewString(), UserId: u.GetId()}))
	assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "another tenant's user")

	_, err = e.client.DeleteUser(t.Context(), connect.NewRequest(&identityv1.DeleteUserRequest{TenantId: tenant, UserId: u.GetId()}))
	require.NoError(t, err)
	var deleted identityv1.UserDeleted
	ev := published(t, e.JS, "identity.user.deleted", u.GetId(), &deleted)
	assert.Equal(t, int64(4), ev.Version)
	assert.Equal(t, u.GetId(), deleted.GetUserId())

	_, err = get()
	assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "a deleted user is not found")
	_, err = e.authenticate(t, tenant, "ada@example.com", password)
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
	assert.Equal(t, 0, e.count(t, "SELECT count(*) FROM credentials WHERE user_id = $1", u.GetId()), "no password hash is kept")
	assert.Equal(t, 0, e.count(t, "SELECT count(*) FROM password_history WHERE user_id = $1", u.GetId()))
	for _, call := range []func() error{
		func() error {
			_, err := e.client.DeleteUser(t.Context(), connect.NewRequest(&identityv1.DeleteUserRequest{TenantId: tenant, UserId: u.GetId()}))
			return err
		},
		func() error {
			_, err := e.client.EnableUser(t.Context(), connect.NewRequest(&identityv1.EnableUserRequest{TenantId: tenant, UserId: u.GetId()}))
			return err
		},
		func() error {
			_, err := e.client.ChangeEmail(t.Context(), connect.NewRequest(&identityv1.ChangeEmailRequest{TenantId: tenant, UserId: u.GetId(), CurrentPassword: password, Email: "x@example.com"}))
			return err
		},
	} {
		assert.Equal(t, connect.CodeNotFound, connect.CodeOf(call()))
	}

	fresh := e.register(t, tenant, "Ada@Example.com")
	assert.NotEqual(t, u.GetId(), fresh.GetId(), "the email is free for a new account")
	res, err := e.authenticate(t, tenant, "ada@example.com", password)
	require.NoError(t, err)
	assert.Equal(t, fresh.GetId(), res.GetUserId())
}
