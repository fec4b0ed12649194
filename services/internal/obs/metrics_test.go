package obs_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/services/internal/obs"
)

// Each platform has its own registry, so two in one process (parallel
// tests) never collide, and each serves only its own observations.
func TestMetricsAreNotGlobal(t *testing.T) {
	t.Parallel()
	a, err := obs.NewMetrics(0)
	require.NoError(t, err)
	b, err := obs.NewMetrics(0)
	require.NoError(t, err)
	a.RelayObserver("identity")(3, 2*time.Millisecond)

	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Body.String(), `authms_relay_batch_messages_sum{service="identity"} 3`)
	assert.Contains(t, rec.Body.String(), `authms_relay_publish_latency_seconds_count{service="identity"} 1`)
	assert.Contains(t, rec.Body.String(), "go_goroutines")

	rec = httptest.NewRecorder()
	b.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	assert.NotContains(t, rec.Body.String(), `service="identity"`)
}
