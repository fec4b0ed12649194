package identity

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/authms/authms/events"
	"github.com/authms/authms/projections"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/services/identity/store"
	"github.com/authms/authms/services/internal/tenantevents"
)

// Tenant statuses as tenants.status holds them.
const (
	tenantActive    = "active"
	tenantSuspended = "suspended"
)

// tenantsTable records the tenants identity knows and their status,
// guarded by the tenant aggregate's version.
var tenantsTable = projections.Table{
	Name:    "tenants",
	Key:     []string{"tenant_id"},
	Columns: []string{"status"},
}

// tenantsProjector keeps tenants in step with the TENANT stream (durable
// consumer "identity_tenants": tenant.tenant.created, updated, suspended
// and reactivated). It is a pure cache, rebuildable by replay.
func (s *Service) tenantsProjector() projections.Projector {
	return projections.Projector{
		Service:  Name,
		Name:     "tenants",
		Source:   "tenant",
		Handlers: tenantevents.StatusHandlers(cacheTenant),
		Rebuild:  &projections.Rebuild{Tables: []string{tenantsTable.Name}},
	}
}

// cacheTenant upserts the status a tenant event leaves the tenant in.
func cacheTenant(ctx context.Context, tx pgx.Tx, ev events.Event) error {
	tenantID, status, err := tenantevents.Status(ev)
	if err != nil {
		return err
	}
	var s string
	switch status {
	case tenantv1.TenantStatus_TENANT_STATUS_ACTIVE:
		s = tenantActive
	case tenantv1.TenantStatus_TENANT_STATUS_SUSPENDED:
		s = tenantSuspended
	default:
		return events.Permanent(fmt.Errorf("event %s: invalid tenant status %v", ev.ID, status))
	}
	_, err = tenantsTable.Upsert(ctx, tx, tenantID, s, ev.Version)
	return err
}

// tenantActiveOf reports whether identity knows the tenant and it is
// active. A tenant id that is not a UUID is left to the command's own
// validation: it reports true.
func (s *Service) tenantActiveOf(ctx context.Context, tenant string) (bool, error) {
	tenantID, err := uuid.Parse(tenant)
	if err != nil {
		return true, nil
	}
	status, err := store.New(s.deps.Pool).GetTenantStatus(ctx, tenantID)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("status of tenant %s: %w", tenantID, err)
	}
	return status == tenantActive, nil
}

// requireActiveTenant refuses registration and import in a tenant that is
// unknown (not created, or not projected yet) or not active.
func (s *Service) requireActiveTenant(ctx context.Context, tenant string) error {
	ok, err := s.tenantActiveOf(ctx, tenant)
	if err != nil {
		return err
	}
	if !ok {
		return ErrTenantNotFound
	}
	return nil
}

// authenticateInTenant is [Service.authenticate] for active tenants only:
// in an unknown or suspended tenant it fails as a wrong password does,
// after the same dummy hash, so the answer says nothing of the tenant.
func (s *Service) authenticateInTenant(ctx context.Context, req *identityv1.AuthenticateUserRequest) (*identityv1.AuthenticateUserResponse, error) {
	ok, err := s.tenantActiveOf(ctx, req.GetTenantId())
	if err != nil {
		return nil, err
	}
	if !ok {
		if err := s.hasher.verifyDummy(ctx, req.GetPassword()); err != nil {
			return nil, err
		}
		return nil, ErrInvalidCredentials
	}
	return s.authenticate(ctx, req)
}
