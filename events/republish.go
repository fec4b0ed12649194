package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authms/authms/events/eventsdb"
)

// RepublishConfig configures Republish.
type RepublishConfig struct {
	Service string
	Pool    *pgxpool.Pool
	JS      jetstream.JetStream
	// FromStart republishes every event. By default Republish continues
	// after the newest event the stream still holds.
	FromStart bool
	// BatchSize is the number of events read and published per round trip
	// (default 1000).
	BatchSize int
	// Progress, when set, is called after every batch.
	Progress func(published, total uint64)
}

// RepublishResult summarises a Republish.
type RepublishResult struct {
	// After is the events-table position Republish started after.
	After int64
	// Published counts the events the stream stored anew; Duplicates those
	// it already had (JetStream de-duplicated them by Nats-Msg-Id).
	Published, Duplicates uint64
}

// Republish rebuilds a service's stream from its events table, the
// permanent record, for disaster recovery: a stream lost, truncated or
// recreated empty. Events are published in events-table order with
// Nats-Msg-Id set to the event id and the relay's envelope, so consumers
// cannot tell them from the originals. Unless FromStart is set it starts
// after the newest event the stream still holds, so nothing is published
// twice; projectors skip any event they already applied either way.
func Republish(ctx context.Context, cfg RepublishConfig) (RepublishResult, error) {
	if cfg.Service == "" || cfg.Pool == nil || cfg.JS == nil {
		return RepublishResult{}, errors.New("republish: service, pool and jetstream are required")
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 1000
	}
	var res RepublishResult
	q := eventsdb.New(cfg.Pool)
	if !cfg.FromStart {
		after, err := newestPublished(ctx, q, cfg.JS, cfg.Service)
		if err != nil {
			return res, err
		}
		res.After = after
	}
	total, err := q.CountEventsAfter(ctx, res.After)
	if err != nil {
		return res, fmt.Errorf("count events: %w", err)
	}
	store := NewStore(cfg.Service)
	for after := res.After; ; {
		rows, err := q.EventsAfter(ctx, eventsdb.EventsAfterParams{After: after, MaxRows: int32(cfg.BatchSize)})
		if err != nil {
			return res, fmt.Errorf("read events after %d: %w", after, err)
		}
		if len(rows) == 0 {
			return res, nil
		}
		futures := make([]jetstream.PubAckFuture, len(rows))
		for i, row := range rows {
			ev, err := store.fromRow(row.ID, row.TenantID, row.AggregateType, row.AggregateID, row.Version, row.Type, row.Data, row.Metadata, row.OccurredAt)
			if err != nil {
				return res, err
			}
			msg := nats.NewMsg(ev.Subject())
			for k, v := range ev.Headers() {
				msg.Header.Set(k, v)
			}
			msg.Data = ev.Data
			if futures[i], err = cfg.JS.PublishMsgAsync(msg, jetstream.WithMsgID(ev.ID.String())); err != nil {
				return res, fmt.Errorf("publish event %s: %w", ev.ID, err)
			}
		}
		for i, f := range futures {
			select {
			case ack := <-f.Ok():
				if ack.Duplicate {
					res.Duplicates++
				} else {
					res.Published++
				}
			case err := <-f.Err():
				return res, fmt.Errorf("publish event %s: %w", rows[i].ID, err)
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(30 * time.Second):
				return res, fmt.Errorf("publish event %s: no ack within 30s", rows[i].ID)
			}
		}
		after = rows[len(rows)-1].Position
		if cfg.Progress != nil {
			cfg.Progress(res.Published+res.Duplicates, uint64(total))
		}
	}
}

// newestPublished returns the events-table position of the newest event the
// service's stream holds, 0 when it holds none of the table's events.
func newestPublished(ctx context.Context, q *eventsdb.Queries, js jetstream.JetStream, service string) (int64, error) {
	stream, err := js.Stream(ctx, StreamName(service))
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", StreamName(service), err)
	}
	last := stream.CachedInfo().State.LastSeq
	if stream.CachedInfo().State.Msgs == 0 {
		return 0, nil
	}
	msg, err := stream.GetMsg(ctx, last)
	if err != nil {
		return 0, fmt.Errorf("read the newest message of %s: %w", StreamName(service), err)
	}
	ev, err := FromMsg(msg.Subject, msg.Header, msg.Data)
	if err != nil {
		return 0, fmt.Errorf("read the newest message of %s: %w", StreamName(service), err)
	}
	pos, err := q.EventPosition(ctx, ev.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("the newest message of %s (event %s) is not in %s's events table: republish with --from-start", StreamName(service), ev.ID, service)
	}
	if err != nil {
		return 0, fmt.Errorf("find event %s: %w", ev.ID, err)
	}
	return pos, nil
}
