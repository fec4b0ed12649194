package pg

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DevPassword returns the development password of service, stored in
// <dataDir>/secrets/<service>.password. On first use it generates 32 random
// bytes (base64url, unpadded), writes them with mode 0600 in a 0700 directory
// and returns them; later calls, also from other processes, return the same
// password. Production passwords come from the environment, not from here.
func DevPassword(dataDir, service string) (string, error) {
	if !servicePattern.MatchString(service) {
		return "", fmt.Errorf("dev password: invalid service name %q", service)
	}
	dir := filepath.Join(dataDir, "secrets")
	file := filepath.Join(dir, service+".password")
	if pw, err := readPassword(file); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return pw, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("dev password for %s: %w", service, err)
	}
	// MkdirAll leaves an existing directory's mode alone.
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", fmt.Errorf("dev password for %s: %w", service, err)
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("dev password for %s: %w", service, err)
	}
	pw := base64.RawURLEncoding.EncodeToString(buf)

	// Write a complete temporary file, then link it into place: the link fails
	// if another process got there first, and nobody ever reads a half-written
	// password.
	tmp, err := os.CreateTemp(dir, service+".password.*")
	if err != nil {
		return "", fmt.Errorf("dev password for %s: %w", service, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(pw + "\n"); err != nil {
		tmp.Close()
		return "", fmt.Errorf("dev password for %s: %w", service, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("dev password for %s: %w", service, err)
	}
	// CreateTemp already uses 0600; be explicit about the contract.
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return "", fmt.Errorf("dev password for %s: %w", service, err)
	}
	if err := os.Link(tmp.Name(), file); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readPassword(file)
		}
		return "", fmt.Errorf("dev password for %s: %w", service, err)
	}
	return pw, nil
}

func readPassword(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read dev password: %w", err)
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" {
		return "", fmt.Errorf("read dev password: %s is empty", file)
	}
	return pw, nil
}
