package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/authms/authms/schemas/gen/authms/admin/v1"
	"github.com/authms/authms/schemas/gen/authms/admin/v1/adminv1connect"
)

// projections runs `authms projections ls|rebuild`.
func (c *cli) projections(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("authms projections needs a subcommand (ls, rebuild): %w", errUsage)
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "ls":
		return c.projectionsList(ctx, rest)
	case "rebuild":
		return c.projectionsRebuild(ctx, rest)
	default:
		return fmt.Errorf("unknown projections subcommand %q: %w", sub, errUsage)
	}
}

// adminURL is the flag every command that calls the admin API takes.
func (c *cli) adminURL(fs interface {
	String(name, value, usage string) *string
}) *string {
	return fs.String("api", c.env("AUTHMS_API_URL", defaultAPIURL), "base `URL` of the services' API (AUTHMS_API_URL)")
}

// apiError explains a failed admin API call.
func apiError(what, url string, err error) error {
	switch connect.CodeOf(err) {
	case connect.CodeUnavailable, connect.CodeUnknown:
		return fmt.Errorf("%s through the admin API at %s (is authms running there? set AUTHMS_API_URL): %w", what, url, err)
	case connect.CodeUnauthenticated, connect.CodePermissionDenied:
		return fmt.Errorf("%s through the admin API at %s (set AUTHMS_OPERATOR_TOKEN, or AUTHMS_DATA_DIR to the data directory of authms dev): %w", what, url, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (c *cli) projectionsList(ctx context.Context, args []string) error {
	fs := c.newFlags("projections ls", "authms projections ls [--json]")
	asJSON := fs.Bool("json", false, "print JSON")
	url := c.adminURL(fs)
	if rest, err := parse(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return fmt.Errorf("projections ls takes no arguments, got %q: %w", rest, errUsage)
	}
	operator, err := c.operatorAuth()
	if err != nil {
		return err
	}
	client := adminv1connect.NewProjectionServiceClient(&http.Client{}, strings.TrimSuffix(*url, "/"), operator)
	res, err := client.ListProjections(ctx, connect.NewRequest(&adminv1.ListProjectionsRequest{}))
	if err != nil {
		return apiError("list projections", *url, err)
	}
	if *asJSON {
		return printJSON(c.stdout, res.Msg)
	}
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PROJECTION\tSOURCE\tCHECKPOINT\tPENDING\tACK PENDING\tREDELIVERED\tSTATE\tREBUILDABLE")
	for _, p := range res.Msg.GetProjections() {
		state := strings.ToLower(strings.TrimPrefix(p.GetState().String(), "PROJECTION_STATE_"))
		fmt.Fprintf(w, "%s.%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", p.GetService(), p.GetName(), p.GetSource(), p.GetCheckpoint(),
			p.GetPending(), p.GetAckPending(), p.GetRedelivered(), state, yesNo(p.GetRebuildable()))
	}
	if len(res.Msg.GetProjections()) == 0 {
		fmt.Fprintln(w, "(no projections)")
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, p := range res.Msg.GetProjections() {
		if f := p.GetFailure(); f != nil {
			fmt.Fprintf(c.stdout, "\n%s.%s is failing on %s (seq %d, event %s) since %s, %d failures:\n  %s\n",
				p.GetService(), p.GetName(), f.GetSubject(), f.GetSequence(), f.GetEventId(),
				f.GetFirstFailureTime().AsTime().Format(time.RFC3339), f.GetFailures(), f.GetError())
		}
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (c *cli) projectionsRebuild(ctx context.Context, args []string) error {
	fs := c.newFlags("projections rebuild", "authms projections rebuild [--yes] <service>.<projection>")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	url := c.adminURL(fs)
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	service, name, ok := strings.Cut(strings.Join(rest, ""), ".")
	if len(rest) != 1 || !ok || service == "" || name == "" {
		return fmt.Errorf("projections rebuild takes one <service>.<projection>, e.g. billing.user_profiles: %w", errUsage)
	}
	if err := c.confirm(*yes, fmt.Sprintf("Rebuild %s.%s by replaying its source stream? The projector pauses meanwhile. [y/N] ", service, name)); err != nil {
		return err
	}
	operator, err := c.operatorAuth()
	if err != nil {
		return err
	}
	client := adminv1connect.NewProjectionServiceClient(&http.Client{}, strings.TrimSuffix(*url, "/"), operator)
	stream, err := client.RebuildProjection(ctx, connect.NewRequest(&adminv1.RebuildProjectionRequest{Service: service, Name: name}))
	if err != nil {
		return apiError("rebuild", *url, err)
	}
	defer stream.Close()
	bar := progressBar{out: c.stderr, terminal: c.stderrIsTerminal}
	for stream.Receive() {
		m := stream.Msg()
		if m.GetPhase() == "done" {
			bar.finish()
			fmt.Fprintf(c.stdout, "rebuilt %s.%s: %d events replayed up to sequence %d in %s (%s)\n", service, name,
				m.GetReplayed(), m.GetLastSequence(), m.GetElapsed().AsDuration().Round(time.Millisecond), rate(m.GetReplayed(), m.GetElapsed().AsDuration()))
			if n := m.GetSkipped(); n > 0 {
				fmt.Fprintf(c.stderr, "authms: %d of them skipped: no retry could apply them (as the live projector dead-letters them); the service's log names each\n", n)
			}
			return nil
		}
		bar.update(m.GetPhase(), m.GetReplayed(), m.GetTotal(), m.GetElapsed().AsDuration())
	}
	bar.finish()
	return apiError("rebuild", *url, cmp.Or(stream.Err(), error(errors.New("the server ended the rebuild without finishing it"))))
}

// eventsRepublish runs `authms events republish <service>`.
func (c *cli) eventsRepublish(ctx context.Context, args []string) error {
	fs := c.newFlags("events republish", "authms events republish [--from-start] [--yes] <service>")
	fromStart := fs.Bool("from-start", false, "republish every event, not only those after the newest the stream holds")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	url := c.adminURL(fs)
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("events republish takes one service: %w", errUsage)
	}
	service := rest[0]
	if err := c.confirm(*yes, fmt.Sprintf("Republish %s's events table to its stream? [y/N] ", service)); err != nil {
		return err
	}
	operator, err := c.operatorAuth()
	if err != nil {
		return err
	}
	client := adminv1connect.NewStreamServiceClient(&http.Client{}, strings.TrimSuffix(*url, "/"), operator)
	stream, err := client.RepublishEvents(ctx, connect.NewRequest(&adminv1.RepublishEventsRequest{Service: service, FromStart: *fromStart}))
	if err != nil {
		return apiError("republish", *url, err)
	}
	defer stream.Close()
	start := time.Now()
	bar := progressBar{out: c.stderr, terminal: c.stderrIsTerminal}
	for stream.Receive() {
		m := stream.Msg()
		if m.GetDone() {
			bar.finish()
			if m.GetPublished()+m.GetDuplicates() == 0 {
				fmt.Fprintf(c.stdout, "republished %s: nothing to send, the stream holds every event (--from-start sends them all again)\n", service)
			} else {
				fmt.Fprintf(c.stdout, "republished %s: %d events stored, %d sent again and dropped by the stream as duplicates\n", service, m.GetPublished(), m.GetDuplicates())
			}
			return nil
		}
		bar.update("publishing", m.GetPublished(), m.GetTotal(), time.Since(start))
	}
	bar.finish()
	return apiError("republish", *url, cmp.Or(stream.Err(), error(errors.New("the server ended the republish without finishing it"))))
}

// confirm asks question on a terminal unless yes; without a terminal it
// refuses, so a script has to say --yes.
func (c *cli) confirm(yes bool, question string) error {
	if yes {
		return nil
	}
	if !c.stdinIsTerminal {
		return errors.New("pass --yes to confirm (stdin is not a terminal to ask on)")
	}
	fmt.Fprint(c.stdout, question)
	answer, _ := bufio.NewReader(c.stdin).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return errors.New("not confirmed")
	}
	return nil
}

// progressBar draws progress on a terminal, and a line every few seconds
// elsewhere.
type progressBar struct {
	out      io.Writer
	terminal bool
	last     time.Time
	drawn    bool
}

func (b *progressBar) update(phase string, done, total uint64, elapsed time.Duration) {
	if !b.terminal && time.Since(b.last) < 5*time.Second {
		return
	}
	b.last = time.Now()
	pct, eta := 0.0, "?"
	if total > 0 {
		pct = min(float64(done)/float64(total), 1)
		if done > 0 && done < total {
			eta = (time.Duration(float64(elapsed) / float64(done) * float64(total-done))).Round(time.Second).String()
		} else if done >= total {
			eta = "0s"
		}
	}
	const width = 30
	fill := int(pct * width)
	line := fmt.Sprintf("%-10s [%s%s] %3.0f%% %d/%d events  %s  ETA %s", phase,
		strings.Repeat("#", fill), strings.Repeat(".", width-fill), pct*100, done, total, rate(done, elapsed), eta)
	if b.terminal {
		fmt.Fprintf(b.out, "\r\033[K%s", line)
		b.drawn = true
		return
	}
	fmt.Fprintln(b.out, line)
}

func (b *progressBar) finish() {
	if b.drawn {
		fmt.Fprintln(b.out)
		b.drawn = false
	}
}

func rate(n uint64, d time.Duration) string {
	if d <= 0 {
		return "- events/s"
	}
	return fmt.Sprintf("%.0f events/s", float64(n)/d.Seconds())
}

// printJSON prints a protobuf message as indented JSON with field names as
// in the schema.
func printJSON(out io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true, Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, string(b))
	return err
}
