package netguard_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postflow/postflow/internal/netguard"
)

func TestPublic(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"93.184.215.14", true},
		{"2606:2800:21f:cb07:6820:80da:af6b:8b2c", true},
		{"127.0.0.1", false},
		{"::1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // cloud metadata
		{"fe80::1", false},
		{"fc00::1", false},
		{"0.0.0.0", false},
		{"::", false},
		{"100.64.0.1", false},
		{"::ffff:127.0.0.1", false},
		{"::ffff:169.254.169.254", false},
		{"224.0.0.1", false},
		{"64:ff9b::7f00:1", false},
		{"2002:7f00:1::", false},
		{"198.18.0.1", false},
		{"::7f00:1", false},            // IPv4-compatible ::/96
		{"::ffff:0:7f00:1", false},     // SIIT ::ffff:0:0/96
		{"fec0::1", false},             // site-local
		{"2001::7f00:1", false},        // Teredo 2001::/32
		{"2001:2::1", false},           // benchmarking, in 2001::/23
		{"2001:20::1", false},          // ORCHIDv2
		{"192.88.99.1", false},         // 6to4 relay anycast
		{"3fff::1", false},             // documentation (RFC 9637)
		{"5f00::1", false},             // SRv6 SIDs
		{"100::1", false},              // discard-only
		{"64:ff9b:1::a00:1", false},    // local-use NAT64
		{"4000::1", false},             // reserved by IETF, outside 2000::/3
		{"2001:4860:4860::8888", true}, // just past 2001::/23
		{"2a00:1450:4001:82a::200e", true},
		{"8.8.8.8", true},
	} {
		if got := netguard.Public(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Public(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

func TestServerURL(t *testing.T) {
	prod, dev := netguard.Policy{}, netguard.Policy{AllowLocal: true}
	for _, tc := range []struct {
		policy netguard.Policy
		raw    string
		want   string // "" for an error
	}{
		{prod, "example.social", "https://example.social"},
		{prod, " https://Example.Social/ ", "https://example.social"},
		{prod, "mastodon.example:8443", "https://mastodon.example:8443"},
		{prod, "http://example.social", ""},
		{prod, "https://example.social/path", ""},
		{prod, "https://user:pw@example.social", ""},
		{prod, "example.social?x=1", ""},
		{prod, "localhost", ""},
		{prod, "127.0.0.1", ""},
		{prod, "[::1]:8080", ""},
		{prod, "intranet", ""},
		{prod, "printer.local", ""},
		{prod, "", ""},
		{prod, "ftp://example.social", ""},
		{dev, "http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{dev, "localhost:2583", "https://localhost:2583"},
	} {
		u, err := tc.policy.ServerURL(tc.raw)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("ServerURL(%q) = %s, want an error", tc.raw, u)
		case tc.want == "" && !errors.Is(err, netguard.ErrForbidden):
			t.Errorf("ServerURL(%q): %v, want ErrForbidden", tc.raw, err)
		case tc.want != "" && (err != nil || u.String() != tc.want):
			t.Errorf("ServerURL(%q) = %v, %v; want %s", tc.raw, u, err, tc.want)
		}
	}
}

// TestClientRefusesLocalAtDial: the check runs on the resolved address of
// every connection, so a name that resolves to loopback is refused even
// though the URL passed ServerURL.
func TestClientRefusesLocalAtDial(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	_, port, _ := netipPort(srv.URL)
	for _, url := range []string{srv.URL, "http://localhost:" + port} {
		_, err := netguard.Policy{}.Client(5 * time.Second).Get(url)
		if !errors.Is(err, netguard.ErrForbidden) {
			t.Errorf("GET %s without AllowLocal: %v, want ErrForbidden", url, err)
		}
	}
	res, err := netguard.Policy{AllowLocal: true}.Client(5 * time.Second).Get(srv.URL)
	if err != nil || res.StatusCode != 204 {
		t.Fatalf("GET with AllowLocal: %v, %v", res, err)
	}
	res.Body.Close()
	if err := (netguard.Policy{}).Check(context.Background(), "localhost"); !errors.Is(err, netguard.ErrForbidden) {
		t.Errorf("Check(localhost) = %v, want ErrForbidden", err)
	}
}

func netipPort(u string) (string, string, error) {
	ap, err := netip.ParseAddrPort(u[len("http://"):])
	if err != nil {
		return "", "", err
	}
	return ap.Addr().String(), strconv.Itoa(int(ap.Port())), nil
}

// TestServerURLErrorsKeepNoPassword: errors reach logs; a password typed
// into a server's address stays out of them.
func TestServerURLErrorsKeepNoPassword(t *testing.T) {
	for _, raw := range []string{"http://user:s3cret@example.social", "https://user:s3cret@example.social/path", "user:s3cret@example.social", "https://user:s3cret@exa mple.social"} {
		_, err := netguard.Policy{}.ServerURL(raw)
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ServerURL(%q): %v", raw, err)
		}
	}
}
