package connections

import (
	"context"
	"errors"
	"fmt"

	"github.com/postflow/postflow/providers"
)

// Pages: a member connected on a network that declares Connect().Pages
// (LinkedIn company pages) may add the pages they hold a posting role on
// as accounts of their organization. A page account has the page's
// PlatformUserID (urn:li:organization:{id}) and no tokens: TokensFrom
// names the member whose tokens it posts with (ValidAccessToken). The
// member's fate is theirs: expired together, disconnected together, and
// reactivated when the member reconnects.

// ErrNoPages: the connection cannot list pages: it is a page itself, or
// its network (or this deployment) has no pages. The text says which.
type ErrNoPages struct{ Reason string }

func (e *ErrNoPages) Error() string { return "connections: no pages: " + e.Reason }

// ErrNotAdministered: the member holds no posting role on Page now (as the
// network says at the time of adding), or did not grant the scopes that
// list pages (NotGranted).
type ErrNotAdministered struct {
	Page       string
	NotGranted bool
}

func (e *ErrNotAdministered) Error() string {
	if e.NotGranted {
		return "connections: the member did not grant the scopes to post as pages"
	}
	return "connections: the member holds no posting role on " + e.Page
}

// PageChoice is a page the member may post as, and whether the
// organization has it as an account already.
type PageChoice struct {
	providers.Page
	Added bool `json:"added"`
	// AccountID is the page's account in the organization, once added.
	AccountID string `json:"accountId,omitempty"`
}

// ListPages returns the pages the organization's member account memberID
// holds a posting role on, as the network says now. Errors: ErrNotFound
// (no such account in orgID), *ErrNoPages, providers.ErrPagesNotGranted
// (the member did not grant the scopes: to the frontend, no pages), a
// *providers.Error (KindAuth: the member must reconnect).
func (s *Service) ListPages(ctx context.Context, orgID, memberID string) ([]PageChoice, error) {
	member, pages, err := s.memberPages(ctx, orgID, memberID)
	if err != nil {
		return nil, err
	}
	added, err := s.addedPages(ctx, orgID, member.Platform)
	if err != nil {
		return nil, err
	}
	out := make([]PageChoice, 0, len(pages))
	for _, pg := range pages {
		id, ok := added[pg.PlatformUserID]
		out = append(out, PageChoice{Page: pg, Added: ok, AccountID: id})
	}
	return out, nil
}

// AddPages adds each page of pageIDs (platform user ids, LinkedIn's
// urn:li:organization:{id}) as an account of the organization that posts
// with the member's tokens. Each must be a page the member holds a posting
// role on now (*ErrNotAdministered names the first that is not; nothing
// is added then). A page the organization has already, through this or
// another member, is updated to post with this member's tokens and made
// active: the unique key (organization, platform, platform user) keeps one
// account per page. Errors otherwise as ListPages.
func (s *Service) AddPages(ctx context.Context, orgID, memberID string, pageIDs []string) ([]Account, error) {
	member, pages, err := s.memberPages(ctx, orgID, memberID)
	if errors.Is(err, providers.ErrPagesNotGranted) && len(pageIDs) > 0 {
		return nil, &ErrNotAdministered{Page: pageIDs[0], NotGranted: true}
	}
	if err != nil {
		return nil, err
	}
	byID := make(map[string]providers.Page, len(pages))
	for _, pg := range pages {
		byID[pg.PlatformUserID] = pg
	}
	for _, id := range pageIDs {
		if _, ok := byID[id]; !ok {
			return nil, &ErrNotAdministered{Page: id}
		}
	}
	now := s.now().UTC()
	out := make([]Account, 0, len(pageIDs))
	done := map[string]bool{}
	for _, id := range pageIDs {
		if done[id] {
			continue
		}
		done[id] = true
		pg := byID[id]
		a, err := s.store.Upsert(ctx, &Account{
			OrganizationID: orgID,
			Platform:       member.Platform,
			PlatformUserID: pg.PlatformUserID,
			Handle:         pg.Handle,
			DisplayName:    pg.DisplayName,
			AvatarURL:      pg.AvatarURL,
			TokensFrom:     member.ID,
			Status:         StatusActive,
			CreatedAt:      now,
			UpdatedAt:      now,
		})
		if err != nil {
			return nil, fmt.Errorf("add page %s: %w", id, err)
		}
		s.logger.InfoContext(ctx, "page added", "organization_id", orgID, "account_id", a.ID, "member_account_id", member.ID, "platform", member.Platform)
		out = append(out, *a)
	}
	return out, nil
}

// memberPages reads the member account and asks its network for its pages,
// with the member's valid token.
func (s *Service) memberPages(ctx context.Context, orgID, memberID string) (*Account, []providers.Page, error) {
	member, err := s.store.Get(ctx, orgID, memberID)
	if err != nil {
		return nil, nil, err
	}
	if member.TokensFrom != "" {
		return nil, nil, &ErrNoPages{Reason: "this connection is a page; list pages from the member who added it"}
	}
	p, ok := s.providers.Get(member.Platform)
	if !ok || p.Connect().Pages == nil {
		return nil, nil, &ErrNoPages{Reason: "pages are not enabled for " + member.Platform + " on this server"}
	}
	tok, member, err := s.ownAccessToken(ctx, member, "")
	if err != nil {
		return nil, nil, err
	}
	pages, err := p.Connect().Pages.Pages(ctx, member.Provider(tok))
	if providers.KindOf(err) == providers.KindAuth {
		// The network refused the member's token, as a publish would.
		var pe *providers.Error
		errors.As(err, &pe)
		return member, nil, s.expire(ctx, member, pe.Code, pe.Message)
	}
	if err != nil {
		return member, nil, err
	}
	return member, pages, nil
}

// addedPages maps the platform user ids of the organization's accounts on
// platform to their account ids. It lists the organization's accounts: a
// listing's cost, on a path as rare as a listing.
func (s *Service) addedPages(ctx context.Context, orgID, platform string) (map[string]string, error) {
	list, err := s.store.List(ctx, orgID)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, a := range list {
		if a.Platform == platform && a.TokensFrom != "" {
			out[a.PlatformUserID] = a.ID
		}
	}
	return out, nil
}
