package pg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// MigrationSource is one ordered set of migrations, such as the shared event
// store's or a service's own.
type MigrationSource struct {
	// Name identifies the source in schema_migrations ("events", "identity").
	Name string
	// FS holds the NNNN_name.sql files at its root (use fs.Sub on an embed.FS).
	// Other files and subdirectories are ignored; a source without any .sql
	// file is an error, as it usually means the wrong root.
	FS fs.FS
}

// migrationFile matches "0001_init.sql": a version of at least one digit, an
// underscore and a lowercase name.
var migrationFile = regexp.MustCompile(`^([0-9]+)_([a-z0-9_]+)\.sql$`)

// migrateLockKey names the transaction advisory lock that serialises migrators
// of one database (advisory locks are per database).
const migrateLockKey = "authms.schema_migrations"

type migration struct {
	version  int
	file     string
	sql      string
	checksum string
}

// Migrate applies the sources' migrations to the database behind pool, sources
// in the order given and each source's files in version order. Versions start
// at 1 and have no gaps or duplicates. Every file runs in its own transaction
// together with its schema_migrations row; a file already applied is skipped,
// and an applied file whose content changed is an error naming it, as
// migrations are forward-only.
//
// Concurrent migrators (several instances starting at once) are serialised by
// a transaction-scoped advisory lock taken before each file: unlike a session
// lock it is released with the transaction, so Migrate also works through
// PgBouncer in transaction mode and never leaks a lock on a broken connection.
// Applied versions newer than the files given are ignored, so an old binary
// keeps running during a rolling deploy. With no sources Migrate does nothing.
func Migrate(ctx context.Context, pool *pgxpool.Pool, sources ...MigrationSource) error {
	if len(sources) == 0 {
		return nil
	}
	seen := make(map[string]bool, len(sources))
	plans := make([][]migration, len(sources))
	for i, src := range sources {
		if src.Name == "" || src.FS == nil {
			return fmt.Errorf("migrate: source %d has no name or no FS", i)
		}
		if seen[src.Name] {
			return fmt.Errorf("migrate %s: source given twice", src.Name)
		}
		seen[src.Name] = true
		ms, err := readMigrations(src)
		if err != nil {
			return err
		}
		plans[i] = ms
	}
	if err := InTx(ctx, pool, func(tx pgx.Tx) error {
		if err := lockMigrations(ctx, tx); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
CREATE TABLE IF NOT EXISTS schema_migrations (
	source     text        NOT NULL,
	version    int         NOT NULL,
	name       text        NOT NULL,
	checksum   text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (source, version)
)`)
		return err
	}); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	for i, src := range sources {
		for _, m := range plans[i] {
			if err := apply(ctx, pool, src.Name, m); err != nil {
				return fmt.Errorf("migrate %s/%s: %w", src.Name, m.file, err)
			}
		}
	}
	return nil
}

func readMigrations(src MigrationSource) ([]migration, error) {
	entries, err := fs.ReadDir(src.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("migrate %s: read migrations: %w", src.Name, err)
	}
	var ms []migration
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		m := migrationFile.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migrate %s/%s: file name is not NNNN_name.sql", src.Name, e.Name())
		}
		version, err := strconv.Atoi(m[1])
		if err != nil {
			return nil, fmt.Errorf("migrate %s/%s: version: %w", src.Name, e.Name(), err)
		}
		body, err := fs.ReadFile(src.FS, e.Name())
		if err != nil {
			return nil, fmt.Errorf("migrate %s/%s: %w", src.Name, e.Name(), err)
		}
		sum := sha256.Sum256(body)
		ms = append(ms, migration{version: version, file: e.Name(), sql: string(body), checksum: hex.EncodeToString(sum[:])})
	}
	if len(ms) == 0 {
		// Most likely the FS root is one level too high (embed.FS without fs.Sub).
		return nil, fmt.Errorf("migrate %s: no .sql files at the root of the source's FS", src.Name)
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		switch {
		case i > 0 && m.version == ms[i-1].version:
			return nil, fmt.Errorf("migrate %s/%s: version %d also used by %s", src.Name, m.file, m.version, ms[i-1].file)
		case m.version != i+1:
			return nil, fmt.Errorf("migrate %s/%s: version %d where %d was expected: gap in numbering", src.Name, m.file, m.version, i+1)
		}
	}
	return ms, nil
}

func apply(ctx context.Context, pool *pgxpool.Pool, source string, m migration) error {
	return InTx(ctx, pool, func(tx pgx.Tx) error {
		if err := lockMigrations(ctx, tx); err != nil {
			return err
		}
		var applied string
		err := tx.QueryRow(ctx, `SELECT checksum FROM schema_migrations WHERE source = $1 AND version = $2`,
			source, m.version).Scan(&applied)
		switch {
		case err == nil:
			if applied != m.checksum {
				return fmt.Errorf("applied file changed: checksum %s, was %s when applied (migrations are forward-only: add a new file)",
					m.checksum, applied)
			}
			return nil
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		// No arguments: pgx sends the file with the simple protocol, which
		// accepts several statements.
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (source, version, name, checksum) VALUES ($1, $2, $3, $4)`,
			source, m.version, m.file, m.checksum); err != nil {
			return fmt.Errorf("record in schema_migrations: %w", err)
		}
		return nil
	})
}

func lockMigrations(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, migrateLockKey); err != nil {
		return fmt.Errorf("lock schema_migrations: %w", err)
	}
	return nil
}
