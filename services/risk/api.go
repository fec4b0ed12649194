package risk

import (
	"context"

	"connectrpc.com/connect"

	riskv1 "github.com/authms/authms/schemas/gen/authms/risk/v1"
	"github.com/authms/authms/schemas/gen/authms/risk/v1/riskv1connect"
	"github.com/authms/authms/services/internal/auth"
)

// api adapts the service to its Connect interface. Requests reach it
// validated against the schema's rules (UUIDs, an IP address, policy
// bounds).
type api struct{ s *Service }

var _ riskv1connect.RiskServiceHandler = (*api)(nil)

func (a *api) AttemptLogin(ctx context.Context, req *connect.Request[riskv1.AttemptLoginRequest]) (*connect.Response[riskv1.AttemptLoginResponse], error) {
	res, err := a.s.attemptLogin(ctx, req.Msg)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(res), nil
}

func (a *api) ReportLoginResult(ctx context.Context, req *connect.Request[riskv1.ReportLoginResultRequest]) (*connect.Response[riskv1.ReportLoginResultResponse], error) {
	out, err := a.s.reportLoginResult(ctx, req.Msg)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	res := &riskv1.ReportLoginResultResponse{AccountLocked: out.accountLocked, IpThrottled: out.ipThrottled}
	if out.accountLocked {
		res.AccountRetryAfter = retryAfter(out.retryAfter)
	}
	return connect.NewResponse(res), nil
}

func (a *api) RecordLoginAttempt(ctx context.Context, req *connect.Request[riskv1.RecordLoginAttemptRequest]) (*connect.Response[riskv1.RecordLoginAttemptResponse], error) {
	out, err := a.s.recordLoginAttempt(ctx, req.Msg)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	res := &riskv1.RecordLoginAttemptResponse{AccountLocked: out.accountLocked, IpThrottled: out.ipThrottled}
	if out.accountLocked {
		res.AccountRetryAfter = retryAfter(out.retryAfter)
	}
	return connect.NewResponse(res), nil
}

func (a *api) CheckLogin(ctx context.Context, req *connect.Request[riskv1.CheckLoginRequest]) (*connect.Response[riskv1.CheckLoginResponse], error) {
	res, err := a.s.checkLogin(ctx, req.Msg)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(res), nil
}

func (a *api) UnlockAccount(ctx context.Context, req *connect.Request[riskv1.UnlockAccountRequest]) (*connect.Response[riskv1.UnlockAccountResponse], error) {
	was, err := a.s.unlockAccount(ctx, req.Msg)
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(&riskv1.UnlockAccountResponse{WasLocked: was}), nil
}

func (a *api) AttemptPasswordReset(ctx context.Context, req *connect.Request[riskv1.AttemptPasswordResetRequest]) (*connect.Response[riskv1.AttemptPasswordResetResponse], error) {
	v, err := a.s.attemptPublicRequest(ctx, publicRequest{
		kind: kindPasswordReset, tenant: req.Msg.GetTenantId(), ip: req.Msg.GetIp(), policy: req.Msg.GetThrottlePolicy(),
	})
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(&riskv1.AttemptPasswordResetResponse{Allowed: v.allowed, Reason: v.reason, RetryAfter: v.retryAfter}), nil
}

func (a *api) AttemptRegistration(ctx context.Context, req *connect.Request[riskv1.AttemptRegistrationRequest]) (*connect.Response[riskv1.AttemptRegistrationResponse], error) {
	v, err := a.s.attemptPublicRequest(ctx, publicRequest{
		kind: kindRegistration, tenant: req.Msg.GetTenantId(), ip: req.Msg.GetIp(), policy: req.Msg.GetThrottlePolicy(),
	})
	if err != nil {
		return nil, a.fail(ctx, req, err)
	}
	return connect.NewResponse(&riskv1.AttemptRegistrationResponse{Allowed: v.allowed, Reason: v.reason, RetryAfter: v.retryAfter}), nil
}

// fail maps err for the response through connectError.
func (a *api) fail(ctx context.Context, req connect.AnyRequest, err error) error {
	return connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
}

// Policies says who may call each procedure: the password checks are
// their callers' alone, session's logins and identity's current-password
// checks (AttemptLogin, ReportLoginResult), and so is the public request
// throttle, identity's reset requests and registrations
// (AttemptPasswordReset, AttemptRegistration). RecordLoginAttempt and
// CheckLogin belong to the login flow, session's, which already signs
// every access token: they give it nothing it lacks. An admin of the
// tenant unlocks its accounts.
func (s *Service) Policies() auth.Policies {
	const session, identity = auth.SessionService, "identity"
	return auth.Policies{
		riskv1connect.RiskServiceAttemptLoginProcedure:         auth.Services(session, identity),
		riskv1connect.RiskServiceReportLoginResultProcedure:    auth.Services(session, identity),
		riskv1connect.RiskServiceRecordLoginAttemptProcedure:   auth.Services(session),
		riskv1connect.RiskServiceCheckLoginProcedure:           auth.Services(session),
		riskv1connect.RiskServiceUnlockAccountProcedure:        auth.Admin,
		riskv1connect.RiskServiceAttemptPasswordResetProcedure: auth.Services(identity),
		riskv1connect.RiskServiceAttemptRegistrationProcedure:  auth.Services(identity),
	}
}
