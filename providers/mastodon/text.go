package mastodon

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rivo/uniseg"
	"mvdan.cc/xurls/v2"

	"github.com/postflow/postflow/providers"
)

// The limits an instance that answers without its own has: Mastodon's
// defaults (contracts §3.1, GET /api/v2/instance).
const (
	DefaultMaxCharacters = 500
	DefaultURLLength     = 23
)

// The instance cache: limits are read again after limitsTTL, after
// limitsRetry when the instance did not answer (so a down instance is not
// asked on every post), and at most maxCachedServers are kept.
const (
	limitsTTL        = time.Hour
	limitsRetry      = time.Minute
	maxCachedServers = 1000
)

// LimitsTimeout bounds the read of an instance's limits, far below the
// 30 s of other calls: the limits are read on the request path of writing
// a post (every target account is checked, one after another) and on
// each publish, and a missing answer costs nothing but a fallback to the
// limits last read, or to none (the instance decides), whereas a stalled
// read holds the user's request. A healthy instance answers in well under a second.
const LimitsTimeout = 3 * time.Second

// urlFinder finds links the way Mastodon gives them a fixed length: with
// an http or https scheme (a bare example.com counts as its characters).
var urlFinder = func() *regexp.Regexp {
	re, err := xurls.StrictMatchingScheme(`https?://`)
	if err != nil {
		panic(err) // a constant pattern
	}
	return re
}()

// mention is a Mastodon mention, @user or @user@domain (Account::MENTION_RE
// without its look-behind, which count checks by hand). Submatch 1 is the
// user.
var mention = regexp.MustCompile(`(?i)@([a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)(?:@[\p{L}\p{M}\p{N}_]+(?:[.-]+[\p{L}\p{M}\p{N}_]+)*)?`)

// Count counts text as Mastodon does with links counted urlLength
// (StatusLengthValidator: grapheme clusters, by rivo/uniseg, after each
// http(s) link is replaced by urlLength characters whatever its length and
// each @user@domain by @user).
func Count(urlLength int) func(string) int {
	return func(text string) int {
		n, last := 0, 0
		for _, loc := range urlFinder.FindAllStringIndex(text, -1) {
			n += countMentions(text[last:loc[0]]) + urlLength
			last = loc[1]
		}
		return n + countMentions(text[last:])
	}
}

// countMentions counts s (no links in it) with @user@domain as @user.
func countMentions(s string) int {
	n, last := 0, 0
	for _, m := range mention.FindAllStringSubmatchIndex(s, -1) {
		if prev, _ := utf8.DecodeLastRuneInString(s[:m[0]]); m[0] > 0 && (prev == '=' || prev == '/' || isWord(prev)) {
			continue // user@example.com or a path: no mention
		}
		n += uniseg.GraphemeClusterCount(s[last:m[0]]) + 1 + uniseg.GraphemeClusterCount(s[m[2]:m[3]])
		last = m[1]
	}
	return n + uniseg.GraphemeClusterCount(s[last:])
}

// isWord is Ruby's [[:word:]]: a letter, mark, number or connector.
func isWord(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsNumber(r) || unicode.Is(unicode.Pc, r)
}

// limitsEntry is one instance's limits as last read; max 0 when they
// have never been read (the instance did not answer).
type limitsEntry struct {
	max, urlLength int
	// goToSocial: the instance's source_url names GoToSocial. It counts
	// plain code points, links at their length (it advertises
	// characters_reserved_per_url but does not apply it: it refused 5,001
	// characters of which a link was most); see also known.
	goToSocial bool
	// media is what the instance's configuration says of images (see
	// MediaLimits).
	media providers.MediaRules
}

// TextLimits is the limit of a's instance: configuration.statuses.
// max_characters of GET {server}/api/v2/instance, links counted as its
// characters_reserved_per_url (500 and 23 where the instance answers but
// leaves them out; GoToSocial says 5000 and 25), cached an hour per
// instance. Mastodon counts as Count does; an instance whose source_url
// names GoToSocial counts plain code points, as GoToSocial does. It never
// fails, so that writing a post does not depend on an instance being up:
// when the instance does not answer within LimitsTimeout, the limits last
// read are used, and the instance is asked again a minute later. An
// instance whose limits have never been read has none: the list is empty
// and the instance decides (Publish sends the text and its 422 is invalid
// content). A limit PostFlow does not know is no limit: Mastodon's
// default of 500 would refuse, for good, a text an instance with a larger
// limit takes.
func (p *Provider) TextLimits(ctx context.Context, a providers.Account) ([]providers.TextLimit, error) {
	e := p.instanceLimits(ctx, a.Server)
	if e.max == 0 {
		return []providers.TextLimit{}, nil // never read: the instance decides
	}
	if e.goToSocial {
		return []providers.TextLimit{providers.Characters(e.max)}, nil
	}
	l := providers.TextLimit{Max: e.max, Unit: "characters", URLLength: e.urlLength, Count: Count(e.urlLength)}
	return []providers.TextLimit{l}, nil
}

func (p *Provider) instanceLimits(ctx context.Context, server string) limitsEntry {
	now := p.cfg.Now()
	e, fresh, known := p.limits.get(server, now)
	if fresh {
		return e
	}
	rctx, cancel := context.WithTimeout(ctx, LimitsTimeout)
	read, err := p.readLimits(rctx, server)
	cancel()
	switch {
	case err == nil:
		e = read
		p.limits.put(server, e, now.Add(limitsTTL), now)
	case known:
		p.limits.put(server, e, now.Add(limitsRetry), now)
	default:
		e = limitsEntry{} // never read: no limits, asked again soon
		p.limits.put(server, e, now.Add(limitsRetry), now)
	}
	return e
}

// readLimits asks the instance for its limits.
func (p *Provider) readLimits(ctx context.Context, server string) (limitsEntry, error) {
	var inst struct {
		SourceURL     string `json:"source_url"`
		Configuration struct {
			Statuses struct {
				MaxCharacters            int `json:"max_characters"`
				CharactersReservedPerURL int `json:"characters_reserved_per_url"`
				MaxMediaAttachments      int `json:"max_media_attachments"`
			} `json:"statuses"`
			MediaAttachments mediaConfig `json:"media_attachments"`
		} `json:"configuration"`
	}
	if err := p.call(ctx, http.MethodGet, server, "/api/v2/instance", "", nil, "", func(b []byte) error { return json.Unmarshal(b, &inst) }); err != nil {
		return limitsEntry{}, err
	}
	s := inst.Configuration.Statuses
	e := limitsEntry{max: s.MaxCharacters, urlLength: s.CharactersReservedPerURL,
		goToSocial: strings.Contains(strings.ToLower(inst.SourceURL), "gotosocial")}
	if e.max <= 0 {
		e.max = DefaultMaxCharacters
	}
	if e.urlLength <= 0 {
		e.urlLength = DefaultURLLength
	}
	e.media = inst.Configuration.MediaAttachments.rules(s.MaxMediaAttachments)
	if e.goToSocial && e.media.AltText.Max == 0 {
		e.media.AltText = providers.Characters(GoToSocialDescriptionLimit)
	}
	return e, nil
}
