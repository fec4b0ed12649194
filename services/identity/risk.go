package identity

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/durationpb"

	riskv1 "github.com/authms/authms/schemas/gen/authms/risk/v1"
	"github.com/authms/authms/schemas/gen/authms/risk/v1/riskv1connect"
	"github.com/authms/authms/services/identity/store"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/platform"
	"github.com/authms/authms/services/internal/riskcheck"
	"github.com/authms/authms/services/internal/rpc"
)

// peerRisk is the risk service, which counts identity's password checks,
// reset requests and registrations.
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
// the user's account with risk, exactly as session checks a login's
// (riskcheck.Run): a refusal is rpc.DeniedError, the answer Login gives,
// and a wrong password may lock the account for logins and these checks
// alike.
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
	ok, err := riskcheck.Run(ctx, s.risk, s.deps.Logger, riskcheck.Attempt{
		TenantID: tenantID.String(), Email: row.EmailCanonical, IP: r.ip,
		Verify: func(ctx context.Context) (string, bool, error) {
			hash, err := q.GetPasswordHash(ctx, store.GetPasswordHashParams{TenantID: tenantID, UserID: userID})
			if err != nil {
				return "", false, fmt.Errorf("get password of user %s: %w", userID, err)
			}
			ok, err := s.hasher.verify(ctx, hash, r.password)
			if err != nil {
				return "", false, fmt.Errorf("verify password of user %s: %w", userID, err)
			}
			return userID.String(), ok, nil
		},
	})
	if err != nil {
		return err
	}
	if !ok {
		return errWrongPassword
	}
	return nil
}

// publicRequest is a kind of request anybody may send that risk's public
// request throttle counts per tenant and client address, each kind apart
// from the others.
type publicRequest struct {
	// requests names the kind in a refusal (ThrottledError.Requests).
	requests string
	// attempt asks the kind's procedure of risk.
	attempt func(ctx context.Context, risk riskv1connect.RiskServiceClient, tenant, ip string) (verdict, error)
}

// verdict is risk's answer to a public request, the fields its
// AttemptPasswordResetResponse and AttemptRegistrationResponse share.
type verdict interface {
	GetAllowed() bool
	GetRetryAfter() *durationpb.Duration
}

var (
	// passwordResetRequests are RequestPasswordReset's.
	passwordResetRequests = publicRequest{
		requests: "password reset requests",
		attempt: func(ctx context.Context, risk riskv1connect.RiskServiceClient, tenant, ip string) (verdict, error) {
			res, err := risk.AttemptPasswordReset(ctx, connect.NewRequest(&riskv1.AttemptPasswordResetRequest{TenantId: tenant, Ip: ip}))
			if err != nil {
				return nil, err
			}
			return res.Msg, nil
		},
	}
	// registrations are RegisterUser's.
	registrations = publicRequest{
		requests: "registrations",
		attempt: func(ctx context.Context, risk riskv1connect.RiskServiceClient, tenant, ip string) (verdict, error) {
			res, err := risk.AttemptRegistration(ctx, connect.NewRequest(&riskv1.AttemptRegistrationRequest{TenantId: tenant, Ip: ip}))
			if err != nil {
				return nil, err
			}
			return res.Msg, nil
		},
	}
)

// throttle counts a public request of kind from the client address ip
// with risk. The caller asks before it looks the email up or hashes a
// password, so the answer cannot depend on whether the email names a user
// and a refused request costs nothing: a ThrottledError once the address
// has sent too many of the kind.
func (s *Service) throttle(ctx context.Context, kind publicRequest, tenant, ip string) error {
	if _, err := uuid.Parse(tenant); err != nil {
		return invalidTenant
	}
	v, err := kind.attempt(ctx, s.risk, tenant, ip)
	if err != nil {
		return &rpc.PeerError{Peer: peerRisk, Err: err}
	}
	if !v.GetAllowed() {
		return &ThrottledError{Requests: kind.requests, RetryAfter: v.GetRetryAfter().AsDuration()}
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
