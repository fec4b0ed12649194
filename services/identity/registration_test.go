package identity_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/natstest"
	"github.com/authms/authms/events/pg"
	"github.com/authms/authms/events/pg/pgtest"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/services/identity"
	"github.com/authms/authms/services/internal/platform"
	"github.com/authms/authms/services/internal/rpc"
	"github.com/authms/authms/services/internal/secrets"
	"github.com/authms/authms/services/servicestest"
)

// cheapPasswords makes argon2id cheap enough for hundreds of registrations
// in a test; production uses identity.DefaultConfig().
var cheapPasswords = identity.Config{Password: identity.PasswordParams{Memory: 1024, Iterations: 1}}

// startCheap serves identity built with cfg on its own database, without a
// relay (tests read the events table) nor consumers, and returns a client,
// the pool and an active tenant identity knows (see projectTenant).
func startCheap(t *testing.T, cfg identity.Config) (identityv1connect.IdentityServiceClient, *pgxpool.Pool, string) {
	t.Helper()
	pool, _ := pgtest.Provision(t, identity.Name,
		pg.MigrationSource{Name: "events", FS: events.Migrations},
		pg.MigrationSource{Name: identity.Name, FS: identity.Migrations()})
	logger := servicestest.Logger(t)
	opts, err := rpc.HandlerOptions(logger)
	require.NoError(t, err)
	svc, err := identity.NewWithConfig(identity.Standalone(t, platform.Deps{
		Service:        identity.Name,
		Pool:           pool,
		JS:             natstest.Start(t).JetStream(t),
		Logger:         logger,
		Secrets:        secrets.NewMemory().Service(identity.Name),
		HandlerOptions: opts,
	}), cfg)
	require.NoError(t, err)
	mux := http.NewServeMux()
	svc.Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return identityv1connect.NewIdentityServiceClient(srv.Client(), srv.URL), pool, projectTenant(t, svc, pool)
}

// projectTenant applies the tenant.tenant.created event of a new active
// tenant with identity's own tenants projector, as its consumer would
// from the TENANT stream, and returns the tenant's id.
func projectTenant(t *testing.T, svc *identity.Service, pool *pgxpool.Pool) string {
	t.Helper()
	tenant := uuid.NewString()
	payload := &tenantv1.TenantCreated{
		TenantId: tenant, Slug: "cheap", DisplayName: "Cheap", Status: tenantv1.TenantStatus_TENANT_STATUS_ACTIVE,
		PasswordPolicy: &tenantv1.PasswordPolicy{MinLength: 12, CheckBreached: true},
	}
	data, err := proto.Marshal(payload)
	require.NoError(t, err)
	ev := events.Event{
		ID: uuid.New(), Service: "tenant", AggregateType: "tenant", AggregateID: tenant, Name: "created",
		TenantID: tenant, Version: 1, Time: time.Now().UTC(),
		MessageName: payload.ProtoReflect().Descriptor().FullName(), Data: data,
	}
	for _, p := range svc.Projectors() {
		if apply := p.Handlers[ev.Subject()]; p.Name == "tenants" && apply != nil {
			require.NoError(t, pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error { return apply(t.Context(), tx, ev) }))
			return tenant
		}
	}
	t.Fatal("identity has no tenants projector for tenant.tenant.created")
	return ""
}

func TestConcurrentRegistrations(t *testing.T) {
	t.Parallel()
	client, pool, tenant := startCheap(t, cheapPasswords)

	const n = 200 // half race for one email, half register distinct ones
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
	assert.Equal(t, n, countRows(t, pool, "SELECT count(*) FROM outbox WHERE headers->>'ce-tenantid' = $1", tenant),
		"every event is in the outbox (no relay runs here)")
	assert.Equal(t, n/2+1, countRows(t, pool, "SELECT count(*) FROM credentials WHERE password_hash LIKE '$argon2id$v=19$m=1024,t=1,p=1$%'"),
		"hashes record the configured parameters")
}
