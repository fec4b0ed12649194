package pg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PoolConfig tunes a service's connection pool. The zero value is pgxpool's
// defaults with pgx's cached prepared statements.
type PoolConfig struct {
	// MaxConns caps the pool; 0 keeps pgxpool's default (max(4, CPUs)).
	MaxConns int32
	// SimpleProtocol runs every query in pgx.QueryExecModeExec (unnamed
	// statements, no statement cache). Set it behind PgBouncer in transaction
	// mode, where pgx's default fails with 42P05 "prepared statement already
	// exists". Session features (LISTEN, session advisory locks) do not work
	// through such a pooler either way.
	SimpleProtocol bool
}

// Open opens a pool for creds and pings the database. Errors name the database
// and user but never contain the password.
func Open(ctx context.Context, creds Credentials, cfg PoolConfig) (*pgxpool.Pool, error) {
	// The password is set after parsing so no parse error can echo it.
	pcfg, err := pgxpool.ParseConfig(creds.connStringWithoutPassword())
	if err != nil {
		return nil, fmt.Errorf("open database %s as %s: %w", creds.Database, creds.User, err)
	}
	if creds.Password != "" {
		pcfg.ConnConfig.Password = creds.Password
	}
	if cfg.MaxConns > 0 {
		pcfg.MaxConns = cfg.MaxConns
	}
	if cfg.SimpleProtocol {
		pcfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("open database %s as %s: %w", creds.Database, creds.User, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database %s as %s: %w", creds.Database, creds.User, err)
	}
	return pool, nil
}

// rollbackTimeout bounds the rollback InTx runs after fn fails, even when ctx is
// already cancelled, so the connection goes back to the pool clean.
const rollbackTimeout = 5 * time.Second

// InTx runs fn in a transaction on pool: it commits when fn returns nil and
// rolls back otherwise (also when fn panics). fn's error is returned as is, so
// callers can match domain errors with errors.Is; begin and commit failures are
// wrapped.
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	committed := false
	defer func() {
		if committed {
			return
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		// A failed rollback closes the connection; fn's error is what matters.
		_ = tx.Rollback(rctx)
	}()
	if err := fn(tx); err != nil {
		return err
	}
	committed = true
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// IsUniqueViolation reports whether err is a unique violation (SQLSTATE 23505)
// of constraint, or of any constraint when constraint is "".
func IsUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		return false
	}
	return constraint == "" || pgErr.ConstraintName == constraint
}

// IsUnavailable reports whether err means the database cannot be reached or
// is not accepting work right now, so the operation may succeed later
// unchanged: connection failures (SQLSTATE class 08, network errors, EOF),
// shutdowns and terminated sessions (57P01, 57P02, 57P03), too many
// connections (53300), a database that does not accept connections (55000
// "... is not currently accepting connections") and timeouts. Errors the
// server returns about the request itself (syntax, constraints, permissions,
// a missing database) are not unavailability.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"),
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03",
			pgErr.Code == "53300":
			return true
		case pgErr.Code == "55000":
			return strings.Contains(pgErr.Message, "not currently accepting connections")
		default:
			return false
		}
	}
	if pgconn.Timeout(err) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
