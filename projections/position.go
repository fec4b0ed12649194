package projections

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/eventsdb"
)

// AwaitConfig is what [AwaitPosition] needs to know about a service.
type AwaitConfig struct {
	// Service is the reading service, e.g. "billing".
	Service string
	// Pool connects to the service's database, where its projectors record
	// what they applied.
	Pool *pgxpool.Pool
	// JS reads the projectors' durable consumers and their streams.
	JS jetstream.JetStream
	// Projectors are the service's projectors.
	Projectors []Projector
	// Timeout bounds the wait (default 5s); the request's deadline, when
	// sooner, bounds it too.
	Timeout time.Duration
}

// StreamNotProjectedError reports a position on a stream that the service
// neither owns nor projects, so no wait could ever satisfy it.
type StreamNotProjectedError struct {
	Service, Stream string
}

func (e *StreamNotProjectedError) Error() string {
	return e.Service + " does not project the " + e.Stream + " stream"
}

// UnpublishedPositionError reports a position beyond the last message of
// its stream. A write returns a position only once its event is in the
// stream, so no wait could ever satisfy this one (a made-up position, or
// one from a stream since deleted and recreated).
type UnpublishedPositionError struct {
	Position events.Position
	LastSeq  uint64
}

func (e *UnpublishedPositionError) Error() string {
	return "the " + e.Position.Stream + " stream has no sequence " + strconv.FormatUint(e.Position.Sequence, 10) +
		" (its last is " + strconv.FormatUint(e.LastSeq, 10) + ")"
}

// NotAppliedError reports a position that a service's projectors had not
// applied when the wait ended. The events are on their way; retrying later
// succeeds.
type NotAppliedError struct {
	Service  string
	Position events.Position
}

func (e *NotAppliedError) Error() string {
	return e.Service + " has not yet applied " + e.Position.Stream + " sequence " +
		strconv.FormatUint(e.Position.Sequence, 10) + "; retry"
}

// Polling bounds of AwaitPosition: the first checks come fast, as the
// projector is usually milliseconds behind; later ones back off.
const (
	awaitPollMin = 5 * time.Millisecond
	awaitPollMax = 100 * time.Millisecond
	// awaitReplyMargin is left of the request's deadline to send the
	// Unavailable answer before the caller gives up.
	awaitReplyMargin = 50 * time.Millisecond
)

// AwaitPosition returns once every projector of the service that reads
// pos's stream has applied pos, so a read that follows sees the write that
// returned pos (read your writes). The zero Position returns at once, and
// so does a position on the service's own stream: a position exists only
// after its transaction committed, and the service's reads see its commits.
//
// A projector has applied pos when it recorded the event at pos in
// processed_events, or when its durable consumer acknowledged every
// message up to pos; an event a projector filters out counts as applied
// once the stream holds it and the projector has nothing pending. It
// polls, briefly at first, and fails with
// *[StreamNotProjectedError] when no projector of the service reads pos's
// stream, with *[UnpublishedPositionError] at once when the stream does not
// hold pos, and with *[NotAppliedError] when the wait ends first.
func AwaitPosition(ctx context.Context, cfg AwaitConfig, pos events.Position) error {
	if pos.IsZero() || pos.Stream == events.StreamName(cfg.Service) {
		return nil
	}
	var readers []Projector
	for _, p := range cfg.Projectors {
		if events.StreamName(p.Source) == pos.Stream {
			readers = append(readers, p)
		}
	}
	if len(readers) == 0 {
		return &StreamNotProjectedError{Service: cfg.Service, Stream: pos.Stream}
	}
	if cfg.Pool == nil || cfg.JS == nil {
		return errors.New("await position: a pool and jetstream are required")
	}
	deadline := time.Now().Add(cmp.Or(cfg.Timeout, 5*time.Second))
	if d, ok := ctx.Deadline(); ok && d.Add(-awaitReplyMargin).Before(deadline) {
		deadline = d.Add(-awaitReplyMargin)
	}
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	poll := awaitPollMin
	for {
		done := true
		for len(readers) > 0 {
			ok, err := applied(wctx, cfg, readers[0], pos)
			if unpublished := (*UnpublishedPositionError)(nil); errors.As(err, &unpublished) {
				return err
			}
			if err != nil || !ok {
				done = false
				break
			}
			readers = readers[1:]
		}
		if done {
			return nil
		}
		t := time.NewTimer(poll)
		select {
		case <-wctx.Done():
			t.Stop()
			if errors.Is(ctx.Err(), context.Canceled) {
				return ctx.Err()
			}
			return &NotAppliedError{Service: cfg.Service, Position: pos}
		case <-t.C:
		}
		poll = min(2*poll, awaitPollMax)
	}
}

// applied reports whether p has applied pos. An error (the database or NATS
// unreachable for a moment) counts as not yet: the wait is bounded anyway.
func applied(ctx context.Context, cfg AwaitConfig, p Projector, pos events.Position) (bool, error) {
	seq := int64(pos.Sequence)
	if seq <= 0 { // beyond int64: no stream gets there
		return false, nil
	}
	// Exact: the projector recorded this very event, or a rebuild covered
	// its sequence. (Its checkpoint, the
	// highest sequence it applied, is not enough: a failing event is retried
	// later while the projector applies the ones after it.)
	ok, err := eventsdb.New(cfg.Pool).ProjectorApplied(ctx, eventsdb.ProjectorAppliedParams{Consumer: p.Durable(), StreamSequence: seq})
	if err != nil || ok {
		return ok, err
	}
	// The stream's last sequence is read before the consumer's state, so a
	// consumer with nothing pending has seen at least that much.
	stream, err := cfg.JS.Stream(ctx, pos.Stream)
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", pos.Stream, err)
	}
	if last := stream.CachedInfo().State.LastSeq; last < pos.Sequence {
		return false, &UnpublishedPositionError{Position: pos, LastSeq: last}
	}
	cons, err := cfg.JS.Consumer(ctx, pos.Stream, p.Durable())
	if err != nil {
		return false, fmt.Errorf("consumer %s: %w", p.Durable(), err)
	}
	info := cons.CachedInfo()
	if info.AckFloor.Stream >= pos.Sequence {
		return true, nil
	}
	// Messages the projector filters out move neither its delivered nor its
	// ack floor sequence; with nothing pending and nothing unacknowledged it
	// has applied everything the stream held.
	return info.NumPending == 0 && info.NumAckPending == 0, nil
}
