package identity_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/events"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/services/identity"
	"github.com/authms/authms/services/servicestest"
)

func TestConcurrentRegistrations(t *testing.T) {
	t.Parallel()
	// Half race for one email, half register distinct ones, all from the
	// test's one address: risk's registration throttle lets them through.
	const n = 200
	e := servicestest.StartWith(t, servicestest.Options{Risk: servicestest.ManyRegistrations(n)}, "identity", "tenant", "risk")
	client, pool, tenant := newClient(e), e.Pool("identity"), e.NewTenant(t)

	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		sameWon   []string
		codes     = map[connect.Code]int{}
		distinctN int
	)
	for i := range n {
		wg.Go(func() {
			email := fmt.Sprintf("user%d@example.com", i)
			if i%2 == 0 {
				email = "Same@Example.com"
				if i%4 == 0 {
					email = strings.ToLower(email)
				}
			}
			res, err := client.RegisterUser(context.WithoutCancel(t.Context()), connect.NewRequest(&identityv1.RegisterUserRequest{
				TenantId: tenant, Email: email, Password: password,
			}))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				codes[connect.CodeOf(err)]++
			case i%2 == 0:
				sameWon = append(sameWon, res.Msg.GetUser().GetId())
			default:
				distinctN++
			}
		})
	}
	wg.Wait()
	assert.Empty(t, codes, "every registration is answered alike, a taken address too")
	assert.Len(t, sameWon, n/2)
	assert.Equal(t, n/2, distinctN)
	assert.Equal(t, 1, countRows(t, pool, "SELECT count(*) FROM users WHERE id = ANY($1)", sameWon), "one email, one user")
	assert.Equal(t, n/2+1, countRows(t, pool, "SELECT count(*) FROM users WHERE tenant_id = $1", tenant))
	assert.Equal(t, n/2+1, countRows(t, pool, "SELECT count(*) FROM credentials WHERE tenant_id = $1", tenant))
	assert.Equal(t, n/2+1, countRows(t, pool, "SELECT count(*) FROM events WHERE tenant_id = $1 AND subject = 'identity.user.created'", tenant))
	assert.Equal(t, n/2-1, countRows(t, pool, "SELECT count(*) FROM events WHERE tenant_id = $1 AND subject = 'identity.registration.address_taken'", tenant),
		"the owner is told of every other attempt")
	assert.Equal(t, n/2+1, countRows(t, pool, "SELECT count(*) FROM credentials WHERE password_hash LIKE '$argon2id$v=19$m=1024,t=1,p=1$%'"),
		"hashes record the configured parameters (servicestest's)")
	stream, err := e.JS.Stream(t.Context(), events.StreamName(identity.Name))
	require.NoError(t, err)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		info, err := stream.Info(t.Context())
		if assert.NoError(c, err) {
			assert.Equal(c, uint64(n), info.State.Msgs)
		}
	}, 20*time.Second, 50*time.Millisecond, "every event reaches the IDENTITY stream, which holds only this test's")
}

// TestUserCommandsOnAnotherAggregate checks every procedure addressed to a
// user with the id of an aggregate that is not a user: the id RegisterUser
// answers a taken address with (a registration's, which enumeration-safety
// makes anybody able to learn) and a role's. Each answers NotFound, as for
// an unknown user, and records nothing.
func TestUserCommandsOnAnotherAggregate(t *testing.T) {
	t.Parallel()
	e := start(t)
	tenant := e.NewTenant(t)
	owner := e.register(t, tenant, "ada@example.com")
	registration := e.registerAgain(t, tenant, "ada@example.com", owner).GetUser().GetId()
	role, err := e.client.CreateRole(t.Context(), connect.NewRequest(&identityv1.CreateRoleRequest{TenantId: tenant, Name: "auditor", Permissions: []string{"wallet:read"}}))
	require.NoError(t, err)

	calls := []struct {
		name string
		call func(ctx context.Context, id string) error
	}{
		{name: "GetUser", call: func(ctx context.Context, id string) error {
			_, err := e.client.GetUser(ctx, connect.NewRequest(&identityv1.GetUserRequest{TenantId: tenant, UserId: id}))
			return err
		}},
		{name: "ChangeEmail", call: func(ctx context.Context, id string) error {
			_, err := e.client.ChangeEmail(ctx, connect.NewRequest(&identityv1.ChangeEmailRequest{TenantId: tenant, UserId: id, CurrentPassword: password, Email: "x@example.com"}))
			return err
		}},
		{name: "ChangePassword", call: func(ctx context.Context, id string) error {
			_, err := e.client.ChangePassword(ctx, connect.NewRequest(&identityv1.ChangePasswordRequest{TenantId: tenant, UserId: id, CurrentPassword: password, NewPassword: "another horse battery staple"}))
			return err
		}},
		{name: "DisableUser", call: func(ctx context.Context, id string) error {
			_, err := e.client.DisableUser(ctx, connect.NewRequest(&identityv1.DisableUserRequest{TenantId: tenant, UserId: id}))
			return err
		}},
		{name: "EnableUser", call: func(ctx context.Context, id string) error {
			_, err := e.client.EnableUser(ctx, connect.NewRequest(&identityv1.EnableUserRequest{TenantId: tenant, UserId: id}))
			return err
		}},
		{name: "DeleteUser", call: func(ctx context.Context, id string) error {
			_, err := e.client.DeleteUser(ctx, connect.NewRequest(&identityv1.DeleteUserRequest{TenantId: tenant, UserId: id}))
			return err
		}},
		{name: "RequestEmailVerification", call: func(ctx context.Context, id string) error {
			_, err := e.client.RequestEmailVerification(ctx, connect.NewRequest(&identityv1.RequestEmailVerificationRequest{TenantId: tenant, UserId: id}))
			return err
		}},
		{name: "AssignRoles", call: func(ctx context.Context, id string) error {
			_, err := e.client.AssignRoles(ctx, connect.NewRequest(&identityv1.AssignRolesRequest{TenantId: tenant, UserId: id, Roles: []string{"admin"}}))
			return err
		}},
		{name: "CheckPermission", call: func(ctx context.Context, id string) error {
			_, err := e.client.CheckPermission(ctx, connect.NewRequest(&identityv1.CheckPermissionRequest{TenantId: tenant, UserId: id, Permission: "wallet:read"}))
			return err
		}},
	}
	ids := map[string]string{"a registration's id": registration, "a role's id": role.Msg.GetRole().GetId()}
	for idName, id := range ids {
		for _, tt := range calls {
			t.Run(tt.name+" on "+idName, func(t *testing.T) {
				err := tt.call(t.Context(), id)
				require.Error(t, err)
				assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "%v", err)
				assertNoInternals(t, err.Error())
			})
		}
	}
	for idName, id := range ids {
		assert.Equal(t, 1, e.count(t, "SELECT count(*) FROM events WHERE aggregate_id = $1", id), "nothing recorded on %s", idName)
	}
}
