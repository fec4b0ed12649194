package risk

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAddressKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{in: "203.0.113.7", want: "203.0.113.7"},
		{in: "::ffff:203.0.113.7", want: "203.0.113.7"},
		{in: "2001:db8:1:2:3:4:5:6", want: "2001:db8:1:2::/64"},
		{in: "2001:DB8:1:2::1", want: "2001:db8:1:2::/64"},
		{in: "fe80::1%eth0", want: "fe80::/64"},
		{in: "::1", want: "::/64"},
	}
	for _, tt := range tests {
		got, err := addressKey(tt.in)
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
	for _, bad := range []string{"", "203.0.113.7:80", "example.com", "999.1.1.1"} {
		_, err := addressKey(bad)
		assert.Error(t, err, bad)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	for in, want := range map[time.Duration]time.Duration{
		0:                       time.Second,
		-time.Second:            time.Second,
		time.Millisecond:        time.Second,
		time.Second:             time.Second,
		time.Second + 1:         2 * time.Second,
		15*time.Minute - 300000: 15 * time.Minute,
	} {
		assert.Equal(t, want, retryAfter(in).AsDuration(), in)
	}
}

func TestCountsFreesAt(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	window := 10 * time.Minute
	assert.Equal(t, t0.Add(window), counts{failures: 1, oldestFailure: t0}.freesAt(window))
	assert.Equal(t, t0.Add(time.Minute), counts{pending: 1, firstExpiry: t0.Add(time.Minute)}.freesAt(window))
	assert.Equal(t, t0.Add(time.Minute), counts{failures: 1, oldestFailure: t0, pending: 1, firstExpiry: t0.Add(time.Minute)}.freesAt(window),
		"whichever comes first")
	assert.Equal(t, t0.Add(window), counts{failures: 1, oldestFailure: t0, pending: 1, firstExpiry: t0.Add(time.Hour)}.freesAt(window))
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, Config{}.Validate())
	def := DefaultConfig()
	assert.Equal(t, LockoutPolicy{MaxFailures: 5, Window: 15 * time.Minute, Duration: 15 * time.Minute}, def.Lockout)
	assert.Equal(t, IPThrottlePolicy{MaxFailures: 100, Window: 5 * time.Minute}, def.IPThrottle)
	assert.Equal(t, PublicRequestThrottlePolicy{MaxRequests: 20, Window: 15 * time.Minute}, def.ResetThrottle)
	assert.Equal(t, PublicRequestThrottlePolicy{MaxRequests: 20, Window: 15 * time.Minute}, def.RegistrationThrottle)

	err := Config{
		Lockout:              LockoutPolicy{MaxFailures: 0, Window: time.Minute, Duration: time.Minute},
		IPThrottle:           IPThrottlePolicy{MaxFailures: 10, Window: 48 * time.Hour},
		ResetThrottle:        PublicRequestThrottlePolicy{MaxRequests: -1, Window: time.Minute},
		RegistrationThrottle: PublicRequestThrottlePolicy{MaxRequests: 10, Window: 25 * time.Hour},
		ReservationTTL:       -time.Second,
		Retention:            time.Hour,
	}.Validate()
	require.Error(t, err)
	for _, want := range []string{"lockout policy", "IP throttle policy", "password_reset throttle policy", "registration throttle policy",
		"reservation TTL", "retention"} {
		assert.True(t, strings.Contains(err.Error(), want), "%q in %v", want, err)
	}
}
