package connections

import (
	"context"
	"errors"
	"fmt"
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
// same event. It fails when the event could not be stored.
func (s *Service) announceExpired(ctx context.Context, a *Account, since time.Time, code, reason string) error {
	if s.events == nil {
		return nil
	}
	ev, err := webhooks.NewEvent(a.OrganizationID, webhooks.AccountExpired, s.now(), ExpiredData{Account: a, Code: code, Reason: reason},
		a.ID, since.UTC().Format(time.RFC3339Nano))
	if err == nil {
		err = s.events.Emit(ctx, ev)
	}
	if err != nil {
		return fmt.Errorf("account %s: store its account.expired event: %w", a.ID, err)
	}
	return nil
}

// ReconnectBy is when the account stops working unless someone connects
// it again: its access token's expiry when nothing can refresh it (no
// refresh token nor credential, or refreshes says the network issues
// none), else its refresh token's expiry. Zero when there is no such time
// (a Bluesky app password makes sessions for as long as it is valid).
func (a *Account) ReconnectBy(refreshes bool) time.Time {
	if a.RefreshToken == "" && a.Credential == "" || !refreshes {
		return a.TokenExpiresAt
	}
	if a.Credential != "" {
		return time.Time{}
	}
	return a.RefreshTokenExpiresAt
}

// ExpiringAccounts lists the active accounts with tokens of their own
// (not pages, which follow their member) whose access or refresh token
// expires before a time, and keeps which deadline each was announced for
// (the account store).
type ExpiringAccounts interface {
	ExpiringBefore(ctx context.Context, before time.Time) ([]Account, error)
	// ExpiringAnnounced is the deadline last announced for account id
	// (zero: none); MarkExpiringAnnounced records one.
	ExpiringAnnounced(ctx context.Context, id string) (time.Time, error)
	MarkExpiringAnnounced(ctx context.Context, id string, reconnectBy time.Time) error
}

// ExpiringData is the "data" of an account.expiring webhook event.
type ExpiringData struct {
	Account *Account `json:"account"`
	// ReconnectBy: after it, the account cannot publish until connected
	// again.
	ReconnectBy time.Time `json:"reconnectBy"`
}

// AnnounceExpiring emits account.expiring for every active account of
// accounts that must be reconnected within `within` of now (ReconnectBy),
// not yet past it and not yet announced for that time: the store keeps
// the time each was announced for (not Temporal's or the event store's
// memory, which retention ends while the scans go on for days). An
// account whose organization has no endpoint wanting the event (when the
// sink can tell: webhooks.Wanter) is not marked, so an endpoint added
// later in the window still hears of it. The event's id is derived from
// the account and that time, so a scan that stops between emitting and
// marking repeats the same event, delivered once; a reconnect gives a new
// time and, when it too comes near, a new event. It returns how many
// accounts it announced.
func (s *Service) AnnounceExpiring(ctx context.Context, accounts ExpiringAccounts, within time.Duration) (int, error) {
	if s.events == nil {
		return 0, nil
	}
	now := s.now()
	list, err := accounts.ExpiringBefore(ctx, now.Add(within))
	if err != nil {
		return 0, fmt.Errorf("expiring accounts: %w", err)
	}
	n := 0
	var errs []error
	for i := range list {
		a := &list[i]
		p, ok := s.providers.Get(a.Platform)
		if !ok || a.Status != StatusActive || a.TokensFrom != "" {
			continue
		}
		by := a.ReconnectBy(p.Rules().RefreshTokens)
		if by.IsZero() || !by.After(now) || by.After(now.Add(within)) {
			continue
		}
		if announced, err := accounts.ExpiringAnnounced(ctx, a.ID); err != nil || announced.Equal(by) {
			if err != nil {
				errs = append(errs, fmt.Errorf("account %s: %w", a.ID, err))
			}
			continue
		}
		if w, ok := s.events.(webhooks.Wanter); ok {
			if want, err := w.Wants(ctx, a.OrganizationID, webhooks.AccountExpiring); err != nil || !want {
				if err != nil {
					errs = append(errs, fmt.Errorf("account %s: %w", a.ID, err))
				}
				continue
			}
		}
		ev, err := webhooks.NewEvent(a.OrganizationID, webhooks.AccountExpiring, now, ExpiringData{Account: a, ReconnectBy: by.UTC()},
			a.ID, by.UTC().Format(time.RFC3339Nano))
		if err == nil {
			err = s.events.Emit(ctx, ev)
		}
		if err == nil {
			err = accounts.MarkExpiringAnnounced(ctx, a.ID, by)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("account %s: %w", a.ID, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
