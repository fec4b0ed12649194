package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/eventsdb"
)

// Rebuild makes a projection rebuildable by replaying its source stream.
//
// A rebuild replays the stream from its first message into shadow copies of
// Tables (in a schema of their own, so the projector's SQL, which names its
// tables without a schema, writes to the copies unchanged), then swaps the
// copies in within one transaction. Only projections whose effects are all
// in Tables can be rebuilt: a projector that records events of its own (a
// policy such as "create a wallet for every user") is not a cache and has no
// Rebuild.
type Rebuild struct {
	// Tables are the tables the projection owns. Nothing outside the
	// projection may reference them with a foreign key.
	Tables []string
	// NewFolder, when set, is the fast path: events are folded in memory
	// and the result written with COPY. Without it every event runs through
	// the projector's handlers, in batched transactions.
	NewFolder func() Folder
}

// Folder reduces a replayed stream to the rows of a projection.
type Folder interface {
	// Fold adds one event. Events arrive in stream order.
	Fold(ev events.Event) error
	// Flush writes the folded rows into the (empty) projection tables in tx,
	// typically with CopyFrom; table names resolve to the shadow copies.
	Flush(ctx context.Context, tx pgx.Tx) error
}

// Progress reports a rebuild's progress.
type Progress struct {
	// Phase is "pausing", "replaying", "writing" and "indexing" (a Folder's
	// bulk write, then the indexes it waited for), "swapping" or "done".
	Phase    string
	Replayed uint64 // events replayed so far
	Total    uint64 // events to replay
	Elapsed  time.Duration
}

// Rate is the replay rate in events per second.
func (p Progress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Replayed) / p.Elapsed.Seconds()
}

// RebuildConfig carries what a rebuild needs.
type RebuildConfig struct {
	Pool   *pgxpool.Pool
	JS     jetstream.JetStream
	Logger *slog.Logger
	// Progress, when set, is called about every 100ms and at each phase.
	Progress func(Progress)
	// BatchSize is the number of events per transaction on the handler path
	// (default 1000).
	BatchSize int
}

// RebuildResult summarises a finished rebuild.
type RebuildResult struct {
	Replayed     uint64        // events replayed, the skipped ones included
	Skipped      uint64        // events left out: no retry could apply them (see the error log)
	LastSequence uint64        // the last source sequence the rebuild covers
	Took         time.Duration // from pause to resume
}

// ErrNotRebuildable is returned for a projector without a Rebuild.
var ErrNotRebuildable = errors.New("projection cannot be rebuilt by replay")

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// RebuildProjection rebuilds p from its source stream while the service
// keeps serving reads from the current tables:
//
//  1. it pauses p's durable consumer on the server (every instance stops
//     receiving) and waits for in-flight messages to settle;
//  2. it replays the source stream from the first message up to its last
//     sequence L into shadow tables, with no side effects: the shadow schema
//     also shadows events and outbox, so nothing a handler records escapes;
//  3. in one transaction it replaces the tables and records that the
//     projection is rebuilt through L (projector_rebuilds), so the resumed
//     consumer skips what the rebuild covered and continues after L;
//  4. it resumes the consumer.
func RebuildProjection(ctx context.Context, p Projector, cfg RebuildConfig) (RebuildResult, error) {
	if p.Rebuild == nil || len(p.Rebuild.Tables) == 0 {
		return RebuildResult{}, fmt.Errorf("%s: %w", p.Durable(), ErrNotRebuildable)
	}
	for _, t := range p.Rebuild.Tables {
		if !identifier.MatchString(t) {
			return RebuildResult{}, fmt.Errorf("%s: bad table name %q", p.Durable(), t)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 1000
	}
	r := &rebuild{p: p, cfg: cfg, start: time.Now(), shadow: "rebuild_" + p.Durable(),
		log: cfg.Logger.With("projector", p.Durable())}
	return r.run(ctx)
}

type rebuild struct {
	p      Projector
	cfg    RebuildConfig
	log    *slog.Logger
	start  time.Time
	shadow string // schema of the shadow tables

	replayed, total, skipped uint64
	lastReport               time.Time
}

// skip records an event the replay leaves out because no retry could apply
// it (a Permanent error: an undecodable envelope or payload, a failed
// invariant), as the live projector dead-letters such an event and moves
// on, so the rebuilt tables are what the live projector would have built.
func (r *rebuild) skip(stream string, seq uint64, ev events.Event, err error) {
	r.skipped++
	r.log.Error("rebuild skips an event it cannot apply", "stream", stream, "sequence", seq,
		"event_id", ev.ID, "type", ev.Type(), "err", err)
}

func (r *rebuild) report(phase string, force bool) {
	if r.cfg.Progress == nil || (!force && time.Since(r.lastReport) < 100*time.Millisecond) {
		return
	}
	r.lastReport = time.Now()
	r.cfg.Progress(Progress{Phase: phase, Replayed: r.replayed, Total: r.total, Elapsed: time.Since(r.start)})
}

func (r *rebuild) run(ctx context.Context) (res RebuildResult, err error) {
	stream := events.StreamName(r.p.Source)
	durable := r.p.Durable()
	r.report("pausing", true)
	if _, err := r.cfg.JS.PauseConsumer(ctx, stream, durable, time.Now().Add(24*time.Hour)); err != nil {
		return res, fmt.Errorf("pause consumer %s: %w", durable, err)
	}
	defer func() {
		// Resume even when the caller gave up: a paused projector is stuck.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, rerr := r.cfg.JS.ResumeConsumer(rctx, stream, durable); rerr != nil {
			err = errors.Join(err, fmt.Errorf("resume consumer %s: %w", durable, rerr))
		}
		dctx, cancel2 := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel2()
		if _, derr := r.cfg.Pool.Exec(dctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{r.shadow}.Sanitize()+" CASCADE"); derr != nil {
			err = errors.Join(err, fmt.Errorf("drop shadow schema: %w", derr))
		}
	}()
	ackFloor, err := r.settle(ctx, stream, durable)
	if err != nil {
		return res, err
	}
	info, err := r.cfg.JS.Stream(ctx, stream)
	if err != nil {
		return res, fmt.Errorf("stream %s: %w", stream, err)
	}
	last := info.CachedInfo().State.LastSeq
	if err := r.createShadow(ctx); err != nil {
		return res, err
	}
	if err := r.replay(ctx, stream, last); err != nil {
		return res, err
	}
	r.report("swapping", true)
	if err := r.swap(ctx, ackFloor, last); err != nil {
		return res, err
	}
	r.report("done", true)
	res = RebuildResult{Replayed: r.replayed, Skipped: r.skipped, LastSequence: last, Took: time.Since(r.start)}
	r.log.Info("projection rebuilt", "events", r.replayed, "skipped", r.skipped, "last_sequence", last, "took", res.Took.Round(time.Millisecond))
	return res, nil
}

// settle waits until the paused consumer has no message in flight, or its
// ack wait has passed, and returns its ack floor: every event at or below it
// was applied by the live projector.
func (r *rebuild) settle(ctx context.Context, stream, durable string) (uint64, error) {
	cons, err := r.cfg.JS.Consumer(ctx, stream, durable)
	if err != nil {
		return 0, fmt.Errorf("consumer %s: %w", durable, err)
	}
	deadline := time.Now().Add(cons.CachedInfo().Config.AckWait + time.Second)
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("consumer %s: %w", durable, err)
		}
		if info.NumAckPending == 0 || time.Now().After(deadline) {
			return info.AckFloor.Stream, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// createShadow makes the shadow schema: empty copies of the projection's
// tables, of processed_events, and of events and outbox so that a handler
// recording events during the replay records them nowhere. The projection's
// tables get their indexes and constraints later (indexShadow): before the
// replay when handlers write (their upserts need them), after the bulk write
// when a Folder does (COPY into an unindexed table is several times faster).
func (r *rebuild) createShadow(ctx context.Context) error {
	schema := pgx.Identifier{r.shadow}.Sanitize()
	stmts := []string{"DROP SCHEMA IF EXISTS " + schema + " CASCADE", "CREATE SCHEMA " + schema}
	for _, t := range r.p.Rebuild.Tables {
		stmts = append(stmts, fmt.Sprintf("CREATE TABLE %s (LIKE %s INCLUDING ALL EXCLUDING INDEXES)",
			pgx.Identifier{r.shadow, t}.Sanitize(), pgx.Identifier{"public", t}.Sanitize()))
	}
	for _, t := range []string{"processed_events", "events", "outbox"} {
		stmts = append(stmts, fmt.Sprintf("CREATE TABLE %s (LIKE %s INCLUDING ALL)",
			pgx.Identifier{r.shadow, t}.Sanitize(), pgx.Identifier{"public", t}.Sanitize()))
	}
	for _, s := range stmts {
		if _, err := r.cfg.Pool.Exec(ctx, s); err != nil {
			return fmt.Errorf("create shadow tables: %w", err)
		}
	}
	return nil
}

// indexShadow gives the shadow tables the live tables' indexes and
// constraints under the same names, so the tables swapped in look exactly
// like the ones the migrations made.
//
// Sorting a million keys is most of a bulk write, so the indexes are built
// concurrently, each in a transaction of its own (CREATE INDEX locks its
// table in SHARE mode, which does not conflict with itself). Primary key and
// unique constraints then adopt their indexes (ADD CONSTRAINT ... USING
// INDEX, which only records them); constraints no finished index can back
// (exclusion and deferrable ones) are added after, one by one.
func (r *rebuild) indexShadow(ctx context.Context) error {
	var indexes, constraints []string
	for _, t := range r.p.Rebuild.Tables {
		idx, cons, err := r.shadowDDL(ctx, t)
		if err != nil {
			return err
		}
		indexes, constraints = append(indexes, idx...), append(constraints, cons...)
	}
	if err := r.execConcurrently(ctx, indexes); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, r.cfg.Pool, func(tx pgx.Tx) error {
		for _, stmt := range constraints {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("constrain rebuilt table: %w", err)
			}
		}
		return nil
	})
}

// shadowDDL returns the statements that give table t's shadow copy the
// live table's indexes, and those that add its constraints after them.
func (r *rebuild) shadowDDL(ctx context.Context, t string) (indexes, constraints []string, err error) {
	live, shadow := pgx.Identifier{"public", t}.Sanitize(), pgx.Identifier{r.shadow, t}.Sanitize()
	rows, err := r.cfg.Pool.Query(ctx, `
		SELECT ' ON public.' || quote_ident($2) || ' ', pg_get_indexdef(x.indexrelid),
			c.conname, c.contype, pg_get_constraintdef(c.oid), c.condeferrable
		FROM pg_index x
		JOIN pg_class i ON i.oid = x.indexrelid
		LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid AND c.contype IN ('p', 'u', 'x')
		WHERE x.indrelid = $1::regclass
		ORDER BY i.relname`, live, t)
	if err != nil {
		return nil, nil, fmt.Errorf("read indexes of %s: %w", t, err)
	}
	defer rows.Close()
	addConstraint := "ALTER TABLE " + shadow + " ADD CONSTRAINT "
	for rows.Next() {
		var (
			on, indexDef    string // on is " ON public.<table> " as indexDef spells it
			name, kind, def *string
			deferrable      *bool
		)
		if err := rows.Scan(&on, &indexDef, &name, &kind, &def, &deferrable); err != nil {
			return nil, nil, fmt.Errorf("read indexes of %s: %w", t, err)
		}
		if name != nil {
			constraint := pgx.Identifier{*name}.Sanitize()
			switch {
			case *kind == "x" || *deferrable:
				constraints = append(constraints, addConstraint+constraint+" "+*def)
				continue // the constraint makes its index
			case *kind == "p":
				constraints = append(constraints, addConstraint+constraint+" PRIMARY KEY USING INDEX "+constraint)
			default:
				constraints = append(constraints, addConstraint+constraint+" UNIQUE USING INDEX "+constraint)
			}
		}
		if !strings.Contains(indexDef, on) {
			return nil, nil, fmt.Errorf("index of %s: unexpected definition %q", t, indexDef)
		}
		indexes = append(indexes, strings.Replace(indexDef, on, " ON "+shadow+" ", 1))
	}
	return indexes, constraints, rows.Err()
}

// execConcurrently runs each statement in a transaction of its own, at
// most half the pool's connections at once (at least one): the pool is the
// live service's, whose API, relay and other projectors must still get a
// connection while the indexes build. The first failure cancels the rest.
func (r *rebuild) execConcurrently(ctx context.Context, stmts []string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	slots := make(chan struct{}, max(1, r.cfg.Pool.Config().MaxConns/2))
	var wg sync.WaitGroup
	for _, stmt := range stmts {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if _, err := r.cfg.Pool.Exec(ctx, stmt); err != nil {
				cancel(fmt.Errorf("index rebuilt table: %w", err))
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// inShadow runs fn in a transaction whose unqualified table names resolve to
// the shadow schema first.
func (r *rebuild) inShadow(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, r.cfg.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", pgx.Identifier{r.shadow}.Sanitize()+", public"); err != nil {
			return fmt.Errorf("use shadow schema: %w", err)
		}
		return fn(tx)
	})
}

// replay reads the source stream up to last and applies it to the shadow
// tables.
func (r *rebuild) replay(ctx context.Context, stream string, last uint64) error {
	subjects := slices.Sorted(maps.Keys(r.p.Handlers))
	cons, err := r.cfg.JS.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: subjects,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("replay %s: %w", stream, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("replay %s: %w", stream, err)
	}
	r.total = info.NumPending
	r.report("replaying", true)
	if r.total == 0 || last == 0 {
		return r.indexShadow(ctx)
	}

	var (
		folder  Folder
		batch   []events.Event
		handler = r.shadowHandler()
	)
	if r.p.Rebuild.NewFolder != nil {
		folder = r.p.Rebuild.NewFolder()
	} else if err := r.indexShadow(ctx); err != nil {
		return err
	}
	flushBatch := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := r.inShadow(ctx, func(tx pgx.Tx) error {
			for _, ev := range batch {
				// A savepoint per event, so that one the replay skips
				// leaves no partial effect and the batch goes on.
				err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error { return handler(ctx, sp, ev) })
				if events.IsPermanent(err) {
					r.skip(ev.Stream, ev.Sequence, ev, err)
					continue
				}
				if err != nil {
					return fmt.Errorf("seq %d (%s): %w", ev.Sequence, ev.Type(), err)
				}
			}
			return nil
		})
		batch = batch[:0]
		return err
	}

	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return fmt.Errorf("replay %s: %w", stream, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("replay %s: %w", stream, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("replay %s: %w", stream, err)
		}
		seq := meta.Sequence.Stream
		if seq > last {
			break // arrived after the rebuild began: the live consumer applies it
		}
		ev, err := events.FromMsg(msg.Subject(), msg.Headers(), msg.Data())
		ev.Stream, ev.Sequence = stream, seq
		switch {
		case err != nil: // FromMsg's errors are all Permanent
			r.skip(stream, seq, ev, err)
			err = nil
		case folder != nil:
			if err = folder.Fold(ev); events.IsPermanent(err) {
				r.skip(stream, seq, ev, err)
				err = nil
			}
		default:
			batch = append(batch, ev)
			if len(batch) < r.cfg.BatchSize {
				break
			}
			if err := flushBatch(); err != nil {
				return fmt.Errorf("replay %s: %w", stream, err)
			}
		}
		if err != nil {
			return fmt.Errorf("replay %s seq %d (%s): %w", stream, seq, ev.Type(), err)
		}
		r.replayed++
		r.report("replaying", false)
		if seq == last || meta.NumPending == 0 {
			break
		}
	}
	if err := flushBatch(); err != nil {
		return fmt.Errorf("replay %s: %w", stream, err)
	}
	if folder != nil {
		r.report("writing", true)
		if err := r.inShadow(ctx, func(tx pgx.Tx) error { return folder.Flush(ctx, tx) }); err != nil {
			return fmt.Errorf("write rebuilt rows: %w", err)
		}
		r.report("indexing", true)
		if err := r.indexShadow(ctx); err != nil {
			return err
		}
	}
	return nil
}

// shadowHandler applies one event like the live projector does, minus the
// bookkeeping the swap does in bulk.
func (r *rebuild) shadowHandler() Apply {
	return func(ctx context.Context, tx pgx.Tx, ev events.Event) error {
		apply, ok := r.p.Handlers[ev.Subject()]
		if !ok {
			return nil
		}
		return apply(events.CausedBy(ctx, ev), tx, ev)
	}
}

// swap replaces the live tables with the shadow copies and brings the
// projector's bookkeeping in line, in one transaction: the projection is
// rebuilt through last, so the live consumer skips every event up to it
// (the ones after its ack floor are delivered again once it resumes).
func (r *rebuild) swap(ctx context.Context, ackFloor, last uint64) error {
	durable := r.p.Durable()
	return pgx.BeginFunc(ctx, r.cfg.Pool, func(tx pgx.Tx) error {
		for _, t := range r.p.Rebuild.Tables {
			live, shadow := pgx.Identifier{"public", t}.Sanitize(), pgx.Identifier{r.shadow, t}.Sanitize()
			if _, err := tx.Exec(ctx, "DROP TABLE "+live); err != nil {
				return fmt.Errorf("drop %s: %w", t, err)
			}
			if _, err := tx.Exec(ctx, "ALTER TABLE "+shadow+" SET SCHEMA public"); err != nil {
				return fmt.Errorf("move rebuilt %s in: %w", t, err)
			}
		}
		// Events the live projector applied after its ack floor are covered
		// by the rebuild now, like every other event up to last.
		if _, err := tx.Exec(ctx, "DELETE FROM public.processed_events WHERE consumer = $1 AND stream_sequence > $2",
			durable, int64(ackFloor)); err != nil {
			return fmt.Errorf("reset processed events: %w", err)
		}
		if err := eventsdb.New(tx).RecordRebuild(ctx, eventsdb.RecordRebuildParams{Consumer: durable, ThroughSequence: int64(last)}); err != nil {
			return fmt.Errorf("record the rebuild: %w", err)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM public.projector_failures WHERE consumer = $1", durable); err != nil {
			return fmt.Errorf("clear failure record: %w", err)
		}
		return nil
	})
}
