package bluesky_test

import (
	"reflect"
	"testing"

	"github.com/postflow/postflow/providers/bluesky"
)

// span is a facet as a test reads it: the text it covers and its meaning.
type span struct{ text, kind, value string }

func spans(text string, fs []bluesky.Facet) []span {
	var out []span
	for _, f := range fs {
		s := span{text: text[f.Index.ByteStart:f.Index.ByteEnd]}
		for _, ft := range f.Features {
			switch ft.Type {
			case bluesky.FeatureLink:
				s.kind, s.value = "link", ft.URI
			case bluesky.FeatureMention:
				s.kind, s.value = "mention", ft.DID
			case bluesky.FeatureTag:
				s.kind, s.value = "tag", ft.Tag
			}
		}
		out = append(out, s)
	}
	return out
}

func TestFacets(t *testing.T) {
	known := map[string]string{"alice.test": "did:plc:alice", "bob.bsky.social": "did:plc:bob"}
	resolve := func(h string) (string, bool) { d, ok := known[h]; return d, ok }
	for _, tc := range []struct {
		name string
		text string
		want []span
	}{
		{"plain", "hello world", nil},
		{"emoji before a link: bytes, not characters",
			"👩‍👩‍👧 see https://example.com/a?b=c", []span{{"https://example.com/a?b=c", "link", "https://example.com/a?b=c"}}},
		{"multi-byte around a link and a tag",
			"Grüße → https://exämple.de/päth. #München!", []span{
				{"https://exämple.de/päth", "link", "https://exämple.de/päth"},
				{"#München", "tag", "München"}}},
		{"link in parentheses ends before the parenthesis",
			"(see https://example.com/x)", []span{{"https://example.com/x", "link", "https://example.com/x"}}},
		{"no scheme: not a link", "example.com and ftp://example.com", nil},
		{"mention resolved, trailing dot not part of it",
			"hi @alice.test.", []span{{"@alice.test", "mention", "did:plc:alice"}}},
		{"mention, upper case resolved in lower case",
			"(@Bob.Bsky.Social) ok", []span{{"@Bob.Bsky.Social", "mention", "did:plc:bob"}}},
		{"unresolvable mention stays text", "hi @nobody.test", nil},
		{"an email is no mention", "mail me@alice.test", nil},
		{"mention inside a link is the link's",
			"https://bsky.app/@alice.test", []span{{"https://bsky.app/@alice.test", "link", "https://bsky.app/@alice.test"}}},
		{"tag after white space only", "a#b #c", []span{{"#c", "tag", "c"}}},
		{"tag all digits is no tag", "#2026 #1a", []span{{"#1a", "tag", "1a"}}},
		{"tag trailing punctuation trimmed", "#go!!! #go-lang.", []span{{"#go", "tag", "go"}, {"#go-lang", "tag", "go-lang"}}},
		{"full-width hash", "＃タグ", []span{{"＃タグ", "tag", "タグ"}}},
		{"keycap emoji is no tag", "#️⃣ fun", nil},
		{"tag ends at a zero-width space", "#tag\u200bmore", []span{{"#tag", "tag", "tag"}}},
		{"tag of 64 graphemes", "#" + repeat("a", 64), []span{{"#" + repeat("a", 64), "tag", repeat("a", 64)}}},
		{"tag of 65 graphemes is none", "#" + repeat("a", 65), nil},
		{"anchor in a link is no tag",
			"https://example.com/#frag", []span{{"https://example.com/#frag", "link", "https://example.com/#frag"}}},
		{"all three, in byte order",
			"🎉 #launch by @alice.test: https://example.com", []span{
				{"#launch", "tag", "launch"},
				{"@alice.test", "mention", "did:plc:alice"},
				{"https://example.com", "link", "https://example.com"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := spans(tc.text, bluesky.Facets(tc.text, resolve))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Facets(%q)\n got %q\nwant %q", tc.text, got, tc.want)
			}
		})
	}
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}
