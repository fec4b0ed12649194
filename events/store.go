package events

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/authms/authms/events/eventsdb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations holds the event-store tables (events, outbox,
// processed_events) that every service database applies before its own.
var Migrations = mustSub(migrations, "migrations")

func mustSub(f embed.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the directory is embedded above; this cannot fail
	}
	return sub
}

// Change is one new fact to record about an aggregate.
type Change struct {
	// Name is the past-tense event name: "created", "email_changed".
	Name string
	// Payload is the event message from schemas/.
	Payload proto.Message
}

// Aggregate names the aggregate a command changes.
type Aggregate struct {
	Type     string // "user", "wallet"
	ID       string
	TenantID string
}

// Store appends and loads one service's events. It holds no connection: every
// method runs in the caller's transaction, so the state change, the events and
// the outbox rows commit or roll back together.
type Store struct {
	service string
	now     func() time.Time
}

// NewStore returns the event store of service (lower case, e.g. "identity").
func NewStore(service string) *Store {
	return &Store{service: service, now: time.Now}
}

// Service is the name of the service that owns the store.
func (s *Store) Service() string { return s.service }

// Lock takes a transaction-scoped lock on the aggregate, serialising commands
// on it until tx ends. Commands that decide on current state (a withdrawal
// checking the balance) lock first, so they never race.
func (s *Store) Lock(ctx context.Context, tx pgx.Tx, aggregateID string) error {
	if err := eventsdb.New(tx).LockAggregate(ctx, aggregateID); err != nil {
		return fmt.Errorf("lock aggregate %s: %w", aggregateID, err)
	}
	return nil
}

// Version returns the aggregate's current version, 0 if it has no events.
func (s *Store) Version(ctx context.Context, tx pgx.Tx, aggregateID string) (int64, error) {
	v, err := eventsdb.New(tx).AggregateVersion(ctx, aggregateID)
	if err != nil {
		return 0, fmt.Errorf("read version of aggregate %s: %w", aggregateID, err)
	}
	return v, nil
}

// LatestEventID returns the id of the aggregate's newest event; ok is false
// when it has none. A command that changes nothing (a repeated idempotency
// key, an unchanged value) reports that event's position, which its
// response reflects.
func (s *Store) LatestEventID(ctx context.Context, tx pgx.Tx, aggregateID string) (id uuid.UUID, ok bool, err error) {
	id, err = eventsdb.New(tx).LatestEventID(ctx, aggregateID)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return uuid.UUID{}, false, nil
	case err != nil:
		return uuid.UUID{}, false, fmt.Errorf("read the newest event of aggregate %s: %w", aggregateID, err)
	}
	return id, true, nil
}

// Load returns the aggregate's events in version order.
func (s *Store) Load(ctx context.Context, tx pgx.Tx, aggregateID string) ([]Event, error) {
	rows, err := eventsdb.New(tx).LoadAggregate(ctx, aggregateID)
	if err != nil {
		return nil, fmt.Errorf("load aggregate %s: %w", aggregateID, err)
	}
	out := make([]Event, 0, len(rows))
	for _, r := range rows {
		e, err := s.fromRow(r.ID, r.TenantID, r.AggregateType, r.AggregateID, r.Version, r.Type, r.Data, r.Metadata, r.OccurredAt)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Append records changes to agg as events expectedVersion+1, +2, ... and
// writes them to the outbox, all in tx. If another transaction appended to
// the aggregate first, it returns ErrConcurrency and tx must be rolled back.
func (s *Store) Append(ctx context.Context, tx pgx.Tx, agg Aggregate, expectedVersion int64, changes ...Change) ([]Event, error) {
	if agg.ID == "" || agg.Type == "" || agg.TenantID == "" {
		return nil, fmt.Errorf("append to %s %q: aggregate type, id and tenant are required", agg.Type, agg.ID)
	}
	trace := TraceFrom(ctx)
	now := s.now().UTC().Truncate(time.Microsecond) // PostgreSQL keeps microseconds
	q := eventsdb.New(tx)
	out := make([]Event, 0, len(changes))
	for i, c := range changes {
		data, err := proto.MarshalOptions{Deterministic: true}.Marshal(c.Payload)
		if err != nil {
			return nil, fmt.Errorf("encode %s.%s: %w", agg.Type, c.Name, err)
		}
		e := Event{
			ID:            uuid.Must(uuid.NewV7()),
			Service:       s.service,
			AggregateType: agg.Type,
			AggregateID:   agg.ID,
			Name:          c.Name,
			TypeVersion:   defaultTypeVersion,
			TenantID:      agg.TenantID,
			Version:       expectedVersion + int64(i) + 1,
			Time:          now,
			CorrelationID: trace.CorrelationID,
			CausationID:   trace.CausationID,
			TraceParent:   trace.TraceParent,
			MessageName:   c.Payload.ProtoReflect().Descriptor().FullName(),
			Data:          data,
		}
		meta, err := json.Marshal(metadata{
			CorrelationID: e.CorrelationID,
			CausationID:   e.CausationID,
			TraceParent:   e.TraceParent,
			MessageName:   string(e.MessageName),
		})
		if err != nil {
			return nil, fmt.Errorf("encode metadata: %w", err)
		}
		err = q.InsertEvent(ctx, eventsdb.InsertEventParams{
			ID:            e.ID,
			TenantID:      e.TenantID,
			AggregateType: e.AggregateType,
			AggregateID:   e.AggregateID,
			Version:       e.Version,
			Type:          e.Type(),
			Subject:       e.Subject(),
			Data:          e.Data,
			Metadata:      meta,
			OccurredAt:    e.Time,
		})
		if err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "events_aggregate_id_version_key" {
				return nil, fmt.Errorf("append %s to %s %s at version %d: %w", e.Type(), agg.Type, agg.ID, e.Version, ErrConcurrency)
			}
			return nil, fmt.Errorf("append %s to %s %s: %w", e.Type(), agg.Type, agg.ID, err)
		}
		if err := insertOutbox(ctx, q, e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func insertOutbox(ctx context.Context, q *eventsdb.Queries, e Event) error {
	headers, err := json.Marshal(e.Headers())
	if err != nil {
		return fmt.Errorf("encode headers of %s: %w", e.ID, err)
	}
	if err := q.InsertOutbox(ctx, eventsdb.InsertOutboxParams{
		EventID: e.ID,
		Subject: e.Subject(),
		Headers: headers,
		Data:    e.Data,
	}); err != nil {
		return fmt.Errorf("write %s to the outbox: %w", e.ID, err)
	}
	return nil
}

// metadata is the events.metadata column: envelope fields without a column.
type metadata struct {
	CorrelationID string `json:"correlation_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	TraceParent   string `json:"traceparent,omitempty"`
	MessageName   string `json:"message,omitempty"`
}

func (s *Store) fromRow(id uuid.UUID, tenant, aggType, aggID string, version int64, typ string, data, meta []byte, at time.Time) (Event, error) {
	var m metadata
	if err := json.Unmarshal(meta, &m); err != nil {
		return Event{}, fmt.Errorf("decode metadata of event %s: %w", id, err)
	}
	subject, tv := splitType(typ)
	e := Event{
		ID:            id,
		AggregateType: aggType,
		AggregateID:   aggID,
		TypeVersion:   tv,
		TenantID:      tenant,
		Version:       version,
		Time:          at,
		CorrelationID: m.CorrelationID,
		CausationID:   m.CausationID,
		TraceParent:   m.TraceParent,
		MessageName:   protoreflect.FullName(m.MessageName),
		Data:          data,
	}
	var ok bool
	e.Service, e.Name, ok = serviceAndName(subject, aggType)
	if !ok {
		return Event{}, fmt.Errorf("event %s: type %q does not fit aggregate %q", id, typ, aggType)
	}
	return e, nil
}
