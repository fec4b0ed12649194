package tenant_test

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// zone is a DNS server on a loopback UDP port, run in process with
// miekg/dns, that answers TXT queries from records the test publishes:
// NXDOMAIN for a name it has none of, SERVFAIL for a name set to fail.
type zone struct {
	addr string

	mu      sync.Mutex
	records map[string][]string // absolute, lower-case name -> TXT values
	failing map[string]bool
}

func startZone(t *testing.T) *zone {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	z := &zone{addr: pc.LocalAddr().String(), records: map[string][]string{}, failing: map[string]bool{}}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(z.serve), NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return z
}

// publish adds TXT values to name ("_authms-challenge.example.com").
func (z *zone) publish(name string, values ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	key := dns.Fqdn(strings.ToLower(name))
	z.records[key] = append(z.records[key], values...)
}

// fail makes queries for name answer SERVFAIL.
func (z *zone) fail(name string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.failing[dns.Fqdn(strings.ToLower(name))] = true
}

func (z *zone) serve(w dns.ResponseWriter, req *dns.Msg) {
	res := new(dns.Msg)
	res.SetReply(req)
	res.Authoritative = true
	if len(req.Question) == 1 {
		q := req.Question[0]
		z.mu.Lock()
		values, known := z.records[strings.ToLower(q.Name)]
		failing := z.failing[strings.ToLower(q.Name)]
		z.mu.Unlock()
		switch {
		case failing:
			res.Rcode = dns.RcodeServerFailure
		case !known:
			res.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeTXT:
			for _, v := range values {
				res.Answer = append(res.Answer, &dns.TXT{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{v},
				})
			}
		}
	}
	_ = w.WriteMsg(res)
}
