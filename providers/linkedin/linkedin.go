// Package linkedin publishes to LinkedIn members' feeds, exactly per
// LinkedIn's wire contract: OAuth 2.0 without PKCE (LinkedIn refuses a
// code_verifier from web apps), the OIDC userinfo profile, and the
// versioned Posts API with its little-text commentary.
package linkedin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/postflow/postflow/providers"
)

// ID is the provider's id in routes and storage.
const ID = "linkedin"

// TextLimit is the longest commentary LinkedIn takes.
const TextLimit = 3000

// Scopes are what PostFlow asks a member for: sign-in with OIDC (profile)
// and posting as the member.
var Scopes = []string{"openid", "profile", "email", "w_member_social"}

// PageScopes are asked for too when Config.Pages is set (contracts §1.7):
// posting as an organization, and reading the member's organizationAcls.
// LinkedIn grants them only to apps it approved for its Community
// Management API; to others the authorize page answers "Invalid scope".
var PageScopes = []string{"w_organization_social", "rw_organization_admin"}

// Config is the app's registration and where LinkedIn is; tests point the
// URLs at a server that speaks LinkedIn's contract.
type Config struct {
	ClientID     string
	ClientSecret string
	RedirectURI  string
	AuthURL      string // https://www.linkedin.com/oauth/v2/authorization
	TokenURL     string // https://www.linkedin.com/oauth/v2/accessToken
	APIURL       string // https://api.linkedin.com
	// Version is the LinkedIn-Version header (YYYYMM). LinkedIn retires
	// versions after about a year, so it is configuration, not code.
	Version string
	// HTTPClient makes every call; it should have a timeout.
	HTTPClient *http.Client
	// Now is the clock, for token expiry and the daily rate-limit reset.
	Now func() time.Time
	// Pages: the app is approved for the organization scopes, so members
	// are asked for PageScopes and may add the pages they administer
	// (Connect().Pages).
	Pages bool
	// MediaWait bounds how long Upload and Reusable wait for LinkedIn to
	// process an image (default 1 minute); MediaPoll is the first pause
	// between two reads of its status (default 250 ms, doubling to 2 s).
	MediaWait time.Duration
	MediaPoll time.Duration
}

// Provider is the LinkedIn provider.
type Provider struct {
	cfg   Config
	oauth *oauth2.Config
}

// New checks cfg and returns the provider.
func New(cfg Config) (*Provider, error) {
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("linkedin: client id and secret are required")
	}
	if cfg.RedirectURI == "" {
		return nil, errors.New("linkedin: redirect URI is required")
	}
	if cfg.Version == "" {
		return nil, errors.New("linkedin: API version is required")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MediaWait <= 0 {
		cfg.MediaWait = time.Minute
	}
	if cfg.MediaPoll <= 0 {
		cfg.MediaPoll = 250 * time.Millisecond
	}
	cfg.APIURL = strings.TrimRight(cfg.APIURL, "/")
	scopes := slices.Clone(Scopes)
	if cfg.Pages {
		scopes = append(scopes, PageScopes...)
	}
	return &Provider{cfg: cfg, oauth: &oauth2.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		RedirectURL:  cfg.RedirectURI,
		Scopes:       scopes,
		// LinkedIn reads client_id and client_secret from the form body
		// only; its docs never mention HTTP Basic.
		Endpoint: oauth2.Endpoint{AuthURL: cfg.AuthURL, TokenURL: cfg.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
	}}, nil
}

func (p *Provider) ID() string   { return ID }
func (p *Provider) Name() string { return "LinkedIn" }

// Rules: 3,000 characters of the unescaped commentary (contracts §1.4),
// counted in UTF-16 code units: how LinkedIn counts is not documented,
// and UTF-16 counts an emoji as two, so a text it accepts is never longer
// than LinkedIn's own count. Links and hashtags are plain text; reserved
// characters are escaped (EscapeLittleText). Refresh tokens come only to
// apps LinkedIn approved for them; the provider uses one whenever the
// token response carries it. Images: see mediaRules.
func (p *Provider) Rules() providers.Rules {
	return providers.Rules{
		Text: providers.TextRules{Limits: []providers.TextLimit{providers.UTF16(TextLimit)},
			Links: "plain", Mentions: "none", Hashtags: "plain"},
		ExactlyOnce:   providers.ExactlyOnce{Lever: "duplicate-answer", DuplicateWindow: DuplicateWindow},
		RefreshTokens: true,
		Revoke:        true,
		Delete:        true,
		Media:         mediaRules(),
	}
}

// TextLimits are the same for every member.
func (p *Provider) TextLimits(context.Context, providers.Account) ([]providers.TextLimit, error) {
	return p.Rules().Text.Limits, nil
}

// Connect: LinkedIn's OAuth code flow, on LinkedIn's one server; company
// pages when the app is approved for them (Config.Pages).
func (p *Provider) Connect() providers.Connect {
	c := providers.Connect{OAuth: p}
	if p.cfg.Pages {
		c.Pages = p
	}
	return c
}

// PKCE: LinkedIn web apps refuse a code_verifier.
func (p *Provider) PKCE() bool { return false }

func (p *Provider) Server() providers.ServerChoice { return providers.ServerNone }

func (p *Provider) RedirectURI() string { return p.cfg.RedirectURI }

// Find: LinkedIn is reconciled by its duplicate answer, not by reading.
func (p *Provider) Find(context.Context, providers.Account, providers.Payload, time.Time) ([]providers.Published, error) {
	return nil, providers.ErrCannotFind
}

// DuplicateWindow: LinkedIn refuses the same commentary from the same
// author with 422 DUPLICATE_POST for about 10 minutes (a third party's
// quote; the contract marks it unconfirmed). Half of it, so that a
// reconcile never leans on its edge.
const DuplicateWindow = 5 * time.Minute

// CheckServer: LinkedIn has one server, which the user does not name.
func (p *Provider) CheckServer(context.Context, string) error { return nil }

// AuthURL ignores challenge: LinkedIn web apps have no PKCE.
func (p *Provider) AuthURL(_ context.Context, server, state, _ string) (string, error) {
	if server != "" {
		return "", errors.New("linkedin: has one server; got " + server)
	}
	return p.oauth.AuthCodeURL(state), nil
}

func (p *Provider) ctx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, p.cfg.HTTPClient)
}

// Exchange trades the code for tokens and reads the member's profile.
func (p *Provider) Exchange(ctx context.Context, _, code, _, verifier string) (*providers.Connection, error) {
	if verifier != "" {
		// Sending it would make LinkedIn refuse the exchange.
		return nil, errors.New("linkedin: no PKCE on LinkedIn web apps; got a verifier")
	}
	tok, err := p.oauth.Exchange(p.ctx(ctx), code)
	if err != nil {
		return nil, providers.TokenError(ID, err, p.retryAfter)
	}
	tokens := providers.TokensFromOAuth2(tok, p.cfg.Now())
	profile, err := p.userinfo(ctx, tokens.AccessToken)
	if err != nil {
		return nil, err
	}
	return &providers.Connection{Tokens: tokens, Profile: *profile}, nil
}

// Refresh trades a refresh token for new tokens. LinkedIn answers an
// expired or revoked one with 400 invalid_grant.
func (p *Provider) Refresh(ctx context.Context, _ providers.Account, stored providers.Tokens) (*providers.Tokens, error) {
	refreshToken := stored.RefreshToken
	if refreshToken == "" {
		return nil, &providers.Error{Kind: providers.KindAuth, Provider: ID, Code: "NO_REFRESH_TOKEN", Message: "LinkedIn issued no refresh token for this account; reconnect it"}
	}
	src := p.oauth.TokenSource(p.ctx(ctx), &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)})
	tok, err := src.Token()
	if err != nil {
		return nil, providers.TokenError(ID, err, p.retryAfter)
	}
	tokens := providers.TokensFromOAuth2(tok, p.cfg.Now())
	return &tokens, nil
}

// userinfo reads the member's OIDC profile. The member id (sub) is scoped to
// the app; the person URN built from it is what the Posts API takes.
func (p *Provider) userinfo(ctx context.Context, accessToken string) (*providers.Profile, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.APIURL+"/v2/userinfo", nil)
	if err != nil {
		return nil, fmt.Errorf("linkedin: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	res, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, networkError(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		return nil, p.apiError(res, body)
	}
	var info struct {
		Sub        string `json:"sub"`
		Name       string `json:"name"`
		GivenName  string `json:"given_name"`
		FamilyName string `json:"family_name"`
		Picture    string `json:"picture"`
	}
	if err := json.Unmarshal(body, &info); err != nil || info.Sub == "" {
		return nil, &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "BAD_RESPONSE", Message: "LinkedIn's userinfo answer has no member id"}
	}
	name := info.Name
	if name == "" {
		name = strings.TrimSpace(info.GivenName + " " + info.FamilyName)
	}
	return &providers.Profile{PlatformUserID: "urn:li:person:" + info.Sub, DisplayName: name, AvatarURL: info.Picture}, nil
}

// post is the body of POST /rest/posts, with all six fields LinkedIn's
// examples send.
type post struct {
	Author                    string       `json:"author"`
	Commentary                string       `json:"commentary"`
	Visibility                string       `json:"visibility"`
	Distribution              distribution `json:"distribution"`
	LifecycleState            string       `json:"lifecycleState"`
	IsReshareDisabledByAuthor bool         `json:"isReshareDisabledByAuthor"`
	// Content holds the post's images, if any.
	Content *content `json:"content,omitempty"`
}

type distribution struct {
	FeedDistribution               string   `json:"feedDistribution"`
	TargetEntities                 []string `json:"targetEntities"`
	ThirdPartyDistributionChannels []string `json:"thirdPartyDistributionChannels"`
}

// Publish creates a public feed post as the member or page, with the
// images of pl.Images (uploaded by Upload) in order: one as content.media,
// 2 to 20 as content.multiImage (contracts §1.5).
func (p *Provider) Publish(ctx context.Context, a providers.Account, pl providers.Payload) (*providers.Published, error) {
	if strings.TrimSpace(pl.Text) == "" {
		return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "EMPTY_TEXT", Message: "LinkedIn posts need text"}
	}
	if l, n, over := providers.Over(p.Rules().Text.Limits, pl.Text); over {
		return nil, &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "TEXT_TOO_LONG",
			Message: fmt.Sprintf("the text is %d %s; LinkedIn takes at most %d", n, l.Unit, l.Max)}
	}
	images, err := postContent(pl.Images)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(post{
		Author:         a.PlatformUserID,
		Commentary:     EscapeLittleText(pl.Text),
		Visibility:     "PUBLIC",
		Distribution:   distribution{FeedDistribution: "MAIN_FEED", TargetEntities: []string{}, ThirdPartyDistributionChannels: []string{}},
		LifecycleState: "PUBLISHED",
		Content:        images,
	})
	if err != nil {
		return nil, fmt.Errorf("linkedin: encode post: %w", err)
	}
	res, resBody, err := p.rest(ctx, a.AccessToken, http.MethodPost, p.cfg.APIURL+"/rest/posts", body, jsonBody)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusOK {
		return nil, p.apiError(res, resBody)
	}
	urn := res.Header.Get("X-Restli-Id")
	// The official client URL-decodes the id ("urn%3Ali%3Ashare%3A1").
	if dec, err := url.PathUnescape(urn); err == nil {
		urn = dec
	}
	if urn == "" {
		// Created, but with no id we cannot link to it: an operator must look.
		return nil, &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: "NO_POST_ID", Message: "LinkedIn created the post but sent no x-restli-id"}
	}
	return &providers.Published{PlatformPostID: urn, URL: p.PostURL(a, urn)}, nil
}

// PostURL is the public address of a post, by its URN.
func (p *Provider) PostURL(_ providers.Account, urn string) string {
	return "https://www.linkedin.com/feed/update/" + urn
}

// Delete deletes the post with URN urn: DELETE /rest/posts/{urn}, the URN
// URL-encoded, with the headers of every /rest call (§1 of the contract
// has no delete; this is LinkedIn's Posts API reference). 204 is
// deleted; 404 is a post LinkedIn no longer holds, which is success too. A
// post the member may not delete is 403 (KindAuth).
func (p *Provider) Delete(ctx context.Context, a providers.Account, urn string) error {
	if !urnPattern.MatchString(urn) {
		return &providers.Error{Kind: providers.KindInvalidContent, Provider: ID, Code: "BAD_POST_ID", Message: "not a LinkedIn post URN"}
	}
	res, body, err := p.rest(ctx, a.AccessToken, http.MethodDelete, p.cfg.APIURL+"/rest/posts/"+url.PathEscape(urn), nil,
		http.Header{"X-Restli-Method": {"DELETE"}})
	if err != nil {
		return err
	}
	if res.StatusCode/100 == 2 || res.StatusCode == http.StatusNotFound {
		return nil
	}
	return p.apiError(res, body)
}

// jsonBody is the header of a call whose body is JSON.
var jsonBody = http.Header{"Content-Type": {"application/json"}}

// maxAnswer bounds, in bytes, what is read of LinkedIn's answers.
const maxAnswer = 4 << 20

// rest calls LinkedIn's versioned REST API (the LinkedIn-Version and
// Rest.li 2.0 headers every /rest call needs, contracts §1) at u as token,
// with body (nil: none) and the extra header, and reads the answer (up to
// maxAnswer bytes). Its status is the caller's to judge; a call that got
// no answer is networkError's.
func (p *Provider) rest(ctx context.Context, token, method, u string, body []byte, header http.Header) (*http.Response, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, nil, fmt.Errorf("linkedin: %w", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("LinkedIn-Version", p.cfg.Version)
	req.Header.Set("X-Restli-Protocol-Version", "2.0.0")
	res, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, nil, networkError(err)
	}
	defer res.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	return res, answer, nil
}

// Revoke revokes the access token at LinkedIn. The endpoint sits beside
// the token endpoint; LinkedIn documents neither its status nor its body,
// so any 2xx counts.
func (p *Provider) Revoke(ctx context.Context, _ providers.Account, t providers.Tokens) error {
	token := t.AccessToken
	u := strings.TrimSuffix(p.cfg.TokenURL, "/accessToken") + "/revoke"
	form := url.Values{"client_id": {p.cfg.ClientID}, "client_secret": {p.cfg.ClientSecret}, "token": {token}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("linkedin: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		return networkError(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode/100 != 2 {
		return p.apiError(res, body)
	}
	return nil
}

// apiError is LinkedIn's REST error body: {status, serviceErrorCode, code,
// message}, with errorDetails.inputErrors on Posts errors.
type apiErrorBody struct {
	Status       int    `json:"status"`
	Code         string `json:"code"`
	Message      string `json:"message"`
	ErrorDetails struct {
		InputErrors []struct {
			Code        string `json:"code"`
			Description string `json:"description"`
		} `json:"inputErrors"`
	} `json:"errorDetails"`
}

var urnPattern = regexp.MustCompile(`urn:li:[A-Za-z]+:[0-9A-Za-z_-]+`)

func (p *Provider) apiError(res *http.Response, body []byte) error {
	var b apiErrorBody
	_ = json.Unmarshal(body, &b) // A body that is not JSON leaves the HTTP status to decide.
	code := b.Code
	for _, ie := range b.ErrorDetails.InputErrors {
		if ie.Code != "" {
			code = ie.Code
			break
		}
	}
	if code == "" {
		code = "HTTP_" + strconv.Itoa(res.StatusCode)
	}
	e := &providers.Error{Provider: ID, Status: res.StatusCode, Code: code, Message: providers.CleanMessage(b.Message)}
	if e.Message == "" {
		e.Message = "LinkedIn answered " + res.Status
	}
	switch {
	case res.StatusCode == http.StatusTooManyRequests:
		e.Kind, e.RetryAfter = providers.KindRateLimited, p.retryAfter(res, b.Message)
	case res.StatusCode >= 500:
		e.Kind = providers.KindRetryable
	case res.StatusCode == http.StatusUnauthorized, res.StatusCode == http.StatusForbidden:
		// 401: the token is invalid, expired or revoked. 403: it lacks the
		// scope, or the member lost the page role. Both need a reconnect.
		e.Kind = providers.KindAuth
	case code == "DUPLICATE_POST":
		e.Kind = providers.KindDuplicate
		e.ExistingPostID = urnPattern.FindString(b.Message)
	case code == "MEDIA_ASSET_WAITING_UPLOAD":
		// An image not ready yet (its bytes on their way, or being
		// processed): the same post is taken once it is.
		e.Kind = providers.KindRetryable
	default:
		// 400 (too long, blank, bad author, an image LinkedIn could not
		// process: MEDIA_ASSET_PROCESSING_FAILED), 422, 426 (version
		// retired): the same request will be refused again.
		e.Kind = providers.KindInvalidContent
	}
	return e
}

// defaultRateWait is the wait after a 429 that names no daily limit: LinkedIn
// sends those for infrastructure protection and documents no Retry-After.
const defaultRateWait = time.Minute

// retryAfter is how long to wait after a 429. LinkedIn's limits are per 24 h
// and reset at midnight UTC: a DAY-limit message waits until then.
func (p *Provider) retryAfter(res *http.Response, message string) time.Duration {
	if res != nil {
		if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s > 0 {
			return time.Duration(s) * time.Second
		}
	}
	if strings.Contains(message, "DAY") {
		now := p.cfg.Now().UTC()
		midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
		return midnight.Sub(now)
	}
	return defaultRateWait
}

func networkError(err error) error {
	code := "NETWORK"
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		code = "TIMEOUT"
	}
	return &providers.Error{Kind: providers.KindRetryable, Provider: ID, Code: code, Message: "LinkedIn did not answer", Err: err}
}

// reserved are the characters of LinkedIn's little text format that must be
// escaped to stay plain text; LinkedIn silently cuts a post at the first
// one left unescaped.
const reserved = `|{}@[]()<>#*_~`

// EscapeLittleText escapes text for a post's commentary: the backslash
// first, then the other 14 reserved characters.
func EscapeLittleText(text string) string {
	var b strings.Builder
	b.Grow(len(text) + len(text)/8)
	for _, r := range text {
		if r == '\\' || strings.ContainsRune(reserved, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
