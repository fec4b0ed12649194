package risk

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/projections"
	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/services/internal/tenantevents"
)

// Tenant subjects the lockout policy projector consumes.
const (
	subjectLockoutPolicyChanged = "tenant.tenant.lockout_policy_changed"
)

// lockoutPoliciesTable caches each tenant's lockout policy, guarded by the
// tenant aggregate's version.
var lockoutPoliciesTable = projections.Table{
	Name:    "tenant_lockout_policies",
	Key:     []string{"tenant_id"},
	Columns: []string{"max_failures", "window_seconds", "duration_seconds"},
}

// lockoutPoliciesProjector keeps tenant_lockout_policies in step with the
// tenants' lockout policies (durable consumer
// "risk_tenant_lockout_policies"). It is a pure cache, rebuildable by
// replay.
func (s *Service) lockoutPoliciesProjector() projections.Projector {
	return projections.Projector{
		Service: Name,
		Name:    "tenant_lockout_policies",
		Source:  "tenant",
		Handlers: map[string]projections.Apply{
			tenantevents.SubjectCreated: cacheLockoutPolicy,
			subjectLockoutPolicyChanged: cacheLockoutPolicy,
		},
		Rebuild: &projections.Rebuild{Tables: []string{lockoutPoliciesTable.Name}},
	}
}

// lockoutPolicyPart reads a tenant's lockout policy from the tenant events that carry it.
var lockoutPolicyPart = tenantevents.Part[*tenantv1.LockoutPolicyChanged, *tenantv1.LockoutPolicy]{
	Subject:     subjectLockoutPolicyChanged,
	New:         func() *tenantv1.LockoutPolicyChanged { return new(tenantv1.LockoutPolicyChanged) },
	FromCreated: (*tenantv1.TenantCreated).GetLockoutPolicy,
	FromChange:  (*tenantv1.LockoutPolicyChanged).GetPolicy,
}

// cacheLockoutPolicy upserts the lockout policy a tenant event carries.
func cacheLockoutPolicy(ctx context.Context, tx pgx.Tx, ev events.Event) error {
	tenantID, policy, err := lockoutPolicyPart.Decode(ev)
	if err != nil {
		return err
	}
	window, werr := positiveSeconds(policy.GetWindow())
	duration, derr := positiveSeconds(policy.GetLockoutDuration())
	if policy.GetMaxFailures() < 1 || werr != nil || derr != nil {
		return events.Permanent(fmt.Errorf("event %s: invalid lockout policy %v", ev.ID, policy))
	}
	_, err = lockoutPoliciesTable.Upsert(ctx, tx, tenantID, policy.GetMaxFailures(), window, duration, ev.Version)
	return err
}

// positiveSeconds returns d in whole seconds if it is positive and fits.
func positiveSeconds(d *durationpb.Duration) (int32, error) {
	if d.GetSeconds() < 1 || d.GetSeconds() > int64(maxWindow.Seconds()) {
		return 0, fmt.Errorf("duration %v out of range", d.AsDuration())
	}
	return int32(d.GetSeconds()), nil
}
