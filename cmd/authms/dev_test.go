package main

import (
	"bytes"
	"cmp"
	"context"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/events/natstest"
	"github.com/authms/authms/events/pg/pgtest"
	"github.com/authms/authms/services"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// devEnv is the environment of an `authms dev` or `authms migrate` under
// test: the test's NATS server and a unique database prefix, dropped when the
// test ends.
func devEnv(t *testing.T, natsURL string) func(string) string {
	t.Helper()
	cluster := pgtest.New(t)
	env := map[string]string{
		"DATABASE_URL":           pgtest.AdminURL(t),
		"AUTHMS_DATABASE_PREFIX": cluster.Naming().Prefix,
		"NATS_URL":               natsURL,
		"AUTHMS_LOG_FORMAT":      "text",
		"AUTHMS_LOG_LEVEL":       "warn",
	}
	return func(name string) string { return env[name] }
}

var apiURL = regexp.MustCompile(`API\s+(http://\S+)`)

func TestDevServesUntilCancelled(t *testing.T) {
	t.Parallel()
	nats := natstest.Start(t)
	var stdout syncBuffer
	c := &cli{stdout: &stdout, stderr: &testWriter{t}, getenv: devEnv(t, nats.URL()), argv0: "./bin/authms"}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- c.run(ctx, func() {}, []string{"dev", "--http", "127.0.0.1:0", "--data", t.TempDir(), "identity", "wallet"})
	}()

	var url string
	require.Eventually(t, func() bool {
		if m := apiURL.FindStringSubmatch(stdout.String()); m != nil {
			url = m[1]
			return true
		}
		return false
	}, 60*time.Second, 20*time.Millisecond, "authms dev prints the API URL")
	out := stdout.String()
	assert.Contains(t, out, nats.URL())
	assert.Contains(t, out, "stream IDENTITY")
	assert.NotContains(t, out, "stream BILLING", "only the named services run")
	assert.Contains(t, out, "Events:  NATS_URL="+nats.URL()+" ./bin/authms events tail '>'\n",
		"the tail hint reaches this NATS server, with the binary that runs")
	assert.Contains(t, out, "CLI:     NATS_URL="+nats.URL()+" AUTHMS_API_URL="+url+" AUTHMS_DATA_DIR=",
		"the CLI hint reaches this API")

	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	httpClient := &http.Client{Transport: &http.Transport{Protocols: &h2c}}
	t.Cleanup(httpClient.CloseIdleConnections)
	client := grpchealth.NewClient(httpClient, url, connect.WithGRPC())
	res, err := client.Check(t.Context(), &grpchealth.CheckRequest{Service: "wallet"})
	require.NoError(t, err)
	assert.Equal(t, grpchealth.StatusServing, res.Status)

	// On loopback alone, a DNS-rebinding page's call (its Origin matching
	// a Host that is no loopback name) is refused.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+"/grpc.health.v1.Health/Check", strings.NewReader(`{}`))
	require.NoError(t, err)
	req.Host = "rebind.example.com" + url[strings.LastIndexByte(url, ':'):]
	req.Header.Set("Origin", "http://"+req.Host)
	req.Header.Set("Content-Type", "application/json")
	rebound, err := httpClient.Do(req)
	require.NoError(t, err)
	_ = rebound.Body.Close()
	assert.Equal(t, http.StatusForbidden, rebound.StatusCode, "a rebinding page's same-origin call")

	cancel() // Ctrl-C
	select {
	case err := <-done:
		require.NoError(t, err, "a graceful shutdown is a clean exit")
	case <-time.After(60 * time.Second):
		t.Fatal("authms dev did not stop")
	}
	assert.True(t, strings.HasPrefix(url, "http://127.0.0.1:"))
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	var stdout syncBuffer
	getenv := devEnv(t, "")
	c := &cli{stdout: &stdout, stderr: &testWriter{t}, getenv: getenv}
	require.NoError(t, c.run(t.Context(), func() {}, []string{"migrate", "--data", t.TempDir(), "profile"}))
	out := stdout.String()
	assert.Contains(t, out, getenv("AUTHMS_DATABASE_PREFIX")+"_profile")
	assert.Contains(t, out, "xxxxx", "the password is redacted")

	err := (&cli{stdout: &stdout, stderr: &testWriter{t}, getenv: getenv}).run(t.Context(), func() {}, []string{"migrate", "nosuch"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown service "nosuch"`)
}

// configWith returns the services configuration of a CLI whose only
// environment variable is name=value.
func configWith(t *testing.T, name, value string) (services.Config, error) {
	c := &cli{getenv: func(n string) string {
		if n == name {
			return value
		}
		return ""
	}}
	return c.servicesConfig(t.TempDir(), nil)
}

// TestTrustedProxiesFromEnvironment reads AUTHMS_TRUSTED_PROXIES into the
// platform's one trusted proxies setting.
func TestTrustedProxiesFromEnvironment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		value   string
		want    []netip.Prefix
		wantErr string
	}{
		{name: "unset", value: "", want: []netip.Prefix{}},
		{name: "networks and an address", value: "10.0.0.0/8, 127.0.0.1/32,192.0.2.7,",
			want: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("192.0.2.7/32")}},
		{name: "not a network", value: "10.0.0.0/8,proxy.internal", wantErr: `AUTHMS_TRUSTED_PROXIES: trusted proxy "proxy.internal": not a CIDR or an IP address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := configWith(t, "AUTHMS_TRUSTED_PROXIES", tt.value)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg.TrustedProxies)
		})
	}
}

// TestDomainCheckFromEnvironment checks that VerifyDomain asks DNS unless
// AUTHMS_INSECURE_SKIP_DOMAIN_CHECK opts out, whether or not
// AUTHMS_DNS_SERVER is set.
func TestDomainCheckFromEnvironment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		env        map[string]string
		wantServer string
		wantSkip   bool
		wantErr    string
	}{
		{name: "unset: the system resolver", env: map[string]string{}},
		{name: "a DNS server", env: map[string]string{"AUTHMS_DNS_SERVER": "127.0.0.1:5353"}, wantServer: "127.0.0.1:5353"},
		{name: "skip", env: map[string]string{"AUTHMS_INSECURE_SKIP_DOMAIN_CHECK": "1"}, wantSkip: true},
		{name: "skip off", env: map[string]string{"AUTHMS_INSECURE_SKIP_DOMAIN_CHECK": "0"}},
		{name: "not a boolean", env: map[string]string{"AUTHMS_INSECURE_SKIP_DOMAIN_CHECK": "yes"}, wantErr: `AUTHMS_INSECURE_SKIP_DOMAIN_CHECK="yes": want 1 or 0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &cli{getenv: func(name string) string { return tt.env[name] }}
			cfg, err := c.servicesConfig(t.TempDir(), nil)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantServer, cfg.Tenant.DNSServer)
			assert.Equal(t, tt.wantSkip, cfg.Tenant.InsecureSkipDomainCheck)
		})
	}
}

// TestCORSOriginsFromEnvironment reads AUTHMS_CORS_ORIGINS: unset allows
// no cross-origin caller, "*" all, otherwise exact origins; a bad entry
// stops the start.
func TestCORSOriginsFromEnvironment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		value   string
		want    []string
		wantErr string
	}{
		{name: "unset", value: "", want: []string{}},
		{name: "every origin", value: "*", want: []string{"*"}},
		{name: "origins", value: "https://console.example.com, HTTP://localhost:5173,https://console.example.com:443", want: []string{"https://console.example.com", "http://localhost:5173"}},
		{name: "a path", value: "https://console.example.com/app", wantErr: `AUTHMS_CORS_ORIGINS: allowed origin "https://console.example.com/app": an origin has no path, query or fragment; want scheme://host[:port], e.g. https://console.example.com`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := configWith(t, "AUTHMS_CORS_ORIGINS", tt.value)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg.AllowedOrigins)
		})
	}
}

// TestDevHints: the banner's commands run as printed, whatever the ports
// and however authms was started; at the defaults, with authms on the
// PATH, they are the README's.
func TestDevHints(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, argv0, nats, api, data string
		events, cli                  string
	}{
		{name: "defaults, on the PATH", argv0: "authms", nats: defaultNATSURL, api: defaultAPIURL,
			events: "authms events tail '>'"},
		{name: "defaults, task dev", argv0: "./bin/authms", nats: defaultNATSURL, api: defaultAPIURL,
			events: "./bin/authms events tail '>'",
			cli:    "./bin/authms projections ls  (dlq and events need the same variables)"},
		{name: "a free NATS port", argv0: "./bin/authms", nats: "nats://127.0.0.1:40123", api: defaultAPIURL,
			events: "NATS_URL=nats://127.0.0.1:40123 ./bin/authms events tail '>'",
			cli:    "NATS_URL=nats://127.0.0.1:40123 ./bin/authms projections ls  (dlq and events need the same variables)"},
		{name: "another API port", argv0: "authms", nats: defaultNATSURL, api: "http://localhost:9090",
			events: "authms events tail '>'",
			cli:    "AUTHMS_API_URL=http://localhost:9090 authms projections ls  (dlq and events need the same variables)"},
		{name: "another data directory", argv0: "authms", nats: defaultNATSURL, api: defaultAPIURL, data: "/tmp/authms data",
			events: "authms events tail '>'",
			cli:    "AUTHMS_DATA_DIR='/tmp/authms data' authms projections ls  (dlq and events need the same variables)"},
		{name: "go run", argv0: "/tmp/go-build123/b001/exe/authms", nats: defaultNATSURL, api: defaultAPIURL,
			events: "go run ./cmd/authms events tail '>'",
			cli:    "go run ./cmd/authms projections ls  (dlq and events need the same variables)"},
		{name: "a path to quote", argv0: "/opt/my tools/authms", nats: defaultNATSURL, api: defaultAPIURL,
			events: "'/opt/my tools/authms' events tail '>'",
			cli:    "'/opt/my tools/authms' projections ls  (dlq and events need the same variables)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			events, cli := devHints(tt.argv0, tt.nats, tt.api, cmp.Or(tt.data, defaultDataDir))
			assert.Equal(t, tt.events, events)
			assert.Equal(t, tt.cli, cli)
		})
	}
}
