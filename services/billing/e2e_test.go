package billing_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	billingv1 "github.com/authms/authms/schemas/gen/authms/billing/v1"
	"github.com/authms/authms/schemas/gen/authms/billing/v1/billingv1connect"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	profilev1 "github.com/authms/authms/schemas/gen/authms/profile/v1"
	"github.com/authms/authms/schemas/gen/authms/profile/v1/profilev1connect"
	walletv1 "github.com/authms/authms/schemas/gen/authms/wallet/v1"
	"github.com/authms/authms/schemas/gen/authms/wallet/v1/walletv1connect"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/servicestest"
)

// Polling bounds for events to flow identity -> outbox -> JetStream ->
// projectors; they bound a wait, they assert no speed.
const (
	waitFor = 15 * time.Second
	tick    = 20 * time.Millisecond
)

// identityCaller registers users and changes emails over one wire format.
type identityCaller interface {
	register(t *testing.T, tenantID uuid.UUID, email, password string) *identityv1.User
	changeEmail(t *testing.T, tenantID uuid.UUID, userID, password, email string) *identityv1.User
}

// connectCaller uses the generated Connect client.
type connectCaller struct {
	c identityv1connect.IdentityServiceClient
}

func (c connectCaller) register(t *testing.T, tenantID uuid.UUID, email, password string) *identityv1.User {
	t.Helper()
	res, err := c.c.RegisterUser(t.Context(), connect.NewRequest(&identityv1.RegisterUserRequest{
		TenantId: tenantID.String(), Email: email, Password: password,
	}))
	require.NoError(t, err)
	return res.Msg.GetUser()
}

func (c connectCaller) changeEmail(t *testing.T, tenantID uuid.UUID, userID, password, email string) *identityv1.User {
	t.Helper()
	res, err := c.c.ChangeEmail(t.Context(), connect.NewRequest(&identityv1.ChangeEmailRequest{
		TenantId: tenantID.String(), UserId: userID, CurrentPassword: password, Email: email,
	}))
	require.NoError(t, err)
	return res.Msg.GetUser()
}

// jsonCaller POSTs plain JSON, as curl does in the README.
type jsonCaller struct {
	url  string
	http *http.Client
	env  *servicestest.Env
}

func (c jsonCaller) post(t *testing.T, method, token, body string, out proto.Message) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
		c.url+"/"+identityv1connect.IdentityServiceName+"/"+method, bytes.NewBufferString(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.http.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", method, b)
	require.NoError(t, protojson.Unmarshal(b, out), "%s", b)
}

func (c jsonCaller) register(t *testing.T, tenantID uuid.UUID, email, password string) *identityv1.User {
	t.Helper()
	var res identityv1.RegisterUserResponse
	c.post(t, "RegisterUser", "", `{"tenant_id":"`+tenantID.String()+`","email":"`+email+`","password":"`+password+`"}`, &res)
	return res.GetUser()
}

func (c jsonCaller) changeEmail(t *testing.T, tenantID uuid.UUID, userID, password, email string) *identityv1.User {
	t.Helper()
	var res identityv1.ChangeEmailResponse
	c.post(t, "ChangeEmail", c.env.Token(t, tenantID.String(), userID),
		`{"tenant_id":"`+tenantID.String()+`","user_id":"`+userID+`","current_password":"`+password+`","email":"`+email+`"}`, &res)
	return res.GetUser()
}

// TestRegistrationReachesEveryService walks the skeleton end to end through
// the real HTTP server: a registration in identity becomes a default profile,
// an empty wallet and a billing cache row, and an email change reaches
// billing's cache.
func TestRegistrationReachesEveryService(t *testing.T) {
	t.Parallel()
	env := servicestest.Start(t, "tenant", "identity", "risk", "profile", "wallet", "billing")
	profiles := profilev1connect.NewProfileServiceClient(env.HTTP, env.URL, env.Impersonate())
	wallets := walletv1connect.NewWalletServiceClient(env.HTTP, env.URL, env.Impersonate())
	billing := billingv1connect.NewBillingServiceClient(env.HTTP, env.URL, env.Impersonate())
	// Finding customers by email is for tenant admins.
	billingAdmin := billingv1connect.NewBillingServiceClient(env.HTTP, env.URL, env.Impersonate(auth.RoleAdmin))

	callers := []struct {
		name     string
		identity identityCaller
	}{
		{name: "connect client", identity: connectCaller{c: identityv1connect.NewIdentityServiceClient(env.HTTP, env.URL, env.Impersonate())}},
		{name: "raw JSON", identity: jsonCaller{url: env.URL, http: env.HTTP, env: env}},
	}
	for _, tt := range callers {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tenantID := uuid.MustParse(env.NewTenant(t))
			local := "user" + uuid.NewString()[:8]
			email := local + "@example.com"

			// When a user registers...
			password := "a long passphrase " + uuid.NewString()
			user := tt.identity.register(t, tenantID, email, password)
			require.NotEmpty(t, user.GetId())
			assert.Equal(t, email, user.GetEmail())
			userID := user.GetId()

			// ...the profile service creates the default profile...
			require.Eventually(t, func() bool {
				res, err := profiles.GetProfile(t.Context(), connect.NewRequest(&profilev1.GetProfileRequest{
					TenantId: tenantID.String(), UserId: userID,
				}))
				return err == nil && res.Msg.GetProfile().GetDisplayName() == local
			}, waitFor, tick, "default profile")

			// ...the wallet service opens an empty wallet...
			require.Eventually(t, func() bool {
				res, err := wallets.GetWallet(t.Context(), connect.NewRequest(&walletv1.GetWalletRequest{
					TenantId: tenantID.String(), UserId: userID,
				}))
				if err != nil {
					return false
				}
				for _, b := range res.Msg.GetWallet().GetBalances() {
					if b.GetAmount() != 0 {
						return false
					}
				}
				return true
			}, waitFor, tick, "empty wallet")

			// ...and billing caches the user, found by id and by email.
			require.Eventually(t, func() bool {
				res, err := billing.GetCustomer(t.Context(), connect.NewRequest(&billingv1.GetCustomerRequest{
					TenantId: tenantID.String(), UserId: userID,
				}))
				return err == nil && res.Msg.GetCustomer().GetEmail() == email
			}, waitFor, tick, "billing cache")
			found := findByEmail(t, billingAdmin, tenantID, email)
			require.NotNil(t, found)
			assert.Equal(t, userID, found.GetUserId())

			// When the user changes their email, billing's cache follows.
			newEmail := "new." + local + "@example.org"
			changed := tt.identity.changeEmail(t, tenantID, userID, password, newEmail)
			assert.Equal(t, newEmail, changed.GetEmail())
			require.Eventually(t, func() bool {
				c := findByEmail(t, billingAdmin, tenantID, newEmail)
				return c != nil && c.GetUserId() == userID && c.GetVersion() == changed.GetVersion()
			}, waitFor, tick, "email change in billing")
			assert.Nil(t, findByEmail(t, billingAdmin, tenantID, email), "the old email no longer finds the user")

			var stored []byte
			require.NoError(t, env.Pool("billing").QueryRow(t.Context(),
				"SELECT email_ciphertext FROM user_profiles WHERE user_id = $1", userID).Scan(&stored))
			assert.NotContains(t, string(stored), newEmail, "the cache stores no plaintext email")
		})
	}
}

// findByEmail returns the customer with email, or nil when billing answers
// NotFound.
func findByEmail(t *testing.T, c billingv1connect.BillingServiceClient, tenantID uuid.UUID, email string) *billingv1.Customer {
	t.Helper()
	res, err := c.FindCustomerByEmail(t.Context(), connect.NewRequest(&billingv1.FindCustomerByEmailRequest{
		TenantId: tenantID.String(), Email: email,
	}))
	if connect.CodeOf(err) == connect.CodeNotFound {
		return nil
	}
	require.NoError(t, err)
	return res.Msg.GetCustomer()
}
