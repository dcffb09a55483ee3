package providers_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/postflow/postflow/providers"
)

type stub struct{ id string }

func (s stub) ID() string                           { return s.id }
func (s stub) Name() string                         { return s.id }
func (s stub) Capabilities() providers.Capabilities { return providers.Capabilities{} }
func (s stub) AuthURL(string, string) string        { return "" }
func (s stub) Exchange(context.Context, string, string) (*providers.Connection, error) {
	return nil, nil
}
func (s stub) Refresh(context.Context, string) (*providers.Tokens, error) { return nil, nil }
func (s stub) Publish(context.Context, providers.Account, providers.Payload) (*providers.Published, error) {
	return nil, nil
}
func (s stub) TextLength(t string) int  { return len(t) }
func (s stub) PostURL(id string) string { return id }

func TestRegistry(t *testing.T) {
	r, err := providers.NewRegistry(stub{"x"}, stub{"linkedin"}, stub{"sandbox"})
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
	if _, err := providers.NewRegistry(stub{"x"}, stub{"x"}); err == nil {
		t.Error("NewRegistry accepted two providers with one id")
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
