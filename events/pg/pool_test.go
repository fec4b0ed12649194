package pg_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/events/pg"
	"github.com/authms/authms/events/pg/pgtest"
)

func TestInTx(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool, _ := pgtest.Provision(t, "alpha", pg.MigrationSource{Name: "alpha", FS: sqlFS(map[string]string{
		"0001_items.sql": `CREATE TABLE items (name text CONSTRAINT items_name_key UNIQUE);`,
	})})
	count := func() int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM items`).Scan(&n))
		return n
	}
	insert := func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO items (name) VALUES ('a')`)
		return err
	}

	t.Run("commits on nil", func(t *testing.T) {
		require.NoError(t, pg.InTx(ctx, pool, insert))
		assert.Equal(t, 1, count())
	})
	t.Run("rolls back on error", func(t *testing.T) {
		errDomain := errors.New("domain rule broken")
		err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO items (name) VALUES ('b')`); err != nil {
				return err
			}
			return errDomain
		})
		assert.ErrorIs(t, err, errDomain)
		assert.Equal(t, 1, count())
	})
	t.Run("rolls back on panic", func(t *testing.T) {
		assert.Panics(t, func() {
			_ = pg.InTx(ctx, pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO items (name) VALUES ('c')`); err != nil {
					return err
				}
				panic("boom")
			})
		})
		assert.Equal(t, 1, count())
	})
	t.Run("unique violation", func(t *testing.T) {
		err := pg.InTx(ctx, pool, insert)
		require.Error(t, err)
		assert.True(t, pg.IsUniqueViolation(err, "items_name_key"))
		assert.True(t, pg.IsUniqueViolation(fmt.Errorf("register: %w", err), ""))
		assert.False(t, pg.IsUniqueViolation(err, "other_key"))
		assert.False(t, pg.IsUnavailable(err))
		assert.Equal(t, 1, count())
	})
}

func TestIsUnavailable(t *testing.T) {
	t.Parallel()
	pgErr := func(code, msg string) error { return &pgconn.PgError{Code: code, Message: msg} }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil, want: false},
		{name: "connection failure", err: pgErr("08006", "connection failure"), want: true},
		{name: "admin shutdown", err: fmt.Errorf("load user: %w", pgErr("57P01", "terminating connection due to administrator command")), want: true},
		{name: "crash shutdown", err: pgErr("57P02", "crash"), want: true},
		{name: "cannot connect now", err: pgErr("57P03", "the database system is starting up"), want: true},
		{name: "too many connections", err: pgErr("53300", "too many connections"), want: true},
		{name: "not accepting connections", err: pgErr("55000", `database "x" is not currently accepting connections`), want: true},
		{name: "other 55000", err: pgErr("55000", "object not in prerequisite state"), want: false},
		{name: "insufficient privilege", err: pgErr("42501", "permission denied"), want: false},
		{name: "database does not exist", err: pgErr("3D000", "database does not exist"), want: false},
		{name: "unique violation", err: pgErr("23505", "duplicate key"), want: false},
		{name: "network", err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, want: true},
		{name: "unexpected EOF", err: fmt.Errorf("read: %w", io.ErrUnexpectedEOF), want: true},
		{name: "cancelled", err: context.Canceled, want: false},
		{name: "no rows", err: pgx.ErrNoRows, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, pg.IsUnavailable(tt.err))
		})
	}
}

func TestIsUnavailableOnRealConnectErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := pgtest.New(t)
	creds, err := c.Provisioner().Ensure(ctx, "alpha", "secret-password")
	require.NoError(t, err)

	// Nothing listens on the port.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := creds
	refused.Host = "127.0.0.1"
	refused.Port = uint16(lis.Addr().(*net.TCPAddr).Port)
	require.NoError(t, lis.Close())
	_, err = pg.Open(ctx, refused, pg.PoolConfig{})
	require.Error(t, err)
	assert.True(t, pg.IsUnavailable(err), "%v", err)
	assert.NotContains(t, err.Error(), creds.Password)

	missing := creds
	missing.Database = c.Naming().Database("nosuchservice")
	_, err = pg.Open(ctx, missing, pg.PoolConfig{})
	require.Error(t, err)
	assert.False(t, pg.IsUnavailable(err), "%v", err)
}

func TestOpenSimpleProtocol(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := pgtest.New(t)
	creds, err := c.Provisioner().Ensure(ctx, "alpha", "secret-password")
	require.NoError(t, err)
	pool, err := pg.Open(ctx, creds, pg.PoolConfig{MaxConns: 2, SimpleProtocol: true})
	require.NoError(t, err)
	defer pool.Close()
	assert.Equal(t, int32(2), pool.Config().MaxConns)
	assert.Equal(t, pgx.QueryExecModeExec, pool.Config().ConnConfig.DefaultQueryExecMode)
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT $1::int + 1`, 41).Scan(&n))
	assert.Equal(t, 42, n)
	var prepared int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_prepared_statements`).Scan(&prepared))
	assert.Zero(t, prepared, "no named prepared statements behind PgBouncer")
}
