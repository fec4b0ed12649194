package identity

import (
	"net/http"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/platform"
)

// noPeers reaches no other service: http://peers.invalid never resolves.
type noPeers struct{}

func (noPeers) Client(string) (connect.HTTPClient, string) {
	return http.DefaultClient, "http://peers.invalid"
}

// Standalone returns d with what a service run without the platform
// needs: no reachable peers and its own service token. Tests that build
// the service this way call its commands; the procedures that ask risk
// (RegisterUser, ChangePassword, ChangeEmail, RequestPasswordReset) would
// fail Unavailable, and are tested with the real risk service
// (servicestest).
func Standalone(tb testing.TB, d platform.Deps) platform.Deps {
	tb.Helper()
	seed, err := d.Secrets.Key(tb.Context(), auth.ServiceKeyName)
	require.NoError(tb, err)
	signer, err := auth.NewServiceSigner(auth.ServiceSignerConfig{Service: Name, Seed: seed})
	require.NoError(tb, err)
	d.Peers, d.ServiceToken = noPeers{}, signer
	return d
}
