package risk

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/pg"
	"github.com/authms/authms/events/pg/pgtest"
	riskv1 "github.com/authms/authms/schemas/gen/authms/risk/v1"
	"github.com/authms/authms/services/internal/platform"
	"github.com/authms/authms/services/internal/secrets"
)

// clock is a settable time source.
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

// newClockedService runs the service's commands against its own database
// with a clock the test moves, for what depends on time passing (windows,
// pruning); the API tests cover the rest end to end.
func newClockedService(t *testing.T) (*Service, *clock, *pgxpool.Pool) {
	t.Helper()
	pool, _ := pgtest.Provision(t, Name,
		pg.MigrationSource{Name: "events", FS: events.Migrations},
		pg.MigrationSource{Name: Name, FS: Migrations()})
	c := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	s := &Service{
		deps: platform.Deps{
			Service: Name, Pool: pool, Logger: slog.New(slog.DiscardHandler), Secrets: secrets.NewMemory().Service(Name),
		},
		cfg:    DefaultConfig(),
		events: events.NewStore(Name),
		now:    c.Now,
	}
	return s, c, pool
}

func TestFailuresSlideOutOfTheWindow(t *testing.T) {
	t.Parallel()
	s, c, _ := newClockedService(t)
	req := &riskv1.RecordLoginAttemptRequest{TenantId: uuid.NewString(), Email: "alice@example.com", Ip: "203.0.113.7"}
	fail := func() outcome {
		t.Helper()
		out, err := s.recordLoginAttempt(t.Context(), req)
		require.NoError(t, err)
		return out
	}
	for range 4 {
		assert.False(t, fail().accountLocked)
		c.Advance(time.Minute)
	}
	c.Advance(11*time.Minute + time.Second) // the first failure is 15m01s old
	assert.False(t, fail().accountLocked, "4 failures in the last 15 minutes")
	c.Advance(time.Second)
	out := fail()
	assert.True(t, out.accountLocked, "5 in the last 15 minutes")
	assert.Equal(t, 15*time.Minute, out.retryAfter)

	check := &riskv1.CheckLoginRequest{TenantId: req.GetTenantId(), Email: req.GetEmail(), Ip: req.GetIp()}
	res, err := s.checkLogin(t.Context(), check)
	require.NoError(t, err)
	assert.Equal(t, riskv1.DenyReason_DENY_REASON_ACCOUNT_LOCKED, res.GetReason())
	c.Advance(15*time.Minute - time.Microsecond)
	res, err = s.checkLogin(t.Context(), check)
	require.NoError(t, err)
	assert.False(t, res.GetAllowed(), "a microsecond before the end")
	c.Advance(time.Microsecond)
	res, err = s.checkLogin(t.Context(), check)
	require.NoError(t, err)
	assert.True(t, res.GetAllowed(), "lifted at locked_until")
}

func TestReservationsLapse(t *testing.T) {
	t.Parallel()
	s, c, _ := newClockedService(t)
	req := &riskv1.AttemptLoginRequest{TenantId: uuid.NewString(), Email: "alice@example.com", Ip: "203.0.113.7"}
	for range 5 {
		res, err := s.attemptLogin(t.Context(), req)
		require.NoError(t, err)
		require.True(t, res.GetAllowed())
		c.Advance(time.Second)
	}
	res, err := s.attemptLogin(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, riskv1.DenyReason_DENY_REASON_ACCOUNT_BUSY, res.GetReason())
	assert.Equal(t, 55*time.Second, res.GetRetryAfter().AsDuration(), "when the first reservation lapses")
	c.Advance(55 * time.Second)
	res, err = s.attemptLogin(t.Context(), req)
	require.NoError(t, err)
	assert.True(t, res.GetAllowed(), "the first reservation lapsed unreported")
}

func TestPrune(t *testing.T) {
	t.Parallel()
	s, c, pool := newClockedService(t)
	count := func(table string) int {
		var n int
		require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&n))
		return n
	}
	tenant := uuid.NewString()
	strict := &riskv1.LockoutPolicy{MaxFailures: 1, Window: durationpb.New(time.Hour), LockoutDuration: durationpb.New(24 * time.Hour)}
	for _, email := range []string{"old@example.com", "locked@example.com"} {
		req := &riskv1.RecordLoginAttemptRequest{TenantId: tenant, Email: email, Ip: "203.0.113.7"}
		if email == "locked@example.com" {
			c.Advance(23 * time.Hour)
			req.LockoutPolicy = strict
		}
		_, err := s.recordLoginAttempt(t.Context(), req)
		require.NoError(t, err)
	}
	c.Advance(2*time.Hour + time.Minute) // old: 25h01m ago; locked: 2h01m ago, locked for 21h59m more
	require.NoError(t, s.prune(t.Context()))
	assert.Equal(t, 1, count("login_attempts"), "the old attempt is gone")
	assert.Equal(t, 1, count("accounts"), "the locked account stays")
	assert.Equal(t, 1, count("addresses"), "the address was used recently")

	c.Advance(30 * time.Hour)
	require.NoError(t, s.prune(t.Context()))
	for _, table := range []string{"login_attempts", "accounts", "addresses"} {
		assert.Equal(t, 0, count(table), table)
	}
	assert.Equal(t, 1, count("events"), "decisions stay")
}
