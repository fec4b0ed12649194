package identity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/services/identity/store"
	"github.com/authms/authms/services/internal/email"
)

// authenticate checks a user's email and password. Every failure is
// ErrInvalidCredentials after one password hash: the stored one when the
// user exists and a password was given, the hasher's dummy otherwise, so
// neither the answer nor the work tells a known email from an unknown one.
func (s *Service) authenticate(ctx context.Context, req *identityv1.AuthenticateUserRequest) (*identityv1.AuthenticateUserResponse, error) {
	tenantID, err := uuid.Parse(req.GetTenantId())
	if err != nil {
		return nil, invalidTenant
	}
	password := req.GetPassword()
	var (
		login store.GetLoginRow
		found bool
	)
	// An address identity would not register is an unknown one.
	if addr, err := email.Parse(req.GetEmail()); err == nil {
		login, err = store.New(s.deps.Pool).GetLogin(ctx, store.GetLoginParams{TenantID: tenantID, EmailCanonical: addr.Canonical})
		found = err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("get login of tenant %s: %w", tenantID, err)
		}
	}
	if !found || password == "" {
		if err := s.hasher.verifyDummy(ctx, password); err != nil {
			return nil, err
		}
		return nil, ErrInvalidCredentials
	}
	ok, err := s.hasher.verify(ctx, login.PasswordHash, password)
	if err != nil {
		return nil, fmt.Errorf("verify password of user %s: %w", login.ID, err)
	}
	if !ok || login.Status != statusActive {
		return nil, ErrInvalidCredentials
	}
	if s.hasher.needsUpgrade(login.PasswordHash) {
		s.upgradeHash(ctx, tenantID, login.ID, login.PasswordHash, password)
	}
	roles, err := store.New(s.deps.Pool).ListUserRoles(ctx, store.ListUserRolesParams{TenantID: tenantID, UserID: login.ID})
	if err != nil {
		return nil, fmt.Errorf("roles of user %s: %w", login.ID, err)
	}
	return &identityv1.AuthenticateUserResponse{UserId: login.ID.String(), Email: login.Email, Roles: roles, EmailVerified: login.EmailVerified}, nil
}

// upgradeHash replaces old, the user's hash that password just matched, by
// a hash with the configured parameters. The user is authenticated either
// way, so a failure is logged, not returned: the next login tries again.
func (s *Service) upgradeHash(ctx context.Context, tenantID, userID uuid.UUID, old, password string) {
	hash, err := s.hasher.hash(ctx, password)
	if err != nil {
		s.deps.Logger.WarnContext(ctx, "password hash upgrade failed", "tenant_id", tenantID, "user_id", userID, "err", err)
		return
	}
	n, err := store.New(s.deps.Pool).UpgradePasswordHash(ctx, store.UpgradePasswordHashParams{
		NewHash: hash, UpdatedAt: s.now().UTC().Truncate(time.Microsecond), UserID: userID, TenantID: tenantID, OldHash: old,
	})
	if err != nil {
		s.deps.Logger.WarnContext(ctx, "password hash upgrade failed", "tenant_id", tenantID, "user_id", userID, "err", err)
		return
	}
	if n == 1 {
		s.deps.Logger.InfoContext(ctx, "password hash upgraded", "tenant_id", tenantID, "user_id", userID)
	}
}
