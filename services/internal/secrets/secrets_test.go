package secrets_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/services/internal/secrets"
)

func TestStoresGiveStablePerServiceKeys(t *testing.T) {
	t.Parallel()
	stores := []struct {
		name  string
		store secrets.Store
	}{
		{name: "memory", store: secrets.NewMemory()},
		{name: "files", store: secrets.NewFiles(t.TempDir())},
	}
	for _, tt := range stores {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			a1, err := tt.store.Service("identity").Key(ctx, "email-encryption")
			require.NoError(t, err)
			require.Len(t, a1, secrets.KeySize)
			a2, err := tt.store.Service("identity").Key(ctx, "email-encryption")
			require.NoError(t, err)
			assert.Equal(t, a1, a2, "same service and name, same key")

			other, err := tt.store.Service("identity").Key(ctx, "blind-index")
			require.NoError(t, err)
			assert.NotEqual(t, a1, other, "another name, another key")
			b, err := tt.store.Service("billing").Key(ctx, "email-encryption")
			require.NoError(t, err)
			assert.NotEqual(t, a1, b, "another service, another key")

			a1[0] ^= 0xff // callers get a copy
			a3, err := tt.store.Service("identity").Key(ctx, "email-encryption")
			require.NoError(t, err)
			assert.Equal(t, a2, a3)
		})
	}
}

func TestStoresRejectBadNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, service, key string }{
		{name: "upper case key", service: "identity", key: "Email"},
		{name: "path in key", service: "identity", key: "../x"},
		{name: "underscore in key", service: "identity", key: "email_key"},
		{name: "empty key", service: "identity", key: ""},
		{name: "bad service", service: "id-entity", key: "email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := secrets.NewMemory().Service(tc.service).Key(t.Context(), tc.key)
			assert.Error(t, err)
		})
	}
}

func TestFilesPersistAcrossStores(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k1, err := secrets.NewFiles(dir).Service("wallet").Key(t.Context(), "webhook-signing")
	require.NoError(t, err)

	file := filepath.Join(dir, "secrets", "wallet.webhook-signing.key")
	info, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	dirInfo, err := os.Stat(filepath.Dir(file))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), dirInfo.Mode().Perm())

	// A restarted process (a new store) reads the same key.
	k2, err := secrets.NewFiles(dir).Service("wallet").Key(t.Context(), "webhook-signing")
	require.NoError(t, err)
	assert.Equal(t, k1, k2)

	// The file holds what the production environment variable takes.
	body, err := os.ReadFile(file)
	require.NoError(t, err)
	env := secrets.NewEnv(func(name string) (string, bool) {
		return string(body), name == "AUTHMS_WALLET_WEBHOOK_SIGNING_KEY"
	})
	k3, err := env.Service("wallet").Key(t.Context(), "webhook-signing")
	require.NoError(t, err)
	assert.Equal(t, k1, k3)
}

func TestFilesRejectCorruptKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "secrets"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secrets", "wallet.signing.key"), []byte("c2hvcnQ=\n"), 0o600))
	_, err := secrets.NewFiles(dir).Service("wallet").Key(t.Context(), "signing")
	require.Error(t, err, "a truncated key is never silently replaced")
	assert.Contains(t, err.Error(), "5 bytes, want 32")
}

func TestEnvFailsClosed(t *testing.T) {
	t.Parallel()
	good := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", secrets.KeySize)))
	env := map[string]string{
		"AUTHMS_IDENTITY_EMAIL_ENCRYPTION_KEY": good,
		"AUTHMS_IDENTITY_SHORT_KEY":            base64.StdEncoding.EncodeToString([]byte("short")),
		"AUTHMS_IDENTITY_GARBLED_KEY":          "not base64!",
		"AUTHMS_IDENTITY_EMPTY_KEY":            "",
	}
	store := secrets.NewEnv(func(name string) (string, bool) { v, ok := env[name]; return v, ok })
	k, err := store.Service("identity").Key(t.Context(), "email-encryption")
	require.NoError(t, err)
	assert.Equal(t, []byte(strings.Repeat("k", secrets.KeySize)), k)

	for _, name := range []string{"missing", "short", "garbled", "empty"} {
		_, err := store.Service("identity").Key(t.Context(), name)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), secrets.EnvName("identity", name), "the error names the variable to set")
		assert.NotContains(t, err.Error(), "not base64!", "the error never echoes the value")
	}
}

func TestEnvName(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "AUTHMS_IDENTITY_EMAIL_ENCRYPTION_KEY", secrets.EnvName("identity", "email-encryption"))
	assert.Equal(t, "AUTHMS_WALLET_SIGNING_KEY", secrets.EnvName("wallet", "signing"))
}
