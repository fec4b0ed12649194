package tenant_test

import (
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"

	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
)

// policyCase is one policy update: want is the field a refused update names
// ("" when it is accepted).
type policyCase[P any] struct {
	name   string
	policy P
	field  string
}

// checkPolicy runs cases against a fresh tenant: accepted ones must change
// the tenant (read back with read) and record event (decoded with payload);
// refused ones must be InvalidArgument on the field and change nothing.
func checkPolicy[P proto.Message](t *testing.T, e *env, event string, cases []policyCase[P],
	update func(tenantID string, p P, expected *int64) (*tenantv1.Tenant, error),
	read func(*tenantv1.Tenant) P,
	payload func() (proto.Message, func() P),
) {
	t.Helper()
	tn := e.create(t)
	version := tn.GetVersion()
	subjects := e.storedEvents(t, tn.GetId())
	for _, tc := range cases {
		got, err := update(tn.GetId(), tc.policy, proto.Int64(version))
		if tc.field != "" {
			requireInvalid(t, err, tc.field, tc.name)
			continue
		}
		require.NoError(t, err, tc.name)
		version++
		assert.Equal(t, version, got.GetVersion(), tc.name)
		assert.Empty(t, cmp.Diff(tc.policy, read(got), protocmp.Transform()), tc.name)
		assert.Empty(t, cmp.Diff(tc.policy, read(e.get(t, tn.GetId())), protocmp.Transform()), "%s: read back", tc.name)
		subjects = append(subjects, event)

		m, policyOf := payload()
		ev := published(t, e.JS, tn.GetId(), version, m)
		assert.Equal(t, "tenant.tenant."+event+".v1", ev.Type(), tc.name)
		assert.Empty(t, cmp.Diff(tc.policy, policyOf(), protocmp.Transform()), "%s: the event carries the whole policy", tc.name)

		// The same policy again is a no-op.
		again, err := update(tn.GetId(), tc.policy, nil)
		require.NoError(t, err, tc.name)
		assert.Equal(t, version, again.GetVersion(), "%s: no-op", tc.name)
	}
	assert.Equal(t, subjects, e.storedEvents(t, tn.GetId()), "one event per accepted change, none for refused ones")
	_, err := update(tn.GetId(), read(e.get(t, tn.GetId())), proto.Int64(version+1))
	assert.Equal(t, connect.CodeAborted, connect.CodeOf(err), "a stale expected version")
}

func dur(seconds int64, nanos int32) *durationpb.Duration {
	return &durationpb.Duration{Seconds: seconds, Nanos: nanos}
}

func TestPolicies(t *testing.T) {
	t.Parallel()
	e := start(t)

	t.Run("password", func(t *testing.T) {
		t.Parallel()
		pp := func(minLength int32, breached bool, history int32) *tenantv1.PasswordPolicy {
			return &tenantv1.PasswordPolicy{MinLength: minLength, CheckBreached: breached, HistorySize: history}
		}
		checkPolicy(t, e, "password_policy_changed", []policyCase[*tenantv1.PasswordPolicy]{
			{name: "longest", policy: pp(128, false, 24)},
			{name: "shortest", policy: pp(12, true, 0)},
			{name: "min length below 12", policy: pp(11, true, 0), field: "policy.min_length"},
			{name: "min length above 128", policy: pp(129, true, 0), field: "policy.min_length"},
			{name: "history above 24", policy: pp(12, true, 25), field: "policy.history_size"},
			{name: "negative history", policy: pp(12, true, -1), field: "policy.history_size"},
			{name: "missing", policy: nil, field: "policy"},
		}, func(id string, p *tenantv1.PasswordPolicy, expected *int64) (*tenantv1.Tenant, error) {
			res, err := e.tenant.UpdatePasswordPolicy(t.Context(), connect.NewRequest(&tenantv1.UpdatePasswordPolicyRequest{TenantId: id, Policy: p, ExpectedVersion: expected}))
			if err != nil {
				return nil, err
			}
			return res.Msg.GetTenant(), nil
		}, (*tenantv1.Tenant).GetPasswordPolicy, func() (proto.Message, func() *tenantv1.PasswordPolicy) {
			var m tenantv1.PasswordPolicyChanged
			return &m, m.GetPolicy
		})
	})

	t.Run("mfa", func(t *testing.T) {
		t.Parallel()
		mp := func(r tenantv1.MfaRequirement) *tenantv1.MfaPolicy { return &tenantv1.MfaPolicy{Requirement: r} }
		checkPolicy(t, e, "mfa_policy_changed", []policyCase[*tenantv1.MfaPolicy]{
			{name: "required", policy: mp(tenantv1.MfaRequirement_MFA_REQUIREMENT_REQUIRED)},
			{name: "optional", policy: mp(tenantv1.MfaRequirement_MFA_REQUIREMENT_OPTIONAL)},
			{name: "unspecified", policy: mp(tenantv1.MfaRequirement_MFA_REQUIREMENT_UNSPECIFIED), field: "policy.requirement"},
			{name: "undefined", policy: mp(tenantv1.MfaRequirement(9)), field: "policy.requirement"},
		}, func(id string, p *tenantv1.MfaPolicy, expected *int64) (*tenantv1.Tenant, error) {
			res, err := e.tenant.UpdateMfaPolicy(t.Context(), connect.NewRequest(&tenantv1.UpdateMfaPolicyRequest{TenantId: id, Policy: p, ExpectedVersion: expected}))
			if err != nil {
				return nil, err
			}
			return res.Msg.GetTenant(), nil
		}, (*tenantv1.Tenant).GetMfaPolicy, func() (proto.Message, func() *tenantv1.MfaPolicy) {
			var m tenantv1.MfaPolicyChanged
			return &m, m.GetPolicy
		})
	})

	t.Run("session", func(t *testing.T) {
		t.Parallel()
		sp := func(access, refresh, grace *durationpb.Duration) *tenantv1.SessionPolicy {
			return &tenantv1.SessionPolicy{AccessTokenTtl: access, RefreshTokenTtl: refresh, RefreshReuseGrace: grace}
		}
		const day = 24 * 3600
		checkPolicy(t, e, "session_policy_changed", []policyCase[*tenantv1.SessionPolicy]{
			{name: "longest", policy: sp(dur(900, 0), dur(90*day, 0), dur(60, 0))},
			{name: "shortest", policy: sp(dur(300, 0), dur(3600, 0), dur(0, 0))},
			{name: "access below 5m", policy: sp(dur(299, 0), dur(3600, 0), dur(0, 0)), field: "policy.access_token_ttl"},
			{name: "access above 15m", policy: sp(dur(901, 0), dur(3600, 0), dur(0, 0)), field: "policy.access_token_ttl"},
			{name: "refresh below 1h", policy: sp(dur(600, 0), dur(3599, 0), dur(0, 0)), field: "policy.refresh_token_ttl"},
			{name: "refresh above 90d", policy: sp(dur(600, 0), dur(90*day+1, 0), dur(0, 0)), field: "policy.refresh_token_ttl"},
			{name: "grace above 60s", policy: sp(dur(600, 0), dur(3600, 0), dur(61, 0)), field: "policy.refresh_reuse_grace"},
			{name: "negative grace", policy: sp(dur(600, 0), dur(3600, 0), dur(-1, 0)), field: "policy.refresh_reuse_grace"},
			{name: "missing grace", policy: sp(dur(600, 0), dur(3600, 0), nil), field: "policy.refresh_reuse_grace"},
			{name: "fraction of a second", policy: sp(dur(600, 500_000_000), dur(3600, 0), dur(0, 0)), field: "policy.access_token_ttl"},
		}, func(id string, p *tenantv1.SessionPolicy, expected *int64) (*tenantv1.Tenant, error) {
			res, err := e.tenant.UpdateSessionPolicy(t.Context(), connect.NewRequest(&tenantv1.UpdateSessionPolicyRequest{TenantId: id, Policy: p, ExpectedVersion: expected}))
			if err != nil {
				return nil, err
			}
			return res.Msg.GetTenant(), nil
		}, (*tenantv1.Tenant).GetSessionPolicy, func() (proto.Message, func() *tenantv1.SessionPolicy) {
			var m tenantv1.SessionPolicyChanged
			return &m, m.GetPolicy
		})
	})

	t.Run("lockout", func(t *testing.T) {
		t.Parallel()
		lp := func(maxFailures int32, window, duration *durationpb.Duration) *tenantv1.LockoutPolicy {
			return &tenantv1.LockoutPolicy{MaxFailures: maxFailures, Window: window, LockoutDuration: duration}
		}
		const day = 24 * 3600
		checkPolicy(t, e, "lockout_policy_changed", []policyCase[*tenantv1.LockoutPolicy]{
			{name: "largest", policy: lp(100, dur(day, 0), dur(day, 0))},
			{name: "smallest", policy: lp(3, dur(60, 0), dur(60, 0))},
			{name: "2 failures", policy: lp(2, dur(60, 0), dur(60, 0)), field: "policy.max_failures"},
			{name: "101 failures", policy: lp(101, dur(60, 0), dur(60, 0)), field: "policy.max_failures"},
			{name: "window below 1m", policy: lp(5, dur(59, 0), dur(60, 0)), field: "policy.window"},
			{name: "window above 24h", policy: lp(5, dur(day+1, 0), dur(60, 0)), field: "policy.window"},
			{name: "duration below 1m", policy: lp(5, dur(60, 0), dur(59, 999_999_999)), field: "policy.lockout_duration"},
			{name: "duration above 24h", policy: lp(5, dur(60, 0), dur(day, 1)), field: "policy.lockout_duration"},
			{name: "window with a fraction", policy: lp(5, dur(90, 1), dur(60, 0)), field: "policy.window"},
		}, func(id string, p *tenantv1.LockoutPolicy, expected *int64) (*tenantv1.Tenant, error) {
			res, err := e.tenant.UpdateLockoutPolicy(t.Context(), connect.NewRequest(&tenantv1.UpdateLockoutPolicyRequest{TenantId: id, Policy: p, ExpectedVersion: expected}))
			if err != nil {
				return nil, err
			}
			return res.Msg.GetTenant(), nil
		}, (*tenantv1.Tenant).GetLockoutPolicy, func() (proto.Message, func() *tenantv1.LockoutPolicy) {
			var m tenantv1.LockoutPolicyChanged
			return &m, m.GetPolicy
		})
	})

	t.Run("branding", func(t *testing.T) {
		t.Parallel()
		br := func(name, color, logo string) *tenantv1.Branding {
			return &tenantv1.Branding{Name: name, PrimaryColor: color, LogoRef: logo}
		}
		checkPolicy(t, e, "branding_changed", []policyCase[*tenantv1.Branding]{
			{name: "storage logo", policy: br("Acme", "#0a1b2c", "storage:0190c7a4-logo.png")},
			{name: "https logo", policy: br("Acme Login", "#ffffff", "https://cdn.example.com/acme/logo.svg")},
			{name: "cleared", policy: br("", "", "")},
			{name: "named colour", policy: br("Acme", "red", ""), field: "branding.primary_color"},
			{name: "short hex colour", policy: br("Acme", "#fff", ""), field: "branding.primary_color"},
			{name: "name too long", policy: br(strings.Repeat("x", 101), "", ""), field: "branding.name"},
			{name: "http logo", policy: br("Acme", "", "http://cdn.example.com/logo.png"), field: "branding.logo_ref"},
			{name: "script logo", policy: br("Acme", "", "javascript:alert(1)"), field: "branding.logo_ref"},
			{name: "logo with credentials", policy: br("Acme", "", "https://user:pw@cdn.example.com/l.png"), field: "branding.logo_ref"},
			{name: "missing", policy: nil, field: "branding"},
		}, func(id string, b *tenantv1.Branding, expected *int64) (*tenantv1.Tenant, error) {
			res, err := e.tenant.UpdateBranding(t.Context(), connect.NewRequest(&tenantv1.UpdateBrandingRequest{TenantId: id, Branding: b, ExpectedVersion: expected}))
			if err != nil {
				return nil, err
			}
			return res.Msg.GetTenant(), nil
		}, (*tenantv1.Tenant).GetBranding, func() (proto.Message, func() *tenantv1.Branding) {
			var m tenantv1.BrandingChanged
			return &m, m.GetBranding
		})
	})

	t.Run("branding is normalised", func(t *testing.T) {
		t.Parallel()
		tn := e.create(t)
		res, err := e.tenant.UpdateBranding(t.Context(), connect.NewRequest(&tenantv1.UpdateBrandingRequest{
			TenantId: tn.GetId(), Branding: &tenantv1.Branding{Name: "  Acme  ", PrimaryColor: "#A1B2C3"},
		}))
		require.NoError(t, err)
		assert.Empty(t, cmp.Diff(&tenantv1.Branding{Name: "Acme", PrimaryColor: "#a1b2c3"}, res.Msg.GetTenant().GetBranding(), protocmp.Transform()))
	})

	t.Run("policies are independent", func(t *testing.T) {
		t.Parallel()
		tn := e.create(t)
		_, err := e.tenant.UpdateLockoutPolicy(t.Context(), connect.NewRequest(&tenantv1.UpdateLockoutPolicyRequest{
			TenantId: tn.GetId(), Policy: &tenantv1.LockoutPolicy{MaxFailures: 10, Window: durationpb.New(time.Hour), LockoutDuration: durationpb.New(time.Hour)},
		}))
		require.NoError(t, err)
		got := e.get(t, tn.GetId())
		assert.Empty(t, cmp.Diff(tn.GetPasswordPolicy(), got.GetPasswordPolicy(), protocmp.Transform()))
		assert.Empty(t, cmp.Diff(tn.GetSessionPolicy(), got.GetSessionPolicy(), protocmp.Transform()))
		assert.Equal(t, int32(10), got.GetLockoutPolicy().GetMaxFailures())
	})
}
