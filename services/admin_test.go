package services_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/authms/authms/events"
	adminv1 "github.com/authms/authms/schemas/gen/authms/admin/v1"
	"github.com/authms/authms/schemas/gen/authms/admin/v1/adminv1connect"
	billingv1 "github.com/authms/authms/schemas/gen/authms/billing/v1"
	"github.com/authms/authms/schemas/gen/authms/billing/v1/billingv1connect"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/servicestest"
)

const userProfilesDurable = "billing_user_profiles"

// adminUserCreated returns a valid identity.user.created event, as
// identity's relay would have published it.
func adminUserCreated(t *testing.T, tenantID, userID uuid.UUID, email string) events.Event {
	t.Helper()
	payload := &identityv1.UserCreated{UserId: userID.String(), TenantId: tenantID.String(), Email: email,
		CreateTime: timestamppb.Now()}
	data, err := proto.Marshal(payload)
	require.NoError(t, err)
	return events.Event{
		ID: uuid.Must(uuid.NewV7()), Service: "identity", AggregateType: "user", AggregateID: userID.String(),
		Name: "created", TenantID: tenantID.String(), Version: 1, Time: time.Now().UTC(),
		MessageName: payload.ProtoReflect().Descriptor().FullName(), Data: data,
	}
}

// adminInjectDeadLetter stores ev in billing's DLQ as consumer would have
// dead-lettered it, and returns its DLQ sequence.
func adminInjectDeadLetter(t *testing.T, js jetstream.JetStream, ev events.Event, consumer string) uint64 {
	t.Helper()
	msg := nats.NewMsg(events.DLQSubject("billing", ev.Subject()))
	for k, v := range ev.Headers() {
		msg.Header.Set(k, v)
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	msg.Header.Set(events.HeaderDLQStream, "IDENTITY")
	msg.Header.Set(events.HeaderDLQSubject, ev.Subject())
	msg.Header.Set(events.HeaderDLQSequence, "7")
	msg.Header.Set(events.HeaderDLQConsumer, consumer)
	msg.Header.Set(events.HeaderDLQAttempts, "5")
	msg.Header.Set(events.HeaderDLQError, "billing database was down")
	msg.Header.Set(events.HeaderDLQPermanent, "false")
	msg.Header.Set(events.HeaderDLQPublishedAt, now)
	msg.Header.Set(events.HeaderDLQFailedAt, now)
	msg.Data = ev.Data
	ack, err := js.PublishMsg(t.Context(), msg)
	require.NoError(t, err)
	return ack.Sequence
}

// adminStartBilling runs billing alone, with the IDENTITY stream its projector
// reads, and returns an admin client.
func adminStartBilling(t *testing.T) (*servicestest.Env, adminv1connect.DeadLetterServiceClient) {
	t.Helper()
	env := servicestest.Start(t, "billing")
	require.NoError(t, events.EnsureStreams(t.Context(), env.JS, "identity", events.StreamConfig{}))
	return env, adminv1connect.NewDeadLetterServiceClient(env.HTTP, env.URL, env.Operator())
}

func TestAdminRedriveAppliesThroughTheProjector(t *testing.T) {
	t.Parallel()
	env, admin := adminStartBilling(t)
	ctx := t.Context()
	tenantID, userID := uuid.New(), uuid.New()
	ev := adminUserCreated(t, tenantID, userID, "ada@example.com")
	seq := adminInjectDeadLetter(t, env.JS, ev, userProfilesDurable)

	list, err := admin.ListDeadLetters(ctx, connect.NewRequest(&adminv1.ListDeadLettersRequest{Service: "billing"}))
	require.NoError(t, err)
	require.Len(t, list.Msg.GetDeadLetters(), 1)
	dl := list.Msg.GetDeadLetters()[0]
	assert.Equal(t, seq, dl.GetSequence())
	assert.Equal(t, "identity.user.created", dl.GetSubject())
	assert.Equal(t, userProfilesDurable, dl.GetConsumer())
	assert.Equal(t, int32(5), dl.GetAttempts())
	assert.Equal(t, "billing database was down", dl.GetError())
	assert.Equal(t, ev.ID.String(), dl.GetEventId())
	assert.Equal(t, "identity.user.created.v1", dl.GetEventType())
	assert.Equal(t, "IDENTITY", dl.GetStream())
	assert.Equal(t, uint64(7), dl.GetStreamSequence())
	assert.NotNil(t, dl.GetFirstFailureTime())

	got, err := admin.GetDeadLetter(ctx, connect.NewRequest(&adminv1.GetDeadLetterRequest{Service: "billing", Sequence: seq}))
	require.NoError(t, err)
	assert.Equal(t, "ada@example.com", got.Msg.GetPayload().GetFields()["email"].GetStringValue())
	assert.Empty(t, got.Msg.GetPayloadRaw())
	headers := map[string][]string{}
	for _, h := range got.Msg.GetHeaders() {
		headers[h.GetName()] = h.GetValues()
	}
	assert.Equal(t, []string{ev.ID.String()}, headers[events.HeaderID])
	assert.Equal(t, []string{userProfilesDurable}, headers[events.HeaderDLQConsumer])

	billing := billingv1connect.NewBillingServiceClient(env.HTTP, env.URL, env.Impersonate())
	getCustomer := func() (*connect.Response[billingv1.GetCustomerResponse], error) {
		return billing.GetCustomer(ctx, connect.NewRequest(&billingv1.GetCustomerRequest{
			TenantId: tenantID.String(), UserId: userID.String()}))
	}
	_, err = getCustomer()
	require.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "the event never reached billing: %v", err)

	res, err := admin.RedriveDeadLetters(ctx, connect.NewRequest(&adminv1.RedriveDeadLettersRequest{
		Service: "billing", Target: &adminv1.RedriveDeadLettersRequest_Sequence{Sequence: seq}}))
	require.NoError(t, err)
	require.Len(t, res.Msg.GetResults(), 1)
	r := res.Msg.GetResults()[0]
	assert.Equal(t, adminv1.RedriveOutcome_REDRIVE_OUTCOME_APPLIED, r.GetOutcome(), r.GetError())
	assert.Equal(t, ev.ID.String(), r.GetEventId())

	customer, err := getCustomer()
	require.NoError(t, err, "the re-driven event reached billing's cache")
	assert.Equal(t, "ada@example.com", customer.Msg.GetCustomer().GetEmail())
	list, err = admin.ListDeadLetters(ctx, connect.NewRequest(&adminv1.ListDeadLettersRequest{Service: "billing"}))
	require.NoError(t, err)
	assert.Empty(t, list.Msg.GetDeadLetters())

	// Re-driving the same event again (a second copy) is harmless: the
	// projector skips an event it applied.
	again := adminInjectDeadLetter(t, env.JS, ev, userProfilesDurable)
	res, err = admin.RedriveDeadLetters(ctx, connect.NewRequest(&adminv1.RedriveDeadLettersRequest{
		Service: "billing", Target: &adminv1.RedriveDeadLettersRequest_All{All: true}}))
	require.NoError(t, err)
	require.Len(t, res.Msg.GetResults(), 1)
	assert.Equal(t, again, res.Msg.GetResults()[0].GetSequence())
	assert.Equal(t, adminv1.RedriveOutcome_REDRIVE_OUTCOME_APPLIED, res.Msg.GetResults()[0].GetOutcome())
}

func TestAdminRedriveFailuresAndPurge(t *testing.T) {
	t.Parallel()
	env, admin := adminStartBilling(t)
	ctx := t.Context()

	// A payload billing cannot decode: re-driving fails again, permanently.
	garbled := adminUserCreated(t, uuid.New(), uuid.New(), "bob@example.com")
	garbled.Data = []byte{0xff, 0xff, 0xff}
	garbledSeq := adminInjectDeadLetter(t, env.JS, garbled, userProfilesDurable)
	// A dead letter of a consumer billing does not run.
	orphan := adminInjectDeadLetter(t, env.JS, adminUserCreated(t, uuid.New(), uuid.New(), "eve@example.com"), "billing_gone")

	got, err := admin.GetDeadLetter(ctx, connect.NewRequest(&adminv1.GetDeadLetterRequest{Service: "billing", Sequence: garbledSeq}))
	require.NoError(t, err)
	assert.Nil(t, got.Msg.GetPayload())
	assert.Equal(t, garbled.Data, got.Msg.GetPayloadRaw())
	assert.NotEmpty(t, got.Msg.GetPayloadError())

	res, err := admin.RedriveDeadLetters(ctx, connect.NewRequest(&adminv1.RedriveDeadLettersRequest{
		Service: "billing", Target: &adminv1.RedriveDeadLettersRequest_Sequence{Sequence: garbledSeq}}))
	require.NoError(t, err, "a handler failure is a result, not an RPC error")
	r := res.Msg.GetResults()[0]
	assert.Equal(t, adminv1.RedriveOutcome_REDRIVE_OUTCOME_FAILED, r.GetOutcome())
	assert.Contains(t, r.GetError(), "decode")
	require.Greater(t, r.GetNewSequence(), orphan)
	kept, err := admin.GetDeadLetter(ctx, connect.NewRequest(&adminv1.GetDeadLetterRequest{Service: "billing", Sequence: r.GetNewSequence()}))
	require.NoError(t, err)
	assert.Equal(t, int32(6), kept.Msg.GetDeadLetter().GetAttempts())
	assert.True(t, kept.Msg.GetDeadLetter().GetPermanent())
	assert.Contains(t, kept.Msg.GetDeadLetter().GetError(), "decode")
	_, err = admin.GetDeadLetter(ctx, connect.NewRequest(&adminv1.GetDeadLetterRequest{Service: "billing", Sequence: garbledSeq}))
	assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "the old sequence is gone: %v", err)

	_, err = admin.RedriveDeadLetters(ctx, connect.NewRequest(&adminv1.RedriveDeadLettersRequest{
		Service: "billing", Target: &adminv1.RedriveDeadLettersRequest_Sequence{Sequence: orphan}}))
	assert.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err), "no handler for billing_gone: %v", err)

	res, err = admin.RedriveDeadLetters(ctx, connect.NewRequest(&adminv1.RedriveDeadLettersRequest{
		Service: "billing", Target: &adminv1.RedriveDeadLettersRequest_All{All: true}}))
	require.NoError(t, err)
	outcomes := map[string]adminv1.RedriveOutcome{}
	for _, r := range res.Msg.GetResults() {
		outcomes[r.GetConsumer()] = r.GetOutcome()
	}
	assert.Equal(t, map[string]adminv1.RedriveOutcome{
		userProfilesDurable: adminv1.RedriveOutcome_REDRIVE_OUTCOME_FAILED,
		"billing_gone":      adminv1.RedriveOutcome_REDRIVE_OUTCOME_SKIPPED,
	}, outcomes)

	purged, err := admin.PurgeDeadLetters(ctx, connect.NewRequest(&adminv1.PurgeDeadLettersRequest{Service: "billing", Consumer: "billing_gone"}))
	require.NoError(t, err)
	assert.Equal(t, uint64(1), purged.Msg.GetPurged())
	list, err := admin.ListDeadLetters(ctx, connect.NewRequest(&adminv1.ListDeadLettersRequest{Service: "billing"}))
	require.NoError(t, err)
	require.Len(t, list.Msg.GetDeadLetters(), 1)
	assert.Equal(t, userProfilesDurable, list.Msg.GetDeadLetters()[0].GetConsumer())

	purged, err = admin.PurgeDeadLetters(ctx, connect.NewRequest(&adminv1.PurgeDeadLettersRequest{Service: "billing"}))
	require.NoError(t, err)
	assert.Equal(t, uint64(1), purged.Msg.GetPurged())
	list, err = admin.ListDeadLetters(ctx, connect.NewRequest(&adminv1.ListDeadLettersRequest{Service: "billing"}))
	require.NoError(t, err)
	assert.Empty(t, list.Msg.GetDeadLetters())
}

func TestAdminValidatesInput(t *testing.T) {
	t.Parallel()
	env, admin := adminStartBilling(t)

	stream := grpcreflect.NewClient(env.HTTP, env.URL, connect.WithGRPC()).NewStream(t.Context())
	t.Cleanup(func() { _, _ = stream.Close() })
	names, err := stream.ListServices()
	require.NoError(t, err)
	assert.Contains(t, names, protoreflect.FullName(adminv1connect.DeadLetterServiceName), "the admin API is reflected")

	cases := []struct {
		name string
		call func(context.Context) error
		want connect.Code
	}{
		{name: "service not running here", want: connect.CodeNotFound, call: func(ctx context.Context) error {
			_, err := admin.ListDeadLetters(ctx, connect.NewRequest(&adminv1.ListDeadLettersRequest{Service: "identity"}))
			return err
		}},
		{name: "malformed service", want: connect.CodeInvalidArgument, call: func(ctx context.Context) error {
			_, err := admin.ListDeadLetters(ctx, connect.NewRequest(&adminv1.ListDeadLettersRequest{Service: "Billing!"}))
			return err
		}},
		{name: "malformed consumer", want: connect.CodeInvalidArgument, call: func(ctx context.Context) error {
			_, err := admin.PurgeDeadLetters(ctx, connect.NewRequest(&adminv1.PurgeDeadLettersRequest{Service: "billing", Consumer: "a b"}))
			return err
		}},
		{name: "no dead letter at the sequence", want: connect.CodeNotFound, call: func(ctx context.Context) error {
			_, err := admin.GetDeadLetter(ctx, connect.NewRequest(&adminv1.GetDeadLetterRequest{Service: "billing", Sequence: 42}))
			return err
		}},
		{name: "sequence zero", want: connect.CodeInvalidArgument, call: func(ctx context.Context) error {
			_, err := admin.GetDeadLetter(ctx, connect.NewRequest(&adminv1.GetDeadLetterRequest{Service: "billing"}))
			return err
		}},
		{name: "redrive without a target", want: connect.CodeInvalidArgument, call: func(ctx context.Context) error {
			_, err := admin.RedriveDeadLetters(ctx, connect.NewRequest(&adminv1.RedriveDeadLettersRequest{Service: "billing"}))
			return err
		}},
		{name: "redrive all=false", want: connect.CodeInvalidArgument, call: func(ctx context.Context) error {
			_, err := admin.RedriveDeadLetters(ctx, connect.NewRequest(&adminv1.RedriveDeadLettersRequest{
				Service: "billing", Target: &adminv1.RedriveDeadLettersRequest_All{}}))
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.call(t.Context())
			assert.Equal(t, tc.want, connect.CodeOf(err), "%v", err)
		})
	}
}

func TestAdminDeadLettersOfATenant(t *testing.T) {
	t.Parallel()
	env, operator := adminStartBilling(t)
	ctx := t.Context()
	tenantA, tenantB := uuid.New(), uuid.New()
	seqA := adminInjectDeadLetter(t, env.JS, adminUserCreated(t, tenantA, uuid.New(), "ada@example.com"), userProfilesDurable)
	seqB := adminInjectDeadLetter(t, env.JS, adminUserCreated(t, tenantB, uuid.New(), "bob@example.com"), userProfilesDurable)
	// A message that is no authms event belongs to no tenant.
	_, err := env.JS.Publish(ctx, events.DLQSubject("billing", "identity.user.created"), []byte("not an event"))
	require.NoError(t, err)
	adminOf := func(tenant uuid.UUID, roles ...string) adminv1connect.DeadLetterServiceClient {
		return adminv1connect.NewDeadLetterServiceClient(env.HTTP, env.URL, servicestest.Bearer(env.Token(t, tenant.String(), uuid.NewString(), roles...)))
	}
	adminA, adminB := adminOf(tenantA, auth.RoleAdmin), adminOf(tenantB, auth.RoleAdmin)
	sequences := func(c adminv1connect.DeadLetterServiceClient, tenant string) []uint64 {
		t.Helper()
		res, err := c.ListDeadLetters(ctx, connect.NewRequest(&adminv1.ListDeadLettersRequest{Service: "billing", TenantId: tenant}))
		require.NoError(t, err)
		var seqs []uint64
		for _, dl := range res.Msg.GetDeadLetters() {
			seqs = append(seqs, dl.GetSequence())
		}
		return seqs
	}

	assert.Equal(t, []uint64{seqA}, sequences(adminA, tenantA.String()), "an admin sees their own tenant's only")
	assert.Equal(t, []uint64{seqB}, sequences(adminB, tenantB.String()))
	assert.Len(t, sequences(operator, ""), 3, "the operator sees every dead letter, a malformed one too")
	assert.Equal(t, []uint64{seqB}, sequences(operator, tenantB.String()), "or names a tenant")

	got, err := adminA.GetDeadLetter(ctx, connect.NewRequest(&adminv1.GetDeadLetterRequest{Service: "billing", Sequence: seqA, TenantId: tenantA.String()}))
	require.NoError(t, err)
	assert.Equal(t, "ada@example.com", got.Msg.GetPayload().GetFields()["email"].GetStringValue())
	_, err = adminB.GetDeadLetter(ctx, connect.NewRequest(&adminv1.GetDeadLetterRequest{Service: "billing", Sequence: seqA, TenantId: tenantB.String()}))
	assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "another tenant's dead letter: %v", err)
	_, err = adminB.RedriveDeadLetters(ctx, connect.NewRequest(&adminv1.RedriveDeadLettersRequest{Service: "billing", TenantId: tenantB.String(),
		Target: &adminv1.RedriveDeadLettersRequest_Sequence{Sequence: seqA}}))
	assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "another tenant's re-drive: %v", err)

	// The interceptor holds an admin to their tenant: none, or another's, is
	// not found; a user who is no admin is denied; purging is the operator's.
	for name, call := range map[string]func() error{
		"no tenant": func() error {
			_, err := adminA.ListDeadLetters(ctx, connect.NewRequest(&adminv1.ListDeadLettersRequest{Service: "billing"}))
			return err
		},
		"another tenant": func() error {
			_, err := adminB.ListDeadLetters(ctx, connect.NewRequest(&adminv1.ListDeadLettersRequest{Service: "billing", TenantId: tenantA.String()}))
			return err
		},
		"get without tenant": func() error {
			_, err := adminA.GetDeadLetter(ctx, connect.NewRequest(&adminv1.GetDeadLetterRequest{Service: "billing", Sequence: seqA}))
			return err
		},
	} {
		assert.Equal(t, connect.CodeNotFound, connect.CodeOf(call()), name)
	}
	_, err = adminOf(tenantA).ListDeadLetters(ctx, connect.NewRequest(&adminv1.ListDeadLettersRequest{Service: "billing", TenantId: tenantA.String()}))
	assert.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err), "a user who is no admin: %v", err)
	_, err = adminA.PurgeDeadLetters(ctx, connect.NewRequest(&adminv1.PurgeDeadLettersRequest{Service: "billing"}))
	assert.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err), "purging: %v", err)

	// Re-driving all of a tenant's touches no other tenant's.
	res, err := adminA.RedriveDeadLetters(ctx, connect.NewRequest(&adminv1.RedriveDeadLettersRequest{Service: "billing", TenantId: tenantA.String(),
		Target: &adminv1.RedriveDeadLettersRequest_All{All: true}}))
	require.NoError(t, err)
	require.Len(t, res.Msg.GetResults(), 1)
	assert.Equal(t, seqA, res.Msg.GetResults()[0].GetSequence())
	assert.Equal(t, adminv1.RedriveOutcome_REDRIVE_OUTCOME_APPLIED, res.Msg.GetResults()[0].GetOutcome(), res.Msg.GetResults()[0].GetError())
	assert.Empty(t, sequences(adminA, tenantA.String()))
	assert.Equal(t, []uint64{seqB}, sequences(adminB, tenantB.String()), "tenant B's dead letter stays")
	assert.Len(t, sequences(operator, ""), 2)

	res, err = adminB.RedriveDeadLetters(ctx, connect.NewRequest(&adminv1.RedriveDeadLettersRequest{Service: "billing", TenantId: tenantB.String(),
		Target: &adminv1.RedriveDeadLettersRequest_Sequence{Sequence: seqB}}))
	require.NoError(t, err, "an admin re-drives their own tenant's dead letter")
	assert.Equal(t, adminv1.RedriveOutcome_REDRIVE_OUTCOME_APPLIED, res.Msg.GetResults()[0].GetOutcome(), res.Msg.GetResults()[0].GetError())
}

// TestAdminDeadLetterErrorsOfATenant checks that a tenant admin reads a
// failure's category, never the handler's text (which may name hosts,
// roles or SQL), in the list, the headers and a re-drive's result, while
// the operator reads the text.
func TestAdminDeadLetterErrorsOfATenant(t *testing.T) {
	t.Parallel()
	env, operator := adminStartBilling(t)
	ctx := t.Context()
	tenant := uuid.New()
	retried := adminInjectDeadLetter(t, env.JS, adminUserCreated(t, tenant, uuid.New(), "ada@example.com"), userProfilesDurable)
	garbled := adminUserCreated(t, tenant, uuid.New(), "bob@example.com")
	garbled.Data = []byte{0xff, 0xff, 0xff}
	permanent := adminInjectDeadLetter(t, env.JS, garbled, userProfilesDurable)
	admin := adminv1connect.NewDeadLetterServiceClient(env.HTTP, env.URL, servicestest.Bearer(env.Token(t, tenant.String(), uuid.NewString(), auth.RoleAdmin)))
	errorsOf := func(c adminv1connect.DeadLetterServiceClient, tenant string) map[uint64]string {
		t.Helper()
		res, err := c.ListDeadLetters(ctx, connect.NewRequest(&adminv1.ListDeadLettersRequest{Service: "billing", TenantId: tenant}))
		require.NoError(t, err)
		got := map[uint64]string{}
		for _, dl := range res.Msg.GetDeadLetters() {
			got[dl.GetSequence()] = dl.GetError()
		}
		return got
	}
	headerOf := func(c adminv1connect.DeadLetterServiceClient, tenant string, seq uint64) []string {
		t.Helper()
		res, err := c.GetDeadLetter(ctx, connect.NewRequest(&adminv1.GetDeadLetterRequest{Service: "billing", Sequence: seq, TenantId: tenant}))
		require.NoError(t, err)
		for _, h := range res.Msg.GetHeaders() {
			if h.GetName() == events.HeaderDLQError {
				return h.GetValues()
			}
		}
		return nil
	}

	assert.Equal(t, map[uint64]string{retried: "billing database was down", permanent: "billing database was down"}, errorsOf(operator, ""),
		"the operator reads the handler's text")
	assert.Equal(t, []string{"billing database was down"}, headerOf(operator, "", retried))
	assert.Equal(t, map[uint64]string{retried: "retries ran out: the handler kept failing", permanent: "retries ran out: the handler kept failing"},
		errorsOf(admin, tenant.String()), "a tenant admin reads the category")
	assert.Equal(t, []string{"retries ran out: the handler kept failing"}, headerOf(admin, tenant.String(), retried),
		"the header carries the category too")

	// The garbled payload fails again, permanently: the tenant admin's
	// result and the kept dead letter say so, without billing's text.
	res, err := admin.RedriveDeadLetters(ctx, connect.NewRequest(&adminv1.RedriveDeadLettersRequest{Service: "billing", TenantId: tenant.String(),
		Target: &adminv1.RedriveDeadLettersRequest_Sequence{Sequence: permanent}}))
	require.NoError(t, err)
	r := res.Msg.GetResults()[0]
	require.Equal(t, adminv1.RedriveOutcome_REDRIVE_OUTCOME_FAILED, r.GetOutcome())
	assert.Equal(t, "permanent: the event cannot be applied", r.GetError())
	kept := r.GetNewSequence()
	assert.Equal(t, "permanent: the event cannot be applied", errorsOf(admin, tenant.String())[kept])
	assert.Equal(t, []string{"permanent: the event cannot be applied"}, headerOf(admin, tenant.String(), kept))
	got, err := admin.GetDeadLetter(ctx, connect.NewRequest(&adminv1.GetDeadLetterRequest{Service: "billing", Sequence: kept, TenantId: tenant.String()}))
	require.NoError(t, err)
	assert.Contains(t, got.Msg.GetPayloadError(), "decode", "the payload's own decoding error, from the bytes shown, stays")
	assert.Contains(t, errorsOf(operator, "")[kept], "decode", "the operator reads the handler's text")
	assert.NotEqual(t, "permanent: the event cannot be applied", headerOf(operator, "", kept)[0])
}
