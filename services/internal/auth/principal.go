package auth

import (
	"context"
	"slices"
	"strings"
)

// Role names the platform gives meaning to.
const (
	// RoleAdmin is a tenant administrator: it may read and manage any user
	// of its own tenant.
	RoleAdmin = "admin"
	// RoleService marks the service tokens authms' own services call each
	// other with.
	RoleService = "service"
)

// SessionService is the service whose access-token keys ([VerifierConfig.Keys])
// also sign its own service tokens; every other service signs its own with
// its service key ([ServiceKeys]).
const SessionService = "session"

// servicePrefix starts the subject of a service principal.
const servicePrefix = "service:"

// OperatorSubject is the subject of the operator principal.
const OperatorSubject = "operator"

// Principal is the authenticated caller of an API.
type Principal struct {
	// Subject is the user id, "service:<name>" for a service, or
	// "operator" for the platform operator.
	Subject string
	// TenantID is the user's tenant; "" for a service or the operator.
	TenantID string
	// SessionID is the login session the access token belongs to; "" for a
	// service or the operator.
	SessionID string
	// Roles are the role names the token carries.
	Roles []string
}

// HasRole reports whether p carries role.
func (p Principal) HasRole(role string) bool { return slices.Contains(p.Roles, role) }

// IsService reports whether p is one of authms' own services.
func (p Principal) IsService() bool {
	return strings.HasPrefix(p.Subject, servicePrefix) && p.TenantID == "" && p.HasRole(RoleService)
}

// Service returns the name of the service p is; "" when p is no service.
func (p Principal) Service() string {
	if !p.IsService() {
		return ""
	}
	return strings.TrimPrefix(p.Subject, servicePrefix)
}

// IsOperator reports whether p is the platform operator (the operator
// token).
func (p Principal) IsOperator() bool {
	return p.Subject == OperatorSubject && p.TenantID == "" && len(p.Roles) == 0
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p. The interceptor calls it; tests of
// handlers may too.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the caller the interceptor authenticated; false for
// a public procedure's anonymous caller.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
