// Package secrets hands every service its own 32-byte secret keys (for
// encryption, blind indexes, token signing), by name. Three stores share one
// shape, [Store]:
//
//   - [Files] for development: a key is generated on first use and kept in
//     <dataDir>/secrets/<service>.<name>.key (mode 0600), so it survives
//     restarts of `authms dev`;
//   - [Memory] for tests: random keys that live as long as the process;
//   - [Env] for production: keys come from AUTHMS_<SERVICE>_<NAME>_KEY
//     (standard base64 of 32 bytes) and a missing or malformed key is an
//     error, never a generated one, so a misconfigured process fails closed.
//
// Key names are lowercase words joined by dashes ("email-encryption").
package secrets

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/authms/authms/services/internal/platform"
)

// KeySize is the length of every key in bytes.
const KeySize = 32

var (
	servicePattern = regexp.MustCompile(`^[a-z][a-z0-9]*$`)
	namePattern    = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)
)

// Store gives each service its own keys: the same (service, name) gives the
// same key, and two services never share one.
type Store interface {
	// Service returns the keys of one service.
	Service(service string) platform.Secrets
}

// validate reports a service or key name that cannot become a file or an
// environment variable name unambiguously.
func validate(service, name string) error {
	if !servicePattern.MatchString(service) {
		return fmt.Errorf("secret key: invalid service name %q: want [a-z][a-z0-9]*", service)
	}
	if !namePattern.MatchString(name) {
		return fmt.Errorf("secret key %s/%s: invalid name: want lowercase words joined by dashes", service, name)
	}
	return nil
}

// serviceKeys adapts a store's lookup to platform.Secrets for one service.
type serviceKeys struct {
	service string
	key     func(ctx context.Context, service, name string) ([]byte, error)
}

func (s serviceKeys) Key(ctx context.Context, name string) ([]byte, error) {
	if err := validate(s.service, name); err != nil {
		return nil, err
	}
	k, err := s.key(ctx, s.service, name)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), k...), nil // callers may not change the cached key
}

// Memory holds random keys in memory, for tests.
type Memory struct {
	mu   sync.Mutex
	keys map[string][]byte
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{keys: map[string][]byte{}} }

// Service returns the keys of service.
func (m *Memory) Service(service string) platform.Secrets {
	return serviceKeys{service: service, key: m.key}
}

func (m *Memory) key(_ context.Context, service, name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := service + "." + name
	if k, ok := m.keys[id]; ok {
		return k, nil
	}
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("secret key %s/%s: %w", service, name, err)
	}
	m.keys[id] = k
	return k, nil
}

// Files keeps development keys in files under <dataDir>/secrets. Each file
// holds the key in standard base64 (what [Env] reads), so a development key
// can be moved to a production environment variable as is.
type Files struct {
	dir string

	mu    sync.Mutex
	cache map[string][]byte
}

var _ Store = (*Files)(nil)

// NewFiles returns a store that keeps keys under <dataDir>/secrets.
func NewFiles(dataDir string) *Files {
	return &Files{dir: filepath.Join(dataDir, "secrets"), cache: map[string][]byte{}}
}

// Service returns the keys of service.
func (f *Files) Service(service string) platform.Secrets {
	return serviceKeys{service: service, key: f.key}
}

// Path returns the file that holds the key.
func (f *Files) Path(service, name string) string {
	return filepath.Join(f.dir, service+"."+name+".key")
}

func (f *Files) key(_ context.Context, service, name string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	file := f.Path(service, name)
	if k, ok := f.cache[file]; ok {
		return k, nil
	}
	k, err := readKeyFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		k, err = f.create(file)
	}
	if err != nil {
		return nil, fmt.Errorf("secret key %s/%s: %w", service, name, err)
	}
	f.cache[file] = k
	return k, nil
}

// create writes a new random key to file. A complete temporary file is
// linked into place, so no process ever reads half a key, and when another
// process wins the race its key is the one used.
func (f *Files) create(file string) ([]byte, error) {
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return nil, err
	}
	// MkdirAll leaves an existing directory's mode alone.
	if err := os.Chmod(f.dir, 0o700); err != nil {
		return nil, err
	}
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(f.dir, filepath.Base(file)+".*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(base64.StdEncoding.EncodeToString(k) + "\n"); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), file); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKeyFile(file)
		}
		return nil, err
	}
	return k, nil
}

func readKeyFile(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	k, err := decode(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return k, nil
}

// decode parses a base64 key of exactly KeySize bytes. The error never
// contains the value.
func decode(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("not standard base64")
	}
	if len(k) != KeySize {
		return nil, fmt.Errorf("%d bytes, want %d", len(k), KeySize)
	}
	return k, nil
}

// Env reads production keys from environment variables named by [EnvName].
// It never generates a key.
type Env struct {
	lookup func(string) (string, bool)
}

var _ Store = Env{}

// NewEnv returns a store that reads keys with lookup; nil means os.LookupEnv.
func NewEnv(lookup func(string) (string, bool)) Env {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return Env{lookup: lookup}
}

// Service returns the keys of service.
func (e Env) Service(service string) platform.Secrets {
	return serviceKeys{service: service, key: e.key}
}

func (e Env) key(_ context.Context, service, name string) ([]byte, error) {
	v := EnvName(service, name)
	s, ok := e.lookup(v)
	if !ok || s == "" {
		return nil, fmt.Errorf("secret key %s/%s: %s is not set (want the standard base64 of %d random bytes, e.g. `openssl rand -base64 %d`)",
			service, name, v, KeySize, KeySize)
	}
	k, err := decode(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("secret key %s/%s: %s: %w", service, name, v, err)
	}
	return k, nil
}

// EnvName is the environment variable that holds a production key:
// AUTHMS_IDENTITY_EMAIL_ENCRYPTION_KEY for service "identity" and name
// "email-encryption".
func EnvName(service, name string) string {
	return "AUTHMS_" + strings.ToUpper(service) + "_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_KEY"
}
