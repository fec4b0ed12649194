package obs

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/eventsdb"
	"github.com/authms/authms/projections"
)

// DefaultScrapeTimeout bounds the queries one scrape makes per service.
const DefaultScrapeTimeout = 2 * time.Second

// Scrape sources counted by authms_metrics_scrape_errors_total.
const (
	SourceOutbox     = "outbox"     // the service's outbox table
	SourceDLQ        = "dlq"        // the service's DLQ_<SERVICE> stream
	SourceConsumer   = "consumer"   // a durable consumer's info
	SourceStream     = "stream"     // a projector's source stream
	SourceCheckpoint = "checkpoint" // a projector's state in the service's database
)

// Source is one service as the metrics see it.
type Source struct {
	// Service is the service's name; it labels every metric.
	Service string
	// Pool connects to the service's database (outbox backlog, projector
	// checkpoints).
	Pool *pgxpool.Pool
	// JS reads stream and consumer info.
	JS jetstream.JetStream
	// Relay is the service's outbox relay; nil when none runs here.
	Relay *events.Relay
	// Projectors are the service's projectors and their running consumers.
	Projectors []Projector
}

// Projector is a projection and the consumer that runs it.
type Projector struct {
	Projection projections.Projector
	Consumer   *events.Consumer
}

// Metrics is a platform's Prometheus registry: Go and process metrics, and
// the event pipeline of every [Source] added to it.
type Metrics struct {
	reg          *prometheus.Registry
	timeout      time.Duration
	relayLatency *prometheus.HistogramVec
	relayBatch   *prometheus.HistogramVec
	scrapeErrors *prometheus.CounterVec
	desc         descs

	mu      sync.Mutex
	sources []Source
}

// descs describes the metrics read at scrape time.
type descs struct {
	outboxRows, outboxAge                                 *prometheus.Desc
	relayPublished, relayFailed, relayActive              *prometheus.Desc
	handled, failures, deadLettered, outages, stalled     *prometheus.Desc
	pending, ackPending, redelivered                      *prometheus.Desc
	dlq                                                   *prometheus.Desc
	checkpoint, sequenceLag, secondsLag, projectorFailing *prometheus.Desc
}

func newDescs() descs {
	svc := []string{"service"}
	cons := []string{"service", "durable", "stream"}
	d := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return descs{
		outboxRows:       d("authms_outbox_backlog_rows", "Outbox rows not yet published to JetStream.", svc),
		outboxAge:        d("authms_outbox_oldest_age_seconds", "Age of the oldest outbox row; 0 when the outbox is empty.", svc),
		relayPublished:   d("authms_relay_published_total", "Messages the relay published and JetStream acknowledged (duplicates included).", svc),
		relayFailed:      d("authms_relay_failed_batches_total", "Relay batches that failed and were retried.", svc),
		relayActive:      d("authms_relay_active", "1 when this process's relay holds the service's relay lock, else 0.", svc),
		handled:          d("authms_consumer_handled_total", "Events the consumer handled successfully.", cons),
		failures:         d("authms_consumer_failures_total", "Handler failures, retried or dead-lettered.", cons),
		deadLettered:     d("authms_consumer_dead_lettered_total", "Messages the consumer moved to its service's DLQ.", cons),
		outages:          d("authms_consumer_outages_total", "Outages of a dependency (its own database) the consumer waited out.", cons),
		stalled:          d("authms_consumer_stalled", "1 while the consumer waits for a dependency to come back, else 0.", cons),
		pending:          d("authms_consumer_pending_messages", "Messages of the stream the durable consumer has not delivered yet (JetStream NumPending).", cons),
		ackPending:       d("authms_consumer_ack_pending_messages", "Messages delivered and not yet acknowledged (JetStream NumAckPending).", cons),
		redelivered:      d("authms_consumer_redelivered_messages", "Messages redelivered and not yet acknowledged (JetStream NumRedelivered).", cons),
		dlq:              d("authms_dlq_messages", "Dead letters in the service's DLQ_<SERVICE> stream.", svc),
		checkpoint:       d("authms_projector_checkpoint_sequence", "Source stream sequence of the last event the projector applied.", cons),
		sequenceLag:      d("authms_projector_sequence_lag", "Source stream's last sequence minus the projector's checkpoint; 0 when nothing it consumes is pending.", cons),
		secondsLag:       d("authms_projector_lag_seconds", "Age of the oldest event the projector has not applied yet; 0 when caught up.", cons),
		projectorFailing: d("authms_projector_failing", "1 while the projector keeps failing on an event (recorded in projector_failures), else 0.", cons),
	}
}

// NewMetrics returns a registry with the Go and process collectors and the
// event pipeline's metrics, each scrape's queries bounded by scrapeTimeout
// per service (0: [DefaultScrapeTimeout]).
func NewMetrics(scrapeTimeout time.Duration) (*Metrics, error) {
	m := &Metrics{
		reg:     prometheus.NewRegistry(),
		timeout: cmp.Or(scrapeTimeout, DefaultScrapeTimeout),
		desc:    newDescs(),
		relayLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authms_relay_publish_latency_seconds",
			Help:    "Time from the first publish of a relay batch to JetStream's last ack of it.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"service"}),
		relayBatch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authms_relay_batch_messages",
			Help:    "Messages JetStream acknowledged per relay batch.",
			Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500},
		}, []string{"service"}),
		scrapeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authms_metrics_scrape_errors_total",
			Help: "Scrape-time queries that failed or timed out; their metrics were left out of that scrape.",
		}, []string{"service", "source"}),
	}
	err := errors.Join(
		m.reg.Register(collectors.NewGoCollector()),
		m.reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
		m.reg.Register(m.relayLatency),
		m.reg.Register(m.relayBatch),
		m.reg.Register(m.scrapeErrors),
		m.reg.Register(pipeline{m}),
	)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Registerer lets other parts of the process add their own collectors.
func (m *Metrics) Registerer() prometheus.Registerer { return m.reg }

// Gatherer gathers every metric of the registry, as a scrape does.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:      m.reg, // promhttp's own error counter
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// RelayObserver returns the function a service's relay calls after each
// batch (events.RelayConfig.OnBatch).
func (m *Metrics) RelayObserver(service string) func(acked int, latency time.Duration) {
	latency := m.relayLatency.WithLabelValues(service)
	batch := m.relayBatch.WithLabelValues(service)
	return func(acked int, d time.Duration) {
		latency.Observe(d.Seconds())
		batch.Observe(float64(acked))
	}
}

// Add makes a service's pipeline part of every scrape.
func (m *Metrics) Add(s Source) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sources = append(m.sources, s)
	// Counted failures show as 0 from the start, so rate() and alerts work
	// before the first error.
	sources := []string{SourceOutbox, SourceDLQ}
	if len(s.Projectors) > 0 {
		sources = append(sources, SourceConsumer, SourceStream, SourceCheckpoint)
	}
	for _, src := range sources {
		m.scrapeErrors.WithLabelValues(s.Service, src)
	}
}

// pipeline collects the metrics read at scrape time.
type pipeline struct{ m *Metrics }

// Describe sends every descriptor the pipeline may collect.
func (p pipeline) Describe(ch chan<- *prometheus.Desc) {
	d := p.m.desc
	for _, desc := range []*prometheus.Desc{
		d.outboxRows, d.outboxAge, d.relayPublished, d.relayFailed, d.relayActive,
		d.handled, d.failures, d.deadLettered, d.outages, d.stalled,
		d.pending, d.ackPending, d.redelivered, d.dlq,
		d.checkpoint, d.sequenceLag, d.secondsLag, d.projectorFailing,
	} {
		ch <- desc
	}
}

// Collect reads every service concurrently, each within the scrape
// timeout.
func (p pipeline) Collect(ch chan<- prometheus.Metric) {
	p.m.mu.Lock()
	sources := append([]Source(nil), p.m.sources...)
	p.m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), p.m.timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range sources {
		wg.Go(func() { p.m.collect(ctx, ch, s) })
	}
	wg.Wait()
}

// collect sends one service's metrics; a failing query skips its metrics
// and counts a scrape error.
func (m *Metrics) collect(ctx context.Context, ch chan<- prometheus.Metric, s Source) {
	d := m.desc
	send := func(desc *prometheus.Desc, typ prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, typ, v, labels...)
	}
	failed := func(source string) { m.scrapeErrors.WithLabelValues(s.Service, source).Inc() }

	if s.Relay != nil {
		st := s.Relay.Stats()
		send(d.relayPublished, prometheus.CounterValue, float64(st.Published), s.Service)
		send(d.relayFailed, prometheus.CounterValue, float64(st.Failures), s.Service)
		send(d.relayActive, prometheus.GaugeValue, boolValue(st.Active), s.Service)
	}
	if backlog, err := eventsdb.New(s.Pool).OutboxBacklog(ctx); err != nil {
		failed(SourceOutbox)
	} else {
		age := 0.0
		if backlog.Rows > 0 {
			age = max(0, time.Since(backlog.Oldest).Seconds())
		}
		send(d.outboxRows, prometheus.GaugeValue, float64(backlog.Rows), s.Service)
		send(d.outboxAge, prometheus.GaugeValue, age, s.Service)
	}
	if dlq, err := s.JS.Stream(ctx, events.DLQStreamName(s.Service)); err != nil {
		failed(SourceDLQ)
	} else {
		send(d.dlq, prometheus.GaugeValue, float64(dlq.CachedInfo().State.Msgs), s.Service)
	}

	streams := map[string]jetstream.Stream{} // source streams, read once per scrape
	for _, p := range s.Projectors {
		cfg := p.Consumer.Config()
		labels := []string{s.Service, cfg.Durable, cfg.Stream}
		st := p.Consumer.Stats()
		send(d.handled, prometheus.CounterValue, float64(st.Handled), labels...)
		send(d.failures, prometheus.CounterValue, float64(st.Failures), labels...)
		send(d.deadLettered, prometheus.CounterValue, float64(st.DeadLettered), labels...)
		send(d.outages, prometheus.CounterValue, float64(st.Outages), labels...)
		send(d.stalled, prometheus.GaugeValue, boolValue(st.Stalled), labels...)

		var info *jetstream.ConsumerInfo
		if cons, err := s.JS.Consumer(ctx, cfg.Stream, cfg.Durable); err != nil {
			failed(SourceConsumer)
		} else {
			info = cons.CachedInfo()
			send(d.pending, prometheus.GaugeValue, float64(info.NumPending), labels...)
			send(d.ackPending, prometheus.GaugeValue, float64(info.NumAckPending), labels...)
			send(d.redelivered, prometheus.GaugeValue, float64(info.NumRedelivered), labels...)
		}

		// The checkpoint in the database covers every instance sharing the
		// durable; this instance's own last sequence backs it up.
		checkpoint := st.LastSequence
		if state, err := projections.ReadState(ctx, s.Pool, p.Projection); err != nil {
			failed(SourceCheckpoint)
		} else {
			checkpoint = max(checkpoint, state.Checkpoint)
			send(d.projectorFailing, prometheus.GaugeValue, boolValue(state.Failure != nil), labels...)
		}
		send(d.checkpoint, prometheus.GaugeValue, float64(checkpoint), labels...)

		if info == nil {
			continue // lag needs to know what is pending
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			// Caught up: later sequences of the stream, if any, are subjects
			// this projector does not consume.
			send(d.sequenceLag, prometheus.GaugeValue, 0, labels...)
			send(d.secondsLag, prometheus.GaugeValue, 0, labels...)
			continue
		}
		stream, ok := streams[cfg.Stream]
		if !ok {
			var err error
			if stream, err = s.JS.Stream(ctx, cfg.Stream); err != nil {
				failed(SourceStream)
				continue
			}
			streams[cfg.Stream] = stream
		}
		last := stream.CachedInfo().State.LastSeq
		send(d.sequenceLag, prometheus.GaugeValue, float64(last-min(last, checkpoint)), labels...)
		if oldest, err := oldestUnapplied(ctx, stream, info, cfg.Subjects); err != nil {
			failed(SourceStream)
		} else {
			send(d.secondsLag, prometheus.GaugeValue, max(0, time.Since(oldest).Seconds()), labels...)
		}
	}
}

// oldestUnapplied returns the time of the first message after the
// consumer's ack floor that the consumer receives: the oldest event it has
// not applied.
func oldestUnapplied(ctx context.Context, stream jetstream.Stream, info *jetstream.ConsumerInfo, subjects []string) (time.Time, error) {
	from := info.AckFloor.Stream + 1
	if len(subjects) == 0 {
		msg, err := stream.GetMsg(ctx, from)
		if err != nil {
			return time.Time{}, err
		}
		return msg.Time, nil
	}
	var oldest *jetstream.RawStreamMsg
	for _, subj := range subjects {
		msg, err := stream.GetMsg(ctx, from, jetstream.WithGetMsgSubject(subj))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			continue // nothing of this subject after the floor
		case err != nil:
			return time.Time{}, err
		case oldest == nil || msg.Sequence < oldest.Sequence:
			oldest = msg
		}
	}
	if oldest == nil {
		return time.Now(), nil // acked meanwhile: no lag
	}
	return oldest.Time, nil
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
