package providers

import (
	"net/url"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// WebURL returns s when it is an absolute http or https URL with a host,
// else "": a link or picture a network names (a status's url, an avatar)
// goes to frontends that render it, and a hostile server could name
// javascript: or data: instead.
func WebURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return ""
	}
	return s
}

// TextLimit is one limit a post's text must fit, in a network's own unit.
type TextLimit struct {
	// Max is the most the network takes, in Unit.
	Max int `json:"max"`
	// Unit is what Count counts, as people read it: "characters",
	// "graphemes", "bytes" (UTF-8), "UTF-16 code units".
	Unit string `json:"unit"`
	// URLLength, when not 0, is what every link counts as, whatever its
	// length (Mastodon's characters_reserved_per_url).
	URLLength int `json:"urlLength,omitempty"`
	// Count counts text the way the network does.
	Count func(text string) int `json:"-"`
}

// Over returns the first limit text exceeds, with text's count in that
// limit's unit; ok is false when text fits them all.
func Over(limits []TextLimit, text string) (limit TextLimit, n int, ok bool) {
	for _, l := range limits {
		if n := l.Count(text); n > l.Max {
			return l, n, true
		}
	}
	return TextLimit{}, 0, false
}

// Graphemes is a limit in user-perceived characters: extended grapheme
// clusters of Unicode UAX #29 (an emoji with its modifiers is one), counted
// by rivo/uniseg as the atproto lexicon's maxGraphemes does.
func Graphemes(max int) TextLimit {
	return TextLimit{Max: max, Unit: "graphemes", Count: uniseg.GraphemeClusterCount}
}

// Bytes is a limit in UTF-8 bytes (the atproto lexicon's maxLength).
func Bytes(max int) TextLimit {
	return TextLimit{Max: max, Unit: "bytes", Count: func(s string) int { return len(s) }}
}

// Characters is a limit in Unicode code points.
func Characters(max int) TextLimit {
	return TextLimit{Max: max, Unit: "characters", Count: utf8.RuneCountInString}
}

// UTF16 is a limit in UTF-16 code units, where an emoji outside the Basic
// Multilingual Plane counts as two.
func UTF16(max int) TextLimit {
	return TextLimit{Max: max, Unit: "UTF-16 code units", Count: func(s string) int { return len(utf16.Encode([]rune(s))) }}
}
