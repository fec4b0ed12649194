package services_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"testing/fstest"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/services"
	"github.com/authms/authms/services/servicestest"
)

const (
	testIndex  = `<!doctype html><title>authms console</title><script type="module" src="/assets/index-4f2a9c.js"></script>`
	testScript = `console.log("authms");`
)

// testConsole is a console as Vite builds it.
func testConsole() fstest.MapFS {
	return fstest.MapFS{
		"index.html":               {Data: []byte(testIndex)},
		"favicon.svg":              {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)},
		"assets/index-4f2a9c.js":   {Data: []byte(testScript)},
		"assets/index-77aa01.css":  {Data: []byte(`body{margin:0}`)},
		"assets/font-0badf0.woff2": {Data: []byte("wOF2")},
	}
}

// get sends method to path and returns the response with its body read.
func get(t *testing.T, env *servicestest.Env, method, path string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, env.URL+path, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := env.HTTP.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(body)
}

func TestConsoleServesFiles(t *testing.T) {
	t.Parallel()
	env := servicestest.StartWith(t, servicestest.Options{Console: testConsole()}, "session")

	tests := []struct {
		name        string
		path        string
		wantBody    string
		wantType    string
		wantCaching string
	}{
		{name: "root", path: "/", wantBody: testIndex, wantType: "text/html; charset=utf-8", wantCaching: "no-cache"},
		{name: "index itself", path: "/index.html", wantBody: testIndex, wantType: "text/html; charset=utf-8", wantCaching: "no-cache"},
		{name: "a console route", path: "/admin/users", wantBody: testIndex, wantType: "text/html; charset=utf-8", wantCaching: "no-cache"},
		{name: "a route with a dot", path: "/admin/users/admin@authms.test", wantBody: testIndex, wantType: "text/html; charset=utf-8", wantCaching: "no-cache"},
		{name: "a script", path: "/assets/index-4f2a9c.js", wantBody: testScript, wantType: "text/javascript; charset=utf-8", wantCaching: "public, max-age=31536000, immutable"},
		{name: "a style sheet", path: "/assets/index-77aa01.css", wantBody: `body{margin:0}`, wantType: "text/css; charset=utf-8", wantCaching: "public, max-age=31536000, immutable"},
		{name: "a font", path: "/assets/font-0badf0.woff2", wantBody: "wOF2", wantType: "font/woff2", wantCaching: "public, max-age=31536000, immutable"},
		{name: "a root file", path: "/favicon.svg", wantBody: `<svg xmlns="http://www.w3.org/2000/svg"/>`, wantType: "image/svg+xml", wantCaching: "no-cache"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, body := get(t, env, http.MethodGet, tt.path, nil)
			require.Equal(t, http.StatusOK, res.StatusCode)
			assert.Equal(t, tt.wantBody, body)
			assert.Equal(t, tt.wantType, res.Header.Get("Content-Type"))
			assert.Equal(t, tt.wantCaching, res.Header.Get("Cache-Control"))
			assert.Equal(t, "default-src 'self'; connect-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'", res.Header.Get("Content-Security-Policy"))
			assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
			assert.Equal(t, "no-referrer", res.Header.Get("Referrer-Policy"))
		})
	}

	t.Run("head", func(t *testing.T) {
		t.Parallel()
		res, body := get(t, env, http.MethodHead, "/assets/index-4f2a9c.js", nil)
		require.Equal(t, http.StatusOK, res.StatusCode)
		assert.Empty(t, body)
		assert.Equal(t, int64(len(testScript)), res.ContentLength)
		assert.Equal(t, "text/javascript; charset=utf-8", res.Header.Get("Content-Type"))
	})
	t.Run("revalidation", func(t *testing.T) {
		t.Parallel()
		res, _ := get(t, env, http.MethodGet, "/", nil)
		etag := res.Header.Get("ETag")
		require.NotEmpty(t, etag)
		res, body := get(t, env, http.MethodGet, "/", http.Header{"If-None-Match": {etag}})
		assert.Equal(t, http.StatusNotModified, res.StatusCode)
		assert.Empty(t, body)
	})
	t.Run("a missing asset", func(t *testing.T) {
		t.Parallel()
		res, body := get(t, env, http.MethodGet, "/assets/index-000000.js", nil)
		assert.Equal(t, http.StatusNotFound, res.StatusCode)
		assert.NotContains(t, body, "<title>", "a missing script never loads as the page")
	})
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			res, body := get(t, env, method, "/admin/users", nil)
			assert.Equal(t, http.StatusNotFound, res.StatusCode)
			assert.NotContains(t, body, "<title>")
		})
	}
}

// TestConsoleLeavesAPIsAlone checks that the console at "/" shadows no API
// path: APIs, health, metrics and the JWKS answer as without it, and the
// paths of services that do not run here are 404, never the page.
func TestConsoleLeavesAPIsAlone(t *testing.T) {
	t.Parallel()
	env := servicestest.StartWith(t, servicestest.Options{Console: testConsole()}, "session")

	// Session activates its first signing key soon after it starts.
	var res *http.Response
	var body string
	require.Eventually(t, func() bool {
		res, body = get(t, env, http.MethodGet, "/.well-known/jwks.json", nil)
		return res.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond, "session serves the JWKS")
	assert.Empty(t, res.Header.Get("Content-Security-Policy"), "the JWKS, not the console")
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &jwks), body)
	assert.NotEmpty(t, jwks.Keys)

	res, body = get(t, env, http.MethodGet, services.MetricsPath, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, body, "# TYPE")

	health, err := grpchealth.NewClient(env.HTTP, env.URL, connect.WithGRPCWeb()).Check(t.Context(), &grpchealth.CheckRequest{Service: "session"})
	require.NoError(t, err)
	assert.Equal(t, grpchealth.StatusServing, health.Status)

	for _, path := range []string{
		"/authms.billing.v1.BillingService/GetInvoice", // billing does not run here
		"/authms.session.v1.SessionService/Nope",
		"/grpc.nosuch.v1.Service/Method",
		"/.well-known/openid-configuration",
	} {
		res, body := get(t, env, http.MethodGet, path, nil)
		assert.Equal(t, http.StatusNotFound, res.StatusCode, path)
		assert.NotContains(t, body, "<title>", path)
	}
	res, _ = get(t, env, http.MethodPost, "/authms.session.v1.SessionService/Login", nil)
	assert.NotEqual(t, http.StatusNotFound, res.StatusCode, "the API still answers its procedures")
}

func TestConsoleConfig(t *testing.T) {
	t.Parallel()
	env := servicestest.StartWith(t, servicestest.Options{Console: testConsole()}, "wallet")

	res, body := get(t, env, http.MethodGet, services.ConsoleConfigPath, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	assert.JSONEq(t, `{}`, body)

	env.Platform.SetConsoleConfig(services.ConsoleConfig{Tenant: &services.ConsoleTenant{ID: "0b5e1f6c-2f7e-4c1a-9f5d-3f0e8c7d6b5a", Slug: "dev", Name: "Development"}})
	_, body = get(t, env, http.MethodGet, services.ConsoleConfigPath, nil)
	assert.JSONEq(t, `{"tenant":{"id":"0b5e1f6c-2f7e-4c1a-9f5d-3f0e8c7d6b5a","slug":"dev","name":"Development"}}`, body)
}

func TestConsoleNotBuilt(t *testing.T) {
	t.Parallel()
	env := servicestest.StartWith(t, servicestest.Options{Console: fstest.MapFS{}}, "wallet")

	for _, path := range []string{"/", "/admin/users"} {
		res, body := get(t, env, http.MethodGet, path, nil)
		require.Equal(t, http.StatusOK, res.StatusCode, path)
		assert.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
		assert.Contains(t, body, "console is not built")
		assert.Contains(t, body, "task web")
	}
	res, _ := get(t, env, http.MethodGet, "/assets/index-4f2a9c.js", nil)
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	res, body := get(t, env, http.MethodGet, services.ConsoleConfigPath, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.JSONEq(t, `{}`, body)
}
