package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/authms/authms/services/billing/store"
)

// customer is billing's view of a user, read from the user_profiles cache
// with the email decrypted.
type customer struct {
	TenantID  uuid.UUID
	UserID    uuid.UUID
	Email     string
	Version   int64
	UpdatedAt time.Time
}

// getCustomer returns the cached user of a tenant, or errCustomerNotFound.
func (s *Service) getCustomer(ctx context.Context, tenantID, userID uuid.UUID) (customer, error) {
	row, err := store.New(s.deps.Pool).GetUserProfile(ctx, store.GetUserProfileParams{TenantID: tenantID, UserID: userID})
	if errors.Is(err, pgx.ErrNoRows) {
		return customer{}, errCustomerNotFound
	}
	if err != nil {
		return customer{}, fmt.Errorf("get user profile %s: %w", userID, err)
	}
	return s.decrypt(ctx, store.FindUserProfilesByEmailHashRow(row))
}

// findCustomerByEmail returns the tenant's cached user with email (exact
// match, ignoring case and surrounding spaces), or errCustomerNotFound.
func (s *Service) findCustomerByEmail(ctx context.Context, tenantID uuid.UUID, email string) (customer, error) {
	hash, err := s.email.blindIndex(ctx, tenantID, email)
	if err != nil {
		return customer{}, err
	}
	rows, err := store.New(s.deps.Pool).FindUserProfilesByEmailHash(ctx, store.FindUserProfilesByEmailHashParams{TenantID: tenantID, EmailHash: hash})
	if err != nil {
		return customer{}, fmt.Errorf("find user profile by email hash: %w", err)
	}
	for _, row := range rows {
		c, err := s.decrypt(ctx, row)
		if err != nil {
			return customer{}, err
		}
		// The hash matched; comparing the plaintext as well costs nothing and
		// makes a wrong answer impossible even with a stale index.
		if normalizeEmail(c.Email) == normalizeEmail(email) {
			return c, nil
		}
	}
	return customer{}, errCustomerNotFound
}

func (s *Service) decrypt(ctx context.Context, row store.FindUserProfilesByEmailHashRow) (customer, error) {
	email, err := s.email.open(ctx, row.TenantID, row.UserID, row.EmailCiphertext)
	if err != nil {
		return customer{}, err
	}
	return customer{
		TenantID:  row.TenantID,
		UserID:    row.UserID,
		Email:     email,
		Version:   row.Version,
		UpdatedAt: row.UpdatedAt,
	}, nil
}
