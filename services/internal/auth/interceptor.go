package auth

import (
	"cmp"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MinOperatorTokenLength is the shortest operator token accepted: the
// standard base64 of 32 random bytes is 44 characters.
const MinOperatorTokenLength = 32

// Config configures an [Authenticator].
type Config struct {
	// Verifier verifies access tokens. Required.
	Verifier *Verifier
	// Revocations refuses the tokens of revoked sessions; nil: none are.
	Revocations *Revocations
	// OperatorToken is the platform operator's secret; "" disables it.
	OperatorToken string
	Logger        *slog.Logger
}

// Authenticator authenticates and authorises API calls against the
// policies services declare. Its two interceptors go around protovalidate:
// [Authenticator.Authenticate] before it (no credential, no validation
// feedback), [Authenticator.Authorize] after it (scoping reads the
// request's validated ids).
type Authenticator struct {
	verifier    *Verifier
	revocations *Revocations
	operator    []byte
	logger      *slog.Logger

	mu       sync.RWMutex
	policies map[string]Policy
}

// New returns an Authenticator with no policies: every procedure refuses
// every call until its service declares a policy.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Verifier == nil {
		return nil, errors.New("auth: a verifier is required")
	}
	if cfg.OperatorToken != "" && len(cfg.OperatorToken) < MinOperatorTokenLength {
		return nil, fmt.Errorf("auth: the operator token must be at least %d characters (e.g. `openssl rand -base64 32`)", MinOperatorTokenLength)
	}
	a := &Authenticator{
		verifier:    cfg.Verifier,
		revocations: cfg.Revocations,
		logger:      cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)),
		policies:    map[string]Policy{},
	}
	if cfg.OperatorToken != "" {
		a.operator = []byte(cfg.OperatorToken)
	}
	return a, nil
}

// Declare adds policies. A procedure declared twice, or a malformed
// procedure name, is an error.
func (a *Authenticator) Declare(policies Policies) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for proc, p := range policies {
		if err := procedureName(proc); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := a.policies[proc]; dup {
			errs = append(errs, fmt.Errorf("procedure %s: policy declared twice", proc))
			continue
		}
		a.policies[proc] = p
	}
	return errors.Join(errs...)
}

// Policy returns the policy declared for procedure.
func (a *Authenticator) Policy(procedure string) (Policy, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	p, ok := a.policies[procedure]
	return p, ok
}

// Errors clients see. They never say which check failed.
func errMissing() error {
	return unauthenticated(errors.New("missing bearer token"))
}

func errInvalid() error { return unauthenticated(ErrInvalidToken) }

func unauthenticated(cause error) error {
	err := connect.NewError(connect.CodeUnauthenticated, cause)
	err.Meta().Set("WWW-Authenticate", `Bearer realm="authms"`)
	return err
}

func errDenied() error {
	return connect.NewError(connect.CodePermissionDenied, errors.New("permission denied"))
}

func errNotFound() error {
	return connect.NewError(connect.CodeNotFound, errors.New("not found"))
}

// authenticate checks the credential in header against the procedure's
// policy and returns ctx carrying the principal.
func (a *Authenticator) authenticate(ctx context.Context, procedure string, header interface{ Values(string) []string }) (context.Context, error) {
	policy, ok := a.Policy(procedure)
	if !ok {
		a.logger.ErrorContext(ctx, "procedure has no access policy; refused", "procedure", procedure)
		return nil, errDenied()
	}
	if policy.public {
		return ctx, nil
	}
	token, err := bearer(header.Values("Authorization"))
	if err != nil {
		return nil, err
	}
	if a.operator != nil && subtle.ConstantTimeCompare([]byte(token), a.operator) == 1 {
		if !policy.operator {
			a.logger.WarnContext(ctx, "operator token refused: not an operator procedure", "procedure", procedure)
			return nil, errDenied()
		}
		return WithPrincipal(ctx, Principal{Subject: OperatorSubject}), nil
	}
	p, err := a.verifier.Verify(ctx, token)
	if err != nil {
		a.logger.DebugContext(ctx, "token refused", "procedure", procedure, "err", err)
		return nil, errInvalid()
	}
	if p.SessionID != "" && a.revocations.Revoked(p.SessionID) {
		a.logger.DebugContext(ctx, "token refused: session revoked", "procedure", procedure, "session_id", p.SessionID)
		return nil, errInvalid()
	}
	switch {
	case p.IsService():
		// Each service is let in only where its policy names it: one
		// service's key is no credential for another's procedures.
		if !policy.allowsService(p.Service()) {
			a.logger.WarnContext(ctx, "service token refused: the service is not a declared caller", "procedure", procedure, "service", p.Service())
			return nil, errDenied()
		}
	case policy.users == scopeNone:
		return nil, errDenied()
	}
	// Roles are checked by authorize, after the tenant: a request for
	// another tenant is NotFound whatever the caller's roles.
	return WithPrincipal(ctx, p), nil
}

func hasAny(p Principal, roles []string) bool {
	for _, r := range roles {
		if p.HasRole(r) {
			return true
		}
	}
	return false
}

// bearer returns the token of the one Authorization header.
func bearer(values []string) (string, error) {
	if len(values) == 0 {
		return "", errMissing()
	}
	if len(values) > 1 {
		return "", errInvalid()
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(values[0]), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", errInvalid()
	}
	return token, nil
}

// authorize scopes a user's request to its tenant and, for owner
// procedures, to the user: the request's tenant_id must be the token's
// tid, and its user_id the token's sub unless the user is a tenant admin.
// Anything else is NotFound. Then the user must carry one of the
// policy's roles, if it names any (PermissionDenied). Services and the
// operator are not scoped;
// handlers of procedures whose requests carry no tenant_id scope
// themselves with [FromContext].
func (a *Authenticator) authorize(ctx context.Context, procedure string, msg any) error {
	p, ok := FromContext(ctx)
	if !ok || p.IsService() || p.IsOperator() {
		return nil
	}
	policy, _ := a.Policy(procedure)
	m, ok := msg.(proto.Message)
	if !ok {
		return errNotFound() // no message to scope: fail closed
	}
	r := m.ProtoReflect()
	if v, ok := stringField(r, "tenant_id"); ok && v != p.TenantID {
		a.logger.DebugContext(ctx, "request for another tenant", "procedure", procedure, "tenant_id", p.TenantID)
		return errNotFound()
	}
	if policy.users == scopeOwner && !p.HasRole(RoleAdmin) {
		if v, ok := stringField(r, "user_id"); !ok || v != p.Subject {
			a.logger.DebugContext(ctx, "request for another user's data", "procedure", procedure, "user_id", p.Subject)
			return errNotFound()
		}
	}
	if len(policy.roles) > 0 && !hasAny(p, policy.roles) {
		return errDenied()
	}
	return nil
}

// stringField returns the value of a top-level string field.
func stringField(m protoreflect.Message, name protoreflect.Name) (string, bool) {
	fd := m.Descriptor().Fields().ByName(name)
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() || fd.IsMap() {
		return "", false
	}
	return m.Get(fd).String(), true
}

// Authenticate returns the interceptor that authenticates every call
// against its procedure's policy. Mount it before validation.
func (a *Authenticator) Authenticate() connect.Interceptor { return authenticator{a} }

// Authorize returns the interceptor that scopes every user's request to
// its tenant and user. Mount it after validation.
func (a *Authenticator) Authorize() connect.Interceptor { return authorizer{a} }

type authenticator struct{ a *Authenticator }

func (i authenticator) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, err := i.a.authenticate(ctx, req.Spec().Procedure, req.Header())
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (authenticator) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i authenticator) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := i.a.authenticate(ctx, conn.Spec().Procedure, conn.RequestHeader())
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

type authorizer struct{ a *Authenticator }

func (i authorizer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		if err := i.a.authorize(ctx, req.Spec().Procedure, req.Any()); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (authorizer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i authorizer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(ctx, &scopedConn{StreamingHandlerConn: conn, ctx: ctx, a: i.a})
	}
}

// scopedConn authorises every message a streaming handler receives.
type scopedConn struct {
	connect.StreamingHandlerConn
	ctx context.Context //nolint:containedctx // the call's context, for the lifetime of the call only
	a   *Authenticator
}

func (c *scopedConn) Receive(msg any) error {
	if err := c.StreamingHandlerConn.Receive(msg); err != nil {
		return err
	}
	return c.a.authorize(c.ctx, c.Spec().Procedure, msg)
}
