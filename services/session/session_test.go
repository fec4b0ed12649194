package session_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
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
	"google.golang.org/protobuf/types/known/durationpb"

	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	sessionv1 "github.com/authms/authms/schemas/gen/authms/session/v1"
	"github.com/authms/authms/schemas/gen/authms/session/v1/sessionv1connect"
	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/schemas/gen/authms/tenant/v1/tenantv1connect"
	"github.com/authms/authms/services/servicestest"
	"github.com/authms/authms/services/session"
)

const password = "correct horse battery staple"

// clock is a settable time source for the session service.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env runs tenant, identity, risk and session for one test.
type env struct {
	*servicestest.Env
	session  sessionv1connect.SessionServiceClient
	identity identityv1connect.IdentityServiceClient
	tenant   tenantv1connect.TenantServiceClient
	pool     *pgxpool.Pool
}

func start(t testing.TB, opts servicestest.Options) *env {
	t.Helper()
	e := servicestest.StartWith(t, opts, "tenant", "identity", "risk", "session")
	return &env{
		Env:      e,
		session:  sessionv1connect.NewSessionServiceClient(e.HTTP, e.URL, e.Impersonate()),
		identity: identityv1connect.NewIdentityServiceClient(e.HTTP, e.URL, e.Impersonate()),
		tenant:   tenantv1connect.NewTenantServiceClient(e.HTTP, e.URL, e.Impersonate()),
		pool:     e.Pool("session"),
	}
}

// newTenant creates a tenant and waits until session has its policy.
func (e *env) newTenant(t testing.TB) string {
	t.Helper()
	res, err := e.tenant.CreateTenant(context.Background(), connect.NewRequest(&tenantv1.CreateTenantRequest{
		Slug: "t-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20], DisplayName: "Acme",
	}))
	require.NoError(t, err)
	id := res.Msg.GetTenant().GetId()
	require.Eventually(t, func() bool {
		return e.count(t, "SELECT count(*) FROM tenant_session_policies WHERE tenant_id = $1", id) == 1
	}, 10*time.Second, 20*time.Millisecond, "session projects the tenant's policy")
	e.WaitTenant(t, id, "active") // identity registers users in known tenants only
	return id
}

func (e *env) register(t testing.TB, tenant, email string) string {
	t.Helper()
	res, err := e.identity.RegisterUser(context.Background(), connect.NewRequest(&identityv1.RegisterUserRequest{
		TenantId: tenant, Email: email, Password: password,
	}))
	require.NoError(t, err)
	return res.Msg.GetUser().GetId()
}

func (e *env) login(ctx context.Context, tenant, email, pw string) (*sessionv1.LoginResponse, error) {
	res, err := e.session.Login(ctx, connect.NewRequest(&sessionv1.LoginRequest{TenantId: tenant, Email: email, Password: pw}))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

func (e *env) mustLogin(t testing.TB, tenant, email string) *sessionv1.LoginResponse {
	t.Helper()
	res, err := e.login(context.Background(), tenant, email, password)
	require.NoError(t, err)
	return res
}

func (e *env) refresh(ctx context.Context, token string) (*sessionv1.RefreshResponse, error) {
	res, err := e.session.Refresh(ctx, connect.NewRequest(&sessionv1.RefreshRequest{RefreshToken: token}))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

func (e *env) count(t testing.TB, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, e.pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// subjects returns the subjects of an aggregate's session events in order.
func (e *env) subjects(t testing.TB, aggregateID string) []string {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), "SELECT subject FROM events WHERE aggregate_id = $1 ORDER BY version", aggregateID)
	require.NoError(t, err)
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}

// jwks fetches the served JWKS over plain HTTP.
func (e *env) jwks(t testing.TB) session.JWKS {
	t.Helper()
	res, err := http.Get(e.URL + session.JWKSPath)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.LessOrEqual(t, cacheMaxAge(t, res.Header), 60, "never cached past the 60s a new key waits before it signs")
	assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
	var set session.JWKS
	require.NoError(t, json.NewDecoder(res.Body).Decode(&set))
	return set
}

// cacheMaxAge returns the max-age of a JWKS response, which must be
// "public, max-age=N".
func cacheMaxAge(t testing.TB, h http.Header) int {
	t.Helper()
	var n int
	_, err := fmt.Sscanf(h.Get("Cache-Control"), "public, max-age=%d", &n)
	require.NoError(t, err, "Cache-Control %q", h.Get("Cache-Control"))
	return n
}

func kids(set session.JWKS) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	return out
}

// jwtClaims are the claims the contract fixes.
type jwtClaims struct {
	Iss   string   `json:"iss"`
	Aud   string   `json:"aud"`
	Sub   string   `json:"sub"`
	Tid   string   `json:"tid"`
	Sid   string   `json:"sid"`
	Roles []string `json:"roles"`
	Iat   int64    `json:"iat"`
	Nbf   int64    `json:"nbf"`
	Exp   int64    `json:"exp"`
	Jti   string   `json:"jti"`
}

// verify checks a compact JWS against a JWKS independently of the service
// (crypto/ed25519 over "header.payload") and returns its kid and claims.
func verify(token string, set session.JWKS) (string, jwtClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", jwtClaims{}, errors.New("not a compact JWS")
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return "", jwtClaims{}, err
	}
	var h map[string]any
	if err := json.Unmarshal(hb, &h); err != nil {
		return "", jwtClaims{}, err
	}
	if h["alg"] != "EdDSA" || h["typ"] != "JWT" || len(h) != 3 {
		return "", jwtClaims{}, fmt.Errorf("header %v", h)
	}
	kid, _ := h["kid"].(string)
	var pub ed25519.PublicKey
	for _, k := range set.Keys {
		if k.Kid == kid && k.Kty == "OKP" && k.Crv == "Ed25519" && k.Alg == "EdDSA" && k.Use == "sig" {
			if pub, err = base64.RawURLEncoding.DecodeString(k.X); err != nil {
				return "", jwtClaims{}, err
			}
		}
	}
	if len(pub) != ed25519.PublicKeySize {
		return kid, jwtClaims{}, fmt.Errorf("kid %q is not in the JWKS", kid)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return kid, jwtClaims{}, err
	}
	if !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		return kid, jwtClaims{}, errors.New("bad signature")
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return kid, jwtClaims{}, err
	}
	var c jwtClaims
	if err := json.Unmarshal(pb, &c); err != nil {
		return kid, jwtClaims{}, err
	}
	return kid, c, nil
}

func mustVerify(t testing.TB, token string, set session.JWKS) (string, jwtClaims) {
	t.Helper()
	kid, c, err := verify(token, set)
	require.NoError(t, err)
	return kid, c
}

func TestLogin(t *testing.T) {
	t.Parallel()
	e := start(t, servicestest.Options{})
	tenant := e.newTenant(t)
	userID := e.register(t, tenant, "alice@example.com")

	res, err := e.login(t.Context(), tenant, "  Alice@EXAMPLE.com ", password)
	require.NoError(t, err, "a case variant of the address logs in")
	tok := res.GetTokens()
	assert.Equal(t, "Bearer", tok.GetTokenType())
	assert.Equal(t, userID, res.GetSession().GetUserId())
	assert.Equal(t, "127.0.0.1", res.GetSession().GetIp())
	assert.Regexp(t, `^[A-Za-z0-9_-]{43}$`, tok.GetRefreshToken())

	kid, c := mustVerify(t, tok.GetAccessToken(), e.jwks(t))
	assert.NotEmpty(t, kid)
	assert.Equal(t, "authms", c.Iss)
	assert.Equal(t, "authms", c.Aud)
	assert.Equal(t, userID, c.Sub)
	assert.Equal(t, tenant, c.Tid)
	assert.Equal(t, res.GetSession().GetId(), c.Sid)
	assert.Equal(t, []string{}, c.Roles)
	assert.Equal(t, int64(600), c.Exp-c.Iat, "the tenant's default policy: 10 minutes")
	assert.Equal(t, c.Iat, c.Nbf)
	assert.Equal(t, tok.GetAccessTokenExpireTime().AsTime().Unix(), c.Exp)
	assert.WithinDuration(t, time.Now().Add(30*24*time.Hour), tok.GetRefreshTokenExpireTime().AsTime(), time.Minute)
	_, err = uuid.Parse(c.Jti)
	require.NoError(t, err)
	// The payload carries exactly the contract's claims.
	var payload map[string]any
	pb, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok.GetAccessToken(), ".")[1])
	require.NoError(t, json.Unmarshal(pb, &payload))
	assert.Len(t, payload, 10)

	assert.Equal(t, []string{"session.session.created"}, e.subjects(t, c.Sid))
	assert.Equal(t, 1, e.count(t, "SELECT count(*) FROM refresh_tokens WHERE session_id = $1", c.Sid))
	raw, err := base64.RawURLEncoding.DecodeString(tok.GetRefreshToken())
	require.NoError(t, err)
	assert.Zero(t, e.count(t, "SELECT count(*) FROM refresh_tokens WHERE token_hash = $1 OR successor_hash = $1", raw),
		"the token itself is not stored")

	list, err := e.session.ListSessions(t.Context(), connect.NewRequest(&sessionv1.ListSessionsRequest{TenantId: tenant, UserId: userID}))
	require.NoError(t, err)
	require.Len(t, list.Msg.GetSessions(), 1)
	assert.Equal(t, c.Sid, list.Msg.GetSessions()[0].GetId())

	t.Run("one answer for every bad login", func(t *testing.T) {
		e.register(t, tenant, "bob@example.com")
		for _, tc := range []struct{ name, tenant, email, password string }{
			{"wrong password", tenant, "alice@example.com", "wrong password, long enough"},
			{"empty password", tenant, "alice@example.com", ""},
			{"unknown email", tenant, "nobody@example.com", password},
			{"not an email", tenant, "nobody", password},
			{"another tenant", e.newTenant(t), "alice@example.com", password},
			{"an unknown tenant", uuid.NewString(), "alice@example.com", password},
		} {
			_, err := e.login(t.Context(), tc.tenant, tc.email, tc.password)
			require.Error(t, err, tc.name)
			assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), tc.name)
			assert.Equal(t, "unauthenticated: invalid email or password", err.Error(), tc.name)
		}
	})

	t.Run("raw JSON", func(t *testing.T) {
		body := fmt.Sprintf(`{"tenantId":%q,"email":"alice@example.com","password":%q}`, tenant, password)
		res, err := http.Post(e.URL+sessionv1connect.SessionServiceLoginProcedure, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode, string(b))
		var out struct {
			Tokens struct {
				AccessToken, RefreshToken, AccessTokenExpireTime, TokenType string
			}
			Session struct{ ID string }
		}
		require.NoError(t, json.Unmarshal(b, &out))
		_, c := mustVerify(t, out.Tokens.AccessToken, e.jwks(t))
		assert.Equal(t, userID, c.Sub)
		assert.Equal(t, out.Session.ID, c.Sid)
		assert.Equal(t, "Bearer", out.Tokens.TokenType)

		res, err = http.Post(e.URL+sessionv1connect.SessionServiceLoginProcedure, "application/json",
			strings.NewReader(fmt.Sprintf(`{"tenantId":%q,"email":"alice@example.com","password":"nope"}`, tenant)))
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ = io.ReadAll(res.Body)
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
		assert.JSONEq(t, `{"code":"unauthenticated","message":"invalid email or password"}`, string(b))
	})
}

func TestLoginFollowsTheTenantsSessionPolicy(t *testing.T) {
	t.Parallel()
	e := start(t, servicestest.Options{})
	tenant := e.newTenant(t)
	e.register(t, tenant, "alice@example.com")
	_, err := e.tenant.UpdateSessionPolicy(t.Context(), connect.NewRequest(&tenantv1.UpdateSessionPolicyRequest{
		TenantId: tenant, Policy: &tenantv1.SessionPolicy{
			AccessTokenTtl: durationpb.New(5 * time.Minute), RefreshTokenTtl: durationpb.New(2 * time.Hour), RefreshReuseGrace: durationpb.New(0),
		},
	}))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return e.count(t, "SELECT count(*) FROM tenant_session_policies WHERE tenant_id = $1 AND access_token_ttl_seconds = 300", tenant) == 1
	}, 10*time.Second, 20*time.Millisecond)
	res := e.mustLogin(t, tenant, "alice@example.com")
	_, c := mustVerify(t, res.GetTokens().GetAccessToken(), e.jwks(t))
	assert.Equal(t, int64(300), c.Exp-c.Iat)
	assert.WithinDuration(t, time.Now().Add(2*time.Hour), res.GetTokens().GetRefreshTokenExpireTime().AsTime(), time.Minute)
}

// TestSuspendedTenant suspends a tenant through the operator's
// SuspendTenant, end to end: its users can no longer log in (the answer
// reads as a wrong password, so it says nothing of the tenant) or register,
// their sessions are revoked, so refreshes fail and verifiers refuse their
// access tokens, while another tenant is untouched. Reactivation lets
// users log in again; the revoked sessions stay revoked.
func TestSuspendedTenant(t *testing.T) {
	t.Parallel()
	e := start(t, servicestest.Options{})
	tenant, other := e.newTenant(t), e.newTenant(t)
	userID := e.register(t, tenant, "alice@example.com")
	e.register(t, other, "alice@example.com")
	live := e.mustLogin(t, tenant, "alice@example.com")
	bystander := e.mustLogin(t, other, "alice@example.com")
	_, wrong := e.login(t.Context(), tenant, "alice@example.com", "wrong password, long enough")
	require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(wrong))
	as := func(login *sessionv1.LoginResponse) sessionv1connect.SessionServiceClient {
		return sessionv1connect.NewSessionServiceClient(e.HTTP, e.URL, servicestest.Bearer(login.GetTokens().GetAccessToken()))
	}
	listOwn := func(login *sessionv1.LoginResponse) error {
		_, err := as(login).ListSessions(t.Context(), connect.NewRequest(&sessionv1.ListSessionsRequest{
			TenantId: login.GetSession().GetTenantId(), UserId: login.GetSession().GetUserId(),
		}))
		return err
	}
	require.NoError(t, listOwn(live))

	_, err := e.tenant.SuspendTenant(t.Context(), connect.NewRequest(&tenantv1.SuspendTenantRequest{TenantId: tenant, Reason: "unpaid invoices"}))
	require.NoError(t, err)
	e.WaitTenant(t, tenant, "suspended")
	require.Eventually(t, func() bool {
		return e.count(t, "SELECT count(*) FROM sessions WHERE id = $1 AND revoke_reason = 'REVOKE_REASON_TENANT_SUSPENDED'", live.GetSession().GetId()) == 1
	}, 10*time.Second, 20*time.Millisecond, "session revokes the tenant's sessions")
	assert.Equal(t, []string{"session.session.created", "session.session.revoked"}, e.subjects(t, live.GetSession().GetId()))

	_, err = e.login(t.Context(), tenant, "alice@example.com", password)
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
	assert.Equal(t, wrong.Error(), err.Error(), "reads as a wrong password")
	_, err = e.identity.RegisterUser(t.Context(), connect.NewRequest(&identityv1.RegisterUserRequest{
		TenantId: tenant, Email: "bob@example.com", Password: password,
	}))
	assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "no registration in a suspended tenant")
	_, err = e.refresh(t.Context(), live.GetTokens().GetRefreshToken())
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
	assert.Contains(t, err.Error(), "the session has ended")
	require.Eventually(t, func() bool { return connect.CodeOf(listOwn(live)) == connect.CodeUnauthenticated },
		10*time.Second, 20*time.Millisecond, "the revoked session's access token is refused")

	require.NoError(t, listOwn(bystander), "another tenant's session is untouched")
	_, err = e.refresh(t.Context(), bystander.GetTokens().GetRefreshToken())
	require.NoError(t, err)

	_, err = e.tenant.ReactivateTenant(t.Context(), connect.NewRequest(&tenantv1.ReactivateTenantRequest{TenantId: tenant}))
	require.NoError(t, err)
	e.WaitTenant(t, tenant, "active")
	require.Eventually(t, func() bool {
		return e.count(t, "SELECT count(*) FROM tenant_statuses WHERE tenant_id = $1 AND NOT suspended", tenant) == 1
	}, 10*time.Second, 20*time.Millisecond)
	again := e.mustLogin(t, tenant, "alice@example.com")
	assert.Equal(t, userID, again.GetSession().GetUserId())
	_, err = e.refresh(t.Context(), again.GetTokens().GetRefreshToken())
	require.NoError(t, err)
	_, err = e.refresh(t.Context(), live.GetTokens().GetRefreshToken())
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "a session the suspension revoked stays revoked")
}

// TestRefreshRefusedWhileSessionKnowsTheTenantSuspended checks session's
// own guard: with the suspension projected into tenant_statuses, Refresh
// refuses a session that no revocation reached (as one opened in the
// moment between the suspension and its projection would be), and the
// periodic sweep (every KeyCheckInterval) revokes it.
func TestRefreshRefusedWhileSessionKnowsTheTenantSuspended(t *testing.T) {
	t.Parallel()
	e := start(t, servicestest.Options{Session: session.Config{KeyCheckInterval: 200 * time.Millisecond}})
	tenant := e.newTenant(t)
	e.register(t, tenant, "alice@example.com")
	login := e.mustLogin(t, tenant, "alice@example.com")
	require.Eventually(t, func() bool {
		return e.count(t, "SELECT count(*) FROM tenant_statuses WHERE tenant_id = $1 AND NOT suspended", tenant) == 1
	}, 10*time.Second, 20*time.Millisecond)
	_, err := e.pool.Exec(t.Context(), "UPDATE tenant_statuses SET suspended = true WHERE tenant_id = $1", tenant)
	require.NoError(t, err)

	_, err = e.refresh(t.Context(), login.GetTokens().GetRefreshToken())
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
	assert.Contains(t, err.Error(), "the session has ended")
	_, err = e.login(t.Context(), tenant, "alice@example.com", password)
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "identity still knows the tenant active; session refuses")
	assert.Equal(t, 1, e.count(t, "SELECT count(*) FROM sessions WHERE tenant_id = $1", tenant), "no session opened")

	require.Eventually(t, func() bool {
		return e.count(t, "SELECT count(*) FROM sessions WHERE id = $1 AND revoke_reason = 'REVOKE_REASON_TENANT_SUSPENDED'", login.GetSession().GetId()) == 1
	}, 10*time.Second, 20*time.Millisecond, "the sweep revokes the live session of a tenant known suspended")
	assert.Equal(t, []string{"session.session.created", "session.session.revoked"}, e.subjects(t, login.GetSession().GetId()))
}

// TestSuspensionWaitsForALoginOfATenantNotYetCached suspends a tenant while
// a Login is between reading its status and committing its session, in a
// tenant session has no status row for yet (as before it projects the
// tenant's creation): the suspension's projection waits for the Login, so
// the revocation that follows it revokes the new session at once, not at
// the next periodic sweep (KeyCheckInterval, 30 s, longer than the wait
// here). The Login is held there by a lock on tenant_session_policies,
// which it reads after the status. The test's own connections hold and
// watch the locks: the service's pool is too small to lend them.
func TestSuspensionWaitsForALoginOfATenantNotYetCached(t *testing.T) {
	t.Parallel()
	e := start(t, servicestest.Options{})
	tenant := e.newTenant(t)
	e.register(t, tenant, "alice@example.com")
	require.Eventually(t, func() bool {
		return e.count(t, "SELECT count(*) FROM tenant_statuses WHERE tenant_id = $1", tenant) == 1
	}, 10*time.Second, 20*time.Millisecond)
	_, err := e.pool.Exec(t.Context(), "DELETE FROM tenant_statuses WHERE tenant_id = $1", tenant)
	require.NoError(t, err)

	dial := func() *pgx.Conn {
		conn, err := pgx.ConnectConfig(t.Context(), e.pool.Config().ConnConfig.Copy())
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
		return conn
	}
	watch := dial()
	hold, err := dial().Begin(t.Context())
	require.NoError(t, err)
	_, err = hold.Exec(t.Context(), "LOCK TABLE tenant_session_policies IN ACCESS EXCLUSIVE MODE")
	require.NoError(t, err)
	type result struct {
		res *sessionv1.LoginResponse
		err error
	}
	login := make(chan result, 1)
	go func() {
		res, err := e.login(t.Context(), tenant, "alice@example.com", password)
		login <- result{res, err}
	}()
	statusLock := func(mode string, granted bool) func() bool {
		return func() bool {
			var n int
			require.NoError(t, watch.QueryRow(t.Context(), `SELECT count(*) FROM pg_locks
				WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
				AND classid = hashtext('session.tenant_statuses')::oid AND objid = hashtext($1::uuid::text)::oid AND objsubid = 2
				AND mode = $2 AND granted = $3`, tenant, mode, granted).Scan(&n))
			return n == 1
		}
	}
	require.Eventually(t, statusLock("ShareLock", true), 10*time.Second, 20*time.Millisecond, "the login holds the status lock shared")
	require.Zero(t, e.count(t, "SELECT count(*) FROM tenant_statuses WHERE tenant_id = $1", tenant),
		"no status row, so the login reads the tenant active (nothing commits one while it holds the lock)")

	_, err = e.tenant.SuspendTenant(t.Context(), connect.NewRequest(&tenantv1.SuspendTenantRequest{TenantId: tenant, Reason: "unpaid invoices"}))
	require.NoError(t, err)
	require.Eventually(t, statusLock("ExclusiveLock", false), 10*time.Second, 20*time.Millisecond, "the suspension's projection waits for the login")
	require.NoError(t, hold.Rollback(t.Context()))
	got := <-login
	require.NoError(t, got.err, "the login read the tenant active")

	require.Eventually(t, func() bool {
		return e.count(t, "SELECT count(*) FROM sessions WHERE id = $1 AND revoke_reason = 'REVOKE_REASON_TENANT_SUSPENDED'", got.res.GetSession().GetId()) == 1
	}, 10*time.Second, 20*time.Millisecond, "the revocation after the suspension finds the login's session")
	assert.Equal(t, []string{"session.session.created", "session.session.revoked"}, e.subjects(t, got.res.GetSession().GetId()))
}

func TestRefreshRotatesAndDetectsReuse(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := start(t, servicestest.Options{Session: session.Config{Now: clk.Now}})
	tenant := e.newTenant(t)
	userID := e.register(t, tenant, "alice@example.com")
	login := e.mustLogin(t, tenant, "alice@example.com")
	first := login.GetTokens().GetRefreshToken()
	sid := login.GetSession().GetId()

	clk.Advance(time.Minute)
	r1, err := e.refresh(t.Context(), first)
	require.NoError(t, err)
	second := r1.GetTokens().GetRefreshToken()
	assert.NotEqual(t, first, second)
	assert.Equal(t, sid, r1.GetSession().GetId())
	_, c := mustVerify(t, r1.GetTokens().GetAccessToken(), e.jwks(t))
	assert.Equal(t, sid, c.Sid)
	assert.Equal(t, userID, c.Sub)
	assert.Equal(t, clk.Now().Unix(), c.Iat)

	clk.Advance(time.Minute)
	r2, err := e.refresh(t.Context(), second)
	require.NoError(t, err)
	third := r2.GetTokens().GetRefreshToken()

	// The first token again, long after the grace window: the family is
	// revoked, the live token with it.
	_, err = e.refresh(t.Context(), first)
	require.Error(t, err)
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
	assert.Contains(t, err.Error(), "already used")
	_, err = e.refresh(t.Context(), third)
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "the live token died with its family")
	assert.Equal(t, []string{"session.session.created", "session.refresh_token.reuse_detected", "session.session.revoked"}, e.subjects(t, sid))

	list, err := e.session.ListSessions(t.Context(), connect.NewRequest(&sessionv1.ListSessionsRequest{TenantId: tenant, UserId: userID}))
	require.NoError(t, err)
	assert.Empty(t, list.Msg.GetSessions())

	_, err = e.refresh(t.Context(), "not-a-token")
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
	_, err = e.refresh(t.Context(), base64.RawURLEncoding.EncodeToString(make([]byte, 32)))
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
}

func TestParallelRefreshesGetOneSuccessor(t *testing.T) {
	t.Parallel()
	e := start(t, servicestest.Options{})
	tenant := e.newTenant(t)
	e.register(t, tenant, "alice@example.com")
	login := e.mustLogin(t, tenant, "alice@example.com")
	token := login.GetTokens().GetRefreshToken()

	const n = 10
	var (
		wg         sync.WaitGroup
		mu         sync.Mutex
		successors = map[string]int{}
		errs       []error
	)
	for range n {
		wg.Go(func() {
			res, err := e.refresh(context.Background(), token)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			successors[res.GetTokens().GetRefreshToken()]++
		})
	}
	wg.Wait()
	require.Empty(t, errs, "no refresh within the grace window fails")
	require.Len(t, successors, 1, "one successor")
	for succ, count := range successors {
		assert.Equal(t, n, count)
		assert.Equal(t, 2, e.count(t, "SELECT count(*) FROM refresh_tokens WHERE session_id = $1", login.GetSession().GetId()),
			"one chain: the first token and its one successor")
		_, err := e.refresh(t.Context(), succ)
		require.NoError(t, err, "the successor is live")
	}
	assert.Equal(t, []string{"session.session.created"}, e.subjects(t, login.GetSession().GetId()))
}

func TestRevokeSessions(t *testing.T) {
	t.Parallel()
	e := start(t, servicestest.Options{})
	tenant := e.newTenant(t)
	alice := e.register(t, tenant, "alice@example.com")
	bob := e.register(t, tenant, "bob@example.com")
	a1, a2, a3, a4 := e.mustLogin(t, tenant, "alice@example.com"), e.mustLogin(t, tenant, "alice@example.com"),
		e.mustLogin(t, tenant, "alice@example.com"), e.mustLogin(t, tenant, "alice@example.com")
	b1 := e.mustLogin(t, tenant, "bob@example.com")
	ctx := t.Context()

	// Real access tokens, verified through session's JWKS.
	as := func(login *sessionv1.LoginResponse) sessionv1connect.SessionServiceClient {
		return sessionv1connect.NewSessionServiceClient(e.HTTP, e.URL, servicestest.Bearer(login.GetTokens().GetAccessToken()))
	}
	_, err := as(a2).Logout(ctx, connect.NewRequest(&sessionv1.LogoutRequest{TenantId: tenant, SessionId: a1.GetSession().GetId()}))
	assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "Logout ends the caller's own session only")
	out, err := as(a1).Logout(ctx, connect.NewRequest(&sessionv1.LogoutRequest{TenantId: tenant, SessionId: a1.GetSession().GetId()}))
	require.NoError(t, err)
	assert.True(t, out.Msg.GetWasActive())
	again, err := e.session.RevokeSession(ctx, connect.NewRequest(&sessionv1.RevokeSessionRequest{TenantId: tenant, UserId: alice, SessionId: a1.GetSession().GetId()}))
	require.NoError(t, err)
	assert.False(t, again.Msg.GetWasActive(), "ending a logged-out session changes nothing")
	_, err = e.refresh(ctx, a1.GetTokens().GetRefreshToken())
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
	// The revocation list learns of the logout: a1's access token fails on
	// its next call, a4's still works.
	require.Eventually(t, func() bool {
		_, err := as(a1).ListSessions(ctx, connect.NewRequest(&sessionv1.ListSessionsRequest{TenantId: tenant, UserId: alice}))
		return connect.CodeOf(err) == connect.CodeUnauthenticated
	}, 10*time.Second, 20*time.Millisecond, "a logged-out session's access token is refused")
	_, err = as(a4).ListSessions(ctx, connect.NewRequest(&sessionv1.ListSessionsRequest{TenantId: tenant, UserId: alice}))
	require.NoError(t, err)
	_, err = as(b1).ListSessions(ctx, connect.NewRequest(&sessionv1.ListSessionsRequest{TenantId: tenant, UserId: alice}))
	assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "bob does not list alice's sessions")

	_, err = e.session.RevokeSession(ctx, connect.NewRequest(&sessionv1.RevokeSessionRequest{TenantId: tenant, UserId: bob, SessionId: a2.GetSession().GetId()}))
	assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "another user's session")
	_, err = e.session.RevokeSession(ctx, connect.NewRequest(&sessionv1.RevokeSessionRequest{TenantId: uuid.NewString(), UserId: alice, SessionId: a2.GetSession().GetId()}))
	assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "another tenant")
	rs, err := e.session.RevokeSession(ctx, connect.NewRequest(&sessionv1.RevokeSessionRequest{TenantId: tenant, UserId: alice, SessionId: a2.GetSession().GetId()}))
	require.NoError(t, err)
	assert.True(t, rs.Msg.GetWasActive())

	all, err := e.session.RevokeAllSessions(ctx, connect.NewRequest(&sessionv1.RevokeAllSessionsRequest{
		TenantId: tenant, UserId: alice, ExceptSessionId: new(a4.GetSession().GetId()),
	}))
	require.NoError(t, err)
	assert.Equal(t, int32(1), all.Msg.GetRevoked(), "a3 only")

	list, err := e.session.ListSessions(ctx, connect.NewRequest(&sessionv1.ListSessionsRequest{TenantId: tenant, UserId: alice}))
	require.NoError(t, err)
	require.Len(t, list.Msg.GetSessions(), 1)
	assert.Equal(t, a4.GetSession().GetId(), list.Msg.GetSessions()[0].GetId())
	_, err = e.refresh(ctx, a3.GetTokens().GetRefreshToken())
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
	_, err = e.refresh(ctx, b1.GetTokens().GetRefreshToken())
	require.NoError(t, err, "bob's session is untouched")
	assert.Equal(t, []string{"session.session.created", "session.session.revoked"}, e.subjects(t, a1.GetSession().GetId()))
	assert.Equal(t, 1, e.count(t, "SELECT count(*) FROM sessions WHERE id = $1 AND revoke_reason = 'REVOKE_REASON_LOGOUT'", a1.GetSession().GetId()))
}

func TestSigningKeysRotate(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := start(t, servicestest.Options{Session: session.Config{
		Now: clk.Now, KeyRotation: time.Hour, KeyCheckInterval: 20 * time.Millisecond,
	}})
	tenant := e.newTenant(t)
	e.register(t, tenant, "alice@example.com")
	old := e.mustLogin(t, tenant, "alice@example.com").GetTokens().GetAccessToken()
	set := e.jwks(t)
	require.Len(t, set.Keys, 1)
	k1, _ := mustVerify(t, old, set)

	// A minute before the hour: the successor is published, not yet used.
	clk.Advance(time.Hour - time.Minute)
	require.Eventually(t, func() bool { return len(e.jwks(t).Keys) == 2 }, 10*time.Second, 20*time.Millisecond)
	k2 := kids(e.jwks(t))[1]
	assert.Equal(t, k1, kids(e.jwks(t))[0])
	kid, _ := mustVerify(t, e.mustLogin(t, tenant, "alice@example.com").GetTokens().GetAccessToken(), e.jwks(t))
	assert.Equal(t, k1, kid, "a published key signs only one JWKS cache period later")

	clk.Advance(time.Minute)
	fresh := e.mustLogin(t, tenant, "alice@example.com").GetTokens().GetAccessToken()
	kid, _ = mustVerify(t, fresh, e.jwks(t))
	assert.Equal(t, k2, kid, "the successor signs")
	_, _ = mustVerify(t, old, e.jwks(t)) // the old key still verifies the old token

	// The old key signed its last token when k2 activated; it leaves once
	// the longest token lifetime (15 minutes, plus a minute of skew) has
	// passed since.
	clk.Advance(15 * time.Minute)
	assert.Equal(t, []string{k1, k2}, kids(e.jwks(t)))
	clk.Advance(time.Minute + time.Second)
	assert.Equal(t, []string{k2}, kids(e.jwks(t)))
	require.Eventually(t, func() bool { return e.count(t, "SELECT count(*) FROM signing_keys WHERE kid = $1", k1) == 0 },
		10*time.Second, 20*time.Millisecond, "removed from the database too")
	_, _, err := verify(old, e.jwks(t))
	require.Error(t, err, "a removed key verifies nothing")
	_, _ = mustVerify(t, fresh, e.jwks(t))
}

func TestLockoutUnderParallelWrongPasswords(t *testing.T) {
	t.Parallel()
	e := start(t, servicestest.Options{})
	tenant := e.newTenant(t)
	e.register(t, tenant, "alice@example.com")
	const maxFailures = 3
	_, err := e.tenant.UpdateLockoutPolicy(t.Context(), connect.NewRequest(&tenantv1.UpdateLockoutPolicyRequest{
		TenantId: tenant, Policy: &tenantv1.LockoutPolicy{
			MaxFailures: maxFailures, Window: durationpb.New(15 * time.Minute), LockoutDuration: durationpb.New(15 * time.Minute),
		},
	}))
	require.NoError(t, err)
	risk := e.Pool("risk")
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, risk.QueryRow(t.Context(), "SELECT count(*) FROM tenant_lockout_policies WHERE tenant_id = $1 AND max_failures = $2",
			tenant, maxFailures).Scan(&n))
		return n == 1
	}, 10*time.Second, 20*time.Millisecond, "risk projects the policy")

	const n = 50
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[connect.Code]int{}
	)
	for i := range n {
		wg.Go(func() {
			req := connect.NewRequest(&sessionv1.LoginRequest{TenantId: tenant, Email: "alice@example.com", Password: fmt.Sprintf("wrong password %d", i)})
			// An attacker rotating forwarded addresses: not trusted.
			req.Header().Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
			_, err := e.session.Login(context.Background(), req)
			mu.Lock()
			defer mu.Unlock()
			codes[connect.CodeOf(err)]++
		})
	}
	wg.Wait()
	assert.Equal(t, n, codes[connect.CodeUnauthenticated]+codes[connect.CodeResourceExhausted]+codes[connect.CodePermissionDenied], codes)
	assert.LessOrEqual(t, codes[connect.CodeUnauthenticated], maxFailures, "no more password checks than the tenant allows: %v", codes)
	assert.Positive(t, codes[connect.CodeUnauthenticated], codes)

	// The right password now: the account is locked.
	_, err = e.login(t.Context(), tenant, "alice@example.com", password)
	require.Error(t, err)
	assert.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err))
	var ce *connect.Error
	require.ErrorAs(t, err, &ce)
	assert.NotEmpty(t, ce.Meta().Get("Retry-After"))
	require.Len(t, ce.Details(), 1)
	assert.Equal(t, "google.rpc.RetryInfo", ce.Details()[0].Type())
	// An unknown email in the same state answers the same way.
	for range maxFailures {
		_, _ = e.login(t.Context(), tenant, "nobody@example.com", "wrong password")
	}
	_, err2 := e.login(t.Context(), tenant, "nobody@example.com", password)
	assert.Equal(t, connect.CodeOf(err), connect.CodeOf(err2))
	var ce2 *connect.Error
	require.ErrorAs(t, err2, &ce2)
	assert.Equal(t, ce.Message(), ce2.Message())
}

// refreshFrom refreshes as the client at ip (loopback must be a trusted
// proxy).
func (e *env) refreshFrom(ctx context.Context, ip, token string) (*sessionv1.RefreshResponse, error) {
	req := connect.NewRequest(&sessionv1.RefreshRequest{RefreshToken: token})
	req.Header().Set("X-Forwarded-For", ip)
	res, err := e.session.Refresh(ctx, req)
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

// requireLimited checks a refresh refused by a rate limit: ResourceExhausted
// with message, and when to retry.
func requireLimited(t *testing.T, err error, message string) {
	t.Helper()
	require.Equal(t, connect.CodeResourceExhausted, connect.CodeOf(err), "%v", err)
	var ce *connect.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, message, ce.Message())
	assert.Equal(t, "60", ce.Meta().Get("Retry-After"), "the window started with the first call, at the test clock's now")
	require.Len(t, ce.Details(), 1)
	assert.Equal(t, "google.rpc.RetryInfo", ce.Details()[0].Type())
}

func TestRefreshIsRateLimited(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := start(t, servicestest.Options{
		Session: session.Config{
			Now:                    clk.Now,
			RefreshLimitPerAddress: session.RateLimit{Max: 5, Window: time.Minute},
			RefreshLimitPerSession: session.RateLimit{Max: 3, Window: time.Minute},
		},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	tenant := e.newTenant(t)
	e.register(t, tenant, "alice@example.com")
	ctx := t.Context()

	t.Run("per address, tokens that name no session", func(t *testing.T) {
		login := e.mustLogin(t, tenant, "alice@example.com")
		token := login.GetTokens().GetRefreshToken()
		for i := range 5 {
			unknown := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%032d", i))
			_, err := e.refreshFrom(ctx, "198.51.100.1", unknown)
			require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "guess %d", i)
		}
		for range 3 {
			_, err := e.refreshFrom(ctx, "198.51.100.1", "not-a-token")
			requireLimited(t, err, "too many refresh attempts from this address; retry later")
		}
		// The guesser's address is spent for guesses only: a valid token
		// from it still refreshes, and does not count against it.
		res, err := e.refreshFrom(ctx, "198.51.100.1", token)
		require.NoError(t, err, "a valid token is not held back by a guesser at its address")
		token = res.GetTokens().GetRefreshToken()
		assert.Equal(t, 2, e.count(t, "SELECT count(*) FROM refresh_tokens WHERE session_id = $1", login.GetSession().GetId()))
		// Refused guesses are not counted: the count stops at the limit plus one.
		assert.Equal(t, 6, e.count(t, "SELECT hits FROM refresh_limits WHERE scope = 'address' AND key = '198.51.100.1'"))

		// An IPv6 client counts by its /64.
		for i := range 5 {
			_, err := e.refreshFrom(ctx, fmt.Sprintf("2001:db8:1:2::%x", i+1), "not-a-token")
			require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
		}
		_, err = e.refreshFrom(ctx, "2001:db8:1:2:ffff::1", "not-a-token")
		requireLimited(t, err, "too many refresh attempts from this address; retry later")

		_, err = e.refreshFrom(ctx, "198.51.100.2", "not-a-token")
		require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "another address is not limited")
		clk.Advance(time.Minute)
		_, err = e.refreshFrom(ctx, "198.51.100.1", "not-a-token")
		require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "the next window lets the address guess again")
		_, err = e.refreshFrom(ctx, "198.51.100.1", token)
		require.NoError(t, err)
	})

	t.Run("users sharing a guesser's address keep refreshing", func(t *testing.T) {
		const office = "192.0.2.50"
		users := make([]string, 8)
		for i := range users {
			email := fmt.Sprintf("user%d@example.com", i)
			e.register(t, tenant, email)
			users[i] = e.mustLogin(t, tenant, email).GetTokens().GetRefreshToken()
		}
		// More valid refreshes from the one address than its limit allows
		// guesses, interleaved with a guesser that is soon throttled.
		for round := range 2 {
			for i, token := range users {
				res, err := e.refreshFrom(ctx, office, token)
				require.NoError(t, err, "round %d, user %d", round, i)
				users[i] = res.GetTokens().GetRefreshToken()

				_, err = e.refreshFrom(ctx, office, fmt.Sprintf("guess-%d-%d", round, i))
				if n := round*len(users) + i; n < 5 {
					require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "guess %d", n)
				} else {
					requireLimited(t, err, "too many refresh attempts from this address; retry later")
				}
			}
		}
	})

	t.Run("per session", func(t *testing.T) {
		login := e.mustLogin(t, tenant, "alice@example.com")
		other := e.mustLogin(t, tenant, "alice@example.com")
		token := login.GetTokens().GetRefreshToken()
		for i := range 3 {
			res, err := e.refreshFrom(ctx, fmt.Sprintf("203.0.113.%d", i+1), token)
			require.NoError(t, err, "refresh %d", i)
			token = res.GetTokens().GetRefreshToken()
		}
		_, err := e.refreshFrom(ctx, "203.0.113.10", token)
		requireLimited(t, err, "too many refreshes of this session; retry later")
		_, err = e.refreshFrom(ctx, "203.0.113.11", other.GetTokens().GetRefreshToken())
		require.NoError(t, err, "another session of the same user is not limited")

		clk.Advance(time.Minute)
		_, err = e.refreshFrom(ctx, "203.0.113.12", token)
		require.NoError(t, err, "the refused call did not use the token: it still refreshes in the next window")
	})
}

// TestJWKSIsServedFromMemory takes the session database away: the JWKS is
// still served, unchanged, because it comes from the keys in memory, with
// a max-age that shrinks as they age; once they are due for a reload
// (KeyCheckInterval, 30s) and the database cannot be read, it is 503, not
// stale keys.
func TestJWKSIsServedFromMemory(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := start(t, servicestest.Options{Session: session.Config{Now: clk.Now}})
	get := func() *http.Response {
		res, err := http.Get(e.URL + session.JWKSPath)
		require.NoError(t, err)
		t.Cleanup(func() { _ = res.Body.Close() })
		return res
	}
	want := kids(e.jwks(t))
	require.Len(t, want, 1)

	prov := e.PG.Provisioner()
	require.NoError(t, prov.BlockConnections(t.Context(), "session"))
	t.Cleanup(func() { _ = prov.AllowConnections(context.WithoutCancel(t.Context()), "session") })
	for range 20 {
		assert.Equal(t, want, kids(e.jwks(t)), "served with the database unreachable")
	}
	clk.Advance(10 * time.Second)
	res := get()
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, 50, cacheMaxAge(t, res.Header), "cached no longer than the keys' load plus 60s")

	clk.Advance(20 * time.Second)
	res = get()
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "keys due for a reload are not served stale")
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))

	require.NoError(t, prov.AllowConnections(t.Context(), "session"))
	require.Eventually(t, func() bool { return get().StatusCode == http.StatusOK }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, want, kids(e.jwks(t)))
}

// TestConfigKeepsTheJWKSMaxAgeAboveTheVerifiersMinimum checks that the
// JWKS max-age, which shrinks by up to KeyCheckInterval before a reload,
// never falls below the shortest cache verifiers use (auth.MinJWKSTTL).
func TestConfigKeepsTheJWKSMaxAgeAboveTheVerifiersMinimum(t *testing.T) {
	t.Parallel()
	require.NoError(t, session.Config{}.Validate())
	require.NoError(t, session.Config{JWKSMaxAge: time.Minute, KeyCheckInterval: 55 * time.Second}.Validate())
	err := session.Config{JWKSMaxAge: time.Minute, KeyCheckInterval: 56 * time.Second}.Validate()
	require.ErrorContains(t, err, "key check interval 56s: want positive and at least 5s shorter than the JWKS max-age 1m0s")
	require.Error(t, session.Config{JWKSMaxAge: 8 * time.Second}.Validate(), "the default interval, half of 8s, leaves 4s")
}
