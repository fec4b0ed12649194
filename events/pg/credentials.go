package pg

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// DefaultPrefix is the prefix of every database and role name when
// [Naming].Prefix is empty.
const DefaultPrefix = "authms"

// maxIdentifierLen is PostgreSQL's NAMEDATALEN-1: longer names are truncated
// silently by the server, which would make two services collide.
const maxIdentifierLen = 63

var (
	servicePattern = regexp.MustCompile(`^[a-z][a-z0-9]*$`)
	prefixPattern  = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// Naming maps a service to its database and role. Prefix defaults to
// [DefaultPrefix]; tests use a unique prefix per test (see package pgtest).
type Naming struct {
	// Prefix is prepended to every database and role name, separated by "_".
	Prefix string
}

func (n Naming) prefix() string {
	if n.Prefix == "" {
		return DefaultPrefix
	}
	return n.Prefix
}

// Database returns the name of the service's database, "<prefix>_<service>".
func (n Naming) Database(service string) string {
	return n.prefix() + "_" + service
}

// Role returns the name of the service's LOGIN role, which equals its database
// name.
func (n Naming) Role(service string) string {
	return n.Database(service)
}

// Validate reports whether service (and the prefix) make a usable name: service
// is one lowercase word ([a-z][a-z0-9]*), the prefix is lowercase letters, digits
// and underscores, and the whole name fits PostgreSQL's 63-byte identifier limit.
func (n Naming) Validate(service string) error {
	if !prefixPattern.MatchString(n.prefix()) {
		return fmt.Errorf("invalid database prefix %q: want [a-z][a-z0-9_]*", n.prefix())
	}
	if !servicePattern.MatchString(service) {
		return fmt.Errorf("invalid service name %q: want [a-z][a-z0-9]*", service)
	}
	if name := n.Database(service); len(name) > maxIdentifierLen {
		return fmt.Errorf("database name %q is longer than %d bytes", name, maxIdentifierLen)
	}
	return nil
}

// Credentials are what a service process holds to reach its database: only its
// own. Their String and LogValue methods redact the password, so they can be
// logged and printed safely.
type Credentials struct {
	// Host is a host name, an IP address or a Unix socket directory ("/run/postgresql").
	Host string
	// Port is the TCP port, or the socket's port number.
	Port uint16
	// Database is the service's database.
	Database string
	// User is the service's role.
	User string
	// Password is the role's password.
	Password string
	// SSLMode is a libpq sslmode ("disable", "require", "verify-full", ...);
	// empty leaves it to pgx's default and the PGSSLMODE environment variable.
	SSLMode string
}

// ConnString returns the credentials as a postgres:// URL with the user and
// password escaped, suitable for pgx.ParseConfig, psql or DATABASE_URL. It
// contains the password: never log it (log the Credentials value instead).
func (c Credentials) ConnString() string {
	return c.url(url.UserPassword(c.User, c.Password))
}

// String returns the connection URL with the password replaced by "xxxxx".
func (c Credentials) String() string {
	if c.Password == "" {
		return c.url(url.User(c.User))
	}
	return c.url(url.UserPassword(c.User, "xxxxx"))
}

// LogValue implements slog.LogValuer: the password is never logged.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("host", c.Host),
		slog.Int("port", int(c.Port)),
		slog.String("database", c.Database),
		slog.String("user", c.User),
	)
}

// connStringWithoutPassword is what [Open] parses, so that a parse or connect
// error can never echo the password.
func (c Credentials) connStringWithoutPassword() string {
	return c.url(url.User(c.User))
}

func (c Credentials) url(user *url.Userinfo) string {
	u := url.URL{Scheme: "postgres", User: user, Path: "/" + c.Database}
	q := url.Values{}
	port := ""
	if c.Port != 0 {
		port = strconv.Itoa(int(c.Port))
	}
	switch {
	case strings.HasPrefix(c.Host, "/"):
		// A Unix socket directory cannot be a URL host.
		q.Set("host", c.Host)
		if port != "" {
			q.Set("port", port)
		}
	case port != "":
		u.Host = net.JoinHostPort(c.Host, port)
	default:
		u.Host = c.Host
		if strings.Contains(c.Host, ":") {
			u.Host = "[" + c.Host + "]"
		}
	}
	if c.SSLMode != "" {
		q.Set("sslmode", c.SSLMode)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

var keywordSSLMode = regexp.MustCompile(`(?:^|\s)sslmode\s*=\s*'?([a-z-]+)`)

// sslModeOf extracts the sslmode setting of a URL or keyword/value connection
// string; "" when it is not set there.
func sslModeOf(connString string) string {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			return ""
		}
		return u.Query().Get("sslmode")
	}
	if m := keywordSSLMode.FindStringSubmatch(connString); m != nil {
		return m[1]
	}
	return ""
}
