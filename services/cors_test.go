package services_test

import (
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/services"
	"github.com/authms/authms/services/servicestest"
)

const healthCheck = "/grpc.health.v1.Health/Check"

// corsResult is what a browser sees of a response.
type corsResult struct {
	status       int
	allowOrigin  string
	allowHeaders string
	body         string
}

// preflight sends the OPTIONS request a browser sends before a Connect
// call with an access token from origin.
func preflight(t *testing.T, env *servicestest.Env, origin string) corsResult {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodOptions, env.URL+healthCheck, nil)
	require.NoError(t, err)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", http.MethodPost)
	req.Header.Set("Access-Control-Request-Headers", "authorization,connect-protocol-version,content-type,x-grpc-web,x-user-agent")
	return do(t, env, req)
}

// healthCall sends a Connect health check from origin ("" for none).
func healthCall(t *testing.T, env *servicestest.Env, origin string) corsResult {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, env.URL+healthCheck, strings.NewReader(`{}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return do(t, env, req)
}

func do(t *testing.T, env *servicestest.Env, req *http.Request) corsResult {
	t.Helper()
	res, err := env.HTTP.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return corsResult{
		status:       res.StatusCode,
		allowOrigin:  res.Header.Get("Access-Control-Allow-Origin"),
		allowHeaders: res.Header.Get("Access-Control-Allow-Headers"),
		body:         string(body),
	}
}

func TestCORSAllowList(t *testing.T) {
	t.Parallel()
	const console = "https://console.example.com"
	env := servicestest.StartWith(t, servicestest.Options{AllowedOrigins: []string{console, "HTTP://LOCALHOST:5173"}}, "wallet")

	t.Run("allowed preflight", func(t *testing.T) {
		got := preflight(t, env, console)
		assert.Equal(t, http.StatusNoContent, got.status)
		assert.Equal(t, console, got.allowOrigin)
		for _, h := range []string{"authorization", "connect-protocol-version", "x-grpc-web", "x-user-agent"} {
			assert.Contains(t, strings.ToLower(got.allowHeaders), h)
		}
	})
	t.Run("allowed preflight, entry normalised", func(t *testing.T) {
		got := preflight(t, env, "http://localhost:5173")
		assert.Equal(t, http.StatusNoContent, got.status)
		assert.Equal(t, "http://localhost:5173", got.allowOrigin)
	})
	t.Run("allowed call", func(t *testing.T) {
		got := healthCall(t, env, console)
		assert.Equal(t, http.StatusOK, got.status)
		assert.Equal(t, console, got.allowOrigin)
		assert.Contains(t, got.body, "SERVING")
	})
	t.Run("disallowed preflight", func(t *testing.T) {
		got := preflight(t, env, "https://evil.example.com")
		assert.Equal(t, http.StatusForbidden, got.status)
		assert.Empty(t, got.allowOrigin)
		assert.Empty(t, got.allowHeaders)
	})
	t.Run("disallowed call", func(t *testing.T) {
		// A browser sends a simple request without a preflight: it is
		// refused before any handler runs.
		got := healthCall(t, env, "https://evil.example.com")
		assert.Equal(t, http.StatusForbidden, got.status)
		assert.Empty(t, got.allowOrigin)
		assert.NotContains(t, got.body, "SERVING")
	})
	t.Run("another port of an allowed host", func(t *testing.T) {
		got := healthCall(t, env, "https://console.example.com:8443")
		assert.Equal(t, http.StatusForbidden, got.status)
	})
	t.Run("same origin", func(t *testing.T) {
		got := healthCall(t, env, env.URL)
		assert.Equal(t, http.StatusOK, got.status)
		assert.Empty(t, got.allowOrigin, "a same-origin call needs no CORS headers")
	})
}

func TestCORSNoneConfigured(t *testing.T) {
	t.Parallel()
	env := servicestest.Start(t, "wallet")

	t.Run("same origin", func(t *testing.T) {
		got := healthCall(t, env, env.URL)
		assert.Equal(t, http.StatusOK, got.status)
		assert.Contains(t, got.body, "SERVING")
	})
	t.Run("no origin", func(t *testing.T) {
		got := healthCall(t, env, "")
		assert.Equal(t, http.StatusOK, got.status)
	})
	t.Run("same host, other scheme", func(t *testing.T) {
		got := healthCall(t, env, "https://"+strings.TrimPrefix(env.URL, "http://"))
		assert.Equal(t, http.StatusForbidden, got.status)
	})
	t.Run("cross-origin preflight", func(t *testing.T) {
		got := preflight(t, env, "http://localhost:5173")
		assert.Equal(t, http.StatusForbidden, got.status)
		assert.Empty(t, got.allowOrigin)
	})
	t.Run("cross-origin call", func(t *testing.T) {
		got := healthCall(t, env, "http://localhost:5173")
		assert.Equal(t, http.StatusForbidden, got.status)
	})
	t.Run("opaque origin", func(t *testing.T) {
		got := healthCall(t, env, "null")
		assert.Equal(t, http.StatusForbidden, got.status)
	})
}

// forwardedCall sends a Connect health check from origin with the
// X-Forwarded-Proto lines given, as a client and the proxies before the
// server wrote them.
func forwardedCall(t *testing.T, env *servicestest.Env, origin string, protos ...string) corsResult {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, env.URL+healthCheck, strings.NewReader(`{}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", origin)
	for _, p := range protos {
		req.Header.Add("X-Forwarded-Proto", p)
	}
	return do(t, env, req)
}

func TestCORSForwardedProto(t *testing.T) {
	t.Parallel()
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	behindProxy := servicestest.StartWith(t, servicestest.Options{TrustedProxies: loopback}, "wallet")
	direct := servicestest.Start(t, "wallet")
	https := func(env *servicestest.Env) string { return "https://" + strings.TrimPrefix(env.URL, "http://") }

	for name, tc := range map[string]struct {
		env    *servicestest.Env
		origin string
		protos []string
		want   int
	}{
		"trusted proxy says https":               {env: behindProxy, origin: https(behindProxy), protos: []string{"https"}, want: http.StatusOK},
		"trusted proxy appends https to a line":  {env: behindProxy, origin: https(behindProxy), protos: []string{"http, https"}, want: http.StatusOK},
		"trusted proxy's own line says https":    {env: behindProxy, origin: https(behindProxy), protos: []string{"http", "https"}, want: http.StatusOK},
		"trusted proxy says http":                {env: behindProxy, origin: https(behindProxy), protos: []string{"http"}, want: http.StatusForbidden},
		"client's line before the proxy's":       {env: behindProxy, origin: https(behindProxy), protos: []string{"https", "http"}, want: http.StatusForbidden},
		"client's entry before the proxy's":      {env: behindProxy, origin: https(behindProxy), protos: []string{"https, http"}, want: http.StatusForbidden},
		"trusted proxy says http, http origin":   {env: behindProxy, origin: behindProxy.URL, protos: []string{"https", "http"}, want: http.StatusOK},
		"untrusted peer says https":              {env: direct, origin: https(direct), protos: []string{"https"}, want: http.StatusForbidden},
		"untrusted peer says https, http origin": {env: direct, origin: direct.URL, protos: []string{"https"}, want: http.StatusOK},
	} {
		got := forwardedCall(t, tc.env, tc.origin, tc.protos...)
		assert.Equal(t, tc.want, got.status, "%s: %s", name, got.body)
	}
}

// TestCORSLoopbackOnly checks that a server on loopback alone refuses a
// DNS-rebinding page: its Origin equals http:// and its Host, a name that
// resolved to 127.0.0.1 for the page.
func TestCORSLoopbackOnly(t *testing.T) {
	t.Parallel()
	loopbackOnly := servicestest.StartWith(t, servicestest.Options{LoopbackOnly: true}, "wallet")
	anyHost := servicestest.Start(t, "wallet")
	call := func(env *servicestest.Env, host string) corsResult {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, env.URL+healthCheck, strings.NewReader(`{}`))
		require.NoError(t, err)
		port := env.URL[strings.LastIndexByte(env.URL, ':'):]
		req.Host = host + port
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", "http://"+req.Host)
		return do(t, env, req)
	}

	for _, host := range []string{"127.0.0.1", "localhost", "console.localhost", "[::1]", "127.1.2.3"} {
		assert.Equal(t, http.StatusOK, call(loopbackOnly, host).status, "%s is a loopback name", host)
	}
	got := call(loopbackOnly, "rebind.example.com")
	assert.Equal(t, http.StatusForbidden, got.status, "a rebinding page's Origin matches its Host")
	assert.NotContains(t, got.body, "SERVING")
	assert.Equal(t, http.StatusForbidden, call(loopbackOnly, "192.0.2.1").status)
	assert.Equal(t, http.StatusOK, healthCall(t, loopbackOnly, "").status, "a request without Origin passes")
	assert.Equal(t, http.StatusOK, call(anyHost, "rebind.example.com").status, "without LoopbackOnly, every Host is the server's")
}

func TestCORSAllowAll(t *testing.T) {
	t.Parallel()
	env := servicestest.StartWith(t, servicestest.Options{AllowedOrigins: []string{services.AllowAllOrigins}}, "wallet")

	got := preflight(t, env, "http://localhost:5173")
	assert.Equal(t, http.StatusNoContent, got.status)
	assert.Equal(t, "*", got.allowOrigin)
	got = healthCall(t, env, "https://anything.example")
	assert.Equal(t, http.StatusOK, got.status)
	assert.Equal(t, "*", got.allowOrigin)
}

func TestConfigRefusesBadOrigins(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		origins []string
		wantErr string
	}{
		{name: "a path", origins: []string{"https://console.example.com/"}, wantErr: "no path"},
		{name: "a longer path", origins: []string{"https://console.example.com/app"}, wantErr: "no path"},
		{name: "no scheme", origins: []string{"console.example.com"}, wantErr: "scheme must be http or https"},
		{name: "another scheme", origins: []string{"ftp://console.example.com"}, wantErr: "scheme must be http or https"},
		{name: "a query", origins: []string{"https://console.example.com?x=1"}, wantErr: "no path, query or fragment"},
		{name: "credentials", origins: []string{"https://u:p@console.example.com"}, wantErr: "no user information"},
		{name: "star among others", origins: []string{"*", "https://console.example.com"}, wantErr: `"*" allows every origin`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := services.Config{AllowedOrigins: tt.origins}.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
	err := services.Config{AllowedOrigins: []string{"https://console.example.com", "http://localhost:5173", "http://[::1]:8080"}}.Validate()
	require.Error(t, err, "the config lacks everything else")
	assert.NotContains(t, err.Error(), "origin")
}
