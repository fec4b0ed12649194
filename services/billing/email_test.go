package billing

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// One sealer reused over many rows (as a rebuild uses it) gives the blind
// index of the documented formula and ciphertexts that open, row after
// row: its scratch buffer never leaks one row into the next.
func TestSealerReuse(t *testing.T) {
	t.Parallel()
	secrets := newSecrets(t)
	codec := emailCodec{secrets: secrets}
	seal, err := codec.sealer(t.Context())
	require.NoError(t, err)
	indexKey, err := secrets.Key(t.Context(), keyEmailBlindIndex)
	require.NoError(t, err)
	for i, email := range []string{
		"ada@example.com", " Grace.Hopper@Example.COM ", "a@b.c", "Jos\u00e9@B\u00fccher.example",
		strings.Repeat("x", 60) + "@example.com", "ada@example.com",
	} {
		tenantID, userID := uuid.New(), uuid.New()
		assert.Equal(t, tenantID.String(), string(appendUUID([]byte("x"), tenantID))[1:])

		mac := hmac.New(sha256.New, indexKey)
		mac.Write([]byte(tenantID.String() + "|" + strings.ToLower(strings.TrimSpace(email))))
		assert.Equal(t, mac.Sum(nil), seal.blindIndex(tenantID, email), "row %d", i)

		sealed, err := seal.seal(tenantID, userID, email)
		require.NoError(t, err)
		plain, err := codec.open(t.Context(), tenantID, userID, sealed)
		require.NoError(t, err, "row %d", i)
		assert.Equal(t, email, plain)
	}
}
