// Package webhooks tells an organization's own servers what happened to
// its posts and accounts, instead of making them poll: endpoints an
// organization manages (Endpoint), the events (Event, one JSON body each,
// stored once so that every attempt sends the same bytes), their
// signatures per the Standard Webhooks specification (sign.go), and the
// rules of delivery: one attempt (Deliverer.Attempt), the retry schedule
// and when an endpoint that keeps failing is disabled (delivery.go). The
// delivery workflow (workflows.DeliverWebhook) only orchestrates them.
package webhooks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
)

// Event types. The post.* events carry the post and every account's
// result (as GET /posts/{id} answers them); account.* the account.
const (
	PostPublished          = "post.published"
	PostPartiallyPublished = "post.partially_published"
	PostFailed             = "post.failed"
	PostCancelled          = "post.cancelled"
	PostOutcomeUnknown     = "post.outcome_unknown"
	AccountExpired         = "account.expired"
	// AccountExpiring: a token nothing can refresh ends soon (a LinkedIn
	// member's lives 60 days): reconnect the account before it does.
	AccountExpiring = "account.expiring"
	// PostOverdue: the post's time passed by more than OVERDUE_AFTER
	// without a final state (posts.OverdueWatch); sent once.
	PostOverdue = "post.overdue"
	// PostUnpublished: an unpublish run (POST /posts/{id}/unpublish)
	// ended; each result's unpublish says unpublished or failed.
	PostUnpublished = "post.unpublished"
)

// EventTypes lists every type an endpoint may subscribe to, in the order
// the API documents them.
var EventTypes = []string{PostPublished, PostPartiallyPublished, PostFailed, PostCancelled, PostOutcomeUnknown, AccountExpired, AccountExpiring, PostOverdue, PostUnpublished}

// DisabledNotice is the type of the notice an endpoint carries once
// PostFlow disabled it after a long run of failures (Endpoint.Notice).
const DisabledNotice = "webhook.disabled"

// Endpoint is where an organization wants events sent.
type Endpoint struct {
	ID             string `json:"id"`
	OrganizationID string `json:"organizationId"`
	URL            string `json:"url"`
	Description    string `json:"description,omitempty"`
	// Events are the types sent; empty: every type.
	Events []string `json:"events"`
	// Enabled: false when disabled by the organization (PATCH) or by
	// PostFlow after a long run of failures (Notice says so).
	Enabled bool `json:"enabled"`
	// FailureStreak counts the attempts that failed in a row, since
	// FailingSince; 0 and nil after a success.
	FailureStreak int        `json:"failureStreak"`
	FailingSince  *time.Time `json:"failingSince,omitempty"`
	// Notice says why PostFlow disabled the endpoint (DisabledNotice);
	// cleared when it is enabled again.
	Notice *Notice `json:"notice,omitempty"`
	// PreviousSecretExpiresAt: until then, the secret before the last
	// rotation signs too (the header carries both signatures).
	PreviousSecretExpiresAt *time.Time `json:"previousSecretExpiresAt,omitempty"`
	CreatedAt               time.Time  `json:"createdAt"`
	UpdatedAt               time.Time  `json:"updatedAt"`

	// Secret and PreviousSecret are sealed (Sealer), never shown but once
	// in the clear: at creation and at rotation.
	Secret         string `json:"-"`
	PreviousSecret string `json:"-"`
}

// Notice is something PostFlow did to an endpoint that its owner should
// know of.
type Notice struct {
	Type   string    `json:"type"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// Wants reports whether the endpoint is enabled and subscribed to type t.
func (e *Endpoint) Wants(t string) bool {
	return e.Enabled && (len(e.Events) == 0 || slices.Contains(e.Events, t))
}

// Event is something that happened, as its receivers get it. Its ID is
// derived from what happened (EventID), so that an activity that emits it
// again after a retry makes the same event, and the webhook-id header
// stays the same across attempts: receivers de-duplicate on it.
type Event struct {
	ID             string
	OrganizationID string
	Type           string
	Timestamp      time.Time
	// Body is the JSON sent: {"type", "timestamp", "data"} (the Standard
	// Webhooks payload shape), made once by NewEvent.
	Body json.RawMessage
}

// NewEvent makes the event of type typ for orgID, at (UTC, millisecond
// precision), with data as its JSON "data". Its id is EventID(parts...).
func NewEvent(orgID, typ string, at time.Time, data any, parts ...string) (*Event, error) {
	at = at.UTC().Truncate(time.Millisecond)
	body, err := json.Marshal(struct {
		Type      string    `json:"type"`
		Timestamp time.Time `json:"timestamp"`
		Data      any       `json:"data"`
	}{typ, at, data})
	if err != nil {
		return nil, err
	}
	return &Event{ID: EventID(append([]string{orgID, typ}, parts...)...), OrganizationID: orgID, Type: typ, Timestamp: at, Body: body}, nil
}

// EventID is the id of the event that parts describe ("msg_" and 32 hex
// digits of their SHA-256): the same parts, the same id.
func EventID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return "msg_" + hex.EncodeToString(sum[:16])
}

// Sink takes events to deliver (Emitter). Emit is idempotent: the same
// event (same id) emitted twice is delivered once per endpoint. An error
// means the event is not kept: the caller retries, or fails to be retried.
type Sink interface {
	Emit(ctx context.Context, ev *Event) error
}

// Wanter is a Sink that tells beforehand whether an organization has an
// endpoint that wants events of a type, so that a caller can skip the
// reads an event's data needs when nobody listens (Emitter is one).
type Wanter interface {
	Wants(ctx context.Context, orgID, typ string) (bool, error)
}

// Delivery is one attempt to send an event to an endpoint, as recorded
// (GET /webhooks/{id}/deliveries). It holds no secret: the receiver's
// answer and PostFlow's error only.
type Delivery struct {
	ID         string    `json:"id"`
	EndpointID string    `json:"webhookId"`
	EventID    string    `json:"eventId"`
	EventType  string    `json:"eventType"`
	Attempt    int       `json:"attempt"`
	Redelivery bool      `json:"redelivery,omitempty"`
	At         time.Time `json:"at"`
	// Success: the endpoint answered 2xx.
	Success bool `json:"success"`
	// StatusCode is the endpoint's answer (0: none, see Error).
	StatusCode int `json:"statusCode,omitempty"`
	// DurationMs is from the request's start to the answer's end.
	DurationMs int64 `json:"durationMs"`
	// Error says why no answer counted (a timeout, a refused address).
	Error string `json:"error,omitempty"`
	// Response is the start of the endpoint's answer (up to 1 KiB).
	Response string `json:"response,omitempty"`
	// NextAttemptAt: when the next attempt is due; nil after the last.
	NextAttemptAt  *time.Time `json:"nextAttemptAt,omitempty"`
	OrganizationID string     `json:"-"`
}

// Errors a caller decides on.
var (
	ErrNotFound = errors.New("webhooks: not found")
	// ErrDisabled: the endpoint is disabled; enable it first.
	ErrDisabled = errors.New("webhooks: the endpoint is disabled")
	// ErrSecretRotated: the endpoint's secret changed between a
	// rotation's read and its write (another rotation won); the secret
	// this one made is not stored, and must not be handed out.
	ErrSecretRotated = errors.New("webhooks: the secret was rotated meanwhile")
	// ErrCreateContended: creates at once for an organization near
	// MaxEndpoints took the last places together and this one backed out,
	// though the organization is under the limit now: try again.
	ErrCreateContended = errors.New("webhooks: other creates took the last places at the same time")
)

// InvalidError is a request an endpoint cannot take: Code says which rule
// (invalid_url, url_not_allowed, invalid_events), Message in words.
type InvalidError struct {
	Code    string
	Message string
}

func (e *InvalidError) Error() string { return "webhooks: " + e.Code + ": " + e.Message }

// EndpointParts are the groups of an endpoint's fields an update writes.
type EndpointParts int

const (
	// PartSettings: URL, Description, Events.
	PartSettings EndpointParts = 1 << iota
	// PartState: Enabled, FailureStreak, FailingSince, Notice.
	PartState
	// PartSecrets: Secret, PreviousSecret, PreviousSecretExpiresAt.
	PartSecrets
)

// Store keeps endpoints, events and deliveries. Endpoints and deliveries
// are read by their _id, and listed by organization or endpoint.
type Store interface {
	NewID() string
	CreateEndpoint(ctx context.Context, e *Endpoint) error
	// Endpoint reads the endpoint by id alone (ErrNotFound).
	Endpoint(ctx context.Context, id string) (*Endpoint, error)
	Endpoints(ctx context.Context, orgID string) ([]Endpoint, error)
	// UpdateEndpoint writes e's fields of parts, and UpdatedAt, and no
	// others: a write of settings read before a delivery disabled the
	// endpoint leaves it disabled.
	UpdateEndpoint(ctx context.Context, e *Endpoint, parts EndpointParts) error
	// RotateSecret writes e's secrets (PartSecrets) and UpdatedAt if, in
	// one atomic step, the stored Secret is still from (sealed, as the
	// rotation read it). Errors: ErrSecretRotated, ErrNotFound.
	RotateSecret(ctx context.Context, e *Endpoint, from string) error
	DeleteEndpoint(ctx context.Context, id string) error
	// RecordOutcome adds a failure to the endpoint's streak (starting it
	// at `at`) or, on success, ends the streak; it returns the endpoint
	// as it is after the write.
	RecordOutcome(ctx context.Context, id string, success bool, at time.Time) (*Endpoint, error)
	// Disable disables the endpoint with notice n, if still enabled.
	Disable(ctx context.Context, id string, n Notice) error

	// SaveEvent stores ev, not dispatched, unless an event of its id is
	// stored (that one stands, dispatched or not); stored says which.
	SaveEvent(ctx context.Context, ev *Event) (stored bool, err error)
	// MarkDispatched records that every delivery of event id is started.
	MarkDispatched(ctx context.Context, id string, at time.Time) error
	// Undispatched lists up to limit events not dispatched whose
	// Timestamp is before `before`, oldest first.
	Undispatched(ctx context.Context, before time.Time, limit int) ([]Event, error)
	Event(ctx context.Context, id string) (*Event, error)

	SaveDelivery(ctx context.Context, d *Delivery) error
	Delivery(ctx context.Context, id string) (*Delivery, error)
	// Deliveries lists the endpoint's deliveries, newest first, older
	// than the delivery before when it is not "".
	Deliveries(ctx context.Context, endpointID string, limit int, before string) ([]Delivery, error)
}

// Sealer seals secrets at rest, bound to what they belong to
// (internal/tokencipher).
type Sealer interface {
	Seal(plaintext, binding string) (string, error)
	Open(sealed, binding string) (string, error)
}

// secretBinding ties a sealed secret to its endpoint and field.
func secretBinding(endpointID, field string) string { return "webhook/" + endpointID + "#" + field }
