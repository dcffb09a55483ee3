// Package sandbox is the provider for PostFlow's sandbox platform (served
// by the API under /sandbox): a pretend network with PKCE, expiring tokens
// and switchable failures, so the whole product can be tried without any
// platform's credentials. It talks HTTP to the platform like any provider.
package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/postflow/postflow/providers"
)

// ID is the provider's id in routes and storage.
const ID = "sandbox"

// TextLimit is the sandbox's longest post.
const TextLimit = 500

// Config says where the sandbox platform is and where it sends the browser
// back to.
type Config struct {
	// BaseURL is the platform's root, e.g. http://127.0.0.1:8080/sandbox.
	BaseURL     string
	RedirectURI string
	HTTPClient  *http.Client
	Now         func() time.Time
}

// Provider is the sandbox provider.
type Provider struct {
	cfg   Config
	oauth *oauth2.Config
}

// New returns the provider.
func New(cfg Config) (*Provider, error) {
	if cfg.BaseURL == "" || cfg.RedirectURI == "" {
		return nil, errors.New("sandbox: base URL and redirect URI are required")
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Provider{cfg: cfg, oauth: &oauth2.Config{
		ClientID:    "postflow",
		RedirectURL: cfg.RedirectURI,
		Scopes:      []string{"publish", "profile"},
		Endpoint:    oauth2.Endpoint{AuthURL: cfg.BaseURL + "/authorize", TokenURL: cfg.BaseURL + "/token", AuthStyle: oauth2.AuthStyleInParams},
	}}, nil
}

func (p *Provider) ID() string   { return ID }
func (p *Provider) Name() string { return "Sandbox" }

// Rules: 500 code points; links and hashtags are plain text. Like
// LinkedIn it refuses a repeat and names the original, and like Mastodon
// it takes an Idempotency-Key. Images: see mediaRules.
func (p *Provider) Rules() providers.Rules {
	return providers.Rules{
		Text: providers.TextRules{Limits: []providers.TextLimit{providers.Characters(TextLimit)},
			Links: "plain", Mentions: "none", Hashtags: "plain"},
		ExactlyOnce: providers.ExactlyOnce{Lever: "idempotency-key",
			DuplicateWindow: DuplicateWindow, IdempotencyWindow: IdempotencyWindow},
		RefreshTokens: true,
		Delete:        true,
		Media:         mediaRules(),
	}
}

// TextLimits are the same for every sandbox user.
func (p *Provider) TextLimits(context.Context, providers.Account) ([]providers.TextLimit, error) {
	return p.Rules().Text.Limits, nil
}

// Connect: OAuth with PKCE on the one sandbox.
func (p *Provider) Connect() providers.Connect { return providers.Connect{OAuth: p} }

func (p *Provider) PKCE() bool                     { return true }
func (p *Provider) Server() providers.ServerChoice { return providers.ServerNone }
func (p *Provider) RedirectURI() string            { return p.cfg.RedirectURI }

// Find: the sandbox is reconciled by its keys and duplicate answers.
func (p *Provider) Find(context.Context, providers.Account, providers.Payload, time.Time) ([]providers.Published, error) {
	return nil, providers.ErrCannotFind
}

// Revoke: the sandbox keeps no revocation endpoint; its tokens expire.
func (p *Provider) Revoke(context.Context, providers.Account, providers.Tokens) error { return nil }

// DuplicateWindow: the sandbox, like LinkedIn, refuses a repeat within 10
// minutes and names the original; half of it, as for LinkedIn.
const DuplicateWindow = 5 * time.Minute

// IdempotencyWindow: the sandbox, like Mastodon (contracts §3.2), answers a
// create repeating an Idempotency-Key with the first one's post for 1 h.
const IdempotencyWindow = time.Hour

// CheckServer: the sandbox is one server, which the user does not name.
func (p *Provider) CheckServer(context.Context, string) error { return nil }

func (p *Provider) AuthURL(_ context.Context, server, state, challenge string) (string, error) {
	if server != "" {
		return "", errors.New("sandbox: has one server; got " + server)
	}
	return p.oauth.AuthCodeURL(state,
		oauth2.SetAuthURLParam("code_challenge", challenge),
		oauth2.SetAuthURLParam("code_challenge_method", "S256")), nil
}

func (p *Provider) ctx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, p.cfg.HTTPClient)
}

func (p *Provider) Exchange(ctx context.Context, _, code, _, verifier string) (*providers.Connection, error) {
	tok, err := p.oauth.Exchange(p.ctx(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, providers.TokenError(ID, err, nil)
	}
	t := providers.TokensFromOAuth2(tok, p.cfg.Now())
	var me struct {
		ID, Name, AvatarURL string
	}
	if err := p.call(ctx, http.MethodGet, "/api/me", t.AccessToken, "", nil, &me); err != nil {
		return nil, err
	}
	return &providers.Connection{Tokens: t, Profile: providers.Profile{PlatformUserID: me.ID, DisplayName: me.Name, AvatarURL: me.AvatarURL}}, nil
}

func (p *Provider) Refresh(ctx context.Context, _ providers.Account, stored providers.Tokens) (*providers.Tokens, error) {
	src := p.oauth.TokenSource(p.ctx(ctx), &oauth2.Token{RefreshToken: stored.RefreshToken, Expiry: time.Unix(1, 0)})
	tok, err := src.Token()
	if err != nil {
		return nil, providers.TokenError(ID, err, nil)
	}
	t := providers.TokensFromOAuth2(tok, p.cfg.Now())
	return &t, nil
}

func (p *Provider) Publish(ctx context.Context, a providers.Account, pl providers.Payload) (*providers.Published, error) {
	if n := utf8.RuneCountInString(pl.Text); n == 0 || n > TextLimit {
		return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "TEXT_LENGTH",
			Message: fmt.Sprintf("the text is %d characters; the sandbox takes 1 to %d", n, TextLimit)}
	}
	images, err := postImages(pl.Images)
	if err != nil {
		return nil, err
	}
	var out struct{ ID string }
	body := post{Text: pl.Text, Media: images}
	if err := p.call(ctx, http.MethodPost, "/api/posts", a.AccessToken, pl.IdempotencyKey, body, &out); err != nil {
		return nil, err
	}
	return &providers.Published{PlatformPostID: out.ID, URL: p.PostURL(a, out.ID)}, nil
}

// Delete deletes the user's post id (DELETE /api/posts/{id}): 204, or
// 404 not_found for a post the sandbox no longer holds, which is success.
// Another user's post is 403 not_yours (KindInvalidContent: nothing the
// account's token can change). Errors are classified as Publish's.
func (p *Provider) Delete(ctx context.Context, a providers.Account, id string) error {
	if id == "" || strings.ContainsAny(id, "/?#") {
		return &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "BAD_POST_ID", Message: "not a sandbox post id"}
	}
	err := p.call(ctx, http.MethodDelete, "/api/posts/"+url.PathEscape(id), a.AccessToken, "", nil, nil)
	var pe *providers.Error
	if errors.As(err, &pe) && pe.Status == http.StatusNotFound {
		return nil
	}
	return err
}

// PostURL is where a person sees a post: the sandbox feed.
func (p *Provider) PostURL(_ providers.Account, id string) string {
	return p.cfg.BaseURL + "/feed#" + id
}

// call makes an API call with a JSON body (none if in is nil), with an
// Idempotency-Key unless idemKey is empty, and classifies its failure.
func (p *Provider) call(ctx context.Context, method, path, token, idemKey string, in, out any) error {
	if in == nil {
		return p.send(ctx, method, path, token, idemKey, nil, out)
	}
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	return p.send(ctx, method, path, token, idemKey, &body{r: bytes.NewReader(b), size: int64(len(b)), typ: "application/json"}, out)
}

// body is a request's body, its length and its type.
type body struct {
	r    io.Reader
	size int64
	typ  string
}

// send makes an API call and classifies its failure; out may be nil for
// an answer without a body.
func (p *Provider) send(ctx context.Context, method, path, token, idemKey string, in *body, out any) error {
	var r io.Reader
	if in != nil {
		r = in.r
	}
	req, err := http.NewRequestWithContext(ctx, method, p.cfg.BaseURL+path, r)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	if in != nil {
		req.ContentLength = in.size
		req.Header.Set("Content-Type", in.typ)
	}
	res, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		return &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "NETWORK", Message: "the sandbox did not answer", Err: err}
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode/100 == 2 {
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "BAD_RESPONSE", Message: "the sandbox answered something that is not JSON"}
		}
		return nil
	}
	var eb struct {
		Error      string `json:"error"`
		Message    string `json:"message"`
		ExistingID string `json:"existingId"`
	}
	_ = json.Unmarshal(raw, &eb)
	e := &providers.Error{Provider: ID, Status: res.StatusCode, Code: eb.Error, Message: eb.Message}
	if e.Code == "" {
		e.Code = "HTTP_" + strconv.Itoa(res.StatusCode)
	}
	switch {
	case res.StatusCode == http.StatusTooManyRequests:
		e.Kind = providers.KindRateLimited
		secs, _ := strconv.Atoi(res.Header.Get("Retry-After"))
		e.RetryAfter = time.Duration(max(secs, 1)) * time.Second
	case res.StatusCode >= 500:
		e.Kind = providers.KindRetryable
	case res.StatusCode == http.StatusUnauthorized:
		e.Kind = providers.KindAuth
	case eb.Error == "duplicate":
		e.Kind, e.ExistingPostID = providers.KindDuplicate, eb.ExistingID
	default:
		e.Kind = providers.KindInvalidContent
	}
	return e
}
