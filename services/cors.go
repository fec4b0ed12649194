package services

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	connectcors "connectrpc.com/cors"
	"github.com/rs/cors"

	"github.com/authms/authms/services/internal/clientip"
	"github.com/authms/authms/services/internal/rpc"
)

// AllowAllOrigins, alone in Config.AllowedOrigins, lets a page of any
// origin call the APIs: for development against a console served from
// another port only. Any page on the web could then call the APIs with a
// token it holds, and trigger public calls (registration, password reset)
// from a visitor's browser.
const AllowAllOrigins = "*"

// ParseAllowedOrigins checks Config.AllowedOrigins, as [Start] does, and
// returns them normalised; a command line checks its setting with it
// before starting anything.
func ParseAllowedOrigins(origins []string) ([]string, error) {
	all, allowed, err := parseOrigins(origins)
	if err != nil {
		return nil, err
	}
	if all {
		return []string{AllowAllOrigins}, nil
	}
	out := make([]string, 0, len(allowed))
	for _, o := range origins {
		if norm, _ := parseOrigin(o); allowed[norm] && !slices.Contains(out, norm) {
			out = append(out, norm)
		}
	}
	return out, nil
}

// parseOrigins checks and normalises Config.AllowedOrigins: "*" alone, or
// origins as browsers send them in the Origin header, scheme://host[:port]
// with no path, query or credentials. Schemes and hosts are lowercased and
// a default port (80 for http, 443 for https) is dropped, as browsers do.
func parseOrigins(origins []string) (all bool, allowed map[string]bool, err error) {
	allowed = make(map[string]bool, len(origins))
	var errs []error
	for _, o := range origins {
		if o == AllowAllOrigins {
			all = true
			continue
		}
		norm, err := parseOrigin(o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		allowed[norm] = true
	}
	if all && len(origins) > 1 {
		errs = append(errs, errors.New(`allowed origins: "*" allows every origin; it cannot be combined with others`))
	}
	if err := errors.Join(errs...); err != nil {
		return false, nil, err
	}
	return all, allowed, nil
}

// parseOrigin returns o in the form a browser's Origin header has.
func parseOrigin(o string) (string, error) {
	bad := func(why string) error {
		return fmt.Errorf("allowed origin %q: %s; want scheme://host[:port], e.g. https://console.example.com", o, why)
	}
	u, err := url.Parse(o)
	if err != nil {
		return "", bad("not a URL")
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme != "http" && scheme != "https":
		return "", bad("the scheme must be http or https")
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return "", bad("no host")
	case u.User != nil:
		return "", bad("an origin has no user information")
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "?") || strings.HasSuffix(o, "#"):
		return "", bad("an origin has no path, query or fragment")
	}
	host := strings.ToLower(u.Host)
	if port := u.Port(); (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		host = strings.ToLower(u.Hostname())
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	return scheme + "://" + host, nil
}

// originPolicy decides which browser pages may call the APIs. Requests
// without an Origin header (every non-browser client) and same-origin ones
// (the console authms serves itself) always pass; a cross-origin one
// passes only from an allowed origin, and gets the CORS headers the
// Connect, gRPC-web and gRPC protocols need.
type originPolicy struct {
	all     bool
	allowed map[string]bool
	clients clientip.Resolver
	// loopbackOnly holds same-origin requests to loopback names
	// (Config.LoopbackOnly).
	loopbackOnly bool
}

// withCORS wraps h in the origin policy. A request from an origin that is
// neither allowed nor the request's own is refused with 403 before it
// reaches h: a preflight, so the browser never sends the call, and also a
// "simple" request (a form POST, a Connect GET), which a browser sends
// without asking first, so a cross-site page cannot even trigger its side
// effects.
func withCORS(h http.Handler, p originPolicy) http.Handler {
	withHeaders := h
	if p.all || len(p.allowed) > 0 {
		origins := make([]string, 0, len(p.allowed))
		for o := range p.allowed {
			origins = append(origins, o)
		}
		if p.all {
			origins = []string{AllowAllOrigins}
		}
		withHeaders = cors.New(cors.Options{
			AllowedOrigins: origins,
			AllowedMethods: connectcors.AllowedMethods(),
			// Authorization carries access tokens and API keys.
			AllowedHeaders: append(connectcors.AllowedHeaders(), "Authorization", rpc.CorrelationHeader, "Traceparent"),
			ExposedHeaders: append(connectcors.ExposedHeaders(), rpc.CorrelationHeader),
			MaxAge:         int(corsMaxAge.Seconds()),
		}).Handler(h)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		switch {
		case origin == "":
			h.ServeHTTP(w, r)
		case p.all || p.allowed[origin]:
			withHeaders.ServeHTTP(w, r)
		case origin == p.ownOrigin(r):
			h.ServeHTTP(w, r)
		default:
			// No CORS headers: the browser shows the caller nothing.
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusForbidden)
			_, _ = fmt.Fprintln(w, "cross-origin request refused: the origin is not allowed to call this server")
		}
	})
}

// ownOrigin is the origin of the request's own URL: its scheme (https
// behind TLS, or when a trusted proxy says the client used it in
// X-Forwarded-Proto) and its Host. With loopbackOnly, a Host that is no
// loopback name has no own origin (""), so no Origin matches it: only a
// DNS-rebinding page sends such a Host with an Origin to a server that
// listens on loopback alone.
func (p originPolicy) ownOrigin(r *http.Request) string {
	if p.loopbackOnly && !loopbackHost(r.Host) {
		return ""
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	} else if p.clients.FromTrustedProxy(r.RemoteAddr) && forwardedHTTPS(r.Header) {
		scheme = "https"
	}
	return scheme + "://" + strings.ToLower(r.Host)
}

// forwardedHTTPS reports whether the trusted proxy in front says the
// client used https. A proxy appends its entry to what the client sent,
// as a new header line or after a comma, so only the last entry of the
// last line is the proxy's; any earlier one may be the client's own.
func forwardedHTTPS(h http.Header) bool {
	lines := h.Values("X-Forwarded-Proto")
	if len(lines) == 0 {
		return false
	}
	last := lines[len(lines)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.EqualFold(strings.TrimSpace(last), "https")
}

// loopbackHost reports whether host (a Host header, with or without a
// port) names the loopback interface: localhost or a name under
// .localhost (which browsers resolve to loopback themselves, RFC 6761),
// 127.0.0.0/8 or [::1].
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
