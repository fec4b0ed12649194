// Package clientip finds the address of the client behind a request, for
// the services that rate-limit or record it (session passes it to risk).
//
// The address is the connection's remote address. X-Forwarded-For is
// honoured only when that peer is a trusted proxy (a configured CIDR; none
// by default), because anyone else can write any address into it. The
// header is then read from the right: each trusted proxy appended the
// address it received from, so the first address from the right that is
// not itself a trusted proxy is the client. Addresses further left were
// written by the client or by untrusted hops and are ignored.
package clientip

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ForwardedForHeader is the header trusted proxies append client addresses
// to.
const ForwardedForHeader = "X-Forwarded-For"

// Resolver finds client addresses. The zero value trusts no proxy: the
// client is always the remote address.
type Resolver struct {
	// TrustedProxies are the networks whose X-Forwarded-For is believed:
	// typically the load balancer's or the ingress' addresses.
	TrustedProxies []netip.Prefix
}

// ParsePrefixes parses trusted proxy networks in CIDR notation; a bare
// address is the network of that one address.
func ParsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	var errs []error
	for _, c := range cidrs {
		c = strings.TrimSpace(c)
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(c)
		if err != nil {
			errs = append(errs, fmt.Errorf("trusted proxy %q: not a CIDR or an IP address", c))
			continue
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// trusted reports whether a is a trusted proxy.
func (r Resolver) trusted(a netip.Addr) bool {
	for _, p := range r.TrustedProxies {
		if p.Contains(a) || (a.Is4() && p.Contains(netip.AddrFrom16(a.As16()))) {
			return true
		}
	}
	return false
}

// ClientIP returns the client's address for a request that came from
// remoteAddr ("host:port" or a bare address, as http.Request.RemoteAddr
// and connect.Peer.Addr give it) with header h. IPv4-mapped IPv6 addresses
// are returned as IPv4 and zones are dropped. It fails only when
// remoteAddr is not an IP address.
func (r Resolver) ClientIP(remoteAddr string, h http.Header) (netip.Addr, error) {
	peer, ok := parseAddr(remoteAddr)
	if !ok {
		return netip.Addr{}, fmt.Errorf("client address: remote address %q is not an IP address", remoteAddr)
	}
	if !r.trusted(peer) {
		return peer, nil
	}
	hops := forwardedFor(h)
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseAddr(hops[i])
		if !ok {
			// A trusted proxy wrote something that is not an address: the
			// last address it vouched for is the best we know.
			return client, nil
		}
		client = a
		if !r.trusted(a) {
			return a, nil
		}
	}
	// Every hop is a trusted proxy: the leftmost one is the client.
	return client, nil
}

// Network returns what a rate limit counts a client by: an IPv4 address
// itself, an IPv6 address by its /64, which one subscriber usually holds
// whole (so rotating through it gains nothing). IPv4-mapped IPv6 addresses
// count as IPv4; zones are dropped.
func Network(a netip.Addr) string {
	a = a.WithZone("").Unmap()
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}

// FromRequest is ClientIP for an HTTP request.
func (r Resolver) FromRequest(req *http.Request) (netip.Addr, error) {
	return r.ClientIP(req.RemoteAddr, req.Header)
}

// forwardedFor returns the X-Forwarded-For hops of every header line, left
// to right.
func forwardedFor(h http.Header) []string {
	var hops []string
	for _, line := range h.Values(ForwardedForHeader) {
		for hop := range strings.SplitSeq(line, ",") {
			hops = append(hops, strings.TrimSpace(hop))
		}
	}
	return hops
}

// parseAddr parses "1.2.3.4", "1.2.3.4:80", "::1", "[::1]:80" or
// "[fe80::1%eth0]:80" into a zone-less, unmapped address.
func parseAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.WithZone("").Unmap(), true
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

// FromTrustedProxy reports whether a request that came from remoteAddr
// came through a trusted proxy, whose forwarding headers
// (X-Forwarded-For, X-Forwarded-Proto) may then be believed.
func (r Resolver) FromTrustedProxy(remoteAddr string) bool {
	peer, ok := parseAddr(remoteAddr)
	return ok && r.trusted(peer)
}
