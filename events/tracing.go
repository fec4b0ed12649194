package events

import (
	"context"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traceContext is the W3C trace context format events carry: explicit,
// rather than the global propagator, so a process that never configured
// OpenTelemetry still reads and writes the same headers.
var traceContext propagation.TraceContext

// SpanTraceParent returns the W3C traceparent of the span in ctx, or "" when
// ctx holds no valid span context (tracing off). Events recorded under an
// API call or a consumer span carry it, so their trace continues in the
// services that consume them.
func SpanTraceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return "" // the cheap path when tracing is off
	}
	carrier := propagation.MapCarrier{}
	traceContext.Inject(ctx, carrier)
	return carrier[HeaderTraceParent]
}

// startSpan starts the consumer span of one delivery of ev, a child of the
// trace context the event carries. Without a tracer it returns ctx and a nil
// span, and costs nothing.
func (c *Consumer) startSpan(ctx context.Context, ev Event, meta *jetstream.MsgMetadata) (context.Context, trace.Span) {
	if c.cfg.Tracer == nil {
		return ctx, nil
	}
	if ev.TraceParent != "" {
		ctx = traceContext.Extract(ctx, propagation.MapCarrier{HeaderTraceParent: ev.TraceParent})
	}
	return c.cfg.Tracer.Start(ctx, "process "+ev.Subject(),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", ev.Subject()),
			attribute.String("messaging.consumer.group.name", c.cfg.Durable),
			attribute.String("messaging.message.id", ev.ID.String()),
			attribute.String("authms.service", c.cfg.Service),
			attribute.String("authms.stream", meta.Stream),
			attribute.String("authms.stream.sequence", strconv.FormatUint(meta.Sequence.Stream, 10)),
			attribute.Int64("authms.attempt", int64(meta.NumDelivered)),
			attribute.String("authms.tenant_id", ev.TenantID),
		))
}

// endSpan ends a span from startSpan with the handler's outcome.
func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
