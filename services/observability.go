package services

import (
	"context"
	"io"
	"net/http"

	"go.opentelemetry.io/otel/trace"

	"github.com/authms/authms/services/internal/obs"
)

// MetricsPath is where [Platform.Handler] serves the Prometheus metrics.
const MetricsPath = "/metrics"

// tracerName names the tracer of the platform's consumers.
const tracerName = "github.com/authms/authms/events"

// newMetrics returns the platform's own registry: never the global one, so
// platforms running side by side (parallel tests) keep their metrics apart.
func newMetrics() (*obs.Metrics, error) { return obs.NewMetrics(obs.DefaultScrapeTimeout) }

// observe makes every unit's relay, outbox, consumers, projectors and dead
// letters part of the platform's metrics.
func (p *Platform) observe(m *obs.Metrics) {
	p.metrics = m
	for _, u := range p.units {
		src := obs.Source{Service: u.info.Name, Pool: u.pool, JS: p.js, Relay: u.relay}
		for i, c := range u.consumers {
			src.Projectors = append(src.Projectors, obs.Projector{Projection: u.projectors[i], Consumer: c})
		}
		m.Add(src)
	}
}

// metricsHandler serves the platform's metrics.
func (p *Platform) metricsHandler() http.Handler { return p.metrics.Handler() }

// consumerTracer returns the tracer of the projectors' consumer spans, nil
// when tracing is off.
func (c Config) consumerTracer() trace.Tracer {
	if c.TracerProvider == nil {
		return nil
	}
	return c.TracerProvider.Tracer(tracerName)
}

// TracingFromEnv returns the tracer provider the standard OTEL_ environment
// variables ask for (read through getenv; see docs/operations.md), and the
// function that flushes and stops it. Tracing is off by default: then the
// provider is nil and shutdown does nothing. Put the provider in
// [Config].TracerProvider.
func TracingFromEnv(ctx context.Context, getenv func(string) string, stdout io.Writer) (trace.TracerProvider, func(context.Context) error, error) {
	tp, err := obs.TracerProviderFromEnv(ctx, getenv, stdout)
	if err != nil || tp == nil {
		return nil, func(context.Context) error { return nil }, err
	}
	return tp, tp.Shutdown, nil
}
