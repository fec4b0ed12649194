package servicestest

import (
	"context"
	"net/http"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/authms/authms/services/internal/auth/authtest"
)

// Token returns a valid access token of user userID in tenant tenantID,
// with roles and a fresh session id, signed with the test key.
func (e *Env) Token(tb testing.TB, tenantID, userID string, roles ...string) string {
	tb.Helper()
	return e.Signer.UserToken(tb, tenantID, userID, roles...)
}

// ServiceToken returns a valid service token of service name.
func (e *Env) ServiceToken(tb testing.TB, name string) string {
	tb.Helper()
	return e.Signer.ServiceToken(tb, name)
}

// Bearer makes a client send token in its Authorization header.
func Bearer(token string) connect.ClientOption {
	return connect.WithInterceptors(bearer(func(connect.AnyRequest) string { return token }))
}

// Operator makes a client send the operator token.
func (e *Env) Operator() connect.ClientOption { return Bearer(e.OperatorToken) }

// Impersonate makes a client act, for every request, as the user the
// request names: a token for its tenant_id and user_id (a random user when
// it names none), with roles. A request that has no tenant_id field (the
// admin APIs, CreateTenant, ListTenants) goes with the operator token.
// Tests of a service's behaviour use it so every call is made by its
// rightful caller; the tests of authentication itself mint tokens with
// [Env.Token].
func (e *Env) Impersonate(roles ...string) connect.ClientOption {
	return connect.WithInterceptors(bearer(func(req connect.AnyRequest) string {
		m, ok := req.Any().(proto.Message)
		if !ok || m.ProtoReflect().Descriptor().Fields().ByName("tenant_id") == nil {
			return e.OperatorToken
		}
		// Ids that are not UUIDs cannot be in a token: a random one lets
		// the request reach validation, which refuses them.
		tenant, user := field(m, "tenant_id"), field(m, "user_id")
		if uuid.Validate(tenant) != nil {
			tenant = uuid.NewString()
		}
		if uuid.Validate(user) != nil {
			user = uuid.NewString()
		}
		return e.Signer.Token(e.tb, authtest.Claims{Subject: user, TenantID: tenant, Roles: roles})
	}))
}

func field(m proto.Message, name protoreflect.Name) string {
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName(name)
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() {
		return ""
	}
	return r.Get(fd).String()
}

// bearer is a client interceptor that sets the Authorization header.
type bearer func(connect.AnyRequest) string

func (b bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Authorization", "Bearer "+b(req))
		return next(ctx, req)
	}
}

func (b bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		return &bearerConn{StreamingClientConn: conn, b: b}
	}
}

func (bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// bearerConn sets the header from the first message sent, before the
// request headers leave.
type bearerConn struct {
	connect.StreamingClientConn
	b    bearer
	sent bool
}

func (c *bearerConn) Send(msg any) error {
	if !c.sent {
		c.sent = true
		c.RequestHeader().Set("Authorization", "Bearer "+c.b(streamRequest{msg: msg, header: c.RequestHeader()}))
	}
	return c.StreamingClientConn.Send(msg)
}

// streamRequest is the first message of a stream, seen as a request.
type streamRequest struct {
	connect.AnyRequest
	msg    any
	header http.Header
}

func (r streamRequest) Any() any            { return r.msg }
func (r streamRequest) Header() http.Header { return r.header }
