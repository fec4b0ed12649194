package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// HeaderDLQFirstFailedAt keeps the time of a dead letter's first failure
// once a failed re-drive has replaced its authms-dlq-failed-at.
const HeaderDLQFirstFailedAt = "authms-dlq-first-failed-at"

// ErrDeadLetterNotFound reports a sequence that holds no dead letter of the
// service (never did, was re-driven, purged, or replaced by a failed
// re-drive under a new sequence).
var ErrDeadLetterNotFound = errors.New("dead letter not found")

// ErrNoDeadLetterStream reports a service without a DLQ_<SERVICE> stream on
// the server: it never ran there, or NATS_URL points elsewhere.
var ErrNoDeadLetterStream = errors.New("no dead-letter stream")

// DeadLetter is one message of a DLQ_<SERVICE> stream: an event one of the
// service's consumers could not handle, with where it came from and why it
// failed.
//
// A dead letter is identified by Sequence, its sequence in the DLQ stream.
// A failed [Redrive] stores an updated copy and deletes the original, so the
// sequence changes; the event keeps its id (Event.ID).
type DeadLetter struct {
	// Sequence is the message's sequence in DLQ_<SERVICE>.
	Sequence uint64
	// Service is the consuming service that owns the DLQ.
	Service string
	// Subject is the original subject, e.g. "identity.user.created".
	Subject string
	// Stream and StreamSequence locate the original message in its source
	// stream, which still holds it.
	Stream         string
	StreamSequence uint64
	// Consumer is the durable consumer that failed.
	Consumer string
	// Attempts counts every failed delivery and every failed re-drive.
	Attempts int
	// Error is the last failure's text, cut at about 2 KiB.
	Error string
	// Permanent reports that the last failure was marked [Permanent].
	Permanent bool
	// PublishedAt is when the source stream stored the original.
	PublishedAt time.Time
	// FirstFailedAt is when the message was first dead-lettered;
	// LastFailedAt when it last failed (equal until a re-drive fails).
	FirstFailedAt time.Time
	LastFailedAt  time.Time
	// StoredAt is when the DLQ stream stored this copy.
	StoredAt time.Time
	// Event is the parsed envelope, with Stream and Sequence of the
	// original; the zero Event when EventErr is set.
	Event Event
	// EventErr says why the message is not a well-formed authms event.
	EventErr error
	// Headers are all of the message's headers: the envelope and the
	// authms-dlq-* headers.
	Headers nats.Header
	// Data is the payload as stored.
	Data []byte
}

// DeadLetterFilter selects dead letters; the zero value selects all.
type DeadLetterFilter struct {
	// Consumer keeps only the dead letters of this durable consumer.
	Consumer string
	// Tenant keeps only the dead letters whose event envelope names this
	// tenant. A dead letter that is no well-formed event belongs to no
	// tenant: only a filter without Tenant selects it.
	Tenant string
}

// Match reports whether f selects dl.
func (f DeadLetterFilter) Match(dl DeadLetter) bool {
	if f.Consumer != "" && dl.Consumer != f.Consumer {
		return false
	}
	return f.Tenant == "" || (dl.EventErr == nil && dl.Event.TenantID == f.Tenant)
}

// RedriveError reports a re-drive whose handler failed again: the dead
// letter is kept, with the new error and one more attempt, under
// NewSequence.
type RedriveError struct {
	// Sequence is the dead letter's sequence before the re-drive.
	Sequence uint64
	// NewSequence is where the updated dead letter now is.
	NewSequence uint64
	// Err is the handler's error.
	Err error
}

func (e *RedriveError) Error() string {
	return fmt.Sprintf("re-drive of dead letter %d failed (kept as %d): %v", e.Sequence, e.NewSequence, e.Err)
}

func (e *RedriveError) Unwrap() error { return e.Err }

// dlqStream returns the service's DLQ stream.
func dlqStream(ctx context.Context, js jetstream.JetStream, service string) (jetstream.Stream, error) {
	name := DLQStreamName(service)
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%s: %w", name, ErrNoDeadLetterStream)
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	return s, nil
}

// ListDeadLetters returns the service's dead letters that match filter,
// oldest first. It reads DLQ_<SERVICE> message by message without consuming
// anything, up to the last message stored when it started.
func ListDeadLetters(ctx context.Context, js jetstream.JetStream, service string, filter DeadLetterFilter) ([]DeadLetter, error) {
	s, err := dlqStream(ctx, js, service)
	if err != nil {
		return nil, err
	}
	var out []DeadLetter
	err = eachDeadLetter(ctx, s, service, func(dl DeadLetter) error {
		if filter.Match(dl) {
			out = append(out, dl)
		}
		return nil
	})
	return out, err
}

// eachDeadLetter calls fn for every message of the DLQ stream s, up to the
// last one stored when it started.
func eachDeadLetter(ctx context.Context, s jetstream.Stream, service string, fn func(DeadLetter) error) error {
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", DLQStreamName(service), err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	last := info.State.LastSeq
	subjects := "dlq." + service + ".>"
	for seq := info.State.FirstSeq; seq <= last; seq++ {
		// The next message at or after seq: deleted sequences are skipped.
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subjects))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s message %d: %w", DLQStreamName(service), seq, err)
		}
		if m.Sequence > last {
			return nil
		}
		if err := fn(parseDeadLetter(service, m)); err != nil {
			return err
		}
		seq = m.Sequence
	}
	return nil
}

// GetDeadLetter returns the dead letter at seq in DLQ_<SERVICE>, or
// ErrDeadLetterNotFound.
func GetDeadLetter(ctx context.Context, js jetstream.JetStream, service string, seq uint64) (DeadLetter, error) {
	s, err := dlqStream(ctx, js, service)
	if err != nil {
		return DeadLetter{}, err
	}
	return getDeadLetter(ctx, s, service, seq)
}

func getDeadLetter(ctx context.Context, s jetstream.Stream, service string, seq uint64) (DeadLetter, error) {
	m, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, fmt.Errorf("%s sequence %d: %w", DLQStreamName(service), seq, ErrDeadLetterNotFound)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("read %s message %d: %w", DLQStreamName(service), seq, err)
	}
	return parseDeadLetter(service, m), nil
}

// parseDeadLetter reads a DLQ message. Missing or malformed dead-letter
// headers leave their fields zero: a dead letter is shown, whatever it
// holds.
func parseDeadLetter(service string, m *jetstream.RawStreamMsg) DeadLetter {
	h := m.Header
	if h == nil {
		h = nats.Header{}
	}
	dl := DeadLetter{
		Sequence:  m.Sequence,
		Service:   service,
		Subject:   h.Get(HeaderDLQSubject),
		Stream:    h.Get(HeaderDLQStream),
		Consumer:  h.Get(HeaderDLQConsumer),
		Error:     h.Get(HeaderDLQError),
		StoredAt:  m.Time,
		Headers:   h,
		Data:      m.Data,
		Permanent: h.Get(HeaderDLQPermanent) == "true",
	}
	if dl.Subject == "" {
		dl.Subject = strings.TrimPrefix(m.Subject, "dlq."+service+".")
	}
	dl.StreamSequence, _ = strconv.ParseUint(h.Get(HeaderDLQSequence), 10, 64)
	dl.Attempts, _ = strconv.Atoi(h.Get(HeaderDLQAttempts))
	dl.PublishedAt = headerTime(h, HeaderDLQPublishedAt)
	dl.LastFailedAt = headerTime(h, HeaderDLQFailedAt)
	dl.FirstFailedAt = headerTime(h, HeaderDLQFirstFailedAt)
	if dl.LastFailedAt.IsZero() {
		dl.LastFailedAt = m.Time
	}
	if dl.FirstFailedAt.IsZero() {
		dl.FirstFailedAt = dl.LastFailedAt
	}
	ev, err := FromMsg(dl.Subject, h, m.Data)
	if err != nil {
		dl.EventErr = err
	} else {
		ev.Stream, ev.Sequence = dl.Stream, dl.StreamSequence
		dl.Event = ev
	}
	return dl
}

func headerTime(h nats.Header, name string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, h.Get(name))
	if err != nil {
		return time.Time{}
	}
	return t
}

// PurgeDeadLetters deletes the service's dead letters that match filter,
// without applying them, and returns how many it deleted. Without a
// consumer filter it purges what the stream held when it started; dead
// letters arriving meanwhile stay.
func PurgeDeadLetters(ctx context.Context, js jetstream.JetStream, service string, filter DeadLetterFilter) (int, error) {
	s, err := dlqStream(ctx, js, service)
	if err != nil {
		return 0, err
	}
	name := DLQStreamName(service)
	if filter == (DeadLetterFilter{}) {
		info, err := s.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("stream %s: %w", name, err)
		}
		if info.State.Msgs == 0 {
			return 0, nil
		}
		if err := s.Purge(ctx, jetstream.WithPurgeSequence(info.State.LastSeq+1)); err != nil {
			return 0, fmt.Errorf("purge %s: %w", name, err)
		}
		return int(info.State.Msgs), nil
	}
	var seqs []uint64
	err = eachDeadLetter(ctx, s, service, func(dl DeadLetter) error {
		if filter.Match(dl) {
			seqs = append(seqs, dl.Sequence)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, seq := range seqs {
		if err := s.DeleteMsg(ctx, seq); err != nil {
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue // re-driven or purged meanwhile
			}
			return n, fmt.Errorf("delete %s message %d: %w", name, seq, err)
		}
		n++
	}
	return n, nil
}

// Redrive applies the dead letter at seq again through handler, which must
// be the handler of the consumer that dead-lettered it (projectors are
// idempotent through processed_events, so an event applied meanwhile is
// skipped).
//
// On success the dead letter is deleted. When the handler fails, the dead
// letter is kept with the new error, one more attempt and the new failure
// time: an updated copy is published and the original deleted, so it moves
// to a new sequence, reported in the returned *[RedriveError]. A sequence
// holding no dead letter gives ErrDeadLetterNotFound; other errors mean the
// DLQ could not be read or written, and the dead letter is unchanged.
func Redrive(ctx context.Context, js jetstream.JetStream, service string, seq uint64, handler Handler) error {
	if handler == nil {
		return errors.New("redrive: a handler is required")
	}
	s, err := dlqStream(ctx, js, service)
	if err != nil {
		return err
	}
	dl, err := getDeadLetter(ctx, s, service, seq)
	if err != nil {
		return err
	}
	herr := dl.EventErr
	if herr == nil {
		herr = handler(ctx, dl.Event)
	}
	name := DLQStreamName(service)
	if herr == nil {
		if err := s.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("re-drive of dead letter %d succeeded, but deleting it from %s failed (a second re-drive is harmless): %w",
				seq, name, err)
		}
		return nil
	}
	newSeq, err := republish(ctx, js, s, dl, herr)
	if err != nil {
		return fmt.Errorf("re-drive of dead letter %d failed (%w), and recording the failure failed: %w", seq, herr, err)
	}
	return &RedriveError{Sequence: seq, NewSequence: newSeq, Err: herr}
}

// republish stores an updated copy of dl that records cause, then deletes
// dl. It returns the copy's sequence.
func republish(ctx context.Context, js jetstream.JetStream, s jetstream.Stream, dl DeadLetter, cause error) (uint64, error) {
	msg := nats.NewMsg(DLQSubject(dl.Service, dl.Subject))
	for k, v := range dl.Headers {
		msg.Header[k] = append([]string(nil), v...)
	}
	msg.Header.Del(jetstream.MsgIDHeader)
	text := cause.Error()
	if len(text) > 2048 {
		text = text[:2048] + "…"
	}
	msg.Header.Set(HeaderDLQFirstFailedAt, dl.FirstFailedAt.UTC().Format(time.RFC3339Nano))
	msg.Header.Set(HeaderDLQFailedAt, time.Now().UTC().Format(time.RFC3339Nano))
	msg.Header.Set(HeaderDLQAttempts, strconv.Itoa(dl.Attempts+1))
	msg.Header.Set(HeaderDLQError, text)
	msg.Header.Set(HeaderDLQPermanent, strconv.FormatBool(IsPermanent(cause)))
	msg.Data = dl.Data
	// The id makes a retried re-drive of the same sequence (copy stored, old
	// one not deleted) store no second copy within the duplicate window.
	msgID := fmt.Sprintf("redrive:%s:%d", DLQStreamName(dl.Service), dl.Sequence)
	ack, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(DLQStreamName(dl.Service)))
	if err != nil {
		return 0, fmt.Errorf("publish to %s: %w", DLQStreamName(dl.Service), err)
	}
	if err := s.DeleteMsg(ctx, dl.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return ack.Sequence, fmt.Errorf("delete %s message %d: %w", DLQStreamName(dl.Service), dl.Sequence, err)
	}
	return ack.Sequence, nil
}
