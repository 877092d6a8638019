package mboxscan

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParseMaildirName: any file name parses without panicking, sizes are
// never negative, and the flags are what follows the info separator.
func FuzzParseMaildirName(f *testing.F) {
	for _, s := range []string{
		"1379857166.25979_1.hottie,2,S",
		"1463941010.5f7fa6dd4922c183dc457d033deee9d7",
		"1700000000.M1P2.host,S=1234,W=1260:2,FS",
		"1252168370_3.10361.mindcrime!2,S",
		"x:1,", ",S=-5:2,", ",S=99999999999999999999", ":2,", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		n := parseMaildirName(name)
		if n.size < 0 {
			t.Errorf("%q: size %d", name, n.size)
		}
		if n.stamp < 0 {
			t.Errorf("%q: stamp %d", name, n.stamp)
		}
		if n.flags != "" && !strings.HasSuffix(name, n.flags) {
			t.Errorf("%q: flags %q are not its end", name, n.flags)
		}
	})
}

// FuzzParseMaildirsize: a maildirsize file of any content gives a quota or
// an error, never a panic, and limits are never negative.
func FuzzParseMaildirsize(f *testing.F) {
	for _, s := range []string{
		"1000000S,1000C\n1234 5\n-200 -1\n",
		"S\n", "0S\n", "5000C\n12 1\n12", "garbage\n1 1\n", "", "\n\n",
		"9223372036854775807S\n9223372036854775807 1\n1 1\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := ParseMaildirsize(bytes.NewReader(data))
		if err != nil || q == nil {
			return
		}
		if q.LimitBytes < 0 || q.LimitMessages < 0 {
			t.Errorf("%q: negative limits %+v", data, q)
		}
	})
}
