package connections

import (
	"context"
	"time"

	"github.com/postflow/postflow/webhooks"
)

// ExpiredData is the "data" of an account.expired webhook event: the
// account (no token: its secrets are never JSON) and what the network
// answered.
type ExpiredData struct {
	Account *Account `json:"account"`
	// Code and Reason are the network's refusal (invalid_grant,
	// TOKEN_EXPIRED, ...), as the account's failed results carry them.
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// announceExpired emits account.expired for a, which was active as last
// changed at since: the event's id is derived from the account and that
// time, so a retry that expires the same active account again makes the
// same event. A failure is logged: the account is marked, and its
// failed results say so too.
func (s *Service) announceExpired(ctx context.Context, a *Account, since time.Time, code, reason string) {
	if s.events == nil {
		return
	}
	ev, err := webhooks.NewEvent(a.OrganizationID, webhooks.AccountExpired, s.now(), ExpiredData{Account: a, Code: code, Reason: reason},
		a.ID, since.UTC().Format(time.RFC3339Nano))
	if err == nil {
		err = s.events.Emit(ctx, ev)
	}
	if err != nil {
		s.logger.ErrorContext(ctx, "could not announce the expired account to its webhooks", "account_id", a.ID, "error", err)
	}
}
