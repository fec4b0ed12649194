package services

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/projections"
	adminv1 "github.com/authms/authms/schemas/gen/authms/admin/v1"
	"github.com/authms/authms/schemas/gen/authms/admin/v1/adminv1connect"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/rpc"
)

// Errors of the admin API, mapped to Connect codes by adminError.
var (
	// errServiceNotRunning reports a service this process does not run.
	errServiceNotRunning = errors.New("service not running")
	// errConsumerNotRunning reports a dead letter whose consumer is not one
	// of the service's running consumers, so there is no handler to apply it.
	errConsumerNotRunning = errors.New("consumer not running")
)

// adminAPI serves the authms.admin.v1 services (dead letters, projections,
// streams) for the platform's services: all of them to the platform
// operator (the operator token), and the reads and re-drives that
// [adminPolicies] opens to tenant admins, confined to their tenant.
type adminAPI struct {
	p      *Platform
	js     jetstream.JetStream
	logger *slog.Logger
	// tailHeartbeat is how long TailEvents stays silent before it sends a
	// heartbeat.
	tailHeartbeat time.Duration
	// tails holds TailEvents calls to the configured limits.
	tails *tails
}

var (
	_ adminv1connect.DeadLetterServiceHandler = (*adminAPI)(nil)
	_ adminv1connect.ProjectionServiceHandler = (*adminAPI)(nil)
	_ adminv1connect.StreamServiceHandler     = (*adminAPI)(nil)
)

// mountAdmin mounts the platform's admin APIs on mux and returns their full
// names, for reflection.
func (p *Platform) mountAdmin(mux *http.ServeMux, cfg Config) ([]string, error) {
	logger := cfg.Logger.With("component", "admin")
	opts, err := rpc.HandlerOptions(logger, rpc.WithTracing(cfg.TracerProvider), rpc.WithAuth(p.authn))
	if err != nil {
		return nil, fmt.Errorf("admin handler options: %w", err)
	}
	if err := p.authn.Declare(adminPolicies()); err != nil {
		return nil, fmt.Errorf("admin access policies: %w", err)
	}
	api := &adminAPI{p: p, js: cfg.JS, logger: logger, tailHeartbeat: cmp.Or(cfg.TailHeartbeat, DefaultTailHeartbeat),
		tails: newTails(cfg.TailLimits)}
	mux.Handle(adminv1connect.NewDeadLetterServiceHandler(api, opts...))
	mux.Handle(adminv1connect.NewProjectionServiceHandler(api, opts...))
	mux.Handle(adminv1connect.NewStreamServiceHandler(api, opts...))
	return []string{adminv1connect.DeadLetterServiceName, adminv1connect.ProjectionServiceName, adminv1connect.StreamServiceName}, nil
}

// adminPolicies lets the operator call every admin API. Tenant admins
// read the streams and tail their own tenant's events, and list, inspect
// and re-drive their own tenant's dead letters: the Authorize interceptor
// holds their requests' tenant_id to the token's tenant, and the handlers
// keep to that tenant. What changes every tenant's data at once (purging
// dead letters, rebuilding projections, republishing a stream) stays the
// operator's.
func adminPolicies() auth.Policies {
	tenantAdmin := auth.Admin.OrOperator()
	return auth.Policies{
		adminv1connect.DeadLetterServiceListDeadLettersProcedure:    tenantAdmin,
		adminv1connect.DeadLetterServiceGetDeadLetterProcedure:      tenantAdmin,
		adminv1connect.DeadLetterServiceRedriveDeadLettersProcedure: tenantAdmin,
		adminv1connect.DeadLetterServicePurgeDeadLettersProcedure:   auth.Operator,
		adminv1connect.ProjectionServiceListProjectionsProcedure:    auth.Operator,
		adminv1connect.ProjectionServiceRebuildProjectionProcedure:  auth.Operator,
		adminv1connect.StreamServiceRepublishEventsProcedure:        auth.Operator,
		adminv1connect.StreamServiceListStreamsProcedure:            tenantAdmin,
		adminv1connect.StreamServiceTailEventsProcedure:             tenantAdmin,
	}
}

// ListDeadLetters lists a running service's dead letters, oldest first.
func (a *adminAPI) ListDeadLetters(ctx context.Context, req *connect.Request[adminv1.ListDeadLettersRequest]) (*connect.Response[adminv1.ListDeadLettersResponse], error) {
	service := req.Msg.GetService()
	if err := a.running(service); err != nil {
		return nil, a.error(ctx, req.Spec().Procedure, err)
	}
	filter := events.DeadLetterFilter{Consumer: req.Msg.GetConsumer(), Tenant: req.Msg.GetTenantId()}
	list, err := events.ListDeadLetters(ctx, a.js, service, filter)
	if err != nil {
		return nil, a.error(ctx, req.Spec().Procedure, err)
	}
	internals := seesInternals(ctx)
	res := &adminv1.ListDeadLettersResponse{DeadLetters: make([]*adminv1.DeadLetter, len(list))}
	for i, dl := range list {
		res.DeadLetters[i] = deadLetterToProto(dl, internals)
	}
	return connect.NewResponse(res), nil
}

// GetDeadLetter returns one dead letter with its headers and decoded
// payload. A tenant admin gets the failure's category in place of its text,
// in the error field and the authms-dlq-error header alike (see
// [failureCategory]); the payload's decoding error stays, since it comes
// from the payload shown, not from a handler.
func (a *adminAPI) GetDeadLetter(ctx context.Context, req *connect.Request[adminv1.GetDeadLetterRequest]) (*connect.Response[adminv1.GetDeadLetterResponse], error) {
	service := req.Msg.GetService()
	if err := a.running(service); err != nil {
		return nil, a.error(ctx, req.Spec().Procedure, err)
	}
	dl, err := a.deadLetter(ctx, service, req.Msg.GetSequence(), events.DeadLetterFilter{Tenant: req.Msg.GetTenantId()})
	if err != nil {
		return nil, a.error(ctx, req.Spec().Procedure, err)
	}
	internals := seesInternals(ctx)
	res := &adminv1.GetDeadLetterResponse{DeadLetter: deadLetterToProto(dl, internals)}
	for _, name := range slices.Sorted(maps.Keys(dl.Headers)) {
		values := dl.Headers[name]
		if !internals && name == events.HeaderDLQError {
			values = []string{failureCategory(dl.Permanent)}
		}
		res.Headers = append(res.Headers, &adminv1.Header{Name: name, Values: values})
	}
	payload, err := decodePayload(dl)
	if err != nil {
		res.PayloadRaw = dl.Data
		res.PayloadError = err.Error()
	} else {
		res.Payload = payload
	}
	return connect.NewResponse(res), nil
}

// deadLetter returns the dead letter at seq if filter selects it. One it
// does not select is not found: a tenant admin learns nothing of another
// tenant's dead letters, not even that a sequence holds one.
func (a *adminAPI) deadLetter(ctx context.Context, service string, seq uint64, filter events.DeadLetterFilter) (events.DeadLetter, error) {
	dl, err := events.GetDeadLetter(ctx, a.js, service, seq)
	if err != nil {
		return events.DeadLetter{}, err
	}
	if !filter.Match(dl) {
		return events.DeadLetter{}, fmt.Errorf("%s sequence %d: %w", events.DLQStreamName(service), seq, events.ErrDeadLetterNotFound)
	}
	return dl, nil
}

// decodePayload renders a dead letter's payload through its protobuf type
// as protojson, in a Struct.
func decodePayload(dl events.DeadLetter) (*structpb.Struct, error) {
	if dl.EventErr != nil {
		return nil, dl.EventErr
	}
	return payloadStruct(dl.Event)
}

// payloadStruct renders ev's payload as protojson in a Struct, the shape
// the admin API gives decoded payloads.
func payloadStruct(ev events.Event) (*structpb.Struct, error) {
	js, err := events.PayloadJSON(ev)
	if err != nil {
		return nil, err
	}
	var s structpb.Struct
	if err := protojson.Unmarshal(js, &s); err != nil {
		return nil, fmt.Errorf("render %s as JSON: %w", ev.MessageName, err)
	}
	return &s, nil
}

// RedriveDeadLetters re-applies one dead letter, or all of a service's (or
// a consumer's), through the handler of the consumer that dead-lettered it.
func (a *adminAPI) RedriveDeadLetters(ctx context.Context, req *connect.Request[adminv1.RedriveDeadLettersRequest]) (*connect.Response[adminv1.RedriveDeadLettersResponse], error) {
	service := req.Msg.GetService()
	filter := events.DeadLetterFilter{Consumer: req.Msg.GetConsumer(), Tenant: req.Msg.GetTenantId()}
	if err := a.running(service); err != nil {
		return nil, a.error(ctx, req.Spec().Procedure, err)
	}
	res := &adminv1.RedriveDeadLettersResponse{}
	if !req.Msg.GetAll() {
		seq := req.Msg.GetSequence()
		if seq == 0 {
			return nil, rpc.FieldError("sequence", "required", "a sequence or all is required")
		}
		dl, err := a.deadLetter(ctx, service, seq, filter)
		if err != nil {
			return nil, a.error(ctx, req.Spec().Procedure, err)
		}
		handler, err := a.handler(service, dl.Consumer)
		if err != nil {
			return nil, a.error(ctx, req.Spec().Procedure, err)
		}
		result, err := a.redrive(ctx, service, dl, handler)
		if err != nil {
			return nil, a.error(ctx, req.Spec().Procedure, err)
		}
		res.Results = append(res.Results, result)
		return connect.NewResponse(res), nil
	}
	list, err := events.ListDeadLetters(ctx, a.js, service, filter)
	if err != nil {
		return nil, a.error(ctx, req.Spec().Procedure, err)
	}
	for _, dl := range list {
		handler, err := a.handler(service, dl.Consumer)
		if err != nil {
			r := redriveResult(dl)
			r.Outcome, r.Error = adminv1.RedriveOutcome_REDRIVE_OUTCOME_SKIPPED, err.Error()
			res.Results = append(res.Results, r)
			continue
		}
		r, err := a.redrive(ctx, service, dl, handler)
		if err != nil {
			// The DLQ could not be read or written: the dead letter is
			// unchanged. The cause may carry internals, so it goes to the log.
			a.logger.ErrorContext(ctx, "re-drive failed", "service", service, "sequence", dl.Sequence, "err", err)
			r = redriveResult(dl)
			r.Outcome = adminv1.RedriveOutcome_REDRIVE_OUTCOME_SKIPPED
			r.Error = "the dead-letter stream could not be updated; the dead letter is unchanged (see the service's log)"
		}
		res.Results = append(res.Results, r)
	}
	return connect.NewResponse(res), nil
}

// redrive re-drives dl and reports the outcome; an error means the DLQ
// could not be read or written.
func (a *adminAPI) redrive(ctx context.Context, service string, dl events.DeadLetter, handler events.Handler) (*adminv1.RedriveResult, error) {
	r := redriveResult(dl)
	err := events.Redrive(ctx, a.js, service, dl.Sequence, handler)
	var failed *events.RedriveError
	switch {
	case err == nil:
		r.Outcome = adminv1.RedriveOutcome_REDRIVE_OUTCOME_APPLIED
		a.logger.InfoContext(ctx, "dead letter re-driven", "service", service, "sequence", dl.Sequence,
			"consumer", dl.Consumer, "subject", dl.Subject, "event_id", dl.Event.ID)
	case errors.As(err, &failed):
		r.Outcome, r.NewSequence = adminv1.RedriveOutcome_REDRIVE_OUTCOME_FAILED, failed.NewSequence
		r.Error = failed.Err.Error()
		if !seesInternals(ctx) {
			r.Error = failureCategory(events.IsPermanent(failed.Err))
		}
		a.logger.WarnContext(ctx, "dead letter re-drive failed; kept", "service", service, "sequence", dl.Sequence,
			"new_sequence", failed.NewSequence, "consumer", dl.Consumer, "subject", dl.Subject, "event_id", dl.Event.ID, "err", failed.Err)
	case errors.Is(err, events.ErrDeadLetterNotFound):
		r.Outcome, r.Error = adminv1.RedriveOutcome_REDRIVE_OUTCOME_SKIPPED, "the dead letter left the DLQ meanwhile"
	default:
		return nil, err
	}
	return r, nil
}

func redriveResult(dl events.DeadLetter) *adminv1.RedriveResult {
	r := &adminv1.RedriveResult{Sequence: dl.Sequence, Subject: dl.Subject, Consumer: dl.Consumer}
	if dl.EventErr == nil {
		r.EventId = dl.Event.ID.String()
	}
	return r
}

// PurgeDeadLetters deletes a service's dead letters, or one consumer's.
func (a *adminAPI) PurgeDeadLetters(ctx context.Context, req *connect.Request[adminv1.PurgeDeadLettersRequest]) (*connect.Response[adminv1.PurgeDeadLettersResponse], error) {
	service := req.Msg.GetService()
	if err := a.running(service); err != nil {
		return nil, a.error(ctx, req.Spec().Procedure, err)
	}
	n, err := events.PurgeDeadLetters(ctx, a.js, service, events.DeadLetterFilter{Consumer: req.Msg.GetConsumer()})
	if err != nil {
		return nil, a.error(ctx, req.Spec().Procedure, err)
	}
	a.logger.WarnContext(ctx, "dead letters purged", "service", service, "consumer", req.Msg.GetConsumer(), "purged", n)
	return connect.NewResponse(&adminv1.PurgeDeadLettersResponse{Purged: uint64(n)}), nil
}

// running checks that this process runs service.
func (a *adminAPI) running(service string) error {
	if a.p.byName[service] == nil {
		names := make([]string, len(a.p.units))
		for i, u := range a.p.units {
			names[i] = u.info.Name
		}
		return fmt.Errorf("%w: %q (running here: %s)", errServiceNotRunning, service, strings.Join(names, ", "))
	}
	return nil
}

// handler returns the handler of the service's running consumer named
// durable: the one that dead-lettered the message.
func (a *adminAPI) handler(service, durable string) (events.Handler, error) {
	for _, c := range a.p.Consumers(service) {
		if cfg := c.Config(); cfg.Durable == durable {
			return cfg.Handler, nil
		}
	}
	var names []string
	for _, c := range a.p.Consumers(service) {
		names = append(names, c.Config().Durable)
	}
	return nil, fmt.Errorf("%w: %s has no running consumer %q (running: %s)", errConsumerNotRunning, service,
		cmp.Or(durable, "(none named in the dead letter)"), cmp.Or(strings.Join(names, ", "), "none"))
}

// error maps every error the admin API returns to a Connect error. The
// messages of its own errors name services, consumers and sequences only;
// anything else goes through rpc.Error.
func (a *adminAPI) error(ctx context.Context, procedure string, err error) error {
	switch {
	case errors.Is(err, errServiceNotRunning), errors.Is(err, errStreamNotRunning),
		errors.Is(err, events.ErrDeadLetterNotFound), errors.Is(err, events.ErrNoDeadLetterStream):
		return connect.NewError(connect.CodeNotFound, err)
	case errors.Is(err, ErrUnknownProjection):
		return connect.NewError(connect.CodeNotFound, err)
	case errors.Is(err, errConsumerNotRunning), errors.Is(err, projections.ErrNotRebuildable):
		return connect.NewError(connect.CodeFailedPrecondition, err)
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrDisconnected), errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		a.logger.WarnContext(ctx, "nats unavailable", "procedure", procedure, "err", err)
		return connect.NewError(connect.CodeUnavailable, errors.New("NATS JetStream is unavailable; retry later"))
	}
	return rpc.Error(ctx, a.logger, procedure, err)
}

// Failure categories: what a tenant admin learns of why a handler failed.
const (
	failurePermanent = "permanent: the event cannot be applied"
	failureRetried   = "retries ran out: the handler kept failing"
)

// failureCategory is what a tenant admin sees in place of a handler's
// error. Handler errors are written for the operator and may carry SQL
// errors, host and role names (DESIGN §7: never internals to clients), so
// a tenant admin learns only whether the failure was permanent; the
// operator, and the service's log, keep the full text.
func failureCategory(permanent bool) string {
	if permanent {
		return failurePermanent
	}
	return failureRetried
}

// seesInternals reports whether the caller may read handlers' error text:
// the platform operator only.
func seesInternals(ctx context.Context) bool {
	p, ok := auth.FromContext(ctx)
	return ok && p.IsOperator()
}

// deadLetterToProto renders dl; internals keeps the handler's error text,
// otherwise error carries its category.
func deadLetterToProto(dl events.DeadLetter, internals bool) *adminv1.DeadLetter {
	m := &adminv1.DeadLetter{
		Sequence:         dl.Sequence,
		Service:          dl.Service,
		Subject:          dl.Subject,
		Stream:           dl.Stream,
		StreamSequence:   dl.StreamSequence,
		Consumer:         dl.Consumer,
		Attempts:         int32(min(dl.Attempts, 1<<31-1)),
		Error:            failureCategory(dl.Permanent),
		Permanent:        dl.Permanent,
		PublishTime:      timestamp(dl.PublishedAt),
		FirstFailureTime: timestamp(dl.FirstFailedAt),
		LastFailureTime:  timestamp(dl.LastFailedAt),
	}
	if internals {
		m.Error = dl.Error
	}
	if dl.EventErr != nil {
		m.EnvelopeError = dl.EventErr.Error()
		return m
	}
	m.EventId = dl.Event.ID.String()
	m.EventType = dl.Event.Type()
	m.TenantId = dl.Event.TenantID
	m.AggregateId = dl.Event.AggregateID
	m.AggregateVersion = dl.Event.Version
	return m
}

// timestamp is nil for the zero time.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
