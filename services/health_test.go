package services_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/services/servicestest"
)

// healthStatus asks grpc.health.v1 about service over the Connect protocol.
func healthStatus(t *testing.T, env *servicestest.Env, service string) string {
	t.Helper()
	body, err := json.Marshal(map[string]string{"service": service})
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, env.URL+"/grpc.health.v1.Health/Check", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	res, err := env.HTTP.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var out struct{ Status string }
	require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
	return out.Status
}

// A service whose database refuses connections is reported not serving
// until the database is back; the others stay serving.
func TestHealthFollowsTheDatabase(t *testing.T) {
	t.Parallel()
	env := servicestest.Start(t, "identity", "billing")
	require.Equal(t, "SERVING_STATUS_SERVING", healthStatus(t, env, "billing"))

	prov := env.PG.Provisioner()
	require.NoError(t, prov.BlockConnections(t.Context(), "billing"))
	require.Eventually(t, func() bool { return healthStatus(t, env, "billing") == "SERVING_STATUS_NOT_SERVING" }, 10*time.Second, 50*time.Millisecond)
	assert.Equal(t, "SERVING_STATUS_NOT_SERVING", healthStatus(t, env, "authms.billing.v1.BillingService"))
	assert.Equal(t, "SERVING_STATUS_SERVING", healthStatus(t, env, "identity"))

	require.NoError(t, prov.AllowConnections(t.Context(), "billing"))
	require.Eventually(t, func() bool { return healthStatus(t, env, "billing") == "SERVING_STATUS_SERVING" }, 10*time.Second, 50*time.Millisecond)
}
