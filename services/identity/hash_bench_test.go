package identity

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// BenchmarkHashPassword measures argon2id at the production parameters
// (DefaultConfig: 19 MiB, t=2, p=1) with one hasher slot per core, as the
// service runs it: the upper bound of logins and registrations per second.
func BenchmarkHashPassword(b *testing.B) {
	h, err := newHasher(DefaultConfig().Password, runtime.GOMAXPROCS(0))
	if err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(1) // GOMAXPROCS goroutines: one per slot
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.hash(context.Background(), "correct horse battery staple"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "hashes/s")
}
