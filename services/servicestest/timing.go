package servicestest

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// AssertSameTiming checks that two kinds of request an attacker must not
// tell apart (a known email and an unknown one, say) take alike: their
// median durations differ by less than 25%. Medians, over interleaved
// samples, so a pause of the machine does not decide the test. what
// names the request in the log, aName and bName the two kinds.
func AssertSameTiming(t *testing.T, what, aName string, a []time.Duration, bName string, b []time.Duration) {
	t.Helper()
	ma, mb := median(a), median(b)
	t.Logf("median %s: %s %v, %s %v", what, aName, ma, bName, mb)
	diff := float64(ma-mb) / float64(min(ma, mb))
	assert.Less(t, max(diff, -diff), 0.25, "medians differ by %.0f%%: %s %v, %s %v", 100*max(diff, -diff), aName, ma, bName, mb)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
