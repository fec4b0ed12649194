package identity_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/authms/authms/events"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/servicestest"
)

const password = "correct horse battery staple"

// env is the running identity service of one test.
type env struct {
	*servicestest.Env
	client identityv1connect.IdentityServiceClient
	pool   *pgxpool.Pool
}

func start(t *testing.T) *env {
	t.Helper()
	e := servicestest.Start(t, "identity", "tenant", "risk")
	return &env{Env: e, client: newClient(e), pool: e.Pool("identity")}
}

func newClient(e *servicestest.Env) identityv1connect.IdentityServiceClient {
	return identityv1connect.NewIdentityServiceClient(e.HTTP, e.URL, e.Impersonate())
}

func (e *env) register(t *testing.T, tenant, email string) *identityv1.User {
	t.Helper()
	res, err := e.client.RegisterUser(t.Context(), connect.NewRequest(&identityv1.RegisterUserRequest{
		TenantId: tenant, Email: email, Password: password,
	}))
	require.NoError(t, err)
	return res.Msg.GetUser()
}

// count runs a count query against identity's own database.
func (e *env) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	return countRows(t, e.pool, sql, args...)
}

func countRows(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), sql, args...).Scan(&n))
	return n
}

// published waits for the event of aggregateID on subject in the IDENTITY
// stream and decodes its payload into m.
func published(t *testing.T, js jetstream.JetStream, subject, aggregateID string, m proto.Message) events.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, events.StreamName("identity"), jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	require.NoError(t, err)
	for {
		msg, err := cons.Next(jetstream.FetchContext(ctx))
		require.NoError(t, err, "waiting for %s of %s", subject, aggregateID)
		ev, err := events.FromMsg(msg.Subject(), msg.Headers(), msg.Data())
		require.NoError(t, err)
		if ev.AggregateID == aggregateID {
			require.NoError(t, ev.Unmarshal(m))
			return ev
		}
	}
}

// violations returns the fields named in err's buf.validate.Violations.
func violations(t *testing.T, err error) []string {
	t.Helper()
	var ce *connect.Error
	require.ErrorAs(t, err, &ce)
	var fields []string
	for _, d := range ce.Details() {
		v, derr := d.Value()
		require.NoError(t, derr)
		if vs, ok := v.(*validatepb.Violations); ok {
			for _, viol := range vs.GetViolations() {
				var path []string
				for _, el := range viol.GetField().GetElements() {
					path = append(path, el.GetFieldName())
				}
				fields = append(fields, strings.Join(path, "."))
			}
		}
	}
	return fields
}

// assertNoInternals fails if an error message shows SQL or internals.
func assertNoInternals(t *testing.T, msg string) {
	t.Helper()
	for _, s := range []string{"SQL", "sql", "constraint", "duplicate key", "users_", "pq:", "pgx", "argon2", "goroutine"} {
		assert.NotContains(t, msg, s)
	}
}

func TestRegisterUser(t *testing.T) {
	t.Parallel()
	e := start(t)

	t.Run("with a Connect client", func(t *testing.T) {
		t.Parallel()
		tenant := e.NewTenant(t)
		u := e.register(t, tenant, "Ada.Lovelace@Example.com")
		assert.Equal(t, tenant, u.GetTenantId())
		assert.Equal(t, "Ada.Lovelace@Example.com", u.GetEmail())
		assert.Equal(t, int64(1), u.GetVersion())
		id, err := uuid.Parse(u.GetId())
		require.NoError(t, err)
		assert.Equal(t, uuid.Version(7), id.Version())

		var created identityv1.UserCreated
		ev := published(t, e.JS, "identity.user.created", u.GetId(), &created)
		assert.Equal(t, "identity.user.created.v1", ev.Type())
		assert.Equal(t, tenant, ev.TenantID)
		assert.Equal(t, int64(1), ev.Version)
		assert.Equal(t, "user", ev.AggregateType)
		assert.Equal(t, u.GetId(), created.GetUserId())
		assert.Equal(t, tenant, created.GetTenantId())
		assert.Equal(t, "Ada.Lovelace@Example.com", created.GetEmail())

		got, err := e.client.GetUser(t.Context(), connect.NewRequest(&identityv1.GetUserRequest{TenantId: tenant, UserId: u.GetId()}))
		require.NoError(t, err)
		assert.True(t, proto.Equal(got.Msg.GetUser(), u), "GetUser returns the registered user")

		var hash string
		require.NoError(t, e.pool.QueryRow(t.Context(), "SELECT password_hash FROM credentials WHERE user_id = $1", id).Scan(&hash))
		assert.Regexp(t, `^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`, hash)
		assert.NotContains(t, hash, password)
	})

	t.Run("with raw HTTP JSON", func(t *testing.T) {
		t.Parallel()
		tenant := e.NewTenant(t)
		body := fmt.Sprintf(`{"tenant_id":%q,"email":"grace@example.com","password":%q}`, tenant, password)
		res, err := http.Post(e.URL+identityv1connect.IdentityServiceRegisterUserProcedure, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer res.Body.Close()
		raw, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", raw)
		assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
		var out identityv1.RegisterUserResponse
		require.NoError(t, protojson.Unmarshal(raw, &out))
		assert.Equal(t, "grace@example.com", out.GetUser().GetEmail())
		assert.Equal(t, tenant, out.GetUser().GetTenantId())

		var created identityv1.UserCreated
		published(t, e.JS, "identity.user.created", out.GetUser().GetId(), &created)
		assert.Equal(t, "grace@example.com", created.GetEmail())
	})

	t.Run("a taken email is answered like a new one and tells the owner", func(t *testing.T) {
		t.Parallel()
		tenant := e.NewTenant(t)
		first, err := e.client.RegisterUser(t.Context(), connect.NewRequest(&identityv1.RegisterUserRequest{
			TenantId: tenant, Email: "ada@example.com", Password: password,
		}))
		require.NoError(t, err)
		owner := first.Msg.GetUser()
		for i, email := range []string{"ada@example.com", "ADA@Example.COM"} {
			again := e.registerAgain(t, tenant, email, owner)
			assert.Equal(t, email, again.User.GetEmail(), "the address as given, as for a new user")
			assert.Equal(t, shape(first.Msg), shape(again), "the same answer as a new registration")
			assert.Equal(t, i+1, e.count(t, "SELECT count(*) FROM events WHERE subject = 'identity.registration.address_taken' AND tenant_id = $1", tenant))
		}
		assert.Equal(t, 1, e.count(t, "SELECT count(*) FROM events WHERE aggregate_id = $1", owner.GetId()), "the account's history is untouched")
		assert.Equal(t, 1, e.count(t, "SELECT version FROM users WHERE id = $1", owner.GetId()), "and so is its version")
		assert.Equal(t, 1, e.count(t, "SELECT count(*) FROM users WHERE tenant_id = $1", tenant))

		bcryptHash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		require.NoError(t, err)
		_, err = e.client.ImportUser(t.Context(), connect.NewRequest(&identityv1.ImportUserRequest{
			TenantId: tenant, Email: "Ada@example.com", BcryptHash: string(bcryptHash),
		}))
		assert.Equal(t, connect.CodeAlreadyExists, connect.CodeOf(err), "an admin's import says the address is taken")
		assertNoInternals(t, err.Error())

		other := e.register(t, e.NewTenant(t), "ada@example.com")
		assert.NotEqual(t, owner.GetId(), other.GetId(), "another tenant may use the same email")
	})
}

// registerAgain registers email, which owner's account already has, and
// checks what enumeration-safety promises: a success naming a user that
// does not exist, and, at the answer's position, the
// identity.registration.address_taken event that tells the owner.
func (e *env) registerAgain(t *testing.T, tenant, email string, owner *identityv1.User) *identityv1.RegisterUserResponse {
	t.Helper()
	res, err := e.client.RegisterUser(t.Context(), connect.NewRequest(&identityv1.RegisterUserRequest{
		TenantId: tenant, Email: email, Password: password,
	}))
	require.NoError(t, err, email)
	answer := res.Msg
	require.NotEqual(t, owner.GetId(), answer.GetUser().GetId(), "the answer names no existing user")
	_, err = e.client.GetUser(t.Context(), connect.NewRequest(&identityv1.GetUserRequest{TenantId: tenant, UserId: answer.GetUser().GetId()}))
	assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "the answer's user was never stored")

	require.NotNil(t, answer.GetPosition(), "a position, as for a new user")
	assert.Equal(t, events.StreamName("identity"), answer.GetPosition().GetStream())
	stream, err := e.JS.Stream(t.Context(), events.StreamName("identity"))
	require.NoError(t, err)
	msg, err := stream.GetMsg(t.Context(), answer.GetPosition().GetSequence())
	require.NoError(t, err)
	ev, err := events.FromMsg(msg.Subject, msg.Header, msg.Data)
	require.NoError(t, err)
	assert.Equal(t, "identity.registration.address_taken", ev.Subject(), "the position is the owner's notice")
	assert.Equal(t, answer.GetUser().GetId(), ev.AggregateID, "the registration's own aggregate, named by the answer's id")
	var taken identityv1.RegistrationAddressTaken
	require.NoError(t, ev.Unmarshal(&taken))
	assert.Equal(t, owner.GetId(), taken.GetUserId())
	assert.Equal(t, owner.GetEmail(), taken.GetEmail(), "the notice goes to the account's address")
	assert.Equal(t, tenant, taken.GetTenantId())
	return answer
}

// shape is a RegisterUserResponse with what differs between any two
// registrations cleared: ids, the address, times and the sequence.
func shape(res *identityv1.RegisterUserResponse) *identityv1.RegisterUserResponse {
	c := proto.CloneOf(res)
	u := c.GetUser()
	u.Id, u.Email, u.CreateTime, u.UpdateTime = "", "", nil, nil
	c.GetPosition().Sequence = 0
	return c
}

func TestRegisterUserRefusesBadInput(t *testing.T) {
	t.Parallel()
	e := start(t)
	tests := []struct {
		name      string
		tenant    string // "" means a fresh tenant
		email     string
		password  string
		wantField string
	}{
		{name: "invalid email", email: "not-an-email", password: password, wantField: "email"},
		{name: "empty email", email: "", password: password, wantField: "email"},
		{name: "short password", email: "ada@example.com", password: "short pass", wantField: "password"},
		{name: "long password", email: "ada@example.com", password: strings.Repeat("x", 129), wantField: "password"},
		{name: "common password", email: "ada@example.com", password: "Password1234", wantField: "password"},
		{name: "password containing the email", email: "lovelace@example.com", password: "i am lovelace 1815", wantField: "password"},
		{name: "tenant is not a UUID", tenant: "tenant-1", email: "ada@example.com", password: password, wantField: "tenant_id"},
		{name: "missing tenant", tenant: "-", email: "ada@example.com", password: password, wantField: "tenant_id"},
	}
	known := e.NewTenant(t) // a tenant identity knows: the input alone is refused
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tenant := tt.tenant
			switch tenant {
			case "":
				tenant = known
			case "-":
				tenant = ""
			}
			_, err := e.client.RegisterUser(t.Context(), connect.NewRequest(&identityv1.RegisterUserRequest{
				TenantId: tenant, Email: tt.email, Password: tt.password,
			}))
			require.Error(t, err)
			assert.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
			assert.Contains(t, violations(t, err), tt.wantField)
			assertNoInternals(t, err.Error())
			assert.NotContains(t, err.Error(), tt.password, "the password is never echoed")

			assert.Equal(t, 0, e.count(t, "SELECT count(*) FROM users WHERE lower(email) = lower($1)", tt.email))
			assert.Equal(t, 0, e.count(t, "SELECT count(*) FROM events WHERE tenant_id = $1", tenant))
			assert.Equal(t, 0, e.count(t, "SELECT count(*) FROM outbox WHERE headers->>'ce-tenantid' = $1", tenant))
		})
	}

	t.Run("raw JSON with a bad email", func(t *testing.T) {
		t.Parallel()
		tenant := e.NewTenant(t)
		body := fmt.Sprintf(`{"tenant_id":%q,"email":"nope","password":%q}`, tenant, password)
		res, err := http.Post(e.URL+identityv1connect.IdentityServiceRegisterUserProcedure, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer res.Body.Close()
		assert.Equal(t, http.StatusBadRequest, res.StatusCode)
		var out struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
		assert.Equal(t, "invalid_argument", out.Code)
		assert.Contains(t, out.Message, "email")
		assert.Equal(t, 0, e.count(t, "SELECT count(*) FROM events WHERE tenant_id = $1", tenant))
	})
}

func TestChangeEmail(t *testing.T) {
	t.Parallel()
	e := start(t)
	tenant := e.NewTenant(t)
	u := e.register(t, tenant, "ada@example.com")
	e.register(t, tenant, "grace@example.com")

	res, err := e.client.ChangeEmail(t.Context(), connect.NewRequest(&identityv1.ChangeEmailRequest{
		TenantId: tenant, UserId: u.GetId(), CurrentPassword: password, Email: "ada@lovelace.org", ExpectedVersion: proto.Int64(1),
	}))
	require.NoError(t, err)
	assert.Equal(t, "ada@lovelace.org", res.Msg.GetUser().GetEmail())
	assert.Equal(t, int64(2), res.Msg.GetUser().GetVersion())

	var changed identityv1.UserEmailChanged
	ev := published(t, e.JS, "identity.user.email_changed", u.GetId(), &changed)
	assert.Equal(t, int64(2), ev.Version)
	assert.Equal(t, "identity.user.email_changed.v1", ev.Type())
	assert.Equal(t, "ada@lovelace.org", changed.GetEmail())
	assert.Equal(t, "ada@example.com", changed.GetPreviousEmail())
	assert.Equal(t, tenant, changed.GetTenantId())

	got, err := e.client.GetUser(t.Context(), connect.NewRequest(&identityv1.GetUserRequest{TenantId: tenant, UserId: u.GetId()}))
	require.NoError(t, err)
	assert.Equal(t, "ada@lovelace.org", got.Msg.GetUser().GetEmail())

	t.Run("the same email is a no-op", func(t *testing.T) {
		res, err := e.client.ChangeEmail(t.Context(), connect.NewRequest(&identityv1.ChangeEmailRequest{
			TenantId: tenant, UserId: u.GetId(), CurrentPassword: password, Email: "ada@lovelace.org",
		}))
		require.NoError(t, err)
		assert.Equal(t, int64(2), res.Msg.GetUser().GetVersion())
		assert.Equal(t, 2, e.count(t, "SELECT count(*) FROM events WHERE aggregate_id = $1", u.GetId()))
	})

	t.Run("the old email is free again", func(t *testing.T) {
		e.register(t, tenant, "ADA@example.com")
	})

	tests := []struct {
		name     string
		req      *identityv1.ChangeEmailRequest
		wantCode connect.Code
	}{
		{
			name:     "another user's email, in another case",
			req:      &identityv1.ChangeEmailRequest{TenantId: tenant, UserId: u.GetId(), CurrentPassword: password, Email: "Grace@Example.com"},
			wantCode: connect.CodeAlreadyExists,
		},
		{
			name:     "a stale expected version",
			req:      &identityv1.ChangeEmailRequest{TenantId: tenant, UserId: u.GetId(), CurrentPassword: password, Email: "ada@new.example", ExpectedVersion: proto.Int64(1)},
			wantCode: connect.CodeAborted,
		},
		{
			name:     "an unknown user",
			req:      &identityv1.ChangeEmailRequest{TenantId: tenant, UserId: uuid.NewString(), CurrentPassword: password, Email: "ada@new.example"},
			wantCode: connect.CodeNotFound,
		},
		{
			name:     "a user of another tenant",
			req:      &identityv1.ChangeEmailRequest{TenantId: uuid.NewString(), UserId: u.GetId(), CurrentPassword: password, Email: "ada@new.example"},
			wantCode: connect.CodeNotFound,
		},
		{
			name:     "a wrong current password",
			req:      &identityv1.ChangeEmailRequest{TenantId: tenant, UserId: u.GetId(), CurrentPassword: "not the password", Email: "ada@new.example"},
			wantCode: connect.CodeInvalidArgument,
		},
		{
			name:     "no current password",
			req:      &identityv1.ChangeEmailRequest{TenantId: tenant, UserId: u.GetId(), Email: "ada@new.example"},
			wantCode: connect.CodeInvalidArgument,
		},
		{
			name:     "an invalid email",
			req:      &identityv1.ChangeEmailRequest{TenantId: tenant, UserId: u.GetId(), CurrentPassword: password, Email: "ada"},
			wantCode: connect.CodeInvalidArgument,
		},
		{
			name:     "a zero expected version",
			req:      &identityv1.ChangeEmailRequest{TenantId: tenant, UserId: u.GetId(), CurrentPassword: password, Email: "ada@new.example", ExpectedVersion: proto.Int64(0)},
			wantCode: connect.CodeInvalidArgument,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.ChangeEmail(t.Context(), connect.NewRequest(tt.req))
			require.Error(t, err)
			assert.Equal(t, tt.wantCode, connect.CodeOf(err), "%v", err)
			assertNoInternals(t, err.Error())
			assert.Equal(t, 2, e.count(t, "SELECT count(*) FROM events WHERE aggregate_id = $1", u.GetId()), "nothing recorded")
			got, err := e.client.GetUser(t.Context(), connect.NewRequest(&identityv1.GetUserRequest{TenantId: tenant, UserId: u.GetId()}))
			require.NoError(t, err)
			assert.Equal(t, "ada@lovelace.org", got.Msg.GetUser().GetEmail())
		})
	}

	t.Run("GetUser of another tenant is NotFound", func(t *testing.T) {
		_, err := e.client.GetUser(t.Context(), connect.NewRequest(&identityv1.GetUserRequest{TenantId: uuid.NewString(), UserId: u.GetId()}))
		assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err))
		_, err = e.client.GetUser(t.Context(), connect.NewRequest(&identityv1.GetUserRequest{TenantId: tenant, UserId: uuid.NewString()}))
		assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err))
	})
}

func TestChangeEmailByAnAdmin(t *testing.T) {
	t.Parallel()
	e := start(t)
	tenant := e.NewTenant(t)
	u := e.register(t, tenant, "ada@example.com")
	admin := e.register(t, tenant, "admin@example.com")
	as := func(user string) identityv1connect.IdentityServiceClient {
		return identityv1connect.NewIdentityServiceClient(e.HTTP, e.URL, servicestest.Bearer(e.Token(t, tenant, user, auth.RoleAdmin)))
	}
	changeEmail := func(c identityv1connect.IdentityServiceClient, user, email, currentPassword string) (*identityv1.User, error) {
		res, err := c.ChangeEmail(t.Context(), connect.NewRequest(&identityv1.ChangeEmailRequest{
			TenantId: tenant, UserId: user, Email: email, CurrentPassword: currentPassword,
		}))
		if err != nil {
			return nil, err
		}
		return res.Msg.GetUser(), nil
	}
	loginAttempts := func() int {
		return countRows(t, e.Pool("risk"), "SELECT count(*) FROM login_attempts WHERE tenant_id = $1", tenant)
	}

	_, err := changeEmail(e.client, u.GetId(), "ada@lovelace.org", "")
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "%v", err)
	assert.Equal(t, []string{"current_password"}, violations(t, err), "a user's own change needs their password")

	_, err = changeEmail(as(admin.GetId()), u.GetId(), "ada@lovelace.org", "")
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "%v", err)
	assert.Equal(t, []string{"current_password"}, violations(t, err), "an admin's token alone changes nobody's address")
	_, err = changeEmail(as(admin.GetId()), u.GetId(), "ada@lovelace.org", password+" but wrong")
	assert.Equal(t, []string{"current_password"}, violations(t, err), "the admin's guess is checked")
	assert.Equal(t, 1, loginAttempts(), "and counted")

	changed, err := changeEmail(as(admin.GetId()), u.GetId(), "ada@lovelace.org", password)
	require.NoError(t, err, "an admin supporting another user gives their own password")
	assert.Equal(t, "ada@lovelace.org", changed.GetEmail())
	assert.Equal(t, 2, loginAttempts())
	assert.Equal(t, 1, countRows(t, e.Pool("risk"), "SELECT count(DISTINCT account_key) FROM login_attempts WHERE tenant_id = $1", tenant),
		"every check was of the admin's account: nothing counted against the user's lockout")

	changed, err = changeEmail(as(admin.GetId()), admin.GetId(), "admin@new.example", password)
	require.NoError(t, err)
	assert.Equal(t, "admin@new.example", changed.GetEmail())
}

func TestConcurrentChangeEmailWithTheSameExpectedVersion(t *testing.T) {
	t.Parallel()
	e := start(t)
	tenant := e.NewTenant(t)
	u := e.register(t, tenant, "ada@example.com")

	const n = 20
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		succeeded []*identityv1.User
		codes     = map[connect.Code]int{}
	)
	for i := range n {
		wg.Go(func() {
			res, err := e.client.ChangeEmail(context.WithoutCancel(t.Context()), connect.NewRequest(&identityv1.ChangeEmailRequest{
				TenantId: tenant, UserId: u.GetId(), CurrentPassword: password, Email: fmt.Sprintf("ada+%d@example.com", i), ExpectedVersion: proto.Int64(1),
			}))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				codes[connect.CodeOf(err)]++
				return
			}
			succeeded = append(succeeded, res.Msg.GetUser())
		})
	}
	wg.Wait()
	require.Len(t, succeeded, 1, "exactly one command wins; the others: %v", codes)
	// Each change checks the password as a login attempt of the account:
	// while the account's remaining failures are all being checked, risk
	// refuses the rest as busy; the checked ones lose on the version.
	assert.Equal(t, n-1, codes[connect.CodeAborted]+codes[connect.CodeResourceExhausted], codes)
	assert.Positive(t, codes[connect.CodeAborted], codes)
	winner := succeeded[0]
	assert.Equal(t, int64(2), winner.GetVersion())

	rows, err := e.pool.Query(t.Context(), "SELECT version, subject, data FROM events WHERE aggregate_id = $1 ORDER BY version", u.GetId())
	require.NoError(t, err)
	defer rows.Close()
	var versions []int64
	var last identityv1.UserEmailChanged
	for rows.Next() {
		var (
			v       int64
			subject string
			data    []byte
		)
		require.NoError(t, rows.Scan(&v, &subject, &data))
		versions = append(versions, v)
		if subject == "identity.user.email_changed" {
			require.NoError(t, proto.Unmarshal(data, &last))
		}
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []int64{1, 2}, versions, "versions are gap-free")
	assert.Equal(t, winner.GetEmail(), last.GetEmail(), "the success is the stored event")
}

func TestAuthenticateUser(t *testing.T) {
	t.Parallel()
	e := start(t)
	tenant := e.NewTenant(t)
	u := e.register(t, tenant, "Ada.Lovelace@Example.com")

	for _, email := range []string{"Ada.Lovelace@Example.com", "ada.lovelace@example.com", "  ADA.LOVELACE@EXAMPLE.COM "} {
		res, err := e.client.AuthenticateUser(t.Context(), connect.NewRequest(&identityv1.AuthenticateUserRequest{
			TenantId: tenant, Email: email, Password: password,
		}))
		require.NoError(t, err, email)
		assert.Equal(t, u.GetId(), res.Msg.GetUserId())
		assert.Equal(t, "Ada.Lovelace@Example.com", res.Msg.GetEmail(), "the display form")
		assert.False(t, res.Msg.GetEmailVerified())
	}

	failures := []struct {
		name string
		req  *identityv1.AuthenticateUserRequest
	}{
		{name: "a wrong password", req: &identityv1.AuthenticateUserRequest{TenantId: tenant, Email: "ada.lovelace@example.com", Password: password + "!"}},
		{name: "an empty password", req: &identityv1.AuthenticateUserRequest{TenantId: tenant, Email: "ada.lovelace@example.com"}},
		{name: "an unknown email", req: &identityv1.AuthenticateUserRequest{TenantId: tenant, Email: "grace@example.com", Password: password}},
		{name: "another tenant", req: &identityv1.AuthenticateUserRequest{TenantId: e.NewTenant(t), Email: "ada.lovelace@example.com", Password: password}},
		{name: "an unknown tenant", req: &identityv1.AuthenticateUserRequest{TenantId: uuid.NewString(), Email: "ada.lovelace@example.com", Password: password}},
		{name: "not an email", req: &identityv1.AuthenticateUserRequest{TenantId: tenant, Email: "ada", Password: password}},
	}
	var messages []string
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.AuthenticateUser(t.Context(), connect.NewRequest(tt.req))
			require.Error(t, err)
			assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
			messages = append(messages, err.Error())
		})
	}
	for _, m := range messages {
		assert.Equal(t, messages[0], m, "every failure reads the same")
	}
	assert.Equal(t, "unauthenticated: invalid email or password", messages[0])

	_, err := e.client.AuthenticateUser(t.Context(), connect.NewRequest(&identityv1.AuthenticateUserRequest{TenantId: "nope", Email: "ada@example.com"}))
	assert.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
}

func (e *env) authenticate(t *testing.T, tenant, email, pw string) (*identityv1.AuthenticateUserResponse, error) {
	t.Helper()
	res, err := e.client.AuthenticateUser(t.Context(), connect.NewRequest(&identityv1.AuthenticateUserRequest{
		TenantId: tenant, Email: email, Password: pw,
	}))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

func TestUnicodeEmails(t *testing.T) {
	t.Parallel()
	e := start(t)

	t.Run("NFC and NFD spell one account", func(t *testing.T) {
		t.Parallel()
		tenant := e.NewTenant(t)
		u := e.register(t, tenant, "Jose\u0301@Example.com") // decomposed é
		assert.Equal(t, "Jos\u00e9@Example.com", u.GetEmail(), "stored NFC, case kept")
		e.registerAgain(t, tenant, "jos\u00e9@example.com", u) // the composed spelling is the same address
		for _, spelling := range []string{"jos\u00e9@example.com", "JOSE\u0301@EXAMPLE.COM", "Jos\u00c9@example.com"} {
			res, err := e.authenticate(t, tenant, spelling, password)
			require.NoError(t, err, spelling)
			assert.Equal(t, u.GetId(), res.GetUserId(), spelling)
		}
	})

	t.Run("an IDNA domain matches its A-label form", func(t *testing.T) {
		t.Parallel()
		tenant := e.NewTenant(t)
		u := e.register(t, tenant, "ada@Bücher.example")
		e.registerAgain(t, tenant, "ADA@xn--bcher-kva.example", u)
		res, err := e.authenticate(t, tenant, "Ada@XN--BCHER-KVA.EXAMPLE", password)
		require.NoError(t, err)
		assert.Equal(t, u.GetId(), res.GetUserId())
		assert.Equal(t, "ada@Bücher.example", res.GetEmail())
		assert.Equal(t, 1, e.count(t, "SELECT count(*) FROM users WHERE tenant_id = $1 AND email_canonical = 'ada@xn--bcher-kva.example'", tenant))
	})

	t.Run("confusable and mixed-script addresses are refused", func(t *testing.T) {
		t.Parallel()
		tenant := e.NewTenant(t)
		for _, bad := range []string{
			"\u0430da@example.com",                   // Cyrillic а with Latin
			"ada@ex\u0430mple.com",                   // the same in the domain
			"ada@\u0430\u0440\u0440\u04cf\u0435.com", // all-Cyrillic "apple"
			"ada@xn--80ak6aa92e.com",                 // the same as A-labels
			"ada\u200b@example.com",                  // zero-width space
			"ada@example.com\u202e",                  // bidi override
		} {
			_, err := e.client.RegisterUser(t.Context(), connect.NewRequest(&identityv1.RegisterUserRequest{
				TenantId: tenant, Email: bad, Password: password,
			}))
			require.Error(t, err, "%q", bad)
			assert.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "%q", bad)
			assert.Equal(t, []string{"email"}, violations(t, err), "%q", bad)
		}
		assert.Equal(t, 0, e.count(t, "SELECT count(*) FROM events WHERE tenant_id = $1", tenant), "nothing written")

		u := e.register(t, tenant, "ada@example.com")
		_, err := e.client.ChangeEmail(t.Context(), connect.NewRequest(&identityv1.ChangeEmailRequest{
			TenantId: tenant, UserId: u.GetId(), CurrentPassword: password, Email: "ad\u03b1@example.com",
		}))
		assert.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
		_, err = e.authenticate(t, tenant, "\u0430da@example.com", password)
		assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "a look-alike never logs in as the original")
	})
}
