package mboxscan

import (
	"mime"
	"strings"
	"unicode"

	"github.com/emersion/go-message/charset"
)

// wordDecoder decodes RFC 2047 encoded words in any charset go-message
// knows (ISO-2022-JP, Shift_JIS, windows-125x, KOI8-R, ...), not only the
// UTF-8, US-ASCII and ISO-8859-1 of the standard library.
var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// DecodeHeader decodes the RFC 2047 encoded words of a raw header value
// and returns printable text: control characters become spaces, runs of
// white space one space, and invalid UTF-8 (raw 8-bit headers) U+FFFD. A
// malformed or unknown-charset word is left as it is.
func DecodeHeader(raw string) string {
	s := raw
	if strings.Contains(s, "=?") {
		if d, err := wordDecoder.DecodeHeader(s); err == nil {
			s = d
		} else {
			s = decodeWords(s)
		}
	}
	return CleanText(s)
}

// decodeWords decodes what it can when the whole value does not decode:
// each white-space separated word on its own.
func decodeWords(s string) string {
	f := strings.Fields(s)
	for i, w := range f {
		if d, err := wordDecoder.DecodeHeader(w); err == nil {
			f[i] = d
		}
	}
	return strings.Join(f, " ")
}

// CleanText makes text printable on a terminal or in a notice: invalid
// UTF-8 becomes U+FFFD, control characters and line separators spaces,
// bidi overrides (which could make a subject read backwards) vanish, and
// runs of white space become one space.
func CleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		// Bidi overrides could make a subject read backwards.
		if unicode.Is(unicode.Bidi_Control, r) {
			return -1
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}
