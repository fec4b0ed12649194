package identity

import (
	"context"
	"time"

	"connectrpc.com/connect"

	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/rpc"
)

// api adapts the service to its Connect interface. Requests reach it
// validated against the schema's rules. ChangePassword and ChangeEmail
// check the current password with risk (reauthenticate), and
// RequestPasswordReset and RegisterUser ask risk's public request throttle
// (throttle), with the client's address, before the command runs.
type api struct{ s *Service }

var _ identityv1connect.IdentityServiceHandler = (*api)(nil)

func (a *api) RegisterUser(ctx context.Context, req *connect.Request[identityv1.RegisterUserRequest]) (*connect.Response[identityv1.RegisterUserResponse], error) {
	if err := a.s.deps.AwaitPosition(ctx, a.s.Projectors(), rpc.PositionFromProto(req.Msg.GetMinPosition())); err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	if err := a.s.requireActiveTenant(ctx, req.Msg.GetTenantId()); err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	// After the tenant, which is identity's cache of tenants and says
	// nothing of emails: an unknown or suspended tenant is NotFound,
	// however many registrations the address sent, and is not counted, so
	// requests for made-up tenants cost risk nothing. Before the command,
	// which hashes and looks the email up.
	if err := a.throttle(ctx, req, registrations, req.Msg.GetTenantId()); err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	u, event, err := a.s.registerUser(ctx, req.Msg)
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	pos := a.s.deps.Position(ctx, event)
	return connect.NewResponse(&identityv1.RegisterUserResponse{User: u, Position: rpc.PositionToProto(pos)}), nil
}

func (a *api) GetUser(ctx context.Context, req *connect.Request[identityv1.GetUserRequest]) (*connect.Response[identityv1.GetUserResponse], error) {
	u, err := a.s.getUser(ctx, req.Msg.GetTenantId(), req.Msg.GetUserId())
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&identityv1.GetUserResponse{User: u}), nil
}

func (a *api) ChangeEmail(ctx context.Context, req *connect.Request[identityv1.ChangeEmailRequest]) (*connect.Response[identityv1.ChangeEmailResponse], error) {
	// The caller re-authenticates with their own password: the user for
	// their own change, the admin when a tenant admin changes another
	// user's (who does not know that user's password, and whose guesses
	// must not lock the user out). So a stolen access token alone, a user's
	// or an admin's, cannot move an account, and with it its password
	// resets, to another address.
	if req.Msg.GetCurrentPassword() == "" {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, errCurrentPasswordRequired)
	}
	if err := a.reauthenticate(ctx, req, req.Msg.GetTenantId(), callerOf(ctx, req.Msg.GetUserId()), req.Msg.GetCurrentPassword()); err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	u, latest, err := a.s.changeEmail(ctx, req.Msg)
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	pos := a.s.deps.Position(ctx, latest)
	return connect.NewResponse(&identityv1.ChangeEmailResponse{User: u, Position: rpc.PositionToProto(pos)}), nil
}

func (a *api) AuthenticateUser(ctx context.Context, req *connect.Request[identityv1.AuthenticateUserRequest]) (*connect.Response[identityv1.AuthenticateUserResponse], error) {
	res, err := a.s.authenticateInTenant(ctx, req.Msg)
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	return connect.NewResponse(res), nil
}

func (a *api) ImportUser(ctx context.Context, req *connect.Request[identityv1.ImportUserRequest]) (*connect.Response[identityv1.ImportUserResponse], error) {
	if err := a.s.requireActiveTenant(ctx, req.Msg.GetTenantId()); err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	u, event, err := a.s.importUser(ctx, req.Msg)
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	a.s.deps.Logger.InfoContext(ctx, "user imported", "tenant_id", u.GetTenantId(), "user_id", u.GetId())
	pos := a.s.deps.Position(ctx, event)
	return connect.NewResponse(&identityv1.ImportUserResponse{User: u, Position: rpc.PositionToProto(pos)}), nil
}

func (a *api) ChangePassword(ctx context.Context, req *connect.Request[identityv1.ChangePasswordRequest]) (*connect.Response[identityv1.ChangePasswordResponse], error) {
	if err := a.reauthenticate(ctx, req, req.Msg.GetTenantId(), req.Msg.GetUserId(), req.Msg.GetCurrentPassword()); err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	event, err := a.s.changePassword(ctx, req.Msg)
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	pos := a.s.deps.Position(ctx, event)
	return connect.NewResponse(&identityv1.ChangePasswordResponse{Position: rpc.PositionToProto(pos)}), nil
}

func (a *api) DisableUser(ctx context.Context, req *connect.Request[identityv1.DisableUserRequest]) (*connect.Response[identityv1.DisableUserResponse], error) {
	u, latest, err := a.s.setStatus(ctx, req.Msg.GetTenantId(), req.Msg.GetUserId(), true)
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	pos := a.s.deps.Position(ctx, latest)
	return connect.NewResponse(&identityv1.DisableUserResponse{User: u, Position: rpc.PositionToProto(pos)}), nil
}

func (a *api) EnableUser(ctx context.Context, req *connect.Request[identityv1.EnableUserRequest]) (*connect.Response[identityv1.EnableUserResponse], error) {
	u, latest, err := a.s.setStatus(ctx, req.Msg.GetTenantId(), req.Msg.GetUserId(), false)
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	pos := a.s.deps.Position(ctx, latest)
	return connect.NewResponse(&identityv1.EnableUserResponse{User: u, Position: rpc.PositionToProto(pos)}), nil
}

func (a *api) DeleteUser(ctx context.Context, req *connect.Request[identityv1.DeleteUserRequest]) (*connect.Response[identityv1.DeleteUserResponse], error) {
	latest, err := a.s.deleteUser(ctx, req.Msg.GetTenantId(), req.Msg.GetUserId())
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	pos := a.s.deps.Position(ctx, latest)
	return connect.NewResponse(&identityv1.DeleteUserResponse{Position: rpc.PositionToProto(pos)}), nil
}

func (a *api) RequestEmailVerification(ctx context.Context, req *connect.Request[identityv1.RequestEmailVerificationRequest]) (*connect.Response[identityv1.RequestEmailVerificationResponse], error) {
	latest, err := a.s.requestEmailVerification(ctx, req.Msg)
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	pos := a.s.deps.Position(ctx, latest)
	return connect.NewResponse(&identityv1.RequestEmailVerificationResponse{Position: rpc.PositionToProto(pos)}), nil
}

func (a *api) VerifyEmail(ctx context.Context, req *connect.Request[identityv1.VerifyEmailRequest]) (*connect.Response[identityv1.VerifyEmailResponse], error) {
	u, latest, err := a.s.verifyEmail(ctx, req.Msg)
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	pos := a.s.deps.Position(ctx, latest)
	return connect.NewResponse(&identityv1.VerifyEmailResponse{User: u, Position: rpc.PositionToProto(pos)}), nil
}

func (a *api) RequestPasswordReset(ctx context.Context, req *connect.Request[identityv1.RequestPasswordResetRequest]) (*connect.Response[identityv1.RequestPasswordResetResponse], error) {
	if err := a.throttle(ctx, req, passwordResetRequests, req.Msg.GetTenantId()); err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	defer answerNoSooner(ctx, time.Now().Add(a.s.cfg.ResetResponseTime))
	if err := a.s.requestPasswordReset(ctx, req.Msg); err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&identityv1.RequestPasswordResetResponse{}), nil
}

func (a *api) ResetPassword(ctx context.Context, req *connect.Request[identityv1.ResetPasswordRequest]) (*connect.Response[identityv1.ResetPasswordResponse], error) {
	latest, err := a.s.resetPassword(ctx, req.Msg)
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	pos := a.s.deps.Position(ctx, latest)
	return connect.NewResponse(&identityv1.ResetPasswordResponse{Position: rpc.PositionToProto(pos)}), nil
}

func (a *api) CreateRole(ctx context.Context, req *connect.Request[identityv1.CreateRoleRequest]) (*connect.Response[identityv1.CreateRoleResponse], error) {
	r, latest, err := a.s.createRole(ctx, req.Msg)
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	pos := a.s.deps.Position(ctx, latest)
	return connect.NewResponse(&identityv1.CreateRoleResponse{Role: r, Position: rpc.PositionToProto(pos)}), nil
}

func (a *api) GrantPermissions(ctx context.Context, req *connect.Request[identityv1.GrantPermissionsRequest]) (*connect.Response[identityv1.GrantPermissionsResponse], error) {
	r, latest, err := a.s.changePermissions(ctx, req.Msg.GetTenantId(), req.Msg.GetRole(), req.Msg.GetPermissions(), true)
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	pos := a.s.deps.Position(ctx, latest)
	return connect.NewResponse(&identityv1.GrantPermissionsResponse{Role: r, Position: rpc.PositionToProto(pos)}), nil
}

func (a *api) RevokePermissions(ctx context.Context, req *connect.Request[identityv1.RevokePermissionsRequest]) (*connect.Response[identityv1.RevokePermissionsResponse], error) {
	r, latest, err := a.s.changePermissions(ctx, req.Msg.GetTenantId(), req.Msg.GetRole(), req.Msg.GetPermissions(), false)
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	pos := a.s.deps.Position(ctx, latest)
	return connect.NewResponse(&identityv1.RevokePermissionsResponse{Role: r, Position: rpc.PositionToProto(pos)}), nil
}

func (a *api) ListRoles(ctx context.Context, req *connect.Request[identityv1.ListRolesRequest]) (*connect.Response[identityv1.ListRolesResponse], error) {
	roles, err := a.s.listRoles(ctx, req.Msg.GetTenantId())
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&identityv1.ListRolesResponse{Roles: roles}), nil
}

func (a *api) AssignRoles(ctx context.Context, req *connect.Request[identityv1.AssignRolesRequest]) (*connect.Response[identityv1.AssignRolesResponse], error) {
	u, latest, err := a.s.assignRoles(ctx, req.Msg)
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	pos := a.s.deps.Position(ctx, latest)
	return connect.NewResponse(&identityv1.AssignRolesResponse{User: u, Position: rpc.PositionToProto(pos)}), nil
}

func (a *api) CheckPermission(ctx context.Context, req *connect.Request[identityv1.CheckPermissionRequest]) (*connect.Response[identityv1.CheckPermissionResponse], error) {
	allowed, err := a.s.checkPermission(ctx, req.Msg)
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&identityv1.CheckPermissionResponse{Allowed: allowed}), nil
}

// errCurrentPasswordRequired refuses a ChangeEmail without the caller's
// current password.
var errCurrentPasswordRequired = &rpc.InvalidFieldError{Field: "current_password", Rule: "required", Message: "is required to change an email: your own password"}

// callerOf returns the user who calls (the access token's subject, in the
// request's tenant: the auth interceptor scoped it), or user when no
// principal is known.
func callerOf(ctx context.Context, user string) string {
	if p, ok := auth.FromContext(ctx); ok && p.Subject != "" {
		return p.Subject
	}
	return user
}

// reauthenticate checks the current password of the user a change names,
// counted by risk (see [Service.reauthenticate]), before the change runs.
func (a *api) reauthenticate(ctx context.Context, req connect.AnyRequest, tenant, user, password string) error {
	ip, err := a.s.clientIP(req)
	if err != nil {
		return err
	}
	return a.s.reauthenticate(ctx, reauthentication{tenant: tenant, user: user, password: password, ip: ip})
}

// throttle counts a public request of kind from the client behind req
// with risk (see [Service.throttle]), before the command runs.
func (a *api) throttle(ctx context.Context, req connect.AnyRequest, kind publicRequest, tenant string) error {
	ip, err := a.s.clientIP(req)
	if err != nil {
		return err
	}
	return a.s.throttle(ctx, kind, tenant, ip)
}

// Policies says who may call each procedure: registration, email
// verification and password reset are public (the tokens they carry are
// the credential); a user reads and changes their own account, a tenant
// admin any account of the tenant; AuthenticateUser is the session
// service's alone, and session also reads users on refresh (no other
// service calls identity). Roles are
// the tenant admins' to manage; the operator may assign them too, which is
// how a new tenant gets its first admin.
func (s *Service) Policies() auth.Policies {
	return auth.Policies{
		identityv1connect.IdentityServiceRegisterUserProcedure:             auth.Public,
		identityv1connect.IdentityServiceVerifyEmailProcedure:              auth.Public,
		identityv1connect.IdentityServiceRequestPasswordResetProcedure:     auth.Public,
		identityv1connect.IdentityServiceResetPasswordProcedure:            auth.Public,
		identityv1connect.IdentityServiceAuthenticateUserProcedure:         auth.Services(auth.SessionService),
		identityv1connect.IdentityServiceListUsersProcedure:                auth.Admin,
		identityv1connect.IdentityServiceGetUserProcedure:                  auth.Owner.OrServices(auth.SessionService),
		identityv1connect.IdentityServiceChangeEmailProcedure:              auth.Owner,
		identityv1connect.IdentityServiceChangePasswordProcedure:           auth.Owner,
		identityv1connect.IdentityServiceRequestEmailVerificationProcedure: auth.Owner,
		identityv1connect.IdentityServiceDeleteUserProcedure:               auth.Owner,
		identityv1connect.IdentityServiceImportUserProcedure:               auth.Admin,
		identityv1connect.IdentityServiceDisableUserProcedure:              auth.Admin,
		identityv1connect.IdentityServiceEnableUserProcedure:               auth.Admin,
		identityv1connect.IdentityServiceCreateRoleProcedure:               auth.Admin,
		identityv1connect.IdentityServiceGrantPermissionsProcedure:         auth.Admin,
		identityv1connect.IdentityServiceRevokePermissionsProcedure:        auth.Admin,
		identityv1connect.IdentityServiceListRolesProcedure:                auth.Tenant,
		identityv1connect.IdentityServiceAssignRolesProcedure:              auth.Admin.OrOperator(),
		identityv1connect.IdentityServiceCheckPermissionProcedure:          auth.Owner,
	}

}

// answerNoSooner waits until at, or until ctx ends: deferred by a handler
// whose work takes longer for some inputs than others, it makes the answer
// take the same time for all (see Config.ResetResponseTime).
func answerNoSooner(ctx context.Context, at time.Time) {
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// ListUsers lists a tenant's users for its admins, a page at a time.
func (a *api) ListUsers(ctx context.Context, req *connect.Request[identityv1.ListUsersRequest]) (*connect.Response[identityv1.ListUsersResponse], error) {
	users, next, err := a.s.listUsers(ctx, req.Msg)
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&identityv1.ListUsersResponse{Users: users, NextPageToken: next}), nil
}
