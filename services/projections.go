package services

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authms/authms/events"
	"github.com/authms/authms/projections"
)

// ProjectionState summarises how a projector is doing.
type ProjectionState string

// Projector states, from best to worst.
const (
	// StateCaughtUp: nothing pending, nothing failing.
	StateCaughtUp ProjectionState = "caught_up"
	// StateCatchingUp: messages are pending and the projector is applying them.
	StateCatchingUp ProjectionState = "catching_up"
	// StatePaused: the durable consumer is paused on the server (a rebuild runs).
	StatePaused ProjectionState = "paused"
	// StateStalled: the service's database is unreachable; the projector waits.
	StateStalled ProjectionState = "stalled"
	// StateFailing: the projector keeps failing on one event.
	StateFailing ProjectionState = "failing"
)

// ProjectionStatus describes one projector of a running service.
type ProjectionStatus struct {
	Service, Name, Durable string
	// Source is the stream projected, e.g. "IDENTITY".
	Source string
	// Checkpoint is the stream sequence of the last event applied.
	Checkpoint uint64
	// Pending is the number of source messages not yet delivered to the
	// projector; AckPending those delivered and not yet acknowledged.
	Pending, AckPending, Redelivered uint64
	State                            ProjectionState
	// Rebuildable reports whether RebuildProjection can rebuild it.
	Rebuildable bool
	// Failure is the event the projector fails on, when State is failing.
	Failure *projections.Failure
}

// Projections reports every projector of the running services, in start
// order. A projector never reports itself caught up while it is failing on
// an event, waiting for its database, or paused.
func (p *Platform) Projections(ctx context.Context) ([]ProjectionStatus, error) {
	var out []ProjectionStatus
	var errs []error
	for _, u := range p.units {
		for i, proj := range u.projectors {
			st, err := p.projectionStatus(ctx, u, proj, u.consumers[i])
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, st)
		}
	}
	return out, errors.Join(errs...)
}

func (p *Platform) projectionStatus(ctx context.Context, u *unit, proj projections.Projector, c *events.Consumer) (ProjectionStatus, error) {
	st := ProjectionStatus{
		Service: u.info.Name, Name: proj.Name, Durable: proj.Durable(),
		Source: events.StreamName(proj.Source), Rebuildable: proj.Rebuild != nil,
	}
	state, err := projections.ReadState(ctx, u.pool, proj)
	if err != nil {
		return st, fmt.Errorf("%s: %w", st.Durable, err)
	}
	st.Checkpoint, st.Failure = state.Checkpoint, state.Failure
	cons, err := p.js.Consumer(ctx, st.Source, st.Durable)
	if err != nil {
		return st, fmt.Errorf("%s: %w", st.Durable, err)
	}
	info := cons.CachedInfo()
	st.Pending, st.AckPending, st.Redelivered = info.NumPending, uint64(info.NumAckPending), uint64(info.NumRedelivered)
	switch {
	case state.Failure != nil:
		st.State = StateFailing
	case c.Stats().Stalled:
		st.State = StateStalled
	case info.Paused:
		st.State = StatePaused
	case st.Pending > 0 || st.AckPending > 0:
		st.State = StateCatchingUp
	default:
		st.State = StateCaughtUp
	}
	return st, nil
}

// ErrUnknownProjection is returned for a service or projection that is not
// running in this process.
var ErrUnknownProjection = errors.New("no such projection in this process")

// RebuildProjection rebuilds one projection of a running service by replay
// (see projections.RebuildProjection), reporting progress to progress.
func (p *Platform) RebuildProjection(ctx context.Context, service, name string, progress func(projections.Progress)) (projections.RebuildResult, error) {
	u := p.byName[service]
	if u == nil {
		return projections.RebuildResult{}, fmt.Errorf("%s.%s: %w", service, name, ErrUnknownProjection)
	}
	for _, proj := range u.projectors {
		if proj.Name != name {
			continue
		}
		start := time.Now()
		res, err := projections.RebuildProjection(ctx, proj, projections.RebuildConfig{
			Pool: u.pool, JS: p.js, Logger: u.logger, Progress: progress,
		})
		if err != nil {
			return res, fmt.Errorf("rebuild %s.%s: %w", service, name, err)
		}
		u.logger.Info("rebuild finished", "projection", name, "events", res.Replayed, "took", time.Since(start).Round(time.Millisecond))
		return res, nil
	}
	return projections.RebuildResult{}, fmt.Errorf("%s.%s: %w", service, name, ErrUnknownProjection)
}
