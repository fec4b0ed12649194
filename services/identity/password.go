package identity

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/authms/authms/services/internal/rpc"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// PasswordParams are the argon2id parameters of new password hashes. The
// defaults are OWASP's recommendation for argon2id (19 MiB, 2 passes, 1
// lane). Existing hashes keep the parameters they were made with: they are
// part of the stored PHC string.
type PasswordParams struct {
	// Memory is in KiB (default 19456, 19 MiB).
	Memory uint32
	// Iterations is the number of passes (default 2).
	Iterations uint32
	// Parallelism is the number of lanes (default 1).
	Parallelism uint8
	// SaltLength is in bytes (default 16).
	SaltLength uint32
	// KeyLength is in bytes (default 32).
	KeyLength uint32
}

func (p PasswordParams) withDefaults() PasswordParams {
	if p.Memory == 0 {
		p.Memory = 19 * 1024
	}
	if p.Iterations == 0 {
		p.Iterations = 2
	}
	if p.Parallelism == 0 {
		p.Parallelism = 1
	}
	if p.SaltLength == 0 {
		p.SaltLength = 16
	}
	if p.KeyLength == 0 {
		p.KeyLength = 32
	}
	return p
}

// Validate reports parameters argon2id cannot use or that are too weak to
// mean anything.
func (p PasswordParams) Validate() error {
	p = p.withDefaults()
	var errs []error
	if p.Memory < 8*uint32(p.Parallelism) {
		errs = append(errs, fmt.Errorf("argon2id memory %d KiB is below 8 KiB per lane", p.Memory))
	}
	if p.SaltLength < 8 {
		errs = append(errs, fmt.Errorf("salt length %d is below 8 bytes", p.SaltLength))
	}
	if p.KeyLength < 16 {
		errs = append(errs, fmt.Errorf("key length %d is below 16 bytes", p.KeyLength))
	}
	return errors.Join(errs...)
}

// phcEncoding is the PHC string format's base64: standard alphabet, no padding.
var phcEncoding = base64.RawStdEncoding

// hasher hashes and verifies passwords, at most cap(slots) at a time.
type hasher struct {
	params PasswordParams
	slots  chan struct{}
	// dummy is an argon2id PHC string at params that no password matches
	// (its key is random bytes, not a hash): verifying against it costs
	// what verifying a real hash costs, for callers that have no hash.
	dummy string
	// computed counts the hashes computed (new and verified), so tests can
	// see that a call did the work it claims.
	computed atomic.Uint64
}

func newHasher(p PasswordParams, concurrency int) (*hasher, error) {
	p = p.withDefaults()
	salt, key := make([]byte, p.SaltLength), make([]byte, p.KeyLength)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("dummy password salt: %w", err)
	}
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("dummy password key: %w", err)
	}
	return &hasher{params: p, slots: make(chan struct{}, concurrency), dummy: formatPHC(p, salt, key)}, nil
}

// acquire waits for a hashing slot; release it when done.
func (h *hasher) acquire(ctx context.Context) (release func(), err error) {
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait to hash a password: %w", ctx.Err())
	}
	h.computed.Add(1)
	return func() { <-h.slots }, nil
}

// hash returns the PHC string of password with a fresh random salt:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>.
func (h *hasher) hash(ctx context.Context, password string) (string, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	p := h.params
	salt := make([]byte, p.SaltLength)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLength)
	return formatPHC(p, salt, key), nil
}

// verify reports whether password matches the stored hash phc.
func (h *hasher) verify(ctx context.Context, phc, password string) (bool, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	return verifyPassword(phc, password)
}

// verifyDummy does the work of verifying password against a hash made
// with the configured parameters, and fails.
func (h *hasher) verifyDummy(ctx context.Context, password string) error {
	_, err := h.verify(ctx, h.dummy, password)
	return err
}

// needsUpgrade reports whether phc is weaker than the configured
// parameters: less memory, fewer passes or lanes, a shorter key, or not
// argon2id at all.
func (h *hasher) needsUpgrade(phc string) bool {
	p, _, key, err := parsePHC(phc)
	if err != nil {
		return true
	}
	return p.Memory < h.params.Memory || p.Iterations < h.params.Iterations ||
		p.Parallelism < h.params.Parallelism || uint32(len(key)) < h.params.KeyLength
}

// isBcrypt reports whether hash is in bcrypt's modular crypt format.
func isBcrypt(hash string) bool {
	return strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$")
}

func formatPHC(p PasswordParams, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Iterations, p.Parallelism,
		phcEncoding.EncodeToString(salt), phcEncoding.EncodeToString(key))
}

// parsePHC splits an argon2id PHC string into its parameters, salt and key.
func parsePHC(phc string) (p PasswordParams, salt, key []byte, err error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errors.New("password hash is not an argon2id PHC string")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, fmt.Errorf("unsupported argon2id version %q", parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Iterations, &p.Parallelism); err != nil {
		return p, nil, nil, fmt.Errorf("bad argon2id parameters %q: %w", parts[3], err)
	}
	if salt, err = phcEncoding.DecodeString(parts[4]); err != nil {
		return p, nil, nil, fmt.Errorf("bad argon2id salt: %w", err)
	}
	if key, err = phcEncoding.DecodeString(parts[5]); err != nil || len(key) == 0 {
		return p, nil, nil, errors.New("bad argon2id hash")
	}
	return p, salt, key, nil
}

// verifyPassword reports whether password matches phc: an argon2id PHC
// string, using the parameters recorded in it, or a bcrypt hash of an
// imported user.
func verifyPassword(phc, password string) (bool, error) {
	if isBcrypt(phc) {
		err := bcrypt.CompareHashAndPassword([]byte(phc), []byte(password))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		return err == nil, err
	}
	p, salt, want, err := parsePHC(phc)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// commonPasswordList is a small list of passwords of 12 or more characters
// that appear near the top of breach corpora, one per line, lower case.
//
//go:embed common_passwords.txt
var commonPasswordList string

// commonPasswords is commonPasswordList as a set.
var commonPasswords = func() map[string]bool {
	set := make(map[string]bool)
	sc := bufio.NewScanner(strings.NewReader(commonPasswordList))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			set[line] = true
		}
	}
	return set
}()

// minLocalPartLength is the shortest email local part checked against the
// password: a one- or two-letter local part ("jo@...") would refuse most
// passwords while protecting nothing.
const minLocalPartLength = 3

// checkPassword applies the password rules the API schema cannot express
// (length is checked declaratively): no common password, and no password
// that contains the local part of the user's email. canonicalEmail is
// lower case.
func checkPassword(password, canonicalEmail string) error {
	lower := strings.ToLower(password)
	if commonPasswords[lower] {
		return &rpc.InvalidFieldError{Field: "password", Rule: "password.common", Message: "is too common; choose another password"}
	}
	local, _, _ := strings.Cut(canonicalEmail, "@")
	if len([]rune(local)) >= minLocalPartLength && strings.Contains(lower, local) {
		return &rpc.InvalidFieldError{Field: "password", Rule: "password.contains_email", Message: "must not contain the email address"}
	}
	return nil
}
