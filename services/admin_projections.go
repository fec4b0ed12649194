package services

import (
	"context"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/projections"
	adminv1 "github.com/authms/authms/schemas/gen/authms/admin/v1"
)

// ListProjections reports every projector of the running services.
func (a *adminAPI) ListProjections(ctx context.Context, _ *connect.Request[adminv1.ListProjectionsRequest]) (*connect.Response[adminv1.ListProjectionsResponse], error) {
	sts, err := a.p.Projections(ctx)
	if err != nil {
		return nil, a.error(ctx, "ListProjections", err)
	}
	res := &adminv1.ListProjectionsResponse{}
	for _, st := range sts {
		res.Projections = append(res.Projections, projectionToProto(st))
	}
	return connect.NewResponse(res), nil
}

// RebuildProjection rebuilds one projection, streaming its progress.
func (a *adminAPI) RebuildProjection(ctx context.Context, req *connect.Request[adminv1.RebuildProjectionRequest], stream *connect.ServerStream[adminv1.RebuildProjectionResponse]) error {
	var sendErr error
	res, err := a.p.RebuildProjection(ctx, req.Msg.GetService(), req.Msg.GetName(), func(p projections.Progress) {
		if sendErr == nil && p.Phase != "done" {
			sendErr = stream.Send(progressToProto(p))
		}
	})
	if err != nil {
		return a.error(ctx, "RebuildProjection", err)
	}
	if sendErr != nil {
		return sendErr // the client went away; the rebuild finished anyway
	}
	done := progressToProto(projections.Progress{Phase: "done", Replayed: res.Replayed, Total: res.Replayed, Elapsed: res.Took})
	done.LastSequence, done.Skipped = res.LastSequence, res.Skipped
	return stream.Send(done)
}

// RepublishEvents republishes a service's events table to its stream,
// streaming progress.
func (a *adminAPI) RepublishEvents(ctx context.Context, req *connect.Request[adminv1.RepublishEventsRequest], stream *connect.ServerStream[adminv1.RepublishEventsResponse]) error {
	service := req.Msg.GetService()
	if err := a.running(service); err != nil {
		return a.error(ctx, "RepublishEvents", err)
	}
	// A lost stream is recreated first, with the platform's limits.
	if err := events.EnsureStreams(ctx, a.js, service, a.p.streams); err != nil {
		return a.error(ctx, "RepublishEvents", err)
	}
	var sendErr error
	last := time.Time{}
	res, err := events.Republish(ctx, events.RepublishConfig{
		Service: service, Pool: a.p.Pool(service), JS: a.js, FromStart: req.Msg.GetFromStart(),
		Progress: func(done, total uint64) {
			if sendErr == nil && time.Since(last) >= 100*time.Millisecond {
				last = time.Now()
				sendErr = stream.Send(&adminv1.RepublishEventsResponse{Published: done, Total: total})
			}
		},
	})
	if err != nil {
		return a.error(ctx, "RepublishEvents", err)
	}
	if sendErr != nil {
		return sendErr
	}
	a.logger.InfoContext(ctx, "stream republished", "service", service, "published", res.Published, "duplicates", res.Duplicates)
	return stream.Send(&adminv1.RepublishEventsResponse{
		Published: res.Published, Duplicates: res.Duplicates, Total: res.Published + res.Duplicates, Done: true,
	})
}

func progressToProto(p projections.Progress) *adminv1.RebuildProjectionResponse {
	return &adminv1.RebuildProjectionResponse{
		Phase: p.Phase, Replayed: p.Replayed, Total: p.Total, Elapsed: durationpb.New(p.Elapsed),
	}
}

var projectionStates = map[ProjectionState]adminv1.ProjectionState{
	StateCaughtUp:   adminv1.ProjectionState_PROJECTION_STATE_CAUGHT_UP,
	StateCatchingUp: adminv1.ProjectionState_PROJECTION_STATE_CATCHING_UP,
	StatePaused:     adminv1.ProjectionState_PROJECTION_STATE_PAUSED,
	StateStalled:    adminv1.ProjectionState_PROJECTION_STATE_STALLED,
	StateFailing:    adminv1.ProjectionState_PROJECTION_STATE_FAILING,
}

func projectionToProto(st ProjectionStatus) *adminv1.Projection {
	m := &adminv1.Projection{
		Service: st.Service, Name: st.Name, Durable: st.Durable, Source: st.Source,
		Checkpoint: st.Checkpoint, Pending: st.Pending, AckPending: st.AckPending, Redelivered: st.Redelivered,
		State: projectionStates[st.State], Rebuildable: st.Rebuildable,
	}
	if f := st.Failure; f != nil {
		m.Failure = &adminv1.ProjectionFailure{
			Sequence: f.Sequence, EventId: f.EventID, Subject: f.Subject, Failures: int32(f.Failures), Error: f.Error,
			FirstFailureTime: timestamp(f.FirstFailedAt), LastFailureTime: timestamp(f.LastFailedAt),
		}
	}
	return m
}
