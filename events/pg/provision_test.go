package pg_test

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/events/pg"
	"github.com/authms/authms/events/pg/pgtest"
)

func adminPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), pgtest.AdminURL(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// storedPasswordMatches checks password against the role's SCRAM-SHA-256
// verifier in pg_authid. The test server trusts every local connection, so
// logging in proves nothing about the password; the verifier does.
func storedPasswordMatches(t *testing.T, admin *pgxpool.Pool, role, password string) bool {
	t.Helper()
	var stored string
	require.NoError(t, admin.QueryRow(t.Context(), `SELECT rolpassword FROM pg_authid WHERE rolname = $1`, role).Scan(&stored))
	// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
	method, rest, ok := strings.Cut(stored, "$")
	require.True(t, ok, "rolpassword %q", stored)
	require.Equal(t, "SCRAM-SHA-256", method, "server must store SCRAM verifiers (password_encryption)")
	iterSalt, keys, ok := strings.Cut(rest, "$")
	require.True(t, ok)
	iterText, saltText, ok := strings.Cut(iterSalt, ":")
	require.True(t, ok)
	storedKeyText, _, ok := strings.Cut(keys, ":")
	require.True(t, ok)
	iter, err := strconv.Atoi(iterText)
	require.NoError(t, err)
	salt, err := base64.StdEncoding.DecodeString(saltText)
	require.NoError(t, err)
	wantStoredKey, err := base64.StdEncoding.DecodeString(storedKeyText)
	require.NoError(t, err)

	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	require.NoError(t, err)
	mac := hmac.New(sha256.New, salted)
	mac.Write([]byte("Client Key"))
	storedKey := sha256.Sum256(mac.Sum(nil))
	return hmac.Equal(storedKey[:], wantStoredKey)
}

func TestEnsureIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := pgtest.New(t)
	admin := adminPool(t)

	first, err := c.Provisioner().Ensure(ctx, "alpha", "first password")
	require.NoError(t, err)
	second, err := c.Provisioner().Ensure(ctx, "alpha", "second password")
	require.NoError(t, err)

	db := c.Naming().Database("alpha")
	assert.Equal(t, db, second.Database)
	assert.Equal(t, c.Naming().Role("alpha"), second.User)
	assert.Equal(t, "second password", second.Password)
	first.Password = second.Password
	assert.Equal(t, first, second)

	var (
		databases, publicGrants int
		owner                   string
		roleCanConnect          bool
	)
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, db).Scan(&databases))
	assert.Equal(t, 1, databases)
	require.NoError(t, admin.QueryRow(ctx, `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1`, db).Scan(&owner))
	assert.Equal(t, second.User, owner)
	require.NoError(t, admin.QueryRow(ctx, `
SELECT count(*) FROM pg_database d, aclexplode(d.datacl) a
WHERE d.datname = $1 AND a.grantee = 0`, db).Scan(&publicGrants))
	assert.Zero(t, publicGrants, "PUBLIC keeps privileges on %s", db)
	require.NoError(t, admin.QueryRow(ctx, `SELECT has_database_privilege($1, $2, 'CONNECT')`, second.User, db).Scan(&roleCanConnect))
	assert.True(t, roleCanConnect)

	assert.True(t, storedPasswordMatches(t, admin, second.User, "second password"))
	assert.False(t, storedPasswordMatches(t, admin, second.User, "first password"))
}

func TestRoleCannotConnectToAnotherServicesDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := pgtest.New(t)
	alpha, err := c.Provisioner().Ensure(ctx, "alpha", "alpha-secret-password")
	require.NoError(t, err)
	beta, err := c.Provisioner().Ensure(ctx, "beta", "beta-secret-password")
	require.NoError(t, err)

	own, err := pg.Open(ctx, alpha, pg.PoolConfig{})
	require.NoError(t, err)
	defer own.Close()
	var user, db string
	require.NoError(t, own.QueryRow(ctx, `SELECT current_user, current_database()`).Scan(&user, &db))
	assert.Equal(t, alpha.User, user)
	assert.Equal(t, alpha.Database, db)

	intruder := alpha
	intruder.Database = beta.Database
	_, err = pg.Open(ctx, intruder, pg.PoolConfig{})
	require.Error(t, err)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, "42501", pgErr.Code, "insufficient_privilege: %v", err)
	assert.False(t, pg.IsUnavailable(err), "a permission error is not an outage")
	assert.NotContains(t, err.Error(), alpha.Password)

	// The same holds for a plain pgx connection from the connection string.
	conn, err := pgx.Connect(ctx, intruder.ConnString())
	if err == nil {
		conn.Close(ctx)
	}
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, "42501", pgErr.Code)
}

func TestEnsurePasswordWithQuoteAndBackslash(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := pgtest.New(t)
	const password = `it's a \ test' OR '1'='1 \\' ; DROP ROLE x; -- "%L" $$`

	creds, err := c.Provisioner().Ensure(ctx, "alpha", password)
	require.NoError(t, err)
	assert.True(t, storedPasswordMatches(t, adminPool(t), creds.User, password))

	parsed, err := pgx.ParseConfig(creds.ConnString())
	require.NoError(t, err)
	assert.Equal(t, password, parsed.Password)
	assert.NotContains(t, creds.String(), "test")

	pool, err := pg.Open(ctx, creds, pg.PoolConfig{})
	require.NoError(t, err)
	defer pool.Close()
	require.NoError(t, pool.Ping(ctx))
}

func TestEnsureRejectsBadInput(t *testing.T) {
	t.Parallel()
	c := pgtest.New(t)
	tests := []struct {
		name     string
		service  string
		password string
	}{
		{name: "empty password", service: "alpha", password: ""},
		{name: "uppercase service", service: "Alpha", password: "pw"},
		{name: "underscore in service", service: "al_pha", password: "pw"},
		{name: "quote in service", service: `a"b`, password: "pw"},
		{name: "name too long", service: "a" + strings.Repeat("b", 60), password: "pw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Provisioner().Ensure(t.Context(), tt.service, tt.password)
			assert.Error(t, err)
		})
	}
}

func TestEnsureConcurrently(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := pgtest.New(t)
	services := []string{"alpha", "beta", "gamma"}

	var wg sync.WaitGroup
	errs := make(chan error, 2*len(services))
	for _, svc := range services {
		for i := range 2 {
			wg.Go(func() {
				_, err := c.Provisioner().Ensure(ctx, svc, fmt.Sprintf("%s-password-%d", svc, i))
				errs <- err
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	admin := adminPool(t)
	for _, svc := range services {
		var n int
		require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, c.Naming().Database(svc)).Scan(&n))
		assert.Equal(t, 1, n, svc)
	}
}

func TestDrop(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := pgtest.New(t)
	admin := adminPool(t)
	pool, _ := c.Provision(t, "alpha")
	require.NoError(t, pool.Ping(ctx)) // an open session must not block the drop

	require.NoError(t, c.Provisioner().Drop(ctx, "alpha"))
	require.NoError(t, c.Provisioner().Drop(ctx, "alpha"), "dropping twice")

	var databases, roles int
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, c.Naming().Database("alpha")).Scan(&databases))
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM pg_roles WHERE rolname = $1`, c.Naming().Role("alpha")).Scan(&roles))
	assert.Zero(t, databases)
	assert.Zero(t, roles)
}

func TestDropAllKeepsLongerPrefixes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := pgtest.New(t)
	admin := adminPool(t)
	// A longer prefix nests inside the cluster's: "<prefix>_x_beta".
	nested, err := pg.NewProvisioner(ctx, pgtest.AdminURL(t), pg.Naming{Prefix: c.Naming().Prefix + "_x"}, nil)
	require.NoError(t, err)
	defer nested.Close()
	_, err = nested.Ensure(ctx, "beta", "pw")
	require.NoError(t, err)
	defer func() { assert.NoError(t, nested.DropAll(ctx)) }()
	_, err = c.Provisioner().Ensure(ctx, "alpha", "pw")
	require.NoError(t, err)

	require.NoError(t, c.Provisioner().DropAll(ctx))

	var alpha, beta int
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, c.Naming().Database("alpha")).Scan(&alpha))
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, nested.Naming().Database("beta")).Scan(&beta))
	assert.Zero(t, alpha)
	assert.Equal(t, 1, beta)
}

func TestBlockConnections(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := pgtest.New(t)
	pool, creds := c.Provision(t, "alpha")
	_, err := pool.Exec(ctx, `SELECT 1`)
	require.NoError(t, err)

	require.NoError(t, c.Provisioner().BlockConnections(ctx, "alpha"))

	_, err = pg.Open(ctx, creds, pg.PoolConfig{})
	require.Error(t, err)
	assert.True(t, pg.IsUnavailable(err), "new connection: %v", err)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, "55000", pgErr.Code)
	// The pool's session was terminated: its next use fails as unavailable too.
	_, err = pool.Exec(ctx, `SELECT 1`)
	require.Error(t, err)
	assert.True(t, pg.IsUnavailable(err), "existing pool: %v", err)

	require.NoError(t, c.Provisioner().AllowConnections(ctx, "alpha"))

	fresh, err := pg.Open(ctx, creds, pg.PoolConfig{})
	require.NoError(t, err)
	fresh.Close()
	// The old pool discards dead connections as it meets them and recovers.
	for range pool.Stat().MaxConns() {
		if _, err = pool.Exec(ctx, `SELECT 1`); err == nil {
			break
		}
	}
	assert.NoError(t, err)
}
