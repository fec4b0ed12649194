package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authms/authms/events/natsembed"
)

// defaultNATSURL is `authms dev`'s embedded server.
var defaultNATSURL = fmt.Sprintf("nats://127.0.0.1:%d", natsembed.DefaultPort)

// events runs `authms events <subcommand>`.
func (c *cli) events(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("authms events needs a subcommand (streams, tail, republish): %w", errUsage)
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "streams":
		return c.eventsStreams(ctx, rest)
	case "tail":
		return c.eventsTail(ctx, rest)
	case "republish":
		return c.eventsRepublish(ctx, rest)
	default:
		return fmt.Errorf("unknown events subcommand %q: %w", sub, errUsage)
	}
}

// jetStream connects to NATS_URL (default: authms dev's embedded server).
func (c *cli) jetStream() (jetstream.JetStream, func(), error) {
	url := c.env("NATS_URL", defaultNATSURL)
	nc, err := nats.Connect(url, nats.Name("authms cli"))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS at %s (is authms dev running? set NATS_URL): %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nc.Close, nil
}

// streamStatus is one stream in `authms events streams --json`.
type streamStatus struct {
	Name      string           `json:"name"`
	Subjects  []string         `json:"subjects"`
	Messages  uint64           `json:"messages"`
	Bytes     uint64           `json:"bytes"`
	FirstSeq  uint64           `json:"first_seq"`
	LastSeq   uint64           `json:"last_seq"`
	FirstTime *time.Time       `json:"first_time,omitempty"`
	LastTime  *time.Time       `json:"last_time,omitempty"`
	Consumers []consumerStatus `json:"consumers"`
}

// consumerStatus is one durable consumer of a stream.
type consumerStatus struct {
	Name           string   `json:"name"`
	FilterSubjects []string `json:"filter_subjects,omitempty"`
	// Pending counts stream messages not yet delivered to the consumer.
	Pending uint64 `json:"pending"`
	// AckPending counts messages delivered but not acknowledged yet.
	AckPending int `json:"ack_pending"`
	// Redelivered counts messages delivered more than once and still
	// unacknowledged.
	Redelivered int `json:"redelivered"`
	// LastDelivered is the stream sequence last delivered.
	LastDelivered uint64 `json:"last_delivered_seq"`
	// Paused reports a consumer paused by its service (database outage).
	Paused bool `json:"paused,omitempty"`
}

// eventsStreams lists every stream with its counts and durable consumers.
func (c *cli) eventsStreams(ctx context.Context, args []string) error {
	fs := c.newFlags("events streams", "authms events streams [--json]")
	asJSON := fs.Bool("json", false, "print JSON instead of tables")
	if rest, err := parse(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return fmt.Errorf("events streams takes no arguments, got %q: %w", rest, errUsage)
	}
	js, closeConn, err := c.jetStream()
	if err != nil {
		return err
	}
	defer closeConn()
	statuses, err := listStreams(ctx, js)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"streams": statuses})
	}
	return printStreams(c, statuses)
}

func listStreams(ctx context.Context, js jetstream.JetStream) ([]streamStatus, error) {
	statuses := []streamStatus{}
	lister := js.ListStreams(ctx)
	for info := range lister.Info() {
		st := streamStatus{
			Name:      info.Config.Name,
			Subjects:  info.Config.Subjects,
			Messages:  info.State.Msgs,
			Bytes:     info.State.Bytes,
			FirstSeq:  info.State.FirstSeq,
			LastSeq:   info.State.LastSeq,
			Consumers: []consumerStatus{},
		}
		if info.State.Msgs > 0 {
			first, last := info.State.FirstTime.UTC(), info.State.LastTime.UTC()
			st.FirstTime, st.LastTime = &first, &last
		}
		statuses = append(statuses, st)
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	slices.SortFunc(statuses, func(a, b streamStatus) int { return cmp.Compare(a.Name, b.Name) })
	for i := range statuses {
		stream, err := js.Stream(ctx, statuses[i].Name)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", statuses[i].Name, err)
		}
		consumers := stream.ListConsumers(ctx)
		for ci := range consumers.Info() {
			if ci.Config.Durable == "" {
				continue // ephemeral: someone's `events tail`
			}
			filters := ci.Config.FilterSubjects
			if ci.Config.FilterSubject != "" {
				filters = append(filters, ci.Config.FilterSubject)
			}
			statuses[i].Consumers = append(statuses[i].Consumers, consumerStatus{
				Name:           ci.Name,
				FilterSubjects: filters,
				Pending:        ci.NumPending,
				AckPending:     ci.NumAckPending,
				Redelivered:    ci.NumRedelivered,
				LastDelivered:  ci.Delivered.Stream,
				Paused:         ci.Paused,
			})
		}
		if err := consumers.Err(); err != nil {
			return nil, fmt.Errorf("list consumers of %s: %w", statuses[i].Name, err)
		}
		slices.SortFunc(statuses[i].Consumers, func(a, b consumerStatus) int { return cmp.Compare(a.Name, b.Name) })
	}
	return statuses, nil
}

func printStreams(c *cli, statuses []streamStatus) error {
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "STREAM\tSUBJECTS\tMESSAGES\tBYTES\tFIRST SEQ\tLAST SEQ\tLAST MESSAGE")
	for _, s := range statuses {
		last := "-"
		if s.LastTime != nil {
			last = s.LastTime.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%d\t%d\t%s\n", s.Name, strings.Join(s.Subjects, ","), s.Messages,
			humanBytes(s.Bytes), s.FirstSeq, s.LastSeq, last)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout)
	fmt.Fprintln(w, "STREAM\tCONSUMER\tPENDING\tACK PENDING\tREDELIVERED\tLAST DELIVERED\tFILTER")
	n := 0
	for _, s := range statuses {
		for _, cs := range s.Consumers {
			n++
			name := cs.Name
			if cs.Paused {
				name += " (paused)"
			}
			filter := strings.Join(cs.FilterSubjects, ",")
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", s.Name, name, cs.Pending, cs.AckPending,
				cs.Redelivered, cs.LastDelivered, cmp.Or(filter, "-"))
		}
	}
	if n == 0 {
		fmt.Fprintln(w, "(no durable consumers)")
	}
	return w.Flush()
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// tailOptions choose where `events tail` starts and when it stops.
type tailOptions struct {
	filter   string
	deliver  jetstream.DeliverPolicy
	startSeq uint64
	since    time.Time
	// follow keeps waiting for new messages; without it tail stops once it
	// has printed what the streams held when it started.
	follow bool
	// limit stops after this many messages in all; 0 means no limit.
	limit int
}

// eventsTail prints events as JSON lines.
func (c *cli) eventsTail(ctx context.Context, args []string) error {
	fs := c.newFlags("events tail", "authms events tail [flags] [subject filter, default \">\"]")
	all := fs.Bool("all", false, "start from each stream's first message")
	since := fs.String("since", "", "start from a `time`: a duration ago (10m, 2h) or RFC 3339")
	seq := fs.Uint64("seq", 0, "start from stream `sequence` N (in every matching stream)")
	noFollow := fs.Bool("no-follow", false, "stop after the messages stored now instead of waiting for new ones")
	limit := fs.Int("n", 0, "stop after `N` messages")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 1 {
		return fmt.Errorf("events tail takes one subject filter, got %q: %w", rest, errUsage)
	}
	opts := tailOptions{filter: ">", deliver: jetstream.DeliverNewPolicy, follow: !*noFollow, limit: *limit}
	if len(rest) == 1 {
		opts.filter = rest[0]
	}
	starts := 0
	if *all {
		starts++
		opts.deliver = jetstream.DeliverAllPolicy
	}
	if *since != "" {
		starts++
		t, err := parseSince(*since, time.Now())
		if err != nil {
			return err
		}
		opts.deliver, opts.since = jetstream.DeliverByStartTimePolicy, t
	}
	if *seq > 0 {
		starts++
		opts.deliver, opts.startSeq = jetstream.DeliverByStartSequencePolicy, *seq
	}
	if starts > 1 {
		return fmt.Errorf("--all, --since and --seq exclude each other: %w", errUsage)
	}
	js, closeConn, err := c.jetStream()
	if err != nil {
		return err
	}
	defer closeConn()
	return tail(ctx, js, opts, &lineWriter{w: c.stdout})
}

// parseSince reads "10m" (ago) or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration (10m) or an RFC 3339 time", s)
}

// tail runs one ordered consumer per stream whose subjects overlap the
// filter and writes every message as a JSON line.
func tail(ctx context.Context, js jetstream.JetStream, opts tailOptions, out *lineWriter) error {
	var streams []string
	names := js.StreamNames(ctx, jetstream.WithStreamListSubject(opts.filter))
	for name := range names.Name() {
		streams = append(streams, name)
	}
	if err := names.Err(); err != nil {
		return fmt.Errorf("find streams for %q: %w", opts.filter, err)
	}
	if len(streams) == 0 {
		return fmt.Errorf("no stream holds subjects matching %q (see authms events streams)", opts.filter)
	}
	slices.Sort(streams)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out.limit, out.done = opts.limit, cancel
	errs := make([]error, len(streams))
	var wg sync.WaitGroup
	for i, name := range streams {
		wg.Go(func() { errs[i] = tailStream(ctx, js, name, opts, out) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func tailStream(ctx context.Context, js jetstream.JetStream, name string, opts tailOptions, out *lineWriter) error {
	stream, err := js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: opts.deliver, OptStartSeq: opts.startSeq}
	if !opts.since.IsZero() {
		cfg.OptStartTime = &opts.since
	}
	// A filter that covers the whole stream is left out: the server only
	// accepts filters within the stream's subjects.
	if !coversAll(opts.filter, stream.CachedInfo().Config.Subjects) {
		cfg.FilterSubjects = []string{opts.filter}
	}
	cons, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("tail %s: %w", name, err)
	}
	if !opts.follow {
		info, err := cons.Info(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // another stream's tail reached -n
			}
			return fmt.Errorf("tail %s: %w", name, err)
		}
		if info.NumPending == 0 {
			return nil
		}
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("tail %s: %w", name, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("tail %s: %w", name, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("tail %s: %w", name, err)
		}
		line := formatLine(name, meta.Sequence.Stream, meta.Timestamp, msg.Subject(), msg.Headers(), msg.Data())
		if !out.write(line) {
			return nil // the limit was reached
		}
		if !opts.follow && meta.NumPending == 0 {
			return nil
		}
	}
}

// coversAll reports whether filter matches every subject of a stream.
func coversAll(filter string, subjects []string) bool {
	for _, s := range subjects {
		if !subsetOf(s, filter) {
			return false
		}
	}
	return len(subjects) > 0
}

// subsetOf reports whether every subject matching sub also matches filter.
func subsetOf(sub, filter string) bool {
	st, ft := strings.Split(sub, "."), strings.Split(filter, ".")
	for i, f := range ft {
		if f == ">" {
			return i < len(st)
		}
		if i >= len(st) {
			return false
		}
		switch s := st[i]; {
		case s == ">":
			return false
		case f == "*" || f == s:
		default:
			return false
		}
	}
	return len(st) == len(ft)
}

// lineWriter serialises lines from several streams and enforces the limit.
type lineWriter struct {
	w interface{ Write([]byte) (int, error) }

	mu      sync.Mutex
	written int
	limit   int
	done    func()
}

// write writes one line and reports whether more may follow.
func (l *lineWriter) write(line []byte) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limit > 0 && l.written >= l.limit {
		return false
	}
	_, _ = l.w.Write(append(line, '\n'))
	l.written++
	if l.limit > 0 && l.written >= l.limit {
		l.done()
		return false
	}
	return true
}
