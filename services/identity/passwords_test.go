package identity_test

import (
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/schemas/gen/authms/tenant/v1/tenantv1connect"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/servicestest"
)

func TestChangePassword(t *testing.T) {
	t.Parallel()
	e := start(t)
	tenant := e.NewTenant(t)
	u := e.register(t, tenant, "ada@example.com")
	const next = "a brand new passphrase"
	session := uuid.NewString()

	_, err := e.client.ChangePassword(t.Context(), connect.NewRequest(&identityv1.ChangePasswordRequest{
		TenantId: tenant, UserId: u.GetId(), CurrentPassword: "not the password", NewPassword: next,
	}))
	assert.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	assert.Equal(t, []string{"current_password"}, violations(t, err))

	_, err = e.client.ChangePassword(t.Context(), connect.NewRequest(&identityv1.ChangePasswordRequest{
		TenantId: tenant, UserId: u.GetId(), CurrentPassword: password, NewPassword: "qwertyuiop123",
	}))
	assert.Equal(t, []string{"new_password"}, violations(t, err), "a breached password")
	assert.Equal(t, 1, e.count(t, "SELECT count(*) FROM events WHERE aggregate_id = $1", u.GetId()), "nothing recorded")

	_, err = e.client.ChangePassword(t.Context(), connect.NewRequest(&identityv1.ChangePasswordRequest{
		TenantId: tenant, UserId: u.GetId(), CurrentPassword: password, NewPassword: next, KeepSessionId: proto.String(session),
	}))
	require.NoError(t, err)
	var changed identityv1.UserPasswordChanged
	ev := published(t, e.JS, "identity.user.password_changed", u.GetId(), &changed)
	assert.Equal(t, int64(2), ev.Version)
	assert.Equal(t, identityv1.PasswordChangeReason_PASSWORD_CHANGE_REASON_CHANGED, changed.GetReason())
	assert.Equal(t, session, changed.GetKeepSessionId())
	assert.Equal(t, tenant, changed.GetTenantId())

	_, err = e.authenticate(t, tenant, "ada@example.com", password)
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "the old password no longer works")
	_, err = e.authenticate(t, tenant, "ada@example.com", next)
	require.NoError(t, err)

	got, err := e.client.GetUser(t.Context(), connect.NewRequest(&identityv1.GetUserRequest{TenantId: tenant, UserId: u.GetId()}))
	require.NoError(t, err)
	assert.Equal(t, int64(2), got.Msg.GetUser().GetVersion())

	_, err = e.client.ChangePassword(t.Context(), connect.NewRequest(&identityv1.ChangePasswordRequest{
		TenantId: uuid.NewString(), UserId: u.GetId(), CurrentPassword: next, NewPassword: password,
	}))
	assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "another tenant's user")
}

func TestTenantPasswordPolicyIsEnforced(t *testing.T) {
	t.Parallel()
	e := servicestest.Start(t, "tenant", "identity", "risk")
	client := newClient(e)
	tenants := tenantv1connect.NewTenantServiceClient(e.HTTP, e.URL, e.Impersonate(auth.RoleAdmin))
	created, err := tenants.CreateTenant(t.Context(), connect.NewRequest(&tenantv1.CreateTenantRequest{Slug: "strict", DisplayName: "Strict"}))
	require.NoError(t, err)
	tenant := created.Msg.GetTenant().GetId()
	_, err = tenants.UpdatePasswordPolicy(t.Context(), connect.NewRequest(&tenantv1.UpdatePasswordPolicyRequest{
		TenantId: tenant, Policy: &tenantv1.PasswordPolicy{MinLength: 16, CheckBreached: false, HistorySize: 2},
	}))
	require.NoError(t, err)
	pool := e.Pool("identity")
	require.Eventually(t, func() bool {
		return countRows(t, pool, "SELECT count(*) FROM tenant_password_policies WHERE tenant_id = $1 AND version = 2", tenant) == 1
	}, 20*time.Second, 20*time.Millisecond, "identity projects the tenant's password policy")
	e.WaitTenant(t, tenant, "active") // another projector of identity's: it may lag the policy's

	register := func(email, pw string) (*identityv1.User, error) {
		res, err := client.RegisterUser(t.Context(), connect.NewRequest(&identityv1.RegisterUserRequest{TenantId: tenant, Email: email, Password: pw}))
		if err != nil {
			return nil, err
		}
		return res.Msg.GetUser(), nil
	}
	_, err = register("ada@example.com", "fifteen chars!!")
	assert.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "shorter than the tenant's 16")
	_, err = register("ada@example.com", "qwertyuiop123456")
	require.NoError(t, err, "the tenant does not check the breached list")

	u, err := register("grace@example.com", "first long passphrase")
	require.NoError(t, err)
	change := func(current, next string) error {
		_, err := client.ChangePassword(t.Context(), connect.NewRequest(&identityv1.ChangePasswordRequest{
			TenantId: tenant, UserId: u.GetId(), CurrentPassword: current, NewPassword: next,
		}))
		return err
	}
	err = change("first long passphrase", "first long passphrase")
	assert.Equal(t, []string{"new_password"}, violations(t, err), "the current password is in the history")
	require.NoError(t, change("first long passphrase", "second long passphrase"))
	err = change("second long passphrase", "first long passphrase")
	assert.Equal(t, []string{"new_password"}, violations(t, err), "one of the last 2")
	require.NoError(t, change("second long passphrase", "third long passphrase"))
	require.NoError(t, change("third long passphrase", "first long passphrase"), "3 passwords ago is allowed with a history of 2")
}

func TestRequestPasswordResetAnswersTheSame(t *testing.T) {
	t.Parallel()
	e := start(t)
	tenant := e.NewTenant(t)
	e.register(t, tenant, "ada@example.com")
	var answers []*identityv1.RequestPasswordResetResponse
	for _, email := range []string{"ada@example.com", "nobody@example.com", "ADA@EXAMPLE.COM", "\u0430da@example.com"} {
		res, err := e.client.RequestPasswordReset(t.Context(), connect.NewRequest(&identityv1.RequestPasswordResetRequest{TenantId: tenant, Email: email}))
		require.NoError(t, err, email)
		answers = append(answers, res.Msg)
	}
	for _, a := range answers {
		assert.True(t, proto.Equal(a, answers[0]))
	}
	// Ada's second request came within Config.ResetRequestInterval of the
	// first: it answered the same and issued nothing.
	assert.Equal(t, 1, e.count(t, "SELECT count(*) FROM events WHERE tenant_id = $1 AND subject = 'identity.user.password_reset_requested'", tenant))
	assert.Equal(t, 1, e.count(t, "SELECT count(*) FROM user_tokens WHERE tenant_id = $1", tenant))

	_, err := e.client.ResetPassword(t.Context(), connect.NewRequest(&identityv1.ResetPasswordRequest{TenantId: tenant, Token: "forged", NewPassword: "a brand new passphrase"}))
	assert.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	assert.Equal(t, []string{"token"}, violations(t, err))
}
