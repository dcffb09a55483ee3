package connections

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/postflow/postflow/providers"
)

// RefreshMargin: a token that expires within it is refreshed before use.
const RefreshMargin = 5 * time.Minute

const (
	leaseTTL  = 30 * time.Second       // longer than a token call may take
	leaseWait = 200 * time.Millisecond // between looks at someone else's lease
)

// ValidAccessToken returns a usable access token for the account and the
// account itself: getValidAccessToken of the design. A token that expires
// within RefreshMargin is refreshed first, and the new tokens are sealed
// and stored. Two callers never spend one refresh token: the refresh runs
// under a lease in the store, and whoever waits on it reads the result.
//
// A refresh the platform refuses (invalid_grant), or an expired token with
// no refresh token, marks the account expired and returns a
// *providers.Error of KindAuth: the publish flow must not retry it.
//
// For a page account (TokensFrom set) it is the member's token, refreshed
// under the member's lease, so one refresh serves the member and all its
// pages; a page that is not active itself is refused. It returns the page
// account, whose PlatformUserID is the author to post as. Reads: the
// account by _id, and for a page the member by _id.
func (s *Service) ValidAccessToken(ctx context.Context, accountID string) (string, *Account, error) {
	return s.validAccessToken(ctx, accountID, "")
}

// RenewAccessToken is ValidAccessToken for a token the network refused
// before its time (a Bluesky session ended early: providers'
// KindSessionExpired): it refreshes unless someone has stored another
// token since, which it returns.
func (s *Service) RenewAccessToken(ctx context.Context, accountID, refused string) (string, *Account, error) {
	return s.validAccessToken(ctx, accountID, refused)
}

func (s *Service) validAccessToken(ctx context.Context, accountID, refused string) (string, *Account, error) {
	a, err := s.store.GetByID(ctx, accountID)
	if err != nil {
		return "", nil, err
	}
	if a.TokensFrom == "" {
		return s.ownAccessToken(ctx, a, refused)
	}
	if err := usable(a); err != nil {
		return "", a, err
	}
	member, err := s.store.GetByID(ctx, a.TokensFrom)
	if errors.Is(err, ErrNotFound) {
		// Not expected (disconnecting a member deletes its pages), but a
		// page without its member can never post again.
		return "", a, s.expire(ctx, a, "MEMBER_DISCONNECTED", "the member account whose tokens this page used is gone; add the page again from a member")
	}
	if err != nil {
		return "", a, err
	}
	tok, _, err := s.ownAccessToken(ctx, member, refused)
	if providers.KindOf(err) == providers.KindAuth && a.Status == StatusActive {
		// The member expired, now (expire marked its pages too) or
		// before pages followed their member: this page cannot post.
		if serr := s.store.SetStatus(context.WithoutCancel(ctx), a.ID, StatusExpired); serr != nil {
			return "", a, fmt.Errorf("account %s: mark expired: %w", a.ID, serr)
		}
		a.Status = StatusExpired
	}
	return tok, a, err
}

// usable refuses an account that is not active.
func usable(a *Account) error {
	if a.Status == StatusActive {
		return nil
	}
	return &providers.Error{Kind: providers.KindAuth, Provider: a.Platform, Code: "ACCOUNT_" + strings.ToUpper(string(a.Status)),
		Message: "the account is " + string(a.Status) + "; reconnect it"}
}

// ownAccessToken is validAccessToken for an account with tokens of its own,
// read as a (it reads it again after waiting on a lease).
func (s *Service) ownAccessToken(ctx context.Context, a *Account, refused string) (string, *Account, error) {
	accountID := a.ID
	owner := ""
	defer func() {
		if owner != "" {
			// Released here only on the paths that did not store tokens.
			_ = s.store.UnlockRefresh(context.WithoutCancel(ctx), accountID, owner)
		}
	}()
	for first := true; ; first = false {
		var err error
		if !first {
			if a, err = s.store.GetByID(ctx, accountID); err != nil {
				return "", nil, err
			}
		}
		if err := usable(a); err != nil {
			return "", a, err
		}
		now := s.now()
		if !a.NeedsRefresh(now) {
			tok, err := s.open(a, "accessToken", a.AccessToken)
			if err != nil || refused == "" || tok != refused {
				return tok, a, err
			}
		}
		p, ok := s.providers.Get(a.Platform)
		if !ok {
			return "", a, fmt.Errorf("account %s: platform %q is not configured", a.ID, a.Platform)
		}
		if a.RefreshToken == "" && a.Credential == "" || !p.Rules().RefreshTokens {
			if refused == "" && now.Before(a.TokenExpiresAt) {
				// Nothing to refresh with, but it still works for now.
				tok, err := s.open(a, "accessToken", a.AccessToken)
				return tok, a, err
			}
			return "", a, s.expire(ctx, a, "TOKEN_EXPIRED", "the access token expired and the platform gave no refresh token; reconnect the account")
		}

		if owner == "" {
			candidate := randomOwner()
			err := s.store.LockRefresh(ctx, a.ID, candidate, leaseTTL)
			if errors.Is(err, ErrLocked) {
				// Someone else is refreshing: wait, then read what they stored.
				select {
				case <-ctx.Done():
					return "", a, ctx.Err()
				case <-time.After(leaseWait):
				}
				continue
			}
			if err != nil {
				return "", a, err
			}
			owner = candidate
			continue // Read again under the lease: the last holder may have just refreshed.
		}

		stored := providers.Tokens{}
		if stored.RefreshToken, err = s.open(a, "refreshToken", a.RefreshToken); err != nil {
			return "", a, err
		}
		if a.Credential != "" {
			if stored.Credential, err = s.open(a, "credential", a.Credential); err != nil {
				return "", a, err
			}
		}
		t, err := p.Refresh(ctx, a.Provider(""), stored)
		if err != nil {
			var pe *providers.Error
			if errors.As(err, &pe) && pe.Kind == providers.KindAuth {
				return "", a, s.expire(ctx, a, pe.Code, pe.Message)
			}
			return "", a, err
		}
		refreshed := RefreshedTokens{TokenExpiresAt: t.ExpiresAt, RefreshTokenExpiresAt: t.RefreshExpiresAt}
		if refreshed.AccessToken, err = s.cipher.Seal(t.AccessToken, binding(a.OrganizationID, a.Platform, a.PlatformUserID, "accessToken")); err != nil {
			return "", a, err
		}
		if refreshed.RefreshToken, err = s.cipher.Seal(t.RefreshToken, binding(a.OrganizationID, a.Platform, a.PlatformUserID, "refreshToken")); err != nil {
			return "", a, err
		}
		if err := s.store.SaveRefreshed(ctx, a.ID, owner, refreshed); err != nil {
			// The platform may have spent the old refresh token: nothing to
			// retry with. Say so loudly; the next use will tell.
			return "", a, fmt.Errorf("account %s: store refreshed tokens: %w", a.ID, err)
		}
		owner = ""
		a.TokenExpiresAt = t.ExpiresAt
		s.logger.InfoContext(ctx, "access token refreshed", "account_id", a.ID, "platform", a.Platform, "expires_at", t.ExpiresAt)
		return t.AccessToken, a, nil
	}
}

func (s *Service) open(a *Account, field, sealed string) (string, error) {
	tok, err := s.cipher.Open(sealed, binding(a.OrganizationID, a.Platform, a.PlatformUserID, field))
	if err != nil {
		return "", fmt.Errorf("account %s: %s: %w", a.ID, field, err)
	}
	return tok, nil
}

// expire marks the account expired (a member with its pages: markExpired)
// and returns the auth error to hand on.
func (s *Service) expire(ctx context.Context, a *Account, code, msg string) error {
	if err := s.markExpired(ctx, a, code, msg); err != nil {
		return err
	}
	s.logger.ErrorContext(ctx, "account expired: reconnect it", "account_id", a.ID, "platform", a.Platform, "code", code)
	return &providers.Error{Kind: providers.KindAuth, Provider: a.Platform, Code: code, Message: msg}
}

// markExpired marks a expired and, when a has tokens of its own, every
// page account that posts with them: they share its fate. An account
// that was active is announced (account.expired, with the network's code
// and reason), its event stored before the mark (the outbox): a store
// that fails fails the call, and the activity's retry, which reads the
// account still active, stores the same event; the network refused the
// token, so the event is true even if the mark fails after it.
func (s *Service) markExpired(ctx context.Context, a *Account, code, reason string) error {
	ctx = context.WithoutCancel(ctx)
	wasActive, since := a.Status == StatusActive, a.UpdatedAt
	a.Status = StatusExpired
	if wasActive {
		if err := s.announceExpired(ctx, a, since, code, reason); err != nil {
			return err
		}
	}
	if err := s.store.SetStatus(ctx, a.ID, StatusExpired); err != nil {
		return fmt.Errorf("account %s: mark expired: %w", a.ID, err)
	}
	if a.TokensFrom == "" {
		if err := s.store.SetPagesStatus(ctx, a.ID, StatusExpired); err != nil {
			return fmt.Errorf("account %s: mark its pages expired: %w", a.ID, err)
		}
	}
	return nil
}

// Expire records that the network refused to publish as the account for
// good (a *providers.Error of KindAuth from Publish). A page account's
// 403 is the page's own (the member lost the page role or did not grant
// posting as pages): the page alone is marked expired. Any other refusal
// of a page is of the member's token (401: expired, revoked): the member
// is marked expired, and with it all its pages. A member takes its pages
// with it in any case.
func (s *Service) Expire(ctx context.Context, accountID string, cause *providers.Error) error {
	a, err := s.store.GetByID(ctx, accountID)
	if err != nil {
		return fmt.Errorf("expire account %s: %w", accountID, err)
	}
	if a.TokensFrom != "" && (cause == nil || cause.Status != http.StatusForbidden) {
		member, err := s.store.GetByID(ctx, a.TokensFrom)
		if err == nil {
			a = member
		} else if !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("expire account %s: its member: %w", accountID, err)
		}
	}
	code, reason := "", ""
	if cause != nil {
		code, reason = cause.Code, cause.Message
	}
	if err := s.markExpired(ctx, a, code, reason); err != nil {
		return err
	}
	s.logger.ErrorContext(ctx, "account expired: reconnect it", "account_id", a.ID, "platform", a.Platform, "code", code)
	return nil
}
