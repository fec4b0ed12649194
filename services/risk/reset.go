package risk

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/authms/authms/events/pg"
	riskv1 "github.com/authms/authms/schemas/gen/authms/risk/v1"
	"github.com/authms/authms/services/risk/store"
)

// attemptPasswordReset decides whether a password reset request from an
// address may proceed and, if so, counts it, in one transaction under the
// address's row lock, so parallel requests never pass the limit.
//
// The requests are counted in reset_requests, not as login attempts: a
// reset request has no outcome to report (and the caller asks before it
// knows whether the email names a user, so that the answer cannot tell),
// a reset spray from a shared address (an office NAT) must not throttle
// its users' logins, and failed logins must not stop the resets a user
// locked out of their account needs. The limits differ in scale too:
// anybody may request a reset, so its throttle is tighter than the login
// throttle's 100 failures.
func (s *Service) attemptPasswordReset(ctx context.Context, req *riskv1.AttemptPasswordResetRequest) (*riskv1.AttemptPasswordResetResponse, error) {
	tenantID, err := parseUUID("tenant_id", req.GetTenantId())
	if err != nil {
		return nil, err
	}
	addr, err := addressKey(req.GetIp())
	if err != nil {
		return nil, err
	}
	p := s.cfg.ResetThrottle
	if o := req.GetResetThrottlePolicy(); o != nil {
		p = ResetThrottlePolicy{MaxRequests: int(o.GetMaxRequests()), Window: o.GetWindow().AsDuration()}
	}
	sub := subject{tenantID: tenantID, ip: addr}
	var res *riskv1.AttemptPasswordResetResponse
	err = pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		if _, err := lockAddress(ctx, q, sub, s.clock()); err != nil {
			return err
		}
		now := s.clock()
		c, err := q.AddressResetRequests(ctx, store.AddressResetRequestsParams{TenantID: tenantID, Ip: addr, Since: now.Add(-p.Window), Now: now})
		if err != nil {
			return fmt.Errorf("count reset requests of address %s: %w", sub.ipID(), err)
		}
		if int(c.Requests) >= p.MaxRequests {
			res = &riskv1.AttemptPasswordResetResponse{
				Reason: riskv1.DenyReason_DENY_REASON_IP_THROTTLED, RetryAfter: retryAfter(c.Oldest.Add(p.Window).Sub(now)),
			}
			return nil
		}
		if err := q.InsertResetRequest(ctx, store.InsertResetRequestParams{ID: uuid.Must(uuid.NewV7()), TenantID: tenantID, Ip: addr, CreatedAt: now}); err != nil {
			return fmt.Errorf("count a reset request of address %s: %w", sub.ipID(), err)
		}
		if err := q.TouchAddress(ctx, store.TouchAddressParams{TenantID: tenantID, Ip: addr, Now: now}); err != nil {
			return fmt.Errorf("touch address %s: %w", sub.ipID(), err)
		}
		if int(c.Requests)+1 == p.MaxRequests {
			s.deps.Logger.WarnContext(ctx, "password reset requests from a client address reached the limit", "tenant_id", tenantID, "ip", addr,
				"requests", p.MaxRequests, "window", p.Window)
		}
		res = &riskv1.AttemptPasswordResetResponse{Allowed: true}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}
