package identity

import (
	"context"

	"connectrpc.com/connect"

	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/rpc"
)

// api adapts the service to its Connect interface. Requests reach it
// validated against the schema's rules.
type api struct{ s *Service }

var _ identityv1connect.IdentityServiceHandler = (*api)(nil)

func (a *api) RegisterUser(ctx context.Context, req *connect.Request[identityv1.RegisterUserRequest]) (*connect.Response[identityv1.RegisterUserResponse], error) {
	u, event, err := a.s.registerUser(ctx, req.Msg)
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	a.s.deps.Logger.InfoContext(ctx, "user registered", "tenant_id", u.GetTenantId(), "user_id", u.GetId())
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
	u, latest, err := a.s.changeEmail(ctx, req.Msg)
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	pos := a.s.deps.Position(ctx, latest)
	return connect.NewResponse(&identityv1.ChangeEmailResponse{User: u, Position: rpc.PositionToProto(pos)}), nil
}

// Policies says who may call each procedure: registration is public; a
// user reads and changes their own account, a tenant admin any account of
// the tenant; the session service reads users on refresh.
func (s *Service) Policies() auth.Policies {
	return auth.Policies{
		identityv1connect.IdentityServiceRegisterUserProcedure: auth.Public,
		identityv1connect.IdentityServiceGetUserProcedure:      auth.Owner.OrService(),
		identityv1connect.IdentityServiceChangeEmailProcedure:  auth.Owner,
	}
}
