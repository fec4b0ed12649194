package services_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/events"
	adminv1 "github.com/authms/authms/schemas/gen/authms/admin/v1"
	"github.com/authms/authms/schemas/gen/authms/admin/v1/adminv1connect"
	billingv1 "github.com/authms/authms/schemas/gen/authms/billing/v1"
	"github.com/authms/authms/schemas/gen/authms/billing/v1/billingv1connect"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	profilev1 "github.com/authms/authms/schemas/gen/authms/profile/v1"
	"github.com/authms/authms/schemas/gen/authms/profile/v1/profilev1connect"
	riskv1 "github.com/authms/authms/schemas/gen/authms/risk/v1"
	"github.com/authms/authms/schemas/gen/authms/risk/v1/riskv1connect"
	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/schemas/gen/authms/tenant/v1/tenantv1connect"
	walletv1 "github.com/authms/authms/schemas/gen/authms/wallet/v1"
	"github.com/authms/authms/schemas/gen/authms/wallet/v1/walletv1connect"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/auth/authtest"
	"github.com/authms/authms/services/servicestest"
)

// caller holds a client of every API, all sending one credential.
type caller struct {
	identity identityv1connect.IdentityServiceClient
	profile  profilev1connect.ProfileServiceClient
	wallet   walletv1connect.WalletServiceClient
	billing  billingv1connect.BillingServiceClient
	tenant   tenantv1connect.TenantServiceClient
	risk     riskv1connect.RiskServiceClient
	dlq      adminv1connect.DeadLetterServiceClient
}

func callerWith(env *servicestest.Env, opts ...connect.ClientOption) caller {
	return caller{
		identity: identityv1connect.NewIdentityServiceClient(env.HTTP, env.URL, opts...),
		profile:  profilev1connect.NewProfileServiceClient(env.HTTP, env.URL, opts...),
		wallet:   walletv1connect.NewWalletServiceClient(env.HTTP, env.URL, opts...),
		billing:  billingv1connect.NewBillingServiceClient(env.HTTP, env.URL, opts...),
		tenant:   tenantv1connect.NewTenantServiceClient(env.HTTP, env.URL, opts...),
		risk:     riskv1connect.NewRiskServiceClient(env.HTTP, env.URL, opts...),
		dlq:      adminv1connect.NewDeadLetterServiceClient(env.HTTP, env.URL, opts...),
	}
}

func as(env *servicestest.Env, token string) caller {
	return callerWith(env, servicestest.Bearer(token))
}

// member is a registered user whose profile, wallet and billing customer
// exist.
type member struct{ tenant, user, email string }

func registerMember(t *testing.T, env *servicestest.Env, tenant string) member {
	t.Helper()
	email := "u" + uuid.NewString()[:8] + "@example.com"
	res, err := callerWith(env).identity.RegisterUser(t.Context(), connect.NewRequest(&identityv1.RegisterUserRequest{
		TenantId: tenant, Email: email, Password: "a long passphrase " + uuid.NewString(),
	}))
	require.NoError(t, err, "registration is public")
	m := member{tenant: tenant, user: res.Msg.GetUser().GetId(), email: email}
	own := as(env, env.Token(t, m.tenant, m.user))
	require.Eventually(t, func() bool {
		_, perr := own.profile.GetProfile(t.Context(), connect.NewRequest(&profilev1.GetProfileRequest{TenantId: m.tenant, UserId: m.user}))
		_, werr := own.wallet.GetWallet(t.Context(), connect.NewRequest(&walletv1.GetWalletRequest{TenantId: m.tenant, UserId: m.user}))
		_, berr := own.billing.GetCustomer(t.Context(), connect.NewRequest(&billingv1.GetCustomerRequest{TenantId: m.tenant, UserId: m.user}))
		return perr == nil && werr == nil && berr == nil
	}, 20*time.Second, 20*time.Millisecond, "the user's profile, wallet and customer appear and the user reads them")
	return m
}

// reads calls every read of a member's data and returns each call's error.
func (c caller) reads(t *testing.T, tenant, user, email string) map[string]error {
	t.Helper()
	ctx := t.Context()
	errs := map[string]error{}
	_, errs["GetUser"] = c.identity.GetUser(ctx, connect.NewRequest(&identityv1.GetUserRequest{TenantId: tenant, UserId: user}))
	_, errs["GetProfile"] = c.profile.GetProfile(ctx, connect.NewRequest(&profilev1.GetProfileRequest{TenantId: tenant, UserId: user}))
	_, errs["GetWallet"] = c.wallet.GetWallet(ctx, connect.NewRequest(&walletv1.GetWalletRequest{TenantId: tenant, UserId: user}))
	_, errs["ListTransactions"] = c.wallet.ListTransactions(ctx, connect.NewRequest(&walletv1.ListTransactionsRequest{TenantId: tenant, UserId: user}))
	_, errs["GetCustomer"] = c.billing.GetCustomer(ctx, connect.NewRequest(&billingv1.GetCustomerRequest{TenantId: tenant, UserId: user}))
	if email != "" {
		_, errs["FindCustomerByEmail"] = c.billing.FindCustomerByEmail(ctx, connect.NewRequest(&billingv1.FindCustomerByEmailRequest{TenantId: tenant, Email: email}))
	}
	return errs
}

// writes calls every write of a member's data and returns each call's
// error.
func (c caller) writes(t *testing.T, tenant, user string) map[string]error {
	t.Helper()
	ctx := t.Context()
	errs := map[string]error{}
	_, errs["ChangeEmail"] = c.identity.ChangeEmail(ctx, connect.NewRequest(&identityv1.ChangeEmailRequest{
		TenantId: tenant, UserId: user, CurrentPassword: "a guess", Email: "stolen" + uuid.NewString()[:6] + "@example.com",
	}))
	_, errs["UpdateProfile"] = c.profile.UpdateProfile(ctx, connect.NewRequest(&profilev1.UpdateProfileRequest{TenantId: tenant, UserId: user, DisplayName: new("Mallory")}))
	_, errs["Deposit"] = c.wallet.Deposit(ctx, connect.NewRequest(&walletv1.DepositRequest{TenantId: tenant, UserId: user, Currency: "EUR", Amount: 100, IdempotencyKey: uuid.NewString()}))
	_, errs["Withdraw"] = c.wallet.Withdraw(ctx, connect.NewRequest(&walletv1.WithdrawRequest{TenantId: tenant, UserId: user, Currency: "EUR", Amount: 100, IdempotencyKey: uuid.NewString()}))
	return errs
}

// codeOK stands for success in assertCodes.
const codeOK connect.Code = 0

func assertCodes(t *testing.T, errs map[string]error, want connect.Code, msg string) {
	t.Helper()
	for name, err := range errs {
		if want == codeOK {
			assert.NoError(t, err, "%s: %s", msg, name)
			continue
		}
		assert.Equal(t, want, connect.CodeOf(err), "%s: %s: %v", msg, name, err)
	}
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	env := servicestest.Start(t, "tenant", "identity", "risk", "profile", "wallet", "billing")
	tenantA, tenantB := env.NewTenant(t), env.NewTenant(t)
	alice, bob := registerMember(t, env, tenantA), registerMember(t, env, tenantB)
	carol := registerMember(t, env, tenantA) // alice's colleague

	// Bob reads and changes his own data...
	bobs := as(env, env.Token(t, bob.tenant, bob.user))
	errs := bobs.reads(t, bob.tenant, bob.user, "")
	assertCodes(t, errs, codeOK, "bob's own data")

	// ...but a token of tenant A, even an admin's, finds nothing of
	// tenant B: NotFound, never PermissionDenied, whether the request names
	// tenant B or tenant A with bob's id.
	for name, token := range map[string]string{
		"user of A":  env.Token(t, alice.tenant, alice.user),
		"admin of A": env.Token(t, alice.tenant, alice.user, auth.RoleAdmin),
	} {
		c := as(env, token)
		assertCodes(t, c.reads(t, bob.tenant, bob.user, bob.email), connect.CodeNotFound, name+" reads B's data naming tenant B")
		assertCodes(t, c.writes(t, bob.tenant, bob.user), connect.CodeNotFound, name+" writes B's data naming tenant B")
		reads := c.reads(t, alice.tenant, bob.user, "")
		delete(reads, "ListTransactions") // an empty page for a user the tenant does not have
		assertCodes(t, reads, connect.CodeNotFound, name+" reads B's user under tenant A")
	}

	// Within a tenant, a user without roles reads only their own data.
	carols := as(env, env.Token(t, carol.tenant, carol.user))
	assertCodes(t, carols.reads(t, alice.tenant, alice.user, ""), connect.CodeNotFound, "carol reads alice's data")
	writes := carols.writes(t, alice.tenant, alice.user)
	assert.Equal(t, connect.CodePermissionDenied, connect.CodeOf(writes["Deposit"]), "deposits are for admins and services")
	delete(writes, "Deposit")
	assertCodes(t, writes, connect.CodeNotFound, "carol writes alice's data")
	_, err := carols.wallet.Deposit(t.Context(), connect.NewRequest(&walletv1.DepositRequest{TenantId: carol.tenant, UserId: carol.user, Currency: "EUR", Amount: 100, IdempotencyKey: "self-1"}))
	assert.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err), "a user cannot credit their own wallet")
	_, err = carols.billing.FindCustomerByEmail(t.Context(), connect.NewRequest(&billingv1.FindCustomerByEmailRequest{TenantId: alice.tenant, Email: alice.email}))
	assert.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err), "finding customers by email is for admins")

	// An admin of the tenant may.
	admin := as(env, env.Token(t, alice.tenant, uuid.NewString(), auth.RoleAdmin))
	assertCodes(t, admin.reads(t, alice.tenant, alice.user, alice.email), codeOK, "an admin of A reads alice's data")
	dep, err := admin.wallet.Deposit(t.Context(), connect.NewRequest(&walletv1.DepositRequest{TenantId: alice.tenant, UserId: alice.user, Currency: "EUR", Amount: 250, IdempotencyKey: "admin-1"}))
	require.NoError(t, err)
	assert.Equal(t, int64(250), dep.Msg.GetTransaction().GetBalanceAfter())

	// The operator gives a tenant its first admin, and reads nothing.
	operator := as(env, env.OperatorToken)
	_, err = operator.identity.AssignRoles(t.Context(), connect.NewRequest(&identityv1.AssignRolesRequest{TenantId: alice.tenant, UserId: alice.user, Roles: []string{auth.RoleAdmin}}))
	require.NoError(t, err)
	_, err = operator.identity.GetUser(t.Context(), connect.NewRequest(&identityv1.GetUserRequest{TenantId: alice.tenant, UserId: alice.user}))
	assert.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err))
	_, err = carols.identity.AssignRoles(t.Context(), connect.NewRequest(&identityv1.AssignRolesRequest{TenantId: carol.tenant, UserId: carol.user, Roles: []string{auth.RoleAdmin}}))
	assert.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err), "a user cannot make themselves admin")

	// Nothing the refused writes attempted happened.
	w, err := bobs.wallet.GetWallet(t.Context(), connect.NewRequest(&walletv1.GetWalletRequest{TenantId: bob.tenant, UserId: bob.user}))
	require.NoError(t, err)
	assert.Empty(t, w.Msg.GetWallet().GetBalances())
	u, err := bobs.identity.GetUser(t.Context(), connect.NewRequest(&identityv1.GetUserRequest{TenantId: bob.tenant, UserId: bob.user}))
	require.NoError(t, err)
	assert.Equal(t, bob.email, u.Msg.GetUser().GetEmail())
}

func TestTokenAttacksAreUnauthenticated(t *testing.T) {
	t.Parallel()
	env := servicestest.Start(t, "wallet")
	s := env.Signer
	tenant, user := uuid.NewString(), uuid.NewString()
	claims := func(change func(map[string]any)) map[string]any {
		m := s.Map(authtest.Claims{Subject: user, TenantID: tenant})
		change(m)
		return m
	}
	valid := env.Token(t, tenant, user)
	parts := strings.Split(valid, ".")
	hs256 := authtest.Encode(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": s.KID}) + "." + parts[1]
	mac := hmac.New(sha256.New, s.Public())
	mac.Write([]byte(hs256))
	hs256 += "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	stranger := authtest.NewSigner(t, "stranger")

	tests := []struct {
		name, authorization, message string
	}{
		{"missing bearer", "", "missing bearer token"},
		{"basic scheme", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:admin")), "invalid token"},
		{"alg none", "Bearer " + authtest.Encode(t, map[string]any{"alg": "none", "typ": "JWT"}) + "." + parts[1] + ".", "invalid token"},
		{"HS256 signed with the public key", "Bearer " + hs256, "invalid token"},
		{"aud as an unexpected array", "Bearer " + s.Sign(t, s.Header(), claims(func(m map[string]any) { m["aud"] = []string{"authms", "other"} })), "invalid token"},
		{"expired", "Bearer " + s.Token(t, authtest.Claims{Subject: user, TenantID: tenant, IssuedAt: time.Now().Add(-11 * time.Minute)}), "invalid token"},
		{"nbf in the future", "Bearer " + s.Sign(t, s.Header(), claims(func(m map[string]any) { m["nbf"] = time.Now().Add(5 * time.Minute).Unix() })), "invalid token"},
		{"wrong iss", "Bearer " + s.Sign(t, s.Header(), claims(func(m map[string]any) { m["iss"] = "someone-else" })), "invalid token"},
		{"tampered payload", "Bearer " + parts[0] + "." + authtest.Encode(t, claims(func(m map[string]any) { m["tid"] = uuid.NewString() })) + "." + parts[2], "invalid token"},
		// Not the test key: the platform asks the session service's JWKS
		// (not running here) once, and refuses.
		{"unknown kid", "Bearer " + stranger.Token(t, authtest.Claims{Subject: user, TenantID: tenant}), "invalid token"},
		{"garbage", "Bearer not.a.jwt", "invalid token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := []connect.ClientOption{}
			if tt.authorization != "" {
				opts = append(opts, connect.WithInterceptors(header("Authorization", tt.authorization)))
			}
			c := walletv1connect.NewWalletServiceClient(env.HTTP, env.URL, opts...)
			_, err := c.GetWallet(t.Context(), connect.NewRequest(&walletv1.GetWalletRequest{TenantId: tenant, UserId: user}))
			require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "%v", err)
			var ce *connect.Error
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tt.message, ce.Message(), "the error never says which check failed")
		})
	}

	t.Run("the valid token", func(t *testing.T) {
		t.Parallel()
		_, err := as(env, valid).wallet.GetWallet(t.Context(), connect.NewRequest(&walletv1.GetWalletRequest{TenantId: tenant, UserId: user}))
		assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "authenticated: the wallet does not exist")
	})
	t.Run("no validation feedback without a credential", func(t *testing.T) {
		t.Parallel()
		c := walletv1connect.NewWalletServiceClient(env.HTTP, env.URL)
		_, err := c.GetWallet(t.Context(), connect.NewRequest(&walletv1.GetWalletRequest{TenantId: "not-a-uuid"}))
		assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
	})
}

// header is a client interceptor that sets one request header.
func header(name, value string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set(name, value)
			return next(ctx, req)
		}
	}
}

func TestOperatorTokenOpensOnlyOperatorProcedures(t *testing.T) {
	t.Parallel()
	env := servicestest.Start(t, "tenant", "wallet", "risk")
	ctx := t.Context()
	operator := as(env, env.OperatorToken)

	created, err := operator.tenant.CreateTenant(ctx, connect.NewRequest(&tenantv1.CreateTenantRequest{Slug: "acme-" + uuid.NewString()[:6], DisplayName: "Acme"}))
	require.NoError(t, err, "the operator creates tenants")
	tenant := created.Msg.GetTenant().GetId()
	_, err = operator.tenant.ListTenants(ctx, connect.NewRequest(&tenantv1.ListTenantsRequest{}))
	require.NoError(t, err, "and lists them")
	_, err = operator.dlq.ListDeadLetters(ctx, connect.NewRequest(&adminv1.ListDeadLettersRequest{Service: "wallet"}))
	require.NoError(t, err, "and reads dead letters")

	// Nothing else: tenant data is its users' and admins'.
	denied := map[string]error{}
	_, denied["GetTenant"] = operator.tenant.GetTenant(ctx, connect.NewRequest(&tenantv1.GetTenantRequest{TenantId: tenant}))
	_, denied["UpdateTenant"] = operator.tenant.UpdateTenant(ctx, connect.NewRequest(&tenantv1.UpdateTenantRequest{TenantId: tenant, DisplayName: new("x")}))
	_, denied["GetWallet"] = operator.wallet.GetWallet(ctx, connect.NewRequest(&walletv1.GetWalletRequest{TenantId: tenant, UserId: uuid.NewString()}))
	_, denied["CheckLogin"] = operator.risk.CheckLogin(ctx, connect.NewRequest(&riskv1.CheckLoginRequest{TenantId: tenant, Email: "a@example.com", Ip: "192.0.2.1"}))
	assertCodes(t, denied, connect.CodePermissionDenied, "the operator token")

	// A wrong operator token is just an invalid token.
	_, err = as(env, env.OperatorToken+"x").tenant.ListTenants(ctx, connect.NewRequest(&tenantv1.ListTenantsRequest{}))
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
	_, err = callerWith(env).dlq.ListDeadLetters(ctx, connect.NewRequest(&adminv1.ListDeadLettersRequest{Service: "wallet"}))
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "no token")

	// Tenant admins and services do not get operator procedures.
	for name, token := range map[string]string{
		"tenant admin": env.Token(t, tenant, uuid.NewString(), auth.RoleAdmin),
		"service":      env.ServiceToken(t, "session"),
	} {
		c := as(env, token)
		errs := map[string]error{}
		_, errs["CreateTenant"] = c.tenant.CreateTenant(ctx, connect.NewRequest(&tenantv1.CreateTenantRequest{Slug: "evil-" + uuid.NewString()[:6], DisplayName: "Evil"}))
		_, errs["ListTenants"] = c.tenant.ListTenants(ctx, connect.NewRequest(&tenantv1.ListTenantsRequest{}))
		_, errs["PurgeDeadLetters"] = c.dlq.PurgeDeadLetters(ctx, connect.NewRequest(&adminv1.PurgeDeadLettersRequest{Service: "wallet"}))
		assertCodes(t, errs, connect.CodePermissionDenied, name)
	}
	// A tenant admin reads the dead letters of their tenant only, and
	// must say so: a request without a tenant is another tenant's.
	tenantAdmin := as(env, env.Token(t, tenant, uuid.NewString(), auth.RoleAdmin))
	_, err = tenantAdmin.dlq.ListDeadLetters(ctx, connect.NewRequest(&adminv1.ListDeadLettersRequest{Service: "wallet"}))
	assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "a tenant admin without tenant_id: %v", err)
	_, err = tenantAdmin.dlq.ListDeadLetters(ctx, connect.NewRequest(&adminv1.ListDeadLettersRequest{Service: "wallet", TenantId: tenant}))
	require.NoError(t, err, "a tenant admin lists their tenant's dead letters")
	_, err = as(env, env.ServiceToken(t, "session")).dlq.ListDeadLetters(ctx, connect.NewRequest(&adminv1.ListDeadLettersRequest{Service: "wallet", TenantId: tenant}))
	assert.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err), "a service token: %v", err)

	// The tenant's admin manages it; its users read it.
	admin := as(env, env.Token(t, tenant, uuid.NewString(), auth.RoleAdmin))
	_, err = admin.tenant.UpdateTenant(ctx, connect.NewRequest(&tenantv1.UpdateTenantRequest{TenantId: tenant, DisplayName: new("Acme Inc.")}))
	require.NoError(t, err)
	user := as(env, env.Token(t, tenant, uuid.NewString()))
	got, err := user.tenant.GetTenantBySlug(ctx, connect.NewRequest(&tenantv1.GetTenantBySlugRequest{Slug: created.Msg.GetTenant().GetSlug()}))
	require.NoError(t, err)
	assert.Equal(t, "Acme Inc.", got.Msg.GetTenant().GetDisplayName())
	_, err = user.tenant.UpdateTenant(ctx, connect.NewRequest(&tenantv1.UpdateTenantRequest{TenantId: tenant, DisplayName: new("x")}))
	assert.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err), "a user without the admin role")
	_, err = as(env, env.Token(t, uuid.NewString(), uuid.NewString())).tenant.GetTenantBySlug(ctx,
		connect.NewRequest(&tenantv1.GetTenantBySlugRequest{Slug: created.Msg.GetTenant().GetSlug()}))
	assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "another tenant's slug is not confirmed")

	// Services call what they are declared for, and nothing else.
	svc := as(env, env.ServiceToken(t, "session"))
	_, err = svc.risk.CheckLogin(ctx, connect.NewRequest(&riskv1.CheckLoginRequest{TenantId: tenant, Email: "a@example.com", Ip: "192.0.2.1"}))
	require.NoError(t, err)
	_, err = svc.wallet.GetWallet(ctx, connect.NewRequest(&walletv1.GetWalletRequest{TenantId: tenant, UserId: uuid.NewString()}))
	assert.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err))
	_, err = admin.risk.CheckLogin(ctx, connect.NewRequest(&riskv1.CheckLoginRequest{TenantId: tenant, Email: "a@example.com", Ip: "192.0.2.1"}))
	assert.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err), "users do not call service procedures")
}

func TestServicesCallOnlyTheProceduresThatNameThem(t *testing.T) {
	t.Parallel()
	env := servicestest.Start(t, "tenant", "identity", "risk")
	ctx := t.Context()
	tenant := env.NewTenant(t)
	email := "u" + uuid.NewString()[:8] + "@example.com"
	registered, err := callerWith(env).identity.RegisterUser(ctx, connect.NewRequest(&identityv1.RegisterUserRequest{
		TenantId: tenant, Email: email, Password: "a long passphrase " + uuid.NewString(),
	}))
	require.NoError(t, err)
	user := member{tenant: tenant, user: registered.Msg.GetUser().GetId(), email: email}
	session, identity, wallet := as(env, env.ServiceToken(t, "session")), as(env, env.ServiceToken(t, "identity")), as(env, env.ServiceToken(t, "wallet"))
	authenticate := func(c caller) error {
		_, err := c.identity.AuthenticateUser(ctx, connect.NewRequest(&identityv1.AuthenticateUserRequest{TenantId: tenant, Email: user.email, Password: "a wrong password"}))
		return err
	}
	getUser := func(c caller) error {
		_, err := c.identity.GetUser(ctx, connect.NewRequest(&identityv1.GetUserRequest{TenantId: tenant, UserId: user.user}))
		return err
	}
	reset := func(c caller) error {
		_, err := c.risk.AttemptPasswordReset(ctx, connect.NewRequest(&riskv1.AttemptPasswordResetRequest{TenantId: tenant, Ip: "192.0.2.1"}))
		return err
	}
	registration := func(c caller) error {
		_, err := c.risk.AttemptRegistration(ctx, connect.NewRequest(&riskv1.AttemptRegistrationRequest{TenantId: tenant, Ip: "192.0.2.1"}))
		return err
	}
	attempt := func(c caller) error {
		_, err := c.risk.AttemptLogin(ctx, connect.NewRequest(&riskv1.AttemptLoginRequest{TenantId: tenant, Email: user.email, Ip: "192.0.2.1"}))
		return err
	}
	unlock := func(c caller) error {
		_, err := c.risk.UnlockAccount(ctx, connect.NewRequest(&riskv1.UnlockAccountRequest{TenantId: tenant, Email: user.email}))
		return err
	}

	// Each procedure's declared callers get in.
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(authenticate(session)), "session checks passwords: a wrong one is its verdict")
	assertCodes(t, map[string]error{
		"session GetUser":               getUser(session),
		"session AttemptLogin":          attempt(session),
		"identity AttemptLogin":         attempt(identity),
		"identity AttemptPasswordReset": reset(identity),
		"identity AttemptRegistration":  registration(identity),
	}, codeOK, "a declared caller")

	// Every other service's token is refused, however valid.
	assertCodes(t, map[string]error{
		"identity AuthenticateUser":    authenticate(identity), // a password oracle without session's throttling
		"identity GetUser":             getUser(identity),
		"wallet AuthenticateUser":      authenticate(wallet),
		"wallet GetUser":               getUser(wallet),
		"wallet AttemptLogin":          attempt(wallet),
		"session AttemptPasswordReset": reset(session),
		"session AttemptRegistration":  registration(session),
		"wallet AttemptRegistration":   registration(wallet),
		"session UnlockAccount":        unlock(session),
		"identity UnlockAccount":       unlock(identity),
	}, connect.CodePermissionDenied, "a service the procedure does not name")

	// Session's keys sign its own service tokens, not another service's:
	// a token of identity they sign is no token at all.
	forged := as(env, env.Signer.ServiceToken(t, "identity"))
	assertCodes(t, map[string]error{
		"AttemptPasswordReset": reset(forged),
		"AttemptRegistration":  registration(forged),
		"AttemptLogin":         attempt(forged),
	}, connect.CodeUnauthenticated, "identity's token signed with session's key")
}

func TestRevokedSessionTokenFails(t *testing.T) {
	t.Parallel()
	env := servicestest.Start(t, "wallet")
	ctx := t.Context()
	tenant, user := uuid.NewString(), uuid.NewString()
	revoked, kept := uuid.NewString(), uuid.NewString()
	token := func(sid string) caller {
		return as(env, env.Signer.Token(t, authtest.Claims{Subject: user, TenantID: tenant, SessionID: sid}))
	}
	get := func(c caller) error {
		_, err := c.wallet.GetWallet(ctx, connect.NewRequest(&walletv1.GetWalletRequest{TenantId: tenant, UserId: user}))
		return err
	}
	require.Equal(t, connect.CodeNotFound, connect.CodeOf(get(token(revoked))), "authenticated before the revocation")

	// The SESSION stream does not exist yet (session starts later); once it
	// does, a revocation reaches the list.
	require.NoError(t, events.EnsureStreams(ctx, env.JS, "session", events.StreamConfig{Replicas: 1}))
	ev := events.Event{
		ID: uuid.New(), Service: "session", AggregateType: "session", AggregateID: revoked, Name: "revoked",
		TenantID: tenant, Version: 2, Time: time.Now(), MessageName: "authms.session.v1.SessionRevoked",
	}
	msg := nats.NewMsg(ev.Subject())
	for k, v := range ev.Headers() {
		msg.Header.Set(k, v)
	}
	_, err := env.JS.PublishMsg(ctx, msg)
	require.NoError(t, err)

	require.Eventually(t, func() bool {
		return connect.CodeOf(get(token(revoked))) == connect.CodeUnauthenticated
	}, 15*time.Second, 50*time.Millisecond, "the revoked session's token fails on its next call")
	assert.Equal(t, connect.CodeNotFound, connect.CodeOf(get(token(kept))), "other sessions are unaffected")

	res, err := env.HTTP.Get(env.URL + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	assert.Contains(t, string(body), "authms_auth_revocations_synced 1")
	assert.Contains(t, string(body), "authms_auth_revoked_sessions 1")
}

func TestOpenEndpointsNeedNoToken(t *testing.T) {
	t.Parallel()
	env := servicestest.Start(t, "wallet")
	health := grpchealth.NewClient(env.HTTP, env.URL)
	res, err := health.Check(t.Context(), &grpchealth.CheckRequest{Service: "wallet"})
	require.NoError(t, err)
	assert.Equal(t, grpchealth.StatusServing, res.Status)
	for _, path := range []string{"/metrics", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"} {
		r, err := env.HTTP.Get(env.URL + path)
		require.NoError(t, err)
		require.NoError(t, r.Body.Close())
		assert.NotEqual(t, http.StatusUnauthorized, r.StatusCode, path)
	}
}
