// Package projections runs projectors: durable consumers of another
// service's stream that maintain read tables in their own service's database.
//
// Each event is applied exactly once in effect: the handler's writes and an
// insert into processed_events (consumer, event_id) commit in one
// transaction, and the message is acknowledged only after the commit, so a
// redelivered event finds its id recorded and is skipped. Upserts are guarded
// by the source aggregate's version ([Table.Upsert]), so redelivery or
// reordering never moves a row backwards.
package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/eventsdb"
	"github.com/authms/authms/events/pg"
)

// Apply changes the projector's tables for one event inside tx.
type Apply func(ctx context.Context, tx pgx.Tx, ev events.Event) error

// Projector describes one projection.
type Projector struct {
	// Service is the service that owns the projection and its database.
	Service string
	// Name is unique within the service, e.g. "user_profiles"; the durable
	// consumer is "<service>_<name>".
	Name string
	// Source is the service whose stream is projected, e.g. "identity".
	Source string
	// Handlers maps a subject ("identity.user.created") to its Apply; the
	// consumer only receives these subjects.
	Handlers map[string]Apply
	// Rebuild, when set, lets the projection be rebuilt by replay
	// ([RebuildProjection]).
	Rebuild *Rebuild
}

// Durable is the projector's durable consumer name.
func (p Projector) Durable() string { return p.Service + "_" + p.Name }

// Config carries what a running projector needs.
type Config struct {
	Pool   *pgxpool.Pool
	JS     jetstream.JetStream
	Logger *slog.Logger
	// Consumer overrides retry settings (MaxDeliver, Backoff, AckWait);
	// identity fields are filled from the Projector.
	Consumer events.ConsumerConfig
}

// NewConsumer returns the durable consumer that runs p.
func NewConsumer(p Projector, cfg Config) (*events.Consumer, error) {
	if p.Service == "" || p.Name == "" || p.Source == "" || len(p.Handlers) == 0 {
		return nil, errors.New("projector: service, name, source and handlers are required")
	}
	if cfg.Pool == nil {
		return nil, fmt.Errorf("projector %s: a pool is required", p.Durable())
	}
	cc := cfg.Consumer
	cc.Service = p.Service
	cc.Durable = p.Durable()
	cc.Stream = events.StreamName(p.Source)
	cc.Subjects = slices.Sorted(maps.Keys(p.Handlers))
	cc.Logger = cfg.Logger
	cc.Handler = Handler(p, cfg.Pool)
	// The projector's only dependency is its own database: while it is
	// unreachable the consumer waits instead of spending delivery attempts.
	if cc.Healthy == nil {
		cc.Healthy = cfg.Pool.Ping
	}
	if cc.Unavailable == nil {
		cc.Unavailable = pg.IsUnavailable
	}
	return events.NewConsumer(cfg.JS, cc)
}

// Handler returns the events.Handler that applies p's events exactly once
// in effect against pool. A failure is recorded in projector_failures,
// outside the rolled-back transaction, until an event at or after it is
// applied.
func Handler(p Projector, pool *pgxpool.Pool) events.Handler {
	durable := p.Durable()
	return func(ctx context.Context, ev events.Event) error {
		apply, ok := p.Handlers[ev.Subject()]
		if !ok {
			return nil // a subject this projector does not care about
		}
		seq := int64(ev.Sequence)
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			q := eventsdb.New(tx)
			n, err := q.MarkProcessed(ctx, eventsdb.MarkProcessedParams{Consumer: durable, EventID: ev.ID, StreamSequence: &seq})
			if err != nil {
				return fmt.Errorf("record %s as processed: %w", ev.ID, err)
			}
			if n == 0 {
				return nil // applied before: a redelivery
			}
			if err := apply(events.CausedBy(ctx, ev), tx, ev); err != nil {
				return err
			}
			if err := q.ClearProjectorFailure(ctx, eventsdb.ClearProjectorFailureParams{Consumer: durable, StreamSequence: seq}); err != nil {
				return fmt.Errorf("clear the failure record: %w", err)
			}
			return nil
		})
		if err == nil {
			return nil
		}
		err = fmt.Errorf("project %s %s (seq %d): %w", ev.Type(), ev.ID, ev.Sequence, err)
		if ctx.Err() == nil {
			recordFailure(ctx, pool, durable, ev, err)
		}
		return err
	}
}

// recordFailure notes the event a projector fails on. It is best effort:
// when the database itself is down the consumer's outage handling applies.
func recordFailure(ctx context.Context, pool *pgxpool.Pool, durable string, ev events.Event, cause error) {
	text := cause.Error()
	if len(text) > 2048 {
		text = text[:2048] + "…"
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_ = eventsdb.New(pool).RecordProjectorFailure(rctx, eventsdb.RecordProjectorFailureParams{
		Consumer:       durable,
		StreamSequence: int64(ev.Sequence),
		EventID:        ev.ID,
		Subject:        ev.Subject(),
		Error:          text,
	})
}

// State is where a projector stands, as recorded in its service's database.
type State struct {
	// Checkpoint is the stream sequence of the last event applied (0: none).
	Checkpoint uint64
	// Failure is the event the projector is failing on, nil when healthy.
	Failure *Failure
}

// Failure describes the event a projector keeps failing on.
type Failure struct {
	Sequence      uint64
	EventID       string
	Subject       string
	Failures      int
	Error         string
	FirstFailedAt time.Time
	LastFailedAt  time.Time
}

// ReadState reads p's checkpoint and current failure from pool.
func ReadState(ctx context.Context, pool *pgxpool.Pool, p Projector) (State, error) {
	q := eventsdb.New(pool)
	cp, err := q.ProjectorCheckpoint(ctx, p.Durable())
	if err != nil {
		return State{}, fmt.Errorf("read checkpoint of %s: %w", p.Durable(), err)
	}
	st := State{Checkpoint: uint64(cp)}
	f, err := q.ProjectorFailure(ctx, p.Durable())
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return State{}, fmt.Errorf("read failure of %s: %w", p.Durable(), err)
	default:
		st.Failure = &Failure{
			Sequence: uint64(f.StreamSequence), EventID: f.EventID.String(), Subject: f.Subject,
			Failures: int(f.Failures), Error: f.Error, FirstFailedAt: f.FirstFailedAt, LastFailedAt: f.LastFailedAt,
		}
	}
	return st, nil
}

// Table describes a projection table keyed by columns and guarded by a
// version column that holds the source aggregate's version.
type Table struct {
	Name          string
	Key           []string
	Columns       []string // non-key columns written by Upsert
	VersionColumn string   // default "version"
}

// Upsert inserts or updates one row of t from values (key columns, then
// Columns, then the version, in that order). The update only happens when
// the incoming version is newer, so an old or repeated event never moves a
// row backwards. It reports whether a row was written.
func (t Table) Upsert(ctx context.Context, tx pgx.Tx, values ...any) (bool, error) {
	version := t.VersionColumn
	if version == "" {
		version = "version"
	}
	cols := append(append(append([]string{}, t.Key...), t.Columns...), version)
	if len(values) != len(cols) {
		return false, fmt.Errorf("upsert %s: %d values for %d columns", t.Name, len(values), len(cols))
	}
	quoted := make([]string, len(cols))
	params := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = pgx.Identifier{c}.Sanitize()
		params[i] = fmt.Sprintf("$%d", i+1)
	}
	sets := make([]string, 0, len(t.Columns)+1)
	for _, c := range append(append([]string{}, t.Columns...), version) {
		q := pgx.Identifier{c}.Sanitize()
		sets = append(sets, q+" = excluded."+q)
	}
	table := pgx.Identifier{t.Name}.Sanitize()
	v := pgx.Identifier{version}.Sanitize()
	sql := "INSERT INTO " + table + " AS t (" + strings.Join(quoted, ", ") + ") VALUES (" + strings.Join(params, ", ") +
		") ON CONFLICT (" + strings.Join(quoted[:len(t.Key)], ", ") + ") DO UPDATE SET " + strings.Join(sets, ", ") +
		" WHERE t." + v + " < excluded." + v
	tag, err := tx.Exec(ctx, sql, values...)
	if err != nil {
		return false, fmt.Errorf("upsert %s: %w", t.Name, err)
	}
	return tag.RowsAffected() == 1, nil
}
