package events

import (
	"cmp"
	"context"
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
	var pipe pipeline // the batch read ahead and the previous batch's deletion
	defer pipe.settle()
	for {
		// The lock lives as long as its connection. Batches run on other
		// connections of the pool, so without this check a relay whose lock
		// connection died (a terminated backend, a failover) would keep
		// draining a backlog next to the relay that took the lock over.
		if err := conn.Ping(ctx); err != nil {
			pipe.settle()
			if ctx.Err() != nil {
				r.finalDrain(log)
				return nil
			}
			return fmt.Errorf("relay lock connection lost: %w", err)
		}
		var n int
		n, pipe, err = r.drainOnce(ctx, pipe)
		switch {
		case ctx.Err() != nil:
			pipe.settle()
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
	var pipe pipeline
	defer pipe.settle()
	for {
		var (
			n   int
			err error
		)
		n, pipe, err = r.drainOnce(ctx, pipe)
		if err != nil {
			log.Warn("relay stopped with rows left in the outbox; the next relay publishes them", "err", err)
			return
		}
		if n < r.cfg.BatchSize {
			return
		}
	}
}

// outboxBatch is a batch of outbox rows in id order with their messages
// built, or the error that prevented reading it.
type outboxBatch struct {
	rows []eventsdb.OutboxBatchRow
	msgs []*nats.Msg
	err  error
}

// readBatch reads the oldest BatchSize outbox rows and builds their
// messages. With beside set to a batch [lo, hi] still in flight, it reads
// the rows that batch's deletion will leave first in line.
func (r *Relay) readBatch(ctx context.Context, beside *[2]int64) outboxBatch {
	q := eventsdb.New(r.cfg.Pool)
	var b outboxBatch
	if beside == nil {
		b.rows, b.err = q.OutboxBatch(ctx, int32(r.cfg.BatchSize))
	} else {
		var rows []eventsdb.OutboxBatchBesideRow
		rows, b.err = q.OutboxBatchBeside(ctx, eventsdb.OutboxBatchBesideParams{Lo: beside[0], Hi: beside[1], MaxRows: int32(r.cfg.BatchSize)})
		b.rows = make([]eventsdb.OutboxBatchRow, len(rows))
		for i, row := range rows {
			b.rows[i] = eventsdb.OutboxBatchRow(row)
		}
	}
	if b.err != nil {
		b.err = fmt.Errorf("read outbox: %w", b.err)
		return b
	}
	// The query orders by id; keep the guarantee explicit for future edits.
	slices.SortFunc(b.rows, func(a, b eventsdb.OutboxBatchRow) int { return cmp.Compare(a.ID, b.ID) })
	b.msgs = make([]*nats.Msg, len(b.rows))
	for i, row := range b.rows {
		if b.msgs[i], b.err = outboxMsg(row); b.err != nil {
			return b
		}
	}
	return b
}

// pipeline is what one drainOnce hands the next while a backlog drains: the
// next batch, read while the last one waited for its acks, and the
// deletion of the last batch's rows, still running. The zero pipeline has
// neither.
type pipeline struct {
	next   *outboxBatch
	marked <-chan error // the previous batch's MarkPublished; nil when none runs
}

// settle waits for the previous batch's deletion and drops the batch read
// ahead: whoever continues reads the outbox afresh.
func (p *pipeline) settle() {
	if p.marked != nil {
		<-p.marked // its failure leaves rows that the next read publishes again
	}
	*p = pipeline{}
}

// drainOnce publishes one batch, deletes the acknowledged rows and records
// their events' stream sequences.
//
// While a backlog drains it pipelines: the batch is the one the previous
// call read ahead (else it reads one), and while JetStream acknowledges it,
// the previous batch's rows are deleted and, once they are, the next batch
// is read. When this batch is acknowledged and another one is waiting, it
// starts deleting this batch's rows and returns the next batch; the next
// call publishes it while the deletion runs. Publishing still waits for
// the previous batch's acks, so the stream keeps the outbox order. A
// failure anywhere settles the pipeline: the rows not deleted stay and the
// next call reads from the oldest row, publishing them again (JetStream
// drops such duplicates by Nats-Msg-Id).
func (r *Relay) drainOnce(ctx context.Context, pipe pipeline) (n int, next pipeline, err error) {
	var b outboxBatch
	if pipe.next != nil {
		b = *pipe.next
	} else {
		b = r.readBatch(ctx, nil)
	}
	if b.err != nil {
		pipe.settle()
		return 0, pipeline{}, b.err
	}
	rows := b.rows
	if len(rows) == 0 {
		pipe.settle()
		return 0, pipeline{}, nil
	}

	start := time.Now()
	futures := make([]jetstream.PubAckFuture, 0, len(rows))
	for i, row := range rows {
		f, err := r.cfg.JS.PublishMsgAsync(b.msgs[i], jetstream.WithMsgID(row.EventID.String()))
		// A batch larger than the connection's limit of outstanding async
		// publishes (4,000 by default) stalls until acks come back; each
		// try waits for that a moment. Give up after AckTimeout.
		for errors.Is(err, jetstream.ErrTooManyStalledMsgs) && time.Since(start) < r.cfg.AckTimeout {
			f, err = r.cfg.JS.PublishMsgAsync(b.msgs[i], jetstream.WithMsgID(row.EventID.String()))
		}
		if err != nil {
			pipe.settle()
			return 0, pipeline{}, fmt.Errorf("publish %s: %w", row.EventID, err)
		}
		futures = append(futures, f)
	}
	// Meanwhile: the previous batch's deletion, then the next batch. Read
	// ahead only when this batch is full (more rows wait) and its ids are
	// contiguous: then no row can commit later inside [lo, hi], which the
	// read-ahead would skip while it took a later event of the same
	// aggregate. (Ids are taken at insert; rolled back inserts leave gaps.)
	type behind struct {
		markErr error
		next    *outboxBatch
	}
	meanwhile := make(chan behind, 1)
	lo, hi := rows[0].ID, rows[len(rows)-1].ID
	readAhead := len(rows) == r.cfg.BatchSize && hi-lo+1 == int64(len(rows))
	go func() {
		var res behind
		if pipe.marked != nil {
			res.markErr = <-pipe.marked
		}
		if res.markErr == nil && readAhead {
			nb := r.readBatch(ctx, &[2]int64{lo, hi})
			res.next = &nb
		}
		meanwhile <- res
	}()
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
	prev := <-meanwhile
	if prev.markErr != nil {
		// This batch's rows stay too; the next call starts from the oldest.
		return 0, pipeline{}, prev.markErr
	}
	if len(acked) == 0 {
		return 0, pipeline{}, firstErr
	}
	mark := func() error { return r.markPublished(ctx, acked, eventIDs, sequences, latency) }
	if firstErr != nil || prev.next == nil || prev.next.err != nil || len(prev.next.rows) == 0 {
		// Nothing to overlap with (or a failure to report): delete now.
		if err := mark(); err != nil {
			return 0, pipeline{}, err
		}
		return len(acked), pipeline{}, firstErr
	}
	marked := make(chan error, 1)
	go func() { marked <- mark() }()
	return len(acked), pipeline{next: prev.next, marked: marked}, nil
}

// markPublished deletes the acknowledged outbox rows and records their
// events' stream sequences (the positions write responses report), which
// wakes events.Positions, then counts them.
func (r *Relay) markPublished(ctx context.Context, outboxIDs []int64, eventIDs []uuid.UUID, sequences []int64, latency time.Duration) error {
	// A fresh context: rows JetStream stored must not be published again
	// just because shutdown began.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := eventsdb.New(r.cfg.Pool).MarkPublished(ctx, eventsdb.MarkPublishedParams{OutboxIds: outboxIDs, EventIds: eventIDs, StreamSequences: sequences})
	if err != nil {
		return fmt.Errorf("delete %d published outbox rows: %w", len(outboxIDs), err)
	}
	r.published.Add(uint64(len(outboxIDs)))
	if r.cfg.OnBatch != nil {
		r.cfg.OnBatch(len(outboxIDs), latency)
	}
	return nil
}

func outboxMsg(row eventsdb.OutboxBatchRow) (*nats.Msg, error) {
	headers, err := decodeHeaders(row.Headers)
	if err != nil {
		return nil, fmt.Errorf("decode outbox headers of %s: %w", row.EventID, err)
	}
	return &nats.Msg{Subject: row.Subject, Header: headers, Data: row.Data}, nil
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
