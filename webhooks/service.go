package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/postflow/postflow/internal/echo"
	"github.com/postflow/postflow/internal/netguard"
)

// Starter starts deliveries (the DeliverWebhook workflow).
type Starter interface {
	// StartDelivery starts the delivery of an event to an endpoint, once:
	// its run's id is derived from both, and a start for a pair already
	// started, running or ended, is no error and sends nothing again.
	StartDelivery(ctx context.Context, eventID, endpointID string) error
	// Redeliver starts a delivery of an event already sent, on request;
	// while one runs for the pair, it returns that one. It returns the
	// run's workflow id.
	Redeliver(ctx context.Context, eventID, endpointID string) (string, error)
}

// Service is what the API does with endpoints.
type Service struct {
	store   Store
	sealer  Sealer
	policy  netguard.Policy
	starter Starter
	// Overlap is how long the secret before a rotation still signs.
	Overlap time.Duration
	now     func() time.Time
}

// DefaultOverlap: a day for receivers to deploy the new secret.
const DefaultOverlap = 24 * time.Hour

// NewService wires a Service. policy decides which URLs are accepted
// (AllowLocal: development only).
func NewService(store Store, sealer Sealer, policy netguard.Policy, starter Starter) *Service {
	return &Service{store: store, sealer: sealer, policy: policy, starter: starter, Overlap: DefaultOverlap, now: time.Now}
}

// WithClock returns a copy of s that reads time from now; for tests.
func (s *Service) WithClock(now func() time.Time) *Service {
	c := *s
	c.now = now
	return &c
}

// Input creates or edits an endpoint; nil fields are left as they are.
type Input struct {
	URL         *string   `json:"url"`
	Events      *[]string `json:"events"`
	Description *string   `json:"description"`
	// Enabled: true enables a disabled endpoint again (and clears its
	// notice and streak); false disables it.
	Enabled *bool `json:"enabled"`
}

// MaxEndpoints bounds an organization's endpoints.
const MaxEndpoints = 20

// tooMany is the refusal of an endpoint over MaxEndpoints.
var tooMany = &InvalidError{"too_many_webhooks", fmt.Sprintf("An organization has at most %d webhooks.", MaxEndpoints)}

// Create adds an endpoint for orgID and returns it with its signing
// secret, in the clear this once. The URL must be https on a public
// address (checked after DNS resolution) unless the policy allows local
// servers (development). Over MaxEndpoints it is an InvalidError,
// too_many_webhooks.
func (s *Service) Create(ctx context.Context, orgID string, in Input) (*Endpoint, string, error) {
	if in.URL == nil {
		return nil, "", &InvalidError{"invalid_url", "url is required."}
	}
	existing, err := s.store.Endpoints(ctx, orgID)
	if err != nil {
		return nil, "", err
	}
	if len(existing) >= MaxEndpoints {
		return nil, "", tooMany
	}
	now := s.now().UTC()
	e := &Endpoint{ID: s.store.NewID(), OrganizationID: orgID, Enabled: true, Events: []string{}, CreatedAt: now, UpdatedAt: now}
	if err := s.apply(ctx, e, in); err != nil {
		return nil, "", err
	}
	secret, err := NewSecret()
	if err != nil {
		return nil, "", err
	}
	if e.Secret, err = s.sealer.Seal(secret, secretBinding(e.ID, "secret")); err != nil {
		return nil, "", fmt.Errorf("webhooks: seal the secret: %w", err)
	}
	if err := s.store.CreateEndpoint(ctx, e); err != nil {
		return nil, "", err
	}
	if err := s.holdLimit(ctx, orgID, e.ID); err != nil {
		return nil, "", err
	}
	return e, secret, nil
}

// holdLimit counts orgID's endpoints again once endpoint id is stored,
// and removes it if they are over MaxEndpoints: creates at once each
// passed the count before their insert (count then insert), and an
// organization could pass the limit. Each create counts after its own
// insert, so the last to count sees every endpoint that stays; creates
// racing for the last place may all back out, never all stay. One that
// backed out counts once more: still at the limit, too_many_webhooks;
// under it (its rivals backed out too), ErrCreateContended, which the
// client retries.
func (s *Service) holdLimit(ctx context.Context, orgID, id string) error {
	all, err := s.store.Endpoints(ctx, orgID)
	if err == nil && len(all) <= MaxEndpoints {
		return nil
	}
	// Removed whatever the request's fate: its secret is never handed out.
	if derr := s.store.DeleteEndpoint(context.WithoutCancel(ctx), id); derr != nil && !errors.Is(derr, ErrNotFound) {
		return errors.Join(err, fmt.Errorf("webhooks: remove endpoint %s over the limit: %w", id, derr))
	}
	if err != nil {
		return fmt.Errorf("webhooks: count the endpoints of the organization: %w", err)
	}
	if now, err := s.store.Endpoints(ctx, orgID); err == nil && len(now) < MaxEndpoints {
		return ErrCreateContended
	}
	return tooMany
}

// apply checks in and applies it to e.
func (s *Service) apply(ctx context.Context, e *Endpoint, in Input) error {
	if in.URL != nil {
		u, err := s.checkURL(ctx, *in.URL)
		if err != nil {
			return err
		}
		e.URL = u
	}
	if in.Events != nil {
		evs := []string{}
		for _, t := range *in.Events {
			if !slices.Contains(EventTypes, t) {
				return &InvalidError{"invalid_events", fmt.Sprintf("%s is not an event type; the types are %s.", echo.Quote(t), strings.Join(EventTypes, ", "))}
			}
			if !slices.Contains(evs, t) {
				evs = append(evs, t)
			}
		}
		e.Events = evs
	}
	if in.Description != nil {
		if len(*in.Description) > 500 {
			return &InvalidError{"invalid_description", "description is at most 500 bytes."}
		}
		e.Description = *in.Description
	}
	if in.Enabled != nil {
		if *in.Enabled && !e.Enabled {
			e.Notice, e.FailureStreak, e.FailingSince = nil, 0, nil
		}
		e.Enabled = *in.Enabled
	}
	return nil
}

// checkURL reads an endpoint's URL: absolute, http(s), no credentials, at
// most 2,000 bytes; outside development https and a public address (a
// host name's every address, resolved now; each delivery checks again at
// its dial, so a name turned inward later is refused then).
func (s *Service) checkURL(ctx context.Context, raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Hostname() == "" || len(raw) > 2000:
		return "", &InvalidError{"invalid_url", "url must be an absolute http(s) URL of at most 2,000 bytes."}
	case u.User != nil:
		return "", &InvalidError{"invalid_url", "url must carry no credentials; verify PostFlow by its signature."}
	case u.Scheme != "https" && !(s.policy.AllowLocal && u.Scheme == "http"):
		return "", &InvalidError{"invalid_url", "url must use https."}
	}
	u.Fragment = ""
	if !s.policy.AllowLocal {
		host := u.Hostname()
		if a, err := netip.ParseAddr(host); err == nil {
			if !netguard.Public(a) {
				return "", &InvalidError{"url_not_allowed", "url must be on a public address, not a loopback, private or link-local one."}
			}
		} else if err := s.policy.Check(ctx, host); err != nil {
			if errors.Is(err, netguard.ErrForbidden) {
				return "", &InvalidError{"url_not_allowed", "url's host resolves to an address that is not public (loopback, private or link-local)."}
			}
			return "", &InvalidError{"invalid_url", "url's host could not be resolved."}
		}
	}
	return u.String(), nil
}

// List returns orgID's endpoints.
func (s *Service) List(ctx context.Context, orgID string) ([]Endpoint, error) {
	return s.store.Endpoints(ctx, orgID)
}

// Get returns orgID's endpoint id (ErrNotFound if it is another's).
func (s *Service) Get(ctx context.Context, orgID, id string) (*Endpoint, error) {
	e, err := s.store.Endpoint(ctx, id)
	if err != nil {
		return nil, err
	}
	if e.OrganizationID != orgID {
		return nil, ErrNotFound
	}
	return e, nil
}

// Update edits orgID's endpoint id.
func (s *Service) Update(ctx context.Context, orgID, id string, in Input) (*Endpoint, error) {
	e, err := s.Get(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	if err := s.apply(ctx, e, in); err != nil {
		return nil, err
	}
	e.UpdatedAt = s.now().UTC()
	// The state only when asked: a delivery may disable the endpoint
	// between the read above and this write.
	parts := PartSettings
	if in.Enabled != nil {
		parts |= PartState
	}
	if err := s.store.UpdateEndpoint(ctx, e, parts); err != nil {
		return nil, err
	}
	return e, nil
}

// Delete removes orgID's endpoint id; deliveries under way end at their
// next attempt.
func (s *Service) Delete(ctx context.Context, orgID, id string) error {
	if _, err := s.Get(ctx, orgID, id); err != nil {
		return err
	}
	return s.store.DeleteEndpoint(ctx, id)
}

// RotateSecret gives the endpoint a new secret, returned in the clear
// this once; the one before signs too for s.Overlap. ErrSecretRotated:
// another rotation stored its secret between this one's read and write;
// this one's is not stored, and not returned.
func (s *Service) RotateSecret(ctx context.Context, orgID, id string) (*Endpoint, string, error) {
	e, err := s.Get(ctx, orgID, id)
	if err != nil {
		return nil, "", err
	}
	from := e.Secret
	old, err := s.sealer.Open(e.Secret, secretBinding(e.ID, "secret"))
	if err != nil {
		return nil, "", fmt.Errorf("webhook %s: open its secret: %w", e.ID, err)
	}
	secret, err := NewSecret()
	if err != nil {
		return nil, "", err
	}
	if e.Secret, err = s.sealer.Seal(secret, secretBinding(e.ID, "secret")); err != nil {
		return nil, "", fmt.Errorf("webhooks: seal the secret: %w", err)
	}
	if e.PreviousSecret, err = s.sealer.Seal(old, secretBinding(e.ID, "previousSecret")); err != nil {
		return nil, "", fmt.Errorf("webhooks: seal the previous secret: %w", err)
	}
	now := s.now().UTC()
	until := now.Add(s.Overlap)
	e.PreviousSecretExpiresAt, e.UpdatedAt = &until, now
	// Written only over the secret read: two rotations at once would
	// each return a secret, and only the last write's would sign.
	if err := s.store.RotateSecret(ctx, e, from); err != nil {
		return nil, "", err
	}
	return e, secret, nil
}

// Deliveries lists the attempts to deliver to orgID's endpoint id, newest
// first.
func (s *Service) Deliveries(ctx context.Context, orgID, id string, limit int, before string) ([]Delivery, error) {
	if _, err := s.Get(ctx, orgID, id); err != nil {
		return nil, err
	}
	return s.store.Deliveries(ctx, id, limit, before)
}

// Redeliver sends the event of delivery deliveryID to endpoint id again
// (its whole retry schedule), with the same webhook-id; ErrDisabled while
// the endpoint is disabled, ErrNotFound once the delivery or its event
// is no longer kept (Pruner). It returns the run's workflow id.
func (s *Service) Redeliver(ctx context.Context, orgID, id, deliveryID string) (string, error) {
	e, err := s.Get(ctx, orgID, id)
	if err != nil {
		return "", err
	}
	d, err := s.store.Delivery(ctx, deliveryID)
	if err != nil {
		return "", err
	}
	if d.EndpointID != e.ID {
		return "", ErrNotFound
	}
	if !e.Enabled {
		return "", ErrDisabled
	}
	// A delivery made after its event can outlive it by retention
	// (Pruner): then there is nothing to send.
	if _, err := s.store.Event(ctx, d.EventID); err != nil {
		return "", err
	}
	return s.starter.Redeliver(ctx, d.EventID, e.ID)
}

// Emitter stores events and starts their delivery to every endpoint of
// the organization that wants them. The stored event is an outbox entry:
// it is marked dispatched once every delivery run is started, and Sweep
// starts those of events left undispatched (Temporal down at Emit).
type Emitter struct {
	Store   Store
	Starter Starter
	Logger  *slog.Logger
	// Now is the clock (time.Now when nil); for tests.
	Now func() time.Time
}

var _ Sink = (*Emitter)(nil)

// SweepGrace is how long an undispatched event is left to its emitter
// before Sweep dispatches it: longer than an Emit takes, so the sweeper
// rarely starts what the emitter is starting (which would be harmless:
// a start is idempotent).
const SweepGrace = 30 * time.Second

// DispatchTimeout bounds the starts Emit makes after storing an event.
const DispatchTimeout = 5 * time.Second

// SweepEvery is how often the worker sweeps (internal/app).
const SweepEvery = time.Minute

func (e *Emitter) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Emit stores ev (once: an event of the same id is kept as first stored,
// so every attempt sends the same bytes) and starts one delivery per
// endpoint that wants it. An error means ev is not stored (the store
// failed): the caller should retry, and an activity fails so that
// Temporal does. Once ev is stored, a delivery that cannot start is no
// error: the event stays undispatched and Sweep starts it later.
//
// An event of ev's id already stored is not dispatched again: it was, or
// the sweeper will. Starting it again would lean on Temporal's refusal of
// a second run of the same id, which lasts only as long as the
// namespace's retention of the first: account.expiring is emitted by
// every scan for days (ACCOUNT_EXPIRING_DAYS), so it would be sent again.
func (e *Emitter) Emit(ctx context.Context, ev *Event) error {
	wanted, err := e.wanted(ctx, ev)
	if err != nil || len(wanted) == 0 {
		return err
	}
	stored, err := e.Store.SaveEvent(ctx, ev)
	if err != nil {
		return fmt.Errorf("emit %s %s: %w", ev.Type, ev.ID, err)
	}
	if !stored {
		return nil
	}
	// Bounded: a Temporal that hangs must not use up the caller's time
	// (FinishPost has 10 s) once the event is safe; the sweeper goes on.
	dctx, cancel := context.WithTimeout(ctx, DispatchTimeout)
	defer cancel()
	if err := e.dispatch(dctx, ev, wanted); err != nil && e.Logger != nil {
		e.Logger.WarnContext(ctx, "webhook event stored, its delivery starts later (sweeper)", "event_id", ev.ID, "type", ev.Type, "error", err)
	}
	return nil
}

// Wants reports whether an endpoint of orgID wants events of type typ
// (Wanter): Emit would store and send such an event.
func (e *Emitter) Wants(ctx context.Context, orgID, typ string) (bool, error) {
	wanted, err := e.wanted(ctx, &Event{OrganizationID: orgID, Type: typ})
	return len(wanted) > 0, err
}

// wanted lists the endpoints of ev's organization that want it.
func (e *Emitter) wanted(ctx context.Context, ev *Event) ([]Endpoint, error) {
	eps, err := e.Store.Endpoints(ctx, ev.OrganizationID)
	if err != nil {
		return nil, fmt.Errorf("emit %s %s: %w", ev.Type, ev.ID, err)
	}
	var wanted []Endpoint
	for _, ep := range eps {
		if ep.Wants(ev.Type) {
			wanted = append(wanted, ep)
		}
	}
	return wanted, nil
}

// dispatch starts ev's delivery to each endpoint of wanted and, when all
// started, marks ev dispatched. A start already made (by the emitter or
// another sweeper) is no error and sends nothing again.
func (e *Emitter) dispatch(ctx context.Context, ev *Event, wanted []Endpoint) error {
	var errs []error
	for _, ep := range wanted {
		if err := e.Starter.StartDelivery(ctx, ev.ID, ep.ID); err != nil {
			errs = append(errs, fmt.Errorf("emit %s %s to webhook %s: %w", ev.Type, ev.ID, ep.ID, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return e.Store.MarkDispatched(ctx, ev.ID, e.now().UTC())
}

// SweepBatch bounds the events one Sweep dispatches.
const SweepBatch = 500

// Sweep starts the deliveries of events stored at least SweepGrace ago
// and not dispatched (their emitter could not start them), to the
// endpoints that want them now, and marks them dispatched. It returns how
// many it dispatched; errors are joined, one per event, and the events
// they concern are tried again at the next sweep.
func (e *Emitter) Sweep(ctx context.Context) (int, error) {
	evs, err := e.Store.Undispatched(ctx, e.now().Add(-SweepGrace), SweepBatch)
	if err != nil {
		return 0, fmt.Errorf("sweep webhook events: %w", err)
	}
	n := 0
	var errs []error
	for i := range evs {
		ev := &evs[i]
		wanted, err := e.wanted(ctx, ev)
		if err == nil {
			// No endpoint wants it any more: nothing to start.
			err = e.dispatch(ctx, ev, wanted)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// RunSweeper sweeps every interval until ctx is done, logging what it
// could not dispatch at ERROR.
func (e *Emitter) RunSweeper(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := e.Sweep(ctx)
		if err != nil && ctx.Err() == nil && e.Logger != nil {
			e.Logger.ErrorContext(ctx, "could not dispatch every stored webhook event", "dispatched", n, "error", err)
		} else if n > 0 && e.Logger != nil {
			e.Logger.InfoContext(ctx, "dispatched stored webhook events", "dispatched", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
