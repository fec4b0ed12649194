package tenant_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/authms/authms/events"
	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/schemas/gen/authms/tenant/v1/tenantv1connect"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/servicestest"
	"github.com/authms/authms/services/tenant"
)

// env runs the tenant service for one test, with an in-process DNS
// server for domain verification.
type env struct {
	*servicestest.Env
	tenant tenantv1connect.TenantServiceClient
	pool   *pgxpool.Pool
	dns    *zone
}

// member returns a client that calls as a user (no role) of tenantID.
func (e *env) member(t *testing.T, tenantID string) tenantv1connect.TenantServiceClient {
	t.Helper()
	return tenantv1connect.NewTenantServiceClient(e.HTTP, e.URL, servicestest.Bearer(e.Token(t, tenantID, uuid.NewString())))
}

func start(t *testing.T) *env {
	t.Helper()
	z := startZone(t)
	return startWith(t, z, tenant.Config{DNSServer: z.addr})
}

func startWith(t *testing.T, z *zone, cfg tenant.Config) *env {
	t.Helper()
	e := servicestest.StartWith(t, servicestest.Options{Tenant: cfg}, "tenant")
	return &env{
		Env:    e,
		tenant: tenantv1connect.NewTenantServiceClient(e.HTTP, e.URL, e.Impersonate(auth.RoleAdmin)),
		pool:   e.Pool("tenant"),
		dns:    z,
	}
}

// create creates a tenant with a unique slug.
func (e *env) create(t *testing.T) *tenantv1.Tenant {
	t.Helper()
	res, err := e.tenant.CreateTenant(t.Context(), connect.NewRequest(&tenantv1.CreateTenantRequest{
		Slug: "t-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20], DisplayName: "Acme Corp",
	}))
	require.NoError(t, err)
	return res.Msg.GetTenant()
}

func (e *env) get(t *testing.T, id string) *tenantv1.Tenant {
	t.Helper()
	res, err := e.tenant.GetTenant(t.Context(), connect.NewRequest(&tenantv1.GetTenantRequest{TenantId: id}))
	require.NoError(t, err)
	return res.Msg.GetTenant()
}

// count runs a count query against the tenant database.
func (e *env) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, e.pool.QueryRow(t.Context(), sql, args...).Scan(&n))
	return n
}

// storedEvents returns the subjects of a tenant's events, in version order,
// and checks that the versions have no gaps.
func (e *env) storedEvents(t *testing.T, tenantID string) []string {
	t.Helper()
	rows, err := e.pool.Query(t.Context(), "SELECT version, subject FROM events WHERE aggregate_id = $1 ORDER BY version", tenantID)
	require.NoError(t, err)
	defer rows.Close()
	var subjects []string
	for rows.Next() {
		var (
			v       int64
			subject string
		)
		require.NoError(t, rows.Scan(&v, &subject))
		require.Equal(t, int64(len(subjects)+1), v, "versions have no gaps")
		subjects = append(subjects, strings.TrimPrefix(subject, "tenant.tenant."))
	}
	require.NoError(t, rows.Err())
	return subjects
}

// published waits for the event of aggregateID with the given version on
// the TENANT stream and decodes its payload into m.
func published(t *testing.T, js jetstream.JetStream, aggregateID string, version int64, m proto.Message) events.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, events.StreamName("tenant"), jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	for {
		msg, err := cons.Next(jetstream.FetchContext(ctx))
		require.NoError(t, err, "waiting for version %d of %s", version, aggregateID)
		ev, err := events.FromMsg(msg.Subject(), msg.Headers(), msg.Data())
		require.NoError(t, err)
		if ev.AggregateID == aggregateID && ev.Version == version {
			require.NoError(t, ev.Unmarshal(m))
			return ev
		}
	}
}

// violations returns the fields named in err's buf.validate.Violations.
func violations(t *testing.T, err error) []string {
	t.Helper()
	var ce *connect.Error
	require.ErrorAs(t, err, &ce)
	var fields []string
	for _, d := range ce.Details() {
		v, derr := d.Value()
		require.NoError(t, derr)
		if vs, ok := v.(*validatepb.Violations); ok {
			for _, viol := range vs.GetViolations() {
				var path []string
				for _, el := range viol.GetField().GetElements() {
					path = append(path, el.GetFieldName())
				}
				fields = append(fields, strings.Join(path, "."))
			}
		}
	}
	return fields
}

func requireInvalid(t *testing.T, err error, field string, msgAndArgs ...any) {
	t.Helper()
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), msgAndArgs...)
	assert.Contains(t, violations(t, err), field, msgAndArgs...)
}

func d(dur time.Duration) *durationpb.Duration { return durationpb.New(dur) }

func TestTenant(t *testing.T) {
	t.Parallel()
	e := start(t)

	t.Run("created with the default policies", func(t *testing.T) {
		t.Parallel()
		res, err := e.tenant.CreateTenant(t.Context(), connect.NewRequest(&tenantv1.CreateTenantRequest{
			Slug: "acme-" + uuid.NewString()[:8], DisplayName: "  Acme Corp  ",
		}))
		require.NoError(t, err)
		got := res.Msg.GetTenant()
		_, err = uuid.Parse(got.GetId())
		require.NoError(t, err)
		want := &tenantv1.Tenant{
			Id:             got.GetId(),
			Slug:           got.GetSlug(),
			DisplayName:    "Acme Corp",
			Status:         tenantv1.TenantStatus_TENANT_STATUS_ACTIVE,
			PasswordPolicy: &tenantv1.PasswordPolicy{MinLength: 12, CheckBreached: true, HistorySize: 0},
			MfaPolicy:      &tenantv1.MfaPolicy{Requirement: tenantv1.MfaRequirement_MFA_REQUIREMENT_OPTIONAL},
			SessionPolicy: &tenantv1.SessionPolicy{
				AccessTokenTtl: d(10 * time.Minute), RefreshTokenTtl: d(30 * 24 * time.Hour), RefreshReuseGrace: d(10 * time.Second),
			},
			LockoutPolicy: &tenantv1.LockoutPolicy{MaxFailures: 5, Window: d(15 * time.Minute), LockoutDuration: d(15 * time.Minute)},
			Branding:      &tenantv1.Branding{},
			Version:       1,
			CreateTime:    got.GetCreateTime(),
			UpdateTime:    got.GetCreateTime(),
		}
		assert.Empty(t, cmp.Diff(want, got, protocmp.Transform()))

		assert.Empty(t, cmp.Diff(got, e.get(t, got.GetId()), protocmp.Transform()), "GetTenant")
		bySlug, err := e.member(t, got.GetId()).GetTenantBySlug(t.Context(), connect.NewRequest(&tenantv1.GetTenantBySlugRequest{Slug: got.GetSlug()}))
		require.NoError(t, err)
		assert.Empty(t, cmp.Diff(got, bySlug.Msg.GetTenant(), protocmp.Transform()), "GetTenantBySlug")

		var created tenantv1.TenantCreated
		ev := published(t, e.JS, got.GetId(), 1, &created)
		assert.Equal(t, "tenant.tenant.created.v1", ev.Type())
		assert.Equal(t, got.GetId(), ev.TenantID)
		assert.Empty(t, cmp.Diff(&tenantv1.TenantCreated{
			TenantId: got.GetId(), Slug: got.GetSlug(), DisplayName: "Acme Corp", Status: tenantv1.TenantStatus_TENANT_STATUS_ACTIVE,
			PasswordPolicy: want.PasswordPolicy, MfaPolicy: want.MfaPolicy, SessionPolicy: want.SessionPolicy,
			LockoutPolicy: want.LockoutPolicy, Branding: want.Branding, CreateTime: got.GetCreateTime(),
		}, &created, protocmp.Transform()))
	})

	t.Run("a duplicate slug is AlreadyExists and writes nothing", func(t *testing.T) {
		t.Parallel()
		first := e.create(t)
		_, err := e.tenant.CreateTenant(t.Context(), connect.NewRequest(&tenantv1.CreateTenantRequest{Slug: first.GetSlug(), DisplayName: "Other"}))
		assert.Equal(t, connect.CodeAlreadyExists, connect.CodeOf(err))
		assert.Equal(t, 1, e.count(t, "SELECT count(*) FROM tenants WHERE slug = $1", first.GetSlug()))
		assert.Equal(t, 0, e.count(t, "SELECT count(*) FROM tenants WHERE display_name = 'Other'"))
	})

	t.Run("update the display name", func(t *testing.T) {
		t.Parallel()
		tn := e.create(t)
		res, err := e.tenant.UpdateTenant(t.Context(), connect.NewRequest(&tenantv1.UpdateTenantRequest{
			TenantId: tn.GetId(), DisplayName: proto.String("Acme Inc."), ExpectedVersion: proto.Int64(1),
		}))
		require.NoError(t, err)
		assert.Equal(t, "Acme Inc.", res.Msg.GetTenant().GetDisplayName())
		assert.Equal(t, int64(2), res.Msg.GetTenant().GetVersion())
		assert.True(t, res.Msg.GetTenant().GetUpdateTime().AsTime().After(tn.GetCreateTime().AsTime()))

		var updated tenantv1.TenantUpdated
		published(t, e.JS, tn.GetId(), 2, &updated)
		assert.Empty(t, cmp.Diff(&tenantv1.TenantUpdated{
			TenantId: tn.GetId(), DisplayName: "Acme Inc.",
			Status: tenantv1.TenantStatus_TENANT_STATUS_ACTIVE, PreviousStatus: tenantv1.TenantStatus_TENANT_STATUS_ACTIVE,
		}, &updated, protocmp.Transform()))

		// The same name again changes nothing and records nothing.
		res, err = e.tenant.UpdateTenant(t.Context(), connect.NewRequest(&tenantv1.UpdateTenantRequest{
			TenantId: tn.GetId(), DisplayName: proto.String(" Acme Inc. "),
		}))
		require.NoError(t, err)
		assert.Equal(t, int64(2), res.Msg.GetTenant().GetVersion())
		assert.Equal(t, []string{"created", "updated"}, e.storedEvents(t, tn.GetId()))

		_, err = e.tenant.UpdateTenant(t.Context(), connect.NewRequest(&tenantv1.UpdateTenantRequest{TenantId: tn.GetId()}))
		requireInvalid(t, err, "display_name", "nothing to update")
		_, err = e.tenant.UpdateTenant(t.Context(), connect.NewRequest(&tenantv1.UpdateTenantRequest{
			TenantId: tn.GetId(), DisplayName: proto.String("New name"), ExpectedVersion: proto.Int64(1),
		}))
		assert.Equal(t, connect.CodeAborted, connect.CodeOf(err), "a stale expected version")
		assert.Equal(t, "Acme Inc.", e.get(t, tn.GetId()).GetDisplayName())
	})

	t.Run("a tenant admin cannot change the status", func(t *testing.T) {
		t.Parallel()
		tn := e.create(t)
		for _, status := range []tenantv1.TenantStatus{tenantv1.TenantStatus_TENANT_STATUS_SUSPENDED, tenantv1.TenantStatus_TENANT_STATUS_ACTIVE} {
			_, err := e.tenant.UpdateTenant(t.Context(), connect.NewRequest(&tenantv1.UpdateTenantRequest{
				TenantId: tn.GetId(), DisplayName: proto.String("Renamed"), Status: status.Enum(),
			}))
			require.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err), status.String())
			assert.Equal(t, "permission_denied: a tenant's status is changed by the platform operator only (SuspendTenant, ReactivateTenant); UpdateTenant changes the display name", err.Error())
		}
		admin := tenantv1connect.NewTenantServiceClient(e.HTTP, e.URL, servicestest.Bearer(e.Token(t, tn.GetId(), uuid.NewString(), auth.RoleAdmin)))
		_, err := admin.SuspendTenant(t.Context(), connect.NewRequest(&tenantv1.SuspendTenantRequest{TenantId: tn.GetId()}))
		assert.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err), "SuspendTenant is the operator's")
		_, err = admin.ReactivateTenant(t.Context(), connect.NewRequest(&tenantv1.ReactivateTenantRequest{TenantId: tn.GetId()}))
		assert.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err), "ReactivateTenant is the operator's")
		got := e.get(t, tn.GetId())
		assert.Equal(t, "Acme Corp", got.GetDisplayName(), "nothing changed")
		assert.Equal(t, tenantv1.TenantStatus_TENANT_STATUS_ACTIVE, got.GetStatus())
		assert.Equal(t, []string{"created"}, e.storedEvents(t, tn.GetId()))
	})

	t.Run("the operator suspends and reactivates", func(t *testing.T) {
		t.Parallel()
		tn := e.create(t)
		res, err := e.tenant.SuspendTenant(t.Context(), connect.NewRequest(&tenantv1.SuspendTenantRequest{
			TenantId: tn.GetId(), Reason: "  unpaid invoices ", ExpectedVersion: proto.Int64(1),
		}))
		require.NoError(t, err)
		assert.Equal(t, tenantv1.TenantStatus_TENANT_STATUS_SUSPENDED, res.Msg.GetTenant().GetStatus())
		assert.Equal(t, int64(2), res.Msg.GetTenant().GetVersion())
		assert.Equal(t, tenantv1.TenantStatus_TENANT_STATUS_SUSPENDED, e.get(t, tn.GetId()).GetStatus())
		var suspended tenantv1.TenantSuspended
		ev := published(t, e.JS, tn.GetId(), 2, &suspended)
		assert.Equal(t, "tenant.tenant.suspended.v1", ev.Type())
		assert.Empty(t, cmp.Diff(&tenantv1.TenantSuspended{
			TenantId: tn.GetId(), Reason: "unpaid invoices", SuspendTime: res.Msg.GetTenant().GetUpdateTime(),
		}, &suspended, protocmp.Transform()))

		res, err = e.tenant.SuspendTenant(t.Context(), connect.NewRequest(&tenantv1.SuspendTenantRequest{TenantId: tn.GetId()}))
		require.NoError(t, err)
		assert.Equal(t, int64(2), res.Msg.GetTenant().GetVersion(), "suspending again changes nothing")
		_, err = e.tenant.ReactivateTenant(t.Context(), connect.NewRequest(&tenantv1.ReactivateTenantRequest{
			TenantId: tn.GetId(), ExpectedVersion: proto.Int64(1),
		}))
		assert.Equal(t, connect.CodeAborted, connect.CodeOf(err), "a stale expected version")

		re, err := e.tenant.ReactivateTenant(t.Context(), connect.NewRequest(&tenantv1.ReactivateTenantRequest{TenantId: tn.GetId()}))
		require.NoError(t, err)
		assert.Equal(t, tenantv1.TenantStatus_TENANT_STATUS_ACTIVE, re.Msg.GetTenant().GetStatus())
		var reactivated tenantv1.TenantReactivated
		published(t, e.JS, tn.GetId(), 3, &reactivated)
		assert.Empty(t, cmp.Diff(&tenantv1.TenantReactivated{
			TenantId: tn.GetId(), ReactivateTime: re.Msg.GetTenant().GetUpdateTime(),
		}, &reactivated, protocmp.Transform()))
		re, err = e.tenant.ReactivateTenant(t.Context(), connect.NewRequest(&tenantv1.ReactivateTenantRequest{TenantId: tn.GetId()}))
		require.NoError(t, err)
		assert.Equal(t, int64(3), re.Msg.GetTenant().GetVersion(), "reactivating an active tenant changes nothing")
		assert.Equal(t, []string{"created", "suspended", "reactivated"}, e.storedEvents(t, tn.GetId()))

		_, err = e.tenant.SuspendTenant(t.Context(), connect.NewRequest(&tenantv1.SuspendTenantRequest{TenantId: tn.GetId(), Reason: strings.Repeat("x", 501)}))
		requireInvalid(t, err, "reason")
		_, err = e.tenant.SuspendTenant(t.Context(), connect.NewRequest(&tenantv1.SuspendTenantRequest{TenantId: uuid.NewString()}))
		assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "an unknown tenant")
		assert.Equal(t, tenantv1.TenantStatus_TENANT_STATUS_ACTIVE, e.get(t, tn.GetId()).GetStatus())
	})

	t.Run("an unknown tenant is NotFound", func(t *testing.T) {
		t.Parallel()
		id := uuid.NewString()
		ctx := t.Context()
		calls := map[string]func() error{
			"GetTenant": func() error {
				_, err := e.tenant.GetTenant(ctx, connect.NewRequest(&tenantv1.GetTenantRequest{TenantId: id}))
				return err
			},
			"GetTenantBySlug": func() error {
				_, err := e.member(t, id).GetTenantBySlug(ctx, connect.NewRequest(&tenantv1.GetTenantBySlugRequest{Slug: "no-such-tenant"}))
				return err
			},
			"UpdateTenant": func() error {
				_, err := e.tenant.UpdateTenant(ctx, connect.NewRequest(&tenantv1.UpdateTenantRequest{TenantId: id, DisplayName: proto.String("x")}))
				return err
			},
			"UpdateMfaPolicy": func() error {
				_, err := e.tenant.UpdateMfaPolicy(ctx, connect.NewRequest(&tenantv1.UpdateMfaPolicyRequest{
					TenantId: id, Policy: &tenantv1.MfaPolicy{Requirement: tenantv1.MfaRequirement_MFA_REQUIREMENT_REQUIRED},
				}))
				return err
			},
			"AddDomain": func() error {
				_, err := e.tenant.AddDomain(ctx, connect.NewRequest(&tenantv1.AddDomainRequest{TenantId: id, Domain: "example.com"}))
				return err
			},
			"CheckPassword": func() error {
				_, err := e.tenant.CheckPassword(ctx, connect.NewRequest(&tenantv1.CheckPasswordRequest{TenantId: id, Password: "x"}))
				return err
			},
		}
		for name, call := range calls {
			assert.Equal(t, connect.CodeNotFound, connect.CodeOf(call()), name)
		}
		assert.Equal(t, 0, e.count(t, "SELECT count(*) FROM events WHERE aggregate_id = $1", id))
	})
}

func TestListTenants(t *testing.T) {
	t.Parallel()
	e := start(t)
	var want []string
	for range 5 {
		want = append(want, e.create(t).GetId())
	}
	_, err := e.tenant.AddDomain(t.Context(), connect.NewRequest(&tenantv1.AddDomainRequest{TenantId: want[2], Domain: "list.example"}))
	require.NoError(t, err)

	var got []string
	token := ""
	for page := 0; ; page++ {
		res, err := e.tenant.ListTenants(t.Context(), connect.NewRequest(&tenantv1.ListTenantsRequest{PageSize: 2, PageToken: token}))
		require.NoError(t, err)
		require.LessOrEqual(t, len(res.Msg.GetTenants()), 2)
		for _, tn := range res.Msg.GetTenants() {
			got = append(got, tn.GetId())
			if tn.GetId() == want[2] {
				require.Len(t, tn.GetDomains(), 1, "a listed tenant carries its domains")
				assert.Equal(t, "list.example", tn.GetDomains()[0].GetName())
			}
		}
		token = res.Msg.GetNextPageToken()
		if token == "" {
			break
		}
		require.Less(t, page, 3, "paging ends")
	}
	assert.Equal(t, want, got, "oldest first, each once")

	all, err := e.tenant.ListTenants(t.Context(), connect.NewRequest(&tenantv1.ListTenantsRequest{}))
	require.NoError(t, err)
	assert.Len(t, all.Msg.GetTenants(), 5)
	assert.Empty(t, all.Msg.GetNextPageToken())

	_, err = e.tenant.ListTenants(t.Context(), connect.NewRequest(&tenantv1.ListTenantsRequest{PageToken: "not-a-token"}))
	requireInvalid(t, err, "page_token")
}

func TestBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	e := start(t)

	creates := []struct {
		name, slug, displayName, field string
	}{
		{name: "slug too short", slug: "a", displayName: "A", field: "slug"},
		{name: "slug too long", slug: strings.Repeat("a", 64), displayName: "A", field: "slug"},
		{name: "slug starts with a dash", slug: "-acme", displayName: "A", field: "slug"},
		{name: "slug upper case", slug: "Acme", displayName: "A", field: "slug"},
		{name: "slug underscore", slug: "ac_me", displayName: "A", field: "slug"},
		{name: "slug with a dot", slug: "acme.com", displayName: "A", field: "slug"},
		{name: "empty display name", slug: "acme", displayName: "", field: "display_name"},
		{name: "blank display name", slug: "acme", displayName: "   ", field: "display_name"},
		{name: "display name too long", slug: "acme", displayName: strings.Repeat("x", 201), field: "display_name"},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tt := range creates {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				_, err := e.tenant.CreateTenant(t.Context(), connect.NewRequest(&tenantv1.CreateTenantRequest{Slug: tt.slug, DisplayName: tt.displayName}))
				requireInvalid(t, err, tt.field)
			})
		}
		t.Run("bad tenant id", func(t *testing.T) {
			t.Parallel()
			_, err := e.tenant.GetTenant(t.Context(), connect.NewRequest(&tenantv1.GetTenantRequest{TenantId: "acme"}))
			requireInvalid(t, err, "tenant_id")
			_, err = e.tenant.UpdateTenant(t.Context(), connect.NewRequest(&tenantv1.UpdateTenantRequest{
				TenantId: "acme", DisplayName: proto.String("x"), Status: tenantv1.TenantStatus(7).Enum(),
			}))
			requireInvalid(t, err, "tenant_id")
			assert.Contains(t, violations(t, err), "status")
		})
		t.Run("at the edges", func(t *testing.T) {
			t.Parallel()
			for _, slug := range []string{"ab", "0a", strings.Repeat("z", 63), "a-"} {
				_, err := e.tenant.CreateTenant(t.Context(), connect.NewRequest(&tenantv1.CreateTenantRequest{Slug: slug, DisplayName: strings.Repeat("x", 200)}))
				assert.NoError(t, err, slug)
			}
		})
	})
	// Only the four valid tenants of "at the edges" were written.
	assert.Equal(t, 4, e.count(t, "SELECT count(*) FROM tenants"))
	assert.Equal(t, 4, e.count(t, "SELECT count(*) FROM events"))
}

func TestConcurrentUpdatesWithOneExpectedVersion(t *testing.T) {
	t.Parallel()
	e := start(t)
	tn := e.create(t)

	const n = 20
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[connect.Code]int{}
		ok    []string
	)
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprintf("Name %d", i)
			_, err := e.tenant.UpdateTenant(context.WithoutCancel(t.Context()), connect.NewRequest(&tenantv1.UpdateTenantRequest{
				TenantId: tn.GetId(), DisplayName: proto.String(name), ExpectedVersion: proto.Int64(1),
			}))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				codes[connect.CodeOf(err)]++
				return
			}
			ok = append(ok, name)
		})
	}
	wg.Wait()
	require.Len(t, ok, 1, "exactly one update wins")
	assert.Equal(t, map[connect.Code]int{connect.CodeAborted: n - 1}, codes)
	got := e.get(t, tn.GetId())
	assert.Equal(t, ok[0], got.GetDisplayName())
	assert.Equal(t, int64(2), got.GetVersion())
	assert.Equal(t, []string{"created", "updated"}, e.storedEvents(t, tn.GetId()))
}
