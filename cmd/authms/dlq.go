package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/authms/authms/events"
	adminv1 "github.com/authms/authms/schemas/gen/authms/admin/v1"
	"github.com/authms/authms/schemas/gen/authms/admin/v1/adminv1connect"
)

// defaultAPIURL is where `authms dev` serves the APIs.
const defaultAPIURL = "http://localhost:8080"

// errorColumnWidth bounds the error column of `authms dlq ls`.
const errorColumnWidth = 80

// dlq runs `authms dlq <subcommand>`. ls, show and purge work on NATS
// directly, so they work while the services are down; redrive calls the
// admin API, because only the process that runs a consumer has its handler.
func (c *cli) dlq(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("authms dlq needs a subcommand (ls, show, redrive, purge): %w", errUsage)
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "ls":
		return c.dlqList(ctx, rest)
	case "show":
		return c.dlqShow(ctx, rest)
	case "redrive":
		return c.dlqRedrive(ctx, rest)
	case "purge":
		return c.dlqPurge(ctx, rest)
	default:
		return fmt.Errorf("unknown dlq subcommand %q: %w", sub, errUsage)
	}
}

// dlqEntry is one dead letter in `authms dlq ls --json` and
// `authms dlq show --json`.
type dlqEntry struct {
	Service          string     `json:"service"`
	Sequence         uint64     `json:"sequence"`
	Subject          string     `json:"subject"`
	Stream           string     `json:"stream"`
	StreamSequence   uint64     `json:"stream_sequence"`
	Consumer         string     `json:"consumer"`
	Attempts         int        `json:"attempts"`
	Permanent        bool       `json:"permanent"`
	Error            string     `json:"error"`
	PublishedAt      *time.Time `json:"published_at,omitempty"`
	FirstFailedAt    *time.Time `json:"first_failed_at,omitempty"`
	LastFailedAt     *time.Time `json:"last_failed_at,omitempty"`
	EventID          string     `json:"event_id,omitempty"`
	EventType        string     `json:"event_type,omitempty"`
	TenantID         string     `json:"tenant_id,omitempty"`
	AggregateID      string     `json:"aggregate_id,omitempty"`
	AggregateVersion int64      `json:"aggregate_version,omitempty"`
	EnvelopeError    string     `json:"envelope_error,omitempty"`
}

func toEntry(dl events.DeadLetter) dlqEntry {
	e := dlqEntry{
		Service:        dl.Service,
		Sequence:       dl.Sequence,
		Subject:        dl.Subject,
		Stream:         dl.Stream,
		StreamSequence: dl.StreamSequence,
		Consumer:       dl.Consumer,
		Attempts:       dl.Attempts,
		Permanent:      dl.Permanent,
		Error:          dl.Error,
		PublishedAt:    timePtr(dl.PublishedAt),
		FirstFailedAt:  timePtr(dl.FirstFailedAt),
		LastFailedAt:   timePtr(dl.LastFailedAt),
	}
	if dl.EventErr != nil {
		e.EnvelopeError = dl.EventErr.Error()
		return e
	}
	e.EventID = dl.Event.ID.String()
	e.EventType = dl.Event.Type()
	e.TenantID = dl.Event.TenantID
	e.AggregateID = dl.Event.AggregateID
	e.AggregateVersion = dl.Event.Version
	return e
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// dlqList prints the dead letters of one service, or of every DLQ_* stream.
func (c *cli) dlqList(ctx context.Context, args []string) error {
	fs := c.newFlags("dlq ls", "authms dlq ls [--consumer name] [--json] [service]")
	consumer := fs.String("consumer", "", "only the dead letters of this durable `consumer`")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 1 {
		return fmt.Errorf("dlq ls takes at most one service, got %q: %w", rest, errUsage)
	}
	js, closeConn, err := c.jetStream()
	if err != nil {
		return err
	}
	defer closeConn()
	services := rest
	if len(services) == 0 {
		if services, err = dlqServices(ctx, js); err != nil {
			return err
		}
	}
	entries := []dlqEntry{}
	for _, svc := range services {
		list, err := events.ListDeadLetters(ctx, js, svc, events.DeadLetterFilter{Consumer: *consumer})
		if err != nil {
			return dlqError(svc, err)
		}
		for _, dl := range list {
			entries = append(entries, toEntry(dl))
		}
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"dead_letters": entries})
	}
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SERVICE\tSEQ\tSUBJECT\tCONSUMER\tATTEMPTS\tFIRST FAILURE\tLAST FAILURE\tERROR")
	for _, e := range entries {
		attempts := strconv.Itoa(e.Attempts)
		if e.Permanent {
			attempts += " (permanent)"
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Service, e.Sequence, e.Subject, cmp.Or(e.Consumer, "-"),
			attempts, shortTime(e.FirstFailedAt), shortTime(e.LastFailedAt), truncate(e.Error, errorColumnWidth))
	}
	if len(entries) == 0 {
		fmt.Fprintln(w, "(no dead letters)")
	}
	return w.Flush()
}

// dlqServices returns the services that have a DLQ_* stream, sorted.
func dlqServices(ctx context.Context, js jetstream.JetStream) ([]string, error) {
	var services []string
	names := js.StreamNames(ctx, jetstream.WithStreamListSubject("dlq.>"))
	for name := range names.Name() {
		if svc, ok := strings.CutPrefix(name, "DLQ_"); ok {
			services = append(services, strings.ToLower(svc))
		}
	}
	if err := names.Err(); err != nil {
		return nil, fmt.Errorf("list dead-letter streams: %w", err)
	}
	slices.Sort(services)
	return services, nil
}

// dlqError explains a missing DLQ stream.
func dlqError(service string, err error) error {
	if errors.Is(err, events.ErrNoDeadLetterStream) {
		return fmt.Errorf("no %s stream on this NATS server: is %q a service that ran here, and is NATS_URL right?",
			events.DLQStreamName(service), service)
	}
	if errors.Is(err, events.ErrDeadLetterNotFound) {
		return fmt.Errorf("%w (see authms dlq ls %s; a failed re-drive moves a dead letter to a new sequence)", err, service)
	}
	return err
}

func shortTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// truncate returns s on one line in at most n runes. A long s loses its
// middle: wrapped errors start with where they happened and end with the
// root cause, and both matter.
func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		head := (n - 1) * 2 / 5
		return string(r[:head]) + "…" + string(r[len(r)-(n-1-head):])
	}
	return cmp.Or(s, "-")
}

// dlqShowJSON is `authms dlq show --json`.
type dlqShowJSON struct {
	dlqEntry
	Headers      map[string][]string `json:"headers"`
	Payload      json.RawMessage     `json:"payload,omitempty"`
	PayloadRaw   []byte              `json:"payload_base64,omitempty"`
	PayloadError string              `json:"payload_error,omitempty"`
}

// dlqShow prints one dead letter: what failed and why, every header, and
// the payload decoded to JSON.
func (c *cli) dlqShow(ctx context.Context, args []string) error {
	fs := c.newFlags("dlq show", "authms dlq show [--json] <service> <seq>")
	asJSON := fs.Bool("json", false, "print JSON")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 2 {
		return fmt.Errorf("dlq show takes a service and a sequence, got %q: %w", rest, errUsage)
	}
	service := rest[0]
	seq, err := strconv.ParseUint(rest[1], 10, 64)
	if err != nil || seq == 0 {
		return fmt.Errorf("dlq show: sequence %q is not a positive number: %w", rest[1], errUsage)
	}
	js, closeConn, err := c.jetStream()
	if err != nil {
		return err
	}
	defer closeConn()
	dl, err := events.GetDeadLetter(ctx, js, service, seq)
	if err != nil {
		return dlqError(service, err)
	}
	payload, payloadErr := payloadJSON(dl)
	if *asJSON {
		out := dlqShowJSON{dlqEntry: toEntry(dl), Headers: dl.Headers, Payload: payload}
		if payloadErr != nil {
			out.PayloadRaw, out.PayloadError = dl.Data, payloadErr.Error()
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	e := toEntry(dl)
	w := tabwriter.NewWriter(c.stdout, 0, 4, 1, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(w, "%s:\t%s\n", k, v) }
	row("dead letter", fmt.Sprintf("%s #%d (%s)", events.DLQStreamName(service), e.Sequence, service))
	row("subject", e.Subject)
	row("source", fmt.Sprintf("%s #%d, published %s", cmp.Or(e.Stream, "-"), e.StreamSequence, shortTime(e.PublishedAt)))
	row("consumer", cmp.Or(e.Consumer, "-"))
	attempts := strconv.Itoa(e.Attempts)
	if e.Permanent {
		attempts += " (last failure permanent)"
	}
	row("attempts", attempts)
	row("first failure", shortTime(e.FirstFailedAt))
	row("last failure", shortTime(e.LastFailedAt))
	if dl.EventErr != nil {
		row("event", "not a well-formed authms event: "+dl.EventErr.Error())
	} else {
		row("event", fmt.Sprintf("%s %s", e.EventID, e.EventType))
		row("tenant", cmp.Or(e.TenantID, "-"))
		row("aggregate", fmt.Sprintf("%s v%d", cmp.Or(e.AggregateID, "-"), e.AggregateVersion))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "\nerror:\n%s\n", indent(cmp.Or(e.Error, "-")))
	fmt.Fprintln(c.stdout, "\nheaders:")
	for _, k := range slices.Sorted(maps.Keys(dl.Headers)) {
		for _, v := range dl.Headers[k] {
			fmt.Fprintf(c.stdout, "  %s: %s\n", k, v)
		}
	}
	if payloadErr != nil {
		fmt.Fprintf(c.stdout, "\npayload (undecodable: %v), base64:\n%s\n", payloadErr,
			indent(base64.StdEncoding.EncodeToString(dl.Data)))
		return nil
	}
	fmt.Fprintf(c.stdout, "\npayload:\n%s\n", indent(string(payload)))
	return nil
}

// payloadJSON decodes a dead letter's payload through its protobuf type
// and renders it as indented JSON.
func payloadJSON(dl events.DeadLetter) (json.RawMessage, error) {
	if dl.EventErr != nil {
		return nil, dl.EventErr
	}
	m, err := dl.Event.Payload()
	if err != nil {
		return nil, err
	}
	raw, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	// protojson varies its whitespace on purpose; make it stable.
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}

// dlqRedrive re-drives dead letters through the admin API of the process
// that runs the service.
func (c *cli) dlqRedrive(ctx context.Context, args []string) error {
	fs := c.newFlags("dlq redrive", "authms dlq redrive [--consumer name] [--json] <service> <seq>|--all")
	all := fs.Bool("all", false, "re-drive every dead letter of the service (or of --consumer)")
	consumer := fs.String("consumer", "", "only the dead letters of this durable `consumer`")
	asJSON := fs.Bool("json", false, "print JSON")
	apiURL := c.adminURL(fs)
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	req := &adminv1.RedriveDeadLettersRequest{Consumer: *consumer}
	switch {
	case *all && len(rest) == 1:
		req.Service, req.Target = rest[0], &adminv1.RedriveDeadLettersRequest_All{All: true}
	case !*all && len(rest) == 2:
		seq, err := strconv.ParseUint(rest[1], 10, 64)
		if err != nil || seq == 0 {
			return fmt.Errorf("dlq redrive: sequence %q is not a positive number: %w", rest[1], errUsage)
		}
		req.Service, req.Target = rest[0], &adminv1.RedriveDeadLettersRequest_Sequence{Sequence: seq}
	default:
		return fmt.Errorf("dlq redrive takes a service and a sequence, or a service and --all: %w", errUsage)
	}
	operator, err := c.operatorAuth()
	if err != nil {
		return err
	}
	client := adminv1connect.NewDeadLetterServiceClient(&http.Client{}, strings.TrimSuffix(*apiURL, "/"), operator)
	res, err := client.RedriveDeadLetters(ctx, connect.NewRequest(req))
	if err != nil {
		return apiError("re-drive", *apiURL, err)
	}
	results := res.Msg.GetResults()
	if *asJSON {
		if err := printJSON(c.stdout, res.Msg); err != nil {
			return err
		}
	} else {
		printRedrive(c.stdout, results)
	}
	notApplied := 0
	for _, r := range results {
		if r.GetOutcome() != adminv1.RedriveOutcome_REDRIVE_OUTCOME_APPLIED {
			notApplied++
		}
	}
	if notApplied > 0 {
		return fmt.Errorf("%d of %d dead letters were not re-driven", notApplied, len(results))
	}
	return nil
}

func printRedrive(out io.Writer, results []*adminv1.RedriveResult) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SEQ\tSUBJECT\tCONSUMER\tOUTCOME\tNEW SEQ\tERROR")
	counts := map[adminv1.RedriveOutcome]int{}
	for _, r := range results {
		counts[r.GetOutcome()]++
		outcome := strings.ToLower(strings.TrimPrefix(r.GetOutcome().String(), "REDRIVE_OUTCOME_"))
		newSeq := "-"
		if r.GetNewSequence() != 0 {
			newSeq = strconv.FormatUint(r.GetNewSequence(), 10)
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", r.GetSequence(), r.GetSubject(), cmp.Or(r.GetConsumer(), "-"),
			outcome, newSeq, truncate(r.GetError(), errorColumnWidth))
	}
	if len(results) == 0 {
		fmt.Fprintln(w, "(no dead letters)")
	}
	_ = w.Flush()
	fmt.Fprintf(out, "%d applied, %d failed again (kept under their new sequence), %d skipped\n",
		counts[adminv1.RedriveOutcome_REDRIVE_OUTCOME_APPLIED], counts[adminv1.RedriveOutcome_REDRIVE_OUTCOME_FAILED],
		counts[adminv1.RedriveOutcome_REDRIVE_OUTCOME_SKIPPED])
}

// dlqPurge deletes dead letters without applying them, after asking on a
// terminal.
func (c *cli) dlqPurge(ctx context.Context, args []string) error {
	fs := c.newFlags("dlq purge", "authms dlq purge [--consumer name] [--yes] <service>")
	consumer := fs.String("consumer", "", "only the dead letters of this durable `consumer`")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("dlq purge takes one service, got %q: %w", rest, errUsage)
	}
	service := rest[0]
	filter := events.DeadLetterFilter{Consumer: *consumer}
	js, closeConn, err := c.jetStream()
	if err != nil {
		return err
	}
	defer closeConn()
	what := events.DLQStreamName(service)
	if *consumer != "" {
		what += " of consumer " + *consumer
	}
	if !*yes {
		if !c.stdinIsTerminal {
			return errors.New("dlq purge deletes dead letters for good: pass --yes (stdin is not a terminal to ask on)")
		}
		list, err := events.ListDeadLetters(ctx, js, service, filter)
		if err != nil {
			return dlqError(service, err)
		}
		if len(list) == 0 {
			fmt.Fprintf(c.stdout, "no dead letters in %s\n", what)
			return nil
		}
		fmt.Fprintf(c.stdout, "Delete %d dead letters in %s without applying them? [y/N] ", len(list), what)
		answer, _ := bufio.NewReader(c.stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(c.stdout, "nothing deleted")
			return nil
		}
	}
	n, err := events.PurgeDeadLetters(ctx, js, service, filter)
	if err != nil {
		return dlqError(service, err)
	}
	fmt.Fprintf(c.stdout, "purged %d dead letters from %s\n", n, what)
	return nil
}
