package profile

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/authms/authms/events"
	"github.com/authms/authms/projections"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
)

// subjectUserCreated is the identity event that gives a user a profile.
const subjectUserCreated = "identity.user.created"

// defaultProfiles is the projector that creates a default profile for every
// user identity registers (durable consumer "profile_default_profiles").
func (s *Service) defaultProfiles() projections.Projector {
	return projections.Projector{
		Service: Name,
		Name:    "default_profiles",
		Source:  "identity",
		Handlers: map[string]projections.Apply{
			subjectUserCreated: s.onUserCreated,
		},
	}
}

// onUserCreated creates the new user's default profile.
func (s *Service) onUserCreated(ctx context.Context, tx pgx.Tx, ev events.Event) error {
	var m identityv1.UserCreated
	if err := ev.Unmarshal(&m); err != nil {
		return err
	}
	tenantID, err := uuid.Parse(m.GetTenantId())
	if err != nil {
		return events.Permanent(fmt.Errorf("event %s: bad tenant_id %q", ev.ID, m.GetTenantId()))
	}
	userID, err := uuid.Parse(m.GetUserId())
	if err != nil {
		return events.Permanent(fmt.Errorf("event %s: bad user_id %q", ev.ID, m.GetUserId()))
	}
	return s.createDefaultProfile(ctx, tx, defaultProfile(tenantID, userID, m.GetEmail()))
}
