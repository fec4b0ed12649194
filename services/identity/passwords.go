package identity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/pg"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/services/identity/store"
	"github.com/authms/authms/services/internal/rpc"
)

// importUser creates a user with a bcrypt hash from another system.
// maxBcryptCost is the highest bcrypt cost an imported hash may have: each
// step doubles the work, and one check at cost 31 would hold a hashing slot
// for days, starving every login and registration of the process.
const maxBcryptCost = 14

func (s *Service) importUser(ctx context.Context, req *identityv1.ImportUserRequest) (*identityv1.User, uuid.UUID, error) {
	tenantID, err := uuid.Parse(req.GetTenantId())
	if err != nil {
		return nil, uuid.Nil, invalidTenant
	}
	addr, err := parseEmail(req.GetEmail())
	if err != nil {
		return nil, uuid.Nil, err
	}
	// The schema's pattern checks the format; this guards direct callers.
	cost, err := bcrypt.Cost([]byte(req.GetBcryptHash()))
	if err != nil || !isBcrypt(req.GetBcryptHash()) || len(req.GetBcryptHash()) != 60 {
		return nil, uuid.Nil, &rpc.InvalidFieldError{Field: "bcrypt_hash", Rule: "bcrypt_hash.format", Message: "must be a bcrypt hash"}
	}
	if cost > maxBcryptCost {
		return nil, uuid.Nil, &rpc.InvalidFieldError{Field: "bcrypt_hash", Rule: "bcrypt_hash.cost",
			Message: fmt.Sprintf("bcrypt cost %d is above %d", cost, maxBcryptCost)}
	}
	return s.createUser(ctx, tenantID, addr, req.GetBcryptHash(), req.GetEmailVerified())
}

// userUpdate is one command on an existing user, run by updateUser.
type userUpdate struct {
	tenantID, userID uuid.UUID
	// decide returns the events of the command on the current user (none:
	// a no-op) or a domain error.
	decide func(u user) ([]events.Change, error)
	// write updates the inline tables for the decided events; version is
	// the user's version after them. Nil: the users row's version and
	// update time are bumped.
	write func(q *store.Queries, u user, version int64, now time.Time) error
}

// updateUser runs c in one transaction: lock the user, load it from its
// events, decide, write the inline tables, append the events. It returns
// the id of the user's newest event (an existing one for a no-op).
func (s *Service) updateUser(ctx context.Context, c userUpdate) (uuid.UUID, error) {
	var latest uuid.UUID
	err := pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		id := c.userID.String()
		if err := s.events.Lock(ctx, tx, id); err != nil {
			return err
		}
		evs, err := s.events.Load(ctx, tx, id)
		if err != nil {
			return err
		}
		u, err := userFromEvents(evs)
		if err != nil {
			return err
		}
		if !u.exists() || u.tenantID != c.tenantID.String() {
			return ErrUserNotFound
		}
		latest = evs[len(evs)-1].ID
		changes, err := c.decide(u)
		if err != nil || len(changes) == 0 {
			return err
		}
		q := store.New(tx)
		now := s.now().UTC().Truncate(time.Microsecond)
		version := u.version + int64(len(changes))
		if c.write != nil {
			err = c.write(q, u, version, now)
		} else {
			err = touchUser(ctx, q, c.tenantID, c.userID, version, now)
		}
		if err != nil {
			return err
		}
		agg := events.Aggregate{Type: aggregateUser, ID: id, TenantID: u.tenantID}
		appended, err := s.events.Append(ctx, tx, agg, u.version, changes...)
		if err != nil {
			return err
		}
		latest = appended[len(appended)-1].ID
		return nil
	})
	return latest, err
}

// touchUser records a user's new version on its row.
func touchUser(ctx context.Context, q *store.Queries, tenantID, userID uuid.UUID, version int64, now time.Time) error {
	n, err := q.TouchUser(ctx, store.TouchUserParams{TenantID: tenantID, ID: userID, Version: version, UpdatedAt: now})
	if err != nil {
		return fmt.Errorf("update user %s: %w", userID, err)
	}
	if n != 1 {
		return fmt.Errorf("user %s has events but no users row", userID)
	}
	return nil
}

// passwordSet is a new password for an existing user: its hash is
// computed, the policy checked.
type passwordSet struct {
	hash          string
	reason        identityv1.PasswordChangeReason
	keepSessionID string
}

// setPassword decides the password_changed event of a user.
func (u user) setPassword(p passwordSet) []events.Change {
	return []events.Change{{Name: eventUserPasswordChanged, Payload: &identityv1.UserPasswordChanged{
		UserId: u.id, TenantId: u.tenantID, Reason: p.reason, KeepSessionId: p.keepSessionID,
	}}}
}

// writePassword stores a new password for updateUser.
func writePassword(ctx context.Context, hash string) func(q *store.Queries, u user, version int64, now time.Time) error {
	return func(q *store.Queries, u user, version int64, now time.Time) error {
		tenantID, userID := uuid.MustParse(u.tenantID), uuid.MustParse(u.id)
		n, err := q.SetPasswordHash(ctx, store.SetPasswordHashParams{TenantID: tenantID, UserID: userID, PasswordHash: hash, UpdatedAt: now})
		if err != nil {
			return fmt.Errorf("set password of user %s: %w", u.id, err)
		}
		if n != 1 {
			return fmt.Errorf("user %s has no credential", u.id)
		}
		if err := recordPassword(ctx, q, tenantID, userID, hash, now); err != nil {
			return err
		}
		// A reset link sent before the new password must not replace it.
		if err := q.DeleteUserTokens(ctx, store.DeleteUserTokensParams{TenantID: tenantID, UserID: userID, Kind: tokenPasswordReset}); err != nil {
			return fmt.Errorf("delete reset tokens of user %s: %w", u.id, err)
		}
		return touchUser(ctx, q, tenantID, userID, version, now)
	}
}

// hashNewPassword checks a user's new_password against the tenant's policy
// and the user's history and returns its hash.
func (s *Service) hashNewPassword(ctx context.Context, tenantID, userID uuid.UUID, password string) (string, error) {
	row, err := store.New(s.deps.Pool).GetUser(ctx, store.GetUserParams{TenantID: tenantID, ID: userID})
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrUserNotFound
	}
	if err != nil {
		return "", fmt.Errorf("get user %s: %w", userID, err)
	}
	if err := s.checkNewPassword(ctx, newPassword{
		field: "new_password", password: password, tenantID: tenantID, userID: userID, canonicalEmail: row.EmailCanonical,
	}); err != nil {
		return "", err
	}
	return s.hasher.hash(ctx, password)
}

// changePassword replaces a user's password. The API has checked the
// current one first (reauthenticate), counted by risk.
func (s *Service) changePassword(ctx context.Context, req *identityv1.ChangePasswordRequest) (uuid.UUID, error) {
	tenantID, userID, err := parseIDs(req.GetTenantId(), req.GetUserId())
	if err != nil {
		return uuid.Nil, err
	}
	hash, err := s.hashNewPassword(ctx, tenantID, userID, req.GetNewPassword())
	if err != nil {
		return uuid.Nil, err
	}
	p := passwordSet{hash: hash, reason: identityv1.PasswordChangeReason_PASSWORD_CHANGE_REASON_CHANGED, keepSessionID: req.GetKeepSessionId()}
	latest, err := s.updateUser(ctx, userUpdate{
		tenantID: tenantID, userID: userID,
		decide: func(u user) ([]events.Change, error) { return u.setPassword(p), nil },
		write:  writePassword(ctx, hash),
	})
	if err != nil {
		return uuid.Nil, err
	}
	s.deps.Logger.InfoContext(ctx, "password changed", "tenant_id", tenantID, "user_id", userID)
	return latest, nil
}
