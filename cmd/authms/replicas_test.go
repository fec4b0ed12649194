package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/events/natstest"
)

func TestNATSReplicas(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		value   string
		want    int
		wantErr bool
	}{
		{name: "unset", value: "", want: 1},
		{name: "three", value: "3", want: 3},
		{name: "five", value: "5", want: 5},
		{name: "zero", value: "0", wantErr: true},
		{name: "six", value: "6", wantErr: true},
		{name: "not a number", value: "three", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &cli{getenv: func(name string) string {
				if name == "NATS_REPLICAS" {
					return tt.value
				}
				return ""
			}}
			got, err := c.natsReplicas()
			if tt.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "NATS_REPLICAS")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestDevOnClusterWithReplicas runs authms dev against a three-node
// JetStream cluster with NATS_REPLICAS=3: the streams it creates keep three
// copies.
func TestDevOnClusterWithReplicas(t *testing.T) {
	t.Parallel()
	cluster := natstest.StartCluster(t, 3)
	env := devEnv(t, cluster.URLs())
	var stdout syncBuffer
	c := &cli{stdout: &stdout, stderr: &testWriter{t}, getenv: func(name string) string {
		if name == "NATS_REPLICAS" {
			return "3"
		}
		return env(name)
	}}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- c.run(ctx, func() {}, []string{"dev", "--http", "127.0.0.1:0", "--data", t.TempDir(), "wallet"})
	}()
	require.Eventually(t, func() bool { return apiURL.MatchString(stdout.String()) },
		60*time.Second, 20*time.Millisecond, "authms dev starts")

	js := cluster.JetStream(t)
	for _, name := range []string{"WALLET", "DLQ_WALLET"} {
		s, err := js.Stream(t.Context(), name)
		require.NoError(t, err, name)
		info, err := s.Info(t.Context())
		require.NoError(t, err, name)
		assert.Equal(t, 3, info.Config.Replicas, name)
		require.NotNil(t, info.Cluster, name)
		assert.Len(t, info.Cluster.Replicas, 2, "%s: a leader and two replicas", name)
	}

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		t.Fatal("authms dev did not stop")
	}
}
