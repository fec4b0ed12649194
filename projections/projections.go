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

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/eventsdb"
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
	return events.NewConsumer(cfg.JS, cc)
}

// Handler returns the events.Handler that applies p's events exactly once
// in effect against pool.
func Handler(p Projector, pool *pgxpool.Pool) events.Handler {
	durable := p.Durable()
	return func(ctx context.Context, ev events.Event) error {
		apply, ok := p.Handlers[ev.Subject()]
		if !ok {
			return nil // a subject this projector does not care about
		}
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			n, err := eventsdb.New(tx).MarkProcessed(ctx, eventsdb.MarkProcessedParams{Consumer: durable, EventID: ev.ID})
			if err != nil {
				return fmt.Errorf("record %s as processed: %w", ev.ID, err)
			}
			if n == 0 {
				return nil // applied before: a redelivery
			}
			return apply(events.CausedBy(ctx, ev), tx, ev)
		})
		if err != nil {
			return fmt.Errorf("project %s %s (seq %d): %w", ev.Type(), ev.ID, ev.Sequence, err)
		}
		return nil
	}
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
