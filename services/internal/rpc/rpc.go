// Package rpc holds the Connect plumbing every service's API shares:
// declarative input validation, mapping of errors that are not domain
// errors, and the handler options that combine them.
package rpc

import (
	"context"
	"errors"
	"log/slog"
	"regexp"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"connectrpc.com/validate"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/pg"
)

// HandlerOptions returns the options every handler is mounted with:
// protovalidate rules from schemas/ (bad input is InvalidArgument with field
// violations, before any handler code runs) and error hygiene.
func HandlerOptions(logger *slog.Logger) ([]connect.HandlerOption, error) {
	return []connect.HandlerOption{
		connect.WithInterceptors(traceInterceptor(), validate.NewInterceptor(), errorInterceptor(logger)),
	}, nil
}

// CorrelationHeader carries the correlation id of a request: a client may
// set it to tie its calls together; otherwise the server makes one. Every
// event a request causes carries it, and the response echoes it.
const CorrelationHeader = "X-Correlation-Id"

// traceParent matches a W3C trace context traceparent header.
var traceParent = regexp.MustCompile(`^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)

// traceInterceptor puts the request's correlation id and W3C traceparent in
// the context, where events.Store.Append picks them up.
func traceInterceptor() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			corr := req.Header().Get(CorrelationHeader)
			if corr == "" || len(corr) > 128 {
				corr = uuid.NewString()
			}
			tp := req.Header().Get("traceparent")
			if !traceParent.MatchString(tp) {
				tp = "" // never propagate a malformed trace context
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
// replaced by a bare code.
func errorInterceptor(logger *slog.Logger) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			res, err := next(ctx, req)
			if err == nil {
				return res, nil
			}
			var ce *connect.Error
			if errors.As(err, &ce) {
				return nil, err
			}
			return nil, Internal(ctx, logger, req.Spec().Procedure, err)
		}
	}
}

// Internal maps an error that is not a domain error: a concurrency conflict
// is Aborted, an unreachable database Unavailable, a cancelled request
// Canceled or DeadlineExceeded, anything else Internal. It logs the cause
// and never puts it into the message the client sees.
func Internal(ctx context.Context, logger *slog.Logger, procedure string, err error) *connect.Error {
	switch {
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
// clients read field errors one way.
func FieldError(field, ruleID, message string) *connect.Error {
	err := connect.NewError(connect.CodeInvalidArgument, errors.New(field+": "+message))
	detail, derr := connect.NewErrorDetail(&validatepb.Violations{Violations: []*validatepb.Violation{{
		Field:   &validatepb.FieldPath{Elements: []*validatepb.FieldPathElement{{FieldName: proto.String(field)}}},
		RuleId:  proto.String(ruleID),
		Message: proto.String(message),
	}}})
	if derr == nil {
		err.AddDetail(detail)
	}
	return err
}
