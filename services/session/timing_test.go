package session_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	sessionv1 "github.com/authms/authms/schemas/gen/authms/session/v1"
	"github.com/authms/authms/services/servicestest"
)

// productionLogins runs the login path at production cost: identity's
// default argon2id parameters, and loopback trusted as a proxy so each
// login can come from its own forwarded address (risk's per-address
// throttle would otherwise stop a long run from one address). The users
// are registered from the test's one address, so risk's registration
// throttle lets a run's worth through.
func productionLogins(tb testing.TB) *env {
	tb.Helper()
	return start(tb, servicestest.Options{
		Identity:       servicestest.ProductionHashing(),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Risk:           servicestest.ManyRegistrations(timedLogins),
	})
}

func loginFrom(ctx context.Context, e *env, ip, tenant, email, pw string) error {
	req := connect.NewRequest(&sessionv1.LoginRequest{TenantId: tenant, Email: email, Password: pw})
	req.Header().Set("X-Forwarded-For", ip)
	_, err := e.session.Login(ctx, req)
	return err
}

// timedLogins is how many users TestLoginTimeDoesNotRevealAccounts
// registers, and how many wrong logins of each kind (known and unknown
// email) it times.
const timedLogins = 200

// TestLoginTimeDoesNotRevealAccounts compares the median time of 200 wrong
// logins with known emails to that of 200 with unknown ones, interleaved in
// one run: identity's dummy hash must make them alike (a skipped hash
// shows as a tenfold gap).
func TestLoginTimeDoesNotRevealAccounts(t *testing.T) {
	e := productionLogins(t)
	tenant := e.newTenant(t)
	const n = timedLogins
	for i := range n {
		e.register(t, tenant, fmt.Sprintf("known%d@example.com", i))
	}
	var known, unknown []time.Duration
	for i := range n {
		order := []string{"known", "unknown"}
		if i%2 == 1 {
			slices.Reverse(order) // neither kind always goes first
		}
		for _, who := range order {
			start := time.Now()
			err := loginFrom(t.Context(), e, fmt.Sprintf("10.%d.%d.1", i/250, i%250), tenant, fmt.Sprintf("%s%d@example.com", who, i), "wrong password, long enough")
			took := time.Since(start)
			require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "%s %d: %v", who, i, err)
			if who == "known" {
				known = append(known, took)
			} else {
				unknown = append(unknown, took)
			}
		}
	}
	servicestest.AssertSameTiming(t, "login", "known email", known, "unknown email", unknown)
}

// BenchmarkLogin measures successful logins end to end (risk, identity at
// production argon2id cost, risk again, a new session and its tokens),
// from as many clients as cores.
func BenchmarkLogin(b *testing.B) {
	e := productionLogins(b)
	tenant := e.newTenant(b)
	e.register(b, tenant, "alice@example.com")
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := loginFrom(context.Background(), e, "10.0.0.1", tenant, "alice@example.com", password); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "logins/s")
}
