package auth_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/auth/authtest"
)

// serviceSigner returns a signer of service with a random seed, and an
// authtest signer holding the same key, to forge tokens with it.
func serviceSigner(t *testing.T, service string, now func() time.Time) (*auth.ServiceSigner, *authtest.Signer) {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	_, err := rand.Read(seed)
	require.NoError(t, err)
	s, err := auth.NewServiceSigner(auth.ServiceSignerConfig{Service: service, Seed: seed, Now: now})
	require.NoError(t, err)
	kid, _ := s.Key()
	forger := authtest.NewSigner(t, kid)
	forger.Private = ed25519.NewKeyFromSeed(seed)
	return s, forger
}

func TestServiceTokensVerifyOnlyAsTheirService(t *testing.T) {
	t.Parallel()
	now := time.Now()
	clock := func() time.Time { return now }
	identity, forger := serviceSigner(t, "identity", clock)
	kid, key := identity.Key()
	v, err := auth.NewVerifier(auth.VerifierConfig{Keys: auth.StaticKeys{}, ServiceKeys: auth.ServiceKeys{kid: key}, Now: clock})
	require.NoError(t, err)

	token, err := identity.Token(t.Context())
	require.NoError(t, err)
	p, err := v.Verify(t.Context(), token)
	require.NoError(t, err)
	assert.Equal(t, auth.Principal{Subject: "service:identity", Roles: []string{auth.RoleService}}, p)
	assert.True(t, p.IsService())

	// Each forgery is a well-formed token: what refuses it is the key
	// signing for another subject than its service's.
	for name, forged := range map[string]string{
		"another service":                 forger.ServiceToken(t, "session"),
		"a user":                          forger.UserToken(t, uuid.NewString(), uuid.NewString(), auth.RoleAdmin),
		"a service whose name extends it": forger.ServiceToken(t, "identity-admin"),
	} {
		_, err := v.Verify(t.Context(), forged)
		require.ErrorIs(t, err, auth.ErrInvalidToken, "the identity key signed %s", name)
		assert.ErrorContains(t, err, "the service key of identity signed", name)
	}

	other, _ := serviceSigner(t, "identity", clock)
	token, err = other.Token(t.Context())
	require.NoError(t, err)
	_, err = v.Verify(t.Context(), token)
	assert.ErrorIs(t, err, auth.ErrInvalidToken, "a key the verifier was not given")
}

func TestServiceTokenIsRenewedBeforeItExpires(t *testing.T) {
	t.Parallel()
	now := time.Now()
	s, _ := serviceSigner(t, "identity", func() time.Time { return now })
	first, err := s.Token(t.Context())
	require.NoError(t, err)
	now = now.Add(auth.ServiceTokenTTL * 3 / 4)
	again, err := s.Token(t.Context())
	require.NoError(t, err)
	assert.Equal(t, first, again, "cached while more than a fifth of its life is left")
	now = now.Add(auth.ServiceTokenTTL / 20)
	renewed, err := s.Token(t.Context())
	require.NoError(t, err)
	assert.NotEqual(t, first, renewed)
}

func TestServiceSignerNeedsASeed(t *testing.T) {
	t.Parallel()
	_, err := auth.NewServiceSigner(auth.ServiceSignerConfig{Service: "identity", Seed: make([]byte, 16)})
	assert.Error(t, err)
	_, err = auth.NewServiceSigner(auth.ServiceSignerConfig{Seed: make([]byte, ed25519.SeedSize)})
	assert.Error(t, err)
}
