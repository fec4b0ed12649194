package tenant

import (
	"net/url"
	"regexp"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/services/internal/rpc"
	"github.com/authms/authms/services/tenant/store"
)

// Values of tenants.status and tenants.mfa_requirement.
const (
	statusActive    = "active"
	statusSuspended = "suspended"
	mfaOptional     = "optional"
	mfaRequired     = "required"
)

// Default policies of a new tenant.
const (
	defaultMinLength         = 12
	defaultCheckBreached     = true
	defaultHistorySize       = 0
	defaultAccessTokenTTL    = 10 * time.Minute
	defaultRefreshTokenTTL   = 30 * 24 * time.Hour
	defaultRefreshReuseGrace = 10 * time.Second
	defaultMaxFailures       = 5
	defaultLockoutWindow     = 15 * time.Minute
	defaultLockoutDuration   = 15 * time.Minute
)

// newTenantRow returns a new tenant with the default policies.
func newTenantRow(p store.InsertTenantParams) store.InsertTenantParams {
	p.Status = statusActive
	p.PasswordMinLength = defaultMinLength
	p.PasswordCheckBreached = defaultCheckBreached
	p.PasswordHistorySize = defaultHistorySize
	p.MfaRequirement = mfaOptional
	p.AccessTokenTtlSeconds = int32(defaultAccessTokenTTL / time.Second)
	p.RefreshTokenTtlSeconds = int32(defaultRefreshTokenTTL / time.Second)
	p.RefreshReuseGraceSeconds = int32(defaultRefreshReuseGrace / time.Second)
	p.LockoutMaxFailures = defaultMaxFailures
	p.LockoutWindowSeconds = int32(defaultLockoutWindow / time.Second)
	p.LockoutDurationSeconds = int32(defaultLockoutDuration / time.Second)
	p.Version = 1
	return p
}

func statusFromStore(s string) tenantv1.TenantStatus {
	switch s {
	case statusActive:
		return tenantv1.TenantStatus_TENANT_STATUS_ACTIVE
	case statusSuspended:
		return tenantv1.TenantStatus_TENANT_STATUS_SUSPENDED
	}
	return tenantv1.TenantStatus_TENANT_STATUS_UNSPECIFIED
}

func mfaToStore(r tenantv1.MfaRequirement) string {
	if r == tenantv1.MfaRequirement_MFA_REQUIREMENT_REQUIRED {
		return mfaRequired
	}
	return mfaOptional
}

func mfaFromStore(s string) tenantv1.MfaRequirement {
	switch s {
	case mfaOptional:
		return tenantv1.MfaRequirement_MFA_REQUIREMENT_OPTIONAL
	case mfaRequired:
		return tenantv1.MfaRequirement_MFA_REQUIREMENT_REQUIRED
	}
	return tenantv1.MfaRequirement_MFA_REQUIREMENT_UNSPECIFIED
}

func seconds(n int32) *durationpb.Duration { return durationpb.New(time.Duration(n) * time.Second) }

func passwordPolicyOf(t store.Tenant) *tenantv1.PasswordPolicy {
	return &tenantv1.PasswordPolicy{
		MinLength:     t.PasswordMinLength,
		CheckBreached: t.PasswordCheckBreached,
		HistorySize:   t.PasswordHistorySize,
	}
}

func mfaPolicyOf(t store.Tenant) *tenantv1.MfaPolicy {
	return &tenantv1.MfaPolicy{Requirement: mfaFromStore(t.MfaRequirement)}
}

func sessionPolicyOf(t store.Tenant) *tenantv1.SessionPolicy {
	return &tenantv1.SessionPolicy{
		AccessTokenTtl:    seconds(t.AccessTokenTtlSeconds),
		RefreshTokenTtl:   seconds(t.RefreshTokenTtlSeconds),
		RefreshReuseGrace: seconds(t.RefreshReuseGraceSeconds),
	}
}

func lockoutPolicyOf(t store.Tenant) *tenantv1.LockoutPolicy {
	return &tenantv1.LockoutPolicy{
		MaxFailures:     t.LockoutMaxFailures,
		Window:          seconds(t.LockoutWindowSeconds),
		LockoutDuration: seconds(t.LockoutDurationSeconds),
	}
}

func brandingOf(t store.Tenant) *tenantv1.Branding {
	return &tenantv1.Branding{
		Name:         t.BrandingName,
		PrimaryColor: t.BrandingPrimaryColor,
		LogoRef:      t.BrandingLogoRef,
	}
}

// wholeSeconds returns d in seconds. The schema bounds d; a fraction of a
// second is refused here, since policies are kept in whole seconds.
func wholeSeconds(field string, d *durationpb.Duration) (int32, error) {
	if d.GetNanos() != 0 {
		return 0, &rpc.InvalidFieldError{Field: field, Rule: "duration.whole_seconds", Message: "must be a whole number of seconds"}
	}
	return int32(d.GetSeconds()), nil
}

// sessionPolicy is a validated SessionPolicy in seconds.
type sessionPolicy struct {
	accessTTL, refreshTTL, reuseGrace int32
}

func parseSessionPolicy(p *tenantv1.SessionPolicy) (sessionPolicy, error) {
	var (
		out sessionPolicy
		err error
	)
	if out.accessTTL, err = wholeSeconds("policy.access_token_ttl", p.GetAccessTokenTtl()); err != nil {
		return sessionPolicy{}, err
	}
	if out.refreshTTL, err = wholeSeconds("policy.refresh_token_ttl", p.GetRefreshTokenTtl()); err != nil {
		return sessionPolicy{}, err
	}
	if out.reuseGrace, err = wholeSeconds("policy.refresh_reuse_grace", p.GetRefreshReuseGrace()); err != nil {
		return sessionPolicy{}, err
	}
	return out, nil
}

// lockoutPolicy is a validated LockoutPolicy in seconds.
type lockoutPolicy struct {
	maxFailures, window, duration int32
}

func parseLockoutPolicy(p *tenantv1.LockoutPolicy) (lockoutPolicy, error) {
	out := lockoutPolicy{maxFailures: p.GetMaxFailures()}
	var err error
	if out.window, err = wholeSeconds("policy.window", p.GetWindow()); err != nil {
		return lockoutPolicy{}, err
	}
	if out.duration, err = wholeSeconds("policy.lockout_duration", p.GetLockoutDuration()); err != nil {
		return lockoutPolicy{}, err
	}
	return out, nil
}

// storageRef is a storage service object reference.
var storageRef = regexp.MustCompile(`^storage:[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// parseBranding validates what the schema cannot and normalises the rest:
// the name is trimmed, the colour lower-cased, and the logo is a storage
// object ("storage:<id>") or an absolute https URL without credentials.
func parseBranding(b *tenantv1.Branding) (*tenantv1.Branding, error) {
	out := &tenantv1.Branding{
		Name:         strings.TrimSpace(b.GetName()),
		PrimaryColor: strings.ToLower(b.GetPrimaryColor()),
		LogoRef:      b.GetLogoRef(),
	}
	if ref := out.LogoRef; ref != "" && !storageRef.MatchString(ref) {
		u, err := url.Parse(ref)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
			return nil, &rpc.InvalidFieldError{Field: "branding.logo_ref", Rule: "branding.logo_ref",
				Message: `must be a storage object ("storage:<id>") or an https URL`}
		}
	}
	return out, nil
}
