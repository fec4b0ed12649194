package risk_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	riskv1 "github.com/authms/authms/schemas/gen/authms/risk/v1"
	"github.com/authms/authms/schemas/gen/authms/risk/v1/riskv1connect"
	"github.com/authms/authms/services/risk"
	"github.com/authms/authms/services/servicestest"
)

// publicKind is a kind of public request as the tests call it: its
// procedure and its configured default.
type publicKind struct {
	name string // public_requests.kind
	def  risk.PublicRequestThrottlePolicy
}

var (
	passwordResets = publicKind{name: "password_reset", def: risk.DefaultConfig().ResetThrottle}
	registrations  = publicKind{name: "registration", def: risk.DefaultConfig().RegistrationThrottle}
	publicKinds    = []publicKind{passwordResets, registrations}
)

// publicRequest is one address's requests of a kind; policy, when set,
// goes with every request.
type publicRequest struct {
	kind       publicKind
	tenant, ip string
	policy     *riskv1.PublicRequestThrottlePolicy
}

// verdict is what AttemptPasswordReset and AttemptRegistration answer.
type verdict interface {
	GetAllowed() bool
	GetReason() riskv1.DenyReason
	GetRetryAfter() *durationpb.Duration
}

// attemptPublic sends r to its kind's procedure.
func (e *env) attemptPublic(t *testing.T, r publicRequest) verdict {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	switch r.kind {
	case passwordResets:
		res, err := e.risk.AttemptPasswordReset(ctx, connect.NewRequest(&riskv1.AttemptPasswordResetRequest{
			TenantId: r.tenant, Ip: r.ip, ThrottlePolicy: r.policy,
		}))
		require.NoError(t, err)
		return res.Msg
	case registrations:
		res, err := e.risk.AttemptRegistration(ctx, connect.NewRequest(&riskv1.AttemptRegistrationRequest{
			TenantId: r.tenant, Ip: r.ip, ThrottlePolicy: r.policy,
		}))
		require.NoError(t, err)
		return res.Msg
	}
	t.Fatalf("no procedure for kind %q", r.kind.name)
	return nil
}

// counted is how many requests of kind the tenant's addresses have counted.
func (e *env) counted(t *testing.T, kind publicKind, tenant string) int {
	t.Helper()
	return e.count(t, "SELECT count(*) FROM public_requests WHERE tenant_id = $1 AND kind = $2", tenant, kind.name)
}

func TestPublicRequestThrottle(t *testing.T) {
	t.Parallel()
	e := start(t)

	for _, kind := range publicKinds {
		t.Run(kind.name+": the default limit per address", func(t *testing.T) {
			t.Parallel()
			r := publicRequest{kind: kind, tenant: uuid.NewString(), ip: "203.0.113.7"}
			for i := range kind.def.MaxRequests {
				require.True(t, e.attemptPublic(t, r).GetAllowed(), "request %d", i+1)
			}
			denied := e.attemptPublic(t, r)
			assert.False(t, denied.GetAllowed())
			assert.Equal(t, riskv1.DenyReason_DENY_REASON_IP_THROTTLED, denied.GetReason())
			assert.Positive(t, denied.GetRetryAfter().AsDuration())
			assert.LessOrEqual(t, denied.GetRetryAfter().AsDuration(), kind.def.Window)
			assert.Equal(t, kind.def.MaxRequests, e.counted(t, kind, r.tenant), "a denied request does not count")

			assert.True(t, e.attemptPublic(t, publicRequest{kind: kind, tenant: r.tenant, ip: "203.0.113.8"}).GetAllowed(), "another address")
			assert.True(t, e.attemptPublic(t, publicRequest{kind: kind, tenant: uuid.NewString(), ip: r.ip}).GetAllowed(),
				"the address in another tenant")
			l := login{tenant: r.tenant, email: "alice@example.com", ip: r.ip}
			assert.True(t, e.check(t, l).GetAllowed(), "public requests do not throttle logins")
			assert.Empty(t, e.storedEvents(t, r.tenant), "no event")
		})
	}

	t.Run("each kind has its own counter", func(t *testing.T) {
		t.Parallel()
		limit := &riskv1.PublicRequestThrottlePolicy{MaxRequests: 3, Window: durationpb.New(time.Hour)}
		for _, kind := range publicKinds {
			t.Run(kind.name, func(t *testing.T) {
				t.Parallel()
				tenant := uuid.NewString()
				r := publicRequest{kind: kind, tenant: tenant, ip: "198.51.100.20", policy: limit}
				for range limit.GetMaxRequests() {
					require.True(t, e.attemptPublic(t, r).GetAllowed())
				}
				require.False(t, e.attemptPublic(t, r).GetAllowed())
				for _, other := range publicKinds {
					if other == kind {
						continue
					}
					o := publicRequest{kind: other, tenant: tenant, ip: r.ip, policy: limit}
					for i := range limit.GetMaxRequests() {
						assert.True(t, e.attemptPublic(t, o).GetAllowed(), "%s %d after the %s limit", other.name, i+1, kind.name)
					}
					assert.False(t, e.attemptPublic(t, o).GetAllowed(), "%s past its own limit", other.name)
					assert.Equal(t, int(limit.GetMaxRequests()), e.counted(t, other, tenant))
				}
				assert.Equal(t, int(limit.GetMaxRequests()), e.counted(t, kind, tenant))
			})
		}
	})

	t.Run("failed logins do not throttle public requests", func(t *testing.T) {
		t.Parallel()
		l := newLogin()
		l.ipPolicy = &riskv1.IpThrottlePolicy{MaxFailures: 2, Window: durationpb.New(time.Hour)}
		for i := range 2 {
			li := l
			li.email = fmt.Sprintf("user%d@example.com", i)
			e.record(t, li, false)
		}
		require.Equal(t, riskv1.DenyReason_DENY_REASON_IP_THROTTLED, e.check(t, l).GetReason())
		for _, kind := range publicKinds {
			assert.True(t, e.attemptPublic(t, publicRequest{kind: kind, tenant: l.tenant, ip: l.ip}).GetAllowed(), kind.name)
		}
	})

	t.Run("parallel requests never pass their kind's limit", func(t *testing.T) {
		t.Parallel()
		const n, limit = 50, 7 // of each kind, all at once
		tenant := uuid.NewString()
		policy := &riskv1.PublicRequestThrottlePolicy{MaxRequests: limit, Window: durationpb.New(time.Hour)}
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			allowed = map[string]int{}
		)
		for i := range n {
			for _, kind := range publicKinds {
				wg.Go(func() {
					r := publicRequest{kind: kind, tenant: tenant, ip: fmt.Sprintf("2001:db8:5::%x", i+1), policy: policy} // one /64
					ok := e.attemptPublic(t, r).GetAllowed()
					mu.Lock()
					defer mu.Unlock()
					if ok {
						allowed[kind.name]++
					}
				})
			}
		}
		wg.Wait()
		for _, kind := range publicKinds {
			assert.Equal(t, limit, allowed[kind.name], kind.name)
			assert.Equal(t, limit, e.counted(t, kind, tenant), kind.name)
			assert.True(t, e.attemptPublic(t, publicRequest{kind: kind, tenant: tenant, ip: "2001:db8:6::1", policy: policy}).GetAllowed(),
				"%s: the next /64", kind.name)
		}
		assert.Equal(t, 2, e.count(t, "SELECT count(DISTINCT ip) FROM public_requests WHERE tenant_id = $1", tenant),
			"an IPv6 client by its /64")
	})

	for _, kind := range publicKinds {
		t.Run(kind.name+": the throttle lifts when requests leave the window", func(t *testing.T) {
			t.Parallel()
			r := publicRequest{kind: kind, tenant: uuid.NewString(), ip: "198.51.100.9",
				policy: &riskv1.PublicRequestThrottlePolicy{MaxRequests: 1, Window: durationpb.New(time.Second)}}
			require.True(t, e.attemptPublic(t, r).GetAllowed())
			require.False(t, e.attemptPublic(t, r).GetAllowed())
			require.Eventually(t, func() bool { return e.attemptPublic(t, r).GetAllowed() }, 20*time.Second, 50*time.Millisecond)
		})
	}
}

// An address's public requests of a kind count in every tenant too: a
// client that spreads them over many tenants meets the across-tenants
// limit, however many parallel requests it sends, while another address
// and the other kind go on.
func TestPublicRequestThrottleAcrossTenants(t *testing.T) {
	t.Parallel()
	perTenant := risk.PublicRequestThrottlePolicy{MaxRequests: 5, Window: time.Hour}
	allTenants := risk.PublicRequestThrottlePolicy{MaxRequests: 12, Window: time.Hour}
	se := servicestest.StartWith(t, servicestest.Options{Risk: risk.Config{
		ResetThrottle: perTenant, RegistrationThrottle: perTenant,
		ResetThrottleAllTenants: allTenants, RegistrationThrottleAllTenants: allTenants,
	}}, "tenant", "risk")
	e := &env{Env: se, risk: riskv1connect.NewRiskServiceClient(se.HTTP, se.URL, se.Impersonate()), pool: se.Pool("risk")}

	for _, kind := range publicKinds {
		t.Run(kind.name, func(t *testing.T) {
			ip := map[string]string{"password_reset": "203.0.113.50", "registration": "203.0.113.51"}[kind.name]
			a, b, c := uuid.NewString(), uuid.NewString(), uuid.NewString()
			for _, tenant := range []string{a, b} {
				for i := range perTenant.MaxRequests {
					require.True(t, e.attemptPublic(t, publicRequest{kind: kind, tenant: tenant, ip: ip}).GetAllowed(), "request %d", i+1)
				}
			}
			assert.False(t, e.attemptPublic(t, publicRequest{kind: kind, tenant: a, ip: ip}).GetAllowed(), "the tenant's limit")
			for range allTenants.MaxRequests - 2*perTenant.MaxRequests {
				require.True(t, e.attemptPublic(t, publicRequest{kind: kind, tenant: c, ip: ip}).GetAllowed())
			}
			denied := e.attemptPublic(t, publicRequest{kind: kind, tenant: c, ip: ip})
			assert.False(t, denied.GetAllowed(), "the limit across tenants, in a tenant below its own")
			assert.Equal(t, riskv1.DenyReason_DENY_REASON_IP_THROTTLED, denied.GetReason())
			assert.Positive(t, denied.GetRetryAfter().AsDuration())
			assert.Equal(t, allTenants.MaxRequests, e.count(t, "SELECT count(*) FROM public_requests WHERE ip = $1 AND kind = $2", ip, kind.name))
			assert.True(t, e.attemptPublic(t, publicRequest{kind: kind, tenant: c, ip: "203.0.113.99"}).GetAllowed(), "another address")
		})
	}

	t.Run("parallel requests over many tenants", func(t *testing.T) {
		const tenants = 8 // each sent its limit, all at once
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			allowed int
		)
		for range tenants {
			tenant := uuid.NewString()
			for range perTenant.MaxRequests {
				wg.Go(func() {
					ok := e.attemptPublic(t, publicRequest{kind: registrations, tenant: tenant, ip: "2001:db8:9::1"}).GetAllowed()
					mu.Lock()
					defer mu.Unlock()
					if ok {
						allowed++
					}
				})
			}
		}
		wg.Wait()
		assert.Equal(t, allTenants.MaxRequests, allowed)
		assert.True(t, e.attemptPublic(t, publicRequest{kind: passwordResets, tenant: uuid.NewString(), ip: "2001:db8:9::1"}).GetAllowed(),
			"the other kind is counted apart")
	})
}
