package webhooks_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/postflow/postflow/internal/lockedbuf"
	"github.com/postflow/postflow/internal/mongostore"
	"github.com/postflow/postflow/internal/mongotest"
	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/internal/tokencipher"
	"github.com/postflow/postflow/webhooks"
	"github.com/postflow/postflow/webhooks/webhookstest"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

// world is a webhook store on a fresh database, the service and a
// deliverer on one settable clock, and a receiver whose answers a test
// sets.
type world struct {
	store   *mongostore.Webhooks
	svc     *webhooks.Service
	d       *webhooks.Deliverer
	starter *webhookstest.Starter
	// cipher seals the endpoints' secrets (tests open them with it).
	cipher *tokencipher.Cipher
	now    time.Time

	mu       sync.Mutex
	status   int
	response []byte
	got      []*http.Request
	bodies   [][]byte
	srv      *httptest.Server
	// logs is what the deliverer logged.
	logs lockedbuf.Buffer
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{store: mongotest.Store(t).Webhooks(), starter: &webhookstest.Starter{}, status: http.StatusNoContent,
		now: time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC)}
	cipher, err := tokencipher.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	w.cipher = cipher
	clock := func() time.Time { return w.now }
	w.svc = webhooks.NewService(w.store, cipher, netguard.Policy{AllowLocal: true}, w.starter).WithClock(clock)
	w.d = &webhooks.Deliverer{Store: w.store, Sealer: cipher, Client: netguard.Policy{AllowLocal: true}.Client(webhooks.AttemptTimeout),
		Disable: webhooks.DefaultDisablePolicy, Now: clock, Logger: slog.New(slog.NewTextHandler(&w.logs, nil))}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.mu.Lock()
		defer w.mu.Unlock()
		w.got, w.bodies = append(w.got, r), append(w.bodies, body)
		rw.WriteHeader(w.status)
		_, _ = rw.Write(w.response)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *world) endpoint(t *testing.T, events ...string) (*webhooks.Endpoint, string) {
	t.Helper()
	u := w.srv.URL + "/hooks?token=receiver-secret"
	e, secret, err := w.svc.Create(context.Background(), "org-1", webhooks.Input{URL: &u, Events: &events})
	if err != nil {
		t.Fatal(err)
	}
	return e, secret
}

func (w *world) event(t *testing.T, typ string) *webhooks.Event {
	t.Helper()
	ev, err := webhooks.NewEvent("org-1", typ, w.now, map[string]string{"post": "p1"}, "p1", "run1")
	if err != nil {
		t.Fatal(err)
	}
	if err := (&webhooks.Emitter{Store: w.store, Starter: w.starter}).Emit(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// An event is stored once and started once per endpoint that wants it
// (emitted again, it starts nothing: TestEmitAgainStartsNothing);
// an attempt sends its body signed, and a 2xx is recorded as delivered.
func TestAttemptSignsAndRecords(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	all, secret := w.endpoint(t)
	failedOnly, _ := w.endpoint(t, webhooks.PostFailed)
	ev := w.event(t, webhooks.PostPublished)
	again, _ := webhooks.NewEvent("org-1", webhooks.PostPublished, w.now.Add(time.Hour), "other data", "p1", "run1")
	if err := (&webhooks.Emitter{Store: w.store, Starter: w.starter}).Emit(ctx, again); err != nil {
		t.Fatal(err)
	}
	if want := ev.ID + "/" + all.ID; len(w.starter.Started()) != 1 || w.starter.Started()[0] != want {
		t.Errorf("started %v, want %s once and nothing for %s", w.starter.Started(), want, failedOnly.ID)
	}

	out, err := w.d.Attempt(ctx, webhooks.AttemptInput{EventID: ev.ID, EndpointID: all.ID, Attempt: 1, NextAttemptIn: 5 * time.Second})
	if err != nil || !out.Delivered || out.Stop {
		t.Fatalf("attempt = %+v, %v", out, err)
	}
	if len(w.got) != 1 {
		t.Fatalf("%d requests", len(w.got))
	}
	if !bytes.Equal(w.bodies[0], ev.Body) {
		t.Errorf("sent %s, want the stored body %s (the first emitted)", w.bodies[0], ev.Body)
	}
	h := w.got[0].Header
	if h.Get("webhook-id") != ev.ID || h.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", h)
	}
	wh, _ := standardwebhooks.NewWebhook(secret)
	if err := wh.VerifyIgnoringTimestamp(w.bodies[0], h); err != nil {
		t.Errorf("signature: %v", err)
	}
	list, err := w.svc.Deliveries(ctx, "org-1", all.ID, 10, "")
	if err != nil || len(list) != 1 {
		t.Fatalf("deliveries = %v, %v", list, err)
	}
	if d := list[0]; !d.Success || d.StatusCode != 204 || d.EventID != ev.ID || d.EventType != webhooks.PostPublished || d.Attempt != 1 || d.NextAttemptAt != nil {
		t.Errorf("delivery %+v", d)
	}
	if _, err := w.svc.Deliveries(ctx, "org-2", all.ID, 10, ""); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("another organization lists them: %v", err)
	}
}

// Failures are recorded with the answer (its start only); an endpoint
// failing every attempt of the schedule, over a day, is disabled with a
// webhook.disabled notice, and its deliveries stop; enabled again, it
// starts afresh.
func TestFailuresDisableTheEndpoint(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	e, _ := w.endpoint(t)
	ev := w.event(t, webhooks.PostFailed)
	w.status, w.response = http.StatusInternalServerError, bytes.Repeat([]byte("x"), 100<<10)
	schedule := webhooks.RetrySchedule
	for attempt := 1; attempt <= len(schedule)+1; attempt++ {
		in := webhooks.AttemptInput{EventID: ev.ID, EndpointID: e.ID, Attempt: attempt}
		if attempt <= len(schedule) {
			in.NextAttemptIn = schedule[attempt-1]
		}
		out, err := w.d.Attempt(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		last := attempt == len(schedule)+1
		if out.Delivered || out.Stop != last || out.StatusCode != 500 {
			t.Fatalf("attempt %d = %+v, want stop only at the last", attempt, out)
		}
		if !last {
			w.now = w.now.Add(schedule[attempt-1])
		}
	}
	got, err := w.svc.Get(ctx, "org-1", e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Enabled || got.Notice == nil || got.Notice.Type != webhooks.DisabledNotice || got.FailureStreak != 8 ||
		!strings.Contains(got.Notice.Reason, "HTTP 500") {
		t.Fatalf("endpoint after a day of failures: %+v (notice %+v)", got, got.Notice)
	}
	list, _ := w.svc.Deliveries(ctx, "org-1", e.ID, 100, "")
	if len(list) != 8 || len(list[0].Response) != webhooks.KeptResponseBytes || list[0].NextAttemptAt != nil || list[7].NextAttemptAt == nil {
		t.Errorf("%d deliveries; newest %+v", len(list), list[0])
	}
	// Each failure is logged for operators, without the endpoint's URL
	// (which may carry a receiver's token).
	if logs := w.logs.String(); strings.Count(logs, "webhook delivery attempt failed") != 8 || strings.Contains(logs, w.srv.URL) ||
		!strings.Contains(logs, "failure=\"HTTP 500\"") {
		t.Errorf("logs after 8 failed attempts:\n%s", logs)
	}
	if out, err := w.d.Attempt(ctx, webhooks.AttemptInput{EventID: ev.ID, EndpointID: e.ID, Attempt: 9}); err != nil || !out.Stop || len(w.got) != 8 {
		t.Errorf("an attempt to a disabled endpoint = %+v, %v; %d requests", out, err, len(w.got))
	}
	if _, err := w.svc.Redeliver(ctx, "org-1", e.ID, list[0].ID); !errors.Is(err, webhooks.ErrDisabled) {
		t.Errorf("redeliver to a disabled endpoint: %v", err)
	}
	on := true
	if got, err = w.svc.Update(ctx, "org-1", e.ID, webhooks.Input{Enabled: &on}); err != nil || !got.Enabled || got.Notice != nil || got.FailureStreak != 0 {
		t.Fatalf("enabled again: %+v, %v", got, err)
	}
	if _, err := w.svc.Redeliver(ctx, "org-1", e.ID, list[0].ID); err != nil {
		t.Fatal(err)
	}
	if last := w.starter.Started()[len(w.starter.Started())-1]; last != "again:"+ev.ID+"/"+e.ID {
		t.Errorf("redelivery started %q", last)
	}
}

// A short run of failures, however many, does not disable: the policy
// wants a day.
func TestABurstOfFailuresDoesNotDisable(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	e, _ := w.endpoint(t)
	w.status = http.StatusServiceUnavailable
	for i := range 20 {
		ev, _ := webhooks.NewEvent("org-1", webhooks.PostFailed, w.now, i, "burst", string(rune('a'+i)))
		_, _ = w.store.SaveEvent(ctx, ev)
		if out, err := w.d.Attempt(ctx, webhooks.AttemptInput{EventID: ev.ID, EndpointID: e.ID, Attempt: 1}); err != nil || out.Stop {
			t.Fatalf("attempt %d = %+v, %v", i, out, err)
		}
		w.now = w.now.Add(time.Minute)
	}
	w.status = http.StatusOK
	ev := w.event(t, webhooks.PostFailed)
	if out, _ := w.d.Attempt(ctx, webhooks.AttemptInput{EventID: ev.ID, EndpointID: e.ID, Attempt: 1}); !out.Delivered {
		t.Fatal("not delivered")
	}
	got, _ := w.svc.Get(ctx, "org-1", e.ID)
	if !got.Enabled || got.FailureStreak != 0 || got.FailingSince != nil {
		t.Errorf("after a success: %+v", got)
	}
}

// Outside development an endpoint on a private address is refused at
// each delivery (after DNS resolution), whatever it was when created; the
// recorded error does not repeat the URL (it may carry a token).
func TestDeliveryRefusesPrivateAddresses(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	e, _ := w.endpoint(t)
	ev := w.event(t, webhooks.AccountExpired)
	w.d.Client = netguard.Policy{}.Client(webhooks.AttemptTimeout)
	out, err := w.d.Attempt(ctx, webhooks.AttemptInput{EventID: ev.ID, EndpointID: e.ID, Attempt: 1})
	if err != nil || out.Delivered {
		t.Fatalf("attempt = %+v, %v", out, err)
	}
	if len(w.got) != 0 {
		t.Error("the private address was called")
	}
	list, _ := w.svc.Deliveries(ctx, "org-1", e.ID, 1, "")
	if len(list) != 1 || !strings.Contains(list[0].Error, "not a public address") || strings.Contains(list[0].Error, "receiver-secret") {
		t.Errorf("delivery %+v", list)
	}
}

// A receiver too slow to answer, or one that redirects, has failed the
// attempt: the event is not sent elsewhere, nor counted as delivered.
func TestSlowOrRedirectingReceiversFail(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
		status  int
		err     string
	}{
		{"slow", func(rw http.ResponseWriter, r *http.Request) {
			awaitGiveUp(r)
		}, 0, "no answer within 2s"},
		{"slow body", func(rw http.ResponseWriter, r *http.Request) {
			rw.WriteHeader(http.StatusOK)
			rw.(http.Flusher).Flush()
			awaitGiveUp(r)
		}, 200, "no answer within 2s"},
		{"redirect", func(rw http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/elsewhere" {
				rw.WriteHeader(http.StatusNoContent)
				return
			}
			http.Redirect(rw, r, "/elsewhere", http.StatusTemporaryRedirect)
		}, http.StatusTemporaryRedirect, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			// 2 s: an answer that is merely slow on a loaded machine is
			// not taken for a receiver that never answers.
			w.d.Timeout = 2 * time.Second
			e, _, err := w.svc.Create(ctx, "org-1", webhooks.Input{URL: &srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			ev := w.event(t, webhooks.PostFailed)
			out, err := w.d.Attempt(ctx, webhooks.AttemptInput{EventID: ev.ID, EndpointID: e.ID, Attempt: 1})
			if err != nil || out.Delivered {
				t.Fatalf("attempt = %+v, %v", out, err)
			}
			list, _ := w.svc.Deliveries(ctx, "org-1", e.ID, 1, "")
			if len(list) != 1 || list[0].StatusCode != tt.status || list[0].Error != tt.err || list[0].Success {
				t.Errorf("delivery %+v", list)
			}
		})
	}
}

// awaitGiveUp holds a receiver's answer until the sender gives up. The body
// is read first: only then does the server notice the client hanging up
// and end r's context. The minute is a backstop far past any Timeout.
func awaitGiveUp(r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(time.Minute):
	}
}

// After a rotation both secrets sign until the overlap ends; then the new
// one alone.
func TestRotationSignsWithBothSecrets(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	e, oldSecret := w.endpoint(t)
	rotated, newSecret, err := w.svc.RotateSecret(ctx, "org-1", e.ID)
	if err != nil || newSecret == oldSecret || rotated.PreviousSecretExpiresAt == nil {
		t.Fatalf("rotate = %+v, %v", rotated, err)
	}
	ev := w.event(t, webhooks.PostPublished)
	for _, tt := range []struct {
		after       time.Duration
		oldVerifies bool
	}{{time.Hour, true}, {webhooks.DefaultOverlap + time.Minute, false}} {
		w.now = w.now.Add(tt.after)
		if _, err := w.d.Attempt(ctx, webhooks.AttemptInput{EventID: ev.ID, EndpointID: e.ID, Attempt: 1}); err != nil {
			t.Fatal(err)
		}
		r, body := w.got[len(w.got)-1], w.bodies[len(w.bodies)-1]
		for i, s := range []string{newSecret, oldSecret} {
			wh, _ := standardwebhooks.NewWebhook(s)
			ok := wh.VerifyIgnoringTimestamp(body, r.Header) == nil
			if want := i == 0 || tt.oldVerifies; ok != want {
				t.Errorf("%s after rotation, secret %d verifies: %v, want %v", tt.after, i, ok, want)
			}
		}
	}
}

// Creating an endpoint checks its URL and events; outside development a
// URL on a loopback, private or link-local address is refused, by
// address or by what its name resolves to.
func TestCreateChecksTheEndpoint(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	prod := webhooks.NewService(w.store, nil, netguard.Policy{}, w.starter)
	for _, tt := range []struct {
		name, url string
		events    []string
		svc       *webhooks.Service
		code      string
	}{
		{"loopback", "https://127.0.0.1/hook", nil, prod, "url_not_allowed"},
		{"private", "https://10.1.2.3/hook", nil, prod, "url_not_allowed"},
		{"link-local", "https://[fe80::1]/hook", nil, prod, "url_not_allowed"},
		{"a name for loopback", "https://localhost/hook", nil, prod, "url_not_allowed"},
		{"plain http", "http://example.com/hook", nil, prod, "invalid_url"},
		{"credentials", "https://user:pw@example.com/hook", nil, prod, "invalid_url"},
		{"relative", "/hook", nil, w.svc, "invalid_url"},
		{"an unknown event", w.srv.URL, []string{"post.exploded"}, w.svc, "invalid_events"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := webhooks.Input{URL: &tt.url}
			if tt.events != nil {
				in.Events = &tt.events
			}
			_, _, err := tt.svc.Create(ctx, "org-1", in)
			var inv *webhooks.InvalidError
			if !errors.As(err, &inv) || inv.Code != tt.code {
				t.Errorf("err = %v, want %s", err, tt.code)
			}
			if err != nil && strings.Contains(err.Error(), "pw") {
				t.Errorf("the error repeats the credentials: %v", err)
			}
		})
	}
}
