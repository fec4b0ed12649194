package tenant

import (
	"context"

	"connectrpc.com/connect"

	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/schemas/gen/authms/tenant/v1/tenantv1connect"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/rpc"
)

// api adapts the service to its Connect interface. Requests reach it
// validated against the schema's rules (slug pattern, policy bounds, ...).
type api struct{ s *Service }

var _ tenantv1connect.TenantServiceHandler = (*api)(nil)

func (a *api) CreateTenant(ctx context.Context, req *connect.Request[tenantv1.CreateTenantRequest]) (*connect.Response[tenantv1.CreateTenantResponse], error) {
	t, event, err := a.s.createTenant(ctx, req.Msg)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	a.s.deps.Logger.InfoContext(ctx, "tenant created", "tenant_id", t.GetId(), "slug", t.GetSlug())
	pos := a.s.deps.Position(ctx, event)
	return connect.NewResponse(&tenantv1.CreateTenantResponse{Tenant: t, Position: rpc.PositionToProto(pos)}), nil
}

func (a *api) GetTenant(ctx context.Context, req *connect.Request[tenantv1.GetTenantRequest]) (*connect.Response[tenantv1.GetTenantResponse], error) {
	t, err := a.s.getTenant(ctx, req.Msg.GetTenantId())
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(&tenantv1.GetTenantResponse{Tenant: t}), nil
}

func (a *api) GetTenantBySlug(ctx context.Context, req *connect.Request[tenantv1.GetTenantBySlugRequest]) (*connect.Response[tenantv1.GetTenantBySlugResponse], error) {
	t, err := a.s.getTenantBySlug(ctx, req.Msg.GetSlug())
	if p, ok := auth.FromContext(ctx); err == nil && (!ok || p.TenantID != t.GetId()) {
		err = ErrTenantNotFound // another tenant's slug is not confirmed
	}
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(&tenantv1.GetTenantBySlugResponse{Tenant: t}), nil
}

func (a *api) ListTenants(ctx context.Context, req *connect.Request[tenantv1.ListTenantsRequest]) (*connect.Response[tenantv1.ListTenantsResponse], error) {
	ts, next, err := a.s.listTenants(ctx, req.Msg)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(&tenantv1.ListTenantsResponse{Tenants: ts, NextPageToken: next}), nil
}

func (a *api) UpdateTenant(ctx context.Context, req *connect.Request[tenantv1.UpdateTenantRequest]) (*connect.Response[tenantv1.UpdateTenantResponse], error) {
	t, err := a.s.updateTenant(ctx, req.Msg)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(&tenantv1.UpdateTenantResponse{Tenant: t}), nil
}

func (a *api) SuspendTenant(ctx context.Context, req *connect.Request[tenantv1.SuspendTenantRequest]) (*connect.Response[tenantv1.SuspendTenantResponse], error) {
	t, err := a.s.suspendTenant(ctx, req.Msg)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	a.s.deps.Logger.InfoContext(ctx, "tenant suspended", "tenant_id", t.GetId(), "version", t.GetVersion())
	return connect.NewResponse(&tenantv1.SuspendTenantResponse{Tenant: t}), nil
}

func (a *api) ReactivateTenant(ctx context.Context, req *connect.Request[tenantv1.ReactivateTenantRequest]) (*connect.Response[tenantv1.ReactivateTenantResponse], error) {
	t, err := a.s.reactivateTenant(ctx, req.Msg)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	a.s.deps.Logger.InfoContext(ctx, "tenant reactivated", "tenant_id", t.GetId(), "version", t.GetVersion())
	return connect.NewResponse(&tenantv1.ReactivateTenantResponse{Tenant: t}), nil
}

func (a *api) UpdatePasswordPolicy(ctx context.Context, req *connect.Request[tenantv1.UpdatePasswordPolicyRequest]) (*connect.Response[tenantv1.UpdatePasswordPolicyResponse], error) {
	t, err := a.s.updatePasswordPolicy(ctx, req.Msg)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(&tenantv1.UpdatePasswordPolicyResponse{Tenant: t}), nil
}

func (a *api) UpdateMfaPolicy(ctx context.Context, req *connect.Request[tenantv1.UpdateMfaPolicyRequest]) (*connect.Response[tenantv1.UpdateMfaPolicyResponse], error) {
	t, err := a.s.updateMfaPolicy(ctx, req.Msg)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(&tenantv1.UpdateMfaPolicyResponse{Tenant: t}), nil
}

func (a *api) UpdateSessionPolicy(ctx context.Context, req *connect.Request[tenantv1.UpdateSessionPolicyRequest]) (*connect.Response[tenantv1.UpdateSessionPolicyResponse], error) {
	t, err := a.s.updateSessionPolicy(ctx, req.Msg)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(&tenantv1.UpdateSessionPolicyResponse{Tenant: t}), nil
}

func (a *api) UpdateLockoutPolicy(ctx context.Context, req *connect.Request[tenantv1.UpdateLockoutPolicyRequest]) (*connect.Response[tenantv1.UpdateLockoutPolicyResponse], error) {
	t, err := a.s.updateLockoutPolicy(ctx, req.Msg)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(&tenantv1.UpdateLockoutPolicyResponse{Tenant: t}), nil
}

func (a *api) UpdateBranding(ctx context.Context, req *connect.Request[tenantv1.UpdateBrandingRequest]) (*connect.Response[tenantv1.UpdateBrandingResponse], error) {
	t, err := a.s.updateBranding(ctx, req.Msg)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(&tenantv1.UpdateBrandingResponse{Tenant: t}), nil
}

func (a *api) AddDomain(ctx context.Context, req *connect.Request[tenantv1.AddDomainRequest]) (*connect.Response[tenantv1.AddDomainResponse], error) {
	res, err := a.s.addDomain(ctx, req.Msg)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(res), nil
}

func (a *api) VerifyDomain(ctx context.Context, req *connect.Request[tenantv1.VerifyDomainRequest]) (*connect.Response[tenantv1.VerifyDomainResponse], error) {
	res, err := a.s.verifyDomain(ctx, req.Msg)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(res), nil
}

func (a *api) RemoveDomain(ctx context.Context, req *connect.Request[tenantv1.RemoveDomainRequest]) (*connect.Response[tenantv1.RemoveDomainResponse], error) {
	t, err := a.s.removeDomain(ctx, req.Msg)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(&tenantv1.RemoveDomainResponse{Tenant: t}), nil
}

func (a *api) CheckPassword(ctx context.Context, req *connect.Request[tenantv1.CheckPasswordRequest]) (*connect.Response[tenantv1.CheckPasswordResponse], error) {
	res, err := a.s.checkPassword(ctx, req.Msg)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(res), nil
}

// fail maps err for the response through connectError.
func (a *api) fail(ctx context.Context, req connect.AnyRequest, err error) error {
	return connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
}

// Policies says who may call each procedure: the platform operator creates,
// lists, suspends and reactivates tenants (across tenants); the users of a
// tenant read it and check passwords against its policy; its admins change
// its name and configuration. No service calls tenant.
func (s *Service) Policies() auth.Policies {
	return auth.Policies{
		tenantv1connect.TenantServiceCreateTenantProcedure:         auth.Operator,
		tenantv1connect.TenantServiceListTenantsProcedure:          auth.Operator,
		tenantv1connect.TenantServiceSuspendTenantProcedure:        auth.Operator,
		tenantv1connect.TenantServiceReactivateTenantProcedure:     auth.Operator,
		tenantv1connect.TenantServiceGetTenantProcedure:            auth.Tenant,
		tenantv1connect.TenantServiceGetTenantBySlugProcedure:      auth.Tenant, // scoped in the handler: the request names no tenant id
		tenantv1connect.TenantServiceCheckPasswordProcedure:        auth.Tenant,
		tenantv1connect.TenantServiceUpdateTenantProcedure:         auth.Admin,
		tenantv1connect.TenantServiceUpdatePasswordPolicyProcedure: auth.Admin,
		tenantv1connect.TenantServiceUpdateMfaPolicyProcedure:      auth.Admin,
		tenantv1connect.TenantServiceUpdateSessionPolicyProcedure:  auth.Admin,
		tenantv1connect.TenantServiceUpdateLockoutPolicyProcedure:  auth.Admin,
		tenantv1connect.TenantServiceUpdateBrandingProcedure:       auth.Admin,
		tenantv1connect.TenantServiceAddDomainProcedure:            auth.Admin,
		tenantv1connect.TenantServiceVerifyDomainProcedure:         auth.Admin,
		tenantv1connect.TenantServiceRemoveDomainProcedure:         auth.Admin,
	}
}
