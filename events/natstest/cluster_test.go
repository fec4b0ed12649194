package natstest_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/events/natstest"
)

func TestClusterKeepsR3StreamWithoutOneNode(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cluster := natstest.StartCluster(t, 3)
	assert.Equal(t, []string{"n1", "n2", "n3"}, cluster.Names())
	js := cluster.JetStream(t)

	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:     "IDENTITY",
		Subjects: []string{"identity.>"},
		Storage:  jetstream.FileStorage,
		Replicas: 3,
	})
	require.NoError(t, err)
	_, err = js.Publish(ctx, "identity.user.created", []byte("before"))
	require.NoError(t, err)
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.NotNil(t, info.Cluster)
	leader := info.Cluster.Leader
	require.Contains(t, cluster.Names(), leader)

	cluster.Shutdown(leader)
	// Two of three nodes keep the stream writable once they elect a leader.
	require.Eventually(t, func() bool {
		_, err := js.Publish(ctx, "identity.user.created", []byte("after"))
		return err == nil
	}, 30*time.Second, 50*time.Millisecond, "publish after losing leader %s", leader)
	info, err = stream.Info(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, leader, info.Cluster.Leader)
	assert.GreaterOrEqual(t, info.State.Msgs, uint64(2))
}
