package bluesky

import (
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rivo/uniseg"
	"mvdan.cc/xurls/v2"
)

// Facet is a rich-text annotation of a post (lexicon app.bsky.richtext.facet):
// a range of the text's UTF-8 bytes, [ByteStart, ByteEnd), and what it is.
type Facet struct {
	Index    ByteSlice `json:"index"`
	Features []Feature `json:"features"`
}

// ByteSlice is a facet's range in UTF-8 bytes, end exclusive.
type ByteSlice struct {
	ByteStart int `json:"byteStart"`
	ByteEnd   int `json:"byteEnd"`
}

// Feature is one of a facet's meanings: a link (URI), a mention (DID) or a
// hashtag (Tag, without the '#').
type Feature struct {
	Type string `json:"$type"`
	URI  string `json:"uri,omitempty"`
	DID  string `json:"did,omitempty"`
	Tag  string `json:"tag,omitempty"`
}

// The facet feature types of the lexicon.
const (
	FeatureLink    = "app.bsky.richtext.facet#link"
	FeatureMention = "app.bsky.richtext.facet#mention"
	FeatureTag     = "app.bsky.richtext.facet#tag"
)

// links finds URLs with a scheme; Facets keeps http and https ones. xurls
// (Strict) knows where a URL ends before trailing punctuation and inside
// parentheses, which Bluesky's own documented regexp gets wrong.
var links = xurls.Strict()

// mention is the handle syntax of the atproto spec ("Handle"), after an @
// at the start of the text or after a character that is not a word
// character, as in Bluesky's docs (advanced-guides/posts.md).
var mention = regexp.MustCompile(`(?:^|\W)(@((?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?))\b`)

// maxTagGraphemes is the longest hashtag, without its '#' (lexicon
// app.bsky.richtext.facet#tag: maxGraphemes 64).
const maxTagGraphemes = 64

// Facets finds the links, mentions and hashtags of text, in byte order,
// with UTF-8 byte ranges. resolve turns a handle into its DID; a handle it
// cannot resolve (ok false) stays plain text. A mention or a hashtag inside
// a link is part of the link.
func Facets(text string, resolve func(handle string) (did string, ok bool)) []Facet {
	var out []Facet
	var linkRanges [][2]int
	for _, m := range links.FindAllStringIndex(text, -1) {
		u := text[m[0]:m[1]]
		if l := strings.ToLower(u); !strings.HasPrefix(l, "https://") && !strings.HasPrefix(l, "http://") {
			continue
		}
		linkRanges = append(linkRanges, [2]int{m[0], m[1]})
		out = append(out, Facet{Index: ByteSlice{m[0], m[1]}, Features: []Feature{{Type: FeatureLink, URI: u}}})
	}
	inLink := func(start, end int) bool {
		for _, r := range linkRanges {
			if start < r[1] && r[0] < end {
				return true
			}
		}
		return false
	}
	for _, m := range mention.FindAllStringSubmatchIndex(text, -1) {
		start, end := m[2], m[3]
		if inLink(start, end) {
			continue
		}
		handle := strings.ToLower(text[m[4]:m[5]])
		did, ok := resolve(handle)
		if !ok || did == "" {
			continue
		}
		out = append(out, Facet{Index: ByteSlice{start, end}, Features: []Feature{{Type: FeatureMention, DID: did}}})
	}
	for _, t := range hashtags(text) {
		if inLink(t.start, t.end) {
			continue
		}
		out = append(out, Facet{Index: ByteSlice{t.start, t.end}, Features: []Feature{{Type: FeatureTag, Tag: t.tag}}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index.ByteStart < out[j].Index.ByteStart })
	return out
}

type hashtag struct {
	start, end int // bytes of text, '#' included
	tag        string
}

// hashtags finds #tags as Bluesky's own client does (@atproto/api
// RichText.detectFacets): a '#' or '＃' at the start or after white space,
// then everything up to white space or an invisible separator, with
// trailing punctuation trimmed; not all digits (at least one character
// that is no digit and no punctuation), at most 64 graphemes. '#' followed
// by U+FE0F is the keycap emoji #️⃣, not a tag.
func hashtags(text string) []hashtag {
	var out []hashtag
	prev := ' '
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		if (r != '#' && r != '＃') || !unicode.IsSpace(prev) {
			prev = r
			i += size
			continue
		}
		start, body := i, i+size
		end := body
		for end < len(text) {
			c, n := utf8.DecodeRuneInString(text[end:])
			if unicode.IsSpace(c) || tagStop(c) {
				break
			}
			end += n
		}
		tag := strings.TrimRightFunc(text[body:end], unicode.IsPunct)
		prev = r
		i = body
		if tag == "" || strings.HasPrefix(tag, "\ufe0f") || uniseg.GraphemeClusterCount(tag) > maxTagGraphemes {
			continue
		}
		if !strings.ContainsFunc(tag, func(c rune) bool { return !unicode.IsDigit(c) && !unicode.IsPunct(c) }) {
			continue
		}
		out = append(out, hashtag{start: start, end: body + len(tag), tag: tag})
	}
	return out
}

// tagStop are the invisible characters that end a hashtag in Bluesky's
// client: soft hyphen, word joiner, hair space, zero-width space and
// joiners, combining enclosing keycap.
func tagStop(r rune) bool {
	switch r {
	case '\u00ad', '\u2060', '\u200a', '\u200b', '\u200c', '\u200d', '\u20e2':
		return true
	}
	return false
}
