package auth

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/authms/authms/events"
)

// RevokedSubject is the event the revocation list reads.
const RevokedSubject = "session.session.revoked"

// Revocation list defaults.
const (
	// DefaultRetention is how long a revoked session is remembered: the
	// longest access-token lifetime and the clock skew, so no token of the
	// session can still be valid when it is forgotten.
	DefaultRetention = MaxTokenLifetime + DefaultSkew + time.Minute
	// defaultRetry is the pause before the consumer is recreated after the
	// SESSION stream was missing or NATS failed.
	defaultRetry = 2 * time.Second
)

// RevocationsConfig configures [Revocations].
type RevocationsConfig struct {
	JS jetstream.JetStream
	// Stream is the session service's stream (default "SESSION").
	Stream string
	// Retention is how long a revoked session id is kept (default
	// DefaultRetention).
	Retention time.Duration
	// Retry is the pause before recreating the consumer (default 2s).
	Retry  time.Duration
	Logger *slog.Logger
	// Registerer receives the list's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Revocations is the list of revoked sessions, fed by the SESSION
// stream's session.session.revoked events through an ordered (ephemeral,
// in-order) consumer that starts Retention back in time. When NATS is down
// or the stream does not exist yet, it keeps the last list it knew, logs
// and retries: an outage does not refuse every call (fail open for
// revocations only; tokens are still verified and expire within
// MaxTokenLifetime), and authms_auth_revocations_synced reports 0 so it
// can alert.
type Revocations struct {
	js        jetstream.JetStream
	stream    string
	retention time.Duration
	retry     time.Duration
	logger    *slog.Logger
	now       func() time.Time

	mu      sync.RWMutex
	revoked map[string]time.Time // session id -> revocation time

	consuming atomic.Bool
	synced    prometheus.GaugeFunc
	size      prometheus.GaugeFunc
	applied   prometheus.Counter
	errs      prometheus.Counter
}

// NewRevocations returns an empty list; [Revocations.Run] fills it.
func NewRevocations(cfg RevocationsConfig) (*Revocations, error) {
	if cfg.JS == nil {
		return nil, errors.New("revocations: a JetStream context is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Revocations{
		js:        cfg.JS,
		stream:    cmp.Or(cfg.Stream, events.StreamName("session")),
		retention: cmp.Or(cfg.Retention, DefaultRetention),
		retry:     cmp.Or(cfg.Retry, defaultRetry),
		logger:    cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)).With("component", "revocations"),
		now:       cfg.Now,
		revoked:   map[string]time.Time{},
		applied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authms_auth_revocations_applied_total",
			Help: "session.session.revoked events applied to the revocation list.",
		}),
		errs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authms_auth_revocations_errors_total",
			Help: "Times the revocation list's consumer failed and was recreated.",
		}),
	}
	r.synced = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "authms_auth_revocations_synced",
		Help: "1 while the revocation list consumes session.session.revoked live; 0 while the SESSION stream is missing or NATS is unreachable (the last known list is used).",
	}, func() float64 {
		if r.Synced() {
			return 1
		}
		return 0
	})
	r.size = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "authms_auth_revoked_sessions",
		Help: "Revoked sessions the revocation list remembers.",
	}, func() float64 {
		r.mu.RLock()
		defer r.mu.RUnlock()
		return float64(len(r.revoked))
	})
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{r.synced, r.size, r.applied, r.errs} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// Revoked reports whether session id sid was revoked. A nil list knows no
// revocation.
func (r *Revocations) Revoked(sid string) bool {
	if r == nil {
		return false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.revoked[sid]
	return ok
}

// Synced reports whether the list is consuming revocations live: false
// while the SESSION stream is missing or NATS is unreachable.
func (r *Revocations) Synced() bool {
	return r.consuming.Load() && r.js.Conn() != nil && r.js.Conn().IsConnected()
}

// Run consumes revocations until ctx ends.
func (r *Revocations) Run(ctx context.Context) error {
	go func() {
		tick := time.NewTicker(time.Minute)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				r.prune()
			}
		}
	}()
	missingLogged := false
	for ctx.Err() == nil {
		err := r.consume(ctx)
		r.consuming.Store(false)
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, jetstream.ErrStreamNotFound):
			if !missingLogged {
				r.logger.InfoContext(ctx, "no SESSION stream yet; revocations apply once it exists", "stream", r.stream)
				missingLogged = true
			}
		default:
			r.errs.Inc()
			r.logger.WarnContext(ctx, "revocation list not updating; using the last known list", "stream", r.stream, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(r.retry):
		}
	}
	return nil
}

// consume reads revocations from Retention ago until the consumer fails.
func (r *Revocations) consume(ctx context.Context) error {
	stream, err := r.js.Stream(ctx, r.stream)
	if err != nil {
		return err
	}
	start := r.now().Add(-r.retention)
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{RevokedSubject},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
	})
	if err != nil {
		return err
	}
	iter, err := cons.Messages()
	if err != nil {
		return err
	}
	defer iter.Stop()
	stop := context.AfterFunc(ctx, iter.Stop)
	defer stop()
	r.consuming.Store(true)
	r.logger.DebugContext(ctx, "revocation list consuming", "stream", r.stream)
	for {
		msg, err := iter.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return ctx.Err()
			}
			return err
		}
		r.apply(msg)
	}
}

// apply records one revocation. The session id is the envelope's
// aggregate id, so the payload type is not needed.
func (r *Revocations) apply(msg jetstream.Msg) {
	sid := msg.Headers().Get(events.HeaderSubject)
	if sid == "" {
		r.logger.Warn("session.session.revoked without an aggregate id; ignored", "subject", msg.Subject())
		return
	}
	at := r.now()
	if meta, err := msg.Metadata(); err == nil {
		at = meta.Timestamp
	}
	if r.now().Sub(at) > r.retention {
		return
	}
	r.mu.Lock()
	r.revoked[sid] = at
	r.mu.Unlock()
	r.applied.Inc()
}

// prune forgets sessions revoked longer than Retention ago: their tokens
// have all expired.
func (r *Revocations) prune() {
	cutoff := r.now().Add(-r.retention)
	r.mu.Lock()
	defer r.mu.Unlock()
	for sid, at := range r.revoked {
		if at.Before(cutoff) {
			delete(r.revoked, sid)
		}
	}
}
