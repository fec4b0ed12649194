package events

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authms/authms/events/eventsdb"
)

// Position is where an event is stored: its service's stream and its
// sequence in that stream. A write response reports it; a read on another
// service waits until its projectors have applied it (read your writes).
type Position struct {
	// Stream is the stream's name, e.g. "IDENTITY".
	Stream string
	// Sequence is the event's stream sequence, from 1.
	Sequence uint64
}

// IsZero reports whether p is no position at all.
func (p Position) IsZero() bool { return p == Position{} }

// String returns "IDENTITY:42".
func (p Position) String() string { return p.Stream + ":" + strconv.FormatUint(p.Sequence, 10) }

// publishedChannel is the channel the relay notifies (through a trigger on
// event_positions) after each batch it recorded.
const publishedChannel = "authms_published"

// PositionsConfig configures Positions.
type PositionsConfig struct {
	// Service is the service whose events are awaited.
	Service string
	// Pool connects to the service's database. Positions opens one more
	// connection of its own, outside the pool, to LISTEN on.
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	// Timeout bounds one Await (default 2s).
	Timeout time.Duration
	// PollInterval is how often pending waits look at the events table
	// without a notification: notifications do not pass PgBouncer in
	// transaction mode (default 100ms).
	PollInterval time.Duration
}

func (c PositionsConfig) withDefaults() PositionsConfig {
	c.Timeout = cmp.Or(c.Timeout, 2*time.Second)
	c.PollInterval = cmp.Or(c.PollInterval, 100*time.Millisecond)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Positions tells a service's API the stream positions of the events a
// command just committed, so a write response can carry them. The relay
// records each event's stream sequence when JetStream acknowledges it
// (event_positions) and notifies authms_published; Positions
// listens on one connection per process, started by the first Await and
// reconnected when it breaks, and answers every pending Await with one
// batched query per notification. It also polls while waits are pending,
// since notifications do not pass PgBouncer.
//
// A Positions is safe for concurrent use; Close stops it.
type Positions struct {
	cfg    PositionsConfig
	stream string

	mu      sync.Mutex
	waiting map[uuid.UUID][]*positionWait // by event id
	closed  bool
	cancel  context.CancelFunc // stops the listener and the checker; nil before the first Await

	wake      chan struct{} // check the pending waits now
	stop      chan struct{} // closed by Close
	startOnce sync.Once
	wg        sync.WaitGroup
}

// positionWait is one Await: the events it waits for and, once they are all
// published, the highest sequence.
type positionWait struct {
	ids     []uuid.UUID
	pending map[uuid.UUID]bool
	highest uint64
	err     error
	done    chan struct{} // closed when pending is empty or err is set
}

// NewPositions returns the Positions of cfg.Service. It starts nothing
// until the first Await.
func NewPositions(cfg PositionsConfig) (*Positions, error) {
	cfg = cfg.withDefaults()
	if cfg.Service == "" || cfg.Pool == nil {
		return nil, errors.New("positions: service and pool are required")
	}
	return &Positions{
		cfg:     cfg,
		stream:  StreamName(cfg.Service),
		waiting: make(map[uuid.UUID][]*positionWait),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}, nil
}

// Await waits until the relay has published the events eventIDs, which a
// transaction of this service committed, and returns the highest of their
// positions.
//
// The events are recorded already, so a slow or stopped relay must not fail
// the write that recorded them: when Timeout (or ctx) ends first, Await
// returns the zero Position and no error, and the write's response simply
// carries no position. Await fails only for an id that is not in the events
// table, which means it was called before the transaction committed. With
// no ids it returns the zero Position at once.
func (p *Positions) Await(ctx context.Context, eventIDs ...uuid.UUID) (Position, error) {
	if len(eventIDs) == 0 {
		return Position{}, nil
	}
	w := &positionWait{ids: eventIDs, pending: make(map[uuid.UUID]bool, len(eventIDs)), done: make(chan struct{})}
	for _, id := range eventIDs {
		w.pending[id] = true
	}
	if !p.register(w) {
		return Position{}, nil // closed: the process is shutting down
	}
	defer p.unregister(w)
	p.startOnce.Do(p.start)
	p.poke() // the relay may have published them before w was registered

	timer := time.NewTimer(p.cfg.Timeout)
	defer timer.Stop()
	select {
	case <-w.done:
		if w.err != nil {
			return Position{}, w.err
		}
		return Position{Stream: p.stream, Sequence: w.highest}, nil
	case <-timer.C:
		p.cfg.Logger.DebugContext(ctx, "events not published in time; the response carries no position",
			"service", p.cfg.Service, "events", len(eventIDs), "timeout", p.cfg.Timeout)
	case <-ctx.Done():
	case <-p.stop:
	}
	return Position{}, nil
}

// Close stops listening; pending and later Awaits return the zero Position.
// Close it before closing the pool.
func (p *Positions) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.stop)
	cancel := p.cancel
	p.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	p.wg.Wait()
}

func (p *Positions) register(w *positionWait) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for id := range w.pending {
		p.waiting[id] = append(p.waiting[id], w)
	}
	return true
}

func (p *Positions) unregister(w *positionWait) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range w.ids {
		ws := p.waiting[id]
		for i, x := range ws {
			if x == w {
				ws = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(ws) == 0 {
			delete(p.waiting, id)
		} else {
			p.waiting[id] = ws
		}
	}
}

// poke asks the checker to look at the pending waits now.
func (p *Positions) poke() {
	select {
	case p.wake <- struct{}{}:
	default: // a check is due already
	}
}

func (p *Positions) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Go(func() { p.listen(ctx) })
	p.wg.Go(func() { p.check(ctx) })
}

// check answers pending waits whenever the listener or an Await pokes it,
// and every PollInterval while any wait is pending.
func (p *Positions) check(ctx context.Context) {
	log := p.cfg.Logger.With("service", p.cfg.Service, "component", "positions")
	poll := time.NewTicker(p.cfg.PollInterval)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-poll.C:
		}
		if err := p.resolve(ctx); err != nil && ctx.Err() == nil {
			log.Warn("reading event positions failed; retrying", "err", err)
		}
	}
}

// resolve reads the stream sequences of every pending event in one query
// and completes the waits whose events are all published.
func (p *Positions) resolve(ctx context.Context) error {
	p.mu.Lock()
	ids := make([]uuid.UUID, 0, len(p.waiting))
	for id := range p.waiting {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rows, err := eventsdb.New(p.cfg.Pool).StreamSequences(ctx, ids)
	if err != nil {
		return fmt.Errorf("read stream sequences of %d events: %w", len(ids), err)
	}
	found := make(map[uuid.UUID]*int64, len(rows))
	for _, r := range rows {
		found[r.ID] = r.StreamSequence
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		seq, ok := found[id]
		for _, w := range p.waiting[id] {
			switch {
			case !w.pending[id]:
			case !ok:
				w.fail(fmt.Errorf("await position of event %s: no such event in the events table (await only after the transaction committed)", id))
			case seq != nil:
				w.published(id, uint64(*seq))
			}
		}
	}
	return nil
}

func (w *positionWait) published(id uuid.UUID, seq uint64) {
	if w.err != nil {
		return
	}
	delete(w.pending, id)
	w.highest = max(w.highest, seq)
	if len(w.pending) == 0 {
		close(w.done)
	}
}

func (w *positionWait) fail(err error) {
	if w.err != nil || len(w.pending) == 0 {
		return
	}
	w.err = err
	close(w.done)
}

// listen holds the LISTEN connection, outside the pool so it never takes a
// connection from the service's requests, and pokes the checker on every
// notification. It reconnects with backoff until Close.
func (p *Positions) listen(ctx context.Context) {
	log := p.cfg.Logger.With("service", p.cfg.Service, "component", "positions")
	backoff := newBackoff(100*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		listened, err := p.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if listened {
			backoff.reset()
		}
		d := backoff.next()
		log.Warn("listening for published events failed; polling meanwhile", "err", err, "retry_in", d)
		if !sleep(ctx, d) {
			return
		}
	}
}

// listenOnce listens until the connection fails; listened reports whether
// it got as far as listening.
func (p *Positions) listenOnce(ctx context.Context) (listened bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, p.cfg.Pool.Config().ConnConfig.Copy())
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := conn.Exec(ctx, "LISTEN "+publishedChannel); err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	p.poke() // notifications sent while not listening are lost
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return true, fmt.Errorf("wait for a notification: %w", err)
		}
		p.poke()
	}
}
