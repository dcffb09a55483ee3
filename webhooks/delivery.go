package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"
)

// RetrySchedule is the wait before each attempt after the first: the
// schedule the Standard Webhooks guidance and Svix use, 8 attempts over
// about 27 hours. DeliverWebhook's commands follow it: a change goes
// through workflow.GetVersion.
var RetrySchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// Limits of one attempt: a receiver should answer at once and do its work
// later, so a slow one is a failed one; its answer is read up to
// MaxResponseBytes (the rest is not read) and kept up to KeptResponseBytes.
const (
	AttemptTimeout    = 10 * time.Second
	MaxResponseBytes  = 64 << 10
	KeptResponseBytes = 1 << 10
)

// DisablePolicy says when an endpoint that keeps failing is disabled: its
// failures in a row number at least MinFailures and span at least After.
// Both, so that neither a burst of events during a short outage nor one
// slow failure a day disables it. The defaults disable an endpoint that
// failed every attempt of one event's whole schedule.
type DisablePolicy struct {
	After       time.Duration
	MinFailures int
}

// DefaultDisablePolicy: a day of failures, at least 8 in a row.
var DefaultDisablePolicy = DisablePolicy{After: 24 * time.Hour, MinFailures: 8}

// disables reports whether e, as it is after a failure at now, is to be
// disabled.
func (p DisablePolicy) disables(e *Endpoint, now time.Time) bool {
	return e.FailingSince != nil && e.FailureStreak >= p.MinFailures && now.Sub(*e.FailingSince) >= p.After
}

// AttemptInput names one attempt; ids and numbers only, as it is kept in
// Temporal's history.
type AttemptInput struct {
	EventID    string
	EndpointID string
	// Attempt counts from 1.
	Attempt    int
	Redelivery bool `json:",omitempty"`
	// NextAttemptIn is the wait before the next attempt if this one
	// fails; 0 if it is the last.
	NextAttemptIn time.Duration `json:",omitempty"`
}

// AttemptOutcome is how an attempt ended.
type AttemptOutcome struct {
	// Delivered: the endpoint answered 2xx.
	Delivered bool
	// Stop: there is nothing more to try: the endpoint is gone or
	// disabled (now, or by this failure), or the event is gone.
	Stop       bool
	StatusCode int `json:",omitempty"`
}

// Deliverer makes attempts.
type Deliverer struct {
	Store  Store
	Sealer Sealer
	// Client sends the requests; it must refuse addresses that are not
	// public outside development (netguard.Policy.Client), checked at
	// every dial, after DNS resolution. Its timeout bounds an attempt.
	Client *http.Client
	// Timeout bounds an attempt, from the request to the answer's end;
	// 0: AttemptTimeout.
	Timeout time.Duration
	Disable DisablePolicy
	Logger  *slog.Logger
	Now     func() time.Time
}

func (d *Deliverer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Attempt sends the event to the endpoint once and records the attempt
// (a Delivery) and its effect on the endpoint's failure streak, disabling
// the endpoint per d.Disable. An error is PostFlow's own (its store): the
// attempt may be made again. The endpoint's URL and secrets appear in no
// error and no log: a URL often carries a receiver's token.
func (d *Deliverer) Attempt(ctx context.Context, in AttemptInput) (*AttemptOutcome, error) {
	ep, err := d.Store.Endpoint(ctx, in.EndpointID)
	if errors.Is(err, ErrNotFound) {
		return &AttemptOutcome{Stop: true}, nil
	}
	if err != nil {
		return nil, err
	}
	if !ep.Enabled {
		return &AttemptOutcome{Stop: true}, nil
	}
	ev, err := d.Store.Event(ctx, in.EventID)
	if errors.Is(err, ErrNotFound) {
		return &AttemptOutcome{Stop: true}, nil
	}
	if err != nil {
		return nil, err
	}
	secrets, err := d.secrets(ep)
	if err != nil {
		return nil, err
	}
	start := d.now()
	rec := &Delivery{ID: d.Store.NewID(), EndpointID: ep.ID, OrganizationID: ep.OrganizationID, EventID: ev.ID, EventType: ev.Type,
		Attempt: in.Attempt, Redelivery: in.Redelivery, At: start.UTC()}
	status, response, sendErr := d.send(ctx, ep.URL, secrets, ev, start)
	rec.DurationMs = d.now().Sub(start).Milliseconds()
	rec.StatusCode, rec.Response = status, response
	rec.Success = sendErr == nil && status >= 200 && status < 300
	if sendErr != nil {
		rec.Error = sendErr.Error()
	}
	if !rec.Success && in.NextAttemptIn > 0 {
		next := start.Add(in.NextAttemptIn).UTC()
		rec.NextAttemptAt = &next
	}
	if err := d.Store.SaveDelivery(ctx, rec); err != nil {
		return nil, err
	}
	if !rec.Success && d.Logger != nil {
		// The receiver's failure, not PostFlow's: a warning an operator
		// can find, with what GET .../deliveries says (never the URL).
		d.Logger.WarnContext(ctx, "webhook delivery attempt failed", "webhook_id", ep.ID, "organization_id", ep.OrganizationID,
			"event_id", ev.ID, "event_type", ev.Type, "attempt", in.Attempt, "failure", rec.failure(), "next_attempt_at", rec.NextAttemptAt)
	}
	out := &AttemptOutcome{Delivered: rec.Success, StatusCode: status}
	after, err := d.Store.RecordOutcome(ctx, ep.ID, rec.Success, start.UTC())
	if errors.Is(err, ErrNotFound) {
		return &AttemptOutcome{Delivered: rec.Success, Stop: true, StatusCode: status}, nil
	}
	if err != nil {
		return nil, err
	}
	if !rec.Success && d.Disable.MinFailures > 0 && d.Disable.disables(after, start) {
		n := Notice{Type: DisabledNotice, At: start.UTC(), Reason: fmt.Sprintf(
			"%d deliveries in a row failed since %s; the last: %s. Fix the endpoint, then PATCH it with \"enabled\": true and redeliver what it missed.",
			after.FailureStreak, after.FailingSince.UTC().Format(time.RFC3339), rec.failure())}
		if err := d.Store.Disable(ctx, ep.ID, n); err != nil {
			return nil, err
		}
		if d.Logger != nil {
			d.Logger.WarnContext(ctx, "webhook endpoint disabled after a long run of failures", "webhook_id", ep.ID,
				"organization_id", ep.OrganizationID, "failures", after.FailureStreak)
		}
		out.Stop = true
	}
	return out, nil
}

// failure says in a few words how the attempt failed.
func (d *Delivery) failure() string {
	if d.Error != "" {
		return d.Error
	}
	return fmt.Sprintf("HTTP %d", d.StatusCode)
}

// secrets opens the endpoint's signing secrets: the current one, and the
// one before while its overlap lasts.
func (d *Deliverer) secrets(ep *Endpoint) ([]string, error) {
	cur, err := d.Sealer.Open(ep.Secret, secretBinding(ep.ID, "secret"))
	if err != nil {
		return nil, fmt.Errorf("webhook %s: open its secret: %w", ep.ID, err)
	}
	out := []string{cur}
	if ep.PreviousSecret != "" && ep.PreviousSecretExpiresAt != nil && d.now().Before(*ep.PreviousSecretExpiresAt) {
		prev, err := d.Sealer.Open(ep.PreviousSecret, secretBinding(ep.ID, "previousSecret"))
		if err != nil {
			return nil, fmt.Errorf("webhook %s: open its previous secret: %w", ep.ID, err)
		}
		out = append(out, prev)
	}
	return out, nil
}

// send posts the event, signed at `at`, and returns the answer's status
// and its start. The error says why there was no answer, without the URL.
func (d *Deliverer) send(ctx context.Context, target string, secrets []string, ev *Event, at time.Time) (int, string, error) {
	h, err := Sign(secrets, ev.ID, at, ev.Body)
	if err != nil {
		return 0, "", err
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = AttemptTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(ev.Body))
	if err != nil {
		return 0, "", errors.New("the endpoint's URL cannot be requested")
	}
	req.Header = h
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "PostFlow-Webhooks/1")
	// A redirect is an answer, not an address to send the event to: a
	// POST followed as a GET would lose it, and the endpoint is the
	// organization's to name.
	client := *d.Client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", sendError(ctx, err, timeout)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	if err != nil {
		// The answer's status counts only with the whole (capped) answer
		// within the time.
		return resp.StatusCode, excerpt(body), sendError(ctx, err, timeout)
	}
	return resp.StatusCode, excerpt(body), nil
}

// sendError is err without the URL that *url.Error repeats.
func sendError(ctx context.Context, err error, timeout time.Duration) error {
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("no answer within %s", timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// excerpt is the start of an answer, as valid UTF-8.
func excerpt(b []byte) string {
	if len(b) > KeptResponseBytes {
		b = b[:KeptResponseBytes]
	}
	return string(bytes.ToValidUTF8(b, []byte(string(utf8.RuneError))))
}
