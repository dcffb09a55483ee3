package webhooks_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/postflow/postflow/webhooks"
)

func newSecret(t *testing.T) string {
	t.Helper()
	s, err := webhooks.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// PostFlow's signatures verify with an independent implementation of
// the Standard Webhooks specification (its official JavaScript library),
// with each secret of a rotation, and a changed body, id or timestamp, or
// another secret, does not.
func TestSignaturesVerifyIndependently(t *testing.T) {
	oldSecret, newS, stranger := newSecret(t), newSecret(t), newSecret(t)
	body := []byte(`{"type":"post.published","timestamp":"2026-11-30T04:00:00.000Z","data":{"post":{"id":"p1","content":"Grüße 👋"}}}`)
	now := time.Now()
	one, err := webhooks.Sign([]string{newS}, "msg_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	both, err := webhooks.Sign([]string{newS, oldSecret}, "msg_2", now, body)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(both.Get(webhooks.HeaderSignature))); n != 2 {
		t.Fatalf("a rotation's header carries %d signatures, want 2: %q", n, both.Get(webhooks.HeaderSignature))
	}
	tampered := func(h http.Header, key, value string) http.Header {
		c := h.Clone()
		c.Set(key, value)
		return c
	}
	stale, _ := webhooks.Sign([]string{newS}, "msg_3", now.Add(-time.Hour), body)
	cases := []struct {
		name   string
		msg    jsMessage
		wantOK bool
	}{
		{"signed with the secret", message(newS, one, body), true},
		{"rotation: the new secret", message(newS, both, body), true},
		{"rotation: the old secret", message(oldSecret, both, body), true},
		{"another secret", message(stranger, one, body), false},
		{"a changed body", message(newS, one, append([]byte(nil), append(body[:len(body)-1], ' ', '}')...)), false},
		{"a changed id", message(newS, tampered(one, webhooks.HeaderID, "msg_other"), body), false},
		{"a changed timestamp", message(newS, tampered(one, webhooks.HeaderTimestamp, "1"), body), false},
		{"an hour old", message(newS, stale, body), false},
	}
	msgs := make([]jsMessage, len(cases))
	for i, c := range cases {
		msgs[i] = c.msg
	}
	got := jsVerify(t, msgs)
	for i, c := range cases {
		if (got[i] == "ok") != c.wantOK {
			t.Errorf("%s: the JS library says %q, want ok=%v", c.name, got[i], c.wantOK)
		}
	}
}

// The reference Go library agrees, with either secret of a rotation.
func TestSignaturesVerifyWithTheGoLibrary(t *testing.T) {
	a, b := newSecret(t), newSecret(t)
	body := []byte(`{"type":"account.expired"}`)
	h, err := webhooks.Sign([]string{a, b}, "msg_x", time.Now(), body)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{a, b} {
		wh, _ := standardwebhooks.NewWebhook(s)
		if err := wh.Verify(body, h); err != nil {
			t.Errorf("verify with one of the two secrets: %v", err)
		}
	}
	if _, err := webhooks.Sign(nil, "msg_x", time.Now(), body); err == nil {
		t.Error("signing with no secret succeeded")
	}
	// The error names no part of the secret.
	if _, err := webhooks.Sign([]string{"whsec_!!hunter2-secret"}, "msg_x", time.Now(), body); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a bad secret: %v", err)
	}
}

// Event ids derive from what happened: the same parts, the same id.
func TestEventIDsAreStable(t *testing.T) {
	at := time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC)
	a, _ := webhooks.NewEvent("org", webhooks.PostPublished, at, map[string]string{"k": "v"}, "post1", "run1")
	b, _ := webhooks.NewEvent("org", webhooks.PostPublished, at.Add(time.Minute), map[string]string{"k": "w"}, "post1", "run1")
	c, _ := webhooks.NewEvent("org", webhooks.PostPublished, at, map[string]string{"k": "v"}, "post1", "run2")
	if a.ID != b.ID || a.ID == c.ID || !strings.HasPrefix(a.ID, "msg_") {
		t.Errorf("ids %s %s %s: want the first two equal, the third other", a.ID, b.ID, c.ID)
	}
	if want := `{"type":"post.published","timestamp":"2026-11-30T04:00:00Z","data":{"k":"v"}}`; string(a.Body) != want {
		t.Errorf("body %s, want %s", a.Body, want)
	}
}
