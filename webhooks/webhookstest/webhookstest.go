// Package webhookstest helps tests of what emits webhook events and
// starts their deliveries.
package webhookstest

import (
	"context"
	"errors"
	"sync"

	"github.com/postflow/postflow/webhooks"
)

// Recorder is a webhooks.Sink that keeps every event emitted to it, in
// order; safe for concurrent use.
type Recorder struct {
	mu     sync.Mutex
	events []*webhooks.Event
	fail   error
}

// ErrDown is what Emit answers while the recorder is down (SetDown): as
// webhooks.Emitter does when it cannot store an event.
var ErrDown = errors.New("webhookstest: emit: the event store is unreachable")

// Emit keeps ev, or, while the recorder is down, refuses it with ErrDown.
func (r *Recorder) Emit(_ context.Context, ev *webhooks.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.events = append(r.events, ev)
	return nil
}

// SetDown makes Emit refuse every event (true) or keep them again.
func (r *Recorder) SetDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = nil
	if down {
		r.fail = ErrDown
	}
}

// Events returns the events kept, oldest first.
func (r *Recorder) Events() []*webhooks.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*webhooks.Event(nil), r.events...)
}

// OfType returns the events of type typ kept, oldest first.
func (r *Recorder) OfType(typ string) []*webhooks.Event {
	var out []*webhooks.Event
	for _, ev := range r.Events() {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// Reset forgets the events kept.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = nil
}

// Starter is a webhooks.Starter that starts nothing and keeps what it was
// asked, in order: "<event>/<endpoint>" for a delivery, "again:" before
// it for a redelivery; safe for concurrent use.
type Starter struct {
	mu      sync.Mutex
	started []string
}

// StartDelivery keeps eventID/endpointID.
func (s *Starter) StartDelivery(_ context.Context, eventID, endpointID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started = append(s.started, eventID+"/"+endpointID)
	return nil
}

// Redeliver keeps again:eventID/endpointID and answers the redelivery's
// workflow id, as Temporal's starter does.
func (s *Starter) Redeliver(_ context.Context, eventID, endpointID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started = append(s.started, "again:"+eventID+"/"+endpointID)
	return "webhook-redelivery:" + eventID + ":" + endpointID, nil
}

// Started returns what was started, oldest first.
func (s *Starter) Started() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.started...)
}
