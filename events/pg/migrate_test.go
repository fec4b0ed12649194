package pg_test

import (
	"fmt"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/events/pg"
	"github.com/authms/authms/events/pg/pgtest"
)

func sqlFS(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, body := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(body)}
	}
	return fsys
}

func TestMigrateAppliesInOrderOnce(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool, _ := pgtest.Provision(t, "alpha")

	events := pg.MigrationSource{Name: "events", FS: sqlFS(map[string]string{
		"0001_log.sql":   `CREATE TABLE log (seq serial PRIMARY KEY, entry text NOT NULL);`,
		"0002_first.sql": `INSERT INTO log (entry) VALUES ('events/2');`,
		"README.md":      `not a migration`,
	})}
	// Unpadded numbers: 10 sorts after 9 by number, not by name.
	svcFiles := map[string]string{}
	for v := 1; v <= 10; v++ {
		svcFiles[fmt.Sprintf("%d_step.sql", v)] = fmt.Sprintf(
			`INSERT INTO log (entry) VALUES ('alpha/%d'); INSERT INTO log (entry) VALUES ('alpha/%d again');`, v, v)
	}
	service := pg.MigrationSource{Name: "alpha", FS: sqlFS(svcFiles)}

	require.NoError(t, pg.Migrate(ctx, pool, events, service))

	want := []string{"events/2"}
	for v := 1; v <= 10; v++ {
		want = append(want, fmt.Sprintf("alpha/%d", v), fmt.Sprintf("alpha/%d again", v))
	}
	assert.Equal(t, want, logEntries(t, pool))

	type applied struct {
		Source    string
		Version   int
		Name      string
		AppliedAt time.Time
	}
	readApplied := func() []applied {
		rows, err := pool.Query(ctx, `SELECT source, version, name, applied_at FROM schema_migrations ORDER BY applied_at, source, version`)
		require.NoError(t, err)
		got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[applied])
		require.NoError(t, err)
		return got
	}
	before := readApplied()
	require.Len(t, before, 12)
	assert.Equal(t, "events", before[0].Source)
	assert.Equal(t, "0001_log.sql", before[0].Name)

	// A second run changes nothing.
	require.NoError(t, pg.Migrate(ctx, pool, events, service))
	assert.Equal(t, want, logEntries(t, pool))
	assert.Equal(t, before, readApplied())
}

func logEntries(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT entry FROM log ORDER BY seq`)
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return got
}

func TestMigrateRejectsChangedFile(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool, _ := pgtest.Provision(t, "alpha")
	files := map[string]string{
		"0001_log.sql":  `CREATE TABLE log (seq serial PRIMARY KEY, entry text NOT NULL);`,
		"0002_seed.sql": `INSERT INTO log (entry) VALUES ('seed');`,
	}
	require.NoError(t, pg.Migrate(ctx, pool, pg.MigrationSource{Name: "alpha", FS: sqlFS(files)}))

	files["0002_seed.sql"] = `INSERT INTO log (entry) VALUES ('edited');`
	files["0003_more.sql"] = `INSERT INTO log (entry) VALUES ('more');`
	err := pg.Migrate(ctx, pool, pg.MigrationSource{Name: "alpha", FS: sqlFS(files)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "alpha/0002_seed.sql")
	assert.Contains(t, err.Error(), "checksum")
	assert.Equal(t, []string{"seed"}, logEntries(t, pool), "nothing after the changed file ran")
}

func TestMigrateRollsBackFailedFile(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool, _ := pgtest.Provision(t, "alpha")
	src := pg.MigrationSource{Name: "alpha", FS: sqlFS(map[string]string{
		"0001_log.sql": `CREATE TABLE log (seq serial PRIMARY KEY, entry text NOT NULL);`,
		"0002_bad.sql": `INSERT INTO log (entry) VALUES ('half'); SELECT 1/0;`,
	})}
	err := pg.Migrate(ctx, pool, src)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "migrate alpha/0002_bad.sql")
	assert.Empty(t, logEntries(t, pool))
	var versions int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&versions))
	assert.Equal(t, 1, versions)
}

func TestMigrateRejectsBadNumbering(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Provision(t, "alpha")
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{name: "gap", files: map[string]string{"0001_a.sql": "", "0003_c.sql": ""}, want: "alpha/0003_c.sql"},
		{name: "not starting at 1", files: map[string]string{"0002_b.sql": ""}, want: "alpha/0002_b.sql"},
		{name: "duplicate", files: map[string]string{"0001_a.sql": "", "0002_b.sql": "", "0002_c.sql": ""}, want: "version 2 also used"},
		{name: "bad name", files: map[string]string{"0001-init.sql": ""}, want: "alpha/0001-init.sql"},
		{name: "no files at the root", files: map[string]string{"migrations/0001_a.sql": ""}, want: "no .sql files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := pg.Migrate(t.Context(), pool, pg.MigrationSource{Name: "alpha", FS: sqlFS(tt.files)})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	var tables int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_tables WHERE tablename = 'schema_migrations'`).Scan(&tables))
	assert.Zero(t, tables, "bad sources are rejected before touching the database")
}

func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := pgtest.New(t)
	_, creds := c.Provision(t, "alpha")
	// Each file fails if it runs twice: the CREATE TABLE, and the unique key.
	files := map[string]string{
		"0001_applied.sql": `CREATE TABLE applied (version int PRIMARY KEY);`,
	}
	for v := 2; v <= 6; v++ {
		files[fmt.Sprintf("%04d_v.sql", v)] = fmt.Sprintf(`INSERT INTO applied VALUES (%d);`, v)
	}
	events := pg.MigrationSource{Name: "events", FS: sqlFS(map[string]string{"0001_e.sql": `CREATE TABLE e (id int);`})}
	src := pg.MigrationSource{Name: "alpha", FS: sqlFS(files)}

	// Four instances starting at once, each with its own pool.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		pool, err := pg.Open(ctx, creds, pg.PoolConfig{MaxConns: 2})
		require.NoError(t, err)
		defer pool.Close()
		wg.Go(func() { errs[i] = pg.Migrate(ctx, pool, events, src) })
	}
	wg.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "migrator %d", i)
	}

	pool, err := pg.Open(ctx, creds, pg.PoolConfig{})
	require.NoError(t, err)
	defer pool.Close()
	var applied, recorded int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM applied`).Scan(&applied))
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&recorded))
	assert.Equal(t, 5, applied)
	assert.Equal(t, 7, recorded)
}
