package breached

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestList(t *testing.T) {
	t.Parallel()
	l, err := Load()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, l.Len(), 1000)
	for _, s := range l.sorted {
		require.Equal(t, strings.ToLower(s), s, "entries are lower case")
	}
	for _, pw := range []string{"123456", "password", "iloveyou", "qwerty", "trustno1", "Password1", "P@SSW0RD", "letmein", "monkey", "dragon"} {
		assert.True(t, l.Contains(pw), pw)
	}
	for _, pw := range []string{"correct horse battery staple", "vT7#q2!mZr9@", ""} {
		assert.False(t, l.Contains(pw), pw)
	}
}
