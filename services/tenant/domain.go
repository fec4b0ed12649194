package tenant

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"

	"github.com/authms/authms/services/internal/rpc"
)

// domainProfile turns a domain as typed into its lookup form: UTS #46
// mapping (lower case, NFC, full-width to ASCII), A-labels, STD3 rules
// (letters, digits, hyphens) and DNS lengths.
var domainProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.Transitional(false),
	idna.StrictDomainName(true),
	idna.VerifyDNSLength(true),
)

// normalizeDomain returns the stored form of a domain: IDNA ASCII, lower
// case, no trailing dot. It refuses single labels, IP addresses and
// all-numeric top-level labels.
func normalizeDomain(field, domain string) (string, error) {
	invalid := func(msg string) error {
		return &rpc.InvalidFieldError{Field: field, Rule: "domain.valid", Message: msg}
	}
	d := strings.TrimSuffix(strings.TrimSpace(domain), ".")
	if _, err := netip.ParseAddr(d); err == nil {
		return "", invalid("is an IP address, not a domain")
	}
	a, err := domainProfile.ToASCII(d)
	if err != nil {
		return "", invalid("is not a valid domain name")
	}
	a = strings.ToLower(a)
	labels := strings.Split(a, ".")
	if len(labels) < 2 {
		return "", invalid("needs at least two labels, like example.com")
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "", invalid("has a numeric top-level label")
	}
	return a, nil
}

// newVerificationToken returns a random domain verification token and its
// SHA-256, which is all the service keeps.
func newVerificationToken() (token string, hash []byte, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	token = "authms-domain-verification=" + base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(token))
	return token, sum[:], nil
}

// tokenMatches reports, in constant time, whether token hashes to hash.
func tokenMatches(token string, hash []byte) bool {
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], hash) == 1
}
