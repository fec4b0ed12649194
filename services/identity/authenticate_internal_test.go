package identity

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/proto"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/natstest"
	"github.com/authms/authms/events/pg"
	"github.com/authms/authms/events/pg/pgtest"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/services/internal/platform"
	"github.com/authms/authms/services/internal/secrets"
)

const testPassword = "correct horse battery staple"

// cheap are argon2id parameters cheap enough for tests.
var cheap = PasswordParams{Memory: 1024, Iterations: 1}

// newTestDeps provisions identity's database and returns the
// dependencies of a service without a relay nor peers (tests call its
// methods).
func newTestDeps(t *testing.T) platform.Deps {
	t.Helper()
	pool, _ := pgtest.Provision(t, Name,
		pg.MigrationSource{Name: "events", FS: events.Migrations},
		pg.MigrationSource{Name: Name, FS: Migrations()})
	return Standalone(t, platform.Deps{
		Service: Name,
		Pool:    pool,
		JS:      natstest.Start(t).JetStream(t),
		Logger:  slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		Secrets: secrets.NewMemory().Service(Name),
	})
}

func newTestService(t *testing.T, d platform.Deps, cfg Config) *Service {
	t.Helper()
	s, err := NewWithConfig(d, cfg)
	require.NoError(t, err)
	return s
}

func storedHash(t *testing.T, pool *pgxpool.Pool, userID string) string {
	t.Helper()
	var h string
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT password_hash FROM credentials WHERE user_id = $1", userID).Scan(&h))
	return h
}

func (s *Service) mustRegister(t *testing.T, tenant, email string) *identityv1.User {
	t.Helper()
	u, _, err := s.registerUser(t.Context(), &identityv1.RegisterUserRequest{TenantId: tenant, Email: email, Password: testPassword})
	require.NoError(t, err)
	return u
}

func TestAuthenticateRunsOneHashWhateverTheOutcome(t *testing.T) {
	t.Parallel()
	s := newTestService(t, newTestDeps(t), Config{Password: cheap})
	tenant := uuid.NewString()
	u := s.mustRegister(t, tenant, "ada@example.com")
	tests := []struct {
		name     string
		email    string
		password string
		wantErr  error
	}{
		{name: "the right password", email: "ada@example.com", password: testPassword},
		{name: "a wrong password", email: "ada@example.com", password: "wrong horse battery staple", wantErr: ErrInvalidCredentials},
		{name: "an empty password", email: "ada@example.com", password: "", wantErr: ErrInvalidCredentials},
		{name: "an unknown email", email: "nobody@example.com", password: testPassword, wantErr: ErrInvalidCredentials},
		{name: "an unknown email, empty password", email: "nobody@example.com", password: "", wantErr: ErrInvalidCredentials},
		{name: "not an email", email: "nobody", password: testPassword, wantErr: ErrInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.hasher.computed.Load()
			res, err := s.authenticate(t.Context(), &identityv1.AuthenticateUserRequest{TenantId: tenant, Email: tt.email, Password: tt.password})
			assert.Equal(t, uint64(1), s.hasher.computed.Load()-before, "exactly one hash")
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Equal(t, "invalid email or password", err.Error())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, u.GetId(), res.GetUserId())
		})
	}
}

func TestDummyHashUsesTheConfiguredParameters(t *testing.T) {
	t.Parallel()
	h, err := newHasher(PasswordParams{Memory: 2048, Iterations: 3, Parallelism: 2}, 1)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(h.dummy, "$argon2id$v=19$m=2048,t=3,p=2$"), h.dummy)
	assert.False(t, h.needsUpgrade(h.dummy))
	ok, err := verifyPassword(h.dummy, "")
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestAuthenticateUpgradesAWeakerHash(t *testing.T) {
	t.Parallel()
	d := newTestDeps(t)
	weak := newTestService(t, d, Config{Password: cheap})
	tenant := uuid.NewString()
	u := weak.mustRegister(t, tenant, "ada@example.com")
	require.True(t, strings.HasPrefix(storedHash(t, d.Pool, u.GetId()), "$argon2id$v=19$m=1024,t=1,p=1$"))

	strong := newTestService(t, d, Config{Password: PasswordParams{Memory: 2048, Iterations: 2}})
	_, err := strong.authenticate(t.Context(), &identityv1.AuthenticateUserRequest{TenantId: tenant, Email: "ada@example.com", Password: "wrong horse battery staple"})
	require.ErrorIs(t, err, ErrInvalidCredentials)
	assert.True(t, strings.HasPrefix(storedHash(t, d.Pool, u.GetId()), "$argon2id$v=19$m=1024,t=1,p=1$"), "a failed login changes nothing")

	before := strong.hasher.computed.Load()
	_, err = strong.authenticate(t.Context(), &identityv1.AuthenticateUserRequest{TenantId: tenant, Email: "ada@example.com", Password: testPassword})
	require.NoError(t, err)
	assert.Equal(t, uint64(2), strong.hasher.computed.Load()-before, "verify, then re-hash")
	upgraded := storedHash(t, d.Pool, u.GetId())
	assert.True(t, strings.HasPrefix(upgraded, "$argon2id$v=19$m=2048,t=2,p=1$"), upgraded)

	before = strong.hasher.computed.Load()
	_, err = strong.authenticate(t.Context(), &identityv1.AuthenticateUserRequest{TenantId: tenant, Email: "ada@example.com", Password: testPassword})
	require.NoError(t, err, "the new hash verifies")
	assert.Equal(t, uint64(1), strong.hasher.computed.Load()-before, "no second upgrade")
	assert.Equal(t, upgraded, storedHash(t, d.Pool, u.GetId()))

	_, err = weak.authenticate(t.Context(), &identityv1.AuthenticateUserRequest{TenantId: tenant, Email: "ada@example.com", Password: testPassword})
	require.NoError(t, err)
	assert.Equal(t, upgraded, storedHash(t, d.Pool, u.GetId()), "a stronger hash is never downgraded")
}

func TestImportedBcryptHashIsRehashedOnLogin(t *testing.T) {
	t.Parallel()
	d := newTestDeps(t)
	s := newTestService(t, d, Config{Password: cheap})
	tenant := uuid.NewString()
	bc, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	require.NoError(t, err)
	u, _, err := s.importUser(t.Context(), &identityv1.ImportUserRequest{TenantId: tenant, Email: "Ada@Example.com", BcryptHash: string(bc)})
	require.NoError(t, err)
	assert.Equal(t, string(bc), storedHash(t, d.Pool, u.GetId()), "the bcrypt hash is kept as is")

	_, err = s.authenticate(t.Context(), &identityv1.AuthenticateUserRequest{TenantId: tenant, Email: "ada@example.com", Password: "wrong horse battery staple"})
	require.ErrorIs(t, err, ErrInvalidCredentials)
	assert.Equal(t, string(bc), storedHash(t, d.Pool, u.GetId()))

	res, err := s.authenticate(t.Context(), &identityv1.AuthenticateUserRequest{TenantId: tenant, Email: "ada@example.com", Password: testPassword})
	require.NoError(t, err)
	assert.Equal(t, u.GetId(), res.GetUserId())
	rehashed := storedHash(t, d.Pool, u.GetId())
	assert.True(t, strings.HasPrefix(rehashed, "$argon2id$v=19$m=1024,t=1,p=1$"), rehashed)

	_, err = s.authenticate(t.Context(), &identityv1.AuthenticateUserRequest{TenantId: tenant, Email: "ada@example.com", Password: testPassword})
	require.NoError(t, err, "the argon2id hash verifies")

	_, _, err = s.importUser(t.Context(), &identityv1.ImportUserRequest{TenantId: tenant, Email: "grace@example.com", BcryptHash: "$2b$10$" + strings.Repeat("x", 52)})
	require.Error(t, err, "a malformed hash is refused")
}

// projectTenant applies a tenant event to identity's tenants table with
// the projector's handler, as its consumer would from the TENANT stream:
// tenant.tenant.created at version 1, tenant.tenant.updated after.
func (s *Service) projectTenant(t *testing.T, tenant string, version int64, status tenantv1.TenantStatus) {
	t.Helper()
	var payload proto.Message = &tenantv1.TenantCreated{TenantId: tenant, Slug: "acme", DisplayName: "Acme", Status: status}
	name := "created"
	if version > 1 {
		payload, name = &tenantv1.TenantUpdated{TenantId: tenant, DisplayName: "Acme", Status: status}, "updated"
	}
	data, err := proto.Marshal(payload)
	require.NoError(t, err)
	ev := events.Event{
		ID: uuid.New(), Service: "tenant", AggregateType: "tenant", AggregateID: tenant, Name: name,
		TenantID: tenant, Version: version, Time: time.Now().UTC(),
		MessageName: payload.ProtoReflect().Descriptor().FullName(), Data: data,
	}
	apply := s.tenantsProjector().Handlers[ev.Subject()]
	require.NotNil(t, apply, ev.Subject())
	require.NoError(t, pgx.BeginFunc(t.Context(), s.deps.Pool, func(tx pgx.Tx) error { return apply(t.Context(), tx, ev) }))
}

func TestAuthenticateInAnInactiveTenantRunsOneHash(t *testing.T) {
	t.Parallel()
	s := newTestService(t, newTestDeps(t), Config{Password: cheap})
	tenant := uuid.NewString()
	u := s.mustRegister(t, tenant, "ada@example.com") // below the API's tenant check
	login := func(t *testing.T) (*identityv1.AuthenticateUserResponse, error) {
		t.Helper()
		before := s.hasher.computed.Load()
		res, err := s.authenticateInTenant(t.Context(), &identityv1.AuthenticateUserRequest{TenantId: tenant, Email: "ada@example.com", Password: testPassword})
		assert.Equal(t, uint64(1), s.hasher.computed.Load()-before, "exactly one hash")
		return res, err
	}

	_, err := login(t)
	require.ErrorIs(t, err, ErrInvalidCredentials, "an unknown tenant")
	assert.Equal(t, "invalid email or password", err.Error())
	assert.ErrorIs(t, s.requireActiveTenant(t.Context(), tenant), ErrTenantNotFound)

	s.projectTenant(t, tenant, 1, tenantv1.TenantStatus_TENANT_STATUS_ACTIVE)
	res, err := login(t)
	require.NoError(t, err, "an active tenant")
	assert.Equal(t, u.GetId(), res.GetUserId())
	assert.NoError(t, s.requireActiveTenant(t.Context(), tenant))

	s.projectTenant(t, tenant, 2, tenantv1.TenantStatus_TENANT_STATUS_SUSPENDED)
	_, err = login(t)
	require.ErrorIs(t, err, ErrInvalidCredentials, "a suspended tenant")
	assert.Equal(t, "invalid email or password", err.Error())
	assert.ErrorIs(t, s.requireActiveTenant(t.Context(), tenant), ErrTenantNotFound)

	s.projectTenant(t, tenant, 2, tenantv1.TenantStatus_TENANT_STATUS_ACTIVE)
	assert.ErrorIs(t, s.requireActiveTenant(t.Context(), tenant), ErrTenantNotFound, "a replayed version changes nothing")
}
