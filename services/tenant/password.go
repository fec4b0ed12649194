package tenant

import (
	"context"
	"unicode/utf8"

	"github.com/google/uuid"

	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/services/internal/breached"
	"github.com/authms/authms/services/internal/rpc"
	"github.com/authms/authms/services/tenant/store"
)

// violations returns how password breaks policy, in the enum's order.
func violations(list *breached.List, policy *tenantv1.PasswordPolicy, password string) []tenantv1.PasswordViolation {
	var out []tenantv1.PasswordViolation
	if utf8.RuneCountInString(password) < int(policy.GetMinLength()) {
		out = append(out, tenantv1.PasswordViolation_PASSWORD_VIOLATION_TOO_SHORT)
	}
	if policy.GetCheckBreached() && list.Contains(password) {
		out = append(out, tenantv1.PasswordViolation_PASSWORD_VIOLATION_BREACHED)
	}
	return out
}

// checkPassword checks a password against the tenant's password policy.
func (s *Service) checkPassword(ctx context.Context, req *tenantv1.CheckPasswordRequest) (*tenantv1.CheckPasswordResponse, error) {
	id, err := parseTenantID(req.GetTenantId())
	if err != nil {
		return nil, err
	}
	t, err := findTenant(ctx, store.New(s.deps.Pool), id)
	if err != nil {
		return nil, err
	}
	policy := passwordPolicyOf(t)
	return &tenantv1.CheckPasswordResponse{
		Violations: violations(s.breached, policy, req.GetPassword()),
		Policy:     policy,
		Version:    t.Version,
	}, nil
}

// parseTenantID parses a tenant id that the API schema declares a UUID.
func parseTenantID(s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, &rpc.InvalidFieldError{Field: "tenant_id", Rule: "string.uuid", Message: "must be a UUID"}
	}
	return id, nil
}
