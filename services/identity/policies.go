package identity

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/authms/authms/events"
	"github.com/authms/authms/projections"
	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/services/identity/store"
	"github.com/authms/authms/services/internal/rpc"
	"github.com/authms/authms/services/internal/tenantevents"
)

// Tenant subjects the password policy projector consumes.
const (
	subjectPasswordPolicyChanged = "tenant.tenant.password_policy_changed"
)

// maxHistory is the largest history a tenant's password policy may ask for
// (the tenant API's limit); identity keeps that many hashes per user.
const maxHistory = 24

// passwordPolicy rules the passwords a tenant's users set.
type passwordPolicy struct {
	minLength     int
	checkBreached bool
	historySize   int
}

// defaultPasswordPolicy applies to tenants whose policy identity has not
// projected (the tenant service's defaults).
var defaultPasswordPolicy = passwordPolicy{minLength: 12, checkBreached: true, historySize: 0}

// passwordPoliciesTable caches each tenant's password policy, guarded by
// the tenant aggregate's version.
var passwordPoliciesTable = projections.Table{
	Name:    "tenant_password_policies",
	Key:     []string{"tenant_id"},
	Columns: []string{"min_length", "check_breached", "history_size"},
}

// passwordPoliciesProjector keeps tenant_password_policies in step with
// the tenants' password policies (durable consumer
// "identity_tenant_password_policies"). It is a pure cache, rebuildable by
// replay.
func (s *Service) passwordPoliciesProjector() projections.Projector {
	return projections.Projector{
		Service: Name,
		Name:    "tenant_password_policies",
		Source:  "tenant",
		Handlers: map[string]projections.Apply{
			tenantevents.SubjectCreated:  cachePasswordPolicy,
			subjectPasswordPolicyChanged: cachePasswordPolicy,
		},
		Rebuild: &projections.Rebuild{Tables: []string{passwordPoliciesTable.Name}},
	}
}

// passwordPolicyPart reads a tenant's password policy from the tenant events that carry it.
var passwordPolicyPart = tenantevents.Part[*tenantv1.PasswordPolicyChanged, *tenantv1.PasswordPolicy]{
	Subject:     subjectPasswordPolicyChanged,
	New:         func() *tenantv1.PasswordPolicyChanged { return new(tenantv1.PasswordPolicyChanged) },
	FromCreated: (*tenantv1.TenantCreated).GetPasswordPolicy,
	FromChange:  (*tenantv1.PasswordPolicyChanged).GetPolicy,
}

// cachePasswordPolicy upserts the password policy a tenant event carries.
func cachePasswordPolicy(ctx context.Context, tx pgx.Tx, ev events.Event) error {
	tenantID, policy, err := passwordPolicyPart.Decode(ev)
	if err != nil {
		return err
	}
	if policy.GetMinLength() < 1 || policy.GetHistorySize() < 0 || policy.GetHistorySize() > maxHistory {
		return events.Permanent(fmt.Errorf("event %s: invalid password policy %v", ev.ID, policy))
	}
	_, err = passwordPoliciesTable.Upsert(ctx, tx, tenantID, policy.GetMinLength(), policy.GetCheckBreached(), policy.GetHistorySize(), ev.Version)
	return err
}

// passwordPolicyOf returns the tenant's cached policy, or the default.
func passwordPolicyOf(ctx context.Context, q *store.Queries, tenantID uuid.UUID) (passwordPolicy, error) {
	row, err := q.GetTenantPasswordPolicy(ctx, tenantID)
	if errors.Is(err, pgx.ErrNoRows) {
		return defaultPasswordPolicy, nil
	}
	if err != nil {
		return passwordPolicy{}, fmt.Errorf("password policy of tenant %s: %w", tenantID, err)
	}
	return passwordPolicy{minLength: int(row.MinLength), checkBreached: row.CheckBreached, historySize: int(row.HistorySize)}, nil
}

// newPassword is a password a user is about to set.
type newPassword struct {
	field          string // the request field, for errors: "password", "new_password"
	password       string
	tenantID       uuid.UUID
	userID         uuid.UUID // uuid.Nil for a new user: no history
	canonicalEmail string
}

// checkNewPassword applies the tenant's password policy and identity's own
// rules to p: length, the breached list, the common list and the email
// (checkPassword), and the user's recent passwords. The history check
// verifies the password against each kept hash, so it costs one hash per
// entry.
func (s *Service) checkNewPassword(ctx context.Context, p newPassword) error {
	q := store.New(s.deps.Pool)
	policy, err := passwordPolicyOf(ctx, q, p.tenantID)
	if err != nil {
		return err
	}
	if n := utf8.RuneCountInString(p.password); n < policy.minLength {
		return &rpc.InvalidFieldError{Field: p.field, Rule: "password.min_length",
			Message: fmt.Sprintf("must be at least %d characters long", policy.minLength)}
	}
	if policy.checkBreached && s.breached.Contains(p.password) {
		return &rpc.InvalidFieldError{Field: p.field, Rule: "password.breached", Message: "appears in known data breaches; choose another password"}
	}
	if err := checkPassword(p.password, p.canonicalEmail); err != nil {
		var fe *rpc.InvalidFieldError
		if errors.As(err, &fe) {
			fe.Field = p.field
		}
		return err
	}
	if policy.historySize == 0 || p.userID == uuid.Nil {
		return nil
	}
	recent, err := q.RecentPasswordHashes(ctx, store.RecentPasswordHashesParams{
		TenantID: p.tenantID, UserID: p.userID, MaxRows: int32(policy.historySize),
	})
	if err != nil {
		return fmt.Errorf("password history of user %s: %w", p.userID, err)
	}
	for _, h := range recent {
		same, err := s.hasher.verify(ctx, h, p.password)
		if err != nil {
			return fmt.Errorf("check password history of user %s: %w", p.userID, err)
		}
		if same {
			return &rpc.InvalidFieldError{Field: p.field, Rule: "password.history",
				Message: fmt.Sprintf("must differ from your last %d passwords", policy.historySize)}
		}
	}
	return nil
}

// recordPassword stores hash as the user's password and appends it to the
// history, which keeps maxHistory entries.
func recordPassword(ctx context.Context, q *store.Queries, tenantID, userID uuid.UUID, hash string, now time.Time) error {
	if err := q.InsertPasswordHistory(ctx, store.InsertPasswordHistoryParams{
		UserID: userID, TenantID: tenantID, PasswordHash: hash, CreatedAt: now,
	}); err != nil {
		return fmt.Errorf("password history of user %s: %w", userID, err)
	}
	if err := q.PrunePasswordHistory(ctx, store.PrunePasswordHistoryParams{UserID: userID, Keep: maxHistory}); err != nil {
		return fmt.Errorf("prune password history of user %s: %w", userID, err)
	}
	return nil
}
