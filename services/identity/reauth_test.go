package identity_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/types/known/durationpb"

	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	sessionv1 "github.com/authms/authms/schemas/gen/authms/session/v1"
	"github.com/authms/authms/schemas/gen/authms/session/v1/sessionv1connect"
	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/schemas/gen/authms/tenant/v1/tenantv1connect"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/servicestest"
)

// lockoutEnv runs tenant, identity, risk and session: current-password
// checks and logins share one lockout.
type lockoutEnv struct {
	*env
	session sessionv1connect.SessionServiceClient
}

func startLockout(t *testing.T) *lockoutEnv {
	t.Helper()
	e := servicestest.Start(t, "tenant", "identity", "risk", "session")
	return &lockoutEnv{
		env:     &env{Env: e, client: newClient(e), pool: e.Pool("identity")},
		session: sessionv1connect.NewSessionServiceClient(e.HTTP, e.URL),
	}
}

// tenantLocking creates a tenant whose lockout policy locks after
// maxFailures and waits until risk applies it.
func (e *lockoutEnv) tenantLocking(t *testing.T, maxFailures int32) string {
	t.Helper()
	tenant := e.NewTenant(t)
	tenants := tenantv1connect.NewTenantServiceClient(e.HTTP, e.URL, e.Impersonate(auth.RoleAdmin))
	_, err := tenants.UpdateLockoutPolicy(t.Context(), connect.NewRequest(&tenantv1.UpdateLockoutPolicyRequest{
		TenantId: tenant, Policy: &tenantv1.LockoutPolicy{
			MaxFailures: maxFailures, Window: durationpb.New(15 * time.Minute), LockoutDuration: durationpb.New(15 * time.Minute),
		},
	}))
	require.NoError(t, err)
	risk := e.Pool("risk")
	require.Eventually(t, func() bool {
		return countRows(t, risk, "SELECT count(*) FROM tenant_lockout_policies WHERE tenant_id = $1 AND max_failures = $2", tenant, maxFailures) == 1
	}, 10*time.Second, 20*time.Millisecond, "risk projects the policy")
	return tenant
}

func (e *lockoutEnv) changePassword(tenant, user, current string) error {
	_, err := e.client.ChangePassword(context.Background(), connect.NewRequest(&identityv1.ChangePasswordRequest{
		TenantId: tenant, UserId: user, CurrentPassword: current, NewPassword: "a brand new passphrase",
	}))
	return err
}

func (e *lockoutEnv) login(tenant, email, pw string) error {
	_, err := e.session.Login(context.Background(), connect.NewRequest(&sessionv1.LoginRequest{TenantId: tenant, Email: email, Password: pw}))
	return err
}

// failedLogins counts the failed logins risk holds for the account of a
// user (risk keeps the user id the reports named).
func failedLogins(t *testing.T, e *servicestest.Env, userID string) int {
	t.Helper()
	return countRows(t, e.Pool("risk"), `SELECT count(*) FROM login_attempts a JOIN accounts c USING (tenant_id, account_key)
		WHERE c.user_id = $1 AND a.outcome = 'failure'`, userID)
}

// assertLocked checks that err is the lockout answer: PERMISSION_DENIED
// with when to retry.
func assertLocked(t *testing.T, err error) *connect.Error {
	t.Helper()
	require.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err), "%v", err)
	var ce *connect.Error
	require.ErrorAs(t, err, &ce)
	assert.NotEmpty(t, ce.Meta().Get("Retry-After"))
	require.Len(t, ce.Details(), 1)
	assert.Equal(t, "google.rpc.RetryInfo", ce.Details()[0].Type())
	return ce
}

func TestWrongCurrentPasswordsLockTheAccount(t *testing.T) {
	t.Parallel()
	e := startLockout(t)
	const maxFailures = 3
	tenant := e.tenantLocking(t, maxFailures)

	t.Run("parallel wrong ChangePasswords never pass the limit", func(t *testing.T) {
		t.Parallel()
		u := e.register(t, tenant, "ada@example.com")
		const n = 50
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			codes = map[connect.Code]int{}
		)
		for i := range n {
			wg.Go(func() {
				req := connect.NewRequest(&identityv1.ChangePasswordRequest{
					TenantId: tenant, UserId: u.GetId(), CurrentPassword: fmt.Sprintf("wrong password %d", i), NewPassword: "a brand new passphrase",
				})
				// An attacker rotating forwarded addresses: not trusted.
				req.Header().Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
				_, err := e.client.ChangePassword(context.Background(), req)
				mu.Lock()
				defer mu.Unlock()
				codes[connect.CodeOf(err)]++
			})
		}
		wg.Wait()
		assert.Equal(t, n, codes[connect.CodeInvalidArgument]+codes[connect.CodeResourceExhausted]+codes[connect.CodePermissionDenied], codes)
		assert.Equal(t, maxFailures, codes[connect.CodeInvalidArgument], "as many password checks as the tenant allows, no more: %v", codes)
		assert.Equal(t, maxFailures, failedLogins(t, e.Env, u.GetId()), "each counted as a failed login")

		// The right password now: locked, for ChangePassword, ChangeEmail
		// and Login alike, with Login's answer.
		locked := assertLocked(t, e.changePassword(tenant, u.GetId(), password))
		_, err := e.client.ChangeEmail(t.Context(), connect.NewRequest(&identityv1.ChangeEmailRequest{
			TenantId: tenant, UserId: u.GetId(), CurrentPassword: password, Email: "ada@elsewhere.example",
		}))
		assertLocked(t, err)
		login := assertLocked(t, e.login(tenant, "ADA@example.com", password))
		assert.Equal(t, login.Message(), locked.Message(), "the same answer as a locked login")

		assert.Equal(t, 1, e.count(t, "SELECT count(*) FROM events WHERE aggregate_id = $1", u.GetId()), "nothing changed")
		_, err = e.authenticate(t, tenant, "ada@example.com", password)
		require.NoError(t, err, "the password is unchanged")
	})

	t.Run("failed logins lock ChangePassword", func(t *testing.T) {
		t.Parallel()
		u := e.register(t, tenant, "grace@example.com")
		for range maxFailures {
			require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(e.login(tenant, "grace@example.com", "wrong password")))
		}
		assertLocked(t, e.changePassword(tenant, u.GetId(), password))
	})

	t.Run("the right password clears the failures", func(t *testing.T) {
		t.Parallel()
		u := e.register(t, tenant, "lin@example.com")
		for range maxFailures - 1 {
			require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(e.changePassword(tenant, u.GetId(), "wrong password")))
		}
		require.NoError(t, e.changePassword(tenant, u.GetId(), password))
		for range maxFailures - 1 {
			require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(e.login(tenant, "lin@example.com", "wrong password")))
		}
		require.NoError(t, e.login(tenant, "lin@example.com", "a brand new passphrase"), "not locked: the failures before the change no longer count")
	})
}

func TestChangeEmailNeedsTheCurrentPassword(t *testing.T) {
	t.Parallel()
	e := start(t)
	tenant := e.NewTenant(t)
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	require.NoError(t, err)
	imported, err := e.client.ImportUser(t.Context(), connect.NewRequest(&identityv1.ImportUserRequest{
		TenantId: tenant, Email: "ada@example.com", BcryptHash: string(hash), EmailVerified: true,
	}))
	require.NoError(t, err)
	u := imported.Msg.GetUser()
	require.True(t, u.GetEmailVerified())
	change := func(current string) (*identityv1.User, error) {
		res, err := e.client.ChangeEmail(t.Context(), connect.NewRequest(&identityv1.ChangeEmailRequest{
			TenantId: tenant, UserId: u.GetId(), CurrentPassword: current, Email: "ada@lovelace.org",
		}))
		if err != nil {
			return nil, err
		}
		return res.Msg.GetUser(), nil
	}

	_, err = change("not the password")
	assert.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	assert.Equal(t, []string{"current_password"}, violations(t, err))
	assert.Equal(t, 1, e.count(t, "SELECT count(*) FROM events WHERE aggregate_id = $1", u.GetId()), "nothing recorded")
	assert.Equal(t, 1, failedLogins(t, e.Env, u.GetId()), "the wrong password is a failed login of the account")

	changed, err := change(password)
	require.NoError(t, err)
	assert.Equal(t, "ada@lovelace.org", changed.GetEmail())
	assert.False(t, changed.GetEmailVerified(), "the new address is unverified")
	var ev identityv1.UserEmailChanged
	published(t, e.JS, "identity.user.email_changed", u.GetId(), &ev)
	assert.Equal(t, "ada@example.com", ev.GetPreviousEmail(), "the old address, to warn it")
	assert.Equal(t, "ada@lovelace.org", ev.GetEmail())
	res, err := e.authenticate(t, tenant, "ada@lovelace.org", password)
	require.NoError(t, err)
	assert.False(t, res.GetEmailVerified())
}
