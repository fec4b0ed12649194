package pg_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/events/pg"
)

func TestDevPassword(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()

	first, err := pg.DevPassword(dataDir, "identity")
	require.NoError(t, err)
	assert.Len(t, first, 43, "32 bytes, base64url without padding")

	dir, err := os.Stat(filepath.Join(dataDir, "secrets"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), dir.Mode().Perm())
	file, err := os.Stat(filepath.Join(dataDir, "secrets", "identity.password"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), file.Mode().Perm())

	again, err := pg.DevPassword(dataDir, "identity")
	require.NoError(t, err)
	assert.Equal(t, first, again)

	other, err := pg.DevPassword(dataDir, "billing")
	require.NoError(t, err)
	assert.NotEqual(t, first, other)

	entries, err := os.ReadDir(filepath.Join(dataDir, "secrets"))
	require.NoError(t, err)
	assert.Len(t, entries, 2, "no temporary files left behind")

	_, err = pg.DevPassword(dataDir, "../identity")
	assert.Error(t, err)
}

func TestDevPasswordConcurrentFirstUse(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	got := make([]string, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			pw, err := pg.DevPassword(dataDir, "session")
			assert.NoError(t, err)
			got[i] = pw
		})
	}
	wg.Wait()
	for _, pw := range got {
		assert.Equal(t, got[0], pw)
	}
}
