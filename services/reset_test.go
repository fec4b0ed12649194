package services_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	"github.com/authms/authms/services/identity"
	"github.com/authms/authms/services/risk"
	"github.com/authms/authms/services/servicestest"
)

// TestPasswordResetRequestsAreThrottledPerAddress sprays reset requests
// for known and unknown emails from one client address, behind a trusted
// proxy (the test's own connections come from 127.0.0.1): past risk's
// reset throttle every request is refused the same way, whatever its
// email, while another address still gets through.
func TestPasswordResetRequestsAreThrottledPerAddress(t *testing.T) {
	t.Parallel()
	env := servicestest.StartWith(t, servicestest.Options{
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	}, "tenant", "identity", "risk")
	client := identityv1connect.NewIdentityServiceClient(env.HTTP, env.URL)
	tenant := env.NewTenant(t)
	_, err := client.RegisterUser(t.Context(), connect.NewRequest(&identityv1.RegisterUserRequest{
		TenantId: tenant, Email: "ada@example.com", Password: faultPassword,
	}))
	require.NoError(t, err)
	// forwardedFor is what the proxy appends to: the client may write
	// anything before it, which is not believed.
	request := func(email, forwardedFor string) error {
		req := connect.NewRequest(&identityv1.RequestPasswordResetRequest{TenantId: tenant, Email: email})
		req.Header().Set("X-Forwarded-For", forwardedFor)
		_, err := client.RequestPasswordReset(context.Background(), req)
		return err
	}

	limit := risk.DefaultConfig().ResetThrottle.MaxRequests
	for i := range limit {
		email := fmt.Sprintf("nobody%d@example.com", i)
		if i%2 == 0 {
			email = "ada@example.com"
		}
		require.NoError(t, request(email, fmt.Sprintf("192.0.2.%d, 203.0.113.7", i+1)), "request %d", i+1)
	}
	known, unknown := request("ada@example.com", "203.0.113.7"), request("nobody@example.com", "192.0.2.250, 203.0.113.7")
	for name, err := range map[string]error{"a known email": known, "an unknown email": unknown} {
		require.Equal(t, connect.CodeResourceExhausted, connect.CodeOf(err), "%s: %v", name, err)
		var ce *connect.Error
		require.ErrorAs(t, err, &ce)
		assert.NotEmpty(t, ce.Meta().Get("Retry-After"), name)
		require.Len(t, ce.Details(), 1, name)
		assert.Equal(t, "google.rpc.RetryInfo", ce.Details()[0].Type(), name)
	}
	assert.Equal(t, known.Error(), unknown.Error(), "the answer does not tell the emails apart")
	assert.NoError(t, request("ada@example.com", "203.0.113.8"), "another address")
	assert.Equal(t, 1, count(t, env.Pool("identity"), "SELECT count(*) FROM user_tokens WHERE tenant_id = $1", tenant),
		"ada's reset token, issued once (identity's per-user interval)")
}

// TestPasswordResetTimeDoesNotRevealAccounts compares the median time of
// 100 reset requests for known emails (each issues a token and records an
// event) to that of 100 for unknown ones (a lookup), interleaved: without
// identity's response floor they differ by half (3 against 2 ms); the test
// sets the floor to 25ms instead of the default 100ms to run faster.
func TestPasswordResetTimeDoesNotRevealAccounts(t *testing.T) {
	const n = 100
	env := servicestest.StartWith(t, servicestest.Options{
		Identity: identity.Config{ResetResponseTime: 25 * time.Millisecond},
		Risk: risk.Config{
			ResetThrottle:        risk.PublicRequestThrottlePolicy{MaxRequests: 3 * n, Window: time.Hour},
			RegistrationThrottle: risk.PublicRequestThrottlePolicy{MaxRequests: 3 * n, Window: time.Hour},
		},
	}, "tenant", "identity", "risk")
	client := identityv1connect.NewIdentityServiceClient(env.HTTP, env.URL)
	tenant := env.NewTenant(t)
	for i := range n {
		_, err := client.RegisterUser(t.Context(), connect.NewRequest(&identityv1.RegisterUserRequest{
			TenantId: tenant, Email: fmt.Sprintf("known%d@example.com", i), Password: faultPassword,
		}))
		require.NoError(t, err)
	}
	request := func(email string) time.Duration {
		start := time.Now()
		_, err := client.RequestPasswordReset(t.Context(), connect.NewRequest(&identityv1.RequestPasswordResetRequest{TenantId: tenant, Email: email}))
		took := time.Since(start)
		require.NoError(t, err, email)
		return took
	}
	var known, unknown []time.Duration
	for i := range n {
		k, u := fmt.Sprintf("known%d@example.com", i), fmt.Sprintf("unknown%d@example.com", i)
		if i%2 == 0 { // neither kind always goes first
			known, unknown = append(known, request(k)), append(unknown, request(u))
		} else {
			unknown, known = append(unknown, request(u)), append(known, request(k))
		}
	}
	servicestest.AssertSameTiming(t, "reset request", "known email", known, "unknown email", unknown)
	var links int
	require.NoError(t, env.Pool("identity").QueryRow(t.Context(),
		"SELECT count(*) FROM events WHERE subject = 'identity.user.password_reset_requested'").Scan(&links))
	assert.Equal(t, n, links, "every known email was sent a link")
}
