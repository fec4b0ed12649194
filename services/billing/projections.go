package billing

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/authms/authms/events"
	"github.com/authms/authms/projections"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
)

// Identity subjects the user_profiles projector consumes.
const (
	subjectUserCreated      = "identity.user.created"
	subjectUserEmailChanged = "identity.user.email_changed"
)

// userProfilesTable is the cache table; rows are keyed by user and guarded by
// the identity user's aggregate version.
var userProfilesTable = projections.Table{
	Name:    "user_profiles",
	Key:     []string{"user_id"},
	Columns: []string{"tenant_id", "email_ciphertext", "email_hash", "updated_at"},
}

// userProfiles is the projector that keeps user_profiles in step with
// identity's users (durable consumer "billing_user_profiles").
func (s *Service) userProfiles() projections.Projector {
	return projections.Projector{
		Service: Name,
		Name:    "user_profiles",
		Source:  "identity",
		Handlers: map[string]projections.Apply{
			subjectUserCreated:      s.onUserCreated,
			subjectUserEmailChanged: s.onUserEmailChanged,
		},
	}
}

func (s *Service) onUserCreated(ctx context.Context, tx pgx.Tx, ev events.Event) error {
	var m identityv1.UserCreated
	if err := ev.Unmarshal(&m); err != nil {
		return err
	}
	return s.cacheUser(ctx, tx, ev, m.GetTenantId(), m.GetUserId(), m.GetEmail())
}

func (s *Service) onUserEmailChanged(ctx context.Context, tx pgx.Tx, ev events.Event) error {
	var m identityv1.UserEmailChanged
	if err := ev.Unmarshal(&m); err != nil {
		return err
	}
	return s.cacheUser(ctx, tx, ev, m.GetTenantId(), m.GetUserId(), m.GetEmail())
}

// cacheUser writes the user's row as of ev's aggregate version, unless the
// row already reflects that version or a newer one.
func (s *Service) cacheUser(ctx context.Context, tx pgx.Tx, ev events.Event, tenant, user, email string) error {
	tenantID, err := uuid.Parse(tenant)
	if err != nil {
		return events.Permanent(fmt.Errorf("event %s: bad tenant_id %q", ev.ID, tenant))
	}
	userID, err := uuid.Parse(user)
	if err != nil {
		return events.Permanent(fmt.Errorf("event %s: bad user_id %q", ev.ID, user))
	}
	if email == "" {
		return events.Permanent(fmt.Errorf("event %s: no email", ev.ID))
	}
	sealed, err := s.email.seal(ctx, tenantID, userID, email)
	if err != nil {
		return err
	}
	hash, err := s.email.blindIndex(ctx, tenantID, email)
	if err != nil {
		return err
	}
	updatedAt := ev.Time
	if updatedAt.IsZero() {
		updatedAt = time.Now()
	}
	if _, err := userProfilesTable.Upsert(ctx, tx, userID, tenantID, sealed, hash, updatedAt, ev.Version); err != nil {
		return err
	}
	return nil
}
