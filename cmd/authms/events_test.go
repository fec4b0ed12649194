package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/natstest"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var eventTime = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)

// userCreated returns a published identity.user.created event.
func userCreated(t *testing.T, n int) events.Event {
	t.Helper()
	userID := uuid.NewSHA1(uuid.NameSpaceOID, []byte{byte(n)}).String()
	data, err := proto.Marshal(&identityv1.UserCreated{
		UserId:     userID,
		TenantId:   "acme",
		Email:      "ada@example.com",
		CreateTime: timestamppb.New(eventTime),
	})
	require.NoError(t, err)
	return events.Event{
		ID:            uuid.NewSHA1(uuid.NameSpaceURL, []byte{byte(n)}),
		Service:       "identity",
		AggregateType: "user",
		AggregateID:   userID,
		Name:          "created",
		TenantID:      "acme",
		Version:       1,
		Time:          eventTime,
		CorrelationID: "corr-1",
		MessageName:   (&identityv1.UserCreated{}).ProtoReflect().Descriptor().FullName(),
		Data:          data,
	}
}

func natsMsg(ev events.Event) *nats.Msg {
	msg := nats.NewMsg(ev.Subject())
	for k, v := range ev.Headers() {
		msg.Header.Set(k, v)
	}
	msg.Data = ev.Data
	return msg
}

func TestTailLineGolden(t *testing.T) {
	t.Parallel()
	stored := eventTime.Add(time.Second)

	traced := userCreated(t, 2)
	traced.CausationID = "cause-1"
	traced.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

	unknown := userCreated(t, 3)
	unknown.MessageName = protoreflect.FullName("authms.nosuch.v1.Gone")

	garbled := userCreated(t, 4)
	garbled.Data = []byte{0xff, 0xff, 0xff}

	dead := natsMsg(userCreated(t, 5))
	dead.Subject = events.DLQSubject("billing", "identity.user.created")
	dead.Header.Set(events.HeaderDLQSubject, "identity.user.created")

	foreign := nats.NewMsg("identity.user.created")
	foreign.Data = []byte("hello")

	cases := []struct {
		name   string
		stream string
		msg    *nats.Msg
	}{
		{name: "event", stream: "IDENTITY", msg: natsMsg(userCreated(t, 1))},
		{name: "traced event", stream: "IDENTITY", msg: natsMsg(traced)},
		{name: "unknown payload type", stream: "IDENTITY", msg: natsMsg(unknown)},
		{name: "undecodable payload", stream: "IDENTITY", msg: natsMsg(garbled)},
		{name: "dead letter", stream: "DLQ_BILLING", msg: dead},
		{name: "not an authms event", stream: "IDENTITY", msg: foreign},
	}
	var got bytes.Buffer
	for i, tc := range cases {
		line := formatLine(events.StoredMessage{Stream: tc.stream, Sequence: uint64(i + 1), Stored: stored,
			Subject: tc.msg.Subject, Header: tc.msg.Header, Data: tc.msg.Data})
		require.True(t, json.Valid(line), tc.name)
		assert.NotContains(t, string(line), "\n", "%s: one line", tc.name)
		// The protobuf runtime randomly puts a no-break space into its error
		// messages so that nobody depends on their text; undo that here.
		got.WriteString(strings.ReplaceAll(string(line), "\u00a0", " "))
		got.WriteByte('\n')
	}

	golden := filepath.Join("testdata", "tail.golden")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(golden, got.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test ./cmd/authms -run TestTailLineGolden -update to create it")
	assert.Equal(t, string(want), got.String())
}

// testServer starts a NATS server with the IDENTITY and WALLET streams,
// three identity events, one durable consumer, and returns a cli pointed at
// it.
func testServer(t *testing.T) (*natstest.Server, jetstream.JetStream, func() (*cli, *bytes.Buffer)) {
	t.Helper()
	srv := natstest.Start(t)
	js := srv.JetStream(t)
	ctx := t.Context()
	for _, svc := range []string{"identity", "wallet"} {
		require.NoError(t, events.EnsureStreams(ctx, js, svc, events.StreamConfig{}))
	}
	for i := 1; i <= 3; i++ {
		_, err := js.PublishMsg(ctx, natsMsg(userCreated(t, i)))
		require.NoError(t, err)
	}
	cons, err := events.NewConsumer(js, events.ConsumerConfig{
		Service: "billing", Durable: "billing_user_profiles", Stream: "IDENTITY",
		Subjects: []string{"identity.user.created"},
		Handler:  func(context.Context, events.Event) error { return nil },
	})
	require.NoError(t, err)
	_, err = cons.Ensure(ctx)
	require.NoError(t, err)

	newCLI := func() (*cli, *bytes.Buffer) {
		var out bytes.Buffer
		return &cli{
			stdout: &out,
			stderr: &testWriter{t},
			getenv: func(name string) string {
				if name == "NATS_URL" {
					return srv.URL()
				}
				return ""
			},
		}, &out
	}
	return srv, js, newCLI
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func TestEventsStreams(t *testing.T) {
	t.Parallel()
	_, _, newCLI := testServer(t)

	c, out := newCLI()
	require.NoError(t, c.run(t.Context(), func() {}, []string{"events", "streams"}))
	table := out.String()
	for _, want := range []string{"STREAM", "IDENTITY", "identity.>", "DLQ_WALLET", "billing_user_profiles"} {
		assert.Contains(t, table, want)
	}

	c, out = newCLI()
	require.NoError(t, c.run(t.Context(), func() {}, []string{"events", "streams", "--json"}))
	var got struct{ Streams []events.StreamStatus }
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	names := make([]string, len(got.Streams))
	for i, s := range got.Streams {
		names[i] = s.Name
	}
	assert.Equal(t, []string{"DLQ_IDENTITY", "DLQ_WALLET", "IDENTITY", "WALLET"}, names)
	identity := got.Streams[2]
	assert.Equal(t, uint64(3), identity.Messages)
	assert.Equal(t, uint64(1), identity.FirstSeq)
	assert.Equal(t, uint64(3), identity.LastSeq)
	require.Len(t, identity.Consumers, 1)
	assert.Equal(t, "billing_user_profiles", identity.Consumers[0].Name)
	assert.Equal(t, uint64(3), identity.Consumers[0].Pending, "nothing consumed yet")
}

// tailLines runs `authms events tail args...` and decodes its output.
func tailLines(t *testing.T, newCLI func() (*cli, *bytes.Buffer), args ...string) []tailLine {
	t.Helper()
	c, out := newCLI()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, c.run(ctx, func() {}, append([]string{"events", "tail"}, args...)))
	var lines []tailLine
	for l := range strings.Lines(out.String()) {
		var line tailLine
		require.NoError(t, json.Unmarshal([]byte(l), &line), l)
		lines = append(lines, line)
	}
	return lines
}

func sequences(lines []tailLine) []uint64 {
	seqs := make([]uint64, len(lines))
	for i, l := range lines {
		seqs[i] = l.Sequence
	}
	return seqs
}

func TestEventsTailStored(t *testing.T) {
	t.Parallel()
	_, _, newCLI := testServer(t)

	all := tailLines(t, newCLI, "--all", "--no-follow", "identity.>")
	require.Len(t, all, 3)
	assert.Equal(t, []uint64{1, 2, 3}, sequences(all))
	first := all[0]
	assert.Equal(t, "identity.user.created", first.Subject)
	assert.Equal(t, "IDENTITY", first.Stream)
	assert.Equal(t, "identity.user.created.v1", first.Type)
	assert.Equal(t, "/authms/identity", first.Source)
	assert.Equal(t, "acme", first.TenantID)
	assert.Equal(t, int64(1), first.Version)
	assert.Empty(t, first.Error)
	var data map[string]any
	require.NoError(t, json.Unmarshal(first.Data, &data))
	assert.Equal(t, "ada@example.com", data["email"])

	// Flags after the filter, a filter narrower than the stream, --seq and -n.
	assert.Equal(t, []uint64{2, 3}, sequences(tailLines(t, newCLI, "identity.user.*", "--seq", "2", "--no-follow")))
	assert.Equal(t, []uint64{1, 2}, sequences(tailLines(t, newCLI, "--all", "-n", "2", "identity.>")))
	assert.Len(t, tailLines(t, newCLI, "--since", "1h", "--no-follow", ">"), 3, "every stream, from an hour ago")
	assert.Empty(t, tailLines(t, newCLI, "--no-follow", ">"), "by default only new messages")
	assert.Empty(t, tailLines(t, newCLI, "--all", "--no-follow", "wallet.>"), "an empty stream")
}

func TestEventsTailFollows(t *testing.T) {
	t.Parallel()
	_, js, newCLI := testServer(t)
	ctx := t.Context()

	c, out := newCLI()
	done := make(chan error, 1)
	go func() { done <- c.run(ctx, func() {}, []string{"events", "tail", "-n", "1", "identity.>"}) }()

	// Publish once tail's ordered consumer exists, or the new message could
	// precede it.
	stream, err := js.Stream(ctx, "IDENTITY")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := stream.Info(ctx)
		return err == nil && info.State.Consumers == 2 // the durable and tail's
	}, 10*time.Second, 10*time.Millisecond)
	_, err = js.PublishMsg(ctx, natsMsg(userCreated(t, 9)))
	require.NoError(t, err)

	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("tail did not stop after one message")
	}
	var line tailLine
	require.NoError(t, json.Unmarshal(out.Bytes(), &line))
	assert.Equal(t, uint64(4), line.Sequence, "only the new message")
}

func TestEventsTailErrors(t *testing.T) {
	t.Parallel()
	_, _, newCLI := testServer(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{name: "no stream", args: []string{"--all", "nosuch.>"}, want: "no stream"},
		{name: "two starts", args: []string{"--all", "--seq", "2"}, want: "exclude each other"},
		{name: "bad since", args: []string{"--since", "yesterday"}, want: "--since"},
		{name: "two filters", args: []string{"a.>", "b.>"}, want: "one subject filter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newCLI()
			err := c.run(t.Context(), func() {}, append([]string{"events", "tail"}, tc.args...))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
