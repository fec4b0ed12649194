package events_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/natstest"
)

const (
	upstreamTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	upstreamSpan  = "00f067aa0ba902b7"
	upstream      = "00-" + upstreamTrace + "-" + upstreamSpan + "-01"
)

func TestCausedByContinuesTheCurrentSpan(t *testing.T) {
	t.Parallel()
	ev := events.Event{ID: uuid.New(), CorrelationID: "c1", TraceParent: upstream}

	// Tracing off: no span, the event's own trace context goes on.
	assert.Empty(t, events.SpanTraceParent(t.Context()))
	assert.Equal(t, upstream, events.TraceFrom(events.CausedBy(t.Context(), ev)).TraceParent)

	// Tracing on: the span handling the event is the parent of what follows.
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("test").Start(t.Context(), "handle")
	defer span.End()
	want := "00-" + span.SpanContext().TraceID().String() + "-" + span.SpanContext().SpanID().String() + "-01"
	assert.Equal(t, want, events.SpanTraceParent(ctx))
	got := events.TraceFrom(events.CausedBy(ctx, ev))
	assert.Equal(t, want, got.TraceParent)
	assert.Equal(t, "c1", got.CorrelationID)
	assert.Equal(t, ev.ID.String(), got.CausationID)
}

// A consumer with a tracer handles each delivery in a consumer span whose
// parent is the event's traceparent, marks failures, and remembers the time
// of the last event it applied.
func TestConsumerSpans(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	js := ns.JetStream(t)
	require.NoError(t, events.EnsureStreams(t.Context(), js, service, events.StreamConfig{}))
	require.NoError(t, events.EnsureStreams(t.Context(), js, "billing", events.StreamConfig{}))

	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	var inHandler atomic.Value // trace.SpanContext seen by the handler
	c, err := events.NewConsumer(js, events.ConsumerConfig{
		Service: "billing", Durable: "billing_traced", Stream: "ORDERS", MaxDeliver: 1,
		Tracer: tp.Tracer("test"),
		Handler: func(ctx context.Context, ev events.Event) error {
			var s wrapperspb.StringValue
			if err := ev.Unmarshal(&s); err != nil {
				return err
			}
			if s.GetValue() == "poison" {
				return events.Permanent(errors.New("order total is negative"))
			}
			inHandler.Store(trace.SpanContextFromContext(ctx))
			return nil
		},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	good := publishTraced(t, js, "good", upstream)
	publishTraced(t, js, "poison", "")
	require.Eventually(t, func() bool { return c.Stats().Handled == 1 && c.Stats().DeadLettered == 1 },
		10*time.Second, 20*time.Millisecond)
	assert.True(t, good.Time.Equal(c.Stats().LastEventTime), "the last applied event's time")

	var ok, failed tracetest.SpanStub
	for _, s := range spans.GetSpans() {
		if s.Status.Code == codes.Error {
			failed = s
		} else {
			ok = s
		}
	}
	assert.Equal(t, "process orders.order.placed", ok.Name)
	assert.Equal(t, trace.SpanKindConsumer, ok.SpanKind)
	assert.Equal(t, upstreamTrace, ok.SpanContext.TraceID().String())
	assert.Equal(t, upstreamSpan, ok.Parent.SpanID().String())
	assert.True(t, ok.Parent.IsRemote())
	assert.Equal(t, ok.SpanContext, inHandler.Load(), "the handler runs in the span")

	assert.True(t, failed.SpanContext.IsValid(), "the failed delivery has its span")
	assert.False(t, failed.Parent.IsValid(), "an event without a traceparent starts a trace")
	assert.Contains(t, failed.Status.Description, "order total is negative")
}

// The relay reports every acknowledged batch to OnBatch.
func TestRelayReportsBatches(t *testing.T) {
	t.Parallel()
	pool := provision(t)
	ns := natstest.Start(t)
	js := ns.JetStream(t)
	require.NoError(t, events.EnsureStreams(t.Context(), js, service, events.StreamConfig{}))
	store := events.NewStore(service)
	for range 3 {
		appendOne(t, pool, store, "x")
	}

	var acked, batches atomic.Int64
	var latency atomic.Int64
	relay, err := events.NewRelay(events.RelayConfig{Service: service, Pool: pool, JS: js, PollInterval: 50 * time.Millisecond,
		OnBatch: func(n int, d time.Duration) {
			acked.Add(int64(n))
			batches.Add(1)
			latency.Add(int64(d))
		}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = relay.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	require.Eventually(t, func() bool { return acked.Load() == 3 }, 10*time.Second, 20*time.Millisecond)
	assert.GreaterOrEqual(t, batches.Load(), int64(1))
	assert.Positive(t, latency.Load())
	assert.Equal(t, uint64(3), relay.Stats().Published)
}

// publishTraced publishes an event that carries traceparent.
func publishTraced(t *testing.T, js jetstream.JetStream, payload, traceparent string) events.Event {
	t.Helper()
	data, err := proto.Marshal(wrapperspb.String(payload))
	require.NoError(t, err)
	ev := events.Event{ID: uuid.New(), Service: service, AggregateType: "order", AggregateID: uuid.NewString(), Name: "placed",
		TenantID: "t1", Version: 1, Time: time.Now().UTC(), TraceParent: traceparent,
		MessageName: "google.protobuf.StringValue", Data: data}
	msg := nats.NewMsg(ev.Subject())
	for k, v := range ev.Headers() {
		msg.Header.Set(k, v)
	}
	msg.Data = data
	_, err = js.PublishMsg(t.Context(), msg, jetstream.WithMsgID(ev.ID.String()))
	require.NoError(t, err)
	return ev
}
