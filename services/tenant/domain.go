package tenant

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
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

// challengeLabel is the label under which a tenant publishes a domain's
// verification token as a TXT record: _authms-challenge.<domain>.
const challengeLabel = "_authms-challenge"

// ChallengeError reports a domain whose ownership VerifyDomain could not
// prove: no TXT record at Record holds its token, or (Lookup set) the DNS
// lookup failed.
type ChallengeError struct {
	// Record is the name looked up, "_authms-challenge.<domain>".
	Record string
	// Lookup is the resolver's error; nil when the lookup answered without
	// the token.
	Lookup error
}

func (e *ChallengeError) Error() string {
	if e.Lookup != nil {
		return fmt.Sprintf("could not look up the TXT records of %s; retry later", e.Record)
	}
	return fmt.Sprintf("no TXT record of %s holds the domain's verification token: publish the token AddDomain returned there, then verify again", e.Record)
}

func (e *ChallengeError) Unwrap() error { return e.Lookup }

// newResolver returns the system resolver, or one that asks only server
// ("host:port", UDP with the usual fallback to TCP) when it is set.
func newResolver(server string) *net.Resolver {
	if server == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, server)
	}}
}

// proveDomain checks that one of the TXT records of
// _authms-challenge.<domain> is the token that hashes to hash: whoever
// can publish it controls the domain's DNS. A domain with no such record
// (NXDOMAIN, no TXT records, other values) is a *ChallengeError; so is a
// failed lookup, with Lookup set. With Config.InsecureSkipDomainCheck it
// checks nothing and logs a warning.
func (s *Service) proveDomain(ctx context.Context, domain string, hash []byte) error {
	record := challengeLabel + "." + domain
	if s.cfg.InsecureSkipDomainCheck {
		s.deps.Logger.WarnContext(ctx, "domain verified without a DNS check (InsecureSkipDomainCheck: development only)", "domain", domain)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DNSTimeout)
	defer cancel()
	// The trailing dot makes the name absolute: no search domain applies.
	values, err := s.resolver.LookupTXT(ctx, record+".")
	var dnsErr *net.DNSError
	if err != nil && !(errors.As(err, &dnsErr) && dnsErr.IsNotFound) {
		return &ChallengeError{Record: record, Lookup: err}
	}
	for _, v := range values {
		if tokenMatches(strings.TrimSpace(v), hash) {
			return nil
		}
	}
	return &ChallengeError{Record: record}
}
