package services_test

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/events/natstest"
	"github.com/authms/authms/events/pg"
	"github.com/authms/authms/events/pg/pgtest"
	"github.com/authms/authms/services"
)

func TestDefinitionsAreUsable(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, d := range services.Definitions() {
		assert.NoError(t, pg.Naming{}.Validate(d.Name), d.Name)
		assert.False(t, seen[d.Name], "%s defined twice", d.Name)
		seen[d.Name] = true
		assert.NotNil(t, d.New, d.Name)
	}
	assert.Equal(t, len(seen), len(services.Names()))
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	err := services.Config{}.Validate()
	require.Error(t, err)
	for _, want := range []string{"DATABASE_URL", "password", "JetStream", "secret"} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestStartRejectsUnknownServices(t *testing.T) {
	t.Parallel()
	nats := natstest.Start(t)
	cfg := services.Config{
		AdminURL:  "postgres://nowhere.invalid/postgres",
		Passwords: func(string) (string, error) { return "pw", nil },
		JS:        nats.JetStream(t),
		Secrets:   services.DevSecrets(t.TempDir()),
	}
	_, err := services.Start(t.Context(), cfg, "identity", "nosuch", "identity")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown service "nosuch"`)
	assert.Contains(t, err.Error(), `service "identity" named twice`)
}

func TestStartNamesEveryFailingService(t *testing.T) {
	t.Parallel()
	cluster := pgtest.New(t)
	nats := natstest.Start(t)
	_, err := services.Start(t.Context(), services.Config{
		AdminURL: pgtest.AdminURL(t),
		Naming:   cluster.Naming(),
		JS:       nats.JetStream(t),
		Secrets:  services.DevSecrets(t.TempDir()),
		Passwords: func(svc string) (string, error) {
			if svc == "wallet" || svc == "profile" {
				return "", errors.New("vault sealed")
			}
			return "pw-" + svc, nil
		},
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "start wallet: password: vault sealed")
	assert.Contains(t, err.Error(), "start profile: password: vault sealed")
	assert.NotContains(t, err.Error(), "start identity")
}

func TestMigrateProvisionsIsolatedDatabases(t *testing.T) {
	t.Parallel()
	cluster := pgtest.New(t)
	cfg := services.Config{
		AdminURL:  pgtest.AdminURL(t),
		Naming:    cluster.Naming(),
		Passwords: func(svc string) (string, error) { return "pw-" + svc + "-secret", nil },
	}
	infos, err := services.Migrate(t.Context(), cfg, "identity", "billing")
	require.NoError(t, err)
	require.Len(t, infos, 2)
	assert.Equal(t, "identity", infos[0].Name)
	assert.Equal(t, "IDENTITY", infos[0].Stream)
	assert.NotContains(t, infos[0].Database.String(), "secret", "printable credentials are redacted")

	// Migrating again is a no-op.
	_, err = services.Migrate(t.Context(), cfg, "identity", "billing")
	require.NoError(t, err)

	// identity's role reaches its own database, with the event store, and
	// not billing's.
	conn, err := pgx.Connect(t.Context(), infos[0].Database.ConnString())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(t.Context()) })
	var n int
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM schema_migrations WHERE source = 'events'").Scan(&n))
	assert.Positive(t, n)

	other := infos[0].Database
	other.Database = infos[1].Database.Database
	_, err = pgx.Connect(t.Context(), other.ConnString())
	require.Error(t, err, "identity's role cannot open billing's database")
}
