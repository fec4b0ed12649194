package events

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Dead-letter headers, added to the original envelope when a message moves
// to a DLQ_<SERVICE> stream.
const (
	HeaderDLQStream      = "authms-dlq-stream"
	HeaderDLQSubject     = "authms-dlq-subject"
	HeaderDLQSequence    = "authms-dlq-sequence"
	HeaderDLQConsumer    = "authms-dlq-consumer"
	HeaderDLQAttempts    = "authms-dlq-attempts"
	HeaderDLQError       = "authms-dlq-error"
	HeaderDLQPublishedAt = "authms-dlq-published-at"
	HeaderDLQFailedAt    = "authms-dlq-failed-at"
	HeaderDLQPermanent   = "authms-dlq-permanent"
)

// Handler applies one event. It returns nil when the event is handled (or
// was already handled), a Permanent error when no retry can succeed, and
// any other error for a transient failure worth retrying.
type Handler func(ctx context.Context, ev Event) error

// BatchHandler applies several events, in the order given (stream order),
// all or nothing: it returns nil only when every one of them is handled (or
// was already handled), and otherwise leaves none of them applied. Inside it,
// [EventContext] gives the context the [Handler] of one event would get.
type BatchHandler func(ctx context.Context, evs []Event) error

// ConsumerConfig configures a durable pull consumer.
type ConsumerConfig struct {
	// Service is the consuming service; its DLQ_<SERVICE> stream receives
	// the dead letters.
	Service string
	// Durable names the consumer; instances sharing it share the work.
	Durable string
	// Stream is the source stream, e.g. "IDENTITY".
	Stream string
	// Subjects filters the source stream; empty means all of it.
	Subjects []string
	Handler  Handler
	// BatchHandler, when set, applies the messages of a fetch that have
	// already arrived (at most Batch; it never waits for more) in one call,
	// and they are acknowledged after it returns. Handler still handles a
	// lone message, and when a batch fails for a reason other than an outage
	// it handles the batch's messages again one at a time, so that only a
	// failing message is retried or dead-lettered, with its own attempts.
	BatchHandler BatchHandler
	Logger       *slog.Logger
	// MaxDeliver is the number of attempts before a message is dead-lettered
	// (default 5).
	MaxDeliver int
	// Backoff is the delay before attempt n+1 after attempt n failed; the
	// last entry repeats (default 200ms, 1s, 5s, 15s).
	Backoff []time.Duration
	// AckWait is how long the server waits for an ack before redelivering;
	// a running handler extends it (default 30s).
	AckWait time.Duration
	// Batch is the most messages fetched at once (default 100).
	Batch int
	// Healthy probes what the handler depends on, such as the service's own
	// database. When a handler fails and Healthy fails too, the failure is
	// an outage, not the message's fault: the consumer stops fetching, holds
	// its messages (extending their ack deadlines, so no delivery attempt is
	// spent and nothing is dead-lettered), probes with backoff, and retries
	// once Healthy passes. Nil: every failure is the message's.
	Healthy func(ctx context.Context) error
	// Unavailable reports errors that mean a dependency is unreachable (a
	// dropped connection) even if Healthy passes a moment later; they are
	// retried in place like an outage, up to outageRetries times per message.
	Unavailable func(error) bool
	// Tracer, when set, wraps each delivery in a consumer span whose parent
	// is the trace context the event carries (its traceparent), so the
	// trace of the API call that caused the event continues here. Nil: no
	// spans, at no cost.
	Tracer trace.Tracer
}

// outageRetries bounds the in-place retries of a message whose handler keeps
// failing with an Unavailable error while Healthy passes: past it the
// failure counts as the message's own.
const outageRetries = 10

func (c ConsumerConfig) withDefaults() ConsumerConfig {
	c.MaxDeliver = cmp.Or(c.MaxDeliver, 5)
	if len(c.Backoff) == 0 {
		c.Backoff = []time.Duration{200 * time.Millisecond, time.Second, 5 * time.Second, 15 * time.Second}
	}
	c.AckWait = cmp.Or(c.AckWait, 30*time.Second)
	c.Batch = cmp.Or(c.Batch, 100)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Consumer runs a handler over a durable JetStream consumer.
type Consumer struct {
	cfg ConsumerConfig
	js  jetstream.JetStream

	handled      atomic.Uint64
	failures     atomic.Uint64
	deadLettered atomic.Uint64
	lastSequence atomic.Uint64
	lastEvent    atomic.Int64 // unix nanoseconds of the last handled event's time
	outages      atomic.Uint64
	stalled      atomic.Bool
}

// ConsumerStats are a consumer's counters since it started.
type ConsumerStats struct {
	Handled      uint64 // events handled successfully
	Failures     uint64 // handler failures, retried or dead-lettered
	DeadLettered uint64 // messages moved to the DLQ
	LastSequence uint64 // stream sequence of the last handled message
	Outages      uint64 // outages of a dependency the consumer waited out
	Stalled      bool   // waiting for a dependency to come back right now
	// LastEventTime is the time of the last handled event (when its command
	// committed); zero before the first.
	LastEventTime time.Time
}

// NewConsumer validates cfg and returns a consumer; Run starts it.
func NewConsumer(js jetstream.JetStream, cfg ConsumerConfig) (*Consumer, error) {
	cfg = cfg.withDefaults()
	if cfg.Service == "" || cfg.Durable == "" || cfg.Stream == "" || cfg.Handler == nil || js == nil {
		return nil, errors.New("consumer: service, durable, stream, handler and jetstream are required")
	}
	return &Consumer{cfg: cfg, js: js}, nil
}

// Stats returns the consumer's counters.
func (c *Consumer) Stats() ConsumerStats {
	st := ConsumerStats{
		Handled:      c.handled.Load(),
		Failures:     c.failures.Load(),
		DeadLettered: c.deadLettered.Load(),
		LastSequence: c.lastSequence.Load(),
		Outages:      c.outages.Load(),
		Stalled:      c.stalled.Load(),
	}
	if ns := c.lastEvent.Load(); ns != 0 {
		st.LastEventTime = time.Unix(0, ns)
	}
	return st
}

// Config returns the consumer's configuration with defaults applied.
func (c *Consumer) Config() ConsumerConfig { return c.cfg }

// Ensure creates or updates the durable consumer on the server.
func (c *Consumer) Ensure(ctx context.Context) (jetstream.Consumer, error) {
	cons, err := c.js.CreateOrUpdateConsumer(ctx, c.cfg.Stream, jetstream.ConsumerConfig{
		Durable:        c.cfg.Durable,
		Description:    c.cfg.Service + " consumer of " + c.cfg.Stream,
		FilterSubjects: c.cfg.Subjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        c.cfg.AckWait,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		// The consumer dead-letters after cfg.MaxDeliver attempts itself; the
		// server's own limit is only a backstop for a handler that crashes
		// the process every time, so the message is never silently dropped
		// before the DLQ decision.
		MaxDeliver:    -1,
		MaxAckPending: 10 * c.cfg.Batch,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", c.cfg.Durable, c.cfg.Stream, err)
	}
	return cons, nil
}

// Run fetches and handles messages until ctx ends. Messages of one consumer
// instance are handled in stream order: one at a time, or, with a
// BatchHandler, those of a fetch that have arrived together.
func (c *Consumer) Run(ctx context.Context) error {
	log := c.cfg.Logger.With("service", c.cfg.Service, "consumer", c.cfg.Durable, "stream", c.cfg.Stream)
	var cons jetstream.Consumer
	// Fetch failures are cheap to retry and mostly a NATS restart: resume
	// within a second of it.
	retry := newBackoff(50*time.Millisecond, time.Second)
	for cons == nil {
		var err error
		if cons, err = c.Ensure(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			d := retry.next()
			log.Warn("consumer not ready; retrying", "err", err, "retry_in", d)
			if !sleep(ctx, d) {
				return nil
			}
		}
	}
	retry.reset()
	most := 1 // messages handled together
	if c.cfg.BatchHandler != nil {
		most = c.cfg.Batch
	}
	for ctx.Err() == nil {
		batch, err := cons.Fetch(c.cfg.Batch, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			d := retry.next()
			log.Warn("fetch failed; retrying", "err", err, "retry_in", d)
			sleep(ctx, d)
			continue
		}
		q := &batchQueue{msgs: batch.Messages()}
		for msgs := q.next(most); len(msgs) > 0; msgs = q.next(most) {
			if len(msgs) == 1 {
				c.handle(ctx, log, msgs[0], q.held)
			} else {
				c.handleBatch(ctx, log, msgs, q)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			d := retry.next()
			log.Warn("fetch ended with an error; retrying", "err", err, "retry_in", d)
			sleep(ctx, d)
			continue
		}
		retry.reset()
	}
	return nil
}

// batchQueue hands out a fetch's messages as they arrive, and during an
// outage or a slow handler every message received so far, so all of them
// are kept alive.
type batchQueue struct {
	msgs    <-chan jetstream.Msg // nil once closed
	current []jetstream.Msg      // handed out, not yet settled
	pending []jetstream.Msg      // received, not yet handed out
}

// next returns the next message, waiting for it, and up to most-1 more that
// were already received behind it, without waiting; nil when the fetch
// ended.
func (q *batchQueue) next(most int) []jetstream.Msg {
	q.current = nil
	if len(q.pending) == 0 {
		if q.msgs == nil {
			return nil
		}
		msg, ok := <-q.msgs
		if !ok {
			q.msgs = nil
			return nil
		}
		q.pending = append(q.pending, msg)
	}
	if len(q.pending) < most {
		q.receive()
	}
	n := min(most, len(q.pending))
	q.current = q.pending[:n:n]
	q.pending = q.pending[n:]
	return q.current
}

// receive moves the messages that have arrived to pending, without waiting.
func (q *batchQueue) receive() {
	for q.msgs != nil {
		select {
		case msg, ok := <-q.msgs:
			if !ok {
				q.msgs = nil
				continue
			}
			q.pending = append(q.pending, msg)
			continue
		default:
		}
		break
	}
}

// held returns the current messages and every later one received so far.
func (q *batchQueue) held() []jetstream.Msg {
	q.receive()
	return slices.Concat(q.current, q.pending)
}

// delivery is one message being handled.
type delivery struct {
	msg  jetstream.Msg
	meta *jetstream.MsgMetadata
	ev   Event
	err  error           // the envelope could not be decoded
	ctx  context.Context // with span as its current span
	span trace.Span      // nil without a tracer or an event
}

// open reads msg's metadata and event and starts its span. A message
// without JetStream metadata is terminated: ok is false.
func (c *Consumer) open(ctx context.Context, log *slog.Logger, msg jetstream.Msg) (d *delivery, ok bool) {
	meta, err := msg.Metadata()
	if err != nil {
		log.Error("message without JetStream metadata; terminating it", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return nil, false
	}
	d = &delivery{msg: msg, meta: meta, ctx: ctx}
	d.ev, d.err = FromMsg(msg.Subject(), msg.Headers(), msg.Data())
	if d.err == nil {
		d.ev.Stream, d.ev.Sequence = meta.Stream, meta.Sequence.Stream
		d.ctx, d.span = c.startSpan(ctx, d.ev, meta)
	}
	return d, true
}

// handle runs the handler for one message and acks, naks or dead-letters
// it. held returns msg and the rest of its batch received so far, kept
// alive during an outage.
func (c *Consumer) handle(ctx context.Context, log *slog.Logger, msg jetstream.Msg, held func() []jetstream.Msg) {
	if d, ok := c.open(ctx, log, msg); ok {
		c.process(ctx, log, d, held)
	}
}

// process runs the handler for d alone, then settles it.
func (c *Consumer) process(ctx context.Context, log *slog.Logger, d *delivery, held func() []jetstream.Msg) {
	err := d.err
	if err == nil {
		call := func(ctx context.Context) error { return c.cfg.Handler(ctx, d.ev) }
		err = c.retryOutages(d.ctx, log, held, call)
		endSpan(d.span, err)
	}
	c.settle(ctx, log, d, err)
}

// handleBatch applies msgs, more than one, with the BatchHandler and settles
// them; held returns them and the rest of their fetch received so far. When
// the batch fails for another reason than an outage, or a message cannot be
// decoded, each message is handled on its own, in order.
func (c *Consumer) handleBatch(ctx context.Context, log *slog.Logger, msgs []jetstream.Msg, q *batchQueue) {
	ds := make([]*delivery, 0, len(msgs))
	evs := make([]Event, 0, len(msgs))
	var spans map[uint64]trace.Span // by stream sequence, for EventContext
	if c.cfg.Tracer != nil {
		spans = make(map[uint64]trace.Span, len(msgs))
	}
	decoded := true
	for _, msg := range msgs {
		d, ok := c.open(ctx, log, msg)
		if !ok {
			continue
		}
		ds = append(ds, d)
		if d.err != nil {
			decoded = false
			continue
		}
		evs = append(evs, d.ev)
		if d.span != nil {
			spans[d.ev.Sequence] = d.span
		}
	}
	q.current = msgsOf(ds)
	if decoded && len(ds) > 0 {
		call := func(ctx context.Context) error {
			if spans != nil {
				ctx = context.WithValue(ctx, batchSpansKey{}, spans)
			}
			return c.cfg.BatchHandler(ctx, evs)
		}
		err := c.retryOutages(ctx, log, q.held, call)
		if err == nil {
			for _, d := range ds {
				endSpan(d.span, nil)
				c.settle(ctx, log, d, nil)
			}
			return
		}
		if ctx.Err() != nil {
			for _, d := range ds {
				endSpan(d.span, err)
				c.settle(ctx, log, d, err)
			}
			return
		}
		log.Warn("batch failed; handling its messages one at a time", "messages", len(ds),
			"first_sequence", ds[0].meta.Sequence.Stream, "last_sequence", ds[len(ds)-1].meta.Sequence.Stream, "err", err)
		for _, d := range ds {
			if d.span != nil {
				d.span.AddEvent("batch failed; handling the message alone", trace.WithAttributes(
					attribute.String("exception.message", err.Error())))
			}
		}
	}
	// One at a time: each message's attempt, retry and dead letter are its
	// own. A span started for the batch goes on for the message's own call.
	for i, d := range ds {
		q.current = msgsOf(ds[i:])
		c.process(ctx, log, d, q.held)
	}
}

// msgsOf returns the messages of ds.
func msgsOf(ds []*delivery) []jetstream.Msg {
	out := make([]jetstream.Msg, len(ds))
	for i, d := range ds {
		out[i] = d.msg
	}
	return out
}

// retryOutages runs call and, while its failure is an outage rather than
// the messages' fault, waits for recovery and runs it again in place. held
// returns the messages to keep alive meanwhile.
func (c *Consumer) retryOutages(ctx context.Context, log *slog.Logger, held func() []jetstream.Msg, call func(context.Context) error) error {
	err := c.runHandler(ctx, held, call)
	for retries := 0; err != nil && ctx.Err() == nil && !IsPermanent(err) && c.outage(ctx, err, retries); retries++ {
		if !c.awaitRecovery(ctx, log, err, held) {
			break
		}
		err = c.runHandler(ctx, held, call)
	}
	return err
}

// settle acks, naks or dead-letters d after its handling ended with err.
func (c *Consumer) settle(ctx context.Context, log *slog.Logger, d *delivery, err error) {
	msg, meta, ev := d.msg, d.meta, d.ev
	attempt := int(meta.NumDelivered)
	if err == nil {
		if err := msg.Ack(); err != nil {
			// The effect is committed; a redelivery is skipped by the handler's
			// idempotency, so this only costs a retry.
			log.Warn("ack failed", "subject", msg.Subject(), "sequence", meta.Sequence.Stream, "err", err)
		}
		c.handled.Add(1)
		c.lastSequence.Store(meta.Sequence.Stream)
		c.lastEvent.Store(ev.Time.UnixNano())
		return
	}
	if ctx.Err() != nil {
		// Shutting down: let another instance or the next start retry it.
		_ = msg.Nak()
		return
	}
	c.failures.Add(1)
	permanent := IsPermanent(err)
	if !permanent && attempt < c.cfg.MaxDeliver {
		delay := c.cfg.Backoff[min(attempt-1, len(c.cfg.Backoff)-1)]
		log.Warn("handler failed; will retry", "subject", msg.Subject(), "sequence", meta.Sequence.Stream,
			"event_id", ev.ID, "attempt", attempt, "retry_in", delay, "err", err)
		_ = msg.NakWithDelay(delay)
		return
	}
	if dlqErr := c.deadLetter(ctx, msg, meta, attempt, permanent, err); dlqErr != nil {
		log.Error("dead-lettering failed; the message stays for redelivery", "subject", msg.Subject(),
			"sequence", meta.Sequence.Stream, "err", dlqErr)
		_ = msg.NakWithDelay(c.cfg.Backoff[len(c.cfg.Backoff)-1])
		return
	}
	c.deadLettered.Add(1)
	log.Error("message dead-lettered", "subject", msg.Subject(), "sequence", meta.Sequence.Stream,
		"event_id", ev.ID, "attempts", attempt, "permanent", permanent, "dlq", DLQStreamName(c.cfg.Service), "err", err)
	_ = msg.Term()
}

// batchSpansKey keys the consumer spans of a batch's events, by stream
// sequence, in the BatchHandler's context.
type batchSpansKey struct{}

// EventContext returns the context the Handler of ev alone would get: inside
// a BatchHandler, ctx with ev's consumer span as the current span, so that
// [CausedBy] and whatever is traced while applying ev continue ev's trace.
// Elsewhere, or without a tracer, it returns ctx.
func EventContext(ctx context.Context, ev Event) context.Context {
	spans, _ := ctx.Value(batchSpansKey{}).(map[uint64]trace.Span)
	if span, ok := spans[ev.Sequence]; ok {
		return trace.ContextWithSpan(ctx, span)
	}
	return ctx
}

// outage reports whether a handler failure is an outage of a dependency
// rather than the message's fault. retries counts the in-place retries of
// this message so far.
func (c *Consumer) outage(ctx context.Context, err error, retries int) bool {
	if c.cfg.Healthy == nil {
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if c.cfg.Healthy(pctx) != nil {
		return true
	}
	return c.cfg.Unavailable != nil && c.cfg.Unavailable(err) && retries < outageRetries
}

// awaitRecovery stops the consumer until Healthy passes, keeping the held
// messages' ack deadlines alive meanwhile. It reports false when ctx ended
// first.
func (c *Consumer) awaitRecovery(ctx context.Context, log *slog.Logger, cause error, held func() []jetstream.Msg) bool {
	c.stalled.Store(true)
	defer c.stalled.Store(false)
	c.outages.Add(1)
	start := time.Now()
	log.Warn("dependency unavailable: pausing this consumer until it is back; no delivery attempt is spent",
		"held", len(held()), "err", cause)
	wait := newBackoff(200*time.Millisecond, min(5*time.Second, c.cfg.AckWait/3))
	for {
		for _, m := range held() {
			_ = m.InProgress()
		}
		if !sleep(ctx, wait.next()) {
			return false
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.cfg.Healthy(pctx)
		cancel()
		if err == nil {
			log.Info("dependency is back: resuming", "after", time.Since(start).Round(time.Millisecond))
			return true
		}
	}
}

// runHandler runs call (a handler) and, while it runs, keeps the ack
// deadline of its messages and of the rest of their batch received so far
// alive: a slow handler must not get the messages behind it redelivered
// elsewhere.
func (c *Consumer) runHandler(ctx context.Context, held func() []jetstream.Msg, call func(context.Context) error) error {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(c.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range held() {
					_ = m.InProgress()
				}
			}
		}
	})
	defer func() { close(done); wg.Wait() }() // held is not safe once the handler returned
	return call(ctx)
}

// deadLetter publishes the message, with why, where and who, to the DLQ and
// waits for the stream to store it.
func (c *Consumer) deadLetter(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, attempts int, permanent bool, cause error) error {
	dl := nats.NewMsg(DLQSubject(c.cfg.Service, msg.Subject()))
	for k, v := range msg.Headers() {
		dl.Header[k] = v
	}
	text := cause.Error()
	if len(text) > 2048 {
		text = text[:2048] + "…"
	}
	dl.Header.Set(HeaderDLQStream, meta.Stream)
	dl.Header.Set(HeaderDLQSubject, msg.Subject())
	dl.Header.Set(HeaderDLQSequence, strconv.FormatUint(meta.Sequence.Stream, 10))
	dl.Header.Set(HeaderDLQConsumer, c.cfg.Durable)
	dl.Header.Set(HeaderDLQAttempts, strconv.Itoa(attempts))
	dl.Header.Set(HeaderDLQError, text)
	dl.Header.Set(HeaderDLQPermanent, strconv.FormatBool(permanent))
	dl.Header.Set(HeaderDLQPublishedAt, meta.Timestamp.UTC().Format(time.RFC3339Nano))
	dl.Header.Set(HeaderDLQFailedAt, time.Now().UTC().Format(time.RFC3339Nano))
	dl.Data = msg.Data()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The delivery count keeps a later dead letter of the same message (after
	// a re-drive) from being dropped as a duplicate of this one; a retried
	// publish of this dead letter still de-duplicates.
	msgID := fmt.Sprintf("%s:%s:%d:%d", c.cfg.Durable, meta.Stream, meta.Sequence.Stream, meta.NumDelivered)
	if _, err := c.js.PublishMsg(pctx, dl, jetstream.WithMsgID(msgID)); err != nil {
		return fmt.Errorf("publish to %s: %w", DLQStreamName(c.cfg.Service), err)
	}
	return nil
}
