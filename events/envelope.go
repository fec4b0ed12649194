package events

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Header names of the event envelope. CloudEvents attributes use the "ce-"
// prefix of the CloudEvents NATS binding (binary content mode); authms'
// own attributes are CloudEvents extensions.
const (
	HeaderID               = "ce-id"
	HeaderSource           = "ce-source"
	HeaderType             = "ce-type"
	HeaderSubject          = "ce-subject"
	HeaderTime             = "ce-time"
	HeaderSpecVersion      = "ce-specversion"
	HeaderDataSchema       = "ce-dataschema"
	HeaderContentType      = "content-type"
	HeaderTenant           = "ce-tenantid"
	HeaderAggregateType    = "ce-aggregatetype"
	HeaderAggregateVersion = "ce-aggregateversion"
	HeaderCorrelationID    = "ce-correlationid"
	HeaderCausationID      = "ce-causationid"
	HeaderTraceParent      = "traceparent"

	specVersion        = "1.0"
	contentType        = "application/protobuf"
	dataSchemaPrefix   = "type.googleapis.com/"
	sourcePrefix       = "/authms/"
	typeVersionPrefix  = ".v"
	defaultTypeVersion = 1
)

// Event is one domain event: a fact about one aggregate, stored forever in
// the owning service's events table and published on its stream.
type Event struct {
	ID            uuid.UUID
	Service       string // owning service, e.g. "identity"
	AggregateType string // e.g. "user"
	AggregateID   string
	Name          string // past tense, e.g. "created", "email_changed"
	TypeVersion   int    // schema version of the payload, 1 unless evolved
	TenantID      string
	Version       int64 // aggregate version after this event, from 1
	Time          time.Time
	CorrelationID string
	CausationID   string
	TraceParent   string
	// MessageName is the full protobuf name of the payload message.
	MessageName protoreflect.FullName
	// Data is the protobuf encoding of the payload.
	Data []byte

	// Stream and Sequence locate a received event in JetStream; zero for
	// events that have not been published.
	Stream   string
	Sequence uint64
}

// Subject is the NATS subject: <service>.<aggregate>.<event>.
func (e Event) Subject() string {
	return e.Service + "." + e.AggregateType + "." + e.Name
}

// Type is the CloudEvents type: the subject with the payload version,
// e.g. "identity.user.created.v1".
func (e Event) Type() string {
	v := e.TypeVersion
	if v == 0 {
		v = defaultTypeVersion
	}
	return e.Subject() + typeVersionPrefix + strconv.Itoa(v)
}

// Unmarshal decodes the payload into m, which must be the event's message type.
func (e Event) Unmarshal(m proto.Message) error {
	if got := m.ProtoReflect().Descriptor().FullName(); e.MessageName != "" && got != e.MessageName {
		return Permanent(fmt.Errorf("event %s carries %s, not %s", e.ID, e.MessageName, got))
	}
	if err := proto.Unmarshal(e.Data, m); err != nil {
		return Permanent(fmt.Errorf("decode %s payload of event %s: %w", e.Type(), e.ID, err))
	}
	return nil
}

// Payload decodes the payload into a new message of the type named in the
// envelope, looked up in the global protobuf registry (the generated
// packages under schemas/gen register themselves when imported).
func (e Event) Payload() (proto.Message, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(e.MessageName)
	if err != nil {
		return nil, fmt.Errorf("event %s: unknown payload type %q: %w", e.ID, e.MessageName, err)
	}
	m := mt.New().Interface()
	if err := proto.Unmarshal(e.Data, m); err != nil {
		return nil, fmt.Errorf("decode %s payload of event %s: %w", e.Type(), e.ID, err)
	}
	return m, nil
}

// Headers returns the envelope as NATS message headers, without Nats-Msg-Id.
func (e Event) Headers() map[string]string {
	h := map[string]string{
		HeaderSpecVersion:      specVersion,
		HeaderID:               e.ID.String(),
		HeaderSource:           sourcePrefix + e.Service,
		HeaderType:             e.Type(),
		HeaderSubject:          e.AggregateID,
		HeaderTime:             e.Time.UTC().Format(time.RFC3339Nano),
		HeaderContentType:      contentType,
		HeaderDataSchema:       dataSchemaPrefix + string(e.MessageName),
		HeaderTenant:           e.TenantID,
		HeaderAggregateType:    e.AggregateType,
		HeaderAggregateVersion: strconv.FormatInt(e.Version, 10),
	}
	for k, v := range map[string]string{
		HeaderCorrelationID: e.CorrelationID,
		HeaderCausationID:   e.CausationID,
		HeaderTraceParent:   e.TraceParent,
	} {
		if v != "" {
			h[k] = v
		}
	}
	return h
}

// FromMsg parses a NATS message published by a relay back into an Event.
// A message that is not a well-formed authms event gives a permanent error.
func FromMsg(subject string, header nats.Header, data []byte) (Event, error) {
	get := header.Get
	var e Event
	id, err := uuid.Parse(get(HeaderID))
	if err != nil {
		return e, Permanent(fmt.Errorf("message on %s: bad %s header %q", subject, HeaderID, get(HeaderID)))
	}
	parts := strings.Split(subject, ".")
	if len(parts) != 3 {
		return e, Permanent(fmt.Errorf("message on %s: subject is not <service>.<aggregate>.<event>", subject))
	}
	typ := get(HeaderType)
	typeVersion := defaultTypeVersion
	if i := strings.LastIndex(typ, typeVersionPrefix); i >= 0 && typ[:i] == subject {
		if v, err := strconv.Atoi(typ[i+len(typeVersionPrefix):]); err == nil && v > 0 {
			typeVersion = v
		}
	} else {
		return e, Permanent(fmt.Errorf("message on %s: type %q does not match the subject", subject, typ))
	}
	version, err := strconv.ParseInt(get(HeaderAggregateVersion), 10, 64)
	if err != nil || version < 1 {
		return e, Permanent(fmt.Errorf("message on %s: bad %s header %q", subject, HeaderAggregateVersion, get(HeaderAggregateVersion)))
	}
	t, err := time.Parse(time.RFC3339Nano, get(HeaderTime))
	if err != nil {
		return e, Permanent(fmt.Errorf("message on %s: bad %s header %q", subject, HeaderTime, get(HeaderTime)))
	}
	return Event{
		ID:            id,
		Service:       parts[0],
		AggregateType: parts[1],
		Name:          parts[2],
		TypeVersion:   typeVersion,
		AggregateID:   get(HeaderSubject),
		TenantID:      get(HeaderTenant),
		Version:       version,
		Time:          t,
		CorrelationID: get(HeaderCorrelationID),
		CausationID:   get(HeaderCausationID),
		TraceParent:   get(HeaderTraceParent),
		MessageName:   protoreflect.FullName(strings.TrimPrefix(get(HeaderDataSchema), dataSchemaPrefix)),
		Data:          data,
	}, nil
}

type traceKey struct{}

// Trace is the causal context a command or handler passes on to the events
// it records.
type Trace struct {
	CorrelationID string
	CausationID   string
	TraceParent   string
}

// WithTrace returns a context whose recorded events carry t.
func WithTrace(ctx context.Context, t Trace) context.Context {
	return context.WithValue(ctx, traceKey{}, t)
}

// TraceFrom returns the Trace in ctx, or the zero Trace.
func TraceFrom(ctx context.Context) Trace {
	t, _ := ctx.Value(traceKey{}).(Trace)
	return t
}

// CausedBy returns a context in which new events are caused by ev and share
// its correlation id: a projector that reacts to ev with a command uses it.
// The new events continue ev's trace: from the consumer span in ctx when
// tracing is on, else with ev's own traceparent.
func CausedBy(ctx context.Context, ev Event) context.Context {
	corr := ev.CorrelationID
	if corr == "" {
		corr = ev.ID.String()
	}
	tp := SpanTraceParent(ctx)
	if tp == "" {
		tp = ev.TraceParent
	}
	return WithTrace(ctx, Trace{CorrelationID: corr, CausationID: ev.ID.String(), TraceParent: tp})
}

// splitType splits "identity.user.created.v2" into the subject and version 2.
func splitType(typ string) (subject string, version int) {
	i := strings.LastIndex(typ, typeVersionPrefix)
	if i < 0 {
		return typ, defaultTypeVersion
	}
	v, err := strconv.Atoi(typ[i+len(typeVersionPrefix):])
	if err != nil || v < 1 {
		return typ, defaultTypeVersion
	}
	return typ[:i], v
}

// serviceAndName splits "identity.user.created" around the aggregate type.
func serviceAndName(subject, aggregateType string) (service, name string, ok bool) {
	parts := strings.Split(subject, ".")
	if len(parts) != 3 || parts[1] != aggregateType {
		return "", "", false
	}
	return parts[0], parts[2], true
}
