package tenant_test

import (
	"crypto/sha256"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/services/tenant"
)

func (e *env) addDomain(t *testing.T, tenantID, domain string) *tenantv1.AddDomainResponse {
	t.Helper()
	res, err := e.tenant.AddDomain(t.Context(), connect.NewRequest(&tenantv1.AddDomainRequest{TenantId: tenantID, Domain: domain}))
	require.NoError(t, err)
	return res.Msg
}

func (e *env) verifyDomain(t *testing.T, tenantID, domain string) (*tenantv1.VerifyDomainResponse, error) {
	res, err := e.tenant.VerifyDomain(t.Context(), connect.NewRequest(&tenantv1.VerifyDomainRequest{
		TenantId: tenantID, Domain: domain,
	}))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

func TestDomains(t *testing.T) {
	t.Parallel()
	e := start(t)

	t.Run("add, verify, remove", func(t *testing.T) {
		t.Parallel()
		tn := e.create(t)
		added := e.addDomain(t, tn.GetId(), " Bücher.Example. ")
		assert.Equal(t, "xn--bcher-kva.example", added.GetDomain().GetName(), "IDNA ASCII, lower case, no trailing dot")
		assert.Equal(t, tenantv1.DomainStatus_DOMAIN_STATUS_PENDING, added.GetDomain().GetStatus())
		assert.Nil(t, added.GetDomain().GetVerifyTime())
		assert.NotEmpty(t, added.GetVerificationToken())
		assert.Equal(t, int64(2), added.GetTenant().GetVersion())

		var addedEv tenantv1.DomainAdded
		published(t, e.JS, tn.GetId(), 2, &addedEv)
		sum := sha256.Sum256([]byte(added.GetVerificationToken()))
		assert.Equal(t, "xn--bcher-kva.example", addedEv.GetDomain())
		assert.Equal(t, sum[:], addedEv.GetVerificationTokenSha256())
		assert.Equal(t, 0, e.count(t, "SELECT count(*) FROM events WHERE position(convert_to($1, 'UTF8') in data) > 0", added.GetVerificationToken()),
			"the token itself is never in an event")

		const record = "_authms-challenge.xn--bcher-kva.example"
		notProven := "failed_precondition: no TXT record of " + record + " holds the domain's verification token: " +
			"publish the token AddDomain returned there, then verify again"
		_, err := e.verifyDomain(t, tn.GetId(), "bücher.example")
		require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err), "no record yet (NXDOMAIN)")
		assert.Equal(t, notProven, err.Error())
		e.dns.publish(record, "v=spf1 -all", "authms-domain-verification=not-this-one")
		_, err = e.verifyDomain(t, tn.GetId(), "bücher.example")
		require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err), "records, none of them the token")
		assert.Equal(t, notProven, err.Error())
		other := e.create(t)
		_, err = e.verifyDomain(t, other.GetId(), "bücher.example")
		assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "a tenant without the domain")
		assert.Equal(t, []string{"created", "domain_added"}, e.storedEvents(t, tn.GetId()), "a failed verification writes nothing")

		e.dns.publish(record, added.GetVerificationToken())
		verified, err := e.verifyDomain(t, tn.GetId(), "XN--BCHER-KVA.example")
		require.NoError(t, err, "the token is published; the A-label form names the same domain")
		assert.Equal(t, tenantv1.DomainStatus_DOMAIN_STATUS_VERIFIED, verified.GetDomain().GetStatus())
		assert.NotNil(t, verified.GetDomain().GetVerifyTime())
		assert.Equal(t, int64(3), verified.GetTenant().GetVersion())
		var verifiedEv tenantv1.DomainVerified
		published(t, e.JS, tn.GetId(), 3, &verifiedEv)
		assert.Equal(t, "xn--bcher-kva.example", verifiedEv.GetDomain())
		again, err := e.verifyDomain(t, tn.GetId(), "bücher.example")
		require.NoError(t, err)
		assert.Equal(t, int64(3), again.GetTenant().GetVersion(), "verifying twice is a no-op")

		_, err = e.tenant.AddDomain(t.Context(), connect.NewRequest(&tenantv1.AddDomainRequest{TenantId: tn.GetId(), Domain: "BÜCHER.example"}))
		assert.Equal(t, connect.CodeAlreadyExists, connect.CodeOf(err), "the tenant has it already")

		e.addDomain(t, tn.GetId(), "acme.example")
		got := e.get(t, tn.GetId())
		require.Len(t, got.GetDomains(), 2)
		assert.Equal(t, "acme.example", got.GetDomains()[0].GetName(), "ordered by name")
		assert.Equal(t, tenantv1.DomainStatus_DOMAIN_STATUS_VERIFIED, got.GetDomains()[1].GetStatus())

		res, err := e.tenant.RemoveDomain(t.Context(), connect.NewRequest(&tenantv1.RemoveDomainRequest{
			TenantId: tn.GetId(), Domain: "bücher.example", ExpectedVersion: proto.Int64(4),
		}))
		require.NoError(t, err)
		require.Len(t, res.Msg.GetTenant().GetDomains(), 1)
		var removed tenantv1.DomainRemoved
		published(t, e.JS, tn.GetId(), 5, &removed)
		assert.True(t, removed.GetWasVerified())
		_, err = e.tenant.RemoveDomain(t.Context(), connect.NewRequest(&tenantv1.RemoveDomainRequest{TenantId: tn.GetId(), Domain: "bücher.example"}))
		assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "removed already")
		assert.Equal(t, []string{"created", "domain_added", "domain_verified", "domain_added", "domain_removed"}, e.storedEvents(t, tn.GetId()))
	})

	t.Run("only one tenant verifies a domain", func(t *testing.T) {
		t.Parallel()
		a, b := e.create(t), e.create(t)
		addedA := e.addDomain(t, a.GetId(), "shared.example")
		addedB := e.addDomain(t, b.GetId(), "shared.example") // pending twice: nobody squats it
		e.dns.publish("_authms-challenge.shared.example", addedA.GetVerificationToken())
		_, err := e.verifyDomain(t, b.GetId(), "shared.example")
		assert.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err), "A's token does not verify B's claim")
		_, err = e.verifyDomain(t, a.GetId(), "shared.example")
		require.NoError(t, err)

		e.dns.publish("_authms-challenge.shared.example", addedB.GetVerificationToken())
		_, err = e.verifyDomain(t, b.GetId(), "shared.example")
		assert.Equal(t, connect.CodeAlreadyExists, connect.CodeOf(err))
		c := e.create(t)
		_, err = e.tenant.AddDomain(t.Context(), connect.NewRequest(&tenantv1.AddDomainRequest{TenantId: c.GetId(), Domain: "SHARED.example"}))
		assert.Equal(t, connect.CodeAlreadyExists, connect.CodeOf(err), "a verified domain cannot be added elsewhere")

		_, err = e.tenant.RemoveDomain(t.Context(), connect.NewRequest(&tenantv1.RemoveDomainRequest{TenantId: a.GetId(), Domain: "shared.example"}))
		require.NoError(t, err)
		verified, err := e.verifyDomain(t, b.GetId(), "shared.example")
		require.NoError(t, err, "free again once the owner removed it")
		assert.Equal(t, tenantv1.DomainStatus_DOMAIN_STATUS_VERIFIED, verified.GetDomain().GetStatus())
	})

	t.Run("a failing DNS lookup is Unavailable", func(t *testing.T) {
		t.Parallel()
		tn := e.create(t)
		e.addDomain(t, tn.GetId(), "broken.example")
		e.dns.fail("_authms-challenge.broken.example")
		_, err := e.verifyDomain(t, tn.GetId(), "broken.example")
		require.Equal(t, connect.CodeUnavailable, connect.CodeOf(err))
		assert.Equal(t, "unavailable: could not look up the TXT records of _authms-challenge.broken.example; retry later", err.Error())
		assert.Equal(t, tenantv1.DomainStatus_DOMAIN_STATUS_PENDING, e.get(t, tn.GetId()).GetDomains()[0].GetStatus())
	})

	t.Run("invalid domains write nothing", func(t *testing.T) {
		t.Parallel()
		tn := e.create(t)
		for _, domain := range []string{
			"localhost", "192.0.2.1", "2001:db8::1", "exa mple.com", "-bad.example", "a..example",
			"under_score.example", "example.123", strings.Repeat("a", 64) + ".example", "",
		} {
			_, err := e.tenant.AddDomain(t.Context(), connect.NewRequest(&tenantv1.AddDomainRequest{TenantId: tn.GetId(), Domain: domain}))
			requireInvalid(t, err, "domain", domain)
		}
		assert.Equal(t, 0, e.count(t, "SELECT count(*) FROM domains WHERE tenant_id = $1", tn.GetId()))
		assert.Equal(t, []string{"created"}, e.storedEvents(t, tn.GetId()))
	})
}

// TestDomainsWithoutDNSCheck runs the service as authms dev does with
// AUTHMS_INSECURE_SKIP_DOMAIN_CHECK=1: VerifyDomain verifies without asking
// DNS (the zone holds no record).
func TestDomainsWithoutDNSCheck(t *testing.T) {
	t.Parallel()
	e := startWith(t, startZone(t), tenant.Config{InsecureSkipDomainCheck: true})
	tn := e.create(t)
	e.addDomain(t, tn.GetId(), "dev.example")
	verified, err := e.verifyDomain(t, tn.GetId(), "dev.example")
	require.NoError(t, err)
	assert.Equal(t, tenantv1.DomainStatus_DOMAIN_STATUS_VERIFIED, verified.GetDomain().GetStatus())
}

func TestCheckPassword(t *testing.T) {
	t.Parallel()
	e := start(t)
	tn := e.create(t)
	check := func(t *testing.T, password string) []tenantv1.PasswordViolation {
		t.Helper()
		res, err := e.tenant.CheckPassword(t.Context(), connect.NewRequest(&tenantv1.CheckPasswordRequest{TenantId: tn.GetId(), Password: password}))
		require.NoError(t, err)
		return res.Msg.GetViolations()
	}
	const (
		short    = tenantv1.PasswordViolation_PASSWORD_VIOLATION_TOO_SHORT
		breached = tenantv1.PasswordViolation_PASSWORD_VIOLATION_BREACHED
	)

	t.Run("default policy", func(t *testing.T) {
		tests := []struct {
			name, password string
			want           []tenantv1.PasswordViolation
		}{
			{name: "short and breached", password: "password", want: []tenantv1.PasswordViolation{short, breached}},
			{name: "short", password: "Xk3#vQ9!zL", want: []tenantv1.PasswordViolation{short}},
			{name: "breached, long enough", password: "qwertyuiop123", want: []tenantv1.PasswordViolation{breached}},
			{name: "breached in another case", password: "PassWordPassWord", want: []tenantv1.PasswordViolation{breached}},
			{name: "breached year suffix", password: "liverpool2024", want: []tenantv1.PasswordViolation{breached}},
			{name: "digit run", password: "123456789012", want: []tenantv1.PasswordViolation{breached}},
			{name: "complies", password: "correct horse battery staple"},
			{name: "twelve code points", password: "пароль-сложн", want: nil},
			{name: "eleven code points, more bytes", password: "пароль-слож", want: []tenantv1.PasswordViolation{short}},
			{name: "empty", password: "", want: []tenantv1.PasswordViolation{short}},
		}
		for _, tt := range tests {
			assert.Equal(t, tt.want, check(t, tt.password), tt.name)
		}
	})

	t.Run("policy changes apply", func(t *testing.T) {
		_, err := e.tenant.UpdatePasswordPolicy(t.Context(), connect.NewRequest(&tenantv1.UpdatePasswordPolicyRequest{
			TenantId: tn.GetId(), Policy: &tenantv1.PasswordPolicy{MinLength: 20, CheckBreached: false},
		}))
		require.NoError(t, err)
		assert.Empty(t, check(t, "passwordpassword1234"), "breached but not checked")
		assert.Equal(t, []tenantv1.PasswordViolation{short}, check(t, "correct horse battery"[:19]))

		res, err := e.tenant.CheckPassword(t.Context(), connect.NewRequest(&tenantv1.CheckPasswordRequest{TenantId: tn.GetId(), Password: "x"}))
		require.NoError(t, err)
		assert.Equal(t, int32(20), res.Msg.GetPolicy().GetMinLength(), "the response carries the policy")
		assert.Equal(t, int64(2), res.Msg.GetVersion())
	})

	t.Run("too long for the API", func(t *testing.T) {
		_, err := e.tenant.CheckPassword(t.Context(), connect.NewRequest(&tenantv1.CheckPasswordRequest{TenantId: tn.GetId(), Password: strings.Repeat("x", 1025)}))
		requireInvalid(t, err, "password")
	})
}

// TestConfigRefusesASkippedCheckWithADNSServer checks that a DNS server
// and a skipped domain check, which would ignore it, are refused together.
func TestConfigRefusesASkippedCheckWithADNSServer(t *testing.T) {
	t.Parallel()
	require.NoError(t, tenant.Config{DNSServer: "127.0.0.1:53"}.Validate())
	require.NoError(t, tenant.Config{InsecureSkipDomainCheck: true}.Validate())
	err := tenant.Config{DNSServer: "127.0.0.1:53", InsecureSkipDomainCheck: true}.Validate()
	require.ErrorContains(t, err, "InsecureSkipDomainCheck")
}
