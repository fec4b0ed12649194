package risk

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"

	"github.com/google/uuid"

	"github.com/authms/authms/services/internal/clientip"
	"github.com/authms/authms/services/internal/email"
	"github.com/authms/authms/services/internal/rpc"
)

// keyEmailBlindIndex names the service's HMAC key for account keys.
const keyEmailBlindIndex = "email-blind-index"

// subject is what an attempt is about: a tenant's account and a client
// address, both as keys.
type subject struct {
	tenantID uuid.UUID
	account  []byte // HMAC-SHA256 of the tenant and the canonical email
	ip       string // the address, or the /64 of an IPv6 address
}

// accountID is the account aggregate's id.
func (s subject) accountID() string { return hex.EncodeToString(s.account) }

// ipID is the ip aggregate's id.
func (s subject) ipID() string { return s.tenantID.String() + "/" + s.ip }

// subjectOf keys a request's tenant, email and address.
func (s *Service) subjectOf(ctx context.Context, tenant, email, ip string) (subject, error) {
	tenantID, err := parseUUID("tenant_id", tenant)
	if err != nil {
		return subject{}, err
	}
	account, err := s.accountKey(ctx, tenantID, email)
	if err != nil {
		return subject{}, err
	}
	addr, err := addressKey(ip)
	if err != nil {
		return subject{}, err
	}
	return subject{tenantID: tenantID, account: account, ip: addr}, nil
}

// accountKey returns HMAC-SHA256("<tenant id>|<canonical email>"), with
// the canonical form every service shares (email.Canonical).
func (s *Service) accountKey(ctx context.Context, tenantID uuid.UUID, address string) ([]byte, error) {
	key, err := s.deps.Secrets.Key(ctx, keyEmailBlindIndex)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", keyEmailBlindIndex, err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(tenantID.String() + "|" + email.Canonical(address)))
	return mac.Sum(nil), nil
}

// addressKey returns the key of a client address (clientip.Network): the
// address itself, an IPv4-mapped IPv6 address as IPv4, and an IPv6 address
// as its /64.
func addressKey(ip string) (string, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "", &rpc.InvalidFieldError{Field: "ip", Rule: "string.ip", Message: "must be an IP address"}
	}
	return clientip.Network(a), nil
}

// parseUUID parses an id that the API schema declares a UUID.
func parseUUID(field, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, &rpc.InvalidFieldError{Field: field, Rule: "string.uuid", Message: "must be a UUID"}
	}
	return id, nil
}
