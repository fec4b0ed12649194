package servicestest

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/schemas/gen/authms/tenant/v1/tenantv1connect"
)

// tenantWait bounds how long [Env.NewTenant] waits for identity to
// project a tenant.
const tenantWait = 10 * time.Second

// NewTenant creates an active tenant through the tenant API (with the
// operator token) and, when identity runs, waits until identity has
// projected it, so users can register in it at once. It returns the
// tenant's id. The tenant service must run.
func (e *Env) NewTenant(tb testing.TB) string {
	tb.Helper()
	client := tenantv1connect.NewTenantServiceClient(e.HTTP, e.URL, e.Operator())
	res, err := client.CreateTenant(context.Background(), connect.NewRequest(&tenantv1.CreateTenantRequest{
		Slug: "t-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20], DisplayName: "Acme",
	}))
	if err != nil {
		tb.Fatalf("servicestest: create tenant: %v", err)
	}
	id := res.Msg.GetTenant().GetId()
	e.WaitTenant(tb, id, "active")
	return id
}

// WaitTenant waits until identity, when it runs, records the tenant with
// status ("active" or "suspended").
func (e *Env) WaitTenant(tb testing.TB, tenantID, status string) {
	tb.Helper()
	pool := e.Platform.Pool("identity")
	if pool == nil {
		return
	}
	deadline := time.Now().Add(tenantWait)
	for {
		var n int
		err := pool.QueryRow(context.Background(), "SELECT count(*) FROM tenants WHERE tenant_id = $1 AND status = $2", tenantID, status).Scan(&n)
		if err != nil {
			tb.Fatalf("servicestest: tenant %s in identity: %v", tenantID, err)
		}
		if n == 1 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("servicestest: identity did not project tenant %s as %s within %v", tenantID, status, tenantWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
