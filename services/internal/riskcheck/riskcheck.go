// Package riskcheck runs a password check as one login attempt of an
// account with the risk service: the flow session's Login and identity's
// re-authentications (ChangePassword, ChangeEmail) share, so both count
// against one lockout.
package riskcheck

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"

	riskv1 "github.com/authms/authms/schemas/gen/authms/risk/v1"
	"github.com/authms/authms/schemas/gen/authms/risk/v1/riskv1connect"
	"github.com/authms/authms/services/internal/rpc"
)

// Peer is the risk service's name, as errors name it.
const Peer = "risk"

// Attempt is one check of an account's password.
type Attempt struct {
	// TenantID and Email name the account; risk keys it by the canonical
	// email.
	TenantID, Email string
	// IP is the client's address.
	IP string
	// Verify checks the password: true for the right one, false for a
	// wrong one, with the user's id when it knows it. An error is neither:
	// nothing is reported and the reservation lapses.
	Verify func(ctx context.Context) (userID string, ok bool, err error)
}

// Run asks risk's AttemptLogin to reserve one of the account's and the
// address's remaining failures (a refusal is an *rpc.DeniedError, a failed
// call an *rpc.PeerError), runs a.Verify, and reports its verdict with
// ReportLoginResult: a failure may lock the account, a success clears its
// failures. However many run in parallel, no more passwords are tried than
// the tenant's lockout policy allows. It returns Verify's verdict. A report
// that fails is logged: the verdict stands, and the reservation counts
// until it lapses.
func Run(ctx context.Context, risk riskv1connect.RiskServiceClient, logger *slog.Logger, a Attempt) (bool, error) {
	attempt, err := risk.AttemptLogin(ctx, connect.NewRequest(&riskv1.AttemptLoginRequest{
		TenantId: a.TenantID, Email: a.Email, Ip: a.IP,
	}))
	if err != nil {
		return false, &rpc.PeerError{Peer: Peer, Err: err}
	}
	if !attempt.Msg.GetAllowed() {
		return false, &rpc.DeniedError{
			Locked:     attempt.Msg.GetReason() == riskv1.DenyReason_DENY_REASON_ACCOUNT_LOCKED,
			RetryAfter: attempt.Msg.GetRetryAfter().AsDuration(),
		}
	}
	userID, ok, err := a.Verify(ctx)
	if err != nil {
		return false, err
	}
	report := &riskv1.ReportLoginResultRequest{TenantId: a.TenantID, AttemptId: attempt.Msg.GetAttemptId(), Success: ok}
	if userID != "" {
		report.UserId = &userID
	}
	if _, err := risk.ReportLoginResult(ctx, connect.NewRequest(report)); err != nil {
		logger.WarnContext(ctx, "reporting a password check to risk failed", "tenant_id", a.TenantID, "err", err)
	}
	return ok, nil
}
