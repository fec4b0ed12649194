package session

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/authms/authms/events"
	"github.com/authms/authms/projections"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	sessionv1 "github.com/authms/authms/schemas/gen/authms/session/v1"
	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/services/internal/tenantevents"
	"github.com/authms/authms/services/session/store"
)

// Tenant subjects the session policy projector consumes.
const (
	subjectSessionPolicyChanged = "tenant.tenant.session_policy_changed"
)

// sessionPoliciesTable caches each tenant's session policy, guarded by the
// tenant aggregate's version.
var sessionPoliciesTable = projections.Table{
	Name:    "tenant_session_policies",
	Key:     []string{"tenant_id"},
	Columns: []string{"access_token_ttl_seconds", "refresh_token_ttl_seconds", "refresh_reuse_grace_millis"},
}

// sessionPoliciesProjector keeps tenant_session_policies in step with the
// tenants' session policies (durable consumer
// "session_tenant_session_policies"). It is a pure cache, rebuildable by
// replay.
func (s *Service) sessionPoliciesProjector() projections.Projector {
	return projections.Projector{
		Service: Name,
		Name:    "tenant_session_policies",
		Source:  "tenant",
		Handlers: map[string]projections.Apply{
			tenantevents.SubjectCreated: cacheSessionPolicy,
			subjectSessionPolicyChanged: cacheSessionPolicy,
		},
		Rebuild: &projections.Rebuild{Tables: []string{sessionPoliciesTable.Name}},
	}
}

// sessionPolicyPart reads a tenant's session policy from the tenant events that carry it.
var sessionPolicyPart = tenantevents.Part[*tenantv1.SessionPolicyChanged, *tenantv1.SessionPolicy]{
	Subject:     subjectSessionPolicyChanged,
	New:         func() *tenantv1.SessionPolicyChanged { return new(tenantv1.SessionPolicyChanged) },
	FromCreated: (*tenantv1.TenantCreated).GetSessionPolicy,
	FromChange:  (*tenantv1.SessionPolicyChanged).GetPolicy,
}

// cacheSessionPolicy upserts the session policy a tenant event carries.
func cacheSessionPolicy(ctx context.Context, tx pgx.Tx, ev events.Event) error {
	tenantID, policy, err := sessionPolicyPart.Decode(ev)
	if err != nil {
		return err
	}
	access, refresh, grace := policy.GetAccessTokenTtl().AsDuration(), policy.GetRefreshTokenTtl().AsDuration(), policy.GetRefreshReuseGrace().AsDuration()
	if access < minAccessTokenTTL || access > maxAccessTokenTTL || refresh < access || refresh.Seconds() > float64(1<<31-1) ||
		grace < 0 || grace > maxReuseGrace {
		return events.Permanent(fmt.Errorf("event %s: invalid session policy %v", ev.ID, policy))
	}
	_, err = sessionPoliciesTable.Upsert(ctx, tx, tenantID, int32(access.Seconds()), int32(refresh.Seconds()), int32(grace.Milliseconds()), ev.Version)
	return err
}

// tenantStatusesTable caches whether each tenant is suspended, guarded by
// the tenant aggregate's version.
var tenantStatusesTable = projections.Table{
	Name:    "tenant_statuses",
	Key:     []string{"tenant_id"},
	Columns: []string{"suspended"},
}

// tenantStatusesProjector keeps tenant_statuses in step with the tenants'
// status (durable consumer "session_tenant_statuses": tenant.tenant.created,
// updated, suspended, reactivated), so Login and Refresh refuse a suspended
// tenant's users. It is a pure cache, rebuildable by replay.
func (s *Service) tenantStatusesProjector() projections.Projector {
	handlers := make(map[string]projections.Apply, len(tenantevents.StatusSubjects))
	for _, subject := range tenantevents.StatusSubjects {
		handlers[subject] = cacheTenantStatus
	}
	return projections.Projector{
		Service:  Name,
		Name:     "tenant_statuses",
		Source:   "tenant",
		Handlers: handlers,
		Rebuild:  &projections.Rebuild{Tables: []string{tenantStatusesTable.Name}},
	}
}

// cacheTenantStatus upserts the status a tenant event leaves the tenant in.
func cacheTenantStatus(ctx context.Context, tx pgx.Tx, ev events.Event) error {
	tenantID, status, err := tenantevents.Status(ev)
	if err != nil {
		return err
	}
	if status != tenantv1.TenantStatus_TENANT_STATUS_ACTIVE && status != tenantv1.TenantStatus_TENANT_STATUS_SUSPENDED {
		return events.Permanent(fmt.Errorf("event %s: invalid tenant status %v", ev.ID, status))
	}
	_, err = tenantStatusesTable.Upsert(ctx, tx, tenantID, status == tenantv1.TenantStatus_TENANT_STATUS_SUSPENDED, ev.Version)
	return err
}

// tenantSuspensionsProjector revokes every live session of a tenant the
// operator suspends (durable consumer "session_tenant_suspensions":
// tenant.tenant.suspended), so verifiers that follow
// session.session.revoked refuse the sessions' access tokens on their
// next call. The revocations commit with the consumer's processed_events
// row, so each suspension revokes once. Like user_revocations it reacts
// rather than caches and has no rebuild: replaying it would revoke
// sessions opened since a reactivation.
func (s *Service) tenantSuspensionsProjector() projections.Projector {
	return projections.Projector{
		Service:  Name,
		Name:     "tenant_suspensions",
		Source:   "tenant",
		Handlers: map[string]projections.Apply{tenantevents.SubjectSuspended: s.revokeOnSuspension},
	}
}

// revokeOnSuspension revokes the live sessions of the suspended tenant.
func (s *Service) revokeOnSuspension(ctx context.Context, tx pgx.Tx, ev events.Event) error {
	tenantID, _, err := tenantevents.Status(ev)
	if err != nil {
		return err
	}
	rows, err := store.New(tx).LockLiveSessionsOfTenant(ctx, store.LockLiveSessionsOfTenantParams{TenantID: tenantID, Now: s.now()})
	if err != nil {
		return fmt.Errorf("lock sessions of tenant %s: %w", tenantID, err)
	}
	ctx, now := events.CausedBy(ctx, ev), s.now()
	for _, r := range rows {
		sess := store.Session{ID: r.ID, TenantID: tenantID, UserID: r.UserID}
		if err := s.revokeLocked(ctx, tx, sess, sessionv1.RevokeReason_REVOKE_REASON_TENANT_SUSPENDED, now); err != nil {
			return err
		}
	}
	if len(rows) > 0 {
		s.deps.Logger.InfoContext(ctx, "sessions of a suspended tenant revoked", "tenant_id", tenantID, "sessions", len(rows))
	}
	return nil
}

// Identity subjects the revocation projector consumes.
const (
	subjectPasswordChanged = "identity.user.password_changed"
	subjectUserDisabled    = "identity.user.disabled"
	subjectUserDeleted     = "identity.user.deleted"
	subjectRolesChanged    = "identity.user.roles_changed"
)

// userRevocationsProjector ends the sessions of users whose credentials
// or standing changed (durable consumer "session_user_revocations"): a
// password reset revokes every session of the user, a password change all
// but the one it was made from, a disabled or deleted user all, and so does
// any change of the user's roles: the access tokens carry the old set, and
// a removed role must stop working on the next call, not when the token
// expires. Granting a role revokes too, because the event does not say
// which roles went; role changes are rare and a fresh login carries the new
// set. The
// revocations and their session.session.revoked events commit with the
// consumer's processed_events row, so each identity event revokes once. It
// reacts rather than caches, so it has no rebuild: replaying it would
// revoke sessions opened since.
func (s *Service) userRevocationsProjector() projections.Projector {
	return projections.Projector{
		Service: Name,
		Name:    "user_revocations",
		Source:  "identity",
		Handlers: map[string]projections.Apply{
			subjectPasswordChanged: s.revokeOnIdentityEvent,
			subjectUserDisabled:    s.revokeOnIdentityEvent,
			subjectUserDeleted:     s.revokeOnIdentityEvent,
			subjectRolesChanged:    s.revokeOnIdentityEvent,
		},
	}
}

// revokeOnIdentityEvent revokes the sessions an identity event ends.
func (s *Service) revokeOnIdentityEvent(ctx context.Context, tx pgx.Tx, ev events.Event) error {
	var (
		tenant, user, keep string
		reason             sessionv1.RevokeReason
	)
	switch ev.Subject() {
	case subjectPasswordChanged:
		var m identityv1.UserPasswordChanged
		if err := ev.Unmarshal(&m); err != nil {
			return err
		}
		tenant, user, reason = m.GetTenantId(), m.GetUserId(), sessionv1.RevokeReason_REVOKE_REASON_PASSWORD_RESET
		if m.GetReason() != identityv1.PasswordChangeReason_PASSWORD_CHANGE_REASON_RESET {
			keep, reason = m.GetKeepSessionId(), sessionv1.RevokeReason_REVOKE_REASON_PASSWORD_CHANGED
		}
	case subjectUserDisabled:
		var m identityv1.UserDisabled
		if err := ev.Unmarshal(&m); err != nil {
			return err
		}
		tenant, user, reason = m.GetTenantId(), m.GetUserId(), sessionv1.RevokeReason_REVOKE_REASON_USER_DISABLED
	case subjectUserDeleted:
		var m identityv1.UserDeleted
		if err := ev.Unmarshal(&m); err != nil {
			return err
		}
		tenant, user, reason = m.GetTenantId(), m.GetUserId(), sessionv1.RevokeReason_REVOKE_REASON_USER_DELETED
	case subjectRolesChanged:
		var m identityv1.UserRolesChanged
		if err := ev.Unmarshal(&m); err != nil {
			return err
		}
		tenant, user, reason = m.GetTenantId(), m.GetUserId(), sessionv1.RevokeReason_REVOKE_REASON_ROLES_CHANGED
	default:
		return events.Permanent(fmt.Errorf("event %s: unexpected subject %s", ev.ID, ev.Subject()))
	}
	tenantID, terr := uuid.Parse(tenant)
	userID, uerr := uuid.Parse(user)
	if terr != nil || uerr != nil {
		return events.Permanent(fmt.Errorf("event %s: bad tenant_id %q or user_id %q", ev.ID, tenant, user))
	}
	var except uuid.UUID
	if keep != "" {
		id, err := uuid.Parse(keep)
		if err != nil {
			return events.Permanent(fmt.Errorf("event %s: bad keep_session_id %q", ev.ID, keep))
		}
		except = id
	}
	n, err := s.revokeAll(events.CausedBy(ctx, ev), tx, tenantID, userID, except, reason)
	if err != nil {
		return err
	}
	if n > 0 {
		s.deps.Logger.InfoContext(ctx, "sessions revoked", "tenant_id", tenantID, "user_id", userID, "sessions", n, "reason", reason.String())
	}
	return nil
}
