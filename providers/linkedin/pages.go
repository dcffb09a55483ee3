package linkedin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/postflow/postflow/providers"
)

// postingRoles are the organizationAcls roles that may post as the page
// (contracts §1.7, [L5]). [L5] spells CONTENT_ADMINISTRATOR "CONTENT_ADMIN";
// both are taken.
var postingRoles = map[string]bool{
	"ADMINISTRATOR":                   true,
	"CONTENT_ADMINISTRATOR":           true,
	"CONTENT_ADMIN":                   true,
	"DIRECT_SPONSORED_CONTENT_POSTER": true,
}

// OrganizationURN is the author URN of the organization with id.
func OrganizationURN(id string) string { return "urn:li:organization:" + id }

// organizationID returns the numeric id of an organization URN, or "".
func organizationID(urn string) string {
	id, ok := strings.CutPrefix(urn, "urn:li:organization:")
	if !ok || id == "" {
		return ""
	}
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return ""
	}
	return id
}

// aclPage is how many ACLs one call asks for, and maxACLCalls how many
// calls a listing makes at most: 2,000 pages is more than any member has.
const (
	aclPage     = 100
	maxACLCalls = 20
)

// Pages lists the organizations the member of a may post as (contracts
// §1.7): GET /rest/organizationAcls?q=roleAssignee&state=APPROVED, kept
// where the role is a posting one, then each page's name from GET
// /rest/organizations/{id}. A 403 on the ACLs (the member did not grant
// rw_organization_admin) is providers.ErrPagesNotGranted.
func (p *Provider) Pages(ctx context.Context, a providers.Account) ([]providers.Page, error) {
	ids, err := p.postingOrganizations(ctx, a.AccessToken)
	if err != nil {
		return nil, err
	}
	pages := make([]providers.Page, 0, len(ids))
	for _, id := range ids {
		var org struct {
			LocalizedName string `json:"localizedName"`
			VanityName    string `json:"vanityName"`
		}
		if err := p.restGet(ctx, a.AccessToken, "/rest/organizations/"+id, nil, &org); err != nil {
			return nil, err
		}
		name := org.LocalizedName
		if name == "" {
			name = OrganizationURN(id)
		}
		pages = append(pages, providers.Page{PlatformUserID: OrganizationURN(id), DisplayName: name, Handle: org.VanityName})
	}
	return pages, nil
}

// postingOrganizations returns the ids of the organizations the token's
// member holds an approved posting role on, each once, in LinkedIn's order.
func (p *Provider) postingOrganizations(ctx context.Context, token string) ([]string, error) {
	var ids []string
	seen := map[string]bool{}
	for call, start := 0, 0; call < maxACLCalls; call++ {
		q := url.Values{"q": {"roleAssignee"}, "state": {"APPROVED"}, "start": {strconv.Itoa(start)}, "count": {strconv.Itoa(aclPage)}}
		var page struct {
			Elements []struct {
				// The organization's key differs between samples (contracts
				// §1.7): any of the three is taken.
				Organization         string `json:"organization"`
				OrganizationTarget   string `json:"organizationTarget"`
				OrganizationalTarget string `json:"organizationalTarget"`
				Role                 string `json:"role"`
				State                string `json:"state"`
			} `json:"elements"`
			Paging struct {
				Total *int `json:"total"`
			} `json:"paging"`
		}
		err := p.restGet(ctx, token, "/rest/organizationAcls", q, &page)
		var pe *providers.Error
		if errors.As(err, &pe) && pe.Status == http.StatusForbidden {
			return nil, fmt.Errorf("linkedin: organizationAcls: %s: %w", pe.Code, providers.ErrPagesNotGranted)
		}
		if err != nil {
			return nil, err
		}
		for _, e := range page.Elements {
			urn := e.Organization
			if urn == "" {
				urn = e.OrganizationTarget
			}
			if urn == "" {
				urn = e.OrganizationalTarget
			}
			id := organizationID(urn)
			if id == "" || !postingRoles[e.Role] || (e.State != "" && e.State != "APPROVED") || seen[id] {
				continue
			}
			seen[id] = true
			ids = append(ids, id)
		}
		start += len(page.Elements)
		if len(page.Elements) < aclPage || page.Paging.Total != nil && start >= *page.Paging.Total {
			break
		}
	}
	return ids, nil
}

// restGet calls a versioned REST API (the headers of the Posts API) and
// decodes its 200 answer into out.
func (p *Provider) restGet(ctx context.Context, token, path string, q url.Values, out any) error {
	u := p.cfg.APIURL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	res, body, err := p.rest(ctx, token, http.MethodGet, u, nil, nil)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return p.apiError(res, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "BAD_RESPONSE", Status: res.StatusCode,
			Message: "LinkedIn's answer to " + path + " is not the JSON its contract describes"}
	}
	return nil
}
