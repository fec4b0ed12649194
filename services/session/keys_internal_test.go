package session

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/services/internal/secrets"
	"github.com/authms/authms/services/session/store"
)

// TestInstancesAgreeOnRotation runs four keyrings (four instances) on one
// database, rotating at once, again and again: they create one key per
// rotation between them, and all sign with the same key.
func TestInstancesAgreeOnRotation(t *testing.T) {
	t.Parallel()
	pool, _ := provision(t)
	clock := newTestClock()
	cfg := Config{KeyRotation: time.Hour, Now: clock.Now}.withDefaults()
	keys := secrets.NewMemory().Service(Name)
	rings := make([]*keyring, 4)
	for i := range rings {
		rings[i] = newKeyring(pool, keys, cfg, slog.New(slog.DiscardHandler))
	}
	maintainAll := func() {
		var wg sync.WaitGroup
		for _, r := range rings {
			wg.Go(func() { assert.NoError(t, r.maintain(t.Context())) })
		}
		wg.Wait()
	}
	count := func() int {
		rows, err := store.New(pool).ListSigningKeys(t.Context())
		require.NoError(t, err)
		return len(rows)
	}
	maintainAll()
	require.Equal(t, 1, count(), "one first key")
	for round := range 3 {
		clock.Advance(time.Hour)
		maintainAll()
		maintainAll()
		assert.LessOrEqual(t, count(), 2, "round %d: current and next only, once retired keys are gone", round)
		clock.Advance(cfg.JWKSMaxAge)
		var kids []string
		for _, r := range rings {
			k, err := r.current(t.Context())
			require.NoError(t, err)
			kids = append(kids, k.kid)
		}
		assert.Equal(t, []string{kids[0], kids[0], kids[0], kids[0]}, kids, "round %d: every instance signs with the same key", round)
	}
}

// TestJWKSPicksUpAnotherInstancesKey has instance B create a successor key
// while instance A serves the JWKS from memory: A serves the new key once
// its keys are KeyCheckInterval old, and until then caps max-age so that no
// copy of its JWKS outlives the moment the new key signs.
func TestJWKSPicksUpAnotherInstancesKey(t *testing.T) {
	t.Parallel()
	pool, _ := provision(t)
	clock := newTestClock()
	advance := clock.Advance
	cfg := Config{KeyRotation: time.Hour, Now: clock.Now}.withDefaults()
	keys := secrets.NewMemory().Service(Name)
	a := newKeyring(pool, keys, cfg, slog.New(slog.DiscardHandler))
	b := newKeyring(pool, keys, cfg, slog.New(slog.DiscardHandler))
	published := func(r *keyring) (int, time.Duration) {
		set, maxAge, err := r.published(t.Context())
		require.NoError(t, err)
		return len(set.Keys), maxAge
	}

	n, maxAge := published(a)
	assert.Equal(t, 1, n, "the first key, created on demand")
	assert.Equal(t, cfg.JWKSMaxAge, maxAge)

	// A loads its keys 10s before the successor is due; B creates it.
	advance(cfg.KeyRotation - cfg.JWKSMaxAge - 10*time.Second)
	n, _ = published(a)
	require.Equal(t, 1, n)
	loaded := cfg.Now()
	advance(10 * time.Second)
	require.NoError(t, b.maintain(t.Context()))
	n, _ = published(b)
	require.Equal(t, 2, n, "B serves its new key at once")
	next := b.keys[1].activatesAt

	n, maxAge = published(a)
	assert.Equal(t, 1, n, "A serves the keys it loaded, without reading the database")
	assert.Equal(t, cfg.JWKSMaxAge-10*time.Second, maxAge)
	assert.False(t, cfg.Now().Add(maxAge).After(next), "a verifier's copy expires before the new key signs")

	advance(cfg.KeyCheckInterval - 10*time.Second)
	require.Equal(t, cfg.KeyCheckInterval, cfg.Now().Sub(loaded))
	n, maxAge = published(a)
	assert.Equal(t, 2, n, "A reloads once its keys are KeyCheckInterval old")
	assert.Equal(t, cfg.JWKSMaxAge, maxAge)
}
