package events

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authms/authms/events/eventsdb"
)

// RelayConfig configures a Relay.
type RelayConfig struct {
	Service string
	Pool    *pgxpool.Pool
	JS      jetstream.JetStream
	Logger  *slog.Logger
	// BatchSize is the most outbox rows published per round trip (default 1000).
	BatchSize int
	// PollInterval is how often the relay looks at the outbox without a
	// notification: NOTIFY does not pass PgBouncer in transaction mode
	// (default 1s).
	PollInterval time.Duration
	// StandbyInterval is how often a standby relay tries to become the
	// active one (default 2s).
	StandbyInterval time.Duration
	// AckTimeout bounds the wait for JetStream's acks of one batch (default 10s).
	AckTimeout time.Duration
	// DrainTimeout bounds the last drain after ctx is cancelled (default 5s).
	DrainTimeout time.Duration
	// OnBatch, when set, is called after each batch with the number of
	// messages JetStream acknowledged and their publish latency: from the
	// first publish of the batch to the last ack. Metrics use it; it must
	// not block.
	OnBatch func(acked int, latency time.Duration)
}

func (c RelayConfig) withDefaults() RelayConfig {
	c.BatchSize = cmp.Or(c.BatchSize, 1000)
	c.PollInterval = cmp.Or(c.PollInterval, time.Second)
	c.StandbyInterval = cmp.Or(c.StandbyInterval, 2*time.Second)
	c.AckTimeout = cmp.Or(c.AckTimeout, 10*time.Second)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, 5*time.Second)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Relay publishes a service's outbox to its JetStream stream, in outbox
// order, and deletes each row only after JetStream acknowledged it. Many
// relays of one service may run; a session advisory lock makes exactly one
// active while the others stand by.
type Relay struct {
	cfg    RelayConfig
	lockID int64

	published atomic.Uint64
	failures  atomic.Uint64
	active    atomic.Bool
}

// RelayStats are a relay's counters since it started.
type RelayStats struct {
	Published uint64 // messages JetStream acknowledged (duplicates included)
	Failures  uint64 // batches that failed and were retried
	Active    bool   // this relay holds the lock
}

// NewRelay returns a relay for cfg.Service.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	cfg = cfg.withDefaults()
	if cfg.Service == "" || cfg.Pool == nil || cfg.JS == nil {
		return nil, errors.New("relay: service, pool and jetstream are required")
	}
	h := fnv.New64a()
	h.Write([]byte("authms relay " + cfg.Service))
	return &Relay{cfg: cfg, lockID: int64(h.Sum64())}, nil
}

// Stats returns the relay's counters.
func (r *Relay) Stats() RelayStats {
	return RelayStats{Published: r.published.Load(), Failures: r.failures.Load(), Active: r.active.Load()}
}

// Run relays until ctx ends, then drains what it can within DrainTimeout.
// It returns nil on cancellation; failures of PostgreSQL or NATS are logged
// and retried, never returned, since the outbox keeps every row until it is
// published.
func (r *Relay) Run(ctx context.Context) error {
	log := r.cfg.Logger.With("service", r.cfg.Service, "component", "relay")
	for ctx.Err() == nil {
		err := r.lead(ctx, log)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			log.Warn("relay lost its lead; retrying", "err", err)
		}
		sleep(ctx, r.cfg.StandbyInterval)
	}
	return nil
}

// lead waits to become the active relay, then relays until ctx ends or the
// lock connection fails.
func (r *Relay) lead(ctx context.Context, log *slog.Logger) error {
	conn, err := r.cfg.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire lock connection: %w", err)
	}
	// The connection carries the session lock and LISTEN; never give it back
	// to the pool in that state.
	defer func() {
		_ = conn.Conn().Close(context.Background())
		conn.Release()
	}()
	for {
		var got bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", r.lockID).Scan(&got); err != nil {
			return fmt.Errorf("try relay lock: %w", err)
		}
		if got {
			break
		}
		if !sleep(ctx, r.cfg.StandbyInterval) {
			return nil
		}
	}
	r.active.Store(true)
	defer r.active.Store(false)
	log.Info("relay active")
	if _, err := conn.Exec(ctx, "LISTEN authms_outbox"); err != nil {
		return fmt.Errorf("listen for outbox rows: %w", err)
	}
	backoff := newBackoff(100*time.Millisecond, 5*time.Second)
	for {
		// The lock lives as long as its connection. Batches run on other
		// connections of the pool, so without this check a relay whose lock
		// connection died (a terminated backend, a failover) would keep
		// draining a backlog next to the relay that took the lock over.
		if err := conn.Ping(ctx); err != nil {
			if ctx.Err() != nil {
				r.finalDrain(log)
				return nil
			}
			return fmt.Errorf("relay lock connection lost: %w", err)
		}
		n, err := r.drainOnce(ctx)
		switch {
		case ctx.Err() != nil:
			r.finalDrain(log)
			return nil
		case err != nil:
			r.failures.Add(1)
			d := backoff.next()
			log.Warn("relay batch failed; the rows stay in the outbox", "err", err, "retry_in", d)
			if !sleep(ctx, d) {
				r.finalDrain(log)
				return nil
			}
			continue
		case n == r.cfg.BatchSize:
			backoff.reset()
			continue // more rows are waiting
		}
		backoff.reset()
		// Wait for a notification or the poll interval, whichever is first.
		wctx, cancel := context.WithTimeout(ctx, r.cfg.PollInterval)
		_, err = conn.Conn().WaitForNotification(wctx)
		cancel()
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("wait for outbox notification: %w", err)
		}
	}
}

// finalDrain publishes what it can after shutdown was requested.
func (r *Relay) finalDrain(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.DrainTimeout)
	defer cancel()
	for {
		n, err := r.drainOnce(ctx)
		if err != nil {
			log.Warn("relay stopped with rows left in the outbox; the next relay publishes them", "err", err)
			return
		}
		if n < r.cfg.BatchSize {
			return
		}
	}
}

// drainOnce publishes one batch, deletes the acknowledged rows and records
// their events' stream sequences.
func (r *Relay) drainOnce(ctx context.Context) (int, error) {
	q := eventsdb.New(r.cfg.Pool)
	rows, err := q.OutboxBatch(ctx, int32(r.cfg.BatchSize))
	if err != nil {
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	if len(rows) == 0 {
		return 0, nil
	}
	// The query orders by id; keep the guarantee explicit for future edits.
	slices.SortFunc(rows, func(a, b eventsdb.OutboxBatchRow) int { return cmp.Compare(a.ID, b.ID) })

	start := time.Now()
	futures := make([]jetstream.PubAckFuture, 0, len(rows))
	for _, row := range rows {
		msg, err := outboxMsg(row)
		if err != nil {
			return 0, err
		}
		f, err := r.cfg.JS.PublishMsgAsync(msg, jetstream.WithMsgID(row.EventID.String()))
		if err != nil {
			return 0, fmt.Errorf("publish %s: %w", row.EventID, err)
		}
		futures = append(futures, f)
	}
	var (
		acked     = make([]int64, 0, len(rows))
		eventIDs  = make([]uuid.UUID, 0, len(rows))
		sequences = make([]int64, 0, len(rows))
	)
	timeout := time.NewTimer(r.cfg.AckTimeout)
	defer timeout.Stop()
	var firstErr error
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			// A duplicate ack means the stream already has the event (an
			// earlier relay published it and died before deleting the row);
			// it carries the sequence of that copy.
			acked = append(acked, rows[i].ID)
			eventIDs = append(eventIDs, rows[i].EventID)
			sequences = append(sequences, int64(ack.Sequence))
		case err := <-f.Err():
			firstErr = cmp.Or(firstErr, fmt.Errorf("publish %s: %w", rows[i].EventID, err))
		case <-timeout.C:
			firstErr = cmp.Or(firstErr, fmt.Errorf("no ack within %s", r.cfg.AckTimeout))
		case <-ctx.Done():
			firstErr = cmp.Or(firstErr, ctx.Err())
		}
		if firstErr != nil {
			break
		}
	}
	latency := time.Since(start)
	if len(acked) > 0 {
		// Delete with a fresh context: rows JetStream stored must not be
		// published again just because shutdown began. The same statement
		// records the events' stream sequences (the positions write
		// responses report) and wakes events.Positions.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err := q.MarkPublished(dctx, eventsdb.MarkPublishedParams{OutboxIds: acked, EventIds: eventIDs, StreamSequences: sequences})
		cancel()
		if err != nil {
			return 0, fmt.Errorf("delete %d published outbox rows: %w", len(acked), err)
		}
		r.published.Add(uint64(len(acked)))
		if r.cfg.OnBatch != nil {
			r.cfg.OnBatch(len(acked), latency)
		}
	}
	return len(acked), firstErr
}

func outboxMsg(row eventsdb.OutboxBatchRow) (*nats.Msg, error) {
	var headers map[string]string
	if err := json.Unmarshal(row.Headers, &headers); err != nil {
		return nil, fmt.Errorf("decode outbox headers of %s: %w", row.EventID, err)
	}
	msg := nats.NewMsg(row.Subject)
	for k, v := range headers {
		msg.Header.Set(k, v)
	}
	msg.Data = row.Data
	return msg, nil
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
