package risk

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/authms/authms/events/pg"
	riskv1 "github.com/authms/authms/schemas/gen/authms/risk/v1"
	"github.com/authms/authms/services/risk/store"
)

// publicRequestKind is a kind of request that anybody may send and the
// public request throttle counts per address, apart from every other kind:
// the value of public_requests.kind.
type publicRequestKind string

const (
	// kindPasswordReset: identity's RequestPasswordReset
	// (AttemptPasswordReset).
	kindPasswordReset publicRequestKind = "password_reset"
	// kindRegistration: identity's RegisterUser (AttemptRegistration).
	kindRegistration publicRequestKind = "registration"
)

// publicRequestKinds lists every kind, as public_requests.kind's CHECK does.
var publicRequestKinds = []publicRequestKind{kindPasswordReset, kindRegistration}

// throttles returns the configured policies of kind k: per tenant and
// address, and per address across every tenant. An unknown kind gets
// zero policies, which let nothing through.
func (c Config) throttles(k publicRequestKind) (perTenant, allTenants PublicRequestThrottlePolicy) {
	switch k {
	case kindPasswordReset:
		return c.ResetThrottle, c.ResetThrottleAllTenants
	case kindRegistration:
		return c.RegistrationThrottle, c.RegistrationThrottleAllTenants
	}
	return PublicRequestThrottlePolicy{}, PublicRequestThrottlePolicy{}
}

// publicRequest is a request for attemptPublicRequest to decide: the
// fields every Attempt<Kind>Request shares.
type publicRequest struct {
	kind       publicRequestKind
	tenant, ip string
	// policy is the request's override of the kind's configured policy.
	policy *riskv1.PublicRequestThrottlePolicy
}

// publicVerdict is attemptPublicRequest's decision, the fields every
// Attempt<Kind>Response shares: reason and retryAfter are set when not
// allowed.
type publicVerdict struct {
	allowed    bool
	reason     riskv1.DenyReason
	retryAfter *durationpb.Duration
}

// attemptPublicRequest decides whether a public request (a password reset
// request, a registration) from an address may proceed and, if so, counts
// it, in one transaction under the address's row lock, so parallel
// requests never pass the limit. Each kind is counted and limited on its
// own: a burst of registrations does not throttle the address's resets,
// nor the reverse. Besides its limit in the tenant, a request counts
// against the address's limit across every tenant (the kind's
// AllTenants policy), under a transaction-level advisory lock of the
// address and kind that every such request takes first, before the row
// lock, so neither limit is passed and no two requests wait on each other
// in opposite orders.
//
// The requests are counted in public_requests, not as login attempts: such
// a request has no outcome to report (and the caller asks before it knows
// whether the email names a user, so that the answer cannot tell), a spray
// of them from a shared address (an office NAT) must not throttle its
// users' logins, and failed logins must not stop the resets a user locked
// out of their account needs. The limits differ in scale too: anybody may
// send these, so their throttles are tighter than the login throttle's 100
// failures.
func (s *Service) attemptPublicRequest(ctx context.Context, r publicRequest) (publicVerdict, error) {
	tenantID, err := parseUUID("tenant_id", r.tenant)
	if err != nil {
		return publicVerdict{}, err
	}
	addr, err := addressKey(r.ip)
	if err != nil {
		return publicVerdict{}, err
	}
	p, all := s.cfg.throttles(r.kind)
	if o := r.policy; o != nil {
		p = PublicRequestThrottlePolicy{MaxRequests: int(o.GetMaxRequests()), Window: o.GetWindow().AsDuration()}
	}
	sub := subject{tenantID: tenantID, ip: addr}
	var v publicVerdict
	err = pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		if err := q.LockAddressRequests(ctx, store.LockAddressRequestsParams{Kind: string(r.kind), Ip: addr}); err != nil {
			return fmt.Errorf("lock %s requests of address %s: %w", r.kind, sub.ipID(), err)
		}
		if _, err := lockAddress(ctx, q, sub, s.clock()); err != nil {
			return err
		}
		now := s.clock()
		c, err := q.AddressPublicRequests(ctx, store.AddressPublicRequestsParams{
			TenantID: tenantID, Ip: addr, Kind: string(r.kind), Since: now.Add(-p.Window), Now: now,
		})
		if err != nil {
			return fmt.Errorf("count %s requests of address %s: %w", r.kind, sub.ipID(), err)
		}
		if int(c.Requests) >= p.MaxRequests {
			v = publicVerdict{reason: riskv1.DenyReason_DENY_REASON_IP_THROTTLED, retryAfter: retryAfter(c.Oldest.Add(p.Window).Sub(now))}
			return nil
		}
		everywhere, err := q.AddressPublicRequestsAllTenants(ctx, store.AddressPublicRequestsAllTenantsParams{
			Ip: addr, Kind: string(r.kind), Since: now.Add(-all.Window), Now: now,
		})
		if err != nil {
			return fmt.Errorf("count %s requests of address %s in every tenant: %w", r.kind, addr, err)
		}
		if int(everywhere.Requests) >= all.MaxRequests {
			v = publicVerdict{reason: riskv1.DenyReason_DENY_REASON_IP_THROTTLED, retryAfter: retryAfter(everywhere.Oldest.Add(all.Window).Sub(now))}
			return nil
		}
		if err := q.InsertPublicRequest(ctx, store.InsertPublicRequestParams{
			ID: uuid.Must(uuid.NewV7()), TenantID: tenantID, Ip: addr, Kind: string(r.kind), CreatedAt: now,
		}); err != nil {
			return fmt.Errorf("count a %s request of address %s: %w", r.kind, sub.ipID(), err)
		}
		if err := q.TouchAddress(ctx, store.TouchAddressParams{TenantID: tenantID, Ip: addr, Now: now}); err != nil {
			return fmt.Errorf("touch address %s: %w", sub.ipID(), err)
		}
		if int(c.Requests)+1 == p.MaxRequests {
			s.deps.Logger.WarnContext(ctx, "public requests from a client address reached the limit", "tenant_id", tenantID, "ip", addr,
				"kind", r.kind, "requests", p.MaxRequests, "window", p.Window.String())
		}
		v = publicVerdict{allowed: true}
		return nil
	})
	if err != nil {
		return publicVerdict{}, err
	}
	return v, nil
}
