// Package rpc holds the Connect plumbing every service's API shares:
// declarative input validation, mapping of errors that are not domain
// errors, and the handler options that combine them.
package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"connectrpc.com/otelconnect"
	"connectrpc.com/validate"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/pg"
	"github.com/authms/authms/projections"
	commonv1 "github.com/authms/authms/schemas/gen/authms/common/v1"
	"github.com/authms/authms/services/internal/auth"
)

// HandlerOptions returns the options every handler is mounted with:
// protovalidate rules from schemas/ (bad input is InvalidArgument with field
// violations, before any handler code runs), error hygiene, with
// [WithAuth] authentication and authorisation against the procedures'
// policies, and with [WithTracing] an OpenTelemetry server span per call.
func HandlerOptions(logger *slog.Logger, opts ...Option) ([]connect.HandlerOption, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	var interceptors []connect.Interceptor
	if o.tracerProvider != nil {
		otel, err := otelconnect.NewInterceptor(
			otelconnect.WithTracerProvider(o.tracerProvider),
			otelconnect.WithPropagator(propagation.TraceContext{}),
			// authms' own services call each other with the caller's trace
			// context; a trace must not break at every hop.
			otelconnect.WithTrustRemote(),
			otelconnect.WithoutMetrics(),
		)
		if err != nil {
			return nil, fmt.Errorf("tracing interceptor: %w", err)
		}
		interceptors = append(interceptors, otel) // outermost: the span covers the whole call
	}
	interceptors = append(interceptors, traceInterceptor())
	if o.auth != nil {
		// Credentials first: a caller without one learns nothing, not even
		// which fields are invalid. Scoping reads validated ids, so after.
		interceptors = append(interceptors, o.auth.Authenticate(), validate.NewInterceptor(), o.auth.Authorize())
	} else {
		interceptors = append(interceptors, validate.NewInterceptor())
	}
	interceptors = append(interceptors, errorInterceptor(logger))
	return []connect.HandlerOption{connect.WithInterceptors(interceptors...)}, nil
}

// Option changes what [HandlerOptions] returns.
type Option func(*options)

type options struct {
	tracerProvider trace.TracerProvider
	auth           *auth.Authenticator
}

// WithAuth authenticates and authorises every call with a, against the
// policies declared for its procedures; a procedure without one refuses
// every call.
func WithAuth(a *auth.Authenticator) Option {
	return func(o *options) { o.auth = a }
}

// WithTracing starts a server span from tp for every call, continuing the
// caller's W3C trace context; the events a call records carry the span's
// traceparent. Without it, or with a nil tp, calls are not traced and
// events carry the caller's traceparent header as it came.
func WithTracing(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracerProvider = tp }
}

// CorrelationHeader carries the correlation id of a request: a client may
// set it to tie its calls together; otherwise the server makes one. Every
// event a request causes carries it, and the response echoes it.
const CorrelationHeader = "X-Correlation-Id"

// traceParent matches a W3C trace context traceparent header.
var traceParent = regexp.MustCompile(`^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)

// traceInterceptor puts the request's correlation id and W3C traceparent in
// the context, where events.Store.Append picks them up. The traceparent is
// the server span's when the call is traced, else the request's header.
func traceInterceptor() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			corr := req.Header().Get(CorrelationHeader)
			if corr == "" || len(corr) > 128 {
				corr = uuid.NewString()
			}
			tp := events.SpanTraceParent(ctx)
			if tp == "" {
				tp = req.Header().Get("traceparent")
				if !traceParent.MatchString(tp) {
					tp = "" // never propagate a malformed trace context
				}
			}
			ctx = events.WithTrace(ctx, events.Trace{CorrelationID: corr, TraceParent: tp})
			res, err := next(ctx, req)
			if res != nil {
				res.Header().Set(CorrelationHeader, corr)
			}
			return res, err
		}
	}
}

// errorInterceptor makes sure no error that escapes a handler carries
// internals: anything that is not already a *connect.Error is logged and
// replaced by a bare code. It covers streaming handlers too (a tail, a
// rebuild's progress), whose errors end the stream the same way.
func errorInterceptor(logger *slog.Logger) connect.Interceptor { return errorHygiene{logger} }

type errorHygiene struct{ logger *slog.Logger }

// clean returns err if it is a *connect.Error, else its mapping by Error.
func (e errorHygiene) clean(ctx context.Context, procedure string, err error) error {
	var ce *connect.Error
	if err == nil || errors.As(err, &ce) {
		return err
	}
	return Error(ctx, e.logger, procedure, err)
}

func (e errorHygiene) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		res, err := next(ctx, req)
		if err != nil {
			return nil, e.clean(ctx, req.Spec().Procedure, err)
		}
		return res, nil
	}
}

func (errorHygiene) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (e errorHygiene) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return e.clean(ctx, conn.Spec().Procedure, next(ctx, conn))
	}
}

// VersionMismatchError reports a command whose expected_version is not the
// aggregate's current version. [Error] returns it as Aborted.
type VersionMismatchError struct {
	Aggregate         string // "user", "wallet", ...
	Expected, Current int64
}

func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("%s is at version %d, not the expected %d", e.Aggregate, e.Current, e.Expected)
}

// InvalidFieldError is invalid input that the declarative rules in the
// schemas cannot catch. [Error] returns it as InvalidArgument with a field
// violation, like the declarative rules.
type InvalidFieldError struct {
	Field, Rule, Message string
}

func (e *InvalidFieldError) Error() string { return e.Field + ": " + e.Message }

// PeerError is a failed call to another service. [Error] returns
// Unavailable when the peer is unavailable (or the call timed out) and
// Internal otherwise, and never passes the peer's message on.
type PeerError struct {
	Peer string // the service called: "risk"
	Err  error
}

func (e *PeerError) Error() string { return fmt.Sprintf("%s: %v", e.Peer, e.Err) }
func (e *PeerError) Unwrap() error { return e.Err }

// DeniedError is the risk service's refusal of a password check (a login,
// or the current password of a change; see services/internal/riskcheck).
// [Error] returns it as risk's answer to a login: PermissionDenied for a
// locked account, ResourceExhausted for a busy account or a throttled
// address, both with RetryAfter (see [RetryLater]). Neither says whether
// the account exists: risk locks and throttles emails whether or not they
// name a user.
type DeniedError struct {
	Locked     bool // the account is locked (else busy, or the address throttled)
	RetryAfter time.Duration
}

func (e *DeniedError) Error() string {
	if e.Locked {
		return "too many failed logins: the account is locked for now; retry later"
	}
	return "too many login attempts; retry later"
}

// RetryLater returns an error of code (PermissionDenied,
// ResourceExhausted) telling the client when to try again: a
// google.rpc.RetryInfo detail and a Retry-After header, both in whole
// seconds, at least one.
func RetryLater(code connect.Code, message string, after time.Duration) *connect.Error {
	secs := max(int64((after+time.Second-1)/time.Second), 1)
	err := connect.NewError(code, errors.New(message))
	if detail, derr := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Duration(secs) * time.Second)}); derr == nil {
		err.AddDetail(detail)
	}
	err.Meta().Set("Retry-After", strconv.FormatInt(secs, 10))
	return err
}

// Error maps an error that no service-specific case matched: the shared
// domain errors above (a peer's failure, risk's refusal included), a
// min_position not applied in time (Unavailable) or
// on a stream the service does not project (InvalidArgument), a
// concurrency conflict (Aborted), an unreachable database (Unavailable), a
// cancelled request (Canceled, DeadlineExceeded) and anything else
// (Internal). It logs what it does not recognise and never puts a cause's
// internals into the message the client sees.
func Error(ctx context.Context, logger *slog.Logger, procedure string, err error) *connect.Error {
	var (
		mismatch     *VersionMismatchError
		field        *InvalidFieldError
		notApplied   *projections.NotAppliedError
		notProjected *projections.StreamNotProjectedError
		unpublished  *projections.UnpublishedPositionError
		peer         *PeerError
		denied       *DeniedError
	)
	switch {
	case errors.As(err, &denied):
		code := connect.CodeResourceExhausted
		if denied.Locked {
			code = connect.CodePermissionDenied
		}
		return RetryLater(code, denied.Error(), denied.RetryAfter)
	case errors.As(err, &peer):
		code := connect.CodeOf(peer.Err)
		if code == connect.CodeUnavailable || code == connect.CodeDeadlineExceeded || code == connect.CodeCanceled {
			logger.WarnContext(ctx, "a peer service is unavailable", "procedure", procedure, "peer", peer.Peer, "err", peer.Err)
			return connect.NewError(connect.CodeUnavailable, fmt.Errorf("the %s service is unavailable; retry later", peer.Peer))
		}
		logger.ErrorContext(ctx, "a peer service failed", "procedure", procedure, "peer", peer.Peer, "err", peer.Err)
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	case errors.As(err, &mismatch):
		return connect.NewError(connect.CodeAborted, fmt.Errorf("%w; reload it and retry", mismatch))
	case errors.As(err, &field):
		return FieldError(field.Field, field.Rule, field.Message)
	case errors.As(err, &notApplied):
		logger.InfoContext(ctx, "min_position not applied in time", "procedure", procedure, "position", notApplied.Position.String())
		return connect.NewError(connect.CodeUnavailable, notApplied)
	case errors.As(err, &notProjected):
		return FieldError("min_position.stream", "min_position.stream.projected", notProjected.Error())
	case errors.As(err, &unpublished):
		return FieldError("min_position.sequence", "min_position.sequence.published", unpublished.Error())
	case errors.Is(err, events.ErrConcurrency):
		return connect.NewError(connect.CodeAborted, errors.New("the resource changed concurrently; reload it and retry"))
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, errors.New("request canceled"))
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("request deadline exceeded"))
	case pg.IsUnavailable(err):
		logger.WarnContext(ctx, "database unavailable", "procedure", procedure, "err", err)
		return connect.NewError(connect.CodeUnavailable, errors.New("the service's database is unavailable; retry later"))
	}
	logger.ErrorContext(ctx, "internal error", "procedure", procedure, "err", err)
	return connect.NewError(connect.CodeInternal, errors.New("internal error"))
}

// FieldError returns an InvalidArgument error for a rule protovalidate
// cannot express (a common password, an amount that would overflow). It
// carries the same buf.validate.Violations detail as declarative rules, so
// clients read field errors one way. A nested field is written with dots:
// "min_position.stream".
func FieldError(field, ruleID, message string) *connect.Error {
	err := connect.NewError(connect.CodeInvalidArgument, errors.New(field+": "+message))
	var path []*validatepb.FieldPathElement
	for name := range strings.SplitSeq(field, ".") {
		path = append(path, &validatepb.FieldPathElement{FieldName: proto.String(name)})
	}
	detail, derr := connect.NewErrorDetail(&validatepb.Violations{Violations: []*validatepb.Violation{{
		Field:   &validatepb.FieldPath{Elements: path},
		RuleId:  proto.String(ruleID),
		Message: proto.String(message),
	}}})
	if derr == nil {
		err.AddDetail(detail)
	}
	return err
}

// PositionToProto returns p for a write response; nil, leaving the field
// unset, for the zero Position.
func PositionToProto(p events.Position) *commonv1.Position {
	if p.IsZero() {
		return nil
	}
	return &commonv1.Position{Stream: p.Stream, Sequence: p.Sequence}
}

// PositionFromProto returns a request's min_position; the zero Position
// when it is unset.
func PositionFromProto(p *commonv1.Position) events.Position {
	return events.Position{Stream: p.GetStream(), Sequence: p.GetSequence()}
}
