package tenant

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNormalizeDomain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{name: "ASCII", in: "example.com", want: "example.com"},
		{name: "upper case", in: "Login.EXAMPLE.com", want: "login.example.com"},
		{name: "trailing dot and spaces", in: "  example.com. ", want: "example.com"},
		{name: "Unicode label", in: "Bücher.example", want: "xn--bcher-kva.example"},
		{name: "A-label kept", in: "XN--BCHER-KVA.example", want: "xn--bcher-kva.example"},
		{name: "full-width dots and letters", in: "ｅｘａｍｐｌｅ。ｃｏｍ", want: "example.com"},
		{name: "sharp s is not folded to ss", in: "straße.de", want: "xn--strae-oqa.de"},
		{name: "decomposed input is composed", in: "bu\u0308cher.example", want: "xn--bcher-kva.example"},
		{name: "IDN TLD", in: "例え.テスト", want: "xn--r8jz45g.xn--zckzah"},
		{name: "single label", in: "localhost"},
		{name: "IPv4", in: "192.0.2.1"},
		{name: "IPv6", in: "2001:db8::1"},
		{name: "numeric TLD", in: "example.123"},
		{name: "space", in: "exa mple.com"},
		{name: "underscore", in: "_dmarc.example.com"},
		{name: "leading hyphen", in: "-bad.example"},
		{name: "empty label", in: "a..example"},
		{name: "label too long", in: strings.Repeat("a", 64) + ".example"},
		{name: "name too long", in: strings.Repeat("abcdefghi.", 26) + "example"},
		{name: "empty", in: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := normalizeDomain("domain", tt.in)
			if tt.want == "" {
				assert.Error(t, err, "got %q", got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestVerificationToken(t *testing.T) {
	t.Parallel()
	a, hashA, err := newVerificationToken()
	require.NoError(t, err)
	b, _, err := newVerificationToken()
	require.NoError(t, err)
	assert.NotEqual(t, a, b)
	assert.True(t, tokenMatches(a, hashA))
	assert.False(t, tokenMatches(b, hashA))
	assert.False(t, tokenMatches(a+" ", hashA))
	assert.LessOrEqual(t, len(a), 128, "fits VerifyDomainRequest.verification_token")
}
