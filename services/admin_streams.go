package services

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/authms/authms/events"
	adminv1 "github.com/authms/authms/schemas/gen/authms/admin/v1"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/rpc"
)

// DefaultTailHeartbeat is how long TailEvents stays silent before it sends
// a heartbeat, as its schema promises clients.
const DefaultTailHeartbeat = 15 * time.Second

// Defaults of [TailLimits].
const (
	DefaultTailsPerTenant = 4
	DefaultTails          = 64
	DefaultTenantTailLast = 100
)

// TailLimits bounds the admin API's TailEvents calls. Every tail holds an
// ordered JetStream consumer on each stream it follows, may first replay
// last messages of each, and decodes every tenant's events to keep its
// caller's tenant's: unbounded, the admins of one tenant could use up the
// NATS server's consumer state and the process's CPU for every tenant.
type TailLimits struct {
	// PerTenant is how many tails the admins of one tenant may hold open
	// at once (default [DefaultTailsPerTenant]); one more is
	// RESOURCE_EXHAUSTED. The operator is held by Total only.
	PerTenant int
	// Total is how many tails the process serves at once, the operator's
	// included (default [DefaultTails]).
	Total int
	// TenantLast is the largest last a tenant admin may ask for (default
	// [DefaultTenantTailLast]); the operator may ask for the schema's
	// 1000.
	TenantLast uint32
}

func (l TailLimits) validate() error {
	if l.PerTenant < 0 || l.Total < 0 {
		return fmt.Errorf("tail limits: %d per tenant, %d in all: a limit cannot be negative (zero takes the default)", l.PerTenant, l.Total)
	}
	return nil
}

func (l TailLimits) withDefaults() TailLimits {
	l.PerTenant = cmp.Or(l.PerTenant, DefaultTailsPerTenant)
	l.Total = cmp.Or(l.Total, DefaultTails)
	l.TenantLast = cmp.Or(l.TenantLast, DefaultTenantTailLast)
	return l
}

// tails counts the TailEvents calls running, in all and per tenant, to
// hold them to [TailLimits].
type tails struct {
	limits TailLimits

	mu       sync.Mutex
	total    int
	byTenant map[string]int
}

func newTails(limits TailLimits) *tails {
	return &tails{limits: limits.withDefaults(), byTenant: make(map[string]int)}
}

// acquire counts one more tail for tenant ("" for the operator, whom only
// the total holds) and returns the func that uncounts it, or a
// RESOURCE_EXHAUSTED error saying which limit was reached.
func (t *tails) acquire(tenant string) (release func(), err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tenant != "" && t.byTenant[tenant] >= t.limits.PerTenant {
		return nil, connect.NewError(connect.CodeResourceExhausted, fmt.Errorf(
			"the tenant's admins already hold %d tails open, the most allowed; end one to open another", t.limits.PerTenant))
	}
	if t.total >= t.limits.Total {
		return nil, connect.NewError(connect.CodeResourceExhausted, fmt.Errorf(
			"the server already serves %d tails, the most it allows; retry later", t.limits.Total))
	}
	t.total++
	if tenant != "" {
		t.byTenant[tenant]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.total--
			if tenant != "" {
				if t.byTenant[tenant]--; t.byTenant[tenant] == 0 {
					delete(t.byTenant, tenant)
				}
			}
		})
	}, nil
}

// errStreamNotRunning reports a stream that is not one of the streams of
// the services this process runs.
var errStreamNotRunning = errors.New("stream not run here")

// serviceStreams returns the event streams of the services this process
// runs, and their dead-letter streams, by name; the value reports a
// dead-letter stream.
func (a *adminAPI) serviceStreams() map[string]bool {
	names := make(map[string]bool, 2*len(a.p.units))
	for _, u := range a.p.units {
		names[events.StreamName(u.info.Name)] = false
		names[events.DLQStreamName(u.info.Name)] = true
	}
	return names
}

// ListStreams reports the event and dead-letter streams of the running
// services with their durable consumers: the figures of `authms events
// streams`, for those streams only. Every caller, a tenant admin too, sees
// the same: platform-wide totals, which reveal the platform's overall
// activity but none of a tenant's events.
func (a *adminAPI) ListStreams(ctx context.Context, req *connect.Request[adminv1.ListStreamsRequest]) (*connect.Response[adminv1.ListStreamsResponse], error) {
	ours := a.serviceStreams()
	statuses, err := events.Streams(ctx, a.js, func(name string) bool {
		_, ok := ours[name]
		return ok
	})
	if err != nil {
		return nil, a.error(ctx, req.Spec().Procedure, err)
	}
	res := &adminv1.ListStreamsResponse{Streams: make([]*adminv1.StreamInfo, len(statuses))}
	for i, st := range statuses {
		res.Streams[i] = streamToProto(st, ours[st.Name])
	}
	return connect.NewResponse(res), nil
}

func streamToProto(st events.StreamStatus, deadLetter bool) *adminv1.StreamInfo {
	m := &adminv1.StreamInfo{
		Name:          st.Name,
		Subjects:      st.Subjects,
		DeadLetter:    deadLetter,
		Messages:      st.Messages,
		Bytes:         st.Bytes,
		FirstSequence: st.FirstSeq,
		LastSequence:  st.LastSeq,
		Consumers:     make([]*adminv1.ConsumerInfo, len(st.Consumers)),
	}
	if st.LastTime != nil {
		m.LastTime = timestamppb.New(*st.LastTime)
	}
	for i, c := range st.Consumers {
		m.Consumers[i] = &adminv1.ConsumerInfo{
			Name:              c.Name,
			Pending:           c.Pending,
			AckPending:        uint64(max(c.AckPending, 0)),
			Redelivered:       uint64(max(c.Redelivered, 0)),
			DeliveredSequence: c.LastDelivered,
			Paused:            c.Paused,
		}
	}
	return m
}

// TailEvents follows the named streams (default: the event streams of the
// running services) through [events.Tail] and sends every event of the
// requested tenant (every tenant's for the operator without one). One
// goroutine sends, so the events of several streams and the heartbeats
// never interleave on the wire; the tail's consumers are deleted before
// the call returns, and only then does the call stop counting against
// [TailLimits]. [Platform.EndStreams] ends every tail with UNAVAILABLE.
func (a *adminAPI) TailEvents(ctx context.Context, req *connect.Request[adminv1.TailEventsRequest], stream *connect.ServerStream[adminv1.TailEventsResponse]) error {
	procedure := req.Spec().Procedure
	names, err := a.tailStreams(req.Msg.GetStreams())
	if err != nil {
		return a.error(ctx, procedure, err)
	}
	// The policy lets in the operator and tenant admins only; a tenant
	// admin's tail counts against their tenant.
	var holder string
	if p, _ := auth.FromContext(ctx); !p.IsOperator() {
		holder = p.TenantID
		if limit := a.tails.limits.TenantLast; req.Msg.GetLast() > limit {
			return rpc.FieldError("last", "last.tenant_admin",
				fmt.Sprintf("a tenant admin's tail replays at most %d messages per stream", limit))
		}
	}
	select {
	case <-a.p.streamsEnded:
		return errShuttingDown()
	default:
	}
	release, err := a.tails.acquire(holder)
	if err != nil {
		return err
	}
	defer release()
	cfg := events.TailConfig{
		Streams: names,
		Filter:  req.Msg.GetSubject(),
		Deliver: jetstream.DeliverNewPolicy,
		Last:    uint64(req.Msg.GetLast()),
		Follow:  true,
	}
	tenant := req.Msg.GetTenantId()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tailed := make(chan *adminv1.TailedEvent)
	done := make(chan error, 1)
	go func() {
		done <- events.Tail(ctx, a.js, cfg, func(m events.StoredMessage) bool {
			ev, ok := tailedEvent(m, tenant)
			if !ok {
				return true
			}
			select {
			case tailed <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	// end stops the tail and waits for it to delete its consumers.
	end := func(err error) error {
		cancel()
		<-done
		return err
	}

	heartbeat := time.NewTimer(a.tailHeartbeat)
	defer heartbeat.Stop()
	for {
		var msg *adminv1.TailEventsResponse
		select {
		case <-ctx.Done():
			return end(nil) // the client ended the call
		case <-a.p.streamsEnded:
			return end(errShuttingDown())
		case err := <-done:
			if err != nil {
				return a.tailError(ctx, procedure, err)
			}
			return nil
		case ev := <-tailed:
			msg = &adminv1.TailEventsResponse{Kind: &adminv1.TailEventsResponse_Event{Event: ev}}
		case now := <-heartbeat.C:
			msg = &adminv1.TailEventsResponse{Kind: &adminv1.TailEventsResponse_Heartbeat{Heartbeat: timestamppb.New(now)}}
		}
		if err := stream.Send(msg); err != nil {
			return end(err) // the client went away
		}
		heartbeat.Reset(a.tailHeartbeat)
	}
}

// errShuttingDown ends a long-lived stream on [Platform.EndStreams]: a
// clean UNAVAILABLE, which clients retry, rather than the INTERNAL a tail
// cut off by the NATS connection's close would report.
func errShuttingDown() error {
	return connect.NewError(connect.CodeUnavailable, errors.New("the server is shutting down; reconnect"))
}

// tailStreams checks that the streams named are the running services' and
// returns them; none named: every running service's event stream.
func (a *adminAPI) tailStreams(named []string) ([]string, error) {
	ours := a.serviceStreams()
	if len(named) == 0 {
		for name, deadLetter := range ours {
			if !deadLetter {
				named = append(named, name)
			}
		}
		slices.Sort(named)
		return named, nil
	}
	for _, name := range named {
		if _, ok := ours[name]; !ok {
			run := make([]string, 0, len(ours))
			for n := range ours {
				run = append(run, n)
			}
			slices.Sort(run)
			return nil, fmt.Errorf("%w: %q (streams here: %s)", errStreamNotRunning, name, strings.Join(run, ", "))
		}
	}
	return slices.Compact(slices.Sorted(slices.Values(named))), nil
}

// tailError maps what ended a tail: a filter that no stream tailed holds
// is the request's fault; anything else goes through the admin API's
// error mapping.
func (a *adminAPI) tailError(ctx context.Context, procedure string, err error) error {
	if errors.Is(err, events.ErrNoTailStream) {
		return rpc.FieldError("subject", "subject.streams", "no stream tailed holds subjects matching it")
	}
	return a.error(ctx, procedure, err)
}

// tailedEvent decodes a stored message for TailEvents, and reports whether
// it is for tenant ("" is every tenant). A message that is not a
// well-formed authms event belongs to no tenant: only a tail of every
// tenant's, the operator's, shows it, with the reason in payload_error.
func tailedEvent(m events.StoredMessage, tenant string) (*adminv1.TailedEvent, bool) {
	te := &adminv1.TailedEvent{
		Stream:     m.Stream,
		Sequence:   m.Sequence,
		Subject:    m.Subject,
		StoredTime: timestamppb.New(m.Stored),
	}
	ev, err := events.DecodeStored(m.Subject, m.Header, m.Data)
	if err != nil {
		te.PayloadError = err.Error()
		return te, tenant == ""
	}
	if tenant != "" && ev.TenantID != tenant {
		return nil, false
	}
	te.EventId = ev.ID.String()
	te.EventType = ev.Type()
	te.TenantId = ev.TenantID
	te.AggregateId = ev.AggregateID
	te.AggregateVersion = ev.Version
	te.EventTime = timestamp(ev.Time)
	payload, err := payloadStruct(ev)
	if err != nil {
		te.PayloadError = err.Error()
	} else {
		te.Payload = payload
	}
	return te, true
}
