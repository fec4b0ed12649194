package identity

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/authms/authms/events"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/services/internal/rpc"
)

const (
	testUser    = "0190b6a4-3c4e-7a51-9f0c-1d2e3f405161"
	testTenant  = "5e0f6c1a-8d2b-4c3e-9f40-a1b2c3d4e5f6"
	otherTenant = "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d"
)

// given builds the user's stored events from their payloads, versions 1, 2, ...
func given(tb testing.TB, payloads ...proto.Message) []events.Event {
	tb.Helper()
	out := make([]events.Event, len(payloads))
	for i, p := range payloads {
		data, err := proto.Marshal(p)
		require.NoError(tb, err)
		name := eventUserCreated
		if _, ok := p.(*identityv1.UserEmailChanged); ok {
			name = eventUserEmailChanged
		}
		out[i] = events.Event{
			Service: Name, AggregateType: aggregateUser, AggregateID: testUser, Name: name,
			TenantID: testTenant, Version: int64(i + 1), Time: time.Unix(int64(1000+i), 0).UTC(),
			MessageName: p.ProtoReflect().Descriptor().FullName(), Data: data,
		}
	}
	return out
}

func created(email string) *identityv1.UserCreated {
	return &identityv1.UserCreated{UserId: testUser, TenantId: testTenant, Email: email, CreateTime: timestamppb.New(time.Unix(1000, 0))}
}

func ptr[T any](v T) *T { return &v }

func TestUserChangeEmail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		past    []proto.Message
		cmd     emailChange
		want    []proto.Message
		wantErr error
	}{
		{
			name: "changes the email",
			past: []proto.Message{created("ada@example.com")},
			cmd:  emailChange{tenantID: testTenant, email: "ada@example.org"},
			want: []proto.Message{&identityv1.UserEmailChanged{UserId: testUser, TenantId: testTenant, Email: "ada@example.org", PreviousEmail: "ada@example.com"}},
		},
		{
			name: "a changed email is the previous one next time",
			past: []proto.Message{created("ada@example.com"), &identityv1.UserEmailChanged{UserId: testUser, TenantId: testTenant, Email: "ada@example.org", PreviousEmail: "ada@example.com"}},
			cmd:  emailChange{tenantID: testTenant, email: "ada@example.net", expectedVersion: ptr(int64(2))},
			want: []proto.Message{&identityv1.UserEmailChanged{UserId: testUser, TenantId: testTenant, Email: "ada@example.net", PreviousEmail: "ada@example.org"}},
		},
		{
			name: "a case change is a change",
			past: []proto.Message{created("ada@example.com")},
			cmd:  emailChange{tenantID: testTenant, email: "Ada@example.com"},
			want: []proto.Message{&identityv1.UserEmailChanged{UserId: testUser, TenantId: testTenant, Email: "Ada@example.com", PreviousEmail: "ada@example.com"}},
		},
		{
			name: "the same email is a no-op",
			past: []proto.Message{created("ada@example.com")},
			cmd:  emailChange{tenantID: testTenant, email: "ada@example.com", expectedVersion: ptr(int64(1))},
		},
		{
			name:    "a stale expected version is refused even for a no-op",
			past:    []proto.Message{created("ada@example.com"), &identityv1.UserEmailChanged{UserId: testUser, TenantId: testTenant, Email: "ada@example.org"}},
			cmd:     emailChange{tenantID: testTenant, email: "ada@example.org", expectedVersion: ptr(int64(1))},
			wantErr: &rpc.VersionMismatchError{Aggregate: "user", Expected: 1, Current: 2},
		},
		{
			name:    "an unknown user does not exist",
			cmd:     emailChange{tenantID: testTenant, email: "ada@example.org"},
			wantErr: ErrUserNotFound,
		},
		{
			name:    "a user of another tenant does not exist",
			past:    []proto.Message{created("ada@example.com")},
			cmd:     emailChange{tenantID: otherTenant, email: "ada@example.org"},
			wantErr: ErrUserNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u, err := userFromEvents(given(t, tt.past...))
			require.NoError(t, err)
			changes, err := u.changeEmail(tt.cmd)
			if tt.wantErr != nil {
				require.Error(t, err)
				assert.Equal(t, tt.wantErr.Error(), err.Error())
				assert.Empty(t, changes)
				return
			}
			require.NoError(t, err)
			got := make([]proto.Message, len(changes))
			for i, c := range changes {
				assert.Equal(t, eventUserEmailChanged, c.Name)
				got[i] = c.Payload
			}
			if diff := cmp.Diff(got, tt.want, protocmp.Transform(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("events (-got +want):\n%s", diff)
			}
		})
	}
}

func TestUserFromEvents(t *testing.T) {
	t.Parallel()
	u, err := userFromEvents(given(t, created("ada@example.com"),
		&identityv1.UserEmailChanged{UserId: testUser, TenantId: testTenant, Email: "ada@example.org", PreviousEmail: "ada@example.com"}))
	require.NoError(t, err)
	assert.Equal(t, user{
		id: testUser, tenantID: testTenant, email: "ada@example.org", status: statusActive, roles: []string{}, version: 2,
		createdAt: time.Unix(1000, 0).UTC(), updatedAt: time.Unix(1001, 0).UTC(),
	}, u)

	t.Run("a gap in versions is an error", func(t *testing.T) {
		evs := given(t, created("ada@example.com"), &identityv1.UserEmailChanged{Email: "x@example.com"})
		evs[1].Version = 3
		_, err := userFromEvents(evs)
		require.Error(t, err)
	})
	t.Run("an unknown event is an error", func(t *testing.T) {
		evs := given(t, created("ada@example.com"))
		evs[0].Name = "renamed"
		_, err := userFromEvents(evs)
		require.Error(t, err)
	})
	t.Run("another aggregate's events give no user", func(t *testing.T) {
		evs := given(t, created("ada@example.com"))
		evs[0].AggregateType, evs[0].Name = aggregateRegistration, eventRegistrationAddressTaken
		u, err := userFromEvents(evs)
		require.NoError(t, err)
		assert.False(t, u.exists())
	})
	t.Run("an aggregate of two types is an error", func(t *testing.T) {
		evs := given(t, created("ada@example.com"), &identityv1.UserEmailChanged{Email: "x@example.com"})
		evs[1].AggregateType = aggregateRegistration
		_, err := userFromEvents(evs)
		require.Error(t, err)
		evs[0].AggregateType, evs[1].AggregateType = aggregateRegistration, aggregateUser
		_, err = userFromEvents(evs)
		require.Error(t, err)
	})
}

func TestRegister(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := registration{userID: mustUUID(t, testUser), tenantID: mustUUID(t, testTenant), email: "Ada@Example.com", now: now}
	changes := register(r)
	require.Len(t, changes, 1)
	assert.Equal(t, eventUserCreated, changes[0].Name)
	want := &identityv1.UserCreated{UserId: testUser, TenantId: testTenant, Email: "Ada@Example.com", CreateTime: timestamppb.New(now)}
	if diff := cmp.Diff(changes[0].Payload, want, protocmp.Transform()); diff != "" {
		t.Errorf("UserCreated (-got +want):\n%s", diff)
	}
}

func TestParseEmail(t *testing.T) {
	t.Parallel()
	addr, err := parseEmail("  Ada.Lovelace@Example.COM ")
	require.NoError(t, err)
	assert.Equal(t, "Ada.Lovelace@Example.COM", addr.Display)
	assert.Equal(t, "ada.lovelace@example.com", addr.Canonical)

	_, err = parseEmail("\u0430da@example.com")
	var fe *rpc.InvalidFieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "email", fe.Field)
	assert.Equal(t, "email.mixed_script", fe.Rule)
}

func TestCheckPassword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		password string
		email    string
		wantRule string
	}{
		{name: "a good password", password: "correct horse battery", email: "ada@example.com"},
		{name: "a common password", password: "password1234", email: "ada@example.com", wantRule: "password.common"},
		{name: "a common password in another case", password: "PassWord1234", email: "ada@example.com", wantRule: "password.common"},
		{name: "contains the local part", password: "my-ADALOVELACE-pass", email: "adalovelace@example.com", wantRule: "password.contains_email"},
		{name: "a short local part is not checked", password: "jo is a great name", email: "jo@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := checkPassword(tt.password, tt.email)
			if tt.wantRule == "" {
				require.NoError(t, err)
				return
			}
			var fe *rpc.InvalidFieldError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, "password", fe.Field)
			assert.Equal(t, tt.wantRule, fe.Rule)
		})
	}
}

func TestCommonPasswordsAreLongEnoughToMatter(t *testing.T) {
	t.Parallel()
	require.NotEmpty(t, commonPasswords)
	for p := range commonPasswords {
		assert.GreaterOrEqual(t, len([]rune(p)), 12, "%q is refused by the length rule already", p)
		assert.Equal(t, strings.ToLower(p), p, "%q must be lower case", p)
	}
}

func TestHashPassword(t *testing.T) {
	t.Parallel()
	h, err := newHasher(PasswordParams{Memory: 1024, Iterations: 1}, 2)
	require.NoError(t, err)
	phc, err := h.hash(context.Background(), "correct horse battery")
	require.NoError(t, err)
	assert.Regexp(t, regexp.MustCompile(`^\$argon2id\$v=19\$m=1024,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`), phc)

	ok, err := verifyPassword(phc, "correct horse battery")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = verifyPassword(phc, "correct horse battery!")
	require.NoError(t, err)
	assert.False(t, ok)

	again, err := h.hash(context.Background(), "correct horse battery")
	require.NoError(t, err)
	assert.NotEqual(t, phc, again, "every hash has its own salt")

	_, err = verifyPassword("$2a$10$bcrypt", "x")
	require.Error(t, err)
}

func TestDefaultPasswordParams(t *testing.T) {
	t.Parallel()
	assert.Equal(t, PasswordParams{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}, DefaultConfig().Password)
	require.NoError(t, DefaultConfig().Validate())
	require.Error(t, Config{Password: PasswordParams{SaltLength: 4}}.Validate())
}

func TestHashWaitsForASlot(t *testing.T) {
	t.Parallel()
	h, err := newHasher(PasswordParams{Memory: 1024, Iterations: 1}, 1)
	require.NoError(t, err)
	h.slots <- struct{}{} // the only slot is taken
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = h.hash(ctx, "correct horse battery")
	require.True(t, errors.Is(err, context.Canceled), "got %v", err)
}

func mustUUID(tb testing.TB, s string) uuid.UUID {
	tb.Helper()
	id, err := uuid.Parse(s)
	require.NoError(tb, err)
	return id
}

func TestGrants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		granted, want string
		ok            bool
	}{
		{"wallet:read", "wallet:read", true},
		{"wallet:read", "wallet:credit", false},
		{"wallet:*", "wallet:credit", true},
		{"wallet:*", "walletx:credit", false},
		{"*", "billing:refund", true},
		{"wallet:read", "wallet:readx", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.ok, grants(tt.granted, tt.want), "%s covers %s", tt.granted, tt.want)
	}
}

func TestRoleGrantRevoke(t *testing.T) {
	t.Parallel()
	r := role{id: "r", tenantID: testTenant, name: "cashier", permissions: []string{"wallet:read"}, version: 1}
	assert.Empty(t, r.grant([]string{"wallet:read"}), "held already: a no-op")
	assert.Empty(t, r.revoke([]string{"wallet:credit"}), "not held: a no-op")
	g := r.grant([]string{"wallet:credit", "wallet:credit"})
	require.Len(t, g, 1)
	want := &identityv1.RolePermissionsGranted{RoleId: "r", TenantId: testTenant, Name: "cashier",
		Permissions: []string{"wallet:credit"}, RolePermissions: []string{"wallet:credit", "wallet:read"}}
	if diff := cmp.Diff(g[0].Payload, want, protocmp.Transform()); diff != "" {
		t.Errorf("granted (-got +want):\n%s", diff)
	}
}
