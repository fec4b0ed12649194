package services_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	billingv1 "github.com/authms/authms/schemas/gen/authms/billing/v1"
	"github.com/authms/authms/schemas/gen/authms/billing/v1/billingv1connect"
	commonv1 "github.com/authms/authms/schemas/gen/authms/common/v1"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	profilev1 "github.com/authms/authms/schemas/gen/authms/profile/v1"
	"github.com/authms/authms/schemas/gen/authms/profile/v1/profilev1connect"
	walletv1 "github.com/authms/authms/schemas/gen/authms/wallet/v1"
	"github.com/authms/authms/schemas/gen/authms/wallet/v1/walletv1connect"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/servicestest"
)

// rywClients are the APIs the read-your-writes tests call.
type rywClients struct {
	identity identityv1connect.IdentityServiceClient
	profile  profilev1connect.ProfileServiceClient
	wallet   walletv1connect.WalletServiceClient
	billing  billingv1connect.BillingServiceClient
	env      *servicestest.Env
}

func startRYW(t *testing.T, opts servicestest.Options) rywClients {
	t.Helper()
	env := servicestest.StartWith(t, opts, "tenant", "identity", "risk", "profile", "wallet", "billing")
	return rywClients{
		identity: identityv1connect.NewIdentityServiceClient(env.HTTP, env.URL, env.Impersonate()),
		profile:  profilev1connect.NewProfileServiceClient(env.HTTP, env.URL, env.Impersonate()),
		wallet:   walletv1connect.NewWalletServiceClient(env.HTTP, env.URL, env.Impersonate()),
		billing:  billingv1connect.NewBillingServiceClient(env.HTTP, env.URL, env.Impersonate(auth.RoleAdmin)), // admins find customers by email
		env:      env,
	}
}

func (c rywClients) register(t *testing.T, tenant, email string) *identityv1.RegisterUserResponse {
	t.Helper()
	res, err := c.identity.RegisterUser(t.Context(), connect.NewRequest(&identityv1.RegisterUserRequest{
		TenantId: tenant, Email: email, Password: faultPassword,
	}))
	require.NoError(t, err)
	return res.Msg
}

// fieldViolations lists the field paths of an InvalidArgument error's
// buf.validate.Violations detail, dotted.
func fieldViolations(t *testing.T, err error) []string {
	t.Helper()
	var ce *connect.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, connect.CodeInvalidArgument, ce.Code(), "%v", err)
	var fields []string
	for _, d := range ce.Details() {
		v, derr := d.Value()
		require.NoError(t, derr)
		vs, ok := v.(*validatepb.Violations)
		if !ok {
			continue
		}
		for _, viol := range vs.GetViolations() {
			var path []string
			for _, el := range viol.GetField().GetElements() {
				path = append(path, el.GetFieldName())
			}
			fields = append(fields, strings.Join(path, "."))
		}
	}
	return fields
}

// TestReadYourWrites: a write's position makes reads on other services
// wait until they reflect it, with no polling by the client.
func TestReadYourWrites(t *testing.T) {
	t.Parallel()
	c := startRYW(t, servicestest.Options{})
	tenant := c.env.NewTenant(t)

	reg := c.register(t, tenant, "ada@example.com")
	user := reg.GetUser()
	require.NotNil(t, reg.GetPosition(), "the relay publishes within the wait")
	assert.Equal(t, "IDENTITY", reg.GetPosition().GetStream())
	assert.Positive(t, reg.GetPosition().GetSequence())

	// Each of these would be NOT_FOUND until the projector caught up; with
	// min_position they answer once it has, on the first call.
	customer, err := c.billing.GetCustomer(t.Context(), connect.NewRequest(&billingv1.GetCustomerRequest{
		TenantId: tenant, UserId: user.GetId(), MinPosition: reg.GetPosition(),
	}))
	require.NoError(t, err)
	assert.Equal(t, "ada@example.com", customer.Msg.GetCustomer().GetEmail())

	profile, err := c.profile.GetProfile(t.Context(), connect.NewRequest(&profilev1.GetProfileRequest{
		TenantId: tenant, UserId: user.GetId(), MinPosition: reg.GetPosition(),
	}))
	require.NoError(t, err)
	assert.Equal(t, user.GetId(), profile.Msg.GetProfile().GetUserId())

	wallet, err := c.wallet.GetWallet(t.Context(), connect.NewRequest(&walletv1.GetWalletRequest{
		TenantId: tenant, UserId: user.GetId(), MinPosition: reg.GetPosition(),
	}))
	require.NoError(t, err)
	assert.Equal(t, user.GetId(), wallet.Msg.GetWallet().GetUserId())

	t.Run("a changed email", func(t *testing.T) {
		res, err := c.identity.ChangeEmail(t.Context(), connect.NewRequest(&identityv1.ChangeEmailRequest{
			TenantId: tenant, UserId: user.GetId(), CurrentPassword: faultPassword, Email: "ada.lovelace@example.com",
		}))
		require.NoError(t, err)
		pos := res.Msg.GetPosition()
		require.NotNil(t, pos)
		assert.Equal(t, "IDENTITY", pos.GetStream())
		assert.Greater(t, pos.GetSequence(), reg.GetPosition().GetSequence())
		found, err := c.billing.FindCustomerByEmail(t.Context(), connect.NewRequest(&billingv1.FindCustomerByEmailRequest{
			TenantId: tenant, Email: "ada.lovelace@example.com", MinPosition: pos,
		}))
		require.NoError(t, err)
		assert.Equal(t, user.GetId(), found.Msg.GetCustomer().GetUserId())
		assert.Equal(t, int64(2), found.Msg.GetCustomer().GetVersion())

		// The wallet projector takes only identity.user.created: an event it
		// filters out counts as applied once it has nothing pending.
		_, err = c.wallet.GetWallet(t.Context(), connect.NewRequest(&walletv1.GetWalletRequest{
			TenantId: tenant, UserId: user.GetId(), MinPosition: pos,
		}))
		require.NoError(t, err)
	})

	t.Run("a deposit", func(t *testing.T) {
		dep := &walletv1.DepositRequest{TenantId: tenant, UserId: user.GetId(), Currency: "EUR", Amount: 2500, IdempotencyKey: "dep-1"}
		res, err := c.wallet.Deposit(t.Context(), connect.NewRequest(dep))
		require.NoError(t, err)
		pos := res.Msg.GetPosition()
		require.NotNil(t, pos)
		assert.Equal(t, "WALLET", pos.GetStream())
		assert.Positive(t, pos.GetSequence())

		again, err := c.wallet.Deposit(t.Context(), connect.NewRequest(dep))
		require.NoError(t, err)
		assert.Equal(t, res.Msg.GetTransaction().GetId(), again.Msg.GetTransaction().GetId())
		assert.Equal(t, pos.GetSequence(), again.Msg.GetPosition().GetSequence(),
			"a repeated key reports the wallet's newest event, the original deposit's")

		// The wallet's own stream: its reads always reflect its writes.
		got, err := c.wallet.GetWallet(t.Context(), connect.NewRequest(&walletv1.GetWalletRequest{
			TenantId: tenant, UserId: user.GetId(), MinPosition: pos,
		}))
		require.NoError(t, err)
		require.Len(t, got.Msg.GetWallet().GetBalances(), 1)
		assert.Equal(t, int64(2500), got.Msg.GetWallet().GetBalances()[0].GetAmount())
	})

	t.Run("a profile update", func(t *testing.T) {
		name := "Ada"
		res, err := c.profile.UpdateProfile(t.Context(), connect.NewRequest(&profilev1.UpdateProfileRequest{
			TenantId: tenant, UserId: user.GetId(), DisplayName: &name,
		}))
		require.NoError(t, err)
		assert.Equal(t, "PROFILE", res.Msg.GetPosition().GetStream())
		assert.Positive(t, res.Msg.GetPosition().GetSequence())
	})
}

// TestReadYourWritesUnavailable: a position the projector has not applied
// when the wait ends is UNAVAILABLE, saying what to do.
func TestReadYourWritesUnavailable(t *testing.T) {
	t.Parallel()
	c := startRYW(t, servicestest.Options{MinPositionTimeout: 200 * time.Millisecond})
	tenant := c.env.NewTenant(t)
	// billing's and wallet's projectors stop taking identity's events, so
	// the next registration's position stays unapplied.
	for _, durable := range []string{"billing_user_profiles", "wallet_wallets"} {
		_, err := c.env.JS.PauseConsumer(t.Context(), "IDENTITY", durable, time.Now().Add(time.Hour))
		require.NoError(t, err, durable)
	}
	res := c.register(t, tenant, "grace@example.com")
	pos := res.GetPosition()
	require.NotNil(t, pos)

	_, err := c.billing.GetCustomer(t.Context(), connect.NewRequest(&billingv1.GetCustomerRequest{
		TenantId: tenant, UserId: res.GetUser().GetId(), MinPosition: pos,
	}))
	require.Equal(t, connect.CodeUnavailable, connect.CodeOf(err), "%v", err)
	var ce *connect.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, fmt.Sprintf("billing has not yet applied IDENTITY sequence %d; retry", pos.GetSequence()), ce.Message())

	_, err = c.wallet.GetWallet(t.Context(), connect.NewRequest(&walletv1.GetWalletRequest{
		TenantId: tenant, UserId: res.GetUser().GetId(), MinPosition: pos,
	}))
	require.Equal(t, connect.CodeUnavailable, connect.CodeOf(err), "%v", err)
	assert.Contains(t, err.Error(), "wallet has not yet applied IDENTITY sequence")
}

// TestReadYourWritesInvalidPositions: positions no wait can satisfy, or
// malformed, are INVALID_ARGUMENT on min_position's fields.
func TestReadYourWritesInvalidPositions(t *testing.T) {
	t.Parallel()
	c := startRYW(t, servicestest.Options{})
	tenant, user := uuid.NewString(), uuid.NewString()
	tests := []struct {
		name  string
		pos   *commonv1.Position
		field string
	}{
		{name: "a stream billing does not project", pos: &commonv1.Position{Stream: "WALLET", Sequence: 1}, field: "min_position.stream"},
		{name: "a lower-case stream", pos: &commonv1.Position{Stream: "identity", Sequence: 1}, field: "min_position.stream"},
		{name: "no stream", pos: &commonv1.Position{Sequence: 1}, field: "min_position.stream"},
		{name: "sequence 0", pos: &commonv1.Position{Stream: "IDENTITY"}, field: "min_position.sequence"},
		{name: "a sequence the stream does not hold", pos: &commonv1.Position{Stream: "IDENTITY", Sequence: 1_000_000}, field: "min_position.sequence"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.billing.GetCustomer(t.Context(), connect.NewRequest(&billingv1.GetCustomerRequest{
				TenantId: tenant, UserId: user, MinPosition: tt.pos,
			}))
			assert.Contains(t, fieldViolations(t, err), tt.field)
		})
	}
	t.Run("the message names the stream", func(t *testing.T) {
		t.Parallel()
		_, err := c.billing.FindCustomerByEmail(t.Context(), connect.NewRequest(&billingv1.FindCustomerByEmailRequest{
			TenantId: tenant, Email: "x@example.com", MinPosition: &commonv1.Position{Stream: "WALLET", Sequence: 7},
		}))
		require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
		assert.Contains(t, err.Error(), "billing does not project the WALLET stream")
	})
}
