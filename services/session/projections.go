package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/pg"
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
// tenant's users, and has a suspended tenant's live sessions revoked
// ([Service.revokeSuspended]). It is a pure cache, rebuildable by replay:
// the revocations follow from the statuses, not from the events.
func (s *Service) tenantStatusesProjector() projections.Projector {
	return projections.Projector{
		Service:  Name,
		Name:     "tenant_statuses",
		Source:   "tenant",
		Handlers: tenantevents.StatusHandlers(s.cacheTenantStatus),
		Rebuild:  &projections.Rebuild{Tables: []string{tenantStatusesTable.Name}},
	}
}

// cacheTenantStatus upserts the status a tenant event leaves the tenant in,
// holding the tenant's status lock exclusively (store.LockTenantStatus)
// until it commits. Taking the lock waits for every Login of the tenant in
// flight: each holds the lock shared from before it reads the status until
// its session commits, whether or not the tenant had a status row. A
// suspension then wakes the revoker, whose batches share the lock too, so
// the revoker reads the status after this commit: it sees the suspension
// and every session of a Login that read the tenant active, and a Login
// that starts later waits for this commit and is refused. A reactivation
// waits for a revocation batch in progress, and the next batch sees the
// tenant active and stops. Status events are rare, so the exclusive lock
// holds up a tenant's logins seldom and briefly.
func (s *Service) cacheTenantStatus(ctx context.Context, tx pgx.Tx, ev events.Event) error {
	tenantID, status, err := tenantevents.Status(ev)
	if err != nil {
		return err
	}
	if status != tenantv1.TenantStatus_TENANT_STATUS_ACTIVE && status != tenantv1.TenantStatus_TENANT_STATUS_SUSPENDED {
		return events.Permanent(fmt.Errorf("event %s: invalid tenant status %v", ev.ID, status))
	}
	suspended := status == tenantv1.TenantStatus_TENANT_STATUS_SUSPENDED
	if err := store.New(tx).LockTenantStatus(ctx, tenantID); err != nil {
		return fmt.Errorf("lock status of tenant %s: %w", tenantID, err)
	}
	if _, err := tenantStatusesTable.Upsert(ctx, tx, tenantID, suspended, ev.Version); err != nil {
		return err
	}
	if suspended {
		select {
		case s.suspensions <- suspension{tenantID: tenantID, cause: ev}:
		default: // the revoker is behind; its periodic sweep finds the tenant
		}
	}
	return nil
}

// suspension asks the revoker to revoke the live sessions of a tenant
// suspended by cause.
type suspension struct {
	tenantID uuid.UUID
	cause    events.Event
}

// revokeBatchSize bounds the sessions revoked in one transaction, so a tenant
// with very many sessions is revoked in many short transactions rather than
// one that holds every session's lock and could outlast a consumer's ack
// wait.
const revokeBatchSize = 500

// revokeSuspended revokes the live sessions of suspended tenants until ctx
// ends: a tenant's as soon as its suspension is projected
// (cacheTenantStatus), and every Config.KeyCheckInterval those of every
// tenant session knows suspended, which catches a wake-up lost to a
// restart, a full queue or a rebuild. A suspended tenant has no live
// session for long, whatever the order things happened in.
func (s *Service) revokeSuspended(ctx context.Context) {
	t := time.NewTicker(s.cfg.KeyCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case sus := <-s.suspensions:
			if err := s.revokeSessionsOf(events.CausedBy(ctx, sus.cause), sus.tenantID); err != nil && ctx.Err() == nil {
				s.deps.Logger.WarnContext(ctx, "revoking the sessions of a suspended tenant failed; retrying at the next sweep", "tenant_id", sus.tenantID, "err", err)
			}
		case <-t.C:
			ids, err := store.New(s.deps.Pool).ListSuspendedTenantsWithLiveSessions(ctx, s.now())
			if err != nil && ctx.Err() == nil {
				s.deps.Logger.WarnContext(ctx, "listing suspended tenants with live sessions failed; retrying at the next sweep", "err", err)
			}
			for _, id := range ids {
				if err := s.revokeSessionsOf(ctx, id); err != nil && ctx.Err() == nil {
					s.deps.Logger.WarnContext(ctx, "revoking the sessions of a suspended tenant failed; retrying at the next sweep", "tenant_id", id, "err", err)
				}
			}
		}
	}
}

// revokeSessionsOf revokes the live sessions of a tenant while session
// knows it suspended, Service.revokeBatch sessions per transaction, in id
// order. Each batch holds the tenant's status lock shared, so it reads the
// status after a status change in progress commits, and a reactivation
// waits for the batch and stops the rest: sessions it has not reached stay
// live.
func (s *Service) revokeSessionsOf(ctx context.Context, tenantID uuid.UUID) error {
	total := 0
	defer func() {
		if total > 0 {
			s.deps.Logger.InfoContext(ctx, "sessions of a suspended tenant revoked", "tenant_id", tenantID, "sessions", total)
		}
	}()
	var after uuid.UUID // the last session revoked; uuid.Nil sorts first
	for {
		n := 0
		err := pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
			q := store.New(tx)
			if err := q.ShareTenantStatus(ctx, tenantID); err != nil {
				return fmt.Errorf("share status lock of tenant %s: %w", tenantID, err)
			}
			suspended, err := q.GetTenantSuspended(ctx, tenantID)
			if errors.Is(err, pgx.ErrNoRows) || (err == nil && !suspended) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read status of tenant %s: %w", tenantID, err)
			}
			now := s.now()
			rows, err := q.LockLiveSessionsOfTenant(ctx, store.LockLiveSessionsOfTenantParams{TenantID: tenantID, Now: now, After: after, Max: s.revokeBatch})
			if err != nil {
				return fmt.Errorf("lock sessions of tenant %s: %w", tenantID, err)
			}
			for _, r := range rows {
				sess := store.Session{ID: r.ID, TenantID: tenantID, UserID: r.UserID}
				if err := s.revokeLocked(ctx, tx, sess, sessionv1.RevokeReason_REVOKE_REASON_TENANT_SUSPENDED, now); err != nil {
					return err
				}
			}
			if n = len(rows); n > 0 {
				after = rows[n-1].ID
			}
			return nil
		})
		if err != nil {
			return err
		}
		total += n
		if n < int(s.revokeBatch) {
			return nil
		}
	}
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
