package services_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	"github.com/authms/authms/services"
	"github.com/authms/authms/services/servicestest"
)

// billingProjectorLabels are the labels of billing's projector of identity's users.
var billingProjectorLabels = map[string]string{"service": "billing", "durable": "billing_user_profiles", "stream": "IDENTITY"}

// A registration shows in the metrics of both services: identity's relay
// published it and its outbox is empty again, billing's projector applied
// it and is caught up, and no dead letter exists.
func TestMetricsFollowARegistration(t *testing.T) {
	t.Parallel()
	env := servicestest.Start(t, "tenant", "identity", "risk", "billing")
	registerForMetrics(t, env, env.NewTenant(t), "metrics@example.com")

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m := scrapeMetrics(c, env)
		if m == nil {
			return
		}
		identity := map[string]string{"service": "identity"}
		assert.GreaterOrEqual(c, m.value(c, "authms_relay_published_total", identity), 1.0)
		assert.Equal(c, 1.0, m.value(c, "authms_relay_active", identity))
		assert.Equal(c, 0.0, m.value(c, "authms_relay_failed_batches_total", identity))
		assert.GreaterOrEqual(c, m.histogramCount(c, "authms_relay_publish_latency_seconds", identity), uint64(1))
		assert.Equal(c, 0.0, m.value(c, "authms_outbox_backlog_rows", identity))
		assert.Equal(c, 0.0, m.value(c, "authms_outbox_oldest_age_seconds", identity))
		assert.Equal(c, 0.0, m.value(c, "authms_dlq_messages", identity))

		assert.Equal(c, 0.0, m.value(c, "authms_dlq_messages", map[string]string{"service": "billing"}))
		assert.GreaterOrEqual(c, m.value(c, "authms_consumer_handled_total", billingProjectorLabels), 1.0)
		assert.Equal(c, 0.0, m.value(c, "authms_consumer_failures_total", billingProjectorLabels))
		assert.Equal(c, 0.0, m.value(c, "authms_consumer_dead_lettered_total", billingProjectorLabels))
		assert.Equal(c, 0.0, m.value(c, "authms_consumer_stalled", billingProjectorLabels))
		assert.Equal(c, 0.0, m.value(c, "authms_consumer_pending_messages", billingProjectorLabels))
		assert.Equal(c, 0.0, m.value(c, "authms_consumer_ack_pending_messages", billingProjectorLabels))
		assert.Equal(c, 0.0, m.value(c, "authms_consumer_redelivered_messages", billingProjectorLabels))
		assert.GreaterOrEqual(c, m.value(c, "authms_projector_checkpoint_sequence", billingProjectorLabels), 1.0)
		assert.Equal(c, 0.0, m.value(c, "authms_projector_sequence_lag", billingProjectorLabels))
		assert.Equal(c, 0.0, m.value(c, "authms_projector_lag_seconds", billingProjectorLabels))
		assert.Equal(c, 0.0, m.value(c, "authms_projector_failing", billingProjectorLabels))

		for _, svc := range []string{"identity", "billing"} {
			for _, src := range []string{"outbox", "dlq"} {
				assert.Equal(c, 0.0, m.value(c, "authms_metrics_scrape_errors_total", map[string]string{"service": svc, "source": src}))
			}
		}
		assert.Contains(c, m, "go_goroutines")
		assert.Contains(c, m, "process_cpu_seconds_total")
	}, 20*time.Second, 50*time.Millisecond)
}

// While billing's database is down its projector lags and stalls, the
// queries that need the database are counted as scrape errors, and the
// scrape still serves everything else. The lag goes back to 0 once the
// database returns.
func TestMetricsSurviveADatabaseOutage(t *testing.T) {
	t.Parallel()
	env := servicestest.Start(t, "tenant", "identity", "risk", "billing")
	tenant := env.NewTenant(t)
	registerForMetrics(t, env, tenant, "before@example.com")
	waitProjectorCaughtUp(t, env)

	require.NoError(t, env.PG.Provisioner().BlockConnections(t.Context(), "billing"))
	unblocked := false
	unblock := func() {
		if !unblocked {
			unblocked = true
			require.NoError(t, env.PG.Provisioner().AllowConnections(context.WithoutCancel(t.Context()), "billing"))
		}
	}
	t.Cleanup(unblock)
	registerForMetrics(t, env, tenant, "during@example.com")

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m := scrapeMetrics(c, env)
		if m == nil {
			return
		}
		assert.GreaterOrEqual(c, m.value(c, "authms_projector_sequence_lag", billingProjectorLabels), 1.0)
		assert.Greater(c, m.value(c, "authms_projector_lag_seconds", billingProjectorLabels), 0.0)
		assert.Equal(c, 1.0, m.value(c, "authms_consumer_stalled", billingProjectorLabels))
		assert.GreaterOrEqual(c, m.value(c, "authms_metrics_scrape_errors_total",
			map[string]string{"service": "billing", "source": "outbox"}), 1.0)
		assert.GreaterOrEqual(c, m.value(c, "authms_metrics_scrape_errors_total",
			map[string]string{"service": "billing", "source": "checkpoint"}), 1.0)
		assert.False(c, m.has("authms_outbox_backlog_rows", map[string]string{"service": "billing"}),
			"billing's outbox cannot be read")
		assert.Equal(c, 0.0, m.value(c, "authms_outbox_backlog_rows", map[string]string{"service": "identity"}))
	}, 30*time.Second, 100*time.Millisecond)

	unblock()
	waitProjectorCaughtUp(t, env)
}

// While NATS is down, identity's outbox holds the registration: the backlog
// and its age show it, and the dead-letter depth (read from NATS) is left
// out of the scrape rather than failing it. It drains when NATS returns.
func TestMetricsShowTheOutboxBacklog(t *testing.T) {
	t.Parallel()
	env := servicestest.Start(t, "tenant", "identity", "risk")
	identity := map[string]string{"service": "identity"}
	tenant := env.NewTenant(t) // identity learns of tenants over NATS
	env.NATS.Stop()
	registerForMetrics(t, env, tenant, "backlog@example.com")

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m := scrapeMetrics(c, env)
		if m == nil {
			return
		}
		assert.Equal(c, 1.0, m.value(c, "authms_outbox_backlog_rows", identity))
		assert.Greater(c, m.value(c, "authms_outbox_oldest_age_seconds", identity), 0.0)
		assert.False(c, m.has("authms_dlq_messages", identity))
		assert.GreaterOrEqual(c, m.value(c, "authms_metrics_scrape_errors_total",
			map[string]string{"service": "identity", "source": "dlq"}), 1.0)
	}, 30*time.Second, 100*time.Millisecond)

	env.NATS.Restart(t)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m := scrapeMetrics(c, env)
		if m == nil {
			return
		}
		assert.Equal(c, 0.0, m.value(c, "authms_outbox_backlog_rows", identity))
		assert.Equal(c, 0.0, m.value(c, "authms_outbox_oldest_age_seconds", identity))
		assert.GreaterOrEqual(c, m.value(c, "authms_relay_published_total", identity), 1.0)
		assert.Equal(c, 0.0, m.value(c, "authms_dlq_messages", identity))
	}, 30*time.Second, 100*time.Millisecond)
}

// With tracing on, the trace a client starts continues through the API's
// server span, the event's stored traceparent and the NATS headers into
// billing's projector: its consumer span is a child of the API span.
func TestTraceReachesTheProjector(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	env := servicestest.StartWith(t, servicestest.Options{TracerProvider: tp}, "tenant", "identity", "risk", "billing")

	const clientTrace, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	client := identityv1connect.NewIdentityServiceClient(env.HTTP, env.URL, env.Impersonate())
	req := connect.NewRequest(&identityv1.RegisterUserRequest{
		TenantId: env.NewTenant(t), Email: "traced@example.com", Password: "a long passphrase here",
	})
	req.Header().Set("traceparent", "00-"+clientTrace+"-"+clientSpan+"-01")
	_, err := client.RegisterUser(t.Context(), req)
	require.NoError(t, err)

	var api, projector tracetest.SpanStub
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		api, projector = tracetest.SpanStub{}, tracetest.SpanStub{}
		for _, s := range spans.GetSpans() {
			switch {
			case s.SpanKind == trace.SpanKindServer && strings.HasSuffix(s.Name, "IdentityService/RegisterUser"):
				api = s
			case s.SpanKind == trace.SpanKindConsumer && s.Name == "process identity.user.created" &&
				spanHasAttribute(s, attribute.String("messaging.consumer.group.name", "billing_user_profiles")):
				projector = s
			}
		}
		assert.True(c, api.SpanContext.IsValid(), "the API span")
		assert.True(c, projector.SpanContext.IsValid(), "the projector's span")
	}, 20*time.Second, 20*time.Millisecond)

	assert.Equal(t, clientTrace, api.SpanContext.TraceID().String(), "the API span continues the client's trace")
	assert.Equal(t, clientSpan, api.Parent.SpanID().String())
	assert.Equal(t, api.SpanContext.TraceID(), projector.SpanContext.TraceID(), "one trace from the call to the projector")
	assert.Equal(t, api.SpanContext.SpanID(), projector.Parent.SpanID(), "the projector's span is a child of the API span")
	assert.True(t, projector.Parent.IsRemote(), "its parent came in the event's headers")

	// The event carries the API span, not the client's.
	stream, err := env.JS.Stream(t.Context(), "IDENTITY")
	require.NoError(t, err)
	msg, err := stream.GetLastMsgForSubject(t.Context(), "identity.user.created")
	require.NoError(t, err)
	assert.Equal(t, "00-"+clientTrace+"-"+api.SpanContext.SpanID().String()+"-01", msg.Header.Get("traceparent"))
}

func registerForMetrics(t *testing.T, env *servicestest.Env, tenant, email string) {
	t.Helper()
	client := identityv1connect.NewIdentityServiceClient(env.HTTP, env.URL, env.Impersonate())
	_, err := client.RegisterUser(t.Context(), connect.NewRequest(&identityv1.RegisterUserRequest{
		TenantId: tenant, Email: email, Password: "a long passphrase here",
	}))
	require.NoError(t, err)
}

// waitProjectorCaughtUp waits until billing's projector has applied everything.
func waitProjectorCaughtUp(t *testing.T, env *servicestest.Env) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m := scrapeMetrics(c, env)
		if m == nil {
			return
		}
		assert.GreaterOrEqual(c, m.value(c, "authms_consumer_handled_total", billingProjectorLabels), 1.0)
		assert.Equal(c, 0.0, m.value(c, "authms_projector_sequence_lag", billingProjectorLabels))
		assert.Equal(c, 0.0, m.value(c, "authms_projector_lag_seconds", billingProjectorLabels))
		assert.Equal(c, 0.0, m.value(c, "authms_consumer_stalled", billingProjectorLabels))
	}, 30*time.Second, 50*time.Millisecond)
}

// scraped is one scrape, by metric family name.
type scraped map[string]*dto.MetricFamily

// scrapeMetrics reads /metrics through the platform's handler, as Prometheus does.
func scrapeMetrics(c *assert.CollectT, env *servicestest.Env) scraped {
	res, err := env.HTTP.Get(env.URL + services.MetricsPath)
	if !assert.NoError(c, err) {
		return nil
	}
	defer res.Body.Close()
	if !assert.Equal(c, http.StatusOK, res.StatusCode) {
		return nil
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(res.Body)
	if !assert.NoError(c, err) {
		return nil
	}
	return fams
}

// find returns the metric of the family name whose labels include want.
func (m scraped) find(name string, want map[string]string) *dto.Metric {
	fam := m[name]
	if fam == nil {
		return nil
	}
	for _, metric := range fam.GetMetric() {
		labels := map[string]string{}
		for _, l := range metric.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if match {
			return metric
		}
	}
	return nil
}

func (m scraped) has(name string, labels map[string]string) bool { return m.find(name, labels) != nil }

// value returns a counter's or gauge's value; -1 (and a failed assertion)
// when the scrape lacks it.
func (m scraped) value(c *assert.CollectT, name string, labels map[string]string) float64 {
	metric := m.find(name, labels)
	if !assert.NotNil(c, metric, "%s%v in the scrape", name, labels) {
		return -1
	}
	switch {
	case metric.GetCounter() != nil:
		return metric.GetCounter().GetValue()
	case metric.GetGauge() != nil:
		return metric.GetGauge().GetValue()
	}
	assert.Fail(c, name+" is neither a counter nor a gauge")
	return -1
}

// histogramCount returns a histogram's sample count.
func (m scraped) histogramCount(c *assert.CollectT, name string, labels map[string]string) uint64 {
	metric := m.find(name, labels)
	if !assert.NotNil(c, metric, "%s%v in the scrape", name, labels) || !assert.NotNil(c, metric.GetHistogram()) {
		return 0
	}
	return metric.GetHistogram().GetSampleCount()
}

func spanHasAttribute(s tracetest.SpanStub, want attribute.KeyValue) bool {
	for _, kv := range s.Attributes {
		if kv == want {
			return true
		}
	}
	return false
}
