package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/natstest"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	sessionv1 "github.com/authms/authms/schemas/gen/authms/session/v1"
	"github.com/authms/authms/schemas/gen/authms/session/v1/sessionv1connect"
	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/schemas/gen/authms/tenant/v1/tenantv1connect"
	"github.com/authms/authms/services"
)

var (
	tenantLine = regexp.MustCompile(`Tenant\s+dev ([0-9a-f-]{36})\s+Development`)
	adminLine  = regexp.MustCompile(`Admin\s+admin@authms\.test\s+password in (\S+)`)
	natsLine   = regexp.MustCompile(`NATS\s+(nats://\S+)`)
)

// runningDev is an `authms dev` started by a test.
type runningDev struct {
	url    string
	stdout *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// startDev runs `authms dev` with getenv and args until the test ends or
// stop is called, and waits for its banner.
func startDev(t *testing.T, getenv func(string) string, args ...string) *runningDev {
	t.Helper()
	d := &runningDev{stdout: &syncBuffer{}, done: make(chan error, 1)}
	c := &cli{stdout: d.stdout, stderr: &testWriter{t}, getenv: getenv}
	ctx, cancel := context.WithCancel(t.Context())
	d.cancel = cancel
	go func() { d.done <- c.run(ctx, func() {}, append([]string{"dev"}, args...)) }()
	t.Cleanup(func() { d.stop(t) })
	require.Eventually(t, func() bool {
		select {
		case err := <-d.done:
			d.done <- err
			return true
		default:
		}
		if m := apiURL.FindStringSubmatch(d.stdout.String()); m != nil {
			d.url = m[1]
			return true
		}
		return false
	}, 2*time.Minute, 20*time.Millisecond, "authms dev prints its banner")
	require.NotEmpty(t, d.url, "authms dev stopped before its banner: %s", d.stdout.String())
	return d
}

// stop stops authms dev (Ctrl-C) and checks it exits cleanly; a second
// call does nothing.
func (d *runningDev) stop(t *testing.T) {
	t.Helper()
	if d.cancel == nil {
		return
	}
	d.cancel()
	d.cancel = nil
	select {
	case err := <-d.done:
		require.NoError(t, err, "a graceful shutdown is a clean exit")
	case <-time.After(time.Minute):
		t.Fatal("authms dev did not stop")
	}
}

// TestDevBootstrap checks that authms dev makes the tenant dev and its
// admin on its first start, that the admin signs in with the password it
// keeps and holds the admin role, that the console learns the tenant, and
// that a second start finds both and makes nothing new.
func TestDevBootstrap(t *testing.T) {
	t.Parallel()
	nats := natstest.Start(t)
	getenv := devEnv(t, nats.URL())
	dataDir := t.TempDir()
	args := []string{"--http", "127.0.0.1:0", "--data", dataDir, "tenant", "identity", "risk", "session"}

	first := startDev(t, getenv, args...)
	out := first.stdout.String()
	m := tenantLine.FindStringSubmatch(out)
	require.NotNil(t, m, "the banner names the tenant: %s", out)
	tenantID := m[1]
	m = adminLine.FindStringSubmatch(out)
	require.NotNil(t, m, "the banner names the admin: %s", out)
	passwordFile := filepath.Join(dataDir, "secrets", "authms.dev-admin-password")
	assert.Equal(t, passwordFile, m[1])
	assert.Regexp(t, `Console\s+`+regexp.QuoteMeta(first.url+"/")+`\s`, out)

	info, err := os.Stat(passwordFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	b, err := os.ReadFile(passwordFile)
	require.NoError(t, err)
	password := string(b)
	assert.Regexp(t, `^[A-Za-z0-9_-]{32}$`, password, "32 characters of base64url, no newline")
	assert.NoFileExists(t, passwordFile+".pending")

	// The admin signs in and holds the admin role.
	httpClient := &http.Client{}
	t.Cleanup(httpClient.CloseIdleConnections)
	login, err := sessionv1connect.NewSessionServiceClient(httpClient, first.url).Login(t.Context(), connect.NewRequest(&sessionv1.LoginRequest{
		TenantId: tenantID, Email: "admin@authms.test", Password: password,
	}))
	require.NoError(t, err)
	userID := login.Msg.GetSession().GetUserId()
	user, err := identityv1connect.NewIdentityServiceClient(httpClient, first.url, connect.WithInterceptors(operatorInterceptor(login.Msg.GetTokens().GetAccessToken()))).
		GetUser(t.Context(), connect.NewRequest(&identityv1.GetUserRequest{TenantId: tenantID, UserId: userID}))
	require.NoError(t, err)
	assert.Equal(t, "admin@authms.test", user.Msg.GetUser().GetEmail())
	assert.Equal(t, []string{"admin"}, user.Msg.GetUser().GetRoles())

	// The console learns the tenant.
	res, err := httpClient.Get(first.url + services.ConsoleConfigPath)
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	require.NoError(t, res.Body.Close())
	require.NoError(t, err)
	var cfg services.ConsoleConfig
	require.NoError(t, json.Unmarshal(body, &cfg), string(body))
	assert.Equal(t, &services.ConsoleTenant{ID: tenantID, Slug: "dev", Name: "Development"}, cfg.Tenant)

	first.stop(t)

	// A second start finds the tenant and the admin.
	second := startDev(t, getenv, args...)
	out = second.stdout.String()
	m = tenantLine.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	assert.Equal(t, tenantID, m[1], "the same tenant")
	assert.Regexp(t, adminLine, out)
	b, err = os.ReadFile(passwordFile)
	require.NoError(t, err)
	assert.Equal(t, password, string(b), "the password is kept")
	second.stop(t)

	// One tenant and one user were ever created.
	js := nats.JetStream(t)
	for subject, stream := range map[string]string{"tenant.tenant.created": "tenant", "identity.user.created": "identity"} {
		s, err := js.Stream(t.Context(), events.StreamName(stream))
		require.NoError(t, err)
		info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(subject))
		require.NoError(t, err)
		assert.Equal(t, map[string]uint64{subject: 1}, info.State.Subjects, subject)
	}
}

// TestDevBootstrapOff checks AUTHMS_DEV_BOOTSTRAP=0: no tenant, no admin.
func TestDevBootstrapOff(t *testing.T) {
	t.Parallel()
	nats := natstest.Start(t)
	env := devEnv(t, nats.URL())
	getenv := func(name string) string {
		if name == "AUTHMS_DEV_BOOTSTRAP" {
			return "0"
		}
		return env(name)
	}
	dataDir := t.TempDir()
	d := startDev(t, getenv, "--http", "127.0.0.1:0", "--data", dataDir, "tenant", "identity", "risk")
	out := d.stdout.String()
	assert.NotRegexp(t, tenantLine, out)
	assert.NotContains(t, out, "Admin")
	assert.NoFileExists(t, filepath.Join(dataDir, "secrets", "authms.dev-admin-password"))
	d.stop(t)

	s, err := nats.JetStream(t).Stream(t.Context(), events.StreamName("tenant"))
	require.NoError(t, err)
	info, err := s.Info(t.Context())
	require.NoError(t, err)
	assert.Zero(t, info.State.Msgs, "no tenant was created")
}

// TestDevEmbeddedNATSOnAFreePort checks AUTHMS_NATS_PORT=0: the embedded
// server listens on a free port, and the banner says which.
func TestDevEmbeddedNATSOnAFreePort(t *testing.T) {
	t.Parallel()
	env := devEnv(t, "") // no NATS_URL: the embedded server
	getenv := func(name string) string {
		if name == "AUTHMS_NATS_PORT" {
			return "0"
		}
		return env(name)
	}
	d := startDev(t, getenv, "--http", "127.0.0.1:0", "--data", t.TempDir(), "wallet")
	m := natsLine.FindStringSubmatch(d.stdout.String())
	require.NotNil(t, m, d.stdout.String())
	assert.Regexp(t, `^nats://127\.0\.0\.1:\d+$`, m[1])
	assert.NotEqual(t, "nats://127.0.0.1:4223", m[1])
	d.stop(t)
}

func TestNATSPortFromEnvironment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		value   string
		want    int
		wantErr string
	}{
		{name: "unset", want: 4223},
		{name: "a free one", value: "0", want: 0},
		{name: "a port", value: "14223", want: 14223},
		{name: "not a port", value: "70000", wantErr: `AUTHMS_NATS_PORT="70000": want a port from 0 (a free one) to 65535`},
		{name: "not a number", value: "nats", wantErr: `AUTHMS_NATS_PORT="nats": want a port from 0 (a free one) to 65535`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &cli{getenv: func(string) string { return tt.value }}
			got, err := c.natsPort()
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestDevBootstrapLeavesOthersTenantAlone checks the bootstrap with a
// tenant dev it did not make: it makes no admin there, unless an earlier
// bootstrap of this data directory was interrupted after keeping the
// admin's password (the ".pending" file), which it then finishes.
func TestDevBootstrapLeavesOthersTenantAlone(t *testing.T) {
	t.Parallel()
	h := handMadeDev(t)
	h.d.stop(t)
	getenv, args, passwordFile, tenantID := h.getenv, h.args, h.passwordFile, h.tenantID

	h.bootstrap = "1"
	d := startDev(t, getenv, args...)
	out := d.stdout.String()
	assert.Regexp(t, `Tenant\s+dev `+tenantID+`\s+Made by hand`, out)
	assert.Regexp(t, `Admin\s+none made`, out)
	assert.NoFileExists(t, passwordFile)
	d.stop(t)

	// A bootstrap that kept the password and stopped before the admin
	// existed is finished.
	const password = "pending-password-kept-before-registering"
	require.NoError(t, os.WriteFile(passwordFile+".pending", []byte(password), 0o600))
	d = startDev(t, getenv, args...)
	assert.Regexp(t, adminLine, d.stdout.String())
	assert.NoFileExists(t, passwordFile+".pending")
	b, err := os.ReadFile(passwordFile)
	require.NoError(t, err)
	assert.Equal(t, password, string(b))
	assertDevAdmin(t, d.url, tenantID, password)
}

// TestDevBootstrapAfterTheDatabasesWent checks a data directory whose
// databases were dropped: the bootstrap makes the tenant and its admin
// again and replaces the stale password.
func TestDevBootstrapAfterTheDatabasesWent(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	args := []string{"--http", "127.0.0.1:0", "--data", dataDir, "tenant", "identity", "risk", "session"}
	passwordFile := filepath.Join(dataDir, "secrets", "authms.dev-admin-password")

	d := startDev(t, devEnv(t, natstest.Start(t).URL()), args...)
	old, err := os.ReadFile(passwordFile)
	require.NoError(t, err)
	d.stop(t)

	// New databases and a new NATS server, the same data directory.
	d = startDev(t, devEnv(t, natstest.Start(t).URL()), args...)
	m := tenantLine.FindStringSubmatch(d.stdout.String())
	require.NotNil(t, m, d.stdout.String())
	b, err := os.ReadFile(passwordFile)
	require.NoError(t, err)
	assert.NotEqual(t, string(old), string(b), "a new password for the new admin")
	httpClient := &http.Client{}
	t.Cleanup(httpClient.CloseIdleConnections)
	_, err = sessionv1connect.NewSessionServiceClient(httpClient, d.url).Login(t.Context(), connect.NewRequest(&sessionv1.LoginRequest{
		TenantId: m[1], Email: "admin@authms.test", Password: string(b),
	}))
	require.NoError(t, err)
}

// assertDevAdmin checks that the admin signs in to the tenant with
// password and holds the admin role, and returns its id.
func assertDevAdmin(t *testing.T, url, tenantID, password string) string {
	t.Helper()
	user := signedInUser(t, url, tenantID, password)
	assert.Equal(t, []string{"admin"}, user.GetRoles())
	return user.GetId()
}

// signedInUser signs admin@authms.test in to the tenant with password and
// returns the user as GetUser shows it to them.
func signedInUser(t *testing.T, url, tenantID, password string) *identityv1.User {
	t.Helper()
	httpClient := &http.Client{}
	t.Cleanup(httpClient.CloseIdleConnections)
	login, err := sessionv1connect.NewSessionServiceClient(httpClient, url).Login(t.Context(), connect.NewRequest(&sessionv1.LoginRequest{
		TenantId: tenantID, Email: "admin@authms.test", Password: password,
	}))
	require.NoError(t, err)
	user, err := identityv1connect.NewIdentityServiceClient(httpClient, url, connect.WithInterceptors(operatorInterceptor(login.Msg.GetTokens().GetAccessToken()))).
		GetUser(t.Context(), connect.NewRequest(&identityv1.GetUserRequest{TenantId: tenantID, UserId: login.Msg.GetSession().GetUserId()}))
	require.NoError(t, err)
	return user.Msg.GetUser()
}

// handMade is an authms dev (running, bootstrap off) in whose tenant dev
// an operator made by hand.
type handMade struct {
	d                     *runningDev
	bootstrap             string // AUTHMS_DEV_BOOTSTRAP for the next start
	getenv                func(string) string
	args                  []string
	dataDir, passwordFile string
	tenantID              string
	created               *tenantv1.CreateTenantResponse
	httpClient            *http.Client
}

// handMadeDev starts authms dev with its bootstrap off and has the
// operator make the tenant dev ("Made by hand").
func handMadeDev(t *testing.T) *handMade {
	t.Helper()
	env := devEnv(t, natstest.Start(t).URL())
	h := &handMade{bootstrap: "0", dataDir: t.TempDir(), httpClient: &http.Client{}}
	t.Cleanup(h.httpClient.CloseIdleConnections)
	h.getenv = func(name string) string {
		if name == "AUTHMS_DEV_BOOTSTRAP" {
			return h.bootstrap
		}
		return env(name)
	}
	h.args = []string{"--http", "127.0.0.1:0", "--data", h.dataDir, "tenant", "identity", "risk", "session"}
	h.passwordFile = filepath.Join(h.dataDir, "secrets", "authms.dev-admin-password")
	h.d = startDev(t, h.getenv, h.args...)
	token, err := os.ReadFile(services.OperatorTokenFile(h.dataDir))
	require.NoError(t, err)
	created, err := tenantv1connect.NewTenantServiceClient(h.httpClient, h.d.url, connect.WithInterceptors(operatorInterceptor(strings.TrimSpace(string(token))))).
		CreateTenant(t.Context(), connect.NewRequest(&tenantv1.CreateTenantRequest{Slug: "dev", DisplayName: "Made by hand"}))
	require.NoError(t, err)
	h.created, h.tenantID = created.Msg, created.Msg.GetTenant().GetId()
	return h
}

// TestDevBootstrapStoppedBeforeTheRename checks a start that stopped after
// the admin was registered (and given its role) but before the password
// file was renamed into place: the next start registers the address
// again, which identity answers, enumeration-safely, with an id that
// names no user; the bootstrap signs in with the pending password to find
// the admin it made, and keeps the password. No second user is made.
func TestDevBootstrapStoppedBeforeTheRename(t *testing.T) {
	t.Parallel()
	nats := natstest.Start(t)
	getenv := devEnv(t, nats.URL())
	dataDir := t.TempDir()
	args := []string{"--http", "127.0.0.1:0", "--data", dataDir, "tenant", "identity", "risk", "session"}
	passwordFile := filepath.Join(dataDir, "secrets", "authms.dev-admin-password")

	d := startDev(t, getenv, args...)
	m := tenantLine.FindStringSubmatch(d.stdout.String())
	require.NotNil(t, m, d.stdout.String())
	tenantID := m[1]
	password, err := os.ReadFile(passwordFile)
	require.NoError(t, err)
	adminID := assertDevAdmin(t, d.url, tenantID, string(password))
	d.stop(t)
	require.NoError(t, os.Rename(passwordFile, passwordFile+".pending"))

	d = startDev(t, getenv, args...)
	out := d.stdout.String()
	assert.Regexp(t, `Tenant\s+dev `+tenantID+`\s`, out)
	assert.Regexp(t, adminLine, out)
	assert.NoFileExists(t, passwordFile+".pending")
	b, err := os.ReadFile(passwordFile)
	require.NoError(t, err)
	assert.Equal(t, string(password), string(b), "the pending password is kept")
	assert.Equal(t, adminID, assertDevAdmin(t, d.url, tenantID, string(b)), "the same admin")
	d.stop(t)

	s, err := nats.JetStream(t).Stream(t.Context(), events.StreamName("identity"))
	require.NoError(t, err)
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter("identity.user.created"))
	require.NoError(t, err)
	assert.Equal(t, map[string]uint64{"identity.user.created": 1}, info.State.Subjects, "one user was ever created")
}

// TestDevBootstrapStoppedAfterCreateTenant checks a bootstrap that stopped
// once the tenant was created, before it learnt so: the password was kept
// (pending) before CreateTenant, so the next start, which finds the tenant,
// makes its admin instead of leaving it without one. The stop is a proxy
// in front of a running authms dev that forwards CreateTenant and loses
// its answer.
func TestDevBootstrapStoppedAfterCreateTenant(t *testing.T) {
	t.Parallel()
	nats := natstest.Start(t)
	env := devEnv(t, nats.URL())
	bootstrap := "0"
	getenv := func(name string) string {
		if name == "AUTHMS_DEV_BOOTSTRAP" {
			return bootstrap
		}
		return env(name)
	}
	dataDir := t.TempDir()
	args := []string{"--http", "127.0.0.1:0", "--data", dataDir, "tenant", "identity", "risk", "session"}
	passwordFile := filepath.Join(dataDir, "secrets", "authms.dev-admin-password")

	d := startDev(t, getenv, args...)
	token, err := os.ReadFile(services.OperatorTokenFile(dataDir))
	require.NoError(t, err)
	target, err := url.Parse(d.url)
	require.NoError(t, err)
	forward := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != tenantv1connect.TenantServiceCreateTenantProcedure {
			forward.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		forward.ServeHTTP(rec, r)
		assert.Equal(t, http.StatusOK, rec.Code, "the tenant is created: %s", rec.Body)
		http.Error(w, "the bootstrap stopped before it read the answer", http.StatusServiceUnavailable)
	}))
	t.Cleanup(proxy.Close)
	_, err = bootstrapDev(t.Context(), proxy.URL, strings.TrimSpace(string(token)), dataDir, slog.New(slog.NewTextHandler(&testWriter{t}, nil)))
	require.Error(t, err, "the bootstrap stops after CreateTenant")
	assert.FileExists(t, passwordFile+".pending", "kept before CreateTenant")
	assert.NoFileExists(t, passwordFile)
	d.stop(t)

	bootstrap = "1"
	d = startDev(t, getenv, args...)
	out := d.stdout.String()
	m := tenantLine.FindStringSubmatch(out)
	require.NotNil(t, m, "the tenant made before the stop: %s", out)
	assert.Regexp(t, adminLine, out)
	assert.NotRegexp(t, `Admin\s+none made`, out)
	assert.NoFileExists(t, passwordFile+".pending")
	b, err := os.ReadFile(passwordFile)
	require.NoError(t, err)
	assertDevAdmin(t, d.url, m[1], string(b))
	d.stop(t)
}

// TestDevBootstrapLeavesAnotherAccountAlone checks a pending bootstrap in
// a tenant dev whose admin@authms.test account it did not make (its
// password is not the pending one): the start fails, saying so, and the
// account does not become an admin.
func TestDevBootstrapLeavesAnotherAccountAlone(t *testing.T) {
	t.Parallel()
	// An operator makes the tenant dev and someone registers the address.
	h := handMadeDev(t)
	d, httpClient := h.d, h.httpClient
	getenv, args, passwordFile, tenantID := h.getenv, h.args, h.passwordFile, h.tenantID
	const theirs = "someone else's password, not the bootstrap's"
	_, err := identityv1connect.NewIdentityServiceClient(httpClient, d.url).RegisterUser(t.Context(), connect.NewRequest(&identityv1.RegisterUserRequest{
		TenantId: tenantID, Email: "admin@authms.test", Password: theirs, MinPosition: h.created.GetPosition(),
	}))
	require.NoError(t, err)
	d.stop(t)

	require.NoError(t, os.MkdirAll(filepath.Dir(passwordFile), 0o700))
	require.NoError(t, os.WriteFile(passwordFile+".pending", []byte("the pending password of the bootstrap"), 0o600))
	h.bootstrap = "1"
	c := &cli{stdout: &syncBuffer{}, stderr: &testWriter{t}, getenv: getenv}
	err = c.run(t.Context(), func() {}, append([]string{"dev"}, args...))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "make admin@authms.test an admin: the address is registered in tenant dev already, with a password this bootstrap does not know")
	assert.FileExists(t, passwordFile+".pending", "kept for a retry")
	assert.NoFileExists(t, passwordFile)

	h.bootstrap = "0"
	d = startDev(t, getenv, args...)
	assert.Empty(t, signedInUser(t, d.url, tenantID, theirs).GetRoles(), "not made an admin")
	d.stop(t)
}
