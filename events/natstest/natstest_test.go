package natstest_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/events/natstest"
)

func TestStopRestartKeepsStream(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := natstest.Start(t)
	nc := srv.Connect(t)
	js, err := jetstream.New(nc)
	require.NoError(t, err)

	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:     "IDENTITY",
		Subjects: []string{"identity.>"},
		Storage:  jetstream.FileStorage,
	})
	require.NoError(t, err)
	for _, body := range []string{"one", "two", "three"} {
		_, err := js.Publish(ctx, "identity.user.created", []byte(body))
		require.NoError(t, err)
	}
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(3), info.State.Msgs)

	srv.Stop()
	require.Eventually(t, func() bool { return nc.Status() != nats.CONNECTED },
		10*time.Second, 10*time.Millisecond, "client notices the outage")

	srv.Restart(t)
	require.Eventually(t, func() bool { return nc.Status() == nats.CONNECTED },
		10*time.Second, 10*time.Millisecond, "client reconnects to the restarted server")

	// Read back over the reconnected connection and over a new one.
	for name, js := range map[string]jetstream.JetStream{"reconnected": js, "new": srv.JetStream(t)} {
		stream, err := js.Stream(ctx, "IDENTITY")
		require.NoError(t, err, name)
		var got []string
		for seq := uint64(1); seq <= 3; seq++ {
			msg, err := stream.GetMsg(ctx, seq)
			require.NoError(t, err, name)
			got = append(got, string(msg.Data))
		}
		assert.Equal(t, []string{"one", "two", "three"}, got, name)
	}
}

func TestURLStableAcrossRestart(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	url := srv.URL()
	srv.Restart(t)
	assert.Equal(t, url, srv.URL())
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	nc.Close()
	srv.Stop()
	srv.Stop() // stopping twice is harmless
}
