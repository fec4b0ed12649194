package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authms/authms/events"
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
	statuses, err := events.Streams(ctx, js, nil)
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

func printStreams(c *cli, statuses []events.StreamStatus) error {
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

// tail writes every message of the streams whose subjects overlap the
// filter as a JSON line.
func tail(ctx context.Context, js jetstream.JetStream, opts tailOptions, out *lineWriter) error {
	out.limit = opts.limit
	cfg := events.TailConfig{Filter: opts.filter, Deliver: opts.deliver, StartSeq: opts.startSeq, Since: opts.since, Follow: opts.follow}
	err := events.Tail(ctx, js, cfg, func(m events.StoredMessage) bool {
		return out.write(formatLine(m))
	})
	if errors.Is(err, events.ErrNoTailStream) {
		return fmt.Errorf("no stream holds subjects matching %q (see authms events streams)", opts.filter)
	}
	return err
}

// lineWriter serialises lines from several streams and enforces the limit.
type lineWriter struct {
	w interface{ Write([]byte) (int, error) }

	mu      sync.Mutex
	written int
	limit   int
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
	return l.limit == 0 || l.written < l.limit
}
