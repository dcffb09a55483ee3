package bluesky

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/postflow/postflow/providers"
)

// findPDS finds the PDS of identifier, a handle or a DID: the handle's DID
// by com.atproto.identity.resolveHandle on the configured resolver, then
// the DID document's #atproto_pds service (atproto spec "DID").
//
// Why the resolver rather than DNS TXT and /.well-known/atproto-did
// (atproto spec "Handle"): the entryway does both, with caching and the
// retries the spec asks for, in one HTTPS call; and a self-hosted network
// (or a test) points it at its own PDS. An email needs the server named.
func (p *Provider) findPDS(ctx context.Context, identifier string) (did, base string, err error) {
	did = identifier
	if !strings.HasPrefix(identifier, "did:") {
		if strings.Contains(identifier, "@") {
			return "", "", &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "SERVER_NEEDED", Message: "to sign in with an email, name the server too; or use the handle"}
		}
		var out struct {
			DID string `json:"did"`
		}
		err := p.xrpc(ctx, p.cfg.Client, p.cfg.ResolverURL, "com.atproto.identity.resolveHandle", "", url.Values{"handle": {strings.ToLower(identifier)}}, nil, &out)
		if pe := (*providers.Error)(nil); errors.As(err, &pe) && pe.Status == http.StatusBadRequest {
			return "", "", &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "HANDLE_NOT_FOUND", Status: pe.Status, Message: "no Bluesky account has the handle " + identifier}
		}
		if err != nil {
			return "", "", err
		}
		if !strings.HasPrefix(out.DID, "did:") {
			return "", "", &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "BAD_RESPONSE", Message: "resolveHandle answered no DID"}
		}
		did = out.DID
	}
	doc, err := p.didDocument(ctx, did)
	if err != nil {
		return "", "", err
	}
	endpoint := doc.pds(did)
	if endpoint == "" {
		return "", "", &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "NO_PDS", Message: did + " names no PDS in its DID document"}
	}
	u, err := p.cfg.Servers.ServerURL(endpoint)
	if err != nil {
		return "", "", fmt.Errorf("%w: the PDS of %s: %w", providers.ErrBadServer, did, err)
	}
	if err := p.checkServer(ctx, u.Hostname()); err != nil {
		return "", "", errBadServer(err)
	}
	return did, u.String(), nil
}

// didDocument is the part of a DID document PostFlow reads.
type didDocument struct {
	ID string `json:"id"`
	// AlsoKnownAs holds the handle as at://{handle}.
	AlsoKnownAs []string `json:"alsoKnownAs"`
	Service     []struct {
		ID              string `json:"id"`
		Type            string `json:"type"`
		ServiceEndpoint any    `json:"serviceEndpoint"`
	} `json:"service"`
}

// pds is the #atproto_pds service's endpoint, "" when there is none.
func (d *didDocument) pds(did string) string {
	for _, s := range d.Service {
		if (s.ID == "#atproto_pds" || s.ID == did+"#atproto_pds") && s.Type == "AtprotoPersonalDataServer" {
			if e, ok := s.ServiceEndpoint.(string); ok {
				return e
			}
		}
	}
	return ""
}

// didDocument reads did's document: did:plc from the PLC directory,
// did:web from https://{host}/.well-known/did.json (a host a user names:
// through the guarded client). Other methods are refused (the atproto
// spec blesses these two).
func (p *Provider) didDocument(ctx context.Context, did string) (*didDocument, error) {
	var u string
	client := p.cfg.Client
	switch {
	case strings.HasPrefix(did, "did:plc:"):
		u = p.cfg.PLCURL + "/" + url.PathEscape(did)
	case strings.HasPrefix(did, "did:web:"):
		host, err := url.PathUnescape(strings.TrimPrefix(did, "did:web:"))
		if err != nil || host == "" || strings.ContainsAny(host, "/:@") && !strings.HasPrefix(host, "localhost:") {
			return nil, &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "BAD_DID", Message: "not a did:web of a host: " + did}
		}
		base, err := p.cfg.Servers.ServerURL("https://" + host)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", providers.ErrBadServer, did, err)
		}
		u, client = base.String()+"/.well-known/did.json", p.cfg.ServerClient
	default:
		return nil, &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "BAD_DID", Message: "not a DID Bluesky uses (did:plc, did:web): " + did}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("bluesky: DID document: %w", err)
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, errBadServer(networkError("DID document", err))
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	switch {
	case res.StatusCode == http.StatusNotFound || res.StatusCode == http.StatusGone:
		return nil, &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "DID_NOT_FOUND", Status: res.StatusCode, Message: "no DID document for " + did}
	case res.StatusCode != http.StatusOK:
		return nil, p.classify(res, b)
	}
	var doc didDocument
	if err := json.Unmarshal(b, &doc); err != nil || doc.ID != did {
		return nil, &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "BAD_DID_DOCUMENT", Message: "the DID document of " + did + " is not one"}
	}
	return &doc, nil
}
