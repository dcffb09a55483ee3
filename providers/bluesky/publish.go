package bluesky

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/postflow/postflow/providers"
)

// postRecord is an app.bsky.feed.post (lexicon app/bsky/feed/post.json).
type postRecord struct {
	Type      string   `json:"$type"`
	Text      string   `json:"text"`
	CreatedAt string   `json:"createdAt"`
	Facets    []Facet  `json:"facets,omitempty"`
	Langs     []string `json:"langs,omitempty"`
	// Embed is the post's images (app.bsky.embed.images), if any.
	Embed *imagesEmbed `json:"embed,omitempty"`
}

type createRecordIn struct {
	Repo       string     `json:"repo"`
	Collection string     `json:"collection"`
	RKey       string     `json:"rkey"`
	Record     postRecord `json:"record"`
}

// Publish makes the post a record of the account's repo under the
// publication's record key (RecordKey of p.Created and p.IdempotencyKey),
// with facets for its links, mentions and hashtags, langs when p has a
// language, and its images as app.bsky.embed.images (each with its alt
// text, its blob from Upload, and aspectRatio when its size is known). createdAt is now, not p.Created: Bluesky orders feeds by it,
// and a scheduled post must not appear as old as its draft.
//
// An answer that leaves the create in doubt (500, 502, 504, no answer) is
// settled by reading the record at that key: the reference PDS answers a
// create under a key that exists with an untyped 500, so a repeat of an
// attempt that went through is answered with its post. If the record is
// not there, the answer's error is returned.
func (p *Provider) Publish(ctx context.Context, a providers.Account, pl providers.Payload) (*providers.Published, error) {
	if strings.TrimSpace(pl.Text) == "" {
		return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "EMPTY_TEXT", Message: "Bluesky posts need text"}
	}
	if l, n, over := providers.Over(p.Rules().Text.Limits, pl.Text); over {
		return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "TEXT_TOO_LONG",
			Message: fmt.Sprintf("the text is %d %s; Bluesky takes at most %d", n, l.Unit, l.Max)}
	}
	rkey, err := RecordKey(pl.Created, pl.IdempotencyKey)
	if err != nil {
		return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "NO_RECORD_KEY", Message: "the post has no usable creation time or key", Err: err}
	}
	base, err := p.pds(a)
	if err != nil {
		return nil, err
	}
	rec := postRecord{
		Type:      PostCollection,
		Text:      pl.Text,
		CreatedAt: p.cfg.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		Facets:    Facets(pl.Text, p.resolver(ctx, base)),
	}
	if pl.Language != "" {
		rec.Langs = []string{pl.Language}
	}
	if rec.Embed, err = embed(pl.Images); err != nil {
		return nil, err
	}
	var out struct {
		URI string `json:"uri"`
	}
	err = p.xrpc(ctx, p.cfg.ServerClient, base, "com.atproto.repo.createRecord", a.AccessToken, nil,
		createRecordIn{Repo: a.PlatformUserID, Collection: PostCollection, RKey: rkey, Record: rec}, &out)
	if err != nil {
		var pe *providers.Error
		if errors.As(err, &pe) && !pe.Refused() {
			if found, ferr := p.readPost(ctx, base, a, rkey); ferr == nil && found != nil {
				return found, nil
			}
		}
		return nil, err
	}
	if _, _, ok := parsePostURI(out.URI); !ok {
		// Made, but not named: the read back of a retry will find it.
		return nil, &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "BAD_RESPONSE", Status: http.StatusOK, Message: "createRecord answered no post URI"}
	}
	return &providers.Published{PlatformPostID: out.URI, URL: p.PostURL(a, out.URI)}, nil
}

// Find reads the record at the key p's publication posts under: the post
// if the repo holds it, none if not (getRecord's 400 RecordNotFound). The
// key names the publication whatever the time, so since is not needed.
func (p *Provider) Find(ctx context.Context, a providers.Account, pl providers.Payload, _ time.Time) ([]providers.Published, error) {
	rkey, err := RecordKey(pl.Created, pl.IdempotencyKey)
	if err != nil {
		return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "NO_RECORD_KEY", Message: "the post has no usable creation time or key", Err: err}
	}
	base, err := p.pds(a)
	if err != nil {
		return nil, err
	}
	pub, err := p.readPost(ctx, base, a, rkey)
	if err != nil || pub == nil {
		return nil, err
	}
	return []providers.Published{*pub}, nil
}

// readPost reads the account's post at rkey: nil, nil when there is none.
// A record at the key is this publication's: the key holds 30 bits of
// its idempotency key within its creation second, and nothing else posts
// at past keys of this account. Its text is not compared: a variant
// edited between attempts would otherwise make a repeat that the PDS
// refuses forever.
func (p *Provider) readPost(ctx context.Context, base string, a providers.Account, rkey string) (*providers.Published, error) {
	var out struct {
		URI string `json:"uri"`
	}
	q := url.Values{"repo": {a.PlatformUserID}, "collection": {PostCollection}, "rkey": {rkey}}
	err := p.xrpc(ctx, p.cfg.ServerClient, base, "com.atproto.repo.getRecord", "", q, nil, &out)
	var pe *providers.Error
	if errors.As(err, &pe) && pe.Code == "RecordNotFound" {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if _, _, ok := parsePostURI(out.URI); !ok {
		return nil, &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "BAD_RESPONSE", Status: http.StatusOK, Message: "getRecord answered no post URI"}
	}
	return &providers.Published{PlatformPostID: out.URI, URL: p.PostURL(a, out.URI)}, nil
}

// resolver resolves mentioned handles on the account's PDS (which asks
// the network for handles it does not host), each handle once per post.
// A handle that does not resolve, for whatever reason, stays plain text.
func (p *Provider) resolver(ctx context.Context, base string) func(string) (string, bool) {
	seen := map[string]string{}
	return func(handle string) (string, bool) {
		if did, ok := seen[handle]; ok {
			return did, did != ""
		}
		var out struct {
			DID string `json:"did"`
		}
		err := p.xrpc(ctx, p.cfg.ServerClient, base, "com.atproto.identity.resolveHandle", "", url.Values{"handle": {handle}}, nil, &out)
		if err != nil || !strings.HasPrefix(out.DID, "did:") {
			out.DID = ""
		}
		seen[handle] = out.DID
		return out.DID, out.DID != ""
	}
}

// Delete deletes the post at uri (at://{did}/app.bsky.feed.post/{rkey})
// with com.atproto.repo.deleteRecord on the account's PDS (its lexicon;
// the contract has no delete for Bluesky).
// The reference PDS (TestConformanceRealPDS) answers 200 {"commit": ...}
// when it deleted the record and 200 {} when the repo does not hold it, so
// a repeat succeeds as the first did; a malformed rkey is 400
// InvalidRequest. A post of another repo is refused here (NOT_OWN_POST)
// before any call: the PDS answers a deleteRecord naming another repo 401
// AuthenticationRequired, which would read as the account's own token
// refused.
func (p *Provider) Delete(ctx context.Context, a providers.Account, uri string) error {
	did, rkey, ok := parsePostURI(uri)
	if !ok {
		return &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "BAD_POST_ID", Message: "not a Bluesky post URI"}
	}
	if did != a.PlatformUserID {
		return &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "NOT_OWN_POST", Message: "the post is in another account's repo"}
	}
	base, err := p.pds(a)
	if err != nil {
		return err
	}
	return p.xrpc(ctx, p.cfg.ServerClient, base, "com.atproto.repo.deleteRecord", a.AccessToken, nil,
		deleteRecordIn{Repo: did, Collection: PostCollection, RKey: rkey}, nil)
}

// deleteRecordIn is com.atproto.repo.deleteRecord's input.
type deleteRecordIn struct {
	Repo       string `json:"repo"`
	Collection string `json:"collection"`
	RKey       string `json:"rkey"`
}
