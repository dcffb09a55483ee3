package connections_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/webhooks"
)

type recordingSink struct {
	mu     sync.Mutex
	events []*webhooks.Event
}

func (s *recordingSink) Emit(_ context.Context, ev *webhooks.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, ev)
	return nil
}

// An account the network refuses is announced once, when it turns
// expired, with the network's code and without its tokens.
func TestExpireAnnouncesTheAccount(t *testing.T) {
	ctx := context.Background()
	e, member := pagesWorld(t)
	sink := &recordingSink{}
	svc := e.svc.WithEvents(sink)
	for range 2 {
		if err := svc.Expire(ctx, member.ID, &providers.Error{Kind: providers.KindAuth, Provider: "linkedin", Status: 401,
			Code: "REVOKED_ACCESS_TOKEN", Message: "the token was revoked"}); err != nil {
			t.Fatal(err)
		}
	}
	if len(sink.events) != 1 {
		t.Fatalf("%d events, want 1 (the second expire found it expired)", len(sink.events))
	}
	ev := sink.events[0]
	var body struct {
		Type string `json:"type"`
		Data struct {
			Account map[string]any `json:"account"`
			Code    string         `json:"code"`
		} `json:"data"`
	}
	if err := json.Unmarshal(ev.Body, &body); err != nil {
		t.Fatal(err)
	}
	if ev.Type != webhooks.AccountExpired || ev.OrganizationID != member.OrganizationID || body.Data.Account["id"] != member.ID ||
		body.Data.Account["status"] != "expired" || body.Data.Code != "REVOKED_ACCESS_TOKEN" {
		t.Errorf("event %s: %s", ev.Type, ev.Body)
	}
	for _, k := range []string{"accessToken", "AccessToken", "refreshToken", "credential"} {
		if _, ok := body.Data.Account[k]; ok {
			t.Errorf("the event carries %s", k)
		}
	}
}
