// Package projectionstest runs projectors in tests, as the platform runner
// does in production: one durable consumer per projector.
package projectionstest

import (
	"context"
	"sync"
	"testing"

	"github.com/authms/authms/projections"
)

// Run starts a consumer for each projector and stops them when tb ends.
func Run(tb testing.TB, cfg projections.Config, ps ...projections.Projector) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, p := range ps {
		c, err := projections.NewConsumer(p, cfg)
		if err != nil {
			cancel()
			tb.Fatalf("projectionstest: %v", err)
		}
		wg.Go(func() {
			if err := c.Run(ctx); err != nil {
				tb.Errorf("projectionstest: %s: %v", p.Durable(), err)
			}
		})
	}
	tb.Cleanup(func() { cancel(); wg.Wait() })
}
