package pg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SQLSTATE codes the provisioner tolerates when another session won a race.
const (
	codeDuplicateDatabase = "42P04"
	codeDuplicateObject   = "42710"
)

// terminateWait bounds how long BlockConnections waits for terminated backends
// to exit.
const terminateWait = 10 * time.Second

// Provisioner creates and drops service databases and roles through an admin
// (superuser) connection. It is safe for concurrent use.
type Provisioner struct {
	pool    *pgxpool.Pool
	naming  Naming
	logger  *slog.Logger
	host    string
	port    uint16
	sslMode string
}

// NewProvisioner connects to adminURL, a superuser connection string (URL or
// keyword/value), and returns a Provisioner for databases named by naming.
// The credentials it hands out use adminURL's host, port and sslmode. A nil
// logger discards logs.
func NewProvisioner(ctx context.Context, adminURL string, naming Naming, logger *slog.Logger) (*Provisioner, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if !prefixPattern.MatchString(naming.prefix()) {
		return nil, fmt.Errorf("invalid database prefix %q: want [a-z][a-z0-9_]*", naming.prefix())
	}
	cfg, err := pgxpool.ParseConfig(adminURL)
	if err != nil {
		return nil, fmt.Errorf("parse admin connection string: %w", err)
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open admin pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect admin database: %w", err)
	}
	return &Provisioner{
		pool:    pool,
		naming:  naming,
		logger:  logger,
		host:    cfg.ConnConfig.Host,
		port:    cfg.ConnConfig.Port,
		sslMode: sslModeOf(adminURL),
	}, nil
}

// Naming returns the naming the provisioner applies.
func (p *Provisioner) Naming() Naming { return p.naming }

// Close closes the admin connections.
func (p *Provisioner) Close() { p.pool.Close() }

// Ensure idempotently creates the service's role and database: it sets the
// role's password to password, makes the role the database owner, revokes all
// database privileges (CONNECT, TEMPORARY) from PUBLIC, grants CONNECT to the
// role and returns the role's credentials. It is safe to call concurrently for
// different services and repeatedly for the same one; calls for one service
// are serialised by a server-wide advisory lock.
func (p *Provisioner) Ensure(ctx context.Context, service, password string) (Credentials, error) {
	if err := p.naming.Validate(service); err != nil {
		return Credentials{}, err
	}
	if password == "" {
		return Credentials{}, fmt.Errorf("ensure database for %s: empty password", service)
	}
	db, role := p.naming.Database(service), p.naming.Role(service)
	err := p.withLock(ctx, db, func(conn *pgxpool.Conn) error {
		roleCreated, err := p.ensureRole(ctx, conn, role, password)
		if err != nil {
			return err
		}
		dbCreated, err := p.ensureDatabase(ctx, conn, db, role)
		if err != nil {
			return err
		}
		p.logger.Info("service database ensured", "service", service, "database", db,
			"role_created", roleCreated, "database_created", dbCreated)
		return nil
	})
	if err != nil {
		return Credentials{}, fmt.Errorf("ensure database for %s: %w", service, err)
	}
	return Credentials{
		Host:     p.host,
		Port:     p.port,
		Database: db,
		User:     role,
		Password: password,
		SSLMode:  p.sslMode,
	}, nil
}

func (p *Provisioner) ensureRole(ctx context.Context, conn *pgxpool.Conn, role, password string) (created bool, err error) {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up role %s: %w", role, err)
	}
	if !exists {
		_, err := conn.Exec(ctx, "CREATE ROLE "+ident(role)+" LOGIN")
		switch {
		case err == nil:
			created = true
		case isCode(err, codeDuplicateObject):
			// Another provisioner created it first.
		default:
			return false, fmt.Errorf("create role %s: %w", role, err)
		}
	}
	// DDL takes no bind parameters: the server quotes the password itself
	// (format %L), so no client-side escaping can go wrong.
	var ddl string
	if err := conn.QueryRow(ctx, `SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', $1::text, $2::text)`,
		role, password).Scan(&ddl); err != nil {
		return false, fmt.Errorf("quote password of role %s: %w", role, err)
	}
	if _, err := conn.Exec(ctx, ddl); err != nil {
		return false, fmt.Errorf("set password of role %s: %w", role, err)
	}
	return created, nil
}

func (p *Provisioner) ensureDatabase(ctx context.Context, conn *pgxpool.Conn, db, role string) (created bool, err error) {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, db).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up database %s: %w", db, err)
	}
	if !exists {
		// template0: nothing an operator added to template1 leaks into service
		// databases, and no session on template1 can block the copy.
		_, err := conn.Exec(ctx, "CREATE DATABASE "+ident(db)+" OWNER "+ident(role)+" TEMPLATE template0 ENCODING 'UTF8'")
		switch {
		case err == nil:
			created = true
		case isCode(err, codeDuplicateDatabase):
		default:
			return false, fmt.Errorf("create database %s: %w", db, err)
		}
	}
	for _, stmt := range []string{
		"ALTER DATABASE " + ident(db) + " OWNER TO " + ident(role),
		"REVOKE ALL ON DATABASE " + ident(db) + " FROM PUBLIC",
		"GRANT CONNECT ON DATABASE " + ident(db) + " TO " + ident(role),
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return false, fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return created, nil
}

// Drop terminates the service's sessions and drops its database and role. A
// missing database or role is not an error.
func (p *Provisioner) Drop(ctx context.Context, service string) error {
	if err := p.naming.Validate(service); err != nil {
		return err
	}
	db, role := p.naming.Database(service), p.naming.Role(service)
	err := p.withLock(ctx, db, func(conn *pgxpool.Conn) error {
		return p.drop(ctx, conn, db, role)
	})
	if err != nil {
		return fmt.Errorf("drop database for %s: %w", service, err)
	}
	p.logger.Info("service database dropped", "service", service, "database", db)
	return nil
}

func (p *Provisioner) drop(ctx context.Context, conn *pgxpool.Conn, db, role string) error {
	// FORCE terminates the database's sessions and waits for them.
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(db)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", db, err)
	}
	// The role may still hold sessions on other databases (postgres).
	if _, err := conn.Exec(ctx,
		`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()`, role); err != nil {
		return fmt.Errorf("terminate sessions of role %s: %w", role, err)
	}
	if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+ident(role)); err != nil {
		return fmt.Errorf("drop role %s: %w", role, err)
	}
	return nil
}

// DropAll drops every database and role named "<prefix>_<service>" under the
// provisioner's naming, whether or not this provisioner created it: the
// clean-up for tests and for a development reset. Names with further
// underscores (another, longer prefix) are left alone.
func (p *Provisioner) DropAll(ctx context.Context) error {
	// The prefix is [a-z][a-z0-9_]* (checked by NewProvisioner), so it needs no
	// regexp quoting; the service part matches Naming.Validate.
	const q = `
SELECT datname FROM pg_database WHERE datname ~ $1
UNION
SELECT rolname FROM pg_roles WHERE rolname ~ $1`
	rows, err := p.pool.Query(ctx, q, "^"+p.naming.prefix()+"_[a-z][a-z0-9]*$")
	if err != nil {
		return fmt.Errorf("list databases with prefix %s: %w", p.naming.prefix(), err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list databases with prefix %s: %w", p.naming.prefix(), err)
	}
	var errs []error
	for _, name := range names {
		if err := p.Drop(ctx, name[len(p.naming.prefix())+1:]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// BlockConnections injects a database outage for fault-injection tests: it sets
// the service's database to ALLOW_CONNECTIONS false (new connections fail with
// SQLSTATE 55000, which [IsUnavailable] reports) and terminates its sessions,
// waiting until they are gone.
func (p *Provisioner) BlockConnections(ctx context.Context, service string) error {
	if err := p.naming.Validate(service); err != nil {
		return err
	}
	db := p.naming.Database(service)
	if _, err := p.pool.Exec(ctx, "ALTER DATABASE "+ident(db)+" ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("block connections to %s: %w", db, err)
	}
	deadline := time.Now().Add(terminateWait)
	for {
		var left int
		err := p.pool.QueryRow(ctx, `
WITH t AS (
	SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	WHERE datname = $1 AND pid <> pg_backend_pid()
)
SELECT count(*) FROM t`, db).Scan(&left)
		if err != nil {
			return fmt.Errorf("terminate sessions on %s: %w", db, err)
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("terminate sessions on %s: %d still open after %s", db, left, terminateWait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("terminate sessions on %s: %w", db, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// AllowConnections undoes [Provisioner.BlockConnections].
func (p *Provisioner) AllowConnections(ctx context.Context, service string) error {
	if err := p.naming.Validate(service); err != nil {
		return err
	}
	db := p.naming.Database(service)
	if _, err := p.pool.Exec(ctx, "ALTER DATABASE "+ident(db)+" ALLOW_CONNECTIONS true"); err != nil {
		return fmt.Errorf("allow connections to %s: %w", db, err)
	}
	return nil
}

// withLock runs fn on one admin connection holding a session advisory lock
// keyed by name, so that concurrent provisioners (in this process or others)
// never interleave DDL for the same database.
func (p *Provisioner) withLock(ctx context.Context, name string, fn func(*pgxpool.Conn) error) error {
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire admin connection: %w", err)
	}
	defer conn.Release()
	key := "authms.provision:" + name
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended($1, 0))`, key); err != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, key); err != nil {
			// Closing the session is the only other way to release the lock;
			// the pool then discards the connection.
			_ = conn.Conn().Close(uctx)
		}
	}()
	return fn(conn)
}

// ident quotes a name as one SQL identifier.
func ident(name string) string {
	return pgx.Identifier{name}.Sanitize()
}

func isCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}
