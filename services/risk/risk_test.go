package risk_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/authms/authms/events"
	riskv1 "github.com/authms/authms/schemas/gen/authms/risk/v1"
	"github.com/authms/authms/schemas/gen/authms/risk/v1/riskv1connect"
	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/schemas/gen/authms/tenant/v1/tenantv1connect"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/servicestest"
)

// env runs tenant and risk for one test.
type env struct {
	*servicestest.Env
	risk   riskv1connect.RiskServiceClient
	tenant tenantv1connect.TenantServiceClient
	pool   *pgxpool.Pool
}

func start(t *testing.T) *env {
	t.Helper()
	e := servicestest.Start(t, "tenant", "risk")
	return &env{
		Env:    e,
		risk:   riskv1connect.NewRiskServiceClient(e.HTTP, e.URL, e.Impersonate()),
		tenant: tenantv1connect.NewTenantServiceClient(e.HTTP, e.URL, e.Impersonate(auth.RoleAdmin)),
		pool:   e.Pool("risk"),
	}
}

// login is one login's subject; policy and ipPolicy, when set, go with
// every request.
type login struct {
	tenant, email, ip string
	policy            *riskv1.LockoutPolicy
	ipPolicy          *riskv1.IpThrottlePolicy
}

func newLogin() login {
	return login{tenant: uuid.NewString(), email: "alice@example.com", ip: "203.0.113.7"}
}

func (e *env) attempt(t *testing.T, l login) *riskv1.AttemptLoginResponse {
	t.Helper()
	res, err := e.risk.AttemptLogin(context.WithoutCancel(t.Context()), connect.NewRequest(&riskv1.AttemptLoginRequest{
		TenantId: l.tenant, Email: l.email, Ip: l.ip, LockoutPolicy: l.policy, IpThrottlePolicy: l.ipPolicy,
	}))
	require.NoError(t, err)
	return res.Msg
}

func (e *env) report(t *testing.T, l login, attemptID string, success bool) *riskv1.ReportLoginResultResponse {
	t.Helper()
	res, err := e.risk.ReportLoginResult(context.WithoutCancel(t.Context()), connect.NewRequest(&riskv1.ReportLoginResultRequest{
		TenantId: l.tenant, AttemptId: attemptID, Success: success, LockoutPolicy: l.policy, IpThrottlePolicy: l.ipPolicy,
	}))
	require.NoError(t, err)
	return res.Msg
}

// fail runs one wrong-password login through AttemptLogin and
// ReportLoginResult; it reports whether the attempt was let through.
func (e *env) fail(t *testing.T, l login) bool {
	t.Helper()
	a := e.attempt(t, l)
	if !a.GetAllowed() {
		return false
	}
	e.report(t, l, a.GetAttemptId(), false)
	return true
}

func (e *env) record(t *testing.T, l login, success bool) *riskv1.RecordLoginAttemptResponse {
	t.Helper()
	res, err := e.risk.RecordLoginAttempt(t.Context(), connect.NewRequest(&riskv1.RecordLoginAttemptRequest{
		TenantId: l.tenant, Email: l.email, Ip: l.ip, Success: success, LockoutPolicy: l.policy, IpThrottlePolicy: l.ipPolicy,
	}))
	require.NoError(t, err)
	return res.Msg
}

func (e *env) check(t *testing.T, l login) *riskv1.CheckLoginResponse {
	t.Helper()
	res, err := e.risk.CheckLogin(t.Context(), connect.NewRequest(&riskv1.CheckLoginRequest{
		TenantId: l.tenant, Email: l.email, Ip: l.ip, LockoutPolicy: l.policy, IpThrottlePolicy: l.ipPolicy,
	}))
	require.NoError(t, err)
	return res.Msg
}

func (e *env) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, e.pool.QueryRow(t.Context(), sql, args...).Scan(&n))
	return n
}

// storedEvents returns the subjects of a tenant's risk events in order.
func (e *env) storedEvents(t *testing.T, tenant string) []string {
	t.Helper()
	rows, err := e.pool.Query(t.Context(), "SELECT subject FROM events WHERE tenant_id = $1 ORDER BY position", tenant)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}

// published waits for the first event of tenant on subject in the RISK
// stream and decodes its payload into m.
func published(t *testing.T, js jetstream.JetStream, subject, tenant string, m proto.Message) events.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, events.StreamName("risk"), jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	require.NoError(t, err)
	for {
		msg, err := cons.Next(jetstream.FetchContext(ctx))
		require.NoError(t, err, "waiting for %s of tenant %s", subject, tenant)
		ev, err := events.FromMsg(msg.Subject(), msg.Headers(), msg.Data())
		require.NoError(t, err)
		if ev.TenantID == tenant {
			require.NoError(t, ev.Unmarshal(m))
			return ev
		}
	}
}

func violations(t *testing.T, err error) []string {
	t.Helper()
	var ce *connect.Error
	require.ErrorAs(t, err, &ce)
	var fields []string
	for _, d := range ce.Details() {
		v, derr := d.Value()
		require.NoError(t, derr)
		if vs, ok := v.(*validatepb.Violations); ok {
			for _, viol := range vs.GetViolations() {
				var path []string
				for _, el := range viol.GetField().GetElements() {
					path = append(path, el.GetFieldName())
				}
				fields = append(fields, strings.Join(path, "."))
			}
		}
	}
	return fields
}

func TestLockout(t *testing.T) {
	t.Parallel()
	e := start(t)

	t.Run("after 5 failures by default", func(t *testing.T) {
		t.Parallel()
		l := newLogin()
		userID := uuid.NewString()
		for i := range 4 {
			a := e.attempt(t, l)
			require.True(t, a.GetAllowed(), "attempt %d", i+1)
			res, err := e.risk.ReportLoginResult(t.Context(), connect.NewRequest(&riskv1.ReportLoginResultRequest{
				TenantId: l.tenant, AttemptId: a.GetAttemptId(), UserId: proto.String(userID),
			}))
			require.NoError(t, err)
			assert.False(t, res.Msg.GetAccountLocked(), "attempt %d", i+1)
		}
		a := e.attempt(t, l)
		require.True(t, a.GetAllowed(), "the 5th attempt")
		res := e.report(t, l, a.GetAttemptId(), false)
		assert.True(t, res.GetAccountLocked(), "the 5th failure locks")
		assert.Equal(t, 15*time.Minute, res.GetAccountRetryAfter().AsDuration())

		denied := e.attempt(t, l)
		assert.False(t, denied.GetAllowed())
		assert.Empty(t, denied.GetAttemptId())
		assert.Equal(t, riskv1.DenyReason_DENY_REASON_ACCOUNT_LOCKED, denied.GetReason())
		assert.InDelta(t, (15 * time.Minute).Seconds(), denied.GetRetryAfter().AsDuration().Seconds(), 60)
		assert.Equal(t, riskv1.DenyReason_DENY_REASON_ACCOUNT_LOCKED, e.check(t, l).GetReason())

		for _, variant := range []string{" Alice@EXAMPLE.com ", "ALICE@example.com.", "alice@EXAMPLE.COM"} {
			v := l
			v.email = variant
			assert.False(t, e.attempt(t, v).GetAllowed(), "%q is the same account", variant)
		}
		other := l
		other.email = "bob@example.com"
		assert.True(t, e.check(t, other).GetAllowed(), "another account of the tenant")
		other = l
		other.tenant = uuid.NewString()
		assert.True(t, e.check(t, other).GetAllowed(), "the same email in another tenant")

		var locked riskv1.AccountLocked
		ev := published(t, e.JS, "risk.account.locked", l.tenant, &locked)
		assert.Equal(t, "risk.account.locked.v1", ev.Type())
		assert.Equal(t, int64(1), ev.Version)
		assert.Equal(t, locked.GetAccountId(), ev.AggregateID)
		assert.Len(t, locked.GetAccountId(), 64, "hex HMAC-SHA256")
		assert.Equal(t, userID, locked.GetUserId(), "the reported user")
		assert.Equal(t, int32(5), locked.GetFailures())
		assert.Equal(t, int32(5), locked.GetPolicy().GetMaxFailures())
		assert.Equal(t, 15*time.Minute, locked.GetPolicy().GetLockoutDuration().AsDuration())
		assert.Equal(t, []string{"risk.account.locked"}, e.storedEvents(t, l.tenant), "one lock, no event per attempt")
	})

	t.Run("the email is never stored or published", func(t *testing.T) {
		t.Parallel()
		l := newLogin()
		l.email = "carol-" + uuid.NewString() + "@example.com"
		l.policy = &riskv1.LockoutPolicy{MaxFailures: 1, Window: durationpb.New(time.Minute), LockoutDuration: durationpb.New(time.Minute)}
		require.True(t, e.fail(t, l))
		require.False(t, e.check(t, l).GetAllowed())
		needle := []byte(strings.TrimSuffix(l.email, "@example.com"))
		for _, table := range []string{"accounts", "login_attempts", "events", "outbox"} {
			rows, err := e.pool.Query(t.Context(), "SELECT t::text FROM "+table+" t")
			require.NoError(t, err)
			for rows.Next() {
				var row string
				require.NoError(t, rows.Scan(&row))
				assert.False(t, bytes.Contains([]byte(row), needle), "%s holds the email", table)
			}
			require.NoError(t, rows.Err())
			rows.Close()
		}
	})

	t.Run("a success clears the failures", func(t *testing.T) {
		t.Parallel()
		l := newLogin()
		for range 4 {
			require.True(t, e.fail(t, l))
		}
		a := e.attempt(t, l)
		require.True(t, a.GetAllowed())
		assert.False(t, e.report(t, l, a.GetAttemptId(), true).GetAccountLocked())
		for i := range 4 {
			require.True(t, e.fail(t, l), "failure %d after the success", i+1)
		}
		assert.True(t, e.check(t, l).GetAllowed(), "4 failures since the success")
		require.True(t, e.fail(t, l))
		assert.False(t, e.check(t, l).GetAllowed(), "the 5th since the success locks")
	})

	t.Run("expires after the lockout duration", func(t *testing.T) {
		t.Parallel()
		l := newLogin()
		l.policy = &riskv1.LockoutPolicy{MaxFailures: 3, Window: durationpb.New(time.Hour), LockoutDuration: durationpb.New(time.Second)}
		for range 3 {
			require.True(t, e.fail(t, l))
		}
		denied := e.attempt(t, l)
		require.False(t, denied.GetAllowed())
		assert.Equal(t, riskv1.DenyReason_DENY_REASON_ACCOUNT_LOCKED, denied.GetReason())
		assert.Equal(t, time.Second, denied.GetRetryAfter().AsDuration(), "rounded up to whole seconds")

		require.Eventually(t, func() bool { return e.check(t, l).GetAllowed() }, 20*time.Second, 50*time.Millisecond,
			"the lock lifts by itself")
		// The failures that caused the lock count no more: a full budget.
		for i := range 3 {
			require.True(t, e.fail(t, l), "attempt %d after the lock", i+1)
		}
		assert.False(t, e.attempt(t, l).GetAllowed(), "locked again")
		assert.Equal(t, []string{"risk.account.locked", "risk.account.locked"}, e.storedEvents(t, l.tenant))
	})

	t.Run("admin unlock", func(t *testing.T) {
		t.Parallel()
		l := newLogin()
		for range 5 {
			require.True(t, e.fail(t, l))
		}
		require.False(t, e.check(t, l).GetAllowed())

		res, err := e.risk.UnlockAccount(t.Context(), connect.NewRequest(&riskv1.UnlockAccountRequest{TenantId: l.tenant, Email: "ALICE@example.com"}))
		require.NoError(t, err)
		assert.True(t, res.Msg.GetWasLocked())
		a := e.attempt(t, l)
		assert.True(t, a.GetAllowed(), "unlocked")
		e.report(t, l, a.GetAttemptId(), false)
		assert.True(t, e.check(t, l).GetAllowed(), "and the failures before the unlock no longer count")

		res, err = e.risk.UnlockAccount(t.Context(), connect.NewRequest(&riskv1.UnlockAccountRequest{TenantId: l.tenant, Email: l.email}))
		require.NoError(t, err)
		assert.False(t, res.Msg.GetWasLocked(), "not locked any more")
		res, err = e.risk.UnlockAccount(t.Context(), connect.NewRequest(&riskv1.UnlockAccountRequest{TenantId: l.tenant, Email: "nobody@example.com"}))
		require.NoError(t, err)
		assert.False(t, res.Msg.GetWasLocked(), "never seen")

		var unlocked riskv1.AccountUnlocked
		ev := published(t, e.JS, "risk.account.unlocked", l.tenant, &unlocked)
		assert.Equal(t, int64(2), ev.Version, "after risk.account.locked")
		assert.Equal(t, ev.AggregateID, unlocked.GetAccountId())
		assert.Equal(t, []string{"risk.account.locked", "risk.account.unlocked"}, e.storedEvents(t, l.tenant))
	})

	t.Run("reports", func(t *testing.T) {
		t.Parallel()
		l := newLogin()
		a := e.attempt(t, l)
		require.True(t, a.GetAllowed())
		for range 3 {
			e.report(t, l, a.GetAttemptId(), false) // repeated: counted once
		}
		assert.Equal(t, 1, e.count(t, "SELECT count(*) FROM login_attempts WHERE id = $1 AND outcome = 'failure'", a.GetAttemptId()))
		for range 3 {
			require.True(t, e.fail(t, l))
		}
		assert.True(t, e.check(t, l).GetAllowed(), "4 failures")

		_, err := e.risk.ReportLoginResult(t.Context(), connect.NewRequest(&riskv1.ReportLoginResultRequest{TenantId: l.tenant, AttemptId: uuid.NewString()}))
		assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "unknown attempt")
		_, err = e.risk.ReportLoginResult(t.Context(), connect.NewRequest(&riskv1.ReportLoginResultRequest{TenantId: uuid.NewString(), AttemptId: a.GetAttemptId()}))
		assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "another tenant's attempt")
	})

	t.Run("recorded attempts count too", func(t *testing.T) {
		t.Parallel()
		l := newLogin()
		for i := range 4 {
			assert.False(t, e.record(t, l, false).GetAccountLocked(), "failure %d", i+1)
		}
		res := e.record(t, l, false)
		assert.True(t, res.GetAccountLocked())
		assert.Equal(t, riskv1.DenyReason_DENY_REASON_ACCOUNT_LOCKED, e.attempt(t, l).GetReason())
		assert.True(t, e.record(t, l, true).GetAccountLocked(), "a success does not lift a lock")
	})
}

// TestParallelAttemptsNeverExceedTheLimit is the brute-force race: many
// wrong passwords at once, each from another address (as rotating
// X-Forwarded-For headers would make them), must not get more than
// max_failures attempts through.
func TestParallelAttemptsNeverExceedTheLimit(t *testing.T) {
	t.Parallel()
	e := start(t)
	const n = 50

	t.Run("attempt and report", func(t *testing.T) {
		t.Parallel()
		l := newLogin()
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			allowed int
			reasons = map[riskv1.DenyReason]int{}
		)
		for i := range n {
			wg.Go(func() {
				li := l
				li.ip = fmt.Sprintf("198.51.100.%d", i+1)
				a := e.attempt(t, li)
				if a.GetAllowed() {
					e.report(t, li, a.GetAttemptId(), false)
				}
				mu.Lock()
				defer mu.Unlock()
				if a.GetAllowed() {
					allowed++
				} else {
					reasons[a.GetReason()]++
				}
			})
		}
		wg.Wait()
		assert.Equal(t, 5, allowed, "exactly max_failures attempts get through")
		assert.Equal(t, n-5, reasons[riskv1.DenyReason_DENY_REASON_ACCOUNT_LOCKED]+reasons[riskv1.DenyReason_DENY_REASON_ACCOUNT_BUSY])
		assert.Equal(t, riskv1.DenyReason_DENY_REASON_ACCOUNT_LOCKED, e.attempt(t, l).GetReason())
		assert.Equal(t, 5, e.count(t, "SELECT count(*) FROM login_attempts WHERE tenant_id = $1 AND outcome = 'failure'", l.tenant))
		assert.Equal(t, []string{"risk.account.locked"}, e.storedEvents(t, l.tenant), "locked once")
	})

	t.Run("reservations count before their results", func(t *testing.T) {
		t.Parallel()
		l := newLogin()
		var (
			wg  sync.WaitGroup
			mu  sync.Mutex
			ids []string
		)
		for i := range n {
			wg.Go(func() {
				li := l
				li.ip = fmt.Sprintf("2001:db8:%x::1", i+1)
				a := e.attempt(t, li)
				mu.Lock()
				defer mu.Unlock()
				if a.GetAllowed() {
					ids = append(ids, a.GetAttemptId())
				} else {
					assert.Equal(t, riskv1.DenyReason_DENY_REASON_ACCOUNT_BUSY, a.GetReason())
					assert.Positive(t, a.GetRetryAfter().AsDuration())
				}
			})
		}
		wg.Wait()
		require.Len(t, ids, 5, "five reservations, none reported yet")
		// One success frees the account: its failures and its own
		// reservation are gone, the other four still count.
		e.report(t, l, ids[0], true)
		a := e.attempt(t, l)
		assert.True(t, a.GetAllowed())
		assert.False(t, e.attempt(t, l).GetAllowed(), "4 + 1 reservations again")
	})
}

func TestIPThrottle(t *testing.T) {
	t.Parallel()
	e := start(t)

	t.Run("100 failures in 5 minutes by default", func(t *testing.T) {
		t.Parallel()
		l := newLogin()
		for i := range 100 {
			li := l
			li.email = fmt.Sprintf("user%d@example.com", i) // spraying: one failure per account
			res := e.record(t, li, false)
			require.False(t, res.GetAccountLocked())
			require.Equal(t, i == 99, res.GetIpThrottled(), "failure %d", i+1)
		}
		fresh := l
		fresh.email = "fresh@example.com"
		denied := e.attempt(t, fresh)
		assert.False(t, denied.GetAllowed())
		assert.Equal(t, riskv1.DenyReason_DENY_REASON_IP_THROTTLED, denied.GetReason())
		assert.LessOrEqual(t, denied.GetRetryAfter().AsDuration(), 5*time.Minute)
		assert.Equal(t, riskv1.DenyReason_DENY_REASON_IP_THROTTLED, e.check(t, fresh).GetReason())

		otherIP := fresh
		otherIP.ip = "203.0.113.8"
		assert.True(t, e.check(t, otherIP).GetAllowed(), "another address")
		otherTenant := fresh
		otherTenant.tenant = uuid.NewString()
		assert.True(t, e.check(t, otherTenant).GetAllowed(), "the address in another tenant")

		e.record(t, fresh, false) // more failures while throttled publish nothing more
		var throttled riskv1.IpThrottled
		ev := published(t, e.JS, "risk.ip.throttled", l.tenant, &throttled)
		assert.Equal(t, l.tenant+"/203.0.113.7", ev.AggregateID)
		assert.Equal(t, "203.0.113.7", throttled.GetIp())
		assert.Equal(t, int32(100), throttled.GetFailures())
		assert.Equal(t, int32(100), throttled.GetPolicy().GetMaxFailures())
		assert.Equal(t, []string{"risk.ip.throttled"}, e.storedEvents(t, l.tenant))
	})

	t.Run("an IPv6 client by its /64", func(t *testing.T) {
		t.Parallel()
		l := newLogin()
		l.ipPolicy = &riskv1.IpThrottlePolicy{MaxFailures: 3, Window: durationpb.New(time.Minute)}
		for i := range 3 {
			li := l
			li.ip = fmt.Sprintf("2001:db8:1:2::%x", i+1)
			li.email = fmt.Sprintf("user%d@example.com", i)
			e.record(t, li, false)
		}
		same := l
		same.ip = "2001:db8:1:2:ffff::1"
		assert.Equal(t, riskv1.DenyReason_DENY_REASON_IP_THROTTLED, e.check(t, same).GetReason(), "same /64")
		next := l
		next.ip = "2001:db8:1:3::1"
		assert.True(t, e.check(t, next).GetAllowed(), "the next /64")
		mapped := l
		mapped.ip = "::ffff:203.0.113.7"
		assert.True(t, e.check(t, mapped).GetAllowed())
	})

	t.Run("throttle lifts when failures leave the window", func(t *testing.T) {
		t.Parallel()
		l := newLogin()
		l.ipPolicy = &riskv1.IpThrottlePolicy{MaxFailures: 2, Window: durationpb.New(time.Second)}
		l.policy = &riskv1.LockoutPolicy{MaxFailures: 10, Window: durationpb.New(time.Hour), LockoutDuration: durationpb.New(time.Hour)}
		require.True(t, e.fail(t, l))
		require.True(t, e.fail(t, l))
		assert.Equal(t, riskv1.DenyReason_DENY_REASON_IP_THROTTLED, e.attempt(t, l).GetReason())
		require.Eventually(t, func() bool { return e.check(t, l).GetAllowed() }, 20*time.Second, 50*time.Millisecond)
	})
}

func TestTenantLockoutPolicyIsProjected(t *testing.T) {
	t.Parallel()
	e := start(t)
	created, err := e.tenant.CreateTenant(t.Context(), connect.NewRequest(&tenantv1.CreateTenantRequest{Slug: "strict", DisplayName: "Strict"}))
	require.NoError(t, err)
	tn := created.Msg.GetTenant()
	_, err = e.tenant.UpdateLockoutPolicy(t.Context(), connect.NewRequest(&tenantv1.UpdateLockoutPolicyRequest{
		TenantId: tn.GetId(),
		Policy:   &tenantv1.LockoutPolicy{MaxFailures: 3, Window: durationpb.New(time.Hour), LockoutDuration: durationpb.New(2 * time.Hour)},
	}))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return e.count(t, "SELECT count(*) FROM tenant_lockout_policies WHERE tenant_id = $1 AND version = 2", tn.GetId()) == 1
	}, 20*time.Second, 20*time.Millisecond, "risk projects the tenant's lockout policy")

	l := newLogin()
	l.tenant = tn.GetId()
	for range 3 {
		require.True(t, e.fail(t, l))
	}
	denied := e.attempt(t, l)
	assert.Equal(t, riskv1.DenyReason_DENY_REASON_ACCOUNT_LOCKED, denied.GetReason(), "3 failures lock in this tenant")
	assert.InDelta(t, (2 * time.Hour).Seconds(), denied.GetRetryAfter().AsDuration().Seconds(), 60)

	var locked riskv1.AccountLocked
	published(t, e.JS, "risk.account.locked", tn.GetId(), &locked)
	assert.Equal(t, int32(3), locked.GetPolicy().GetMaxFailures())

	other := newLogin()
	for range 4 {
		require.True(t, e.fail(t, other))
	}
	assert.True(t, e.check(t, other).GetAllowed(), "a tenant risk knows no policy for gets the default, 5")

	// The cache is rebuilt from the TENANT stream alone.
	_, err = e.pool.Exec(t.Context(), "UPDATE tenant_lockout_policies SET max_failures = 99")
	require.NoError(t, err)
	_, err = e.Platform.RebuildProjection(t.Context(), "risk", "tenant_lockout_policies", nil)
	require.NoError(t, err)
	assert.Equal(t, 1, e.count(t, `SELECT count(*) FROM tenant_lockout_policies
		WHERE tenant_id = $1 AND max_failures = 3 AND window_seconds = 3600 AND duration_seconds = 7200 AND version = 2`, tn.GetId()))
}

func TestBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	e := start(t)
	l := newLogin()
	tests := []struct {
		name  string
		req   *riskv1.AttemptLoginRequest
		field string
	}{
		{name: "bad tenant", req: &riskv1.AttemptLoginRequest{TenantId: "acme", Email: l.email, Ip: l.ip}, field: "tenant_id"},
		{name: "no email", req: &riskv1.AttemptLoginRequest{TenantId: l.tenant, Ip: l.ip}, field: "email"},
		{name: "email too long", req: &riskv1.AttemptLoginRequest{TenantId: l.tenant, Email: strings.Repeat("a", 321), Ip: l.ip}, field: "email"},
		{name: "bad ip", req: &riskv1.AttemptLoginRequest{TenantId: l.tenant, Email: l.email, Ip: "999.1.1.1"}, field: "ip"},
		{name: "host and port", req: &riskv1.AttemptLoginRequest{TenantId: l.tenant, Email: l.email, Ip: "203.0.113.7:443"}, field: "ip"},
		{name: "no ip", req: &riskv1.AttemptLoginRequest{TenantId: l.tenant, Email: l.email}, field: "ip"},
		{
			name: "zero max failures", field: "lockout_policy.max_failures",
			req: &riskv1.AttemptLoginRequest{TenantId: l.tenant, Email: l.email, Ip: l.ip, LockoutPolicy: &riskv1.LockoutPolicy{
				Window: durationpb.New(time.Minute), LockoutDuration: durationpb.New(time.Minute),
			}},
		},
		{
			name: "lockout over a day", field: "lockout_policy.lockout_duration",
			req: &riskv1.AttemptLoginRequest{TenantId: l.tenant, Email: l.email, Ip: l.ip, LockoutPolicy: &riskv1.LockoutPolicy{
				MaxFailures: 5, Window: durationpb.New(time.Minute), LockoutDuration: durationpb.New(25 * time.Hour),
			}},
		},
		{
			name: "throttle without window", field: "ip_throttle_policy.window",
			req: &riskv1.AttemptLoginRequest{TenantId: l.tenant, Email: l.email, Ip: l.ip, IpThrottlePolicy: &riskv1.IpThrottlePolicy{MaxFailures: 5}},
		},
	}
	for _, tt := range tests {
		_, err := e.risk.AttemptLogin(t.Context(), connect.NewRequest(tt.req))
		assert.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), tt.name)
		assert.Contains(t, violations(t, err), tt.field, tt.name)
	}
	_, err := e.risk.ReportLoginResult(t.Context(), connect.NewRequest(&riskv1.ReportLoginResultRequest{TenantId: l.tenant, AttemptId: "1"}))
	assert.Contains(t, violations(t, err), "attempt_id")
	_, err = e.risk.UnlockAccount(t.Context(), connect.NewRequest(&riskv1.UnlockAccountRequest{TenantId: l.tenant}))
	assert.Contains(t, violations(t, err), "email")
	for field, req := range map[string]*riskv1.AttemptPasswordResetRequest{
		"tenant_id":              {TenantId: "acme", Ip: l.ip},
		"ip":                     {TenantId: l.tenant, Ip: "203.0.113.7:443"},
		"throttle_policy.window": {TenantId: l.tenant, Ip: l.ip, ThrottlePolicy: &riskv1.PublicRequestThrottlePolicy{MaxRequests: 5}},
		"throttle_policy.max_requests": {TenantId: l.tenant, Ip: l.ip, ThrottlePolicy: &riskv1.PublicRequestThrottlePolicy{
			Window: durationpb.New(time.Minute),
		}},
	} {
		_, err := e.risk.AttemptPasswordReset(t.Context(), connect.NewRequest(req))
		assert.Contains(t, violations(t, err), field)
	}
	for field, req := range map[string]*riskv1.AttemptRegistrationRequest{
		"tenant_id": {TenantId: "acme", Ip: l.ip},
		"ip":        {TenantId: l.tenant, Ip: "not an address"},
		"throttle_policy.window": {TenantId: l.tenant, Ip: l.ip, ThrottlePolicy: &riskv1.PublicRequestThrottlePolicy{
			MaxRequests: 5, Window: durationpb.New(25 * time.Hour),
		}},
		"throttle_policy.max_requests": {TenantId: l.tenant, Ip: l.ip, ThrottlePolicy: &riskv1.PublicRequestThrottlePolicy{
			MaxRequests: 100001, Window: durationpb.New(time.Minute),
		}},
	} {
		_, err := e.risk.AttemptRegistration(t.Context(), connect.NewRequest(req))
		assert.Contains(t, violations(t, err), field)
	}

	for _, table := range []string{"accounts", "addresses", "login_attempts", "public_requests", "events"} {
		assert.Equal(t, 0, e.count(t, "SELECT count(*) FROM "+table), table)
	}
}
