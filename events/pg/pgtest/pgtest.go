// Package pgtest provisions throwaway service databases on the real PostgreSQL
// named by DATABASE_URL for tests. Each [Cluster] uses a unique name prefix, so
// parallel tests and packages never share a database, and drops everything
// created under that prefix when its test ends.
//
// A missing DATABASE_URL fails the test; it never skips.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authms/authms/events/pg"
)

// cleanupTimeout bounds dropping a cluster's databases at the end of a test.
const cleanupTimeout = 30 * time.Second

// AdminURL returns DATABASE_URL, a superuser connection string, or fails the
// test explaining how to set it.
func AdminURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("DATABASE_URL")
	if u == "" {
		tb.Fatal("DATABASE_URL is not set: these tests need a real PostgreSQL (13+) superuser connection, e.g.\n" +
			"\tDATABASE_URL='postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable' go test ./...")
	}
	return u
}

// Cluster provisions service databases under one unique prefix and drops all
// of them when the test that created it ends.
type Cluster struct {
	naming pg.Naming
	prov   *pg.Provisioner
}

// New returns a Cluster with a unique prefix ("authms_t" and 8 hex digits). The
// test's cleanup terminates the sessions of, and drops, every database and role
// under the prefix, including ones created through [Cluster.Provisioner].
func New(tb testing.TB) *Cluster {
	tb.Helper()
	adminURL := AdminURL(tb)
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		tb.Fatalf("pgtest: random prefix: %v", err)
	}
	naming := pg.Naming{Prefix: "authms_t" + hex.EncodeToString(suffix)}
	prov, err := pg.NewProvisioner(tb.Context(), adminURL, naming, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		// tb.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := prov.DropAll(ctx); err != nil {
			tb.Errorf("pgtest: drop databases with prefix %s: %v", naming.Prefix, err)
		}
		prov.Close()
	})
	return &Cluster{naming: naming, prov: prov}
}

// Naming returns the cluster's naming, with its unique prefix.
func (c *Cluster) Naming() pg.Naming { return c.naming }

// Provisioner returns the cluster's provisioner, for fault injection
// (BlockConnections) and for provisioning without a pool.
func (c *Cluster) Provisioner() *pg.Provisioner { return c.prov }

// Provision ensures service's database and role with a random password,
// applies sources in order, and returns a pool connected as the service's role
// (closed when tb ends) and the role's credentials. tb may be a subtest of the
// cluster's test.
func (c *Cluster) Provision(tb testing.TB, service string, sources ...pg.MigrationSource) (*pgxpool.Pool, pg.Credentials) {
	tb.Helper()
	ctx := tb.Context()
	pw := make([]byte, 24)
	if _, err := rand.Read(pw); err != nil {
		tb.Fatalf("pgtest: random password: %v", err)
	}
	creds, err := c.prov.Ensure(ctx, service, hex.EncodeToString(pw))
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	pool, err := pg.Open(ctx, creds, pg.PoolConfig{MaxConns: 8})
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(pool.Close)
	if err := pg.Migrate(ctx, pool, sources...); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return pool, creds
}

// Provision is New(tb).Provision(tb, service, sources...): one service's
// database for one test.
func Provision(tb testing.TB, service string, sources ...pg.MigrationSource) (*pgxpool.Pool, pg.Credentials) {
	tb.Helper()
	return New(tb).Provision(tb, service, sources...)
}
