package tenant

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/pg"
	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/services/internal/rpc"
	"github.com/authms/authms/services/tenant/store"
)

// aggregateTenant is the tenant aggregate's type: its events are published
// as tenant.tenant.<event>.
const aggregateTenant = "tenant"

// Event names of the tenant aggregate.
const (
	eventCreated               = "created"
	eventUpdated               = "updated"
	eventSuspended             = "suspended"
	eventReactivated           = "reactivated"
	eventPasswordPolicyChanged = "password_policy_changed"
	eventMfaPolicyChanged      = "mfa_policy_changed"
	eventSessionPolicyChanged  = "session_policy_changed"
	eventLockoutPolicyChanged  = "lockout_policy_changed"
	eventBrandingChanged       = "branding_changed"
	eventDomainAdded           = "domain_added"
	eventDomainVerified        = "domain_verified"
	eventDomainRemoved         = "domain_removed"
)

// Constraints that turn into domain errors.
const (
	uniqueSlug           = "tenants_slug_key"
	uniqueVerifiedDomain = "domains_verified_name_key"
)

// Listing defaults.
const (
	defaultPageSize = 50
	pageTokenSize   = 8 + 16 // created_at in Unix microseconds, then the tenant id
)

// createTenant creates an active tenant with the default policies and
// records tenant.tenant.created, in one transaction.
func (s *Service) createTenant(ctx context.Context, req *tenantv1.CreateTenantRequest) (*tenantv1.Tenant, uuid.UUID, error) {
	name, err := displayName(req.GetDisplayName())
	if err != nil {
		return nil, uuid.Nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	id := uuid.Must(uuid.NewV7())
	row := newTenantRow(store.InsertTenantParams{
		ID: id, Slug: req.GetSlug(), DisplayName: name, CreatedAt: now, UpdatedAt: now,
	})
	var (
		view    *tenantv1.Tenant
		created uuid.UUID
	)
	err = pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		if err := q.InsertTenant(ctx, row); err != nil {
			if pg.IsUniqueViolation(err, uniqueSlug) {
				return ErrSlugTaken
			}
			return fmt.Errorf("insert tenant %s: %w", id, err)
		}
		t, err := findTenant(ctx, q, id)
		if err != nil {
			return err
		}
		agg := events.Aggregate{Type: aggregateTenant, ID: id.String(), TenantID: id.String()}
		appended, err := s.events.Append(ctx, tx, agg, 0, events.Change{Name: eventCreated, Payload: &tenantv1.TenantCreated{
			TenantId:       id.String(),
			Slug:           t.Slug,
			DisplayName:    t.DisplayName,
			Status:         statusFromStore(t.Status),
			PasswordPolicy: passwordPolicyOf(t),
			MfaPolicy:      mfaPolicyOf(t),
			SessionPolicy:  sessionPolicyOf(t),
			LockoutPolicy:  lockoutPolicyOf(t),
			Branding:       brandingOf(t),
			CreateTime:     timestamppb.New(now),
		}})
		if err != nil {
			return err
		}
		view, created = tenantProto(t, nil), appended[0].ID
		return nil
	})
	if err != nil {
		return nil, uuid.Nil, err
	}
	return view, created, nil
}

// displayName returns a display name trimmed, refusing a blank one.
func displayName(s string) (string, error) {
	name := strings.TrimSpace(s)
	if name == "" {
		return "", &rpc.InvalidFieldError{Field: "display_name", Rule: "display_name.not_blank", Message: "must not be blank"}
	}
	return name, nil
}

// command is a change to one existing tenant.
type command struct {
	tenantID        uuid.UUID
	expectedVersion *int64
	// decide decides the change against the tenant as it is, writes it to
	// the read tables through q and returns its event; nil means the
	// command changes nothing.
	decide func(ctx context.Context, q *store.Queries, t store.Tenant, now time.Time) (*events.Change, error)
}

// run runs a command: lock the tenant, check the expected version, decide,
// write, bump the version and append the event, all in one transaction. It
// returns the tenant after the command.
func (s *Service) run(ctx context.Context, c command) (*tenantv1.Tenant, error) {
	var view *tenantv1.Tenant
	err := pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		id := c.tenantID.String()
		// The lock serialises commands on the tenant: nothing read below
		// changes until commit.
		if err := s.events.Lock(ctx, tx, id); err != nil {
			return err
		}
		q := store.New(tx)
		t, err := findTenant(ctx, q, c.tenantID)
		if err != nil {
			return err
		}
		version, err := s.events.Version(ctx, tx, id)
		if err != nil {
			return err
		}
		if version != t.Version {
			return fmt.Errorf("tenant %s: the row is at version %d, the events at %d", id, t.Version, version)
		}
		if c.expectedVersion != nil && *c.expectedVersion != version {
			return &rpc.VersionMismatchError{Aggregate: aggregateTenant, Expected: *c.expectedVersion, Current: version}
		}
		now := s.now().UTC().Truncate(time.Microsecond)
		change, err := c.decide(ctx, q, t, now)
		if err != nil {
			return err
		}
		if change != nil {
			n, err := q.SetTenantVersion(ctx, store.SetTenantVersionParams{ID: c.tenantID, Version: version + 1, UpdatedAt: now})
			if err != nil {
				return fmt.Errorf("set version of tenant %s: %w", id, err)
			}
			if n != 1 {
				return fmt.Errorf("set version of tenant %s: %d rows written", id, n)
			}
			agg := events.Aggregate{Type: aggregateTenant, ID: id, TenantID: id}
			if _, err := s.events.Append(ctx, tx, agg, version, *change); err != nil {
				return err
			}
		}
		view, err = tenantView(ctx, q, c.tenantID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return view, nil
}

// wrote checks that an UPDATE of the locked tenant's row wrote it.
func wrote(what string, id uuid.UUID, n int64, err error) error {
	if err != nil {
		return fmt.Errorf("%s of tenant %s: %w", what, id, err)
	}
	if n != 1 {
		return fmt.Errorf("%s of tenant %s: %d rows written", what, id, n)
	}
	return nil
}

// updateTenant changes the display name. The status is not a tenant
// admin's to change (see suspendTenant): a request that sets it is refused
// before anything is read.
func (s *Service) updateTenant(ctx context.Context, req *tenantv1.UpdateTenantRequest) (*tenantv1.Tenant, error) {
	id, err := parseTenantID(req.GetTenantId())
	if err != nil {
		return nil, err
	}
	if req.Status != nil {
		return nil, ErrStatusOperatorOnly
	}
	if req.DisplayName == nil {
		return nil, &rpc.InvalidFieldError{Field: "display_name", Rule: "update_tenant.fields", Message: "set display_name: it is all UpdateTenant changes"}
	}
	name, err := displayName(req.GetDisplayName())
	if err != nil {
		return nil, err
	}
	return s.run(ctx, command{tenantID: id, expectedVersion: req.ExpectedVersion,
		decide: func(ctx context.Context, q *store.Queries, t store.Tenant, _ time.Time) (*events.Change, error) {
			if name == t.DisplayName {
				return nil, nil
			}
			n, err := q.SetTenantInfo(ctx, store.SetTenantInfoParams{ID: id, DisplayName: name, Status: t.Status})
			if err := wrote("update", id, n, err); err != nil {
				return nil, err
			}
			return &events.Change{Name: eventUpdated, Payload: &tenantv1.TenantUpdated{
				TenantId:       id.String(),
				DisplayName:    name,
				Status:         statusFromStore(t.Status),
				PreviousStatus: statusFromStore(t.Status),
			}}, nil
		}})
}

// suspendTenant suspends an active tenant and records
// tenant.tenant.suspended; a suspended tenant is left as it is.
func (s *Service) suspendTenant(ctx context.Context, req *tenantv1.SuspendTenantRequest) (*tenantv1.Tenant, error) {
	id, err := parseTenantID(req.GetTenantId())
	if err != nil {
		return nil, err
	}
	reason := strings.TrimSpace(req.GetReason())
	return s.run(ctx, command{tenantID: id, expectedVersion: req.ExpectedVersion,
		decide: func(ctx context.Context, q *store.Queries, t store.Tenant, now time.Time) (*events.Change, error) {
			if t.Status == statusSuspended {
				return nil, nil
			}
			n, err := q.SetTenantInfo(ctx, store.SetTenantInfoParams{ID: id, DisplayName: t.DisplayName, Status: statusSuspended})
			if err := wrote("suspend", id, n, err); err != nil {
				return nil, err
			}
			return &events.Change{Name: eventSuspended, Payload: &tenantv1.TenantSuspended{
				TenantId: id.String(), Reason: reason, SuspendTime: timestamppb.New(now),
			}}, nil
		}})
}

// reactivateTenant makes a suspended tenant active and records
// tenant.tenant.reactivated; an active tenant is left as it is.
func (s *Service) reactivateTenant(ctx context.Context, req *tenantv1.ReactivateTenantRequest) (*tenantv1.Tenant, error) {
	id, err := parseTenantID(req.GetTenantId())
	if err != nil {
		return nil, err
	}
	return s.run(ctx, command{tenantID: id, expectedVersion: req.ExpectedVersion,
		decide: func(ctx context.Context, q *store.Queries, t store.Tenant, now time.Time) (*events.Change, error) {
			if t.Status == statusActive {
				return nil, nil
			}
			n, err := q.SetTenantInfo(ctx, store.SetTenantInfoParams{ID: id, DisplayName: t.DisplayName, Status: statusActive})
			if err := wrote("reactivate", id, n, err); err != nil {
				return nil, err
			}
			return &events.Change{Name: eventReactivated, Payload: &tenantv1.TenantReactivated{
				TenantId: id.String(), ReactivateTime: timestamppb.New(now),
			}}, nil
		}})
}

// updatePasswordPolicy replaces the password policy.
func (s *Service) updatePasswordPolicy(ctx context.Context, req *tenantv1.UpdatePasswordPolicyRequest) (*tenantv1.Tenant, error) {
	id, err := parseTenantID(req.GetTenantId())
	if err != nil {
		return nil, err
	}
	p := req.GetPolicy()
	return s.run(ctx, command{tenantID: id, expectedVersion: req.ExpectedVersion,
		decide: func(ctx context.Context, q *store.Queries, t store.Tenant, _ time.Time) (*events.Change, error) {
			if proto.Equal(passwordPolicyOf(t), p) {
				return nil, nil
			}
			n, err := q.SetPasswordPolicy(ctx, store.SetPasswordPolicyParams{
				ID: id, MinLength: p.GetMinLength(), CheckBreached: p.GetCheckBreached(), HistorySize: p.GetHistorySize(),
			})
			if err := wrote("set password policy", id, n, err); err != nil {
				return nil, err
			}
			return &events.Change{Name: eventPasswordPolicyChanged, Payload: &tenantv1.PasswordPolicyChanged{
				TenantId: id.String(), Policy: p,
			}}, nil
		}})
}

// updateMfaPolicy replaces the MFA policy.
func (s *Service) updateMfaPolicy(ctx context.Context, req *tenantv1.UpdateMfaPolicyRequest) (*tenantv1.Tenant, error) {
	id, err := parseTenantID(req.GetTenantId())
	if err != nil {
		return nil, err
	}
	p := req.GetPolicy()
	return s.run(ctx, command{tenantID: id, expectedVersion: req.ExpectedVersion,
		decide: func(ctx context.Context, q *store.Queries, t store.Tenant, _ time.Time) (*events.Change, error) {
			if proto.Equal(mfaPolicyOf(t), p) {
				return nil, nil
			}
			n, err := q.SetMfaPolicy(ctx, store.SetMfaPolicyParams{ID: id, Requirement: mfaToStore(p.GetRequirement())})
			if err := wrote("set MFA policy", id, n, err); err != nil {
				return nil, err
			}
			return &events.Change{Name: eventMfaPolicyChanged, Payload: &tenantv1.MfaPolicyChanged{
				TenantId: id.String(), Policy: p,
			}}, nil
		}})
}

// updateSessionPolicy replaces the session lifetimes.
func (s *Service) updateSessionPolicy(ctx context.Context, req *tenantv1.UpdateSessionPolicyRequest) (*tenantv1.Tenant, error) {
	id, err := parseTenantID(req.GetTenantId())
	if err != nil {
		return nil, err
	}
	p, err := parseSessionPolicy(req.GetPolicy())
	if err != nil {
		return nil, err
	}
	return s.run(ctx, command{tenantID: id, expectedVersion: req.ExpectedVersion,
		decide: func(ctx context.Context, q *store.Queries, t store.Tenant, _ time.Time) (*events.Change, error) {
			if p.accessTTL == t.AccessTokenTtlSeconds && p.refreshTTL == t.RefreshTokenTtlSeconds && p.reuseGrace == t.RefreshReuseGraceSeconds {
				return nil, nil
			}
			n, err := q.SetSessionPolicy(ctx, store.SetSessionPolicyParams{
				ID: id, AccessTokenTtlSeconds: p.accessTTL, RefreshTokenTtlSeconds: p.refreshTTL, RefreshReuseGraceSeconds: p.reuseGrace,
			})
			if err := wrote("set session policy", id, n, err); err != nil {
				return nil, err
			}
			return &events.Change{Name: eventSessionPolicyChanged, Payload: &tenantv1.SessionPolicyChanged{
				TenantId: id.String(),
				Policy:   &tenantv1.SessionPolicy{AccessTokenTtl: seconds(p.accessTTL), RefreshTokenTtl: seconds(p.refreshTTL), RefreshReuseGrace: seconds(p.reuseGrace)},
			}}, nil
		}})
}

// updateLockoutPolicy replaces the lockout thresholds.
func (s *Service) updateLockoutPolicy(ctx context.Context, req *tenantv1.UpdateLockoutPolicyRequest) (*tenantv1.Tenant, error) {
	id, err := parseTenantID(req.GetTenantId())
	if err != nil {
		return nil, err
	}
	p, err := parseLockoutPolicy(req.GetPolicy())
	if err != nil {
		return nil, err
	}
	return s.run(ctx, command{tenantID: id, expectedVersion: req.ExpectedVersion,
		decide: func(ctx context.Context, q *store.Queries, t store.Tenant, _ time.Time) (*events.Change, error) {
			if p.maxFailures == t.LockoutMaxFailures && p.window == t.LockoutWindowSeconds && p.duration == t.LockoutDurationSeconds {
				return nil, nil
			}
			n, err := q.SetLockoutPolicy(ctx, store.SetLockoutPolicyParams{
				ID: id, MaxFailures: p.maxFailures, WindowSeconds: p.window, DurationSeconds: p.duration,
			})
			if err := wrote("set lockout policy", id, n, err); err != nil {
				return nil, err
			}
			return &events.Change{Name: eventLockoutPolicyChanged, Payload: &tenantv1.LockoutPolicyChanged{
				TenantId: id.String(),
				Policy:   &tenantv1.LockoutPolicy{MaxFailures: p.maxFailures, Window: seconds(p.window), LockoutDuration: seconds(p.duration)},
			}}, nil
		}})
}

// updateBranding replaces the branding.
func (s *Service) updateBranding(ctx context.Context, req *tenantv1.UpdateBrandingRequest) (*tenantv1.Tenant, error) {
	id, err := parseTenantID(req.GetTenantId())
	if err != nil {
		return nil, err
	}
	b, err := parseBranding(req.GetBranding())
	if err != nil {
		return nil, err
	}
	return s.run(ctx, command{tenantID: id, expectedVersion: req.ExpectedVersion,
		decide: func(ctx context.Context, q *store.Queries, t store.Tenant, _ time.Time) (*events.Change, error) {
			if proto.Equal(brandingOf(t), b) {
				return nil, nil
			}
			n, err := q.SetBranding(ctx, store.SetBrandingParams{ID: id, Name: b.GetName(), PrimaryColor: b.GetPrimaryColor(), LogoRef: b.GetLogoRef()})
			if err := wrote("set branding", id, n, err); err != nil {
				return nil, err
			}
			return &events.Change{Name: eventBrandingChanged, Payload: &tenantv1.BrandingChanged{
				TenantId: id.String(), Branding: b,
			}}, nil
		}})
}

// addDomain adds a pending domain and returns it with its verification
// token.
func (s *Service) addDomain(ctx context.Context, req *tenantv1.AddDomainRequest) (*tenantv1.AddDomainResponse, error) {
	id, err := parseTenantID(req.GetTenantId())
	if err != nil {
		return nil, err
	}
	name, err := normalizeDomain("domain", req.GetDomain())
	if err != nil {
		return nil, err
	}
	token, hash, err := newVerificationToken()
	if err != nil {
		return nil, fmt.Errorf("domain verification token: %w", err)
	}
	t, err := s.run(ctx, command{tenantID: id, expectedVersion: req.ExpectedVersion,
		decide: func(ctx context.Context, q *store.Queries, _ store.Tenant, now time.Time) (*events.Change, error) {
			_, err := q.GetDomain(ctx, store.GetDomainParams{TenantID: id, Name: name})
			switch {
			case err == nil:
				return nil, ErrDomainExists
			case !errors.Is(err, pgx.ErrNoRows):
				return nil, fmt.Errorf("get domain %s of tenant %s: %w", name, id, err)
			}
			taken, err := q.DomainVerifiedByAnother(ctx, store.DomainVerifiedByAnotherParams{TenantID: id, Name: name})
			if err != nil {
				return nil, fmt.Errorf("look up domain %s: %w", name, err)
			}
			if taken {
				return nil, ErrDomainTaken
			}
			if err := q.InsertDomain(ctx, store.InsertDomainParams{TenantID: id, Name: name, VerificationTokenHash: hash, CreatedAt: now}); err != nil {
				return nil, fmt.Errorf("insert domain %s of tenant %s: %w", name, id, err)
			}
			return &events.Change{Name: eventDomainAdded, Payload: &tenantv1.DomainAdded{
				TenantId: id.String(), Domain: name, VerificationTokenSha256: hash,
			}}, nil
		}})
	if err != nil {
		return nil, err
	}
	return &tenantv1.AddDomainResponse{Tenant: t, Domain: domainOf(t, name), VerificationToken: token}, nil
}

// verifyDomain verifies a pending domain once its DNS proves the tenant
// controls it (proveDomain). The lookup runs before the command, so no
// lock is held while DNS answers; the command then checks that the domain
// still has the token the lookup proved (it may have been removed and
// added again meanwhile). Verifying a verified domain again changes
// nothing.
func (s *Service) verifyDomain(ctx context.Context, req *tenantv1.VerifyDomainRequest) (*tenantv1.VerifyDomainResponse, error) {
	id, err := parseTenantID(req.GetTenantId())
	if err != nil {
		return nil, err
	}
	name, err := normalizeDomain("domain", req.GetDomain())
	if err != nil {
		return nil, err
	}
	pending, err := findDomain(ctx, store.New(s.deps.Pool), id, name)
	if err != nil {
		return nil, err
	}
	if !pending.VerifiedAt.Valid {
		if err := s.proveDomain(ctx, name, pending.VerificationTokenHash); err != nil {
			return nil, err
		}
	}
	t, err := s.run(ctx, command{tenantID: id, expectedVersion: req.ExpectedVersion,
		decide: func(ctx context.Context, q *store.Queries, _ store.Tenant, now time.Time) (*events.Change, error) {
			d, err := findDomain(ctx, q, id, name)
			if err != nil {
				return nil, err
			}
			if d.VerifiedAt.Valid {
				return nil, nil
			}
			if !bytes.Equal(d.VerificationTokenHash, pending.VerificationTokenHash) {
				return nil, &ChallengeError{Record: challengeLabel + "." + name}
			}
			n, err := q.SetDomainVerified(ctx, store.SetDomainVerifiedParams{TenantID: id, Name: name, VerifiedAt: timestamptz(now)})
			if pg.IsUniqueViolation(err, uniqueVerifiedDomain) {
				return nil, ErrDomainTaken
			}
			if err := wrote("verify domain", id, n, err); err != nil {
				return nil, err
			}
			return &events.Change{Name: eventDomainVerified, Payload: &tenantv1.DomainVerified{
				TenantId: id.String(), Domain: name, VerifyTime: timestamppb.New(now),
			}}, nil
		}})
	if err != nil {
		return nil, err
	}
	return &tenantv1.VerifyDomainResponse{Tenant: t, Domain: domainOf(t, name)}, nil
}

// findDomain returns the tenant's domain named name.
func findDomain(ctx context.Context, q *store.Queries, tenantID uuid.UUID, name string) (store.Domain, error) {
	d, err := q.GetDomain(ctx, store.GetDomainParams{TenantID: tenantID, Name: name})
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Domain{}, ErrDomainNotFound
	}
	if err != nil {
		return store.Domain{}, fmt.Errorf("get domain %s of tenant %s: %w", name, tenantID, err)
	}
	return d, nil
}

// removeDomain removes a pending or verified domain.
func (s *Service) removeDomain(ctx context.Context, req *tenantv1.RemoveDomainRequest) (*tenantv1.Tenant, error) {
	id, err := parseTenantID(req.GetTenantId())
	if err != nil {
		return nil, err
	}
	name, err := normalizeDomain("domain", req.GetDomain())
	if err != nil {
		return nil, err
	}
	return s.run(ctx, command{tenantID: id, expectedVersion: req.ExpectedVersion,
		decide: func(ctx context.Context, q *store.Queries, _ store.Tenant, _ time.Time) (*events.Change, error) {
			d, err := findDomain(ctx, q, id, name)
			if err != nil {
				return nil, err
			}
			n, err := q.DeleteDomain(ctx, store.DeleteDomainParams{TenantID: id, Name: name})
			if err := wrote("remove domain", id, n, err); err != nil {
				return nil, err
			}
			return &events.Change{Name: eventDomainRemoved, Payload: &tenantv1.DomainRemoved{
				TenantId: id.String(), Domain: name, WasVerified: d.VerifiedAt.Valid,
			}}, nil
		}})
}

// getTenant returns a tenant by id.
func (s *Service) getTenant(ctx context.Context, tenant string) (*tenantv1.Tenant, error) {
	id, err := parseTenantID(tenant)
	if err != nil {
		return nil, err
	}
	return tenantView(ctx, store.New(s.deps.Pool), id)
}

// getTenantBySlug returns a tenant by slug.
func (s *Service) getTenantBySlug(ctx context.Context, slug string) (*tenantv1.Tenant, error) {
	q := store.New(s.deps.Pool)
	t, err := q.GetTenantBySlug(ctx, slug)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrTenantNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get tenant by slug: %w", err)
	}
	domains, err := listDomains(ctx, q, t.ID)
	if err != nil {
		return nil, err
	}
	return tenantProto(t, domains[t.ID]), nil
}

// listTenants returns one page of tenants, oldest first, and the token of
// the next page ("" after the last).
func (s *Service) listTenants(ctx context.Context, req *tenantv1.ListTenantsRequest) ([]*tenantv1.Tenant, string, error) {
	pageSize := req.GetPageSize()
	if pageSize <= 0 {
		pageSize = defaultPageSize
	}
	q := store.New(s.deps.Pool)
	var (
		rows []store.Tenant
		err  error
	)
	if token := req.GetPageToken(); token != "" {
		after, derr := decodePageToken(token)
		if derr != nil {
			return nil, "", derr
		}
		rows, err = q.ListTenantsAfter(ctx, store.ListTenantsAfterParams{AfterTime: after.createdAt, AfterID: after.id, MaxRows: pageSize + 1})
	} else {
		rows, err = q.ListTenants(ctx, pageSize+1)
	}
	if err != nil {
		return nil, "", fmt.Errorf("list tenants: %w", err)
	}
	next := ""
	if len(rows) > int(pageSize) {
		rows = rows[:pageSize]
		last := rows[len(rows)-1]
		next = pageCursor{createdAt: last.CreatedAt, id: last.ID}.encode()
	}
	ids := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	domains, err := listDomains(ctx, q, ids...)
	if err != nil {
		return nil, "", err
	}
	out := make([]*tenantv1.Tenant, len(rows))
	for i, r := range rows {
		out[i] = tenantProto(r, domains[r.ID])
	}
	return out, next, nil
}

// findTenant returns the tenant's row.
func findTenant(ctx context.Context, q *store.Queries, id uuid.UUID) (store.Tenant, error) {
	t, err := q.GetTenant(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Tenant{}, ErrTenantNotFound
	}
	if err != nil {
		return store.Tenant{}, fmt.Errorf("get tenant %s: %w", id, err)
	}
	return t, nil
}

// tenantView reads a tenant and its domains.
func tenantView(ctx context.Context, q *store.Queries, id uuid.UUID) (*tenantv1.Tenant, error) {
	t, err := findTenant(ctx, q, id)
	if err != nil {
		return nil, err
	}
	domains, err := listDomains(ctx, q, id)
	if err != nil {
		return nil, err
	}
	return tenantProto(t, domains[id]), nil
}

// listDomains returns the domains of the tenants, by tenant, ordered by name.
func listDomains(ctx context.Context, q *store.Queries, ids ...uuid.UUID) (map[uuid.UUID][]*tenantv1.Domain, error) {
	out := make(map[uuid.UUID][]*tenantv1.Domain, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := q.ListDomains(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("list domains: %w", err)
	}
	for _, r := range rows {
		d := &tenantv1.Domain{
			Name:       r.Name,
			Status:     tenantv1.DomainStatus_DOMAIN_STATUS_PENDING,
			CreateTime: timestamppb.New(r.CreatedAt),
		}
		if r.VerifiedAt.Valid {
			d.Status = tenantv1.DomainStatus_DOMAIN_STATUS_VERIFIED
			d.VerifyTime = timestamppb.New(r.VerifiedAt.Time)
		}
		out[r.TenantID] = append(out[r.TenantID], d)
	}
	return out, nil
}

// domainOf returns the tenant's domain named name, nil if it has none.
func domainOf(t *tenantv1.Tenant, name string) *tenantv1.Domain {
	for _, d := range t.GetDomains() {
		if d.GetName() == name {
			return d
		}
	}
	return nil
}

// tenantProto is the API view of a tenants row and its domains.
func tenantProto(t store.Tenant, domains []*tenantv1.Domain) *tenantv1.Tenant {
	return &tenantv1.Tenant{
		Id:             t.ID.String(),
		Slug:           t.Slug,
		DisplayName:    t.DisplayName,
		Status:         statusFromStore(t.Status),
		PasswordPolicy: passwordPolicyOf(t),
		MfaPolicy:      mfaPolicyOf(t),
		SessionPolicy:  sessionPolicyOf(t),
		LockoutPolicy:  lockoutPolicyOf(t),
		Branding:       brandingOf(t),
		Domains:        domains,
		Version:        t.Version,
		CreateTime:     timestamppb.New(t.CreatedAt),
		UpdateTime:     timestamppb.New(t.UpdatedAt),
	}
}

// pageCursor is the position after which the next page of tenants starts:
// the (created_at, id) of the last tenant returned.
type pageCursor struct {
	createdAt time.Time
	id        uuid.UUID
}

// encode returns the cursor as an opaque, URL-safe page token.
func (c pageCursor) encode() string {
	b := make([]byte, 0, pageTokenSize)
	b = binary.BigEndian.AppendUint64(b, uint64(c.createdAt.UnixMicro()))
	b = append(b, c.id[:]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePageToken parses a token made by pageCursor.encode.
func decodePageToken(token string) (pageCursor, error) {
	bad := &rpc.InvalidFieldError{Field: "page_token", Rule: "page_token.valid", Message: "is not a page token this API returned"}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != pageTokenSize {
		return pageCursor{}, bad
	}
	id, err := uuid.FromBytes(b[8:])
	if err != nil {
		return pageCursor{}, bad
	}
	return pageCursor{createdAt: time.UnixMicro(int64(binary.BigEndian.Uint64(b[:8]))).UTC(), id: id}, nil
}

func timestamptz(t time.Time) pgtype.Timestamptz { return pgtype.Timestamptz{Time: t, Valid: true} }
