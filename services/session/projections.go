package session

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/authms/authms/events"
	"github.com/authms/authms/projections"
	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
)

// Tenant subjects the session policy projector consumes.
const (
	subjectTenantCreated        = "tenant.tenant.created"
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
			subjectTenantCreated:        cacheSessionPolicy,
			subjectSessionPolicyChanged: cacheSessionPolicy,
		},
		Rebuild: &projections.Rebuild{Tables: []string{sessionPoliciesTable.Name}},
	}
}

// cacheSessionPolicy upserts the session policy a tenant event carries.
func cacheSessionPolicy(ctx context.Context, tx pgx.Tx, ev events.Event) error {
	var (
		tenant string
		policy *tenantv1.SessionPolicy
	)
	switch ev.Subject() {
	case subjectTenantCreated:
		var m tenantv1.TenantCreated
		if err := ev.Unmarshal(&m); err != nil {
			return err
		}
		tenant, policy = m.GetTenantId(), m.GetSessionPolicy()
	case subjectSessionPolicyChanged:
		var m tenantv1.SessionPolicyChanged
		if err := ev.Unmarshal(&m); err != nil {
			return err
		}
		tenant, policy = m.GetTenantId(), m.GetPolicy()
	default:
		return events.Permanent(fmt.Errorf("event %s: unexpected subject %s", ev.ID, ev.Subject()))
	}
	tenantID, err := uuid.Parse(tenant)
	if err != nil {
		return events.Permanent(fmt.Errorf("event %s: bad tenant_id %q", ev.ID, tenant))
	}
	access, refresh, grace := policy.GetAccessTokenTtl().AsDuration(), policy.GetRefreshTokenTtl().AsDuration(), policy.GetRefreshReuseGrace().AsDuration()
	if access < minAccessTokenTTL || access > maxAccessTokenTTL || refresh < access || refresh.Seconds() > float64(1<<31-1) ||
		grace < 0 || grace > maxReuseGrace {
		return events.Permanent(fmt.Errorf("event %s: invalid session policy %v", ev.ID, policy))
	}
	_, err = sessionPoliciesTable.Upsert(ctx, tx, tenantID, int32(access.Seconds()), int32(refresh.Seconds()), int32(grace.Milliseconds()), ev.Version)
	return err
}
