package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/natstest"
	billingv1 "github.com/authms/authms/schemas/gen/authms/billing/v1"
	"github.com/authms/authms/schemas/gen/authms/billing/v1/billingv1connect"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/services/servicestest"
)

// deadLetter describes a dead letter to store for a test.
type deadLetter struct {
	service   string
	consumer  string
	attempts  int
	permanent bool
	err       string
	failedAt  time.Time
}

// storeDeadLetter stores ev in the DLQ of d.service as d.consumer would have
// dead-lettered it from stream sequence 7, and returns its DLQ sequence.
func storeDeadLetter(t *testing.T, js jetstream.JetStream, ev events.Event, d deadLetter) uint64 {
	t.Helper()
	msg := natsMsg(ev)
	msg.Subject = events.DLQSubject(d.service, ev.Subject())
	msg.Header.Set(events.HeaderDLQStream, events.StreamName(ev.Service))
	msg.Header.Set(events.HeaderDLQSubject, ev.Subject())
	msg.Header.Set(events.HeaderDLQSequence, "7")
	msg.Header.Set(events.HeaderDLQConsumer, d.consumer)
	msg.Header.Set(events.HeaderDLQAttempts, strconv.Itoa(d.attempts))
	msg.Header.Set(events.HeaderDLQError, d.err)
	msg.Header.Set(events.HeaderDLQPermanent, strconv.FormatBool(d.permanent))
	msg.Header.Set(events.HeaderDLQPublishedAt, eventTime.Add(time.Millisecond).Format(time.RFC3339Nano))
	msg.Header.Set(events.HeaderDLQFailedAt, d.failedAt.Format(time.RFC3339Nano))
	ack, err := js.PublishMsg(t.Context(), msg)
	require.NoError(t, err)
	return ack.Sequence
}

// dlqCLI returns a cli with env as its environment and stdin as its input.
func dlqCLI(t *testing.T, env map[string]string, stdin string, terminal bool) (*cli, *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	return &cli{
		stdin:           strings.NewReader(stdin),
		stdout:          &out,
		stderr:          &testWriter{t},
		getenv:          func(name string) string { return env[name] },
		stdinIsTerminal: terminal,
	}, &out
}

func runDLQ(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	c, out := dlqCLI(t, env, "", false)
	err := c.run(t.Context(), func() {}, append([]string{"dlq"}, args...))
	return out.String(), err
}

func assertGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test ./cmd/authms -run %s -update to create it", t.Name())
	assert.Equal(t, string(want), got)
}

// dlqServer starts NATS with billing's and wallet's streams and three dead
// letters: billing #1 (retries ran out), billing #2 (undecodable payload),
// wallet #1.
func dlqServer(t *testing.T) (jetstream.JetStream, map[string]string) {
	t.Helper()
	srv := natstest.Start(t)
	js := srv.JetStream(t)
	for _, svc := range []string{"billing", "wallet"} {
		require.NoError(t, events.EnsureStreams(t.Context(), js, svc, events.StreamConfig{}))
	}
	storeDeadLetter(t, js, userCreated(t, 1), deadLetter{service: "billing", consumer: "billing_user_profiles", attempts: 5,
		err:      "project identity.user.created.v1: encrypt email: the key service is unreachable\nafter 5 attempts, and this line is long enough to be cut",
		failedAt: eventTime.Add(time.Minute)})
	garbled := userCreated(t, 2)
	garbled.Data = []byte{0xff, 0xff, 0xff}
	storeDeadLetter(t, js, garbled, deadLetter{service: "billing", consumer: "billing_user_profiles", attempts: 1,
		permanent: true, err: "decode payload", failedAt: eventTime.Add(2 * time.Minute)})
	storeDeadLetter(t, js, userCreated(t, 3), deadLetter{service: "wallet", consumer: "wallet_wallets", attempts: 1,
		permanent: true, err: "bad tenant_id", failedAt: eventTime.Add(3 * time.Minute)})
	return js, map[string]string{"NATS_URL": srv.URL()}
}

func TestDLQListAndShow(t *testing.T) {
	t.Parallel()
	_, env := dlqServer(t)

	out, err := runDLQ(t, env, "ls")
	require.NoError(t, err)
	assertGolden(t, "dlq_ls.golden", out)

	out, err = runDLQ(t, env, "ls", "billing", "--consumer", "billing_user_profiles", "--json")
	require.NoError(t, err)
	var list struct {
		DeadLetters []dlqEntry `json:"dead_letters"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &list))
	require.Len(t, list.DeadLetters, 2)
	first := list.DeadLetters[0]
	assert.Equal(t, uint64(1), first.Sequence)
	assert.Equal(t, "identity.user.created", first.Subject)
	assert.Equal(t, 5, first.Attempts)
	assert.Equal(t, userCreated(t, 1).ID.String(), first.EventID)
	assert.Contains(t, first.Error, "after 5 attempts", "JSON carries the whole error")
	assert.NotEmpty(t, list.DeadLetters[1].EnvelopeError+list.DeadLetters[1].EventID)

	out, err = runDLQ(t, env, "ls", "wallet", "--consumer", "nobody")
	require.NoError(t, err)
	assert.Contains(t, out, "(no dead letters)")

	out, err = runDLQ(t, env, "show", "billing", "1")
	require.NoError(t, err)
	assertGolden(t, "dlq_show.golden", out)

	out, err = runDLQ(t, env, "show", "billing", "2")
	require.NoError(t, err)
	assert.Contains(t, out, "payload (undecodable: ")
	assert.Contains(t, out, "  ////\n", "the raw payload in base64")

	out, err = runDLQ(t, env, "show", "--json", "billing", "1")
	require.NoError(t, err)
	var shown dlqShowJSON
	require.NoError(t, json.Unmarshal([]byte(out), &shown))
	assert.Equal(t, "ada@example.com", mustField(t, shown.Payload, "email"))
	assert.Equal(t, []string{"billing_user_profiles"}, shown.Headers[events.HeaderDLQConsumer])

	_, err = runDLQ(t, env, "show", "billing", "99")
	require.ErrorIs(t, err, events.ErrDeadLetterNotFound)
	_, err = runDLQ(t, env, "ls", "nosuch")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no DLQ_NOSUCH stream")
	_, err = runDLQ(t, env, "show", "billing", "x")
	require.ErrorIs(t, err, errUsage)
}

func mustField(t *testing.T, raw json.RawMessage, name string) any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return m[name]
}

func TestDLQPurgeAsks(t *testing.T) {
	t.Parallel()
	js, env := dlqServer(t)
	count := func(service string) int {
		list, err := events.ListDeadLetters(t.Context(), js, service, events.DeadLetterFilter{})
		require.NoError(t, err)
		return len(list)
	}

	_, err := runDLQ(t, env, "purge", "billing")
	require.Error(t, err, "not a terminal and no --yes")
	assert.Contains(t, err.Error(), "--yes")
	assert.Equal(t, 2, count("billing"))

	c, out := dlqCLI(t, env, "n\n", true)
	require.NoError(t, c.run(t.Context(), func() {}, []string{"dlq", "purge", "billing"}))
	assert.Contains(t, out.String(), "Delete 2 dead letters in DLQ_BILLING")
	assert.Contains(t, out.String(), "nothing deleted")
	assert.Equal(t, 2, count("billing"))

	c, out = dlqCLI(t, env, "y\n", true)
	require.NoError(t, c.run(t.Context(), func() {}, []string{"dlq", "purge", "wallet", "--consumer", "wallet_wallets"}))
	assert.Contains(t, out.String(), "purged 1 dead letters from DLQ_WALLET of consumer wallet_wallets")
	assert.Equal(t, 0, count("wallet"))

	out2, err := runDLQ(t, env, "purge", "billing", "--yes")
	require.NoError(t, err)
	assert.Equal(t, "purged 2 dead letters from DLQ_BILLING\n", out2)
	assert.Equal(t, 0, count("billing"))
}

func TestDLQRedriveThroughTheAPI(t *testing.T) {
	t.Parallel()
	svc := servicestest.Start(t, "billing")
	ctx := t.Context()
	require.NoError(t, events.EnsureStreams(ctx, svc.JS, "identity", events.StreamConfig{}))
	env := map[string]string{"NATS_URL": svc.NATS.URL(), "AUTHMS_API_URL": svc.URL, "AUTHMS_OPERATOR_TOKEN": svc.OperatorToken}

	// A valid event billing never received, and one billing refuses (its
	// tenant id is not a UUID).
	tenantID, userID := uuid.New(), uuid.New()
	payload := &identityv1.UserCreated{UserId: userID.String(), TenantId: tenantID.String(), Email: "ada@example.com",
		CreateTime: timestamppb.New(eventTime)}
	good := userCreated(t, 10)
	good.TenantID, good.AggregateID = tenantID.String(), userID.String()
	var err error
	good.Data, err = proto.Marshal(payload)
	require.NoError(t, err)
	dl := deadLetter{service: "billing", consumer: "billing_user_profiles", attempts: 5, err: "database down", failedAt: eventTime}
	goodSeq := storeDeadLetter(t, svc.JS, good, dl)
	badSeq := storeDeadLetter(t, svc.JS, userCreated(t, 11), dl)

	out, err := runDLQ(t, env, "redrive", "billing", strconv.FormatUint(goodSeq, 10))
	require.NoError(t, err, out)
	assert.Contains(t, out, "applied")
	assert.Contains(t, out, "1 applied, 0 failed again")
	billing := billingv1connect.NewBillingServiceClient(svc.HTTP, svc.URL, svc.Impersonate())
	customer, err := billing.GetCustomer(ctx, connect.NewRequest(&billingv1.GetCustomerRequest{
		TenantId: tenantID.String(), UserId: userID.String()}))
	require.NoError(t, err)
	assert.Equal(t, "ada@example.com", customer.Msg.GetCustomer().GetEmail())

	out, err = runDLQ(t, env, "redrive", "billing", "--all", "--consumer", "billing_user_profiles", "--json")
	require.Error(t, err, "a dead letter failed again")
	assert.Contains(t, err.Error(), "1 of 1 dead letters were not re-driven")
	var redriven struct {
		Results []struct {
			Sequence    string `json:"sequence"`
			Outcome     string `json:"outcome"`
			Error       string `json:"error"`
			NewSequence string `json:"new_sequence"`
		} `json:"results"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &redriven), out)
	require.Len(t, redriven.Results, 1)
	assert.Equal(t, strconv.FormatUint(badSeq, 10), redriven.Results[0].Sequence)
	assert.Equal(t, "REDRIVE_OUTCOME_FAILED", redriven.Results[0].Outcome)
	assert.Contains(t, redriven.Results[0].Error, "bad tenant_id")

	out, err = runDLQ(t, env, "ls", "billing", "--json")
	require.NoError(t, err)
	var list struct {
		DeadLetters []dlqEntry `json:"dead_letters"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &list))
	require.Len(t, list.DeadLetters, 1, "only the refused one is left")
	kept := list.DeadLetters[0]
	assert.Equal(t, redriven.Results[0].NewSequence, strconv.FormatUint(kept.Sequence, 10), "kept under a new sequence")
	assert.Greater(t, kept.Sequence, badSeq)
	assert.Equal(t, 6, kept.Attempts)
	assert.True(t, kept.Permanent)
	assert.Contains(t, kept.Error, "bad tenant_id")

	_, err = runDLQ(t, env, "redrive", "billing", strconv.FormatUint(badSeq, 10))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not_found")

	down := map[string]string{"AUTHMS_API_URL": "http://127.0.0.1:1"}
	_, err = runDLQ(t, down, "redrive", "billing", "--all")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "AUTHMS_API_URL")

	_, err = runDLQ(t, env, "redrive", "billing")
	require.ErrorIs(t, err, errUsage)
}
