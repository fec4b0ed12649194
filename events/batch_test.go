package events_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/natstest"
)

// batchLog records what a consumer's handlers applied, in order, and the
// sizes of the BatchHandler calls.
type batchLog struct {
	mu       sync.Mutex
	applied  []uint64 // stream sequences, in the order they were applied
	batches  []int    // sizes of the BatchHandler calls, failed ones included
	failed   []int    // sizes of the failed BatchHandler calls
	mismatch []string // events handled under another trace than their own
}

func (l *batchLog) record(seqs ...uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.applied = append(l.applied, seqs...)
}

func (l *batchLog) snapshot() batchLog {
	l.mu.Lock()
	defer l.mu.Unlock()
	return batchLog{applied: slices.Clone(l.applied), batches: slices.Clone(l.batches),
		failed: slices.Clone(l.failed), mismatch: slices.Clone(l.mismatch)}
}

// payloadOf decodes the StringValue payload of ev.
func payloadOf(ev events.Event) string {
	var s wrapperspb.StringValue
	if err := ev.Unmarshal(&s); err != nil {
		return ""
	}
	return s.GetValue()
}

// batchEnv starts NATS with the ORDERS and DLQ_BILLING streams and publishes
// one event per payload, each with a trace context of its own, before any
// consumer runs, so that the first fetch delivers them together.
func batchEnv(t *testing.T, payloads []string) (jetstream.JetStream, []events.Event) {
	t.Helper()
	js := natstest.Start(t).JetStream(t)
	require.NoError(t, events.EnsureStreams(t.Context(), js, service, events.StreamConfig{}))
	require.NoError(t, events.EnsureStreams(t.Context(), js, "billing", events.StreamConfig{}))
	evs := make([]events.Event, len(payloads))
	for i, p := range payloads {
		traceID := uuid.New()
		tp := fmt.Sprintf("00-%x-%016x-01", traceID[:], i+1)
		evs[i] = publishTraced(t, js, p, tp)
	}
	return js, evs
}

// startBatchConsumer runs a batching consumer over ORDERS until the test ends.
func startBatchConsumer(t *testing.T, js jetstream.JetStream, cfg events.ConsumerConfig) *events.Consumer {
	t.Helper()
	cfg.Service, cfg.Durable, cfg.Stream = "billing", "billing_batched", "ORDERS"
	c, err := events.NewConsumer(js, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

// traceIDOf returns the trace id of a W3C traceparent.
func traceIDOf(traceparent string) string { return traceparent[3:35] }

// A batch that fails falls back to the single-event handler, one message at
// a time in stream order: only the failing messages are retried and
// dead-lettered, each with its own attempts; the rest are applied once; each
// delivery has one span, which the batch handler reaches by EventContext.
func TestConsumerBatchFallsBackOneAtATime(t *testing.T) {
	t.Parallel()
	const n, transient, poison = 30, 10, 20
	payloads := make([]string, n)
	for i := range payloads {
		payloads[i] = fmt.Sprint("good ", i)
	}
	payloads[transient], payloads[poison] = "transient", "poison"
	js, evs := batchEnv(t, payloads)

	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	var log batchLog
	fail := func(ev events.Event) error {
		switch payloadOf(ev) {
		case "transient":
			return errors.New("the ledger is down")
		case "poison":
			return events.Permanent(errors.New("order total is negative"))
		}
		return nil
	}
	var singleCalls atomic.Int32
	c := startBatchConsumer(t, js, events.ConsumerConfig{
		MaxDeliver: 3, Backoff: []time.Duration{10 * time.Millisecond}, AckWait: 2 * time.Second,
		Tracer: tp.Tracer("test"),
		Handler: func(ctx context.Context, ev events.Event) error {
			singleCalls.Add(1)
			if err := fail(ev); err != nil {
				return err
			}
			log.record(ev.Sequence)
			return nil
		},
		BatchHandler: func(ctx context.Context, evs []events.Event) error {
			log.mu.Lock()
			log.batches = append(log.batches, len(evs))
			for _, ev := range evs {
				got := trace.SpanContextFromContext(events.EventContext(ctx, ev)).TraceID().String()
				if got != traceIDOf(ev.TraceParent) {
					log.mismatch = append(log.mismatch, fmt.Sprintf("seq %d: trace %s", ev.Sequence, got))
				}
			}
			log.mu.Unlock()
			for _, ev := range evs {
				if err := fail(ev); err != nil {
					log.mu.Lock()
					log.failed = append(log.failed, len(evs))
					log.mu.Unlock()
					return fmt.Errorf("seq %d: %w", ev.Sequence, err)
				}
			}
			seqs := make([]uint64, len(evs))
			for i, ev := range evs {
				seqs[i] = ev.Sequence
			}
			log.record(seqs...)
			return nil
		},
	})

	require.Eventually(t, func() bool { s := c.Stats(); return s.DeadLettered == 2 && s.Handled == n-2 },
		20*time.Second, 20*time.Millisecond)
	got := log.snapshot()
	require.NotEmpty(t, got.failed)
	assert.Greater(t, slices.Max(got.failed), 1, "a failing message failed a batch of several")
	assert.Greater(t, slices.Max(got.batches), 1)
	assert.NotZero(t, singleCalls.Load(), "the failed batches were handled one at a time")
	assert.Empty(t, got.mismatch, "EventContext gives each event its own span")

	// Every other message applied once, in stream order.
	var want []uint64
	for i := range n {
		if i != transient && i != poison {
			want = append(want, uint64(i+1))
		}
	}
	assert.Equal(t, want, got.applied)

	// Only the failing messages are dead-lettered, each with its attempts.
	dlq, err := js.Stream(t.Context(), "DLQ_BILLING")
	require.NoError(t, err)
	attempts := map[string]string{}
	for seq := uint64(1); seq <= 2; seq++ {
		m, err := dlq.GetMsg(t.Context(), seq)
		require.NoError(t, err)
		attempts[m.Header.Get(events.HeaderID)] = m.Header.Get(events.HeaderDLQAttempts)
	}
	assert.Equal(t, map[string]string{evs[transient].ID.String(): "3", evs[poison].ID.String(): "1"}, attempts)

	st := c.Stats()
	assert.Equal(t, uint64(3+1), st.Failures)
	assert.Equal(t, uint64(n), st.LastSequence)
	assert.True(t, evs[n-1].Time.Equal(st.LastEventTime))

	// One span per delivery: one for each applied message, one per attempt
	// of the failing ones; each a child of its event's trace context.
	var ok, failed int
	for _, s := range spans.GetSpans() {
		i := slices.IndexFunc(evs, func(ev events.Event) bool { return traceIDOf(ev.TraceParent) == s.SpanContext.TraceID().String() })
		require.GreaterOrEqual(t, i, 0, "span %s is in an event's trace", s.Name)
		assert.True(t, s.Parent.IsRemote())
		if s.Status.Code == codes.Error {
			failed++
			assert.True(t, i == transient || i == poison, "event %d failed", i)
		} else {
			ok++
		}
	}
	assert.Equal(t, n-2, ok)
	assert.Equal(t, 3+1, failed)
}

// An outage during a batch is waited out in place: all messages are held
// (past their AckWait), no delivery attempt is spent (with MaxDeliver 1 any
// would dead-letter), and the batch is retried as a batch.
func TestConsumerBatchOutageSpendsNoAttempts(t *testing.T) {
	t.Parallel()
	const n = 30
	payloads := make([]string, n)
	for i := range payloads {
		payloads[i] = fmt.Sprint("order ", i)
	}
	js, _ := batchEnv(t, payloads)

	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	// The dependency goes down when the first batch of several messages
	// arrives, and stays down until the test brings it back.
	var down, wentDown atomic.Bool
	unreachable := errors.New("dial tcp: connection refused")
	var log batchLog
	c := startBatchConsumer(t, js, events.ConsumerConfig{
		MaxDeliver: 1, Backoff: []time.Duration{10 * time.Millisecond}, AckWait: time.Second,
		Tracer: tp.Tracer("test"),
		Healthy: func(context.Context) error {
			if down.Load() {
				return unreachable
			}
			return nil
		},
		Handler: func(ctx context.Context, ev events.Event) error {
			if down.Load() {
				return unreachable
			}
			log.record(ev.Sequence)
			return nil
		},
		BatchHandler: func(ctx context.Context, evs []events.Event) error {
			log.mu.Lock()
			defer log.mu.Unlock()
			log.batches = append(log.batches, len(evs))
			if !wentDown.Swap(true) {
				down.Store(true)
			}
			if down.Load() {
				log.failed = append(log.failed, len(evs))
				return unreachable
			}
			for _, ev := range evs {
				log.applied = append(log.applied, ev.Sequence)
			}
			return nil
		},
	})

	require.Eventually(t, func() bool { return c.Stats().Stalled }, 10*time.Second, 10*time.Millisecond,
		"the consumer notices the outage")
	time.Sleep(2 * time.Second) // twice AckWait: held messages must not be redelivered
	down.Store(false)

	require.Eventually(t, func() bool { return c.Stats().Handled == n }, 20*time.Second, 20*time.Millisecond)
	st := c.Stats()
	assert.Zero(t, st.DeadLettered)
	assert.Zero(t, st.Failures)
	assert.NotZero(t, st.Outages)
	got := log.snapshot()
	require.NotEmpty(t, got.failed)
	assert.Greater(t, got.failed[0], 1, "the outage hit a batch of several messages")
	for _, size := range got.failed {
		assert.Equal(t, got.failed[0], size, "the same batch, retried in place")
	}
	want := make([]uint64, n)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	assert.Equal(t, want, got.applied, "each message applied once, in stream order")
	// Every delivery was the first: no attempt was spent on the outage.
	require.Len(t, spans.GetSpans(), n)
	for _, s := range spans.GetSpans() {
		assert.Contains(t, s.Attributes, attribute.Int64("authms.attempt", 1))
		assert.NotEqual(t, codes.Error, s.Status.Code)
	}
}
