package services

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/authms/authms/events"
	adminv1 "github.com/authms/authms/schemas/gen/authms/admin/v1"
	"github.com/authms/authms/services/internal/rpc"
)

// DefaultTailHeartbeat is how long TailEvents stays silent before it sends
// a heartbeat, as its schema promises clients.
const DefaultTailHeartbeat = 15 * time.Second

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
// streams`, for those streams only. They carry no tenant's data, so every
// caller sees the same.
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
// the call returns.
func (a *adminAPI) TailEvents(ctx context.Context, req *connect.Request[adminv1.TailEventsRequest], stream *connect.ServerStream[adminv1.TailEventsResponse]) error {
	procedure := req.Spec().Procedure
	names, err := a.tailStreams(req.Msg.GetStreams())
	if err != nil {
		return a.error(ctx, procedure, err)
	}
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
