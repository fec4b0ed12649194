package session

import (
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/events"
	"github.com/authms/authms/services/internal/platform"
	"github.com/authms/authms/services/session/store"
)

// TestRevokeSessionsOfRevokesInBatches revokes a suspended tenant's live
// sessions three per transaction: all seven are revoked, each with its
// session.session.revoked event, and nothing of an active tenant or of an
// ended session is touched.
func TestRevokeSessionsOfRevokesInBatches(t *testing.T) {
	t.Parallel()
	pool, _ := provision(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := &Service{
		deps:        platform.Deps{Pool: pool, Logger: slog.New(slog.DiscardHandler)},
		cfg:         Config{Now: func() time.Time { return now }}.withDefaults(),
		events:      events.NewStore(Name),
		revokeBatch: 3,
	}
	q := store.New(pool)
	suspended, active := uuid.New(), uuid.New()
	for tenant, isSuspended := range map[uuid.UUID]bool{suspended: true, active: false} {
		_, err := pool.Exec(t.Context(), "INSERT INTO tenant_statuses (tenant_id, suspended, version) VALUES ($1, $2, 1)", tenant, isSuspended)
		require.NoError(t, err)
	}
	open := func(tenant uuid.UUID, expires time.Time) uuid.UUID {
		id := uuid.Must(uuid.NewV7())
		require.NoError(t, q.InsertSession(t.Context(), store.InsertSessionParams{
			ID: id, TenantID: tenant, UserID: uuid.New(), CreatedAt: now.Add(-time.Hour), ExpiresAt: expires,
		}))
		return id
	}
	for range 7 {
		open(suspended, now.Add(time.Hour))
	}
	ended := open(suspended, now.Add(-time.Minute))
	bystander := open(active, now.Add(time.Hour))

	require.NoError(t, s.revokeSessionsOf(t.Context(), suspended))

	count := func(sql string, args ...any) int {
		t.Helper()
		var n int
		require.NoError(t, pool.QueryRow(t.Context(), sql, args...).Scan(&n))
		return n
	}
	assert.Equal(t, 7, count("SELECT count(*) FROM sessions WHERE tenant_id = $1 AND revoke_reason = 'REVOKE_REASON_TENANT_SUSPENDED'", suspended))
	assert.Equal(t, 7, count("SELECT count(*) FROM events WHERE tenant_id = $1 AND subject = 'session.session.revoked'", suspended.String()))
	assert.Equal(t, 0, count("SELECT count(*) FROM sessions WHERE id = ANY($1) AND revoked_at IS NOT NULL", []uuid.UUID{ended, bystander}))

	require.NoError(t, s.revokeSessionsOf(t.Context(), active), "an active tenant is not revoked")
	assert.Equal(t, 0, count("SELECT count(*) FROM sessions WHERE tenant_id = $1 AND revoked_at IS NOT NULL", active))
}
