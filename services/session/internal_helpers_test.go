package session

import (
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/pg"
	"github.com/authms/authms/events/pg/pgtest"
)

// provision creates a session database with the events and session
// migrations applied, for the tests that build the service's parts by
// hand, and returns its pool and credentials.
func provision(t *testing.T) (*pgxpool.Pool, pg.Credentials) {
	t.Helper()
	return pgtest.Provision(t, Name,
		pg.MigrationSource{Name: "events", FS: events.Migrations},
		pg.MigrationSource{Name: Name, FS: Migrations()})
}

// testClock is a clock that tests move by hand, safe for concurrent use.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

// newTestClock starts at 2026-03-01 12:00 UTC.
func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

// Now is the clock's time; pass it as Config.Now.
func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
