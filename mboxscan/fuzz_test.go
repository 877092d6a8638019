package mboxscan

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzScan feeds arbitrary bytes to the Scanner, once through a
// bytes.Reader and once as a pure stream, and checks its promises: no
// panic, every error a *ParseError, the leading bytes and the spans tile
// the input, each span starts with a valid From_ line, header values stay
// within the header bound, and both readers give the same answer.
//
// Where the input has no CR and no Content-Length, the boundaries must be
// exactly the lines that parse as From_ lines (no longer than the scanner's
// From_ line bound).
func FuzzScan(f *testing.F) {
	for _, c := range scanCases() {
		f.Add(c.input())
	}
	for _, s := range []string{
		"",
		"\n\n",
		"garbage\n" + fromA + "a\n",
		fromA + "Content-Length: 2\n\nxx" + fromBody + "rest\n",
		fromA + "Content-Length: 0\n\n" + fromB,
		fromA + "Subject: x\n\n" + fromBody + fromBody + "\n" + fromB,
		fromA + fromB + fromC,
		"From here to eternity\n",
		strings.ReplaceAll(fromA+"a\n\n"+fromB+"b\n", "\n", "\r\n"),
		strings.ReplaceAll(fromA+"a\n\n"+fromB+"b\n", "\n", "\r"),
		fromA + "X-Long: " + strings.Repeat("x", 70<<10) + "\n\nbody\n" + fromB,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		seek := scanSpans(t, bytes.NewReader(data), len(data))
		stream := scanSpans(t, streamOnly{bytes.NewReader(data)}, len(data))
		for _, res := range []scanned{seek, stream} {
			if res.err != nil {
				var pe *ParseError
				if !errors.As(res.err, &pe) {
					t.Fatalf("error %v (%T) is not a *ParseError", res.err, res.err)
				}
				if !errors.Is(res.err, ErrNotMbox) || len(res.msgs) != 0 {
					t.Fatalf("error %v after %d messages; only ErrNotMbox can come from bytes in memory", res.err, len(res.msgs))
				}
				continue
			}
			checkTiling(t, data, res)
			for _, m := range res.msgs {
				checkHeaderBounded(t, m)
			}
		}
		// Small inputs are read in one chunk, so going back never matters:
		// a stream must give the very same result.
		if len(data) < chunkSize/2 && !sameScan(seek, stream) {
			t.Fatalf("bytes.Reader and stream disagree:\n seekable %v %q\n stream   %v %q",
				offsets(seek.msgs), seek.problems, offsets(stream.msgs), stream.problems)
		}
		if seek.err != nil {
			return
		}
		hasCL := bytes.Contains(bytes.ToLower(data), []byte("content-length"))
		// A boundary is a line start: every span but the last ends with a
		// line ending.
		for i, m := range seek.msgs[:max(len(seek.msgs)-1, 0)] {
			if end := data[m.Offset+m.Length-1]; end != '\n' && end != '\r' {
				if hasCL {
					t.Fatalf("Content-Length taken as landing on a boundary in the middle of a line (message %d ends %q)", i, end)
				}
				t.Fatalf("message %d at %d does not end with a line ending", i, m.Offset)
			}
		}
		if hasCL || bytes.IndexByte(data, '\r') >= 0 {
			return
		}
		if want := fromLineStarts(data); !reflect.DeepEqual(offsets(seek.msgs), want) {
			t.Fatalf("boundaries %v, want the From_ lines at %v", offsets(seek.msgs), want)
		}
		// A message marked Glued has a non-empty line before its From_ line.
		for i, m := range seek.msgs {
			if m.Glued && (m.Offset < 2 || data[m.Offset-2] == '\n') {
				t.Fatalf("message %d at %d marked Glued after a blank line", i, m.Offset)
			}
		}
	})
}

// fromLineStarts is the reference splitter for LF input without
// Content-Length: every line that parses as a From_ line and is no
// longer than the scanner's From_ line bound starts a message.
func fromLineStarts(data []byte) []int64 {
	out := []int64{}
	for off := 0; off < len(data); {
		line := data[off:]
		next := len(data)
		if j := bytes.IndexByte(line, '\n'); j >= 0 {
			line, next = line[:j], off+j+1
		}
		if len(line) < maxFromLine {
			if _, _, ok := ParseFromLine(line); ok {
				out = append(out, int64(off))
			}
		}
		off = next
	}
	return out
}

func sameScan(a, b scanned) bool {
	if len(a.msgs) != len(b.msgs) || a.leading != b.leading ||
		!reflect.DeepEqual(a.problems, b.problems) || (a.err == nil) != (b.err == nil) {
		return false
	}
	for i := range a.msgs {
		if !reflect.DeepEqual(*a.msgs[i], *b.msgs[i]) {
			return false
		}
	}
	return true
}
