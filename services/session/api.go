package session

import (
	"context"
	"strings"

	"connectrpc.com/connect"

	sessionv1 "github.com/authms/authms/schemas/gen/authms/session/v1"
	"github.com/authms/authms/schemas/gen/authms/session/v1/sessionv1connect"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/clientip"
)

// api adapts the service to its Connect interface. Requests reach it
// authenticated and validated: the auth interceptor answers NotFound when
// the request's tenant_id is not the token's tid and when a user without
// the admin role names another user_id (see [Service.Policies]); Logout
// also refuses a session_id that is not the token's sid.
type api struct{ s *Service }

// Policies says who may call each procedure: Login and Refresh are public
// (the credentials are in the request); a user lists and revokes their own
// sessions, a tenant admin any user's of the tenant. No service calls
// session.
func (s *Service) Policies() auth.Policies {
	return auth.Policies{
		sessionv1connect.SessionServiceLoginProcedure:             auth.Public,
		sessionv1connect.SessionServiceRefreshProcedure:           auth.Public,
		sessionv1connect.SessionServiceLogoutProcedure:            auth.Tenant,
		sessionv1connect.SessionServiceListSessionsProcedure:      auth.Owner,
		sessionv1connect.SessionServiceRevokeSessionProcedure:     auth.Owner,
		sessionv1connect.SessionServiceRevokeAllSessionsProcedure: auth.Owner,
	}
}

var _ sessionv1connect.SessionServiceHandler = (*api)(nil)

func (a *api) Login(ctx context.Context, req *connect.Request[sessionv1.LoginRequest]) (*connect.Response[sessionv1.LoginResponse], error) {
	c, err := a.client(req)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	res, err := a.s.login(ctx, req.Msg, c)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(res), nil
}

func (a *api) Refresh(ctx context.Context, req *connect.Request[sessionv1.RefreshRequest]) (*connect.Response[sessionv1.RefreshResponse], error) {
	c, err := a.client(req)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	res, err := a.s.refresh(ctx, req.Msg.GetRefreshToken(), c)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(res), nil
}

func (a *api) Logout(ctx context.Context, req *connect.Request[sessionv1.LogoutRequest]) (*connect.Response[sessionv1.LogoutResponse], error) {
	// Logout ends the caller's own session; RevokeSession ends others.
	if p, ok := auth.FromContext(ctx); !ok || p.SessionID != req.Msg.GetSessionId() {
		return nil, a.fail(ctx, req, ErrSessionNotFound)
	}
	was, err := a.s.revokeOne(ctx, req.Msg.GetTenantId(), req.Msg.GetSessionId(), nil, sessionv1.RevokeReason_REVOKE_REASON_LOGOUT)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(&sessionv1.LogoutResponse{WasActive: was}), nil
}

func (a *api) ListSessions(ctx context.Context, req *connect.Request[sessionv1.ListSessionsRequest]) (*connect.Response[sessionv1.ListSessionsResponse], error) {
	sessions, err := a.s.listSessions(ctx, req.Msg)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(&sessionv1.ListSessionsResponse{Sessions: sessions}), nil
}

func (a *api) RevokeSession(ctx context.Context, req *connect.Request[sessionv1.RevokeSessionRequest]) (*connect.Response[sessionv1.RevokeSessionResponse], error) {
	userID, err := parseUUID("user_id", req.Msg.GetUserId())
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	was, err := a.s.revokeOne(ctx, req.Msg.GetTenantId(), req.Msg.GetSessionId(), &userID, sessionv1.RevokeReason_REVOKE_REASON_REVOKED)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(&sessionv1.RevokeSessionResponse{WasActive: was}), nil
}

func (a *api) RevokeAllSessions(ctx context.Context, req *connect.Request[sessionv1.RevokeAllSessionsRequest]) (*connect.Response[sessionv1.RevokeAllSessionsResponse], error) {
	n, err := a.s.revokeAllSessions(ctx, req.Msg)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(&sessionv1.RevokeAllSessionsResponse{Revoked: int32(n)}), nil
}

// client returns the caller's address (X-Forwarded-For only from trusted
// proxies), the network rate limits count it by, and its user agent.
func (a *api) client(req connect.AnyRequest) (client, error) {
	ip, err := a.s.deps.Clients.ClientIP(req.Peer().Addr, req.Header())
	if err != nil {
		return client{}, err
	}
	ua := req.Header().Get("User-Agent")
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
	}
	return client{ip: ip.String(), network: clientip.Network(ip), userAgent: strings.ToValidUTF8(ua, "")}, nil
}

// fail maps err for the response through connectError.
func (a *api) fail(ctx context.Context, req connect.AnyRequest, err error) error {
	return connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
}
