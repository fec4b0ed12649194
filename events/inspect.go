package events

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
)

// This file is what operators look at: the state of the streams and their
// consumers, and a live tail of the stored messages. `authms events streams`
// and `authms events tail` print it; the admin API's StreamService serves
// it to the console.

// StreamStatus is a stream's counts and its durable consumers. Its JSON
// form is the output of `authms events streams --json`.
type StreamStatus struct {
	Name      string     `json:"name"`
	Subjects  []string   `json:"subjects"`
	Messages  uint64     `json:"messages"`
	Bytes     uint64     `json:"bytes"`
	FirstSeq  uint64     `json:"first_seq"`
	LastSeq   uint64     `json:"last_seq"`
	FirstTime *time.Time `json:"first_time,omitempty"`
	LastTime  *time.Time `json:"last_time,omitempty"`
	// Consumers are the durable consumers, sorted by name; ephemeral ones
	// (tails) are left out.
	Consumers []ConsumerStatus `json:"consumers"`
}

// ConsumerStatus is one durable consumer of a stream.
type ConsumerStatus struct {
	Name           string   `json:"name"`
	FilterSubjects []string `json:"filter_subjects,omitempty"`
	// Pending counts stream messages not yet delivered to the consumer:
	// its lag.
	Pending uint64 `json:"pending"`
	// AckPending counts messages delivered but not acknowledged yet.
	AckPending int `json:"ack_pending"`
	// Redelivered counts messages delivered more than once and still
	// unacknowledged.
	Redelivered int `json:"redelivered"`
	// LastDelivered is the stream sequence last delivered.
	LastDelivered uint64 `json:"last_delivered_seq"`
	// Paused reports a consumer paused by its service (database outage,
	// rebuild).
	Paused bool `json:"paused,omitempty"`
}

// Streams reports the streams keep selects by name (nil keeps every
// stream of the server), sorted by name, each with its durable consumers.
func Streams(ctx context.Context, js jetstream.JetStream, keep func(name string) bool) ([]StreamStatus, error) {
	statuses := []StreamStatus{}
	lister := js.ListStreams(ctx)
	for info := range lister.Info() {
		if keep != nil && !keep(info.Config.Name) {
			continue
		}
		st := StreamStatus{
			Name:      info.Config.Name,
			Subjects:  info.Config.Subjects,
			Messages:  info.State.Msgs,
			Bytes:     info.State.Bytes,
			FirstSeq:  info.State.FirstSeq,
			LastSeq:   info.State.LastSeq,
			Consumers: []ConsumerStatus{},
		}
		if info.State.Msgs > 0 {
			first, last := info.State.FirstTime.UTC(), info.State.LastTime.UTC()
			st.FirstTime, st.LastTime = &first, &last
		}
		statuses = append(statuses, st)
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	slices.SortFunc(statuses, func(a, b StreamStatus) int { return cmp.Compare(a.Name, b.Name) })
	for i := range statuses {
		consumers, err := durableConsumers(ctx, js, statuses[i].Name)
		if err != nil {
			return nil, err
		}
		statuses[i].Consumers = consumers
	}
	return statuses, nil
}

// durableConsumers reports the durable consumers of stream, sorted by name.
func durableConsumers(ctx context.Context, js jetstream.JetStream, stream string) ([]ConsumerStatus, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	out := []ConsumerStatus{}
	consumers := s.ListConsumers(ctx)
	for ci := range consumers.Info() {
		if ci.Config.Durable == "" {
			continue // ephemeral: someone's tail
		}
		filters := ci.Config.FilterSubjects
		if ci.Config.FilterSubject != "" {
			filters = append(filters, ci.Config.FilterSubject)
		}
		out = append(out, ConsumerStatus{
			Name:           ci.Name,
			FilterSubjects: filters,
			Pending:        ci.NumPending,
			AckPending:     ci.NumAckPending,
			Redelivered:    ci.NumRedelivered,
			LastDelivered:  ci.Delivered.Stream,
			Paused:         ci.Paused,
		})
	}
	if err := consumers.Err(); err != nil {
		return nil, fmt.Errorf("list consumers of %s: %w", stream, err)
	}
	slices.SortFunc(out, func(a, b ConsumerStatus) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// ErrNoTailStream reports a tail with no stream to read: none holds
// subjects matching its filter (among the streams it names).
var ErrNoTailStream = errors.New("no stream holds subjects matching the filter")

// TailConfig says what [Tail] reads and where it starts. The zero start
// (DeliverAllPolicy with no Last) reads each stream from its first message.
type TailConfig struct {
	// Streams are the streams to read; nil: every stream of the server.
	// Only those whose subjects overlap Filter are read.
	Streams []string
	// Filter keeps the messages whose subject matches this NATS subject
	// filter; "" keeps every message.
	Filter string
	// Deliver, StartSeq and Since choose the first message as a JetStream
	// consumer does.
	Deliver  jetstream.DeliverPolicy
	StartSeq uint64
	Since    time.Time
	// Last, when set, starts each stream with its newest Last messages
	// (of which those matching Filter are delivered) and overrides
	// Deliver: a window by stream sequence, so a narrow filter may
	// deliver fewer.
	Last uint64
	// Follow keeps waiting for new messages; without it Tail returns once
	// it has delivered what the streams held when it started.
	Follow bool
}

// StoredMessage is one message as a stream stores it.
type StoredMessage struct {
	Stream   string
	Sequence uint64
	Subject  string
	// Stored is when the stream stored the message.
	Stored time.Time
	Header nats.Header
	Data   []byte
}

// Tail reads the streams of cfg through one ordered, ephemeral consumer
// each, in parallel, and calls fn with every message, in order within a
// stream; fn must be safe for concurrent use and returns false to end the
// whole tail. Tail returns when fn has, when ctx ends (nil: a tail is ended
// by its reader), or, without Follow, once every stream is read; it
// deletes its consumers before it returns rather than leave them to the
// server's inactivity timeout, so a tail holds no server state beyond its
// own lifetime.
func Tail(ctx context.Context, js jetstream.JetStream, cfg TailConfig, fn func(StoredMessage) bool) error {
	filter := cmp.Or(cfg.Filter, ">")
	streams, err := tailStreams(ctx, js, cfg.Streams, filter)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := func(m StoredMessage) bool {
		if fn(m) {
			return true
		}
		cancel()
		return false
	}
	errs := make([]error, len(streams))
	var wg sync.WaitGroup
	for i, name := range streams {
		wg.Go(func() { errs[i] = tailStream(ctx, js, name, filter, cfg, stop) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// tailStreams returns, sorted, the streams among names (nil: all) whose
// subjects overlap filter, as the server sees it.
func tailStreams(ctx context.Context, js jetstream.JetStream, names []string, filter string) ([]string, error) {
	var streams []string
	list := js.StreamNames(ctx, jetstream.WithStreamListSubject(filter))
	for name := range list.Name() {
		if names == nil || slices.Contains(names, name) {
			streams = append(streams, name)
		}
	}
	if err := list.Err(); err != nil {
		return nil, fmt.Errorf("find streams for %q: %w", filter, err)
	}
	if len(streams) == 0 {
		return nil, fmt.Errorf("%w %q", ErrNoTailStream, filter)
	}
	slices.Sort(streams)
	return streams, nil
}

func tailStream(ctx context.Context, js jetstream.JetStream, name, filter string, cfg TailConfig, fn func(StoredMessage) bool) error {
	stream, err := js.Stream(ctx, name)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("stream %s: %w", name, err)
	}
	info := stream.CachedInfo()
	cc := jetstream.OrderedConsumerConfig{DeliverPolicy: cfg.Deliver, OptStartSeq: cfg.StartSeq}
	if !cfg.Since.IsZero() {
		cc.OptStartTime = &cfg.Since
	}
	if cfg.Last > 0 {
		// The window starts Last messages before the end; an empty stream
		// has no window, only new messages.
		cc.DeliverPolicy, cc.OptStartSeq, cc.OptStartTime = jetstream.DeliverNewPolicy, 0, nil
		if info.State.Msgs > 0 {
			start := info.State.FirstSeq
			if info.State.LastSeq >= cfg.Last && info.State.LastSeq-cfg.Last+1 > start {
				start = info.State.LastSeq - cfg.Last + 1
			}
			cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
		}
	}
	// A filter that covers the whole stream is left out: the server only
	// accepts filters within the stream's subjects.
	if !coversAll(filter, info.Config.Subjects) {
		cc.FilterSubjects = []string{filter}
	}
	cons, err := stream.OrderedConsumer(ctx, cc)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("tail %s: %w", name, err)
	}
	defer deleteTailConsumer(js, name, cons)
	if !cfg.Follow {
		ci, err := cons.Info(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // another stream's reader ended the tail
			}
			return fmt.Errorf("tail %s: %w", name, err)
		}
		if ci.NumPending == 0 {
			return nil
		}
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("tail %s: %w", name, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("tail %s: %w", name, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("tail %s: %w", name, err)
		}
		if !fn(StoredMessage{Stream: name, Sequence: meta.Sequence.Stream, Subject: msg.Subject(),
			Stored: meta.Timestamp, Header: msg.Headers(), Data: msg.Data()}) {
			return nil
		}
		if !cfg.Follow && meta.NumPending == 0 {
			return nil
		}
	}
}

// tailConsumerDeleteTimeout bounds the deletion of a tail's consumer,
// which runs after the tail's context has ended.
const tailConsumerDeleteTimeout = 5 * time.Second

// deleteTailConsumer deletes the server's consumer behind an ordered
// consumer. Stopping an ordered consumer's iterator does not: the server
// would keep it until its inactivity threshold (5 minutes), and a console
// that opens and closes tails would pile them up. A consumer the server has
// already dropped is no error.
func deleteTailConsumer(js jetstream.JetStream, stream string, cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), tailConsumerDeleteTimeout)
	defer cancel()
	_ = js.DeleteConsumer(ctx, stream, info.Name) // best effort: the threshold removes it otherwise
}

// coversAll reports whether filter matches every subject of a stream.
func coversAll(filter string, subjects []string) bool {
	for _, s := range subjects {
		if !subsetOf(s, filter) {
			return false
		}
	}
	return len(subjects) > 0
}

// subsetOf reports whether every subject matching sub also matches filter.
func subsetOf(sub, filter string) bool {
	st, ft := strings.Split(sub, "."), strings.Split(filter, ".")
	for i, f := range ft {
		if f == ">" {
			return i < len(st)
		}
		if i >= len(st) {
			return false
		}
		switch s := st[i]; {
		case s == ">":
			return false
		case f == "*" || f == s:
		default:
			return false
		}
	}
	return len(st) == len(ft)
}

// DecodeStored parses the envelope of a message as a stream stores it. A
// dead letter (on dlq.<service>.<subject>) is parsed as the event on the
// original subject it carries in its headers.
func DecodeStored(subject string, header nats.Header, data []byte) (Event, error) {
	if orig := header.Get(HeaderDLQSubject); orig != "" {
		subject = orig
	}
	return FromMsg(subject, header, data)
}

// PayloadJSON renders ev's payload through its protobuf type as compact
// protojson. The payload's type must be registered: the process must
// import the generated package of the service that publishes it.
func PayloadJSON(ev Event) (json.RawMessage, error) {
	m, err := ev.Payload()
	if err != nil {
		return nil, err
	}
	js, err := protojson.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("render %s as JSON: %w", ev.MessageName, err)
	}
	// protojson varies its whitespace on purpose; compact it.
	var compact bytes.Buffer
	if err := json.Compact(&compact, js); err != nil {
		return nil, fmt.Errorf("render %s as JSON: %w", ev.MessageName, err)
	}
	return compact.Bytes(), nil
}
