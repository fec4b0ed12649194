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
	sessionv1 "github.com/authms/authms/schemas/gen/authms/session/v1"
	"github.com/authms/authms/schemas/gen/authms/session/v1/sessionv1connect"
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
// throttles the registration, and session signs the admin in when an
// interrupted bootstrap is finished (the only proof that an account
// with the admin's address is the one this bootstrap registered). The
// admin exists to sign in to the console, which takes session anyway.
var bootstrapServices = []string{"tenant", "identity", "risk", "session"}

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
// apiURL with the operator token, as an operator would: ListTenants and
// CreateTenant, then RegisterUser (waiting for identity to project the new
// tenant through min_position) and AssignRoles.
//
// It is idempotent: a later start finds the tenant and the password file
// and changes nothing. The password is written (to a ".pending" file,
// synced) before the tenant is created and renamed into place once the
// admin holds its role, so a start stopped anywhere in between leaves the
// tenant with the pending file, and the next start finishes the job (see
// finishAdmin) instead of leaving a tenant without an admin. A tenant
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
	c := bootstrapClients{
		tenants:  tenantv1connect.NewTenantServiceClient(httpClient, apiURL, operator),
		users:    identityv1connect.NewIdentityServiceClient(httpClient, apiURL, operator),
		sessions: sessionv1connect.NewSessionServiceClient(httpClient, apiURL),
		logger:   logger,
	}
	final := adminPasswordFile(dataDir)
	pending := final + ".pending"

	tenant, err := findTenant(ctx, c.tenants, devTenantSlug)
	if err != nil {
		return devBootstrap{}, err
	}
	if tenant == nil {
		// A password file left from databases since dropped names an
		// admin that is gone: the new tenant's admin replaces it.
		password, err := pendingPassword(pending)
		if err != nil {
			return devBootstrap{}, err
		}
		res, err := c.tenants.CreateTenant(ctx, connect.NewRequest(&tenantv1.CreateTenantRequest{Slug: devTenantSlug, DisplayName: devTenantName}))
		switch {
		case err == nil:
			out := devBootstrap{tenant: consoleTenant(res.Msg.GetTenant())}
			userID, err := c.makeAdmin(ctx, out.tenant.ID, password, res.Msg.GetPosition())
			if err != nil {
				return devBootstrap{}, err
			}
			return keepAdmin(out, userID, pending, final, logger)
		case connect.CodeOf(err) == connect.CodeAlreadyExists:
			// Another process made it between the two calls: it is found,
			// and this bootstrap's pending file is there.
			if tenant, err = findTenant(ctx, c.tenants, devTenantSlug); err == nil && tenant == nil {
				err = errors.New("the slug dev is taken, yet no tenant has it")
			}
			if err != nil {
				return devBootstrap{}, err
			}
		default:
			return devBootstrap{}, fmt.Errorf("create the tenant dev: %w", err)
		}
	}

	out := devBootstrap{tenant: consoleTenant(tenant)}
	switch {
	case exists(pending):
		// An earlier start kept the password, then stopped before the
		// rename: after CreateTenant, RegisterUser or AssignRoles. The
		// pending file is newer than any password file, which can only be
		// one outliving its databases.
		password, err := pendingPassword(pending)
		if err != nil {
			return devBootstrap{}, err
		}
		userID, err := c.finishAdmin(ctx, out.tenant.ID, password)
		if err != nil {
			return devBootstrap{}, err
		}
		return keepAdmin(out, userID, pending, final, logger)
	case exists(final):
		out.passwordFile = final
		return out, nil
	default:
		logger.Warn("the tenant dev exists but this data directory holds no bootstrap admin password: no admin made",
			"tenant_id", out.tenant.ID, "file", final)
		return out, nil
	}
}

// consoleTenant is the console's view of a tenant.
func consoleTenant(t *tenantv1.Tenant) services.ConsoleTenant {
	return services.ConsoleTenant{ID: t.GetId(), Slug: t.GetSlug(), Name: t.GetDisplayName()}
}

// keepAdmin renames the pending password file into place once the admin
// holds its role, and reports the admin made.
func keepAdmin(out devBootstrap, userID, pending, final string, logger *slog.Logger) (devBootstrap, error) {
	if err := os.Rename(pending, final); err != nil {
		return devBootstrap{}, fmt.Errorf("keep the admin password: %w", err)
	}
	logger.Info("created the development admin", "tenant_id", out.tenant.ID, "user_id", userID, "password_file", final)
	out.passwordFile = final
	return out, nil
}

// bootstrapClients are the APIs the bootstrap calls: tenants and users
// with the operator token, sessions (Login, Logout) with none.
type bootstrapClients struct {
	tenants  tenantv1connect.TenantServiceClient
	users    identityv1connect.IdentityServiceClient
	sessions sessionv1connect.SessionServiceClient
	logger   *slog.Logger
}

// errAdminUnknown is AssignRoles' NotFound for the id RegisterUser
// answered: registration is enumeration-safe, so a taken address is
// answered with a made-up id, which names no user.
var errAdminUnknown = errors.New("the registration answered an id that names no user")

// makeAdmin registers admin@authms.test in a tenant this bootstrap has
// just created, once identity has projected it (position), and makes it
// an admin. It returns the admin's id.
func (c bootstrapClients) makeAdmin(ctx context.Context, tenantID, password string, position *commonv1.Position) (string, error) {
	reg, err := c.users.RegisterUser(ctx, connect.NewRequest(&identityv1.RegisterUserRequest{
		TenantId: tenantID, Email: devAdminEmail, Password: password, MinPosition: position,
	}))
	if err != nil {
		return "", fmt.Errorf("register %s: %w", devAdminEmail, err)
	}
	userID := reg.Msg.GetUser().GetId()
	if err := c.assignAdmin(ctx, tenantID, userID); err != nil {
		if errors.Is(err, errAdminUnknown) {
			// The tenant is new, so nobody else could have taken the
			// address; identity disagrees with itself.
			return "", fmt.Errorf("make %s an admin of the new tenant dev: %w", devAdminEmail, err)
		}
		return "", err
	}
	return userID, nil
}

// finishAdmin finishes the admin of a tenant an earlier bootstrap created
// and stopped in, at any point before the rename: the admin may be
// unregistered, registered without its role, or an admin already. It
// registers the address; if that makes a user, the user is the admin. If
// the address was taken, the account is this bootstrap's when the pending
// password signs it in (session's Login, the only API that checks a
// password for an operator), and AssignRoles, which sets the full set of
// roles and is a no-op when it is unchanged, makes it the admin. An
// account the password does not open is someone else's: the bootstrap
// stops rather than make it an admin.
func (c bootstrapClients) finishAdmin(ctx context.Context, tenantID, password string) (string, error) {
	reg, err := c.registerInFoundTenant(ctx, tenantID, password)
	if err != nil {
		return "", fmt.Errorf("register %s: %w", devAdminEmail, err)
	}
	userID := reg.GetUser().GetId()
	err = c.assignAdmin(ctx, tenantID, userID)
	if !errors.Is(err, errAdminUnknown) {
		return userID, err
	}
	login, err := c.sessions.Login(ctx, connect.NewRequest(&sessionv1.LoginRequest{TenantId: tenantID, Email: devAdminEmail, Password: password}))
	if connect.CodeOf(err) == connect.CodeUnauthenticated {
		// Or the account is disabled or locked out, which the bootstrap
		// did not do either.
		return "", fmt.Errorf("make %s an admin: the address is registered in tenant dev already, with a password this bootstrap does not know; "+
			"remove the tenant's data (the databases and the data directory) or set AUTHMS_DEV_BOOTSTRAP=0", devAdminEmail)
	}
	if err != nil {
		return "", fmt.Errorf("sign in as %s to finish an interrupted bootstrap: %w", devAdminEmail, err)
	}
	userID = login.Msg.GetSession().GetUserId()
	// The session proved the password; it is not needed beyond that. One
	// left open (it expires) is no reason to leave the tenant without its
	// admin, so a failed Logout is only logged.
	logout := connect.NewRequest(&sessionv1.LogoutRequest{TenantId: tenantID, SessionId: login.Msg.GetSession().GetId()})
	logout.Header().Set("Authorization", "Bearer "+login.Msg.GetTokens().GetAccessToken())
	if _, err := c.sessions.Logout(ctx, logout); err != nil {
		c.logger.Warn("signing the development admin out after checking its password failed; the session expires by itself",
			"tenant_id", tenantID, "user_id", userID, "err", err)
	}
	if err := c.assignAdmin(ctx, tenantID, userID); err != nil {
		return "", err
	}
	return userID, nil
}

// registerInFoundTenant registers the admin in a tenant that was found,
// so no position says when identity knows it: a start stopped right
// after CreateTenant may have stopped before identity projected the new
// tenant, which it does soon after this start's relays publish it. So a
// registration refused because identity does not know the tenant is
// retried, with a growing pause, until the bootstrap's deadline.
func (c bootstrapClients) registerInFoundTenant(ctx context.Context, tenantID, password string) (*identityv1.RegisterUserResponse, error) {
	pause := 50 * time.Millisecond
	for {
		res, err := c.users.RegisterUser(ctx, connect.NewRequest(&identityv1.RegisterUserRequest{
			TenantId: tenantID, Email: devAdminEmail, Password: password,
		}))
		if connect.CodeOf(err) != connect.CodeNotFound {
			if err != nil {
				return nil, err
			}
			return res.Msg, nil
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("identity does not know the tenant yet, or it is not active: %w", err)
		case <-t.C:
		}
		pause = min(2*pause, time.Second)
	}
}

// assignAdmin gives the user the admin role; errAdminUnknown when no user
// has the id.
func (c bootstrapClients) assignAdmin(ctx context.Context, tenantID, userID string) error {
	_, err := c.users.AssignRoles(ctx, connect.NewRequest(&identityv1.AssignRolesRequest{
		TenantId: tenantID, UserId: userID, Roles: []string{devAdminRole},
	}))
	if connect.CodeOf(err) == connect.CodeNotFound {
		return fmt.Errorf("make %s an admin: %w", devAdminEmail, errAdminUnknown)
	}
	if err != nil {
		return fmt.Errorf("make %s an admin: %w", devAdminEmail, err)
	}
	return nil
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
