package identity

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/services/internal/rpc"
)

// attrRecorder keeps every log record's message and attribute values.
type attrRecorder struct {
	slog.Handler
	mu      sync.Mutex
	records []string // message, then key=value pairs
}

func (r *attrRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	r.mu.Lock()
	r.records = append(r.records, b.String())
	r.mu.Unlock()
	return nil
}

func (r *attrRecorder) Enabled(context.Context, slog.Level) bool { return true }

// Production logs only the token ids of verification and reset links:
// whoever reads the logs must not be able to take over an account.
func TestLinksAreLoggedOnlyWhenConfigured(t *testing.T) {
	t.Parallel()
	d := newTestDeps(t)
	rec := &attrRecorder{Handler: slog.DiscardHandler}
	d.Logger = slog.New(rec)
	s := newTestService(t, d, Config{Password: cheap}) // LogLinks off: the default
	tenant := uuid.NewString()
	u := s.mustRegister(t, tenant, "lin@example.com")

	require.NoError(t, s.requestPasswordReset(t.Context(), &identityv1.RequestPasswordResetRequest{TenantId: tenant, Email: "lin@example.com"}))
	_, err := s.requestEmailVerification(t.Context(), &identityv1.RequestEmailVerificationRequest{TenantId: tenant, UserId: u.GetId()})
	require.NoError(t, err)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	joined := strings.Join(rec.records, "\n")
	assert.Contains(t, joined, "password reset requested")
	assert.Contains(t, joined, "email verification requested")
	assert.NotContains(t, joined, "link=")
	// A token is 32 random bytes in base64url: 43 characters.
	assert.NotRegexp(t, regexp.MustCompile(`[A-Za-z0-9_-]{43}`), joined, "no token in the logs")
}

// A new password, or a new email, voids the reset links sent before it.
func TestPasswordAndEmailChangesVoidResetTokens(t *testing.T) {
	t.Parallel()
	s, rec, _ := tokenTestService(t, Config{})
	tenant := uuid.NewString()
	u := s.mustRegister(t, tenant, "voi@example.com")
	requestReset := func() string {
		t.Helper()
		require.NoError(t, s.requestPasswordReset(t.Context(), &identityv1.RequestPasswordResetRequest{TenantId: tenant, Email: u.GetEmail()}))
		_, token := rec.lastToken(t, "password reset link")
		return token
	}
	resetWith := func(token string) error {
		_, err := s.resetPassword(t.Context(), &identityv1.ResetPasswordRequest{TenantId: tenant, Token: token, NewPassword: "an entirely new passphrase"})
		return err
	}

	token := requestReset()
	_, err := s.changePassword(t.Context(), &identityv1.ChangePasswordRequest{
		TenantId: tenant, UserId: u.GetId(), CurrentPassword: testPassword, NewPassword: "a changed passphrase 42",
	})
	require.NoError(t, err)
	assert.ErrorIs(t, resetWith(token), ErrInvalidToken, "after a password change")

	token = requestReset()
	_, _, err = s.changeEmail(t.Context(), &identityv1.ChangeEmailRequest{TenantId: tenant, UserId: u.GetId(), Email: "moved@example.com"})
	require.NoError(t, err)
	assert.ErrorIs(t, resetWith(token), ErrInvalidToken, "after an email change")
}

// An imported bcrypt hash above cost 14 is refused: checking one at cost
// 31 would hold a hashing slot for days.
func TestImportRefusesExpensiveBcrypt(t *testing.T) {
	t.Parallel()
	s := newTestService(t, newTestDeps(t), Config{Password: cheap})
	for _, cost := range []string{"15", "31"} {
		hash := "$2b$" + cost + "$" + strings.Repeat("a", 53)
		_, _, err := s.importUser(t.Context(), &identityv1.ImportUserRequest{TenantId: uuid.NewString(), Email: "imp@example.com", BcryptHash: hash})
		var field *rpc.InvalidFieldError
		require.ErrorAs(t, err, &field, "cost %s", cost)
		assert.Equal(t, "bcrypt_hash.cost", field.Rule)
	}
}

// Every response that carries a user carries its roles.
func TestChangeEmailReturnsTheRoles(t *testing.T) {
	t.Parallel()
	s := newTestService(t, newTestDeps(t), Config{Password: cheap})
	tenant := uuid.NewString()
	u := s.mustRegister(t, tenant, "rol@example.com")
	_, _, err := s.assignRoles(t.Context(), &identityv1.AssignRolesRequest{TenantId: tenant, UserId: u.GetId(), Roles: []string{RoleAdmin}})
	require.NoError(t, err)

	changed, _, err := s.changeEmail(t.Context(), &identityv1.ChangeEmailRequest{TenantId: tenant, UserId: u.GetId(), Email: "rol2@example.com"})
	require.NoError(t, err)
	assert.Equal(t, []string{RoleAdmin}, changed.GetRoles())
}

// Repeated reset requests for one address issue one token per interval:
// the answer stays the same, the pending link and the event history do not
// churn.
func TestResetRequestsAreSpaced(t *testing.T) {
	t.Parallel()
	s, rec, now := tokenTestService(t, Config{ResetRequestInterval: time.Minute})
	tenant := uuid.NewString()
	u := s.mustRegister(t, tenant, "spa@example.com")
	request := func() {
		t.Helper()
		require.NoError(t, s.requestPasswordReset(t.Context(), &identityv1.RequestPasswordResetRequest{TenantId: tenant, Email: u.GetEmail()}))
	}
	requested := func() int {
		return len(storedPayloads(t, s, u.GetId(), "identity.user.password_reset_requested", func() *identityv1.UserPasswordResetRequested { return &identityv1.UserPasswordResetRequested{} }))
	}

	request()
	_, first := rec.lastToken(t, "password reset link")
	for range 5 {
		request()
	}
	assert.Equal(t, 1, requested(), "one token within the interval")
	assert.Equal(t, 1, rec.count("password reset link"))

	*now = now.Add(time.Minute)
	request()
	assert.Equal(t, 2, requested(), "a new token once the interval passed")
	_, second := rec.lastToken(t, "password reset link")
	assert.NotEqual(t, first, second)
}
