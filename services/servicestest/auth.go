package servicestest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/authms/authms/services"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/auth/authtest"
)

// Token returns a valid access token of user userID in tenant tenantID,
// with roles and a fresh session id, signed with the test key.
func (e *Env) Token(tb testing.TB, tenantID, userID string, roles ...string) string {
	tb.Helper()
	return e.Signer.UserToken(tb, tenantID, userID, roles...)
}

// ServiceToken returns a valid service token of service name, whichever
// services run: session's is signed with Env.Signer's key, as session
// signs its own with its access-token keys; any other service's with a
// test service key of that service the platform trusts. Procedures let the
// token in only if their policy names the service.
func (e *Env) ServiceToken(tb testing.TB, name string) string {
	tb.Helper()
	if name == auth.SessionService {
		return e.Signer.ServiceToken(tb, name)
	}
	s, ok := e.serviceSigners[name]
	if !ok {
		tb.Fatalf("servicestest: no service %q", name)
	}
	token, err := s.Token(tb.Context())
	if err != nil {
		tb.Fatalf("servicestest: %v", err)
	}
	return token
}

// newServiceSigners gives e a service-token signer, with a random key, of
// every service but session, and returns their keys for the platform.
func (e *Env) newServiceSigners(now func() time.Time) (auth.ServiceKeys, error) {
	e.serviceSigners = map[string]*auth.ServiceSigner{}
	keys := auth.ServiceKeys{}
	for _, name := range services.Names() {
		if name == auth.SessionService {
			continue
		}
		seed := make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, err
		}
		s, err := auth.NewServiceSigner(auth.ServiceSignerConfig{Service: name, Seed: seed, Now: now})
		if err != nil {
			return nil, err
		}
		kid, key := s.Key()
		e.serviceSigners[name], keys[kid] = s, key
	}
	return keys, nil
}

// Bearer makes a client send token in its Authorization header.
func Bearer(token string) connect.ClientOption {
	return connect.WithInterceptors(bearer(func(connect.AnyRequest) string { return token }))
}

// Operator makes a client send the operator token.
func (e *Env) Operator() connect.ClientOption { return Bearer(e.OperatorToken) }

// Impersonate makes a client act, for every request, as its rightful
// caller under the procedure's declared policy: the operator token for
// operator procedures (admin APIs, CreateTenant, ListTenants,
// SuspendTenant, ReactivateTenant), a service
// token of the first service the policy names for service-only ones, and
// otherwise an access token of the user
// the request names (its tenant_id and user_id; random ones when it names
// none), with roles and the roles the policy requires. Tests of a
// service's behaviour use it; the tests of authentication itself mint
// their tokens with [Env.Token].
func (e *Env) Impersonate(roles ...string) connect.ClientOption {
	return connect.WithInterceptors(bearer(func(req connect.AnyRequest) string {
		policy, _ := e.Platform.Policy(req.Spec().Procedure)
		switch {
		case policy.AllowsOperator():
			return e.OperatorToken
		case len(policy.Services()) > 0 && !policy.AllowsUsers():
			return e.ServiceToken(e.tb, policy.Services()[0])
		}
		var tenant, user string
		if m, ok := req.Any().(proto.Message); ok {
			tenant, user = field(m, "tenant_id"), field(m, "user_id")
		}
		// Ids that are not UUIDs cannot be in a token: random ones let the
		// request reach validation, which refuses them.
		if uuid.Validate(tenant) != nil {
			tenant = uuid.NewString()
		}
		if uuid.Validate(user) != nil {
			user = uuid.NewString()
		}
		return e.Signer.Token(e.tb, authtest.Claims{Subject: user, TenantID: tenant, Roles: append(policy.Roles(), roles...)})
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
