package providers_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/postflow/postflow/providers"
)

// stub is a provider that declares its way in (connect) and does nothing:
// the registry's tests need only its id and its Connect.
type stub struct {
	providers.Provider
	id      string
	connect providers.Connect
}

func (s stub) ID() string                 { return s.id }
func (s stub) Connect() providers.Connect { return s.connect }

type oauthStub struct{ providers.OAuth }
type passwordStub struct{ providers.PasswordLogin }

func newStub(id string) stub { return stub{id: id, connect: providers.Connect{OAuth: oauthStub{}}} }

func TestRegistry(t *testing.T) {
	r, err := providers.NewRegistry(newStub("x"), newStub("linkedin"), newStub("sandbox"))
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := r.Get("linkedin"); !ok || p.ID() != "linkedin" {
		t.Errorf("Get(linkedin) = %v, %v", p, ok)
	}
	if _, ok := r.Get("myspace"); ok {
		t.Error("Get(myspace) found a provider")
	}
	var ids []string
	for _, p := range r.All() {
		ids = append(ids, p.ID())
	}
	if fmt.Sprint(ids) != "[linkedin sandbox x]" {
		t.Errorf("All = %v, want sorted by id", ids)
	}
	if _, err := providers.NewRegistry(newStub("x"), newStub("x")); err == nil {
		t.Error("NewRegistry accepted two providers with one id")
	}
	for _, c := range []providers.Connect{{}, {OAuth: oauthStub{}, Password: passwordStub{}}} {
		if _, err := providers.NewRegistry(stub{id: "x", connect: c}); err == nil {
			t.Errorf("NewRegistry accepted a provider whose Connect is %s with both or neither set", c.Method())
		}
	}
}

func TestKindSurvivesWrapping(t *testing.T) {
	base := &providers.Error{Kind: providers.KindRateLimited, Provider: "linkedin", Code: "TOO_MANY_REQUESTS", RetryAfter: time.Minute}
	wrapped := fmt.Errorf("publish post p1: %w", base)
	if providers.KindOf(wrapped) != providers.KindRateLimited {
		t.Errorf("KindOf(wrapped) = %v", providers.KindOf(wrapped))
	}
	if providers.KindOf(errors.New("plain")) != 0 {
		t.Error("KindOf(plain error) != 0")
	}
	if got := base.Error(); got != "linkedin: rate_limited TOO_MANY_REQUESTS (retry after 1m0s)" {
		t.Errorf("Error() = %q", got)
	}
}

// Refused tells an answer that proves nothing happened from one after
// which the platform may have the post.
func TestRefused(t *testing.T) {
	for _, tt := range []struct {
		err  providers.Error
		want bool
	}{
		{providers.Error{Kind: providers.KindRateLimited, Status: 429}, true},
		{providers.Error{Kind: providers.KindAuth, Status: 401}, true},
		{providers.Error{Kind: providers.KindInvalidContent, Status: 422}, true},
		{providers.Error{Kind: providers.KindDuplicate, Status: 422}, true},
		{providers.Error{Kind: providers.KindRetryable, Status: 503}, true},
		{providers.Error{Kind: providers.KindRetryable, Status: 409}, true},
		{providers.Error{Kind: providers.KindRetryable, Status: 500}, false},
		{providers.Error{Kind: providers.KindRetryable, Status: 502}, false},
		{providers.Error{Kind: providers.KindRetryable, Status: 504}, false},
		{providers.Error{Kind: providers.KindRetryable, Code: "NETWORK"}, false},
		{providers.Error{Kind: providers.KindRetryable, Status: 201, Code: "NO_POST_ID"}, false},
	} {
		if got := tt.err.Refused(); got != tt.want {
			t.Errorf("%v (status %d).Refused() = %v, want %v", tt.err.Kind, tt.err.Status, got, tt.want)
		}
	}
}

func TestExactlyOnceShowsItsWindowsInSeconds(t *testing.T) {
	b, err := json.Marshal(providers.ExactlyOnce{Lever: "idempotency-key", DuplicateWindow: 5 * time.Minute, IdempotencyWindow: time.Hour, ReadBack: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"lever":"idempotency-key","readBack":true,"duplicateWindowSeconds":300,"idempotencyWindowSeconds":3600}`; string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
}

func TestWebURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://mastodon.example/@a/1": "https://mastodon.example/@a/1",
		"http://localhost:8080/x":       "http://localhost:8080/x",
		"javascript:alert(1)":           "",
		"JAVASCRIPT:alert(1)":           "",
		"data:text/html,<b>x</b>":       "",
		"//evil.example/x":              "",
		"/relative":                     "",
		"https://user:pw@host.example/": "",
		"":                              "",
	} {
		if got := providers.WebURL(in); got != want {
			t.Errorf("WebURL(%q) = %q, want %q", in, got, want)
		}
	}
}
