package billing

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"

	"github.com/google/uuid"

	"github.com/authms/authms/services/internal/platform"
)

// Names of the service's keys in platform.Secrets.
const (
	keyEmailEncryption = "email-encryption"
	keyEmailBlindIndex = "email-blind-index"
)

// sealedV1 is the first byte of a sealed email: format 1 is
// 0x01 | 12-byte random nonce | AES-256-GCM ciphertext and tag. The byte
// leaves room for another format or key without guessing.
const sealedV1 byte = 1

// emailCodec seals emails for storage and computes their blind index.
type emailCodec struct {
	secrets platform.Secrets
}

// sealer seals emails and computes blind indexes with keys read once; a
// rebuild seals a million rows with one. It reuses its HMAC and a scratch
// buffer, so it is not safe for concurrent use.
type sealer struct {
	aead cipher.AEAD
	mac  hash.Hash // HMAC-SHA256 with the blind index key
	buf  []byte
}

// sealer reads the service's keys.
func (c emailCodec) sealer(ctx context.Context) (*sealer, error) {
	aead, err := c.aead(ctx)
	if err != nil {
		return nil, err
	}
	key, err := c.key(ctx, keyEmailBlindIndex)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead, mac: hmac.New(sha256.New, key)}, nil
}

// seal encrypts email for the user's row. The tenant and user are the
// additional data, so a ciphertext copied to another row does not open.
func (s *sealer) seal(tenantID, userID uuid.UUID, email string) ([]byte, error) {
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(email)+s.aead.Overhead())
	out[0] = sealedV1
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("email nonce: %w", err)
	}
	ad := appendAdditionalData(s.buf[:0], tenantID, userID)
	s.buf = append(ad, email...)
	return s.aead.Seal(out, out[1:], s.buf[len(ad):], ad), nil
}

// blindIndex is the keyed hash that finds an email by exact match:
// HMAC-SHA256 over "<tenant_id>|<normalised email>", so equal addresses in
// different tenants do not share a hash.
func (s *sealer) blindIndex(tenantID uuid.UUID, email string) []byte {
	s.buf = append(appendUUID(s.buf[:0], tenantID), '|')
	s.buf = append(s.buf, normalizeEmail(email)...)
	s.mac.Reset()
	s.mac.Write(s.buf)
	return s.mac.Sum(nil)
}

// open decrypts what seal returned for the same tenant and user.
func (c emailCodec) open(ctx context.Context, tenantID, userID uuid.UUID, sealed []byte) (string, error) {
	aead, err := c.aead(ctx)
	if err != nil {
		return "", err
	}
	if len(sealed) < 1+aead.NonceSize()+aead.Overhead() || sealed[0] != sealedV1 {
		return "", errors.New("open email: not a sealed email")
	}
	nonce, ct := sealed[1:1+aead.NonceSize()], sealed[1+aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, ct, additionalData(tenantID, userID))
	if err != nil {
		return "", fmt.Errorf("open email of user %s: %w", userID, err)
	}
	return string(plain), nil
}

// blindIndex computes the blind index of email in the tenant (see sealer).
func (c emailCodec) blindIndex(ctx context.Context, tenantID uuid.UUID, email string) ([]byte, error) {
	key, err := c.key(ctx, keyEmailBlindIndex)
	if err != nil {
		return nil, err
	}
	s := sealer{mac: hmac.New(sha256.New, key)}
	return s.blindIndex(tenantID, email), nil
}

func (c emailCodec) aead(ctx context.Context) (cipher.AEAD, error) {
	key, err := c.key(ctx, keyEmailEncryption)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("email cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("email cipher: %w", err)
	}
	return aead, nil
}

func (c emailCodec) key(ctx context.Context, name string) ([]byte, error) {
	key, err := c.secrets.Key(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", name, err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("key %s: %d bytes, want 32", name, len(key))
	}
	return key, nil
}

// normalizeEmail is the form the blind index hashes: trimmed and lower-cased.
func normalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

func additionalData(tenantID, userID uuid.UUID) []byte {
	return appendAdditionalData(nil, tenantID, userID)
}

// appendAdditionalData appends "<tenant_id>|<user_id>".
func appendAdditionalData(dst []byte, tenantID, userID uuid.UUID) []byte {
	return appendUUID(append(appendUUID(dst, tenantID), '|'), userID)
}

// appendUUID appends id in its canonical text form, as id.String() spells
// it, without allocating.
func appendUUID(dst []byte, id uuid.UUID) []byte {
	dst = hex.AppendEncode(dst, id[0:4])
	for _, part := range [][2]int{{4, 6}, {6, 8}, {8, 10}, {10, 16}} {
		dst = hex.AppendEncode(append(dst, '-'), id[part[0]:part[1]])
	}
	return dst
}
