package auth

import (
	"fmt"
	"slices"
	"strings"
)

// scope is which users a policy lets in.
type scope int

const (
	scopeNone   scope = iota // no user token
	scopeTenant              // any user of the request's tenant
	scopeOwner               // the user named by the request, or a tenant admin
)

// Policy says who may call a procedure. Build one from the predefined
// policies; a zero Policy lets nobody in.
type Policy struct {
	public   bool
	operator bool
	services []string // the services whose service tokens it accepts
	users    scope
	roles    []string // with users: the caller needs one of them
}

// The policies services declare.
var (
	// Public procedures need no credential (registration, login).
	Public = Policy{public: true}
	// Operator procedures are the platform operator's only (the admin
	// APIs, creating and listing tenants): they cross tenants.
	Operator = Policy{operator: true}
	// Tenant procedures let in any user of the tenant the request names:
	// a request whose tenant_id is not the token's tid is NotFound.
	Tenant = Policy{users: scopeTenant}
	// Owner procedures act on one user's data: the user the request's
	// user_id names, or an admin of its tenant. Another user's id is
	// NotFound, as is another tenant's.
	Owner = Policy{users: scopeOwner}
	// Admin procedures let in the admins of the request's tenant only; other
	// users of the tenant are PermissionDenied.
	Admin = Tenant.WithRoles(RoleAdmin)
)

// Services returns the policy of procedures that only the named services
// call, each with its own service token: a service token of any other
// service is PermissionDenied. Name exactly the services that call the
// procedure: a service's key must open nothing it does not use.
func Services(names ...string) Policy { return Policy{}.OrServices(names...) }

// WithRoles returns p letting in only users who carry one of roles.
func (p Policy) WithRoles(roles ...string) Policy {
	p.roles = slices.Concat(p.roles, roles)
	return p
}

// OrOperator returns p also letting in the platform operator.
func (p Policy) OrOperator() Policy {
	p.operator = true
	return p
}

// OrServices returns p also letting in the named services (see
// [Services]). Services are not scoped to a tenant or user: they act on
// behalf of the users they serve.
func (p Policy) OrServices(names ...string) Policy {
	p.services = slices.Concat(p.services, names)
	return p
}

// AllowsOperator reports whether the operator token opens p.
func (p Policy) AllowsOperator() bool { return p.operator }

// Services returns the services whose service tokens open p.
func (p Policy) Services() []string { return slices.Clone(p.services) }

// allowsService reports whether the service tokens of service open p.
func (p Policy) allowsService(service string) bool { return slices.Contains(p.services, service) }

// AllowsUsers reports whether users' access tokens open p (given the
// roles it requires).
func (p Policy) AllowsUsers() bool { return p.users != scopeNone }

// IsPublic reports whether p needs no credential.
func (p Policy) IsPublic() bool { return p.public }

// Roles returns the roles p requires of users, any one of them; none when
// any user of the tenant qualifies.
func (p Policy) Roles() []string { return slices.Clone(p.roles) }

// String describes p, for errors and docs.
func (p Policy) String() string {
	var parts []string
	if p.public {
		parts = append(parts, "public")
	}
	if p.operator {
		parts = append(parts, "operator")
	}
	switch p.users {
	case scopeTenant:
		parts = append(parts, "tenant users")
	case scopeOwner:
		parts = append(parts, "owner or tenant admin")
	}
	if len(p.roles) > 0 {
		parts = append(parts, "roles "+strings.Join(p.roles, "|"))
	}
	if len(p.services) > 0 {
		parts = append(parts, "services "+strings.Join(p.services, "|"))
	}
	if len(parts) == 0 {
		return "nobody"
	}
	return strings.Join(parts, ", ")
}

// Policies maps a Connect procedure ("/authms.wallet.v1.WalletService/GetWallet")
// to its policy. Every service declares one for each procedure it serves.
type Policies map[string]Policy

// procedureName checks the shape of a procedure name.
func procedureName(procedure string) error {
	svc, method, ok := strings.Cut(strings.TrimPrefix(procedure, "/"), "/")
	if !strings.HasPrefix(procedure, "/") || !ok || svc == "" || method == "" || strings.Contains(method, "/") {
		return fmt.Errorf("procedure %q: want /package.Service/Method", procedure)
	}
	return nil
}
