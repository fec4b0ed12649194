package auth

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
)

// JWKSPath is where the session service serves its public signing keys.
const JWKSPath = "/.well-known/jwks.json"

// JWKS defaults.
const (
	// DefaultJWKSTTL is how long keys are cached when the response carries
	// no Cache-Control max-age.
	DefaultJWKSTTL = 60 * time.Second
	// MinJWKSTTL and MaxJWKSTTL bound the max-age a response may set.
	MinJWKSTTL = 5 * time.Second
	MaxJWKSTTL = 10 * time.Minute
	// DefaultMinRefresh is the shortest interval between two fetches that
	// an unknown kid (or a failed fetch) triggers.
	DefaultMinRefresh = 10 * time.Second
	// maxStale is how long keys outlive their max-age when the JWKS cannot
	// be fetched: a short session-service outage does not log everybody
	// out, a long one does not keep a removed key alive.
	maxStale = MaxTokenLifetime
	// Limits on what a JWKS response may hold.
	maxJWKSBytes = 1 << 20
	maxJWKSKeys  = 64
	fetchTimeout = 5 * time.Second
)

// JWKSConfig configures a [JWKS] key source.
type JWKSConfig struct {
	// Client and BaseURL reach the session service (platform.Peers).
	Client  connect.HTTPClient
	BaseURL string
	// MinRefresh is the shortest interval between refreshes triggered by an
	// unknown kid or a failed fetch (default DefaultMinRefresh).
	MinRefresh time.Duration
	Logger     *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// JWKS is a [KeySource] backed by the session service's JWKS endpoint.
// Keys are cached for the response's Cache-Control max-age, bounded by
// MinJWKSTTL and MaxJWKSTTL. A kid the cache does not hold triggers at
// most one fetch per MinRefresh; concurrent requests share one fetch.
type JWKS struct {
	client     connect.HTTPClient
	url        string
	minRefresh time.Duration
	logger     *slog.Logger
	now        func() time.Time

	mu        sync.Mutex
	keys      map[string]ed25519.PublicKey
	expires   time.Time     // end of the last successful fetch's max-age
	attempted time.Time     // last fetch attempt, successful or not
	inflight  chan struct{} // closed when the running fetch ends
}

var _ KeySource = (*JWKS)(nil)

// NewJWKS returns a JWKS key source; it fetches nothing until a token
// needs a key.
func NewJWKS(cfg JWKSConfig) (*JWKS, error) {
	if cfg.Client == nil || cfg.BaseURL == "" {
		return nil, errors.New("jwks: an HTTP client and the session service's base URL are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &JWKS{
		client:     cfg.Client,
		url:        strings.TrimSuffix(cfg.BaseURL, "/") + JWKSPath,
		minRefresh: cmp.Or(cfg.MinRefresh, DefaultMinRefresh),
		logger:     cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)),
		now:        cfg.Now,
	}, nil
}

// Key implements KeySource.
func (j *JWKS) Key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	for attempt := 0; ; attempt++ {
		j.mu.Lock()
		now := j.now()
		k, known := j.keys[kid]
		fresh := now.Before(j.expires)
		usable := now.Before(j.expires.Add(maxStale)) // stale keys, while the JWKS cannot be fetched
		mayFetch := now.Sub(j.attempted) >= j.minRefresh || j.attempted.IsZero()
		switch {
		case known && fresh:
			j.mu.Unlock()
			return k, nil
		case attempt > 0 || !mayFetch && j.inflight == nil:
			// Fetched once for this call already, or fetched too recently:
			// answer from what the cache holds.
			j.mu.Unlock()
			if known && usable {
				return k, nil
			}
			return nil, fmt.Errorf("%w %q", ErrUnknownKey, kid)
		}
		wait := j.inflight
		if wait == nil {
			wait = make(chan struct{})
			j.inflight = wait
			j.attempted = now
			j.mu.Unlock()
			j.refresh(ctx, wait)
		} else {
			j.mu.Unlock()
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// refresh fetches the JWKS and replaces the cache, then closes done. A
// failed fetch keeps the old keys.
func (j *JWKS) refresh(ctx context.Context, done chan struct{}) {
	// One caller's cancelled request must not fail the others' fetch.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	keys, ttl, err := j.fetch(fctx)
	j.mu.Lock()
	defer j.mu.Unlock()
	defer close(done)
	j.inflight = nil
	if err != nil {
		j.logger.WarnContext(ctx, "jwks fetch failed; keeping the cached keys", "url", j.url, "err", err, "cached_keys", len(j.keys))
		return
	}
	now := j.now()
	j.keys, j.expires = keys, now.Add(ttl)
	j.logger.DebugContext(ctx, "jwks fetched", "url", j.url, "keys", len(keys), "ttl", ttl)
}

// jwk is one JSON Web Key; only Ed25519 signing keys are used.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

func (j *JWKS) fetch(ctx context.Context) (map[string]ed25519.PublicKey, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	res, err := j.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxJWKSBytes))
		return nil, 0, fmt.Errorf("status %s", res.Status)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, 0, err
	}
	if len(body) > maxJWKSBytes {
		return nil, 0, fmt.Errorf("response larger than %d bytes", maxJWKSBytes)
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, 0, fmt.Errorf("decode: %w", err)
	}
	if len(set.Keys) > maxJWKSKeys {
		return nil, 0, fmt.Errorf("%d keys, more than %d", len(set.Keys), maxJWKSKeys)
	}
	keys := make(map[string]ed25519.PublicKey, len(set.Keys))
	for _, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Kid == "" ||
			(k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != "EdDSA") {
			continue // not a key we verify with
		}
		x, err := b64(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			continue
		}
		keys[k.Kid] = ed25519.PublicKey(x)
	}
	return keys, freshness(res.Header), nil
}

// freshness returns how long a JWKS response may be cached: its
// Cache-Control max-age (DefaultJWKSTTL when there is none) less its Age,
// bounded by MinJWKSTTL and MaxJWKSTTL. A shared cache between session and
// the verifier (session's JWKS is public) sets Age to how long it has held
// the copy; without the subtraction a copy served late would be cached a
// full max-age again, past the activation of a key it lacks.
func freshness(h http.Header) time.Duration {
	ttl := DefaultJWKSTTL
	for d := range strings.SplitSeq(h.Get("Cache-Control"), ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(d), "=")
		if !ok || !strings.EqualFold(name, "max-age") {
			continue
		}
		if s, err := strconv.Atoi(strings.Trim(value, `"`)); err == nil && s >= 0 {
			ttl = time.Duration(min(s, int(MaxJWKSTTL/time.Second))) * time.Second
		}
		break
	}
	// An Age that is not a number of seconds is ignored (RFC 9111 5.1);
	// one beyond any max-age leaves the minimum.
	if age, err := strconv.Atoi(strings.TrimSpace(h.Get("Age"))); err == nil && age > 0 {
		ttl -= time.Duration(min(age, int(MaxJWKSTTL/time.Second))) * time.Second
	}
	return min(max(ttl, MinJWKSTTL), MaxJWKSTTL)
}
