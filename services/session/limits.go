package session

import (
	"context"
	"fmt"
	"time"

	"github.com/authms/authms/services/session/store"
)

// RateLimit allows Max calls per Window.
type RateLimit struct {
	Max    int
	Window time.Duration
}

// Scopes of refresh_limits.
const (
	limitAddress = "address"
	limitSession = "session"
)

// RefreshLimitedError reports a Refresh refused by one of its rate limits:
// the caller's address presented too many tokens that name no session, or
// the session the token belongs to was refreshed too often, in the current
// window.
type RefreshLimitedError struct {
	// PerSession says it was the session's limit, not the address's.
	PerSession bool
	RetryAfter time.Duration
}

func (e *RefreshLimitedError) Error() string {
	if e.PerSession {
		return "too many refreshes of this session; retry later"
	}
	return "too many refresh attempts from this address; retry later"
}

// limitRefresh counts one Refresh call against the key's limit in scope
// and returns a *RefreshLimitedError once the current window holds more
// than limit.Max calls. A refused call is not counted: the row stops at
// limit.Max+1.
//
// The counter is a row of session's own database (refresh_limits), bumped
// by one upsert in its own short transaction, not a counter in memory
// (which every instance would keep apart, multiplying the limit by the
// number of instances) and not risk's throttle: risk counts failed logins
// of a tenant's accounts and addresses, while an unknown refresh token
// names no tenant, and asking risk would put a second service on the path
// of every refresh. Every instance shares the row, so the limit holds
// however many run, and the row lock serialises concurrent calls without
// losing one. A client that keeps hammering stays refused until the
// window ends, counted or not.
func (s *Service) limitRefresh(ctx context.Context, limit RateLimit, scope, key string) error {
	now := s.now()
	row, err := store.New(s.deps.Pool).HitRefreshLimit(ctx, store.HitRefreshLimitParams{
		Scope: scope, Key: key, Now: now, Stale: now.Add(-limit.Window), Ceiling: int32(limit.Max) + 1,
	})
	if err != nil {
		return fmt.Errorf("count refresh against the %s limit: %w", scope, err)
	}
	if int(row.Hits) <= limit.Max {
		return nil
	}
	return &RefreshLimitedError{PerSession: scope == limitSession, RetryAfter: row.WindowStart.Add(limit.Window).Sub(now)}
}

// pruneRefreshLimits deletes the counters of windows that are over.
func (s *Service) pruneRefreshLimits(ctx context.Context) error {
	window := max(s.cfg.RefreshLimitPerAddress.Window, s.cfg.RefreshLimitPerSession.Window)
	n, err := store.New(s.deps.Pool).DeleteStaleRefreshLimits(ctx, s.now().Add(-window))
	if err != nil {
		return fmt.Errorf("delete refresh limit counters: %w", err)
	}
	if n > 0 {
		s.deps.Logger.DebugContext(ctx, "pruned refresh limit counters", "counters", n)
	}
	return nil
}
