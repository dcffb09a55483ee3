package bluesky_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/bluesky"
	"github.com/postflow/postflow/providers/bluesky/blueskyfake"
)

// closedURL is the URL of a local port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// TestConnectUnreachableServer: at connect, a server named that does not
// resolve or refuses the dial is ErrBadServer (the API's 400
// invalid_server) with a message naming the host alone; another network
// failure is a *providers.Error (502 network_error); a configured service
// that cannot be reached stays an outage, not the user's mistake.
func TestConnectUnreachableServer(t *testing.T) {
	ctx := context.Background()
	fake := blueskyfake.New()
	t.Cleanup(fake.Close)
	alice := fake.CreateAccount("alice.test", "")
	pw := fake.AppPassword(alice.DID)
	hangup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hijackClose(w) }))
	t.Cleanup(hangup.Close)
	const typo = "no-such-pds.invalid"
	closed := closedURL(t)

	provider := func(t *testing.T, allowLocal bool, resolver string, oauth bool) *bluesky.Provider {
		t.Helper()
		c := bluesky.Config{ResolverURL: resolver, PLCURL: fake.PLCURL(), AppURL: "https://bsky.app", Servers: netguard.Policy{AllowLocal: allowLocal}}
		if oauth {
			c.Connect, c.RedirectURI, c.OAuthSecret = bluesky.ConnectOAuth, "http://127.0.0.1:8080/connections/callback/bluesky", []byte(strings.Repeat("s", 32))
		}
		p, err := bluesky.New(c)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name       string
		allowLocal bool
		resolver   string // "" for the fake
		oauth      bool
		server     string
		identifier string
		badServer  bool   // else a *providers.Error, not ErrBadServer
		message    string // the error must hold it
	}{
		{"a name that does not resolve (checked before any call)", false, "", false, typo, alice.Email, true, "could not resolve " + typo},
		{"a name that does not resolve (at the dial)", true, "", false, "http://" + typo, alice.Email, true, "could not resolve " + typo},
		{"a dial refused", true, "", false, closed, alice.Email, true, "refused the connection"},
		{"a server that hangs up", true, "", false, hangup.URL, alice.Email, false, "createSession"},
		{"the configured resolver unreachable: an outage", true, closed, false, "", alice.Handle, false, "resolveHandle"},
		{"OAuth: a name that does not resolve", false, "", true, "https://" + typo, "", true, "could not resolve " + typo},
		{"OAuth: a dial refused", true, "", true, closed, "", true, "refused the connection"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resolver := tc.resolver
			if resolver == "" {
				resolver = fake.URL
			}
			p := provider(t, tc.allowLocal, resolver, tc.oauth)
			var err error
			if tc.oauth {
				_, err = p.Connect().OAuth.AuthURL(ctx, tc.server, "state", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
			} else {
				_, err = p.Connect().Password.Login(ctx, tc.server, tc.identifier, pw)
			}
			if err == nil {
				t.Fatal("connected")
			}
			var pe *providers.Error
			switch {
			case tc.badServer && !errors.Is(err, providers.ErrBadServer):
				t.Fatalf("error %v; want ErrBadServer", err)
			case !tc.badServer && (errors.Is(err, providers.ErrBadServer) || !errors.As(err, &pe)):
				t.Fatalf("error %v; want a *providers.Error, not ErrBadServer", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.message) {
				t.Errorf("error %q; want it to hold %q", msg, tc.message)
			}
			for _, leak := range []string{"lookup", ":53", "dial tcp", pw} {
				if strings.Contains(msg, leak) {
					t.Errorf("error %q holds %q", msg, leak)
				}
			}
		})
	}
}
