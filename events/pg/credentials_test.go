package pg_test

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/events/pg"
)

func TestNaming(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "authms_identity", pg.Naming{}.Database("identity"))
	assert.Equal(t, "authms_identity", pg.Naming{}.Role("identity"))
	assert.Equal(t, "authms_t0a1b2c3d_billing", pg.Naming{Prefix: "authms_t0a1b2c3d"}.Database("billing"))

	assert.NoError(t, pg.Naming{}.Validate("identity"))
	assert.Error(t, pg.Naming{}.Validate("Identity"))
	assert.Error(t, pg.Naming{}.Validate(""))
	assert.Error(t, pg.Naming{}.Validate("user_profiles"))
	assert.Error(t, pg.Naming{Prefix: "Bad-Prefix"}.Validate("identity"))
}

func TestCredentialsConnString(t *testing.T) {
	t.Parallel()
	const password = `p@ss:w/o'rd\ %20&?#`
	tests := []struct {
		name     string
		creds    pg.Credentials
		wantHost string
	}{
		{name: "tcp", creds: pg.Credentials{Host: "127.0.0.1", Port: 5432, Database: "authms_identity", User: "authms_identity", Password: password, SSLMode: "disable"}, wantHost: "127.0.0.1"},
		{name: "ipv6", creds: pg.Credentials{Host: "::1", Port: 6432, Database: "authms_billing", User: "authms_billing", Password: password, SSLMode: "disable"}, wantHost: "::1"},
		{name: "unix socket", creds: pg.Credentials{Host: "/var/run/postgresql", Port: 5432, Database: "authms_mfa", User: "authms_mfa", Password: password, SSLMode: "disable"}, wantHost: "/var/run/postgresql"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := pgx.ParseConfig(tt.creds.ConnString())
			require.NoError(t, err)
			assert.Equal(t, tt.wantHost, cfg.Host)
			assert.Equal(t, tt.creds.Port, cfg.Port)
			assert.Equal(t, tt.creds.Database, cfg.Database)
			assert.Equal(t, tt.creds.User, cfg.User)
			assert.Equal(t, password, cfg.Password)
			assert.Nil(t, cfg.TLSConfig, "sslmode=disable")

			assert.NotContains(t, tt.creds.String(), "o'rd")
			var buf bytes.Buffer
			slog.New(slog.NewTextHandler(&buf, nil)).Info("open", "db", tt.creds)
			assert.NotContains(t, buf.String(), "o'rd")
			assert.Contains(t, buf.String(), tt.creds.Database)
		})
	}
}
