package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"connectrpc.com/connect"

	commonv1 "github.com/authms/authms/schemas/gen/authms/common/v1"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/schemas/gen/authms/tenant/v1/tenantv1connect"
	"github.com/authms/authms/services"
)

// The development tenant and its first admin, which `authms dev` creates
// so the console has something to sign in to.
const (
	devTenantSlug = "dev"
	devTenantName = "Development"
	devAdminEmail = "admin@authms.test"
	devAdminRole  = "admin"
	// devAdminPasswordName is the admin's password file under
	// <data>/secrets: plain text, no newline, 0600.
	devAdminPasswordName = "authms.dev-admin-password"
	// bootstrapTimeout bounds the bootstrap's calls, projections included.
	bootstrapTimeout = time.Minute
)

// bootstrapServices are the services the bootstrap calls: tenant creates
// the tenant, identity registers the admin and assigns its role, risk
// throttles the registration.
var bootstrapServices = []string{"tenant", "identity", "risk"}

// devBootstrap is what the bootstrap found or made.
type devBootstrap struct {
	tenant services.ConsoleTenant
	// passwordFile is the admin's password file when the admin was made by
	// this or an earlier bootstrap; empty when the tenant existed without
	// one (made another way), so the bootstrap made no admin.
	passwordFile string
}

// adminPasswordFile is where the bootstrap admin's password is kept.
func adminPasswordFile(dataDir string) string {
	return filepath.Join(dataDir, "secrets", devAdminPasswordName)
}

// bootstrapDev ensures the tenant "dev" exists and, when this bootstrap
// creates it, gives it the admin admin@authms.test with a generated
// password kept in <data>/secrets. It calls the real APIs over HTTP at
// apiURL with the operator token, as an operator would: CreateTenant or
// ListTenants, then RegisterUser (waiting for identity to project the new
// tenant through min_position) and AssignRoles.
//
// It is idempotent: a later start finds the tenant and the password file
// and changes nothing. The password is written (to a ".pending" file)
// before the admin is registered and renamed into place once the admin
// holds its role, so a start interrupted in between finishes the job on
// the next one instead of leaving a tenant without an admin. A tenant
// "dev" that exists with neither file was made another way: the bootstrap
// leaves it alone and makes no admin. A password file outliving its
// databases is replaced when the bootstrap makes the tenant anew.
//
// Login does not require a verified email address (session's Login checks
// the password, the user's status and the lockout), so the admin signs in
// at once; its address stays unverified, as admin@authms.test receives no
// mail.
func bootstrapDev(ctx context.Context, apiURL, operatorToken, dataDir string, logger *slog.Logger) (devBootstrap, error) {
	ctx, cancel := context.WithTimeout(ctx, bootstrapTimeout)
	defer cancel()
	httpClient := &http.Client{}
	defer httpClient.CloseIdleConnections()
	operator := connect.WithInterceptors(operatorInterceptor(operatorToken))
	tenants := tenantv1connect.NewTenantServiceClient(httpClient, apiURL, operator)
	users := identityv1connect.NewIdentityServiceClient(httpClient, apiURL, operator)

	tenant, created, position, err := ensureDevTenant(ctx, tenants)
	if err != nil {
		return devBootstrap{}, err
	}
	out := devBootstrap{tenant: services.ConsoleTenant{ID: tenant.GetId(), Slug: tenant.GetSlug(), Name: tenant.GetDisplayName()}}
	final := adminPasswordFile(dataDir)
	pending := final + ".pending"
	switch {
	case created:
		// A password file left from databases since dropped names an
		// admin that is gone: make the new tenant's and replace it.
	case exists(final):
		out.passwordFile = final
		return out, nil
	case !exists(pending):
		logger.Warn("the tenant dev exists but this data directory holds no bootstrap admin password: no admin made",
			"tenant_id", out.tenant.ID, "file", final)
		return out, nil
	}
	password, err := pendingPassword(pending)
	if err != nil {
		return devBootstrap{}, err
	}
	reg, err := users.RegisterUser(ctx, connect.NewRequest(&identityv1.RegisterUserRequest{
		TenantId: out.tenant.ID, Email: devAdminEmail, Password: password, MinPosition: position,
	}))
	if err != nil {
		return devBootstrap{}, fmt.Errorf("register %s: %w", devAdminEmail, err)
	}
	// Registration is enumeration-safe: were the address taken, the answer
	// would name a user that does not exist, and AssignRoles says so.
	_, err = users.AssignRoles(ctx, connect.NewRequest(&identityv1.AssignRolesRequest{
		TenantId: out.tenant.ID, UserId: reg.Msg.GetUser().GetId(), Roles: []string{devAdminRole},
	}))
	if connect.CodeOf(err) == connect.CodeNotFound {
		return devBootstrap{}, fmt.Errorf("make %s an admin: the address is registered in tenant dev already, with a password this bootstrap does not know; "+
			"remove the tenant's data (the databases and %s) or set AUTHMS_DEV_BOOTSTRAP=0", devAdminEmail, dataDir)
	}
	if err != nil {
		return devBootstrap{}, fmt.Errorf("make %s an admin: %w", devAdminEmail, err)
	}
	if err := os.Rename(pending, final); err != nil {
		return devBootstrap{}, fmt.Errorf("keep the admin password: %w", err)
	}
	logger.Info("created the development admin", "tenant_id", out.tenant.ID, "user_id", reg.Msg.GetUser().GetId(), "password_file", final)
	out.passwordFile = final
	return out, nil
}

// ensureDevTenant returns the tenant "dev", creating it if no tenant has
// that slug; position is the creation's stream position (nil when found).
func ensureDevTenant(ctx context.Context, tenants tenantv1connect.TenantServiceClient) (t *tenantv1.Tenant, created bool, position *commonv1.Position, err error) {
	if t, err := findTenant(ctx, tenants, devTenantSlug); err != nil || t != nil {
		return t, false, nil, err
	}
	res, err := tenants.CreateTenant(ctx, connect.NewRequest(&tenantv1.CreateTenantRequest{Slug: devTenantSlug, DisplayName: devTenantName}))
	if connect.CodeOf(err) == connect.CodeAlreadyExists {
		// Another process made it between the two calls.
		t, err := findTenant(ctx, tenants, devTenantSlug)
		if err == nil && t == nil {
			err = errors.New("the slug dev is taken, yet no tenant has it")
		}
		return t, false, nil, err
	}
	if err != nil {
		return nil, false, nil, fmt.Errorf("create the tenant dev: %w", err)
	}
	return res.Msg.GetTenant(), true, res.Msg.GetPosition(), nil
}

// findTenant returns the tenant with slug, or nil.
func findTenant(ctx context.Context, tenants tenantv1connect.TenantServiceClient, slug string) (*tenantv1.Tenant, error) {
	req := &tenantv1.ListTenantsRequest{PageSize: 500}
	for {
		res, err := tenants.ListTenants(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		if i := slices.IndexFunc(res.Msg.GetTenants(), func(t *tenantv1.Tenant) bool { return t.GetSlug() == slug }); i >= 0 {
			return res.Msg.GetTenants()[i], nil
		}
		if req.PageToken = res.Msg.GetNextPageToken(); req.PageToken == "" {
			return nil, nil
		}
	}
}

// pendingPassword returns the password in the pending file, or generates
// one and writes it there (0600, synced) before anything uses it.
func pendingPassword(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err == nil && len(b) > 0 {
		return string(b), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read the pending admin password: %w", err)
	}
	// 24 random bytes: 32 characters of base64url, 192 bits.
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	password := base64.RawURLEncoding.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return "", fmt.Errorf("keep the admin password: %w", err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("keep the admin password: %w", err)
	}
	_, werr := f.WriteString(password)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return "", fmt.Errorf("keep the admin password: %w", err)
	}
	return password, nil
}

func exists(file string) bool {
	_, err := os.Stat(file)
	return err == nil
}

// loopbackURL is the URL the process reaches its own listener at: one
// on every address (":8080", which Go opens on IPv4 and IPv6) is reached
// on 127.0.0.1.
func loopbackURL(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return "http://" + addr.String()
	}
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port))
}
