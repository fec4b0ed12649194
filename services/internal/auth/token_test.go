package auth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/auth/authtest"
)

func verifier(t *testing.T, keys auth.KeySource, now func() time.Time) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(auth.VerifierConfig{Keys: keys, Now: now})
	require.NoError(t, err)
	return v
}

func TestVerifierAcceptsContractTokens(t *testing.T) {
	t.Parallel()
	s := authtest.NewSigner(t, "k1")
	v := verifier(t, s.Keys(), nil)
	tenant, user, sid := uuid.NewString(), uuid.NewString(), uuid.NewString()

	p, err := v.Verify(t.Context(), s.Token(t, authtest.Claims{Subject: user, TenantID: tenant, SessionID: sid, Roles: []string{"admin", "service"}}))
	require.NoError(t, err)
	assert.Equal(t, auth.Principal{Subject: user, TenantID: tenant, SessionID: sid, Roles: []string{"admin"}}, p,
		"a tenant cannot hand its users the platform's service role")
	assert.False(t, p.IsService())
	assert.True(t, p.HasRole(auth.RoleAdmin))

	p, err = v.Verify(t.Context(), s.ServiceToken(t, "session"))
	require.NoError(t, err)
	assert.True(t, p.IsService())
	assert.Equal(t, "service:session", p.Subject)
}

func TestVerifierRefusesAttacks(t *testing.T) {
	t.Parallel()
	s := authtest.NewSigner(t, "k1")
	other := authtest.NewSigner(t, "k1") // same kid, another key
	now := time.Now()
	v := verifier(t, s.Keys(), func() time.Time { return now })
	user := authtest.Claims{Subject: uuid.NewString(), TenantID: uuid.NewString(), IssuedAt: now}
	claims := func(change func(map[string]any)) map[string]any {
		m := s.Map(user)
		change(m)
		return m
	}
	header := func(change func(map[string]any)) map[string]any {
		h := s.Header()
		change(h)
		return h
	}
	valid := s.Token(t, user)
	parts := strings.Split(valid, ".")
	hs256 := func(key []byte) string {
		signing := authtest.Encode(t, header(func(h map[string]any) { h["alg"] = "HS256" })) + "." + parts[1]
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(signing))
		return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	jwk := string(authtest.JWKS(s))

	tests := []struct {
		name  string
		token string
	}{
		{"alg none, no signature", authtest.Encode(t, header(func(h map[string]any) { h["alg"] = "none" })) + "." + parts[1] + "."},
		{"alg none, signed", s.Sign(t, header(func(h map[string]any) { h["alg"] = "none" }), s.Map(user))},
		{"alg None", s.Sign(t, header(func(h map[string]any) { h["alg"] = "None" }), s.Map(user))},
		{"HS256 keyed with the public key bytes", hs256(s.Public())},
		{"HS256 keyed with the public key in base64url", hs256([]byte(base64.RawURLEncoding.EncodeToString(s.Public())))},
		{"HS256 keyed with the JWKS document", hs256([]byte(jwk))},
		{"RS256 header", s.Sign(t, header(func(h map[string]any) { h["alg"] = "RS256" }), s.Map(user))},
		{"aud as an array with another audience", s.Sign(t, s.Header(), claims(func(m map[string]any) { m["aud"] = []string{"authms", "billing-partner"} }))},
		{"aud as a one-element array", s.Sign(t, s.Header(), claims(func(m map[string]any) { m["aud"] = []string{"authms"} }))},
		{"wrong aud", s.Sign(t, s.Header(), claims(func(m map[string]any) { m["aud"] = "other" }))},
		{"no aud", s.Sign(t, s.Header(), claims(func(m map[string]any) { delete(m, "aud") }))},
		{"wrong iss", s.Sign(t, s.Header(), claims(func(m map[string]any) { m["iss"] = "https://evil.example" }))},
		{"no iss", s.Sign(t, s.Header(), claims(func(m map[string]any) { delete(m, "iss") }))},
		{"expired", s.Token(t, authtest.Claims{Subject: user.Subject, TenantID: user.TenantID, IssuedAt: now.Add(-11 * time.Minute)})},
		{"nbf in the future", s.Sign(t, s.Header(), claims(func(m map[string]any) { m["nbf"] = now.Add(2 * time.Minute).Unix() }))},
		{"iat in the future", s.Token(t, authtest.Claims{Subject: user.Subject, TenantID: user.TenantID, IssuedAt: now.Add(2 * time.Minute)})},
		{"no exp", s.Sign(t, s.Header(), claims(func(m map[string]any) { delete(m, "exp") }))},
		{"no nbf", s.Sign(t, s.Header(), claims(func(m map[string]any) { delete(m, "nbf") }))},
		{"exp as a string", s.Sign(t, s.Header(), claims(func(m map[string]any) { m["exp"] = "9999999999" }))},
		{"lifetime longer than any tenant policy", s.Token(t, authtest.Claims{Subject: user.Subject, TenantID: user.TenantID, IssuedAt: now, Lifetime: 24 * time.Hour})},
		{"tampered payload", parts[0] + "." + authtest.Encode(t, claims(func(m map[string]any) { m["roles"] = []string{"admin"} })) + "." + parts[2]},
		{"tampered header", authtest.Encode(t, header(func(h map[string]any) { h["typ"] = "at+jwt" })) + "." + parts[1] + "." + parts[2]},
		{"signed by another key with the same kid", other.Token(t, user)},
		{"unknown kid", s.Sign(t, header(func(h map[string]any) { h["kid"] = "k2" }), s.Map(user))},
		{"no kid", s.Sign(t, header(func(h map[string]any) { delete(h, "kid") }), s.Map(user))},
		{"embedded jwk", s.Sign(t, header(func(h map[string]any) { h["jwk"] = map[string]string{"kty": "OKP"} }), s.Map(user))},
		{"crit header", s.Sign(t, header(func(h map[string]any) { h["crit"] = []string{"exp"} }), s.Map(user))},
		{"padded segments", parts[0] + "=." + parts[1] + "." + parts[2]},
		{"two segments", parts[0] + "." + parts[1]},
		{"sub not a UUID", s.Sign(t, s.Header(), claims(func(m map[string]any) { m["sub"] = "admin" }))},
		{"no tid", s.Sign(t, s.Header(), claims(func(m map[string]any) { delete(m, "tid") }))},
		{"no sid", s.Sign(t, s.Header(), claims(func(m map[string]any) { delete(m, "sid") }))},
		{"service token with a tenant", s.Sign(t, s.Header(), claims(func(m map[string]any) { m["sub"] = "service:session"; m["roles"] = []string{"service"} }))},
		{"service subject without the service role", s.Token(t, authtest.Claims{Subject: "service:session", IssuedAt: now})},
		{"a service with no name", s.ServiceToken(t, "")},
		// Session's keys sign users' tokens and session's own service
		// tokens: nobody else's.
		{"session's key signing for identity", s.ServiceToken(t, "identity")},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := v.Verify(t.Context(), tt.token)
			require.ErrorIs(t, err, auth.ErrInvalidToken)
		})
	}

	t.Run("skew", func(t *testing.T) {
		t.Parallel()
		// Expired 20s ago, valid from 20s ahead: within the 30s skew.
		_, err := v.Verify(t.Context(), s.Token(t, authtest.Claims{Subject: user.Subject, TenantID: user.TenantID, IssuedAt: now.Add(-10*time.Minute - 20*time.Second)}))
		require.NoError(t, err)
		_, err = v.Verify(t.Context(), s.Token(t, authtest.Claims{Subject: user.Subject, TenantID: user.TenantID, IssuedAt: now.Add(20 * time.Second)}))
		require.NoError(t, err)
	})
}

// jwksServer serves a JWKS that a test changes, and counts the fetches.
type jwksServer struct {
	mu      sync.Mutex
	signers []*authtest.Signer
	maxAge  string
	age     string // the Age header, as a shared cache would set it
	fetches atomic.Int32
	srv     *httptest.Server
}

func newJWKSServer(t *testing.T, signers ...*authtest.Signer) *jwksServer {
	t.Helper()
	j := &jwksServer{signers: signers, maxAge: "max-age=60"}
	j.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != auth.JWKSPath {
			http.NotFound(w, r)
			return
		}
		j.fetches.Add(1)
		j.mu.Lock()
		defer j.mu.Unlock()
		w.Header().Set("Cache-Control", j.maxAge)
		if j.age != "" {
			w.Header().Set("Age", j.age)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(authtest.JWKS(j.signers...))
	}))
	t.Cleanup(j.srv.Close)
	return j
}

func (j *jwksServer) set(signers ...*authtest.Signer) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.signers = signers
}

// clock is a test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	k1, k2, k3 := authtest.NewSigner(t, "k1"), authtest.NewSigner(t, "k2"), authtest.NewSigner(t, "k3")
	server := newJWKSServer(t, k1, k2)
	clk := &clock{now: time.Now()}
	jwks, err := auth.NewJWKS(auth.JWKSConfig{Client: server.srv.Client(), BaseURL: server.srv.URL, Now: clk.Now})
	require.NoError(t, err)
	v := verifier(t, jwks, clk.Now)
	user := func(s *authtest.Signer) string {
		return s.Token(t, authtest.Claims{Subject: uuid.NewString(), TenantID: uuid.NewString(), IssuedAt: clk.Now()})
	}

	// Concurrent first requests share one fetch.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, err := v.Verify(t.Context(), user(k1))
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Equal(t, int32(1), server.fetches.Load(), "one fetch for concurrent requests")
	for range 10 {
		_, err := v.Verify(t.Context(), user(k2))
		require.NoError(t, err)
	}
	assert.Equal(t, int32(1), server.fetches.Load(), "no network call per request")

	// An unknown kid refreshes once, then not again until MinRefresh.
	clk.Advance(auth.DefaultMinRefresh)
	for range 5 {
		_, err := v.Verify(t.Context(), user(k3))
		require.ErrorIs(t, err, auth.ErrInvalidToken)
	}
	assert.Equal(t, int32(2), server.fetches.Load(), "an unknown kid triggers at most one refresh")

	// A key published later is found by the next refresh an unknown kid
	// may trigger.
	server.set(k1, k3)
	_, err = v.Verify(t.Context(), user(k3))
	require.ErrorIs(t, err, auth.ErrInvalidToken, "rate-limited: no refresh yet")
	clk.Advance(auth.DefaultMinRefresh)
	_, err = v.Verify(t.Context(), user(k3))
	require.NoError(t, err, "the refresh found k3")
	assert.Equal(t, int32(3), server.fetches.Load())

	// k2 was removed from the JWKS: once the cached copy expires
	// (max-age=60), tokens signed with it fail.
	_, err = v.Verify(t.Context(), user(k2))
	require.ErrorIs(t, err, auth.ErrInvalidToken, "the last refresh no longer lists k2")
	clk.Advance(61 * time.Second)
	_, err = v.Verify(t.Context(), user(k1))
	require.NoError(t, err)
	assert.Equal(t, int32(4), server.fetches.Load(), "an expired cache is fetched again")

	// The session service is down: cached keys keep working for a while,
	// refreshes are rate-limited.
	server.srv.Close()
	clk.Advance(61 * time.Second)
	for range 5 {
		_, err = v.Verify(t.Context(), user(k1))
		require.NoError(t, err, "stale keys serve while the JWKS cannot be fetched")
	}
	clk.Advance(auth.MaxTokenLifetime)
	_, err = v.Verify(t.Context(), user(k1))
	require.ErrorIs(t, err, auth.ErrInvalidToken, "keys do not outlive a long outage")
}

func TestMaxAgeIsBounded(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, header string
		wantFetches  int32
	}{
		{"max-age=0 is raised to the minimum", "max-age=0", 1},
		{"no-store", "no-store", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k1 := authtest.NewSigner(t, "k1")
			server := newJWKSServer(t, k1)
			server.maxAge = tt.header
			clk := &clock{now: time.Now()}
			jwks, err := auth.NewJWKS(auth.JWKSConfig{Client: server.srv.Client(), BaseURL: server.srv.URL, Now: clk.Now})
			require.NoError(t, err)
			for range 3 {
				_, err := jwks.Key(t.Context(), "k1")
				require.NoError(t, err)
			}
			assert.Equal(t, tt.wantFetches, server.fetches.Load())
			clk.Advance(auth.MaxJWKSTTL)
			_, err = jwks.Key(t.Context(), "k1")
			require.NoError(t, err)
			assert.Equal(t, tt.wantFetches+1, server.fetches.Load())
		})
	}
}

// TestJWKSAgeShortensMaxAge serves the JWKS as a shared cache would, with
// an Age: the keys are cached for max-age less Age, never below the
// minimum, and an Age that is not a number is ignored.
func TestJWKSAgeShortensMaxAge(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, maxAge, age string
		wantTTL           time.Duration
	}{
		{"no age", "public, max-age=60", "", 60 * time.Second},
		{"max-age less age", "public, max-age=60", "45", 15 * time.Second},
		{"older than max-age: the minimum", "public, max-age=60", "600", auth.MinJWKSTTL},
		{"no max-age: the default less age", "public", "20", auth.DefaultJWKSTTL - 20*time.Second},
		{"an age that is not a number", "public, max-age=60", "soon", 60 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			server := newJWKSServer(t, authtest.NewSigner(t, "k1"))
			server.maxAge, server.age = tt.maxAge, tt.age
			clk := &clock{now: time.Now()}
			// MinRefresh below the shortest TTL, so only freshness decides.
			jwks, err := auth.NewJWKS(auth.JWKSConfig{Client: server.srv.Client(), BaseURL: server.srv.URL, Now: clk.Now, MinRefresh: time.Second})
			require.NoError(t, err)
			_, err = jwks.Key(t.Context(), "k1")
			require.NoError(t, err)
			clk.Advance(tt.wantTTL - time.Second)
			_, err = jwks.Key(t.Context(), "k1")
			require.NoError(t, err)
			assert.Equal(t, int32(1), server.fetches.Load(), "still fresh a second before %v", tt.wantTTL)
			clk.Advance(2 * time.Second)
			_, err = jwks.Key(t.Context(), "k1")
			require.NoError(t, err)
			assert.Equal(t, int32(2), server.fetches.Load(), "fetched again a second after %v", tt.wantTTL)
		})
	}
}
