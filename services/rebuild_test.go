package services_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/projections"
	billingv1 "github.com/authms/authms/schemas/gen/authms/billing/v1"
	"github.com/authms/authms/schemas/gen/authms/billing/v1/billingv1connect"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	"github.com/authms/authms/services"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/servicestest"
)

// register registers n users of tenant concurrently and returns their ids.
func register(t *testing.T, c identityv1connect.IdentityServiceClient, tenant, prefix string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			res, err := c.RegisterUser(context.Background(), connect.NewRequest(&identityv1.RegisterUserRequest{
				TenantId: tenant, Email: fmt.Sprintf("%s-%d@example.com", prefix, i), Password: faultPassword,
			}))
			if assert.NoError(t, err) {
				ids[i] = res.Msg.GetUser().GetId()
			}
		})
	}
	wg.Wait()
	return ids
}

// caughtUp waits until every projector of the platform is caught up.
func caughtUp(t *testing.T, p *services.Platform) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		sts, err := p.Projections(context.Background())
		if !assert.NoError(c, err) {
			return
		}
		for _, st := range sts {
			assert.Equal(c, services.StateCaughtUp, st.State, st.Durable)
		}
	}, 30*time.Second, 50*time.Millisecond)
}

// The rebuilt user_profiles equals what identity holds, with registrations
// and email changes arriving while the rebuild runs, and the live projector
// continues after the rebuild without applying anything twice.
func TestRebuildUserProfiles(t *testing.T) {
	t.Parallel()
	// 300 registrations from the test's one address.
	env := servicestest.StartWith(t, servicestest.Options{Risk: servicestest.ManyRegistrations(300)}, "tenant", "identity", "risk", "billing")
	ident := identityv1connect.NewIdentityServiceClient(env.HTTP, env.URL, env.Impersonate())
	billing := billingv1connect.NewBillingServiceClient(env.HTTP, env.URL, env.Impersonate(auth.RoleAdmin)) // admins find customers by email
	tenant := env.NewTenant(t)

	ids := register(t, ident, tenant, "before", 200)
	for _, id := range ids[:50] {
		_, err := ident.ChangeEmail(t.Context(), connect.NewRequest(&identityv1.ChangeEmailRequest{
			TenantId: tenant, UserId: id, CurrentPassword: faultPassword, Email: "changed-" + id + "@example.com",
		}))
		require.NoError(t, err)
	}
	caughtUp(t, env.Platform)

	// Damage the cache the way a bug would.
	pool := env.Pool("billing")
	_, err := pool.Exec(t.Context(), "DELETE FROM user_profiles WHERE user_id = ANY($1::uuid[])", ids[100:150])
	require.NoError(t, err)
	_, err = pool.Exec(t.Context(), "UPDATE user_profiles SET email_hash = 'broken' WHERE user_id = ANY($1::uuid[])", ids[150:])
	require.NoError(t, err)

	var during []string
	var wg sync.WaitGroup
	wg.Go(func() { during = register(t, ident, tenant, "during", 100) })
	var phases []string
	res, err := env.Platform.RebuildProjection(t.Context(), "billing", "user_profiles", func(p projections.Progress) {
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
	})
	require.NoError(t, err)
	wg.Wait()
	assert.Contains(t, phases, "replaying")
	assert.Equal(t, "done", phases[len(phases)-1])
	assert.GreaterOrEqual(t, res.Replayed, uint64(250), "200 created and 50 changed at least")

	caughtUp(t, env.Platform)
	var rows int
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM user_profiles").Scan(&rows))
	assert.Equal(t, 300, rows)

	// Every user, as identity has it, is in billing's cache at the same version.
	for _, id := range append(ids, during...) {
		want, err := ident.GetUser(t.Context(), connect.NewRequest(&identityv1.GetUserRequest{TenantId: tenant, UserId: id}))
		require.NoError(t, err)
		got, err := billing.GetCustomer(t.Context(), connect.NewRequest(&billingv1.GetCustomerRequest{TenantId: tenant, UserId: id}))
		require.NoError(t, err, id)
		assert.Equal(t, want.Msg.GetUser().GetEmail(), got.Msg.GetCustomer().GetEmail())
		assert.Equal(t, want.Msg.GetUser().GetVersion(), got.Msg.GetCustomer().GetVersion())
		found, err := billing.FindCustomerByEmail(t.Context(), connect.NewRequest(&billingv1.FindCustomerByEmailRequest{
			TenantId: tenant, Email: want.Msg.GetUser().GetEmail()}))
		require.NoError(t, err, "the blind index is rebuilt too")
		assert.Equal(t, id, found.Msg.GetCustomer().GetUserId())
	}

	// The table keeps the names its migration gave its indexes.
	var indexes []string
	r, err := pool.Query(t.Context(), "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'user_profiles' ORDER BY 1")
	require.NoError(t, err)
	for r.Next() {
		var n string
		require.NoError(t, r.Scan(&n))
		indexes = append(indexes, n)
	}
	require.NoError(t, r.Err())
	assert.Equal(t, []string{"user_profiles_pkey", "user_profiles_tenant_id_email_hash_idx"}, indexes)

	// No shadow schema is left behind.
	var shadows int
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rebuild_%'").Scan(&shadows))
	assert.Zero(t, shadows)
}

// A projector that performs side effects of its own cannot be rebuilt.
func TestRebuildRefusesPolicies(t *testing.T) {
	t.Parallel()
	env := servicestest.Start(t, "identity", "wallet")
	_, err := env.Platform.RebuildProjection(t.Context(), "wallet", "wallets", nil)
	require.ErrorIs(t, err, projections.ErrNotRebuildable)
	_, err = env.Platform.RebuildProjection(t.Context(), "wallet", "nope", nil)
	require.ErrorIs(t, err, services.ErrUnknownProjection)
}
