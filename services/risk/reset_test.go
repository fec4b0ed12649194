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
	"github.com/authms/authms/services/risk"
)

// resetRequest is one address's reset requests; policy, when set, goes
// with every request.
type resetRequest struct {
	tenant, ip string
	policy     *riskv1.ResetThrottlePolicy
}

func (e *env) attemptReset(t *testing.T, r resetRequest) *riskv1.AttemptPasswordResetResponse {
	t.Helper()
	res, err := e.risk.AttemptPasswordReset(context.WithoutCancel(t.Context()), connect.NewRequest(&riskv1.AttemptPasswordResetRequest{
		TenantId: r.tenant, Ip: r.ip, ResetThrottlePolicy: r.policy,
	}))
	require.NoError(t, err)
	return res.Msg
}

func TestResetThrottle(t *testing.T) {
	t.Parallel()
	e := start(t)

	t.Run("the default limit per address", func(t *testing.T) {
		t.Parallel()
		def := risk.DefaultConfig().ResetThrottle
		r := resetRequest{tenant: uuid.NewString(), ip: "203.0.113.7"}
		for i := range def.MaxRequests {
			require.True(t, e.attemptReset(t, r).GetAllowed(), "request %d", i+1)
		}
		denied := e.attemptReset(t, r)
		assert.False(t, denied.GetAllowed())
		assert.Equal(t, riskv1.DenyReason_DENY_REASON_IP_THROTTLED, denied.GetReason())
		assert.Positive(t, denied.GetRetryAfter().AsDuration())
		assert.LessOrEqual(t, denied.GetRetryAfter().AsDuration(), def.Window)
		assert.Equal(t, def.MaxRequests, e.count(t, "SELECT count(*) FROM reset_requests WHERE tenant_id = $1", r.tenant),
			"a denied request does not count")

		assert.True(t, e.attemptReset(t, resetRequest{tenant: r.tenant, ip: "203.0.113.8"}).GetAllowed(), "another address")
		assert.True(t, e.attemptReset(t, resetRequest{tenant: uuid.NewString(), ip: r.ip}).GetAllowed(), "the address in another tenant")
		l := login{tenant: r.tenant, email: "alice@example.com", ip: r.ip}
		assert.True(t, e.check(t, l).GetAllowed(), "reset requests do not throttle logins")
		assert.Empty(t, e.storedEvents(t, r.tenant), "no event")
	})

	t.Run("failed logins do not throttle resets", func(t *testing.T) {
		t.Parallel()
		l := newLogin()
		l.ipPolicy = &riskv1.IpThrottlePolicy{MaxFailures: 2, Window: durationpb.New(time.Hour)}
		for i := range 2 {
			li := l
			li.email = fmt.Sprintf("user%d@example.com", i)
			e.record(t, li, false)
		}
		require.Equal(t, riskv1.DenyReason_DENY_REASON_IP_THROTTLED, e.check(t, l).GetReason())
		assert.True(t, e.attemptReset(t, resetRequest{tenant: l.tenant, ip: l.ip}).GetAllowed())
	})

	t.Run("parallel requests never pass the limit", func(t *testing.T) {
		t.Parallel()
		const n, limit = 50, 7
		r := resetRequest{tenant: uuid.NewString(), ip: "2001:db8:5::1",
			policy: &riskv1.ResetThrottlePolicy{MaxRequests: limit, Window: durationpb.New(time.Hour)}}
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			allowed int
		)
		for i := range n {
			wg.Go(func() {
				ri := r
				ri.ip = fmt.Sprintf("2001:db8:5::%x", i+1) // one /64
				ok := e.attemptReset(t, ri).GetAllowed()
				mu.Lock()
				defer mu.Unlock()
				if ok {
					allowed++
				}
			})
		}
		wg.Wait()
		assert.Equal(t, limit, allowed)
		assert.Equal(t, limit, e.count(t, "SELECT count(*) FROM reset_requests WHERE tenant_id = $1", r.tenant))
		assert.Equal(t, 1, e.count(t, "SELECT count(DISTINCT ip) FROM reset_requests WHERE tenant_id = $1", r.tenant), "an IPv6 client by its /64")
		next := r
		next.ip = "2001:db8:6::1"
		assert.True(t, e.attemptReset(t, next).GetAllowed(), "the next /64")
	})

	t.Run("the throttle lifts when requests leave the window", func(t *testing.T) {
		t.Parallel()
		r := resetRequest{tenant: uuid.NewString(), ip: "198.51.100.9",
			policy: &riskv1.ResetThrottlePolicy{MaxRequests: 1, Window: durationpb.New(time.Second)}}
		require.True(t, e.attemptReset(t, r).GetAllowed())
		require.False(t, e.attemptReset(t, r).GetAllowed())
		require.Eventually(t, func() bool { return e.attemptReset(t, r).GetAllowed() }, 20*time.Second, 50*time.Millisecond)
	})
}
