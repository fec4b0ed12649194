package session

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authms/authms/events/pg"
	"github.com/authms/authms/services/internal/platform"
	"github.com/authms/authms/services/session/store"
)

// JWKSPath is where the service publishes its signing keys.
const JWKSPath = "/.well-known/jwks.json"

// keySigningKeyEncryption names the service's key that seals the signing
// keys' private halves in the database.
const keySigningKeyEncryption = "signing-key-encryption"

// keyRetention is how long a key stays published after it stopped signing:
// the longest token it may have signed lives maxAccessTokenTTL, and
// verifiers allow a little clock skew.
const keyRetention = maxAccessTokenTTL + time.Minute

// signingKey is one Ed25519 key of the ring.
type signingKey struct {
	kid         string
	public      ed25519.PublicKey
	private     ed25519.PrivateKey // nil when loaded for publication only
	activatesAt time.Time
	retiresAt   time.Time // zero while no successor is scheduled
}

// keyring holds the signing keys every instance shares through the
// database: it rotates them (one instance at a time, under an advisory
// lock) and keeps the ones that sign in memory.
type keyring struct {
	pool    *pgxpool.Pool
	secrets platform.Secrets
	cfg     Config
	logger  *slog.Logger

	mu       sync.Mutex
	keys     []signingKey // in activation order
	loadedAt time.Time

	aeadMu sync.Mutex
	aead   cipher.AEAD
}

func newKeyring(pool *pgxpool.Pool, secrets platform.Secrets, cfg Config, logger *slog.Logger) *keyring {
	return &keyring{pool: pool, secrets: secrets, cfg: cfg, logger: logger}
}

func (k *keyring) now() time.Time { return k.cfg.Now().UTC().Truncate(time.Microsecond) }

// current returns the key that signs now.
func (k *keyring) current(ctx context.Context) (signingKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if err := k.refreshLocked(ctx, now); err != nil {
		return signingKey{}, err
	}
	key, _ := activeAt(k.keys, now)
	return key, nil
}

// refreshLocked makes sure the ring in memory is usable at now: loaded less
// than Config.KeyCheckInterval ago and holding a key that signs. It
// reloads the ring otherwise, and creates the first key when there is
// none (the service's first start: Run has not run). k.mu is held.
func (k *keyring) refreshLocked(ctx context.Context, now time.Time) error {
	if _, ok := activeAt(k.keys, now); ok && now.Sub(k.loadedAt) < k.cfg.KeyCheckInterval && !now.Before(k.loadedAt) {
		return nil
	}
	if err := k.loadLocked(ctx); err != nil {
		return err
	}
	if _, ok := activeAt(k.keys, now); ok {
		return nil
	}
	if err := k.rotate(ctx); err != nil {
		return err
	}
	if err := k.loadLocked(ctx); err != nil {
		return err
	}
	if _, ok := activeAt(k.keys, now); ok {
		return nil
	}
	return errors.New("no signing key is active")
}

// activeAt returns the key that signs at t: the last one activated.
func activeAt(keys []signingKey, t time.Time) (signingKey, bool) {
	for i := len(keys) - 1; i >= 0; i-- {
		if !keys[i].activatesAt.After(t) {
			return keys[i], true
		}
	}
	return signingKey{}, false
}

// maintain rotates and removes keys that are due, then reloads the ring.
func (k *keyring) maintain(ctx context.Context) error {
	if err := k.rotate(ctx); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.loadLocked(ctx)
}

// rotate decides, under the advisory lock every instance takes, whether a
// key is due: the first key signs at once; a successor is created
// Config.JWKSMaxAge before the newest key has signed for
// Config.KeyRotation, and activates JWKSMaxAge later, so verifiers that
// cached the JWKS just before see it before it signs. Keys retired more
// than keyRetention ago are deleted.
func (k *keyring) rotate(ctx context.Context) error {
	return pg.InTx(ctx, k.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		if err := q.LockSigningKeys(ctx); err != nil {
			return fmt.Errorf("lock signing keys: %w", err)
		}
		now := k.now()
		rows, err := q.ListSigningKeys(ctx)
		if err != nil {
			return fmt.Errorf("list signing keys: %w", err)
		}
		switch {
		case len(rows) == 0:
			if err := k.create(ctx, q, now, now); err != nil {
				return err
			}
		case !now.Before(rows[len(rows)-1].ActivatesAt.Add(k.cfg.KeyRotation - k.cfg.JWKSMaxAge)):
			if err := k.create(ctx, q, now, now.Add(k.cfg.JWKSMaxAge)); err != nil {
				return err
			}
		}
		n, err := q.DeleteSigningKeysRetiredBefore(ctx, now.Add(-keyRetention))
		if err != nil {
			return fmt.Errorf("delete retired signing keys: %w", err)
		}
		if n > 0 {
			k.logger.InfoContext(ctx, "retired signing keys removed", "keys", n)
		}
		return nil
	})
}

// create adds a key that activates at activatesAt and retires the keys
// before it then.
func (k *keyring) create(ctx context.Context, q *store.Queries, now, activatesAt time.Time) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate signing key: %w", err)
	}
	sum := sha256.Sum256(pub)
	kid := base64.RawURLEncoding.EncodeToString(sum[:12])
	aead, err := k.cipher(ctx)
	if err != nil {
		return err
	}
	sealed := seal(aead, priv.Seed(), []byte(kid))
	if err := q.InsertSigningKey(ctx, store.InsertSigningKeyParams{
		Kid: kid, PublicKey: pub, PrivateKey: sealed, CreatedAt: now, ActivatesAt: activatesAt,
	}); err != nil {
		return fmt.Errorf("insert signing key %s: %w", kid, err)
	}
	if err := q.RetireSigningKeys(ctx, activatesAt); err != nil {
		return fmt.Errorf("retire signing keys: %w", err)
	}
	k.logger.InfoContext(ctx, "signing key created", "kid", kid, "activates_at", activatesAt)
	return nil
}

// loadLocked reads every key and unseals the private halves; k.mu is held.
func (k *keyring) loadLocked(ctx context.Context) error {
	rows, err := store.New(k.pool).ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("list signing keys: %w", err)
	}
	aead, err := k.cipher(ctx)
	if err != nil {
		return err
	}
	keys := make([]signingKey, 0, len(rows))
	for _, r := range rows {
		seed, err := open(aead, r.PrivateKey, []byte(r.Kid))
		if err != nil {
			return fmt.Errorf("unseal signing key %s: %w", r.Kid, err)
		}
		if len(seed) != ed25519.SeedSize {
			return fmt.Errorf("unseal signing key %s: seed of %d bytes", r.Kid, len(seed))
		}
		keys = append(keys, signingKey{
			kid: r.Kid, public: ed25519.PublicKey(r.PublicKey), private: ed25519.NewKeyFromSeed(seed),
			activatesAt: r.ActivatesAt, retiresAt: r.RetiresAt.Time,
		})
	}
	k.keys, k.loadedAt = keys, k.now()
	return nil
}

// cipher returns the AES-256-GCM cipher of the signing-key-encryption key.
func (k *keyring) cipher(ctx context.Context) (cipher.AEAD, error) {
	k.aeadMu.Lock()
	defer k.aeadMu.Unlock()
	if k.aead != nil {
		return k.aead, nil
	}
	key, err := k.secrets.Key(ctx, keySigningKeyEncryption)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", keySigningKeyEncryption, err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", keySigningKeyEncryption, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", keySigningKeyEncryption, err)
	}
	k.aead = aead
	return aead, nil
}

// seal encrypts plain with a random nonce: nonce || ciphertext.
func seal(aead cipher.AEAD, plain, additional []byte) []byte {
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails
	return aead.Seal(nonce, nonce, plain, additional)
}

func open(aead cipher.AEAD, sealed, additional []byte) ([]byte, error) {
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("sealed value too short")
	}
	return aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], additional)
}

// JWK is one key of the JWKS (RFC 8037: an Ed25519 public key).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

// JWKS is the document served at JWKSPath.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// published returns the keys that may verify a live token at now, every
// key created (including the next one, not yet signing) and not retired
// more than keyRetention ago, and how long a verifier may cache them.
//
// It reads the ring in memory, not the database: the ring is reloaded
// after every rotation this instance makes and at least every
// Config.KeyCheckInterval, so a key another instance created at T is
// served from T+KeyCheckInterval at the latest. That delay is taken off
// the max-age: keys loaded at L are cached for JWKSMaxAge-(now-L), so
// every copy of a JWKS that lacks the key expires by L+JWKSMaxAge, before
// the key signs at T+JWKSMaxAge (L < T, or the load would have found it).
func (k *keyring) published(ctx context.Context) (JWKS, time.Duration, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if err := k.refreshLocked(ctx, now); err != nil {
		return JWKS{}, 0, err
	}
	out := JWKS{Keys: []JWK{}}
	for _, key := range k.keys {
		if !key.retiresAt.IsZero() && !key.retiresAt.Add(keyRetention).After(now) {
			continue
		}
		out.Keys = append(out.Keys, JWK{
			Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(key.public),
			Kid: key.kid, Use: "sig", Alg: "EdDSA",
		})
	}
	return out, max(k.cfg.JWKSMaxAge-now.Sub(k.loadedAt), 0), nil
}

// jwksHandler serves the JWKS from memory (see [keyring.published]) with
// Cache-Control: public, max-age at most JWKSMaxAge. When the ring is due
// for a reload and the database cannot be read, it answers 503 rather
// than keys older than KeyCheckInterval.
func (s *Service) jwksHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set, maxAge, err := s.keys.published(r.Context())
		if err != nil {
			s.deps.Logger.ErrorContext(r.Context(), "serving the JWKS failed", "err", err)
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "signing keys unavailable", http.StatusServiceUnavailable)
			return
		}
		body, err := json.Marshal(set)
		if err != nil {
			http.Error(w, "signing keys unavailable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(maxAge/time.Second)))
		_, _ = w.Write(body)
	})
}
