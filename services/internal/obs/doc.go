// Package obs makes an authms process observable: Prometheus metrics of the
// event pipeline and OpenTelemetry tracing.
//
// [Metrics] is one registry per platform (never the global default one, so
// tests running several platforms in parallel do not collide). Counters the
// relays and consumers keep in memory are read from their Stats; what lives
// elsewhere — outbox backlog, consumer pending counts, dead-letter depth,
// projector lag — is queried at scrape time with a short timeout, and a
// source that fails is skipped and counted in
// authms_metrics_scrape_errors_total instead of failing the scrape.
// docs/operations.md lists every metric.
//
// [TracerProviderFromEnv] builds a tracer provider from the standard OTEL_
// environment variables; tracing is off unless they ask for it.
package obs
