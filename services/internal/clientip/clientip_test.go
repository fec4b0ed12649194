package clientip_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/services/internal/clientip"
)

func TestClientIP(t *testing.T) {
	t.Parallel()
	trusted, err := clientip.ParsePrefixes([]string{"10.0.0.0/8", "192.0.2.10", "2001:db8:ffff::/48"})
	require.NoError(t, err)
	behindProxy := clientip.Resolver{TrustedProxies: trusted}

	tests := []struct {
		name     string
		resolver clientip.Resolver
		remote   string
		xff      []string // X-Forwarded-For lines
		want     string
	}{
		{name: "no proxy configured, no header", remote: "203.0.113.7:51234", want: "203.0.113.7"},
		{name: "no proxy configured, header ignored", remote: "203.0.113.7:51234", xff: []string{"198.51.100.1"}, want: "203.0.113.7"},
		{name: "untrusted peer, header ignored", resolver: behindProxy, remote: "203.0.113.7:51234", xff: []string{"198.51.100.1"}, want: "203.0.113.7"},
		{name: "untrusted peer spoofing a trusted hop", resolver: behindProxy, remote: "203.0.113.7:1", xff: []string{"198.51.100.1, 10.1.1.1"}, want: "203.0.113.7"},
		{name: "trusted peer, header honoured", resolver: behindProxy, remote: "10.0.0.5:443", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "trusted single address", resolver: behindProxy, remote: "192.0.2.10:443", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "address next to a trusted single address is not trusted", resolver: behindProxy, remote: "192.0.2.11:443", xff: []string{"198.51.100.1"}, want: "192.0.2.11"},
		{name: "trusted peer without header", resolver: behindProxy, remote: "10.0.0.5:443", want: "10.0.0.5"},
		{
			name: "client-written hops left of the first untrusted one are ignored", resolver: behindProxy, remote: "10.0.0.5:443",
			xff: []string{"1.1.1.1, 2.2.2.2, 198.51.100.1"}, want: "198.51.100.1",
		},
		{
			name: "a chain of trusted proxies is skipped", resolver: behindProxy, remote: "10.0.0.5:443",
			xff: []string{"6.6.6.6, 198.51.100.1, 10.9.9.9, 10.8.8.8"}, want: "198.51.100.1",
		},
		{
			name: "several header lines read as one list", resolver: behindProxy, remote: "10.0.0.5:443",
			xff: []string{"6.6.6.6", "198.51.100.1, 10.9.9.9"}, want: "198.51.100.1",
		},
		{name: "every hop trusted: the leftmost", resolver: behindProxy, remote: "10.0.0.5:443", xff: []string{"10.3.3.3, 10.2.2.2"}, want: "10.3.3.3"},
		{name: "garbage from the client is skipped past", resolver: behindProxy, remote: "10.0.0.5:443", xff: []string{"not-an-ip, 198.51.100.1"}, want: "198.51.100.1"},
		{name: "garbage next to the proxy: the proxy", resolver: behindProxy, remote: "10.0.0.5:443", xff: []string{"198.51.100.1, bogus"}, want: "10.0.0.5"},
		{name: "empty header value", resolver: behindProxy, remote: "10.0.0.5:443", xff: []string{""}, want: "10.0.0.5"},
		{name: "hop with a port", resolver: behindProxy, remote: "10.0.0.5:443", xff: []string{"198.51.100.1:4711"}, want: "198.51.100.1"},
		{name: "IPv6 hop in brackets with a port", resolver: behindProxy, remote: "10.0.0.5:443", xff: []string{"[2001:db8::1]:4711"}, want: "2001:db8::1"},
		{name: "IPv6 peer", remote: "[2001:db8::7]:443", want: "2001:db8::7"},
		{name: "trusted IPv6 proxy", resolver: behindProxy, remote: "[2001:db8:ffff::1]:443", xff: []string{"2001:db8:1::9"}, want: "2001:db8:1::9"},
		{name: "zone dropped", remote: "[fe80::1%eth0]:443", want: "fe80::1"},
		{name: "IPv4-mapped peer is IPv4", remote: "[::ffff:203.0.113.7]:443", want: "203.0.113.7"},
		{name: "IPv4-mapped trusted peer", resolver: behindProxy, remote: "[::ffff:10.0.0.5]:443", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "bare remote address", remote: "203.0.113.7", want: "203.0.113.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			for _, v := range tt.xff {
				h.Add(clientip.ForwardedForHeader, v)
			}
			got, err := tt.resolver.ClientIP(tt.remote, h)
			require.NoError(t, err)
			assert.Equal(t, netip.MustParseAddr(tt.want), got)
		})
	}
}

func TestClientIPBadRemoteAddr(t *testing.T) {
	t.Parallel()
	for _, remote := range []string{"", "pipe", "example.com:443", "@"} {
		_, err := clientip.Resolver{}.ClientIP(remote, http.Header{})
		assert.Error(t, err, remote)
	}
}

func TestFromRequest(t *testing.T) {
	t.Parallel()
	trusted, err := clientip.ParsePrefixes([]string{"192.0.2.0/24"})
	require.NoError(t, err)
	req := httptest.NewRequest(http.MethodGet, "/", nil) // RemoteAddr 192.0.2.1:1234
	req.Header.Set(clientip.ForwardedForHeader, "198.51.100.1")

	got, err := clientip.Resolver{}.FromRequest(req)
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddr("192.0.2.1"), got, "no trusted proxy")

	got, err = clientip.Resolver{TrustedProxies: trusted}.FromRequest(req)
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddr("198.51.100.1"), got, "behind a trusted proxy")
}

func TestParsePrefixes(t *testing.T) {
	t.Parallel()
	got, err := clientip.ParsePrefixes([]string{"10.0.0.0/8", " 192.0.2.7 ", "2001:db8::/32", "::1", "10.1.2.3/8"})
	require.NoError(t, err)
	assert.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("10.0.0.0/8"),
	}, got)

	_, err = clientip.ParsePrefixes([]string{"10.0.0.0/8", "nonsense", "10.0.0.0/33"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"nonsense"`)
	assert.Contains(t, err.Error(), `"10.0.0.0/33"`)
}

func TestNetwork(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{in: "203.0.113.7", want: "203.0.113.7"},
		{in: "::ffff:203.0.113.7", want: "203.0.113.7"},
		{in: "2001:db8:1:2:3:4:5:6", want: "2001:db8:1:2::/64"},
		{in: "2001:DB8:1:2::1", want: "2001:db8:1:2::/64"},
		{in: "fe80::1%eth0", want: "fe80::/64"},
	} {
		assert.Equal(t, tc.want, clientip.Network(netip.MustParseAddr(tc.in)), tc.in)
	}
}
