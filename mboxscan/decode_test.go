package mboxscan

import (
	"testing"
	"unicode/utf8"
)

// FuzzDecodeHeader: any raw header value (RFC 2047 words in any charset,
// broken ones included) decodes to valid UTF-8 without control characters
// that could reach a terminal or a notice.
func FuzzDecodeHeader(f *testing.F) {
	for _, s := range []string{
		"=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=",
		"=?Shift_JIS?B?g2WDWINn?=",
		"=?UTF-8?Q?caf=C3=A9?= and more",
		"=?utf-8?b?invalid base64?=", "=?x-unknown?Q?a?=", "plain \x1b[31mred", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out := DecodeHeader(raw)
		if !utf8.ValidString(out) {
			t.Errorf("%q: not UTF-8: %q", raw, out)
		}
		for _, r := range out {
			if r < 0x20 && r != '\t' || r == 0x7f {
				t.Errorf("%q: control character %U in %q", raw, r, out)
			}
		}
	})
}
