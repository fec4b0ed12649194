package session

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/events/pg"
	"github.com/authms/authms/services/internal/platform"
)

// TestRefreshLimitHoldsAcrossInstances runs three instances, each with its
// own connection pool to one session database, hammering one address at
// once: between them they let exactly the limit through in a window, and
// the next window lets the limit through again.
func TestRefreshLimitHoldsAcrossInstances(t *testing.T) {
	t.Parallel()
	pool, creds := provision(t)
	clock := newTestClock()
	limit := RateLimit{Max: 20, Window: time.Minute}
	cfg := Config{RefreshLimitPerAddress: limit, Now: clock.Now}.withDefaults()
	instances := make([]*Service, 3)
	for i := range instances {
		p := pool
		if i > 0 {
			var err error
			p, err = pg.Open(t.Context(), creds, pg.PoolConfig{MaxConns: 4})
			require.NoError(t, err)
			t.Cleanup(p.Close)
		}
		instances[i] = &Service{deps: platform.Deps{Pool: p, Logger: slog.New(slog.DiscardHandler)}, cfg: cfg}
	}
	hammer := func() (allowed, limited int) {
		var (
			wg  sync.WaitGroup
			mtx sync.Mutex
		)
		for i := range 60 {
			s := instances[i%len(instances)]
			wg.Go(func() {
				err := s.limitRefresh(t.Context(), limit, limitAddress, "203.0.113.7")
				mtx.Lock()
				defer mtx.Unlock()
				var le *RefreshLimitedError
				switch {
				case err == nil:
					allowed++
				case assert.ErrorAs(t, err, &le):
					limited++
					assert.False(t, le.PerSession)
					assert.Equal(t, time.Minute, le.RetryAfter, "the window started now")
				}
			})
		}
		wg.Wait()
		return allowed, limited
	}
	allowed, limited := hammer()
	assert.Equal(t, limit.Max, allowed, "exactly the limit gets through, whichever instance serves")
	assert.Equal(t, 60-limit.Max, limited)

	require.NoError(t, instances[1].limitRefresh(t.Context(), limit, limitAddress, "203.0.113.8"), "another address has its own count")

	clock.Advance(time.Minute)
	allowed, _ = hammer()
	assert.Equal(t, limit.Max, allowed, "a new window")

	clock.Advance(time.Minute)
	require.NoError(t, instances[0].pruneRefreshLimits(t.Context()))
	var left int
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM refresh_limits").Scan(&left))
	assert.Zero(t, left, "windows that are over are pruned")
}
