package identity

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	riskv1 "github.com/authms/authms/schemas/gen/authms/risk/v1"
	"github.com/authms/authms/schemas/gen/authms/risk/v1/riskv1connect"
	"github.com/authms/authms/services/identity/store"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/platform"
	"github.com/authms/authms/services/internal/rpc"
)

// peerRisk is the risk service, which counts identity's password checks
// and reset requests.
const peerRisk = "risk"

// newRiskClient returns identity's client of risk: every call carries
// identity's own service token.
func newRiskClient(d platform.Deps) riskv1connect.RiskServiceClient {
	httpClient, baseURL := d.Peers.Client(peerRisk)
	return riskv1connect.NewRiskServiceClient(httpClient, baseURL, connect.WithInterceptors(auth.Bearer(d.ServiceToken)))
}

// errWrongPassword is the answer to a current password that is not the
// user's.
var errWrongPassword = &rpc.InvalidFieldError{Field: "current_password", Rule: "password.current", Message: "is not the current password"}

// reauthentication is a signed-in user's current password, given to make
// a change that a stolen access token alone must not make.
type reauthentication struct {
	tenant, user string
	password     string
	ip           string // the client's address
}

// reauthenticate checks a user's current password as one login attempt of
// the user's account with risk, exactly as session checks a login's:
// AttemptLogin reserves one of the account's remaining failures (or
// refuses: rpc.DeniedError, the answer Login gives), the hash is verified,
// and ReportLoginResult records a failure, which may lock the account for
// logins and these checks alike, or a success, which clears its failures.
// However many checks and logins run in parallel, no more passwords are
// tried than the tenant's lockout policy allows.
func (s *Service) reauthenticate(ctx context.Context, r reauthentication) error {
	tenantID, userID, err := parseIDs(r.tenant, r.user)
	if err != nil {
		return err
	}
	q := store.New(s.deps.Pool)
	row, err := q.GetUser(ctx, store.GetUserParams{TenantID: tenantID, ID: userID})
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrUserNotFound
	}
	if err != nil {
		return fmt.Errorf("get user %s: %w", userID, err)
	}
	attempt, err := s.risk.AttemptLogin(ctx, connect.NewRequest(&riskv1.AttemptLoginRequest{
		TenantId: tenantID.String(), Email: row.EmailCanonical, Ip: r.ip,
	}))
	if err != nil {
		return &rpc.PeerError{Peer: peerRisk, Err: err}
	}
	if !attempt.Msg.GetAllowed() {
		return &rpc.DeniedError{Reason: attempt.Msg.GetReason(), RetryAfter: attempt.Msg.GetRetryAfter().AsDuration()}
	}
	hash, err := q.GetPasswordHash(ctx, store.GetPasswordHashParams{TenantID: tenantID, UserID: userID})
	if err != nil {
		// Neither a success nor a failure: the reservation lapses.
		return fmt.Errorf("get password of user %s: %w", userID, err)
	}
	ok, err := s.hasher.verify(ctx, hash, r.password)
	if err != nil {
		return fmt.Errorf("verify password of user %s: %w", userID, err)
	}
	id := userID.String()
	if _, err := s.risk.ReportLoginResult(ctx, connect.NewRequest(&riskv1.ReportLoginResultRequest{
		TenantId: tenantID.String(), AttemptId: attempt.Msg.GetAttemptId(), Success: ok, UserId: &id,
	})); err != nil {
		// The verdict stands; the reservation lapses and counts until then.
		s.deps.Logger.WarnContext(ctx, "reporting a password check to risk failed", "tenant_id", tenantID, "user_id", userID, "err", err)
	}
	if !ok {
		return errWrongPassword
	}
	return nil
}

// throttleReset counts a password reset request of the client address ip
// with risk, before anything is looked up, so the answer cannot depend on
// whether the email names a user: a ResetThrottledError once the address
// has sent too many.
func (s *Service) throttleReset(ctx context.Context, tenant, ip string) error {
	if _, err := uuid.Parse(tenant); err != nil {
		return invalidTenant
	}
	res, err := s.risk.AttemptPasswordReset(ctx, connect.NewRequest(&riskv1.AttemptPasswordResetRequest{TenantId: tenant, Ip: ip}))
	if err != nil {
		return &rpc.PeerError{Peer: peerRisk, Err: err}
	}
	if !res.Msg.GetAllowed() {
		return &ResetThrottledError{RetryAfter: res.Msg.GetRetryAfter().AsDuration()}
	}
	return nil
}

// clientIP returns the address of the client behind req (X-Forwarded-For
// only from the platform's trusted proxies, Deps.Clients), as risk counts it.
func (s *Service) clientIP(req connect.AnyRequest) (string, error) {
	ip, err := s.deps.Clients.ClientIP(req.Peer().Addr, req.Header())
	if err != nil {
		return "", err
	}
	return ip.String(), nil
}
