package posts

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// checkText refuses text a post cannot publish, judged on what a reader
// sees rather than on its bytes. field names the text in the message
// ("content", "variant for <id>").
//
//   - invalid_content (Malformed): a control character (NUL, ESC, DEL, C1, ...)
//     other than a newline, a tab, or a carriage return that begins a CRLF
//     line break (as Windows clients and HTML forms send them); a lone CR
//     moves a terminal's cursor and means nothing on a network.
//   - invalid_content (Malformed): a noncharacter (U+FDD0..U+FDEF and the last
//     two of every plane, U+FFFE, U+FFFF, ...), which Unicode keeps for a
//     program's own use and never for interchange. Code points Go's tables
//     (unicode.Version) do not know are taken: Unicode assigns new
//     characters every year (scripts, CJK extensions, emoji) and people
//     type them before Go's tables know them. Private-use characters are
//     taken too: icon fonts and logos (U+F8FF) use them.
//   - empty_content (Malformed): nothing visible once white space
//     (unicode.IsSpace) and characters that render as nothing are taken
//     out: format characters (category Cf: U+200B, U+2060, U+FEFF, ...),
//     the rest of Unicode's default-ignorable code points (U+3164 HANGUL
//     FILLER, variation selectors, ...), U+2800 BRAILLE PATTERN BLANK (a
//     glyph drawn blank, the usual "empty post" trick) and combining
//     marks (Mn, Me: U+0301, U+20DD), which show only on a base character.
func checkText(field, text string) error {
	visible, err := checkChars(field, text)
	if err != nil {
		return err
	}
	if !visible {
		return &InvalidError{Kind: Malformed, Code: "empty_content",
			Message: fmt.Sprintf("The %s is empty: it has no visible character.", field)}
	}
	return nil
}

// checkChars refuses the control characters and noncharacters checkText
// refuses, as invalid_content, and says whether text shows anything.
func checkChars(field, text string) (visible bool, err error) {
	for i, r := range text {
		if unicode.IsControl(r) && r != '\n' && r != '\t' && (r != '\r' || !crlfAt(text, i)) {
			return false, &InvalidError{Kind: Malformed, Code: "invalid_content",
				Message: fmt.Sprintf("The %s holds the control character U+%04X at byte %d; only line breaks (LF or CRLF) and tabs may be used.", field, r, i)}
		}
		if noncharacter(r) {
			return false, &InvalidError{Kind: Malformed, Code: "invalid_content",
				Message: fmt.Sprintf("The %s holds U+%04X at byte %d, a noncharacter, which is not meant to be sent as text.", field, r, i)}
		}
		if !visible && !invisible(r) {
			visible = true
		}
	}
	return visible, nil
}

func crlfAt(text string, i int) bool {
	r, _ := utf8.DecodeRuneInString(text[i+1:])
	return r == '\n'
}

// invisible: white space, or a character that renders as nothing
// (Unicode's Default_Ignorable_Code_Point, which is Cf, variation
// selectors and Other_Default_Ignorable_Code_Point, bar a few), the blank
// braille pattern, or a combining mark, which shows only on a base.
func invisible(r rune) bool {
	return unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) ||
		unicode.Is(unicode.Variation_Selector, r) || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) ||
		r == brailleBlank || unicode.In(r, unicode.Mn, unicode.Me)
}

const brailleBlank = '\u2800'

// noncharacter reports Unicode's 66 noncharacters: U+FDD0..U+FDEF and
// U+nFFFE, U+nFFFF in each of the 17 planes.
func noncharacter(r rune) bool {
	return (r >= 0xFDD0 && r <= 0xFDEF) || r&0xFFFE == 0xFFFE
}
