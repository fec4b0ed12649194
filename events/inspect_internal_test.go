package events

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSubsetOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sub, filter string
		want        bool
	}{
		{"identity.>", ">", true},
		{"identity.>", "identity.>", true},
		{"identity.>", "identity.*", false},
		{"identity.>", "identity.user.>", false},
		{"identity.user.created", "identity.*.created", true},
		{"identity.user", "identity.user.>", false},
		{"identity.*", "identity.>", true},
		{"dlq.billing.>", "identity.>", false},
	} {
		assert.Equal(t, tc.want, subsetOf(tc.sub, tc.filter), "%s within %s", tc.sub, tc.filter)
	}
}
