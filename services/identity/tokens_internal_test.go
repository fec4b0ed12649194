package identity

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
)

// linkRecorder keeps the links identity logs, by log message.
type linkRecorder struct {
	slog.Handler
	mu    sync.Mutex
	links map[string][]string
}

func (r *linkRecorder) Handle(ctx context.Context, rec slog.Record) error {
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "link" {
			r.mu.Lock()
			r.links[rec.Message] = append(r.links[rec.Message], a.Value.String())
			r.mu.Unlock()
		}
		return true
	})
	if !r.Handler.Enabled(ctx, rec.Level) {
		return nil
	}
	return r.Handler.Handle(ctx, rec)
}

func (r *linkRecorder) Enabled(context.Context, slog.Level) bool { return true }

// lastToken returns the token of the newest link logged with msg.
func (r *linkRecorder) lastToken(t *testing.T, msg string) (link, token string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.NotEmpty(t, r.links[msg], "no %q logged", msg)
	link = r.links[msg][len(r.links[msg])-1]
	u, err := url.Parse(link)
	require.NoError(t, err)
	return link, u.Query().Get("token")
}

func (r *linkRecorder) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.links[msg])
}

// tokenTestService is a service whose log lines and clock the test holds.
func tokenTestService(t *testing.T, cfg Config) (*Service, *linkRecorder, *time.Time) {
	t.Helper()
	d := newTestDeps(t)
	rec := &linkRecorder{Handler: slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}), links: map[string][]string{}}
	d.Logger = slog.New(rec)
	cfg.Password = cheap
	cfg.LogLinks = true
	if cfg.ResetRequestInterval == 0 {
		cfg.ResetRequestInterval = -1 // the test's clock stands still: no interval could pass
	}
	s := newTestService(t, d, cfg)
	now := time.Now().UTC()
	s.now = func() time.Time { return now }
	return s, rec, &now
}

// storedPayloads returns the user's stored events on subject, decoded.
func storedPayloads[M proto.Message](t *testing.T, s *Service, userID, subject string, newM func() M) []M {
	t.Helper()
	rows, err := s.deps.Pool.Query(t.Context(), "SELECT data FROM events WHERE aggregate_id = $1 AND subject = $2 ORDER BY version", userID, subject)
	require.NoError(t, err)
	defer rows.Close()
	var out []M
	for rows.Next() {
		var data []byte
		require.NoError(t, rows.Scan(&data))
		m := newM()
		require.NoError(t, proto.Unmarshal(data, m))
		out = append(out, m)
	}
	require.NoError(t, rows.Err())
	return out
}

func TestPasswordReset(t *testing.T) {
	t.Parallel()
	s, rec, now := tokenTestService(t, Config{LinkBaseURL: "https://id.example.com"})
	tenant := uuid.NewString()
	u := s.mustRegister(t, tenant, "ada@example.com")
	reset := func(email string) {
		t.Helper()
		require.NoError(t, s.requestPasswordReset(t.Context(), &identityv1.RequestPasswordResetRequest{TenantId: tenant, Email: email}))
	}
	resetWith := func(token, pw string) error {
		_, err := s.resetPassword(t.Context(), &identityv1.ResetPasswordRequest{TenantId: tenant, Token: token, NewPassword: pw})
		return err
	}

	reset("ADA@example.com")
	link, first := rec.lastToken(t, "password reset link")
	assert.Regexp(t, `^https://id\.example\.com/reset-password\?tenant_id=[-0-9a-f]{36}&token=[A-Za-z0-9_-]{43}$`, link)
	var stored []byte
	require.NoError(t, s.deps.Pool.QueryRow(t.Context(), "SELECT token_sha256 FROM user_tokens WHERE user_id = $1", u.GetId()).Scan(&stored))
	assert.Equal(t, tokenSum(first), stored, "only the SHA-256 is stored")
	var leaked int
	require.NoError(t, s.deps.Pool.QueryRow(t.Context(),
		"SELECT count(*) FROM events WHERE position(convert_to($1, 'UTF8') in data) > 0 OR position($1 in metadata::text) > 0", first).Scan(&leaked))
	assert.Zero(t, leaked, "the token is in no event")
	requested := storedPayloads(t, s, u.GetId(), "identity.user.password_reset_requested", func() *identityv1.UserPasswordResetRequested { return &identityv1.UserPasswordResetRequested{} })
	require.Len(t, requested, 1)
	assert.Equal(t, u.GetId(), requested[0].GetUserId())
	assert.NotEmpty(t, requested[0].GetTokenId())
	assert.WithinDuration(t, now.Add(time.Hour), requested[0].GetExpireTime().AsTime(), time.Second, "default lifetime 1h")

	t.Run("a newer token invalidates the older", func(t *testing.T) {
		reset("ada@example.com")
		_, second := rec.lastToken(t, "password reset link")
		assert.NotEqual(t, first, second)
		assert.ErrorIs(t, resetWith(first, "a brand new passphrase"), ErrInvalidToken)

		require.NoError(t, resetWith(second, "a brand new passphrase"))
		changed := storedPayloads(t, s, u.GetId(), "identity.user.password_changed", func() *identityv1.UserPasswordChanged { return &identityv1.UserPasswordChanged{} })
		require.Len(t, changed, 1)
		assert.Equal(t, identityv1.PasswordChangeReason_PASSWORD_CHANGE_REASON_RESET, changed[0].GetReason())
		assert.Empty(t, changed[0].GetKeepSessionId(), "a reset keeps no session")
		_, err := s.authenticate(t.Context(), &identityv1.AuthenticateUserRequest{TenantId: tenant, Email: "ada@example.com", Password: "a brand new passphrase"})
		require.NoError(t, err)

		assert.ErrorIs(t, resetWith(second, "yet another passphrase"), ErrInvalidToken, "a used token is refused")
	})

	t.Run("an expired token is refused", func(t *testing.T) {
		reset("ada@example.com")
		_, token := rec.lastToken(t, "password reset link")
		*now = now.Add(time.Hour + time.Second)
		assert.ErrorIs(t, resetWith(token, "an expired passphrase"), ErrInvalidToken)
	})

	t.Run("the new password follows the policy", func(t *testing.T) {
		reset("ada@example.com")
		_, token := rec.lastToken(t, "password reset link")
		err := resetWith(token, "qwertyuiop123")
		require.Error(t, err)
		assert.NotErrorIs(t, err, ErrInvalidToken)
		require.NoError(t, resetWith(token, "a policy-abiding passphrase"), "a refused password does not use the token")
	})

	t.Run("unknown and disabled users get the same answer and no link", func(t *testing.T) {
		before := rec.count("password reset link")
		reset("nobody@example.com")
		reset("not an address")
		other := s.mustRegister(t, tenant, "grace@example.com")
		_, _, err := s.setStatus(t.Context(), tenant, other.GetId(), true)
		require.NoError(t, err)
		reset("grace@example.com")
		assert.Equal(t, before, rec.count("password reset link"))
	})

	t.Run("a user disabled after the request cannot reset", func(t *testing.T) {
		reset("ada@example.com")
		_, token := rec.lastToken(t, "password reset link")
		_, _, err := s.setStatus(t.Context(), tenant, u.GetId(), true)
		require.NoError(t, err)
		assert.ErrorIs(t, resetWith(token, "a disabled passphrase"), ErrInvalidToken)
		_, _, err = s.setStatus(t.Context(), tenant, u.GetId(), false)
		require.NoError(t, err)
	})

	t.Run("a token of another tenant is unknown", func(t *testing.T) {
		reset("ada@example.com")
		_, token := rec.lastToken(t, "password reset link")
		_, err := s.resetPassword(t.Context(), &identityv1.ResetPasswordRequest{TenantId: uuid.NewString(), Token: token, NewPassword: "another passphrase"})
		assert.ErrorIs(t, err, ErrInvalidToken)
	})
}

func TestEmailVerification(t *testing.T) {
	t.Parallel()
	s, rec, now := tokenTestService(t, Config{VerificationTokenTTL: 2 * time.Hour})
	tenant := uuid.NewString()
	u := s.mustRegister(t, tenant, "ada@example.com")
	request := func() string {
		t.Helper()
		_, err := s.requestEmailVerification(t.Context(), &identityv1.RequestEmailVerificationRequest{TenantId: tenant, UserId: u.GetId()})
		require.NoError(t, err)
		link, token := rec.lastToken(t, "email verification link")
		assert.Contains(t, link, "http://localhost:8080/verify-email?", "the default base URL")
		return token
	}
	verify := func(token string) (*identityv1.User, error) {
		got, _, err := s.verifyEmail(t.Context(), &identityv1.VerifyEmailRequest{TenantId: tenant, Token: token})
		return got, err
	}

	old := request()
	expiring := request()
	_, err := verify(old)
	assert.ErrorIs(t, err, ErrInvalidToken, "superseded")
	*now = now.Add(2*time.Hour + time.Second)
	_, err = verify(expiring)
	assert.ErrorIs(t, err, ErrInvalidToken, "expired")

	token := request()
	got, err := verify(token)
	require.NoError(t, err)
	assert.True(t, got.GetEmailVerified())
	_, err = verify(token)
	assert.ErrorIs(t, err, ErrInvalidToken, "used")
	_, err = s.requestEmailVerification(t.Context(), &identityv1.RequestEmailVerificationRequest{TenantId: tenant, UserId: u.GetId()})
	assert.ErrorIs(t, err, ErrEmailVerified)
	res, err := s.authenticate(t.Context(), &identityv1.AuthenticateUserRequest{TenantId: tenant, Email: "ada@example.com", Password: testPassword})
	require.NoError(t, err)
	assert.True(t, res.GetEmailVerified())

	t.Run("changing the email unverifies it and voids its tokens", func(t *testing.T) {
		other := s.mustRegister(t, tenant, "grace@example.com")
		_, err := s.requestEmailVerification(t.Context(), &identityv1.RequestEmailVerificationRequest{TenantId: tenant, UserId: other.GetId()})
		require.NoError(t, err)
		_, pending := rec.lastToken(t, "email verification link")
		_, _, err = s.changeEmail(t.Context(), &identityv1.ChangeEmailRequest{TenantId: tenant, UserId: other.GetId(), Email: "grace@example.org"})
		require.NoError(t, err)
		_, err = verify(pending)
		assert.ErrorIs(t, err, ErrInvalidToken)

		_, _, err = s.changeEmail(t.Context(), &identityv1.ChangeEmailRequest{TenantId: tenant, UserId: u.GetId(), Email: "ada@example.org"})
		require.NoError(t, err)
		got, err := s.getUser(t.Context(), tenant, u.GetId())
		require.NoError(t, err)
		assert.False(t, got.GetEmailVerified())
	})
	assert.False(t, bytes.Contains([]byte(token), []byte("=")), "base64url without padding")
}
