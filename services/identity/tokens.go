package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/authms/authms/events"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/services/identity/store"
	"github.com/authms/authms/services/internal/email"
)

// Event names of the token flows.
const (
	eventEmailVerificationRequested = "email_verification_requested"
	eventEmailVerified              = "email_verified"
	eventPasswordResetRequested     = "password_reset_requested"
)

// Token kinds as stored in user_tokens.kind.
const (
	tokenEmailVerification = "email_verification"
	tokenPasswordReset     = "password_reset"
)

// tokenBytes is the entropy of a token: 32 random bytes, 43 base64url
// characters.
const tokenBytes = 32

// newToken returns a random token and its SHA-256, the only form stored.
func newToken() (token string, sum []byte, err error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, tokenSum(token), nil
}

func tokenSum(token string) []byte {
	s := sha256.Sum256([]byte(token))
	return s[:]
}

// issuedToken is a token about to be stored for a user.
type issuedToken struct {
	id        uuid.UUID
	token     string
	sum       []byte
	kind      string
	expiresAt time.Time
}

func (s *Service) issue(kind string, ttl time.Duration) (issuedToken, error) {
	token, sum, err := newToken()
	if err != nil {
		return issuedToken{}, err
	}
	return issuedToken{
		id: uuid.Must(uuid.NewV7()), token: token, sum: sum, kind: kind,
		expiresAt: s.now().UTC().Add(ttl).Truncate(time.Microsecond),
	}, nil
}

// writeToken replaces the user's tokens of the kind with t, for updateUser.
func writeToken(ctx context.Context, t issuedToken) func(q *store.Queries, u user, version int64, now time.Time) error {
	return func(q *store.Queries, u user, version int64, now time.Time) error {
		tenantID, userID := uuid.MustParse(u.tenantID), uuid.MustParse(u.id)
		if err := q.DeleteUserTokens(ctx, store.DeleteUserTokensParams{TenantID: tenantID, UserID: userID, Kind: t.kind}); err != nil {
			return fmt.Errorf("delete older %s tokens of user %s: %w", t.kind, u.id, err)
		}
		if err := q.InsertUserToken(ctx, store.InsertUserTokenParams{
			TokenSha256: t.sum, ID: t.id, TenantID: tenantID, UserID: userID, Kind: t.kind, CreatedAt: now, ExpiresAt: t.expiresAt,
		}); err != nil {
			return fmt.Errorf("insert %s token of user %s: %w", t.kind, u.id, err)
		}
		return touchUser(ctx, q, tenantID, userID, version, now)
	}
}

// link is the URL a user follows with a token.
func (s *Service) link(path, tenant, token string) string {
	return s.cfg.LinkBaseURL + path + "?" + url.Values{"tenant_id": {tenant}, "token": {token}}.Encode()
}

// requestEmailVerification issues an email verification token.
func (s *Service) requestEmailVerification(ctx context.Context, req *identityv1.RequestEmailVerificationRequest) (uuid.UUID, error) {
	tenantID, userID, err := parseIDs(req.GetTenantId(), req.GetUserId())
	if err != nil {
		return uuid.Nil, err
	}
	t, err := s.issue(tokenEmailVerification, s.cfg.VerificationTokenTTL)
	if err != nil {
		return uuid.Nil, err
	}
	var address string
	latest, err := s.updateUser(ctx, userUpdate{
		tenantID: tenantID, userID: userID,
		decide: func(u user) ([]events.Change, error) {
			if u.emailVerified {
				return nil, ErrEmailVerified
			}
			address = u.email
			return []events.Change{{Name: eventEmailVerificationRequested, Payload: &identityv1.UserEmailVerificationRequested{
				UserId: u.id, TenantId: u.tenantID, TokenId: t.id.String(), Email: u.email, ExpireTime: timestamppb.New(t.expiresAt),
			}}}, nil
		},
		write: writeToken(ctx, t),
	})
	if err != nil {
		return uuid.Nil, err
	}
	// The notification service will deliver the link; until it exists the
	// log line is how a developer gets it (authms dev sets LogLinks).
	if s.cfg.LogLinks {
		s.deps.Logger.InfoContext(ctx, "email verification link", "tenant_id", tenantID, "user_id", userID,
			"email", address, "token_id", t.id, "link", s.link("/verify-email", tenantID.String(), t.token))
	} else {
		s.deps.Logger.InfoContext(ctx, "email verification requested", "tenant_id", tenantID, "user_id", userID, "token_id", t.id)
	}
	return latest, nil
}

// tokenOwner finds the user of a live token; any failure is
// ErrInvalidToken.
func (s *Service) tokenOwner(ctx context.Context, tenant, token, kind string) (tenantID, userID uuid.UUID, err error) {
	tenantID, err = uuid.Parse(tenant)
	if err != nil {
		return uuid.Nil, uuid.Nil, invalidTenant
	}
	row, err := store.New(s.deps.Pool).GetUserToken(ctx, store.GetUserTokenParams{TenantID: tenantID, TokenSha256: tokenSum(token), Kind: kind})
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, uuid.Nil, ErrInvalidToken
	}
	if err != nil {
		return uuid.Nil, uuid.Nil, fmt.Errorf("get %s token: %w", kind, err)
	}
	if !s.now().Before(row.ExpiresAt) {
		return uuid.Nil, uuid.Nil, ErrInvalidToken
	}
	return tenantID, row.UserID, nil
}

// consumeToken deletes the live token of the user inside a command's
// transaction, so a token works once even under concurrent use.
func (s *Service) consumeToken(ctx context.Context, q *store.Queries, tenantID, userID uuid.UUID, token, kind string) error {
	n, err := q.ConsumeUserToken(ctx, store.ConsumeUserTokenParams{
		TenantID: tenantID, TokenSha256: tokenSum(token), Kind: kind, UserID: userID, Now: s.now().UTC(),
	})
	if err != nil {
		return fmt.Errorf("consume %s token: %w", kind, err)
	}
	if n != 1 {
		return ErrInvalidToken
	}
	return nil
}

// verifyEmail marks a user's email verified with a token.
func (s *Service) verifyEmail(ctx context.Context, req *identityv1.VerifyEmailRequest) (*identityv1.User, uuid.UUID, error) {
	tenantID, userID, err := s.tokenOwner(ctx, req.GetTenantId(), req.GetToken(), tokenEmailVerification)
	if err != nil {
		return nil, uuid.Nil, err
	}
	latest, err := s.updateUser(ctx, userUpdate{
		tenantID: tenantID, userID: userID,
		decide: func(u user) ([]events.Change, error) {
			return []events.Change{{Name: eventEmailVerified, Payload: &identityv1.UserEmailVerified{
				UserId: u.id, TenantId: u.tenantID, Email: u.email,
			}}}, nil
		},
		write: func(q *store.Queries, u user, version int64, now time.Time) error {
			if err := s.consumeToken(ctx, q, tenantID, userID, req.GetToken(), tokenEmailVerification); err != nil {
				return err
			}
			n, err := q.SetEmailVerified(ctx, store.SetEmailVerifiedParams{TenantID: tenantID, ID: userID, Version: version, UpdatedAt: now})
			if err != nil {
				return fmt.Errorf("verify email of user %s: %w", userID, err)
			}
			if n != 1 {
				return fmt.Errorf("user %s has events but no users row", userID)
			}
			return nil
		},
	})
	if errors.Is(err, ErrUserNotFound) {
		err = ErrInvalidToken
	}
	if err != nil {
		return nil, uuid.Nil, err
	}
	u, err := s.getUser(ctx, tenantID.String(), userID.String())
	return u, latest, err
}

// requestPasswordReset issues a reset token for the active user with the
// email, if there is one. Every outcome but a failure of the service
// answers the same (nil), and each does the same work before the
// database: one token is made whether or not it is stored.
func (s *Service) requestPasswordReset(ctx context.Context, req *identityv1.RequestPasswordResetRequest) error {
	tenantID, err := uuid.Parse(req.GetTenantId())
	if err != nil {
		return invalidTenant
	}
	t, err := s.issue(tokenPasswordReset, s.cfg.ResetTokenTTL)
	if err != nil {
		return err
	}
	addr, err := email.Parse(req.GetEmail())
	if err != nil {
		return nil // no user can have this address
	}
	login, err := store.New(s.deps.Pool).GetLogin(ctx, store.GetLoginParams{TenantID: tenantID, EmailCanonical: addr.Canonical})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get user of tenant %s by email: %w", tenantID, err)
	}
	last, err := store.New(s.deps.Pool).LastUserTokenTime(ctx, store.LastUserTokenTimeParams{TenantID: tenantID, UserID: login.ID, Kind: tokenPasswordReset})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return fmt.Errorf("last reset token of user %s: %w", login.ID, err)
	case s.cfg.ResetRequestInterval > 0 && s.now().Before(last.Add(s.cfg.ResetRequestInterval)):
		s.deps.Logger.InfoContext(ctx, "password reset not reissued: the last one is recent", "tenant_id", tenantID, "user_id", login.ID)
		return nil
	}
	_, err = s.updateUser(ctx, userUpdate{
		tenantID: tenantID, userID: login.ID,
		decide: func(u user) ([]events.Change, error) {
			if u.status != statusActive {
				return nil, nil // a disabled user resets nothing, silently
			}
			return []events.Change{{Name: eventPasswordResetRequested, Payload: &identityv1.UserPasswordResetRequested{
				UserId: u.id, TenantId: u.tenantID, TokenId: t.id.String(), ExpireTime: timestamppb.New(t.expiresAt),
			}}}, nil
		},
		write: writeToken(ctx, t),
	})
	if errors.Is(err, ErrUserNotFound) { // deleted meanwhile
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case login.Status != statusActive:
	case s.cfg.LogLinks:
		s.deps.Logger.InfoContext(ctx, "password reset link", "tenant_id", tenantID, "user_id", login.ID,
			"token_id", t.id, "link", s.link("/reset-password", tenantID.String(), t.token))
	default:
		s.deps.Logger.InfoContext(ctx, "password reset requested", "tenant_id", tenantID, "user_id", login.ID, "token_id", t.id)
	}
	return nil
}

// resetPassword sets a new password with a reset token.
func (s *Service) resetPassword(ctx context.Context, req *identityv1.ResetPasswordRequest) (uuid.UUID, error) {
	tenantID, userID, err := s.tokenOwner(ctx, req.GetTenantId(), req.GetToken(), tokenPasswordReset)
	if err != nil {
		return uuid.Nil, err
	}
	hash, err := s.hashNewPassword(ctx, tenantID, userID, req.GetNewPassword())
	if err != nil {
		return uuid.Nil, err
	}
	p := passwordSet{hash: hash, reason: identityv1.PasswordChangeReason_PASSWORD_CHANGE_REASON_RESET}
	setHash := writePassword(ctx, hash)
	latest, err := s.updateUser(ctx, userUpdate{
		tenantID: tenantID, userID: userID,
		decide: func(u user) ([]events.Change, error) {
			if u.status != statusActive {
				return nil, ErrInvalidToken // disabled after the token was issued
			}
			return u.setPassword(p), nil
		},
		write: func(q *store.Queries, u user, version int64, now time.Time) error {
			if err := s.consumeToken(ctx, q, tenantID, userID, req.GetToken(), tokenPasswordReset); err != nil {
				return err
			}
			return setHash(q, u, version, now)
		},
	})
	if errors.Is(err, ErrUserNotFound) {
		err = ErrInvalidToken
	}
	if err != nil {
		return uuid.Nil, err
	}
	s.deps.Logger.InfoContext(ctx, "password reset", "tenant_id", tenantID, "user_id", userID)
	return latest, nil
}
