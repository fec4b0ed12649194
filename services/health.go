package services

import (
	"context"
	"time"
)

// defaultHealthInterval is how often the platform checks each service's
// database for grpc.health.v1.
const defaultHealthInterval = 2 * time.Second

// watchHealth reports a service NOT_SERVING while its own database does not
// answer (its API would only return Unavailable) or after its Run loop
// failed, and SERVING again once both are fine. Load balancers and
// orchestrators read it through grpc.health.v1.
func (p *Platform) watchHealth(ctx context.Context, u *unit, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	serving := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, interval)
		err := u.pool.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		ok := err == nil && !u.runFailed.Load()
		if ok == serving {
			continue
		}
		serving = ok
		p.setStatus(u.info.Name, ok)
		if ok {
			u.logger.Info("service healthy again: reported serving")
		} else {
			u.logger.Warn("service unhealthy: reported not serving", "err", err, "run_failed", u.runFailed.Load())
		}
	}
}
