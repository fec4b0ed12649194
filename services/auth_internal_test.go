package services

import (
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/schemas/gen/authms/wallet/v1/walletv1connect"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/auth/authtest"
	"github.com/authms/authms/services/internal/secrets"
)

func TestEveryProcedureNeedsAPolicy(t *testing.T) {
	t.Parallel()
	v, err := auth.NewVerifier(auth.VerifierConfig{Keys: authtest.NewSigner(t, "k").Keys()})
	require.NoError(t, err)
	authn, err := auth.New(auth.Config{Verifier: v})
	require.NoError(t, err)
	require.NoError(t, authn.Declare(auth.Policies{
		walletv1connect.WalletServiceGetWalletProcedure: auth.Owner,
		walletv1connect.WalletServiceDepositProcedure:   auth.Owner,
	}))
	err = checkPolicies(authn, []string{walletv1connect.WalletServiceName})
	require.Error(t, err, "a procedure without a policy stops the platform from starting")
	assert.Contains(t, err.Error(), walletv1connect.WalletServiceWithdrawProcedure)
	assert.Contains(t, err.Error(), walletv1connect.WalletServiceListTransactionsProcedure)
	assert.NotContains(t, err.Error(), walletv1connect.WalletServiceGetWalletProcedure)

	require.Error(t, authn.Declare(auth.Policies{walletv1connect.WalletServiceGetWalletProcedure: auth.Public}), "declared twice")
	p, _ := authn.Policy(walletv1connect.WalletServiceGetWalletProcedure)
	assert.Equal(t, auth.Owner.String(), p.String(), "the first declaration stands")
}

func TestOnlyServicesThatCallPeersGetAServiceKey(t *testing.T) {
	t.Parallel()
	signers, keys, err := serviceSigners(t.Context(), Config{Secrets: secrets.NewMemory()}, definitions(Config{}))
	require.NoError(t, err)
	assert.Equal(t, []string{"identity"}, slices.Collect(maps.Keys(signers)),
		"identity calls risk with its own service token; session signs its own; the others call nobody")
	require.Len(t, keys, 1)
	kid, key := signers["identity"].Key()
	assert.Equal(t, key, keys[kid])
}
