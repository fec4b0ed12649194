package services_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	"github.com/authms/authms/services/risk"
	"github.com/authms/authms/services/servicestest"
)

// TestRegistrationsAreThrottledPerAddress registers new and taken emails
// from one client address, behind a trusted proxy (the test's own
// connections come from 127.0.0.1): they count alike against risk's
// registration throttle, and past it every registration is refused the
// same way, whatever its email, and writes nothing; an unknown tenant is
// still NotFound and does not count, while another address, and a
// password reset from the same address, still get through.
func TestRegistrationsAreThrottledPerAddress(t *testing.T) {
	t.Parallel()
	env := servicestest.StartWith(t, servicestest.Options{
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	}, "tenant", "identity", "risk")
	client := identityv1connect.NewIdentityServiceClient(env.HTTP, env.URL)
	tenant := env.NewTenant(t)
	// forwardedFor is what the proxy appends to: the client may write
	// anything before it, which is not believed.
	register := func(tenant, email, forwardedFor string) error {
		req := connect.NewRequest(&identityv1.RegisterUserRequest{TenantId: tenant, Email: email, Password: faultPassword})
		req.Header().Set("X-Forwarded-For", forwardedFor)
		_, err := client.RegisterUser(context.Background(), req)
		return err
	}
	require.NoError(t, register(tenant, "ada@example.com", "198.51.100.1"), "ada's account, from another address")

	identityDB, riskDB := env.Pool("identity"), env.Pool("risk")
	written := func() map[string]int {
		return map[string]int{
			"users":                 count(t, identityDB, "SELECT count(*) FROM users WHERE tenant_id = $1", tenant),
			"credentials":           count(t, identityDB, "SELECT count(*) FROM credentials WHERE tenant_id = $1", tenant),
			"registration attempts": count(t, identityDB, "SELECT count(*) FROM events WHERE tenant_id = $1 AND subject = 'identity.registration.address_taken'", tenant),
			"events":                count(t, identityDB, "SELECT count(*) FROM events WHERE tenant_id = $1", tenant),
			"counted":               count(t, riskDB, "SELECT count(*) FROM public_requests WHERE tenant_id = $1 AND ip = '203.0.113.7'", tenant),
		}
	}
	limit := risk.DefaultConfig().RegistrationThrottle.MaxRequests
	for i := range limit {
		email := fmt.Sprintf("new%d@example.com", i)
		if i%2 == 0 {
			email = "ada@example.com"
		}
		require.NoError(t, register(tenant, email, fmt.Sprintf("192.0.2.%d, 203.0.113.7", i+1)), "registration %d", i+1)
	}
	before := written()
	require.Equal(t, map[string]int{
		"users": 1 + limit/2, "credentials": 1 + limit/2, "registration attempts": limit / 2, "events": 1 + limit, "counted": limit,
	}, before, "new and taken emails alike count once each")

	taken, fresh := register(tenant, "ada@example.com", "203.0.113.7"), register(tenant, "eve@example.com", "192.0.2.250, 203.0.113.7")
	for name, err := range map[string]error{"a taken email": taken, "a new email": fresh} {
		require.Equal(t, connect.CodeResourceExhausted, connect.CodeOf(err), "%s: %v", name, err)
		var ce *connect.Error
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, "too many registrations from this address; retry later", ce.Message(), name)
		assert.NotEmpty(t, ce.Meta().Get("Retry-After"), name)
		require.Len(t, ce.Details(), 1, name)
		assert.Equal(t, "google.rpc.RetryInfo", ce.Details()[0].Type(), name)
	}
	assert.Equal(t, taken.Error(), fresh.Error(), "the answer does not tell the emails apart")
	assert.Equal(t, before, written(), "a refused registration writes nothing: no user, no notice to ada, no count")

	unknown := uuid.NewString()
	assert.Equal(t, connect.CodeNotFound, connect.CodeOf(register(unknown, "eve@example.com", "203.0.113.7")),
		"an unknown tenant, from the throttled address too")
	assert.Zero(t, count(t, riskDB, "SELECT count(*) FROM public_requests WHERE tenant_id = $1", unknown), "is not counted")

	assert.NoError(t, register(tenant, "eve@example.com", "203.0.113.8"), "another address")
	reset := connect.NewRequest(&identityv1.RequestPasswordResetRequest{TenantId: tenant, Email: "ada@example.com"})
	reset.Header().Set("X-Forwarded-For", "203.0.113.7")
	_, err := client.RequestPasswordReset(context.Background(), reset)
	assert.NoError(t, err, "a password reset from the throttled address: counted apart")
}

// TestRegistrationTimeDoesNotRevealAccounts compares the median time of 100
// registrations of taken emails to that of 100 of new ones, interleaved in
// one run at production argon2id cost: the taken ones must not answer
// sooner (no hash) or later (more database work) enough to tell them apart.
func TestRegistrationTimeDoesNotRevealAccounts(t *testing.T) {
	const n = 100
	env := servicestest.StartWith(t, servicestest.Options{
		Identity: servicestest.ProductionHashing(), Risk: servicestest.ManyRegistrations(3 * n),
	}, "tenant", "identity", "risk")
	client := identityv1connect.NewIdentityServiceClient(env.HTTP, env.URL)
	tenant := env.NewTenant(t)
	register := func(email string) time.Duration {
		start := time.Now()
		_, err := client.RegisterUser(t.Context(), connect.NewRequest(&identityv1.RegisterUserRequest{
			TenantId: tenant, Email: email, Password: faultPassword,
		}))
		took := time.Since(start)
		require.NoError(t, err, email)
		return took
	}
	for i := range n {
		register(fmt.Sprintf("taken%d@example.com", i))
	}
	var taken, fresh []time.Duration
	for i := range n {
		if i%2 == 0 { // neither kind always goes first
			taken = append(taken, register(fmt.Sprintf("taken%d@example.com", i)))
			fresh = append(fresh, register(fmt.Sprintf("new%d@example.com", i)))
		} else {
			fresh = append(fresh, register(fmt.Sprintf("new%d@example.com", i)))
			taken = append(taken, register(fmt.Sprintf("taken%d@example.com", i)))
		}
	}
	servicestest.AssertSameTiming(t, "registration", "taken email", taken, "new email", fresh)
}
