// Package projections runs projectors: durable consumers of another
// service's stream that maintain read tables in their own service's database.
//
// Each event is applied exactly once in effect: the handler's writes and an
// insert into processed_events (consumer, event_id) commit in one
// transaction, and the message is acknowledged only after the commit, so a
// redelivered event finds its id recorded and is skipped. Under load the
// messages a fetch has already delivered are applied together, in stream
// order, in one such transaction ([BatchHandler]). Upserts are guarded
// by the source aggregate's version ([Table.Upsert]), so redelivery or
// reordering never moves a row backwards. A rebuild ([RebuildProjection])
// records the sequence it covered the stream through in projector_rebuilds,
// and events up to it count as processed.
package projections

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
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
	cc.BatchHandler = BatchHandler(p, cfg.Pool)
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
		if _, ok := p.Handlers[ev.Subject()]; !ok {
			return nil // a subject this projector does not care about
		}
		err := applyBatch(ctx, pool, p, []events.Event{ev})
		if err != nil && ctx.Err() == nil {
			recordFailure(ctx, pool, durable, ev, err)
		}
		return err
	}
}

// BatchHandler returns the events.BatchHandler that applies p's events
// exactly once in effect against pool, all of them in one transaction: it
// records them in processed_events with one statement, which also clears
// the failure record, applies in stream order those not applied before,
// and commits. Events of other subjects are skipped, and an event delivered
// twice in the batch is applied once. When it fails nothing is applied and
// no failure is recorded: the consumer then handles the events one at a
// time with [Handler], which records the failing one.
func BatchHandler(p Projector, pool *pgxpool.Pool) events.BatchHandler {
	return func(ctx context.Context, evs []events.Event) error {
		return applyBatch(ctx, pool, p, evs)
	}
}

// applyBatch applies evs, in order, in one transaction.
func applyBatch(ctx context.Context, pool *pgxpool.Pool, p Projector, evs []events.Event) error {
	todo := make([]events.Event, 0, len(evs))
	seen := make(map[uuid.UUID]struct{}, len(evs))
	for _, ev := range evs {
		if _, ok := p.Handlers[ev.Subject()]; !ok {
			continue // a subject this projector does not care about
		}
		if _, dup := seen[ev.ID]; dup {
			continue // published twice: the first delivery applies it
		}
		seen[ev.ID] = struct{}{}
		todo = append(todo, ev)
	}
	if len(todo) == 0 {
		return nil
	}
	// Marked in event id order: concurrent batches of two instances that
	// share events then wait on each other in one order, never deadlock.
	byID := slices.SortedFunc(slices.Values(todo), func(a, b events.Event) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	params := eventsdb.MarkProcessedBatchParams{
		Consumer:        p.Durable(),
		EventIds:        make([]uuid.UUID, len(byID)),
		StreamSequences: make([]int64, len(byID)),
	}
	for i, ev := range byID {
		params.EventIds[i], params.StreamSequences[i] = ev.ID, int64(ev.Sequence)
	}
	var failed *events.Event
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		fresh, err := eventsdb.New(tx).MarkProcessedBatch(ctx, params)
		if err != nil {
			return fmt.Errorf("record the events as processed: %w", err)
		}
		if len(fresh) == 0 {
			return nil // all applied before: a redelivery
		}
		apply := make(map[uuid.UUID]struct{}, len(fresh))
		for _, id := range fresh {
			apply[id] = struct{}{}
		}
		for i, ev := range todo {
			if _, ok := apply[ev.ID]; !ok {
				continue // applied before
			}
			if err := p.Handlers[ev.Subject()](events.CausedBy(events.EventContext(ctx, ev), ev), tx, ev); err != nil {
				failed = &todo[i]
				return err
			}
		}
		return nil
	})
	switch {
	case err == nil:
		return nil
	case failed != nil:
		return fmt.Errorf("project %s %s (seq %d): %w", failed.Type(), failed.ID, failed.Sequence, err)
	case len(todo) == 1:
		return fmt.Errorf("project %s %s (seq %d): %w", todo[0].Type(), todo[0].ID, todo[0].Sequence, err)
	default:
		return fmt.Errorf("project %d events (seq %d to %d): %w", len(todo), todo[0].Sequence, todo[len(todo)-1].Sequence, err)
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
