// Package netguard keeps calls to servers that users name (a Mastodon
// instance, a Bluesky PDS) away from PostFlow's own network: outside
// development, a connection to a loopback, private, link-local or other
// special-purpose address is refused at every dial, after DNS resolution,
// so neither a name that resolves inward nor a redirect nor a later change
// of DNS (rebinding) reaches one.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/postflow/postflow/providers"
)

// ErrForbidden: the address is not one PostFlow connects to for a user.
// It is a providers.ErrBadServer, so callers that know only providers
// (the publish activity) tell it from an outage.
var ErrForbidden = fmt.Errorf("netguard: address not allowed: %w", providers.ErrBadServer)

// SchemeError: a redirect led to a scheme the policy does not follow
// (file:, ftp:, plain http outside development). Is ErrForbidden.
type SchemeError struct{ Scheme string }

func (e *SchemeError) Error() string {
	return fmt.Sprintf("netguard: a redirect to a %s: URL is not followed", e.Scheme)
}
func (e *SchemeError) Unwrap() error { return ErrForbidden }

// AddressError: a dial, after DNS resolution, was to an address that is
// not public (Public). Is ErrForbidden.
type AddressError struct{ Addr netip.Addr }

func (e *AddressError) Error() string {
	return fmt.Sprintf("netguard: %s is not a public address", e.Addr)
}
func (e *AddressError) Unwrap() error { return ErrForbidden }

// Policy says which servers users may name.
type Policy struct {
	// AllowLocal allows loopback and private addresses and plain http:
	// development and tests, whose servers run on 127.0.0.1.
	AllowLocal bool
}

// Client is an HTTP client whose every connection obeys p. It uses no
// proxy from the environment (the proxy's address would be the one
// checked) and gives up after timeout.
func (p Policy) Client(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, Control: p.control}
	t := &http.Transport{
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{Transport: t, Timeout: timeout, CheckRedirect: p.checkRedirect}
}

func (p Policy) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("netguard: too many redirects")
	}
	if req.URL.Scheme != "https" && !(p.AllowLocal && req.URL.Scheme == "http") {
		return &SchemeError{Scheme: req.URL.Scheme}
	}
	return nil
}

// control runs after DNS resolution, before each connect.
func (p Policy) control(_, address string, _ syscall.RawConn) error {
	if p.AllowLocal {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrForbidden, address)
	}
	if !Public(ap.Addr()) {
		return &AddressError{Addr: ap.Addr()}
	}
	return nil
}

// special are ranges that are not the public Internet beyond what netip's
// predicates know, from IANA's IPv4 and IPv6 Special-Purpose Address
// Registries (RFC 6890 and its updates): shared address space (RFC 6598),
// IETF protocol assignments, documentation (RFC 5737, RFC 3849, RFC 9637),
// benchmarking (RFC 2544), reserved (RFC 1112), and the 6to4 relays and
// IETF assignments (Teredo, RFC 4380) that can lead inward. IPv6 outside
// globalUnicast is refused whole, so the IPv4-compatible (::/96), SIIT
// (::ffff:0:0/96), NAT64 (64:ff9b::/96, RFC 8215), discard (RFC 6666),
// SRv6 (5f00::/16) and site-local (fec0::/10) ranges need no row.
var special = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("192.88.99.0/24"), // 6to4 relay anycast (RFC 7526)
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("2001::/23"), // IETF protocol assignments: Teredo, ORCHID, benchmarking
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"),
	netip.MustParsePrefix("3fff::/20"),
}

// globalUnicast is the only IPv6 space IANA allocates for the public
// Internet (IPv6 Address Space registry); everything else is reserved,
// local, translated or multicast.
var globalUnicast = netip.MustParsePrefix("2000::/3")

// Public reports whether a is an address on the public Internet: not
// loopback, private (RFC 1918, RFC 4193), link-local, multicast,
// unspecified, or another special-purpose range (special), and for IPv6
// within 2000::/3. An IPv4 address mapped into IPv6 (::ffff:0:0/96) is
// judged as IPv4; other embeddings of IPv4 are refused.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	if a.Is6() && !globalUnicast.Contains(a) {
		return false
	}
	for _, p := range special {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// ServerURL reads a server a user names ("example.social",
// "https://example.social/") as its base URL: https, a host name and an
// optional port, nothing else. Plain http and addresses given as IPs are
// taken only with AllowLocal, and outside it a name that is plainly local
// (localhost, *.local, *.internal, one label) is refused here, before any
// dial. Errors wrap ErrForbidden.
func (p Policy) ServerURL(raw string) (*url.URL, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return nil, fmt.Errorf("%w: no server named", ErrForbidden)
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%w: %q is not a server address", ErrForbidden, redacted(s, u))
	}
	switch {
	case u.Scheme != "https" && !(p.AllowLocal && u.Scheme == "http"):
		return nil, fmt.Errorf("%w: %q must use https", ErrForbidden, redacted(s, u))
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "":
		return nil, fmt.Errorf("%w: %q must be a server's address alone (no path, query or credentials)", ErrForbidden, redacted(s, u))
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if !p.AllowLocal {
		if _, err := netip.ParseAddr(host); err == nil {
			return nil, fmt.Errorf("%w: name the server by its host name, not an IP address", ErrForbidden)
		}
		if !strings.Contains(host, ".") || host == "localhost" || strings.HasSuffix(host, ".localhost") ||
			strings.HasSuffix(host, ".local") || strings.HasSuffix(host, ".internal") {
			return nil, fmt.Errorf("%w: %q is not a public host name", ErrForbidden, host)
		}
	}
	out := &url.URL{Scheme: u.Scheme, Host: strings.ToLower(u.Host)}
	return out, nil
}

// redacted is what an error may say of a server a user typed: without a
// password it carried (https://user:secret@host), errors reach logs.
func redacted(s string, u *url.URL) string {
	if u == nil {
		if strings.Contains(s, "@") {
			return "(an address with credentials)"
		}
		return s
	}
	return u.Redacted()
}

// Check resolves host and refuses it unless every address is public (or
// the policy allows local ones): for a clear error at connect time, before
// the dial-time check that guards every call.
func (p Policy) Check(ctx context.Context, host string) error {
	if p.AllowLocal {
		return nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("netguard: resolve %s: %w", host, err)
	}
	for _, a := range addrs {
		if !Public(a) {
			return fmt.Errorf("%w: %s resolves to %s", ErrForbidden, host, a)
		}
	}
	return nil
}
