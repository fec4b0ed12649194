package projections_test

import (
	"context"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/pg"
	"github.com/authms/authms/events/pg/pgtest"
	"github.com/authms/authms/projections"
)

// bookingsSchema is a projection table with every kind of index and
// constraint a rebuild must carry over: a primary key, a unique constraint,
// a deferrable one, an exclusion constraint, a partial expression index and
// a check.
var bookingsSchema = fstest.MapFS{"0001_init.sql": {Data: []byte(`
CREATE TABLE bookings (
    booking_id text      PRIMARY KEY,
    tenant_id  text      NOT NULL,
    ref        text      NOT NULL,
    code       text,
    during     tstzrange NOT NULL,
    version    bigint    NOT NULL CHECK (version > 0),
    CONSTRAINT bookings_ref_key UNIQUE (tenant_id, ref),
    CONSTRAINT bookings_code_key UNIQUE (code) DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT bookings_no_overlap EXCLUDE USING gist (during WITH &&)
);
CREATE INDEX bookings_code_idx ON bookings (lower(code)) WHERE code IS NOT NULL;
`)}}

// bookingFrom projects an orders.order.placed event as a booking of one
// hour, the total-th hour of 2026.
func bookingFrom(ctx context.Context, tx pgx.Tx, ev events.Event) error {
	var total wrapperspb.Int64Value
	if err := ev.Unmarshal(&total); err != nil {
		return err
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(total.GetValue()) * time.Hour)
	_, err := tx.Exec(ctx, `INSERT INTO bookings (booking_id, tenant_id, ref, code, during, version)
		VALUES ($1, $2, $1, 'C-' || $1, tstzrange($3, $4), $5)`, ev.AggregateID, ev.TenantID, start, start.Add(time.Hour), ev.Version)
	return err
}

// ddl describes a table's indexes and constraints as PostgreSQL prints them.
func ddl(t *testing.T, pool *pgxpool.Pool, table string) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `
		SELECT 'index ' || indexname || ': ' || indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = $1
		UNION ALL
		SELECT 'constraint ' || conname || ': ' || pg_get_constraintdef(oid) || CASE WHEN condeferrable THEN ' (deferrable)' ELSE '' END
		FROM pg_constraint WHERE conrelid = ('public.' || $1)::regclass
		ORDER BY 1`, table)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

// A rebuilt table has exactly the indexes and constraints of the table it
// replaces, under the same names, and they hold.
func TestRebuildKeepsIndexesAndConstraints(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Provision(t, service,
		pg.MigrationSource{Name: "events", FS: events.Migrations},
		pg.MigrationSource{Name: service, FS: bookingsSchema})
	js := natsWithStreams(t)
	p := projections.Projector{Service: service, Name: "bookings", Source: source,
		Handlers: map[string]projections.Apply{placed: bookingFrom},
		Rebuild:  &projections.Rebuild{Tables: []string{"bookings"}}}
	run(t, p, pool, js)
	for i, id := range []string{"a", "b", "c"} {
		ev := orderPlaced(t, id, 1, int64(i))
		publish(t, js, ev, ev.ID.String())
	}
	require.Eventually(t, func() bool { return count(t, pool, "SELECT count(*) FROM bookings") == 3 }, 10*time.Second, 10*time.Millisecond)
	before := ddl(t, pool, "bookings")
	require.Len(t, before, 10, "4 indexes backing constraints, 1 of its own; 5 constraints")

	res, err := projections.RebuildProjection(t.Context(), p, projections.RebuildConfig{Pool: pool, JS: js})
	require.NoError(t, err)
	assert.Equal(t, uint64(3), res.Replayed)
	assert.Equal(t, before, ddl(t, pool, "bookings"))
	assert.Equal(t, 3, count(t, pool, "SELECT count(*) FROM bookings"))

	for name, insert := range map[string]string{
		"bookings_pkey":          `INSERT INTO bookings VALUES ('a', 't1', 'x', NULL, tstzrange('2030-01-01', '2030-01-02'), 1)`,
		"bookings_ref_key":       `INSERT INTO bookings VALUES ('x', 't1', 'a', NULL, tstzrange('2030-01-01', '2030-01-02'), 1)`,
		"bookings_code_key":      `INSERT INTO bookings VALUES ('x', 't1', 'x', 'C-a', tstzrange('2030-01-01', '2030-01-02'), 1)`,
		"bookings_no_overlap":    `INSERT INTO bookings VALUES ('x', 't1', 'x', NULL, tstzrange('2026-01-01', '2026-01-02'), 1)`,
		"bookings_version_check": `INSERT INTO bookings VALUES ('x', 't1', 'x', NULL, tstzrange('2030-01-01', '2030-01-02'), 0)`,
	} {
		_, err := pool.Exec(t.Context(), insert)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), name)
	}
}

// totalsFolder folds orders.order.placed events into order_totals.
type totalsFolder struct{ rows map[string][]any }

func (f *totalsFolder) Fold(ev events.Event) error {
	var total wrapperspb.Int64Value
	if err := ev.Unmarshal(&total); err != nil {
		return err
	}
	f.rows[ev.AggregateID] = []any{ev.AggregateID, ev.TenantID, total.GetValue(), ev.Version}
	return nil
}

func (f *totalsFolder) Flush(ctx context.Context, tx pgx.Tx) error {
	rows := make([][]any, 0, len(f.rows))
	for _, r := range f.rows {
		rows = append(rows, r)
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"order_totals"}, []string{"order_id", "tenant_id", "total", "version"}, pgx.CopyFromRows(rows))
	return err
}

// An event no retry could apply (here, an undecodable payload) is left out
// of a rebuild, as the live projector dead-letters it, on the handler path
// and on the fold path alike; the rest is rebuilt and the result counts it.
func TestRebuildSkipsWhatCannotBeApplied(t *testing.T) {
	t.Parallel()
	for _, fold := range []bool{false, true} {
		t.Run(map[bool]string{false: "handlers", true: "folder"}[fold], func(t *testing.T) {
			t.Parallel()
			pool := provision(t)
			js := natsWithStreams(t)
			p := projector(recordEffect)
			p.Rebuild = &projections.Rebuild{Tables: []string{"order_totals"}}
			if fold {
				p.Rebuild.NewFolder = func() projections.Folder { return &totalsFolder{rows: map[string][]any{}} }
			}
			run(t, p, pool, js)
			good := []events.Event{orderPlaced(t, "a", 1, 10), orderPlaced(t, "b", 1, 20)}
			poison := orderPlaced(t, "c", 1, 30)
			poison.Data = []byte{0xff, 0xff, 0xff}
			for _, ev := range []events.Event{good[0], poison, good[1]} {
				publish(t, js, ev, ev.ID.String())
			}
			require.Eventually(t, func() bool { return count(t, pool, "SELECT count(*) FROM order_totals") == 2 }, 10*time.Second, 10*time.Millisecond)

			res, err := projections.RebuildProjection(t.Context(), p, projections.RebuildConfig{Pool: pool, JS: js})
			require.NoError(t, err)
			assert.Equal(t, uint64(3), res.Replayed)
			assert.Equal(t, uint64(1), res.Skipped)
			for _, ev := range good {
				total, version := orderTotal(t, pool, ev.AggregateID)
				assert.Equal(t, int64(1), version, ev.AggregateID)
				assert.Positive(t, total, ev.AggregateID)
			}
			assert.Equal(t, 2, count(t, pool, "SELECT count(*) FROM order_totals"), "the poison event left nothing")
		})
	}
}
