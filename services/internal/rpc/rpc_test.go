package rpc_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	adminv1 "github.com/authms/authms/schemas/gen/authms/admin/v1"
	"github.com/authms/authms/schemas/gen/authms/admin/v1/adminv1connect"
	"github.com/authms/authms/services/internal/rpc"
)

// leaky fails every call with an error full of internals.
type leaky struct {
	adminv1connect.UnimplementedStreamServiceHandler
}

var errInternals = errors.New(`pq: relation "secret_table" does not exist`)

func (leaky) ListStreams(context.Context, *connect.Request[adminv1.ListStreamsRequest]) (*connect.Response[adminv1.ListStreamsResponse], error) {
	return nil, errInternals
}

func (leaky) TailEvents(_ context.Context, _ *connect.Request[adminv1.TailEventsRequest], stream *connect.ServerStream[adminv1.TailEventsResponse]) error {
	if err := stream.Send(&adminv1.TailEventsResponse{}); err != nil {
		return err
	}
	return errInternals
}

func TestErrorsCarryNoInternals(t *testing.T) {
	t.Parallel()
	opts, err := rpc.HandlerOptions(slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle(adminv1connect.NewStreamServiceHandler(leaky{}, opts...))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client := adminv1connect.NewStreamServiceClient(srv.Client(), srv.URL)

	_, err = client.ListStreams(t.Context(), connect.NewRequest(&adminv1.ListStreamsRequest{}))
	assert.Equal(t, connect.CodeInternal, connect.CodeOf(err), "a unary call: %v", err)
	assert.NotContains(t, err.Error(), "secret_table")

	stream, err := client.TailEvents(t.Context(), connect.NewRequest(&adminv1.TailEventsRequest{}))
	require.NoError(t, err)
	defer stream.Close()
	assert.True(t, stream.Receive(), "the message sent before the failure arrives: %v", stream.Err())
	assert.False(t, stream.Receive())
	assert.Equal(t, connect.CodeInternal, connect.CodeOf(stream.Err()), "a server stream: %v", stream.Err())
	assert.NotContains(t, stream.Err().Error(), "secret_table")
}
