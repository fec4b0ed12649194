package tenant

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/services/internal/rpc"
	"github.com/authms/authms/services/tenant/store"
)

// breachedFile is the breached-password list the service ships: lower
// case, sorted, one a line, "#" lines are comments. breached_gen.go makes
// it and says what it holds.
//
//go:embed breached_passwords.txt
var breachedFile []byte

// breachedList answers whether a password is on the shipped list.
type breachedList struct {
	sorted []string
}

// loadBreached parses the embedded list and checks that it is sorted, so a
// hand edit cannot silently break the binary search.
func loadBreached() (*breachedList, error) {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(breachedFile))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("breached-password list: %w", err)
	}
	if !slices.IsSorted(out) {
		return nil, fmt.Errorf("breached-password list is not sorted; regenerate it with go generate")
	}
	return &breachedList{sorted: out}, nil
}

// contains reports whether password is on the list, ignoring case.
func (l *breachedList) contains(password string) bool {
	_, found := slices.BinarySearch(l.sorted, strings.ToLower(password))
	return found
}

// violations returns how password breaks policy, in the enum's order.
func (l *breachedList) violations(policy *tenantv1.PasswordPolicy, password string) []tenantv1.PasswordViolation {
	var out []tenantv1.PasswordViolation
	if utf8.RuneCountInString(password) < int(policy.GetMinLength()) {
		out = append(out, tenantv1.PasswordViolation_PASSWORD_VIOLATION_TOO_SHORT)
	}
	if policy.GetCheckBreached() && l.contains(password) {
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
		Violations: s.breached.violations(policy, req.GetPassword()),
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
