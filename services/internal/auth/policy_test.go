package auth_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/authms/authms/services/internal/auth"
)

func TestPolicyNamesItsServices(t *testing.T) {
	t.Parallel()
	p := auth.Owner.OrServices("session")
	assert.Equal(t, []string{"session"}, p.Services())
	assert.True(t, p.AllowsUsers())
	assert.Equal(t, "owner or tenant admin, services session", p.String())

	p = auth.Services("session", "identity")
	assert.Equal(t, []string{"session", "identity"}, p.Services())
	assert.False(t, p.AllowsUsers())
	assert.Equal(t, "services session|identity", p.String())

	assert.Empty(t, auth.Admin.Services(), "users' policies let no service in")
	assert.Equal(t, "nobody", auth.Services().String(), "naming no service lets nobody in")
}
