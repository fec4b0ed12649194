package identity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/authms/authms/events"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/services/identity/store"
)

// disable decides the disabled event; a disabled user is a no-op.
func (u user) disable() []events.Change {
	if u.status == statusDisabled {
		return nil
	}
	return []events.Change{{Name: eventUserDisabled, Payload: &identityv1.UserDisabled{UserId: u.id, TenantId: u.tenantID}}}
}

// enable decides the enabled event; an active user is a no-op.
func (u user) enable() []events.Change {
	if u.status == statusActive {
		return nil
	}
	return []events.Change{{Name: eventUserEnabled, Payload: &identityv1.UserEnabled{UserId: u.id, TenantId: u.tenantID}}}
}

// remove decides the deleted event.
func (u user) remove() []events.Change {
	return []events.Change{{Name: eventUserDeleted, Payload: &identityv1.UserDeleted{UserId: u.id, TenantId: u.tenantID}}}
}

// setStatus disables or enables a user; an admin may not disable
// themselves ([ErrOwnAdmin]). It returns the user and the id
// of its newest event.
func (s *Service) setStatus(ctx context.Context, tenant, id string, disable bool) (*identityv1.User, uuid.UUID, error) {
	tenantID, userID, err := parseIDs(tenant, id)
	if err != nil {
		return nil, uuid.Nil, err
	}
	status := statusActive
	if disable {
		status = statusDisabled
	}
	latest, err := s.updateUser(ctx, userUpdate{
		tenantID: tenantID, userID: userID,
		decide: func(u user) ([]events.Change, error) {
			if disable {
				if u.ownAdmin(ctx) && u.status != statusDisabled {
					return nil, ErrOwnAdmin
				}
				return u.disable(), nil
			}
			return u.enable(), nil
		},
		write: func(q *store.Queries, _ user, version int64, now time.Time) error {
			n, err := q.SetUserStatus(ctx, store.SetUserStatusParams{TenantID: tenantID, ID: userID, Status: status, Version: version, UpdatedAt: now})
			if err != nil {
				return fmt.Errorf("set status of user %s: %w", userID, err)
			}
			if n != 1 {
				return fmt.Errorf("user %s has events but no users row", userID)
			}
			return nil
		},
	})
	if err != nil {
		return nil, uuid.Nil, err
	}
	u, err := s.getUser(ctx, tenant, id)
	return u, latest, err
}

// deleteUser deletes a user's rows and records its deleted event. Users
// may delete themselves, but not an admin ([ErrOwnAdmin]). The
// events table keeps the user's history; crypto-shredding of the PII in it
// is a later step.
func (s *Service) deleteUser(ctx context.Context, tenant, id string) (uuid.UUID, error) {
	tenantID, userID, err := parseIDs(tenant, id)
	if err != nil {
		return uuid.Nil, err
	}
	latest, err := s.updateUser(ctx, userUpdate{
		tenantID: tenantID, userID: userID,
		decide: func(u user) ([]events.Change, error) {
			if u.ownAdmin(ctx) {
				return nil, ErrOwnAdmin
			}
			return u.remove(), nil
		},
		write: func(q *store.Queries, _ user, _ int64, _ time.Time) error {
			return deleteUserRows(ctx, q, tenantID, userID)
		},
	})
	if err != nil {
		return uuid.Nil, err
	}
	s.deps.Logger.InfoContext(ctx, "user deleted", "tenant_id", tenantID, "user_id", userID)
	return latest, nil
}

// deleteUserRows removes every row of a user from the inline tables.
func deleteUserRows(ctx context.Context, q *store.Queries, tenantID, userID uuid.UUID) error {
	steps := []struct {
		what string
		run  func() error
	}{
		{"password history", func() error {
			return q.DeletePasswordHistory(ctx, store.DeletePasswordHistoryParams{TenantID: tenantID, UserID: userID})
		}},
		{"roles", func() error {
			return q.DeleteUserRoles(ctx, store.DeleteUserRolesParams{TenantID: tenantID, UserID: userID})
		}},
		{"tokens", func() error {
			return q.DeleteAllUserTokens(ctx, store.DeleteAllUserTokensParams{TenantID: tenantID, UserID: userID})
		}},
		{"credential", func() error {
			return q.DeleteCredential(ctx, store.DeleteCredentialParams{TenantID: tenantID, UserID: userID})
		}},
	}
	for _, step := range steps {
		if err := step.run(); err != nil {
			return fmt.Errorf("delete %s of user %s: %w", step.what, userID, err)
		}
	}
	n, err := q.DeleteUser(ctx, store.DeleteUserParams{TenantID: tenantID, ID: userID})
	if err != nil {
		return fmt.Errorf("delete user %s: %w", userID, err)
	}
	if n != 1 {
		return errors.New("user has events but no users row")
	}
	return nil
}
