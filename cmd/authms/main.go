// Command authms is the one binary of the authms identity platform: it runs
// the services (`authms dev` runs all of them in one process, with an
// embedded NATS JetStream server) and carries the operator's tools for
// databases and events.
//
//	authms dev                      run every service, embedded NATS, and the
//	                                browser console, on :8080
//	authms migrate [service...]     create databases and roles, apply migrations
//	authms events streams [--json]  streams, message counts and consumers' lag
//	authms events tail [flags] [subject filter]
//	                                print events as JSON lines, decoded
//	authms events republish <service>
//	                                rebuild a lost stream from the events table
//	authms dlq ls|show|redrive|purge
//	                                list, inspect, re-drive and purge dead letters
//	authms projections ls|rebuild   projector status; rebuild a projection by replay
//
// Configuration comes from flags and the environment: DATABASE_URL,
// NATS_URL, NATS_REPLICAS, AUTHMS_API_URL, AUTHMS_DATABASE_PREFIX, AUTHMS_HTTP_ADDR, AUTHMS_DATA_DIR,
// AUTHMS_LOG_FORMAT, AUTHMS_LOG_LEVEL, AUTHMS_CORS_ORIGINS, AUTHMS_OPERATOR_TOKEN,
// AUTHMS_LINK_BASE_URL, AUTHMS_DNS_SERVER, AUTHMS_NATS_PORT, AUTHMS_DEV_BOOTSTRAP.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/term"
)

// Defaults shared by the subcommands.
const (
	defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	defaultDataDir     = "./data"
	defaultHTTPAddr    = ":8080"
)

const usage = `authms: event-sourced, multi-tenant identity platform.

Usage:
  authms dev [service...]               run every service (or those named) in one process
  authms migrate [service...]           create databases and roles, apply migrations
  authms events streams [--json]        list streams and consumers
  authms events tail [flags] [subject]  print events as JSON lines
  authms events republish [--from-start] [--yes] <service>
                                        rebuild a lost stream from the service's events table
  authms projections ls [--json]        projectors: source, checkpoint, pending, state
  authms projections rebuild [--yes] <service>.<projection>
                                        rebuild a projection by replaying its source stream
  authms dlq ls [--consumer X] [--json] [service]
                                        list dead letters (all DLQ_* streams without a service)
  authms dlq show <service> <seq>       one dead letter: headers, error, decoded payload
  authms dlq redrive <service> <seq>|--all [--consumer X]
                                        apply dead letters again through the running service
  authms dlq purge <service> [--consumer X] [--yes]
                                        delete dead letters without applying them

Run "authms <command> -h" for a command's flags.

Environment:
  DATABASE_URL            superuser connection string (default ` + defaultDatabaseURL + `)
  NATS_URL                NATS server; authms dev embeds one when unset (default nats://127.0.0.1:4223)
  NATS_REPLICAS           copies of each stream in a NATS cluster (default 1; 3 in production)
  AUTHMS_API_URL          the running services' API, for dlq redrive, projections and events republish (default http://localhost:8080)
  AUTHMS_DATABASE_PREFIX  prefix of database and role names (default authms: authms_identity, ...)
  AUTHMS_HTTP_ADDR        API listen address (default ` + defaultHTTPAddr + `)
  AUTHMS_DATA_DIR         development data: NATS store, passwords, keys (default ` + defaultDataDir + `)
  AUTHMS_LOG_FORMAT       text or json (default: text on a terminal, json otherwise)
  AUTHMS_LOG_LEVEL        debug, info, warn or error (default info)
  AUTHMS_CORS_ORIGINS     comma-separated origins (scheme://host[:port]) of browser pages allowed to call the APIs from another origin; * allows all, for development only (default none: the console authms serves is same-origin)
  AUTHMS_NATS_PORT        client port of authms dev's embedded NATS server, 0 for a free one (default 4223)
  AUTHMS_DEV_BOOTSTRAP    0: authms dev does not make the tenant dev and its admin admin@authms.test (default 1)
  AUTHMS_TRUSTED_PROXIES  comma-separated networks (CIDR or address) of the proxies whose X-Forwarded-For names the client, e.g. 10.0.0.0/8,127.0.0.1/32 (default none)
  AUTHMS_OPERATOR_TOKEN   operator token (admin APIs, CreateTenant, ListTenants, SuspendTenant, ReactivateTenant, AssignRoles), at least 32 characters (default: authms dev generates one in <data>/secrets/authms.operator-token.key, which the CLI reads)
  AUTHMS_LINK_BASE_URL    base URL of the verification and reset links identity logs (default http://localhost:8080)
  AUTHMS_DNS_SERVER       DNS server (host:port) VerifyDomain asks for _authms-challenge TXT records (default: the system resolver)
  AUTHMS_INSECURE_SKIP_DOMAIN_CHECK  1: VerifyDomain verifies without DNS, with a warning (development without a DNS zone only)
`

// errUsage reports a command line that cannot run; main prints the usage.
var errUsage = errors.New("usage")

// cli holds what a command reads and writes, so tests run commands in
// process.
type cli struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// stderrIsTerminal selects text logs by default.
	stderrIsTerminal bool
	// stdinIsTerminal lets commands ask for confirmation.
	stdinIsTerminal bool
	// argv0 is how the process was started (os.Args[0]), for the commands
	// authms dev's banner suggests; "" stands for `authms`.
	argv0 string
}

func main() {
	c := &cli{
		stdin:            os.Stdin,
		stdout:           os.Stdout,
		stderr:           os.Stderr,
		getenv:           os.Getenv,
		stderrIsTerminal: isTerminal(os.Stderr),
		stdinIsTerminal:  isTerminal(os.Stdin),
		argv0:            os.Args[0],
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := c.run(ctx, stop, os.Args[1:])
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		if msg := strings.TrimSuffix(err.Error(), ": "+errUsage.Error()); msg != errUsage.Error() {
			fmt.Fprintln(os.Stderr, "authms:", msg)
		}
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "authms:", err)
		os.Exit(1)
	}
}

// run runs the command in args. stopSignals restores the default signal
// handling, so that a second Ctrl-C during a graceful shutdown kills the
// process.
func (c *cli) run(ctx context.Context, stopSignals func(), args []string) error {
	if len(args) == 0 {
		return errUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "dev":
		return c.dev(ctx, stopSignals, rest)
	case "migrate":
		return c.migrate(ctx, rest)
	case "events":
		return c.events(ctx, rest)
	case "dlq":
		return c.dlq(ctx, rest)
	case "projections":
		return c.projections(ctx, rest)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(c.stdout, usage)
		return nil
	default:
		return fmt.Errorf("unknown command %q: %w", cmd, errUsage)
	}
}

// env returns the environment variable name, or def when it is unset.
func (c *cli) env(name, def string) string {
	if v := c.getenv(name); v != "" {
		return v
	}
	return def
}

// newFlags returns a flag set that reports errors instead of exiting.
func (c *cli) newFlags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: %s\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args with fs, allowing flags after positional arguments
// ("tail identity.> --all"), and returns the positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		if args[0] == "--" {
			return append(positional, args[1:]...), nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// isTerminal reports whether f is a terminal: a character device such as
// /dev/null is not.
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
