package mboxscan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// streamOnly hides every method but Read (notably Seek), so the scanner
// must treat the input as a pure stream.
type streamOnly struct{ r io.Reader }

func (s streamOnly) Read(p []byte) (int, error) { return s.r.Read(p) }

// stutterReader returns at most n bytes per Read, so chunk boundaries fall
// at multiples of n instead of at multiples of the scanner's chunk size.
type stutterReader struct {
	r io.Reader
	n int
}

func (s *stutterReader) Read(p []byte) (int, error) {
	if len(p) > s.n {
		p = p[:s.n]
	}
	return s.r.Read(p)
}

// readerKind builds the reader a scan goes through: the scanner must give
// the same answer whichever it gets.
type readerKind struct {
	name string
	open func(t testing.TB, data []byte) io.Reader
}

var readerKinds = []readerKind{
	{"bytes.Reader", func(_ testing.TB, data []byte) io.Reader { return bytes.NewReader(data) }},
	{"stream", func(_ testing.TB, data []byte) io.Reader { return streamOnly{bytes.NewReader(data)} }},
	{"os.File", func(t testing.TB, data []byte) io.Reader {
		p := filepath.Join(t.TempDir(), "mbox")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}},
}

// scanned is everything a Scanner said about one input.
type scanned struct {
	msgs     []*Message
	leading  int64
	offset   int64
	problems []string
	err      error // the error that ended the scan; nil when it ended with io.EOF
}

// scanSpans runs a Scanner over r to the end.
func scanSpans(t testing.TB, r io.Reader, size int) scanned {
	t.Helper()
	sc := NewScanner(r, "test.mbox")
	defer sc.Close()
	var res scanned
	for n := 0; ; n++ {
		if n > size+1 {
			t.Fatalf("more than %d messages from %d bytes: the scanner loops", n, size)
		}
		m, err := sc.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			res.err = err
			break
		}
		if m == nil {
			t.Fatal("Next returned a nil message without an error")
		}
		res.msgs = append(res.msgs, m)
	}
	res.leading = sc.Leading()
	res.offset = sc.Offset()
	res.problems = sc.Problems()
	return res
}

// checkTiling checks the scanner's central promise: the leading bytes and
// the messages' spans, concatenated, are the input, byte for byte, and
// each span starts with a valid From_ line.
func checkTiling(t testing.TB, data []byte, res scanned) {
	t.Helper()
	if res.err != nil {
		return
	}
	pos := res.leading
	if pos < 0 || pos > int64(len(data)) {
		t.Fatalf("Leading() = %d outside the input (%d bytes)", pos, len(data))
	}
	for i, m := range res.msgs {
		if m.Offset != pos {
			t.Fatalf("message %d at offset %d, want %d (spans must tile the input)", i, m.Offset, pos)
		}
		if m.Length <= 0 || m.Offset+m.Length > int64(len(data)) {
			t.Fatalf("message %d: span [%d,+%d) outside the input (%d bytes)", i, m.Offset, m.Length, len(data))
		}
		span := data[m.Offset : m.Offset+m.Length]
		// FromLine is the span's first line, without its line ending.
		rest, found := bytes.CutPrefix(span, []byte(m.FromLine))
		if !found || len(rest) > 0 && rest[0] != '\n' && rest[0] != '\r' {
			t.Fatalf("message %d: FromLine %q is not the first line of its span %q", i, clip([]byte(m.FromLine)), clip(span))
		}
		if _, _, ok := ParseFromLine([]byte(m.FromLine)); !ok {
			t.Fatalf("message %d at offset %d does not start with a valid From_ line: %q", i, m.Offset, clip(span))
		}
		pos += m.Length
	}
	if pos != int64(len(data)) {
		t.Fatalf("leading + spans cover %d bytes, want %d", pos, len(data))
	}
	if res.offset != int64(len(data)) {
		t.Errorf("Offset() = %d after io.EOF, want %d", res.offset, len(data))
	}
}

// spanText returns the bytes of each message's span.
func spanText(data []byte, msgs []*Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(data[m.Offset : m.Offset+m.Length])
	}
	return out
}

func clipAll(spans []string) string {
	var b strings.Builder
	for i, s := range spans {
		fmt.Fprintf(&b, "  %d: %q\n", i, clip([]byte(s)))
	}
	return b.String()
}

func clip(b []byte) string {
	if len(b) > 120 {
		return string(b[:120]) + "…"
	}
	return string(b)
}

// want describes one expected message. Fields left zero are not checked,
// except span, which always is.
type want struct {
	span      string
	sender    *string
	header    *Header // when set, the whole Header must equal it
	pseudo    bool
	truncated bool
	bounce    bool
	glued     *bool // nil: not checked
}

func str(s string) *string { return &s }

var yes, no = func() *bool { b := true; return &b }(), new(bool)

// cl is a Content-Length field counting body; clv is its value.
func cl(body string) string  { return "Content-Length: " + clv(body) }
func clv(body string) string { return fmt.Sprint(len(body)) }

const (
	fromA = "From alice@example.org Mon Jan  6 10:00:00 2025\n"
	fromB = "From bob@example.org Tue Jan  7 11:00:00 2025\n"
	fromC = "From carol@example.org Wed Jan  8 12:00:00 2025\n"
	// A valid From_ line in a body: unescaped, it is a boundary unless a
	// Content-Length steps over it.
	fromBody = "From mallory@example.org Thu Jan  9 13:00:00 2025\n"
)

// hdr builds a header of the given lines (each without its newline), then
// the blank line.
func hdr(lines ...string) string { return strings.Join(lines, "\n") + "\n\n" }

// scanCase is an input given as its leading bytes and the spans it must
// split into.
type scanCase struct {
	name     string
	leading  string
	msgs     []want
	problems []string // substrings, one per expected problem, in order
}

func (c scanCase) input() []byte {
	var b strings.Builder
	b.WriteString(c.leading)
	for _, w := range c.msgs {
		b.WriteString(w.span)
	}
	return []byte(b.String())
}

// scanCases are the scanner's table tests; the fuzz tests start from them.
func scanCases() []scanCase {
	return []scanCase{
		{
			name: "mboxo two messages",
			msgs: []want{
				{span: fromA + hdr("Subject: one", "From: Alice <alice@example.org>") + "body 1\n\n",
					sender: str("alice@example.org"), glued: no,
					header: &Header{Subject: "one", From: "Alice <alice@example.org>"}},
				{span: fromB + hdr("Subject: two") + "body 2\n", sender: str("bob@example.org"), glued: no},
			},
		},
		{
			name: "mboxrd escaped From lines are body text",
			msgs: []want{
				{span: fromA + hdr("Subject: rd") + ">From alice Mon Jan  6 10:00:00 2025\n>>From x\n\n>From bob@example.org Tue Jan  7 11:00:00 2025\n\n"},
				{span: fromB + hdr("Subject: two") + "body\n"},
			},
		},
		{
			name: "From body line without a date is body text",
			msgs: []want{
				{span: fromA + hdr("Subject: x") + "From here to eternity\n\nFrom here to eternity, again\nFrom: not a header\nFrom \n\n"},
				{span: fromB + hdr("Subject: y") + "body\n"},
			},
		},
		{
			name: "no blank line before the next From_ line",
			msgs: []want{
				{span: fromA + hdr("Subject: odd") + "message1\n"},
				{span: fromB + "message2\n", glued: yes},
			},
		},
		{
			name: "From_ line where the header should be ends the message",
			msgs: []want{
				{span: fromA, header: &Header{}},
				{span: fromB + hdr("Subject: b") + "b\n"},
			},
		},
		{
			name: "header without a blank line: body starts at the first non-field line",
			msgs: []want{
				{span: fromA + "Subject: s\nthis is body\nStatus: RO\n", header: &Header{Subject: "s"}},
				{span: fromB + hdr("Subject: b") + "b\n", glued: yes},
			},
		},
		{
			name: "mboxcl2 Content-Length lands on a blank line and a From_ line",
			msgs: []want{
				{span: fromA + hdr("Subject: cl", cl("line\n"+fromBody+"trailing text\n")) + "line\n" + fromBody + "trailing text\n" + "\n",
					header: &Header{Subject: "cl", ContentLength: clv("line\n" + fromBody + "trailing text\n")}},
				{span: fromB + hdr("Subject: b", "Content-Length: 2") + "b\n"},
			},
		},
		{
			name: "mboxcl Content-Length lands exactly on a From_ line",
			msgs: []want{
				{span: fromA + hdr(cl(">From x\n"+fromBody)) + ">From x\n" + fromBody},
				{span: fromB + hdr("Content-Length: 0")},
				{span: fromC + "\n"},
			},
		},
		{
			name: "Content-Length lands on the end of the input",
			msgs: []want{
				{span: fromA + hdr(cl(fromBody+"x")) + fromBody + "x"},
			},
			problems: []string{"does not end with a line ending"},
		},
		{
			name: "Content-Length lands on a blank line at the end of the input",
			msgs: []want{
				{span: fromA + hdr(cl(fromBody)) + fromBody + "\n"},
			},
		},
		{
			name: "Content-Length too long falls back to the next From_ line",
			msgs: []want{
				{span: fromA + hdr("Content-Length: 100") + "short\n\n"},
				{span: fromB + hdr("Subject: b") + "body of b, long enough to hold the wrong target\n" + strings.Repeat("x", 100) + "\n"},
			},
		},
		{
			name: "Content-Length too short falls back to the next From_ line",
			msgs: []want{
				{span: fromA + hdr("Content-Length: 3") + "longer body\nline 2\n\n"},
				{span: fromB + "b\n"},
			},
		},
		{
			name: "Content-Length too short with an unescaped From_ line past the target",
			msgs: []want{
				{span: fromA + hdr("Content-Length: 3") + "longer body\n"},
				{span: fromBody + "rest of a's body\n\n", glued: yes},
				{span: fromB + "b\n", glued: no},
			},
		},
		{
			name: "Content-Length past the end of the input",
			msgs: []want{
				{span: fromA + hdr("Content-Length: 5000") + "short\n"},
			},
			problems: []string{"runs past the end"},
		},
		{
			name: "unusable Content-Length is ignored",
			msgs: []want{
				{span: fromA + hdr("Content-Length: -5") + "a\n\n"},
				{span: fromB + hdr("Content-Length: many") + "b\n\n"},
				{span: fromC + hdr("Content-Length: 99999999999999999999999") + "c\n"},
			},
		},
		{
			name:    "leading garbage",
			leading: "this is not mail\nnor is this\n\n",
			msgs: []want{
				{span: fromA + hdr("Subject: a") + "a\n"},
			},
			problems: []string{"leading garbage"},
		},
		{
			name:    "blank lines before the first From_ line are no problem",
			leading: "\n\n \n",
			msgs: []want{
				{span: fromA + hdr("Subject: a") + "a\n"},
			},
		},
		{
			name: "missing final newline",
			msgs: []want{
				{span: fromA + hdr("Subject: a") + "a\n\n"},
				{span: fromB + hdr("Subject: b") + "no newline"},
			},
			problems: []string{"does not end with a line ending"},
		},
		{
			name: "header only, ends without newline",
			msgs: []want{
				{span: strings.TrimSuffix(fromA, "\n"), header: &Header{}},
			},
			problems: []string{"does not end with a line ending"},
		},
		{
			name: "pseudo-message",
			msgs: []want{
				{span: fromA + hdr("Date: 06 Jan 2025 10:00:00 +0000",
					"From: Mail System Internal Data <MAILER-DAEMON@example.org>",
					"Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA",
					"Message-ID: <1736157600@example.org>",
					"X-IMAP: 1736157600 0000000002",
					"Status: RO") + "This text is part of the internal format of your mail folder.\n\n",
					pseudo: true},
				{span: fromB + hdr("Subject: real") + "b\n"},
			},
		},
		{
			name: "pseudo subject on a later message is an ordinary message",
			msgs: []want{
				{span: fromA + hdr("Subject: a") + "a\n\n"},
				{span: fromB + hdr("Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA", "X-IMAP: 1 2") + "b\n"},
			},
		},
		{
			name: "folded header fields and the fields mailkeep keeps",
			msgs: []want{
				{span: fromA + hdr(
					"Received: from x",
					"\tby y; Mon, 6 Jan 2025 10:00:00 +0000",
					"Subject: a long",
					"  subject",
					"\tfolded",
					"subject: second subject is ignored",
					"DATE: Mon, 6 Jan 2025 10:00:00 +0000",
					"Message-Id: <m1@example.org>",
					"From: Alice",
					" <alice@example.org>",
					"Status: RO",
					"X-Status: AF",
					"X-Keywords: $label1",
					"Content-Type: multipart/mixed;",
					"\tboundary=\"b1\"",
					"X-IMAPbase: 1736157600 2",
					"Return-Path: <alice@example.org>",
					"X-Other: dropped",
				) + "a\n",
					header: &Header{
						Date: "Mon, 6 Jan 2025 10:00:00 +0000", MessageID: "<m1@example.org>",
						From: "Alice <alice@example.org>", Subject: "a long subject folded",
						Status: "RO", XStatus: "AF", XKeywords: "$label1",
						ContentType: "multipart/mixed; boundary=\"b1\"", XIMAPBase: "1736157600 2",
						ReturnPath: "<alice@example.org>",
					}},
			},
		},
		{
			name: "bounces",
			msgs: []want{
				{span: "From MAILER-DAEMON Mon Jan  6 10:00:00 2025\n" + hdr("Subject: Undelivered Mail") + "x\n\n",
					sender: str("MAILER-DAEMON"), bounce: true},
				{span: "From  Mon Jan  6 10:00:00 2025\n" + hdr("Subject: empty sender") + "x\n\n",
					sender: str(""), bounce: true},
				{span: "From <> Mon Jan  6 10:00:00 2025\n" + hdr("Subject: null sender") + "x\n\n",
					sender: str(""), bounce: true},
				{span: fromA + hdr("Content-Type: multipart/report;", "\treport-type=\"delivery-status\";", "\tboundary=\"x\"") + "x\n\n",
					bounce: true},
				{span: fromB + hdr("Content-Type: Multipart/Report; report-type=delivery-status; boundary=y") + "x\n\n",
					bounce: true},
				{span: fromC + hdr("Content-Type: multipart/report; report-type=disposition-notification") + "x\n",
					bounce: false},
			},
		},
		{
			name: "From_ line longer than 1024 bytes is not a boundary",
			msgs: []want{
				{span: fromA + hdr("Subject: a") + "x\n\nFrom " + strings.Repeat("x", 1100) + " Mon Jan  6 10:00:00 2025\n"},
			},
		},
		{
			name: "CRLF",
			msgs: []want{
				{span: crlf(fromA + hdr("Subject: one", "Content-Type: text/plain;", " charset=utf-8") + ">From x\nbody\n\n"),
					sender: str("alice@example.org"),
					header: &Header{Subject: "one", ContentType: "text/plain; charset=utf-8"}},
				{span: crlf(fromB + hdr("Subject: two") + "body\n"), header: &Header{Subject: "two"}, glued: no},
			},
		},
		{
			name: "CRLF Content-Length",
			msgs: []want{
				{span: crlf(fromA+hdr(cl(crlf(fromBody)))) + crlf(fromBody) + "\r\n",
					header: &Header{ContentLength: clv(crlf(fromBody))}},
				{span: crlf(fromB + "b\n")},
			},
		},
		{
			name: "CRLF glued",
			msgs: []want{
				{span: crlf(fromA + hdr("Subject: one") + "body\n")},
				{span: crlf(fromB + "b\n"), glued: yes},
			},
		},
		{
			name: "CR only glued",
			msgs: []want{
				{span: cronly(fromA + hdr("Subject: one") + "body\n")},
				{span: cronly(fromB + "b\n"), glued: yes},
			},
		},
		{
			name: "CR only (old Mac)",
			msgs: []want{
				{span: cronly(fromA + hdr("Subject: one", "Subject2: x") + "body\nFrom here to eternity\n\n"),
					sender: str("alice@example.org"), header: &Header{Subject: "one"}},
				{span: cronly(fromB + hdr("Subject: two") + "body\n"), header: &Header{Subject: "two"}, glued: no},
			},
		},
	}
}

func TestScannerTable(t *testing.T) {
	for _, tt := range scanCases() {
		data := tt.input()
		for _, rk := range readerKinds {
			t.Run(tt.name+"/"+rk.name, func(t *testing.T) {
				res := scanSpans(t, rk.open(t, data), len(data))
				if res.err != nil {
					t.Fatalf("scan: %v", res.err)
				}
				checkTiling(t, data, res)
				if res.leading != int64(len(tt.leading)) {
					t.Errorf("Leading() = %d, want %d", res.leading, len(tt.leading))
				}
				got := spanText(data, res.msgs)
				if len(got) != len(tt.msgs) {
					t.Fatalf("got %d messages, want %d:\n%s", len(got), len(tt.msgs), clipAll(got))
				}
				for i, w := range tt.msgs {
					m := res.msgs[i]
					if got[i] != w.span {
						t.Errorf("message %d span:\n got %q\nwant %q", i, clip([]byte(got[i])), clip([]byte(w.span)))
					}
					if !m.HasEnvelope {
						t.Errorf("message %d: HasEnvelope false", i)
					}
					if m.Received.IsZero() || !m.Saved.Equal(m.Received) {
						t.Errorf("message %d: Received %v, Saved %v", i, m.Received, m.Saved)
					}
					if w.sender != nil && m.Sender != *w.sender {
						t.Errorf("message %d: Sender = %q, want %q", i, m.Sender, *w.sender)
					}
					if w.header != nil && m.Header != *w.header {
						t.Errorf("message %d: Header =\n %+v\nwant\n %+v", i, m.Header, *w.header)
					}
					if m.Pseudo != w.pseudo {
						t.Errorf("message %d: Pseudo = %v, want %v", i, m.Pseudo, w.pseudo)
					}
					if m.HeaderTruncated != w.truncated {
						t.Errorf("message %d: HeaderTruncated = %v, want %v", i, m.HeaderTruncated, w.truncated)
					}
					if w.glued != nil && m.Glued != *w.glued {
						t.Errorf("message %d: Glued = %v, want %v", i, m.Glued, *w.glued)
					}
					if m.Bounce() != w.bounce {
						t.Errorf("message %d: Bounce() = %v, want %v", i, m.Bounce(), w.bounce)
					}
					checkHeaderBounded(t, m)
				}
				checkProblems(t, res.problems, tt.problems)
			})
		}
	}
}

func checkProblems(t testing.TB, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("problems = %q, want %d matching %q", got, len(want), want)
		return
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("problem %d = %q, want it to mention %q", i, got[i], want[i])
		}
	}
}

// checkHeaderBounded checks that no kept header value outgrew the
// scanner's header bound.
func checkHeaderBounded(t testing.TB, m *Message) {
	t.Helper()
	h := m.Header
	for _, v := range []string{h.Date, h.MessageID, h.From, h.Subject, h.Status, h.XStatus,
		h.XKeywords, h.ContentLength, h.ContentType, h.XIMAP, h.XIMAPBase, h.ReturnPath} {
		if len(v) > maxHeader {
			t.Fatalf("message at %d: header value of %d bytes, over the %d bound", m.Offset, len(v), maxHeader)
		}
	}
	if len(m.FromLine) > maxFromLine {
		t.Fatalf("message at %d: From_ line of %d bytes", m.Offset, len(m.FromLine))
	}
}

func crlf(s string) string   { return strings.ReplaceAll(s, "\n", "\r\n") }
func cronly(s string) string { return strings.ReplaceAll(s, "\n", "\r") }

func TestScannerEmptyAndNotMbox(t *testing.T) {
	for _, in := range []string{"", "\n", "\n\n  \n", "\r\n\r\n"} {
		for _, rk := range readerKinds {
			t.Run(fmt.Sprintf("%q/%s", in, rk.name), func(t *testing.T) {
				res := scanSpans(t, rk.open(t, []byte(in)), len(in))
				if res.err != nil || len(res.msgs) != 0 {
					t.Fatalf("got %d messages, err %v; want an empty mbox", len(res.msgs), res.err)
				}
				checkTiling(t, []byte(in), res)
				checkProblems(t, res.problems, nil)
			})
		}
	}
	for _, in := range []string{
		"hello\n",
		"From here to eternity\n",
		"Subject: x\n\nFrom: a\n",
		"\x00\x01\x02binary",
		">From a Mon Jan  6 10:00:00 2025\n",
		strings.Repeat("no mail here\n", 200000), // over one chunk
	} {
		for _, rk := range readerKinds {
			t.Run(fmt.Sprintf("%q/%s", clip([]byte(in)), rk.name), func(t *testing.T) {
				res := scanSpans(t, rk.open(t, []byte(in)), len(in))
				var pe *ParseError
				if !errors.As(res.err, &pe) || !errors.Is(res.err, ErrNotMbox) {
					t.Fatalf("err = %v (%T), want a *ParseError wrapping ErrNotMbox", res.err, res.err)
				}
				if pe.Path != "test.mbox" || !strings.Contains(pe.Error(), "test.mbox") {
					t.Errorf("error %q does not name the path", pe)
				}
				if len(res.msgs) != 0 {
					t.Errorf("got %d messages", len(res.msgs))
				}
				// The error sticks.
				sc := NewScanner(rk.open(t, []byte(in)), "test.mbox")
				defer sc.Close()
				for range 3 {
					if _, err := sc.Next(); !errors.Is(err, ErrNotMbox) {
						t.Fatalf("Next again: %v", err)
					}
				}
			})
		}
	}
}

// errAfter returns data then a read error.
type errAfter struct {
	r   io.Reader
	err error
}

func (e *errAfter) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, e.err
	}
	return n, err
}

func TestScannerReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	data := fromA + hdr("Subject: a") + "a\n\n" + fromB + "partial"
	res := scanSpans(t, &errAfter{strings.NewReader(data), boom}, len(data))
	var pe *ParseError
	if !errors.As(res.err, &pe) || !errors.Is(res.err, boom) {
		t.Fatalf("err = %v, want a *ParseError wrapping the read error", res.err)
	}
}

// TestScannerContentLengthMidLine: a Content-Length that lands in the
// middle of a line is not on a message boundary (a boundary is a From_
// line at the start of the input or after a line ending), even when the
// rest of that line reads like a From_ line.
func TestScannerContentLengthMidLine(t *testing.T) {
	data := []byte(fromA + hdr("Content-Length: 2") + "xx" + fromBody + "rest\n")
	for _, rk := range readerKinds {
		t.Run(rk.name, func(t *testing.T) {
			res := scanSpans(t, rk.open(t, data), len(data))
			if res.err != nil {
				t.Fatal(res.err)
			}
			if len(res.msgs) != 1 {
				t.Fatalf("Content-Length landing mid-line on %q is taken as a boundary: got %d messages %q, want 1",
					fromBody, len(res.msgs), clipAll(spanText(data, res.msgs)))
			}
			checkTiling(t, data, res)
		})
	}
}

// TestScannerHeaderTruncatedSmallFile: a header over the bound in a file
// that fits in one chunk (the usual case) must be flagged like one in a
// big file.
func TestScannerHeaderTruncatedSmallFile(t *testing.T) {
	data := []byte(fromA + "Subject: s\nX-Long: " + strings.Repeat("a", 70<<10) + "\n\nbody\n")
	res := scanSpans(t, bytes.NewReader(data), len(data))
	checkTiling(t, data, res)
	if len(res.msgs) != 1 {
		t.Fatalf("got %d messages", len(res.msgs))
	}
	m := res.msgs[0]
	if m.Header.Subject != "s" {
		t.Errorf("Subject = %q, want s", m.Header.Subject)
	}
	if !m.HeaderTruncated || len(res.problems) != 1 {
		t.Fatalf("header of %d bytes at the end of the input: HeaderTruncated = %v, problems %q; want true and one problem",
			len(data)-len(fromA), m.HeaderTruncated, res.problems)
	}
}

// filler returns n bytes of body text in lines (n >= 1), with a line
// that starts "From " but is no From_ line now and then.
func filler(n int) string {
	var b strings.Builder
	b.Grow(n)
	line := 0
	for b.Len() < n {
		r := n - b.Len()
		switch {
		case r <= 73:
			b.WriteString(strings.Repeat("z", r-1))
		case line%50 == 7:
			b.WriteString("From here to eternity " + strings.Repeat("f", 50))
		default:
			b.WriteString(strings.Repeat("y", 72))
		}
		b.WriteByte('\n')
		line++
	}
	return b.String()
}

// TestScannerHeaderTruncated: a header over the bound, in a file big
// enough that the header's end is not in the last chunk.
func TestScannerHeaderTruncated(t *testing.T) {
	long := "X-Long: " + strings.Repeat("a", 70<<10) + "\n"
	m1 := fromA + "Subject: before\n" + long + "Status: RO\n\n" + filler(2<<20)
	m2 := fromB + hdr("Subject: b") + "b\n"
	data := []byte(m1 + m2)
	for _, rk := range readerKinds {
		t.Run(rk.name, func(t *testing.T) {
			res := scanSpans(t, rk.open(t, data), len(data))
			if res.err != nil {
				t.Fatal(res.err)
			}
			checkTiling(t, data, res)
			got := spanText(data, res.msgs)
			if len(got) != 2 || got[0] != m1 || got[1] != m2 {
				t.Fatalf("spans:\n%s", clipAll(got))
			}
			m := res.msgs[0]
			if !m.HeaderTruncated || m.Header.Subject != "before" || m.Header.Status != "" {
				t.Errorf("HeaderTruncated %v, Subject %q, Status %q; want true, \"before\", \"\" (cut before it)",
					m.HeaderTruncated, m.Header.Subject, m.Header.Status)
			}
			if res.msgs[1].HeaderTruncated || res.msgs[1].Header.Subject != "b" {
				t.Errorf("message 2: %+v", res.msgs[1])
			}
			checkProblems(t, res.problems, []string{"header longer than"})
			checkHeaderBounded(t, m)
		})
	}
}

// chunkReaders adds, to the usual readers, one whose reads end at odd
// offsets, so chunk boundaries fall elsewhere than at multiples of 1 MiB.
func chunkReaders() []readerKind {
	return append(readerKinds[:len(readerKinds):len(readerKinds)],
		readerKind{"stutter", func(_ testing.TB, data []byte) io.Reader {
			return &stutterReader{r: bytes.NewReader(data), n: 700_001}
		}})
}

// TestScannerFromLineAcrossChunks puts the second message's From_ line
// (and its preceding newline) at every position around the scanner's
// chunk boundaries: the candidate "\nFrom " straddles them in every way.
func TestScannerFromLineAcrossChunks(t *testing.T) {
	var targets []int
	bases := []int{chunkSize, chunkSize + headroom, 2 * chunkSize, 700_001, 1_400_002}
	if testing.Short() {
		bases = bases[:1]
	}
	for _, base := range bases {
		for d := -7; d <= 3; d++ {
			targets = append(targets, base+d)
		}
		// The From_ line itself straddling the boundary.
		targets = append(targets, base-len(fromB)-1, base-len(fromB), base-len(fromB)+1, base-30)
	}
	for _, at := range targets {
		head := fromA + hdr("Subject: first")
		m1 := head + filler(at-len(head))
		m2 := fromB + hdr("Subject: second", "Message-ID: <2@example.org>") + "body\n\n"
		m3 := fromC + hdr("Subject: third") + filler(5000)
		data := []byte(m1 + m2 + m3)
		for _, rk := range chunkReaders() {
			t.Run(fmt.Sprintf("%d/%s", at, rk.name), func(t *testing.T) {
				res := scanSpans(t, rk.open(t, data), len(data))
				if res.err != nil {
					t.Fatal(res.err)
				}
				checkTiling(t, data, res)
				got := spanText(data, res.msgs)
				if len(got) != 3 || got[0] != m1 || got[1] != m2 || got[2] != m3 {
					t.Fatalf("want 3 messages, the 2nd at %d; got offsets %v", at, offsets(res.msgs))
				}
				if h := res.msgs[1].Header; h.Subject != "second" || h.MessageID != "<2@example.org>" {
					t.Errorf("message 2 header %+v", h)
				}
				if res.msgs[2].Glued {
					t.Errorf("message 3 Glued, but a blank line comes before it")
				}
				checkProblems(t, res.problems, nil)
				if !res.msgs[1].Glued {
					t.Fatalf("From_ line at %d (no blank line before it) not marked Glued when a chunk boundary falls near it", at)
				}
			})
		}
	}
}

// TestScannerHeaderAcrossChunks starts a message at many offsets before a
// chunk boundary, so its header (and its blank line) straddles it.
func TestScannerHeaderAcrossChunks(t *testing.T) {
	h2 := fromB + hdr("Subject: second", "Date: Tue, 7 Jan 2025 11:00:00 +0000",
		"Content-Type: multipart/report;", "\treport-type=delivery-status; boundary=x",
		"Status: RO", "X-Status: F")
	for _, back := range []int{1, 2, len(fromB) - 1, len(fromB), len(fromB) + 1, 60, 100, len(h2) - 2, len(h2) - 1, len(h2), 1000} {
		at := chunkSize - back
		head := fromA + hdr("Subject: first")
		m1 := head + filler(at-len(head))
		m2 := h2 + filler(3000)
		data := []byte(m1 + m2)
		for _, rk := range readerKinds {
			t.Run(fmt.Sprintf("%d/%s", back, rk.name), func(t *testing.T) {
				res := scanSpans(t, rk.open(t, data), len(data))
				if res.err != nil {
					t.Fatal(res.err)
				}
				checkTiling(t, data, res)
				if len(res.msgs) != 2 || res.msgs[1].Offset != int64(at) {
					t.Fatalf("offsets %v, want [0 %d]", offsets(res.msgs), at)
				}
				m := res.msgs[1]
				want := Header{Subject: "second", Date: "Tue, 7 Jan 2025 11:00:00 +0000",
					ContentType: "multipart/report; report-type=delivery-status; boundary=x",
					Status:      "RO", XStatus: "F"}
				if m.Header != want {
					t.Errorf("header\n %+v\nwant\n %+v", m.Header, want)
				}
				if !m.Bounce() || !m.Seen() || !m.Flagged() {
					t.Errorf("Bounce %v Seen %v Flagged %v, want all true", m.Bounce(), m.Seen(), m.Flagged())
				}
			})
		}
	}
}

func offsets(msgs []*Message) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Offset
	}
	return out
}

// TestScannerContentLengthBig covers mboxcl bodies over a chunk, so the
// scanner's window moves while it checks where Content-Length lands.
func TestScannerContentLengthBig(t *testing.T) {
	// A body over 1 MiB with unescaped From_ lines; Content-Length is right
	// and lands across the first chunk boundary.
	body := filler(600_000) + fromBody + filler(500_000) + fromBody + filler(100)
	right := []string{
		fromA + hdr(cl(body)) + body + "\n",
		fromB + hdr("Subject: b") + "b\n\n",
		fromC + hdr(cl("c\n")) + "c\n",
	}
	// Content-Length a little too long (by less than the window keeps):
	// every reader falls back to the next From_ line, just past a chunk
	// boundary.
	lieBody := filler(chunkSize - 300 - len(fromA) - 40)
	lieHead := fromA + hdr(fmt.Sprintf("Content-Length: %d", len(lieBody)+700))
	smallLie := []string{
		lieHead + lieBody,
		fromB + hdr("Subject: b") + filler(2000),
		fromC + hdr("Subject: c") + "c\n",
	}
	// Content-Length too short in a big body: the next From_ line past the
	// target ends the message.
	short := []string{
		fromA + hdr("Content-Length: 10") + filler(1_500_000) + "\n",
		fromB + hdr("Subject: b") + "b\n",
	}
	for _, tc := range []struct {
		name  string
		spans []string
	}{{"right", right}, {"small lie", smallLie}, {"too short", short}} {
		data := []byte(strings.Join(tc.spans, ""))
		for _, rk := range chunkReaders() {
			t.Run(tc.name+"/"+rk.name, func(t *testing.T) {
				res := scanSpans(t, rk.open(t, data), len(data))
				if res.err != nil {
					t.Fatal(res.err)
				}
				checkTiling(t, data, res)
				got := spanText(data, res.msgs)
				if !slicesEqual(got, tc.spans) {
					t.Fatalf("got offsets %v, want %v", offsets(res.msgs), spanOffsets(tc.spans))
				}
				checkProblems(t, res.problems, nil)
			})
		}
	}
}

// TestScannerContentLengthBigLie: a Content-Length that overshoots by more
// than a chunk. Seekable input goes back and splits exactly at the From_
// lines; a pure stream has dropped those bytes, so it records a problem
// and its boundaries are a subset of the exact ones (messages merge, no
// byte is lost).
func TestScannerContentLengthBigLie(t *testing.T) {
	body := filler(1_500_000)
	spans := []string{
		fromA + hdr(fmt.Sprintf("Content-Length: %d", len(body)+1_500_000)) + body + "\n",
		fromB + hdr("Subject: b") + filler(1_000_000) + "\n",
		fromC + hdr("Subject: c") + filler(1_000_000) + "\n",
		fromA + hdr("Subject: d") + filler(800_000),
	}
	data := []byte(strings.Join(spans, ""))
	for _, rk := range chunkReaders() {
		t.Run(rk.name, func(t *testing.T) {
			res := scanSpans(t, rk.open(t, data), len(data))
			if res.err != nil {
				t.Fatal(res.err)
			}
			checkTiling(t, data, res)
			got := spanText(data, res.msgs)
			if _, seekable := rk.open(t, nil).(io.Seeker); seekable {
				if !slicesEqual(got, spans) {
					t.Fatalf("got offsets %v, want %v", offsets(res.msgs), spanOffsets(spans))
				}
				checkProblems(t, res.problems, nil)
				return
			}
			exact := map[int64]bool{}
			for _, o := range spanOffsets(spans) {
				exact[o] = true
			}
			for _, o := range offsets(res.msgs) {
				if !exact[o] {
					t.Errorf("stream: boundary at %d is not one of %v", o, spanOffsets(spans))
				}
			}
			if len(got) >= len(spans) {
				t.Logf("stream split exactly: %v", offsets(res.msgs))
				return
			}
			checkProblems(t, res.problems, []string{"not seekable"})
		})
	}
}

func spanOffsets(spans []string) []int64 {
	out := make([]int64, len(spans))
	var off int64
	for i, s := range spans {
		out[i] = off
		off += int64(len(s))
	}
	return out
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestScannerGluedContentLength: a message found through its
// predecessor's Content-Length must not inherit Glued from an unescaped
// From_ line inside that predecessor's body.
func TestScannerGluedContentLength(t *testing.T) {
	body := "line\n" + fromBody + "more\n"
	data := []byte(fromA + hdr(cl(body)) + body + "\n" + fromB + hdr("Subject: b") + "b\n")
	res := scanSpans(t, bytes.NewReader(data), len(data))
	checkTiling(t, data, res)
	if len(res.msgs) != 2 {
		t.Fatalf("got %d messages, want 2", len(res.msgs))
	}
	if res.msgs[1].Glued {
		t.Error("message 2 has a blank line before its From_ line but is marked Glued (stale flag from the unescaped From_ line in message 1's body)")
	}
}

// statTimes returns a file's access and modification times, to the
// nanosecond, from stat(2).
func statTimes(t *testing.T, path string) (atime, mtime syscall.Timespec) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Atim, st.Mtim
}

// TestScanMboxReadOnly: a scan changes no byte, name, mtime or atime.
// The atime is set well below the mtime first, so that a plain read
// visibly bumps it on a relatime mount (mutt and biff would then call the
// new mail read).
func TestScanMboxReadOnly(t *testing.T) {
	data := []byte(fromA + hdr("Subject: a") + "a\n\n" + fromB + hdr("Subject: b") + "b\n")
	mtime := time.Date(2025, 1, 7, 12, 0, 0, 123456789, time.UTC)
	atime := mtime.Add(-48 * time.Hour)
	setup := func(t *testing.T, uid int) string {
		p := filepath.Join(t.TempDir(), "alice")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if uid >= 0 {
			if err := os.Chown(p, uid, uid); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(p, atime, mtime); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// The control: does a plain read bump the atime on this file system?
	ctl := setup(t, -1)
	a0, _ := statTimes(t, ctl)
	if _, err := os.ReadFile(ctl); err != nil {
		t.Fatal(err)
	}
	if a1, _ := statTimes(t, ctl); a1 == a0 {
		t.Logf("this file system does not update atime on read (noatime?): the atime checks below prove little")
	}

	check := func(t *testing.T, uid int) {
		p := setup(t, uid)
		a0, m0 := statTimes(t, p)
		mb, err := ScanMbox(context.Background(), p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if mb.Messages != 2 || mb.Bytes != int64(len(data)) {
			t.Errorf("Messages %d Bytes %d, want 2 %d", mb.Messages, mb.Bytes, len(data))
		}
		a1, m1 := statTimes(t, p)
		if a1 != a0 {
			t.Errorf("atime changed: %v -> %v", time.Unix(a0.Unix()), time.Unix(a1.Unix()))
		}
		if m1 != m0 {
			t.Errorf("mtime changed: %v -> %v", time.Unix(m0.Unix()), time.Unix(m1.Unix()))
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("content changed (%v)", err)
		}
		names, _ := filepath.Glob(filepath.Join(filepath.Dir(p), "*"))
		if len(names) != 1 {
			t.Errorf("directory now holds %q", names)
		}
	}
	t.Run("owner", func(t *testing.T) { check(t, -1) })
	t.Run("other uid", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to chown the file to another uid")
		}
		// Root may use O_NOATIME on any file (CAP_FOWNER); only the result
		// is checked here.
		check(t, 65534)
	})
}

func TestScanMboxRefuses(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.WriteFile(real, []byte(fromA+"a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if _, err := ScanMbox(context.Background(), link, Options{}); err == nil || !strings.Contains(err.Error(), link) {
		t.Errorf("symlink: err = %v, want an error naming %s", err, link)
	}
	if _, err := ScanMbox(context.Background(), dir, Options{}); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("directory: err = %v, want an error naming %s", err, dir)
	}
	missing := filepath.Join(dir, "missing")
	if _, err := ScanMbox(context.Background(), missing, Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: err = %v, want ErrNotExist", err)
	}
	notMbox := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notMbox, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var pe *ParseError
	if _, err := ScanMbox(context.Background(), notMbox, Options{}); !errors.As(err, &pe) || !errors.Is(err, ErrNotMbox) || pe.Path != notMbox {
		t.Errorf("not an mbox: err = %v, want a *ParseError for %s wrapping ErrNotMbox", err, notMbox)
	}
}

// sparseInput is a virtual file: head, then n NUL bytes, then tail. It
// lets tests read gigabytes without disk or page cache.
type sparseInput struct {
	head, tail []byte
	n          int64
}

func (s *sparseInput) size() int64 { return int64(len(s.head)) + s.n + int64(len(s.tail)) }

func (s *sparseInput) ReadAt(p []byte, off int64) (int, error) {
	if off >= s.size() {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off < s.size() {
		var k int
		switch h := int64(len(s.head)); {
		case off < h:
			k = copy(p[n:], s.head[off:])
		case off < h+s.n:
			k = int(min(int64(len(p)-n), h+s.n-off))
			clear(p[n : n+k])
		default:
			k = copy(p[n:], s.tail[off-h-s.n:])
		}
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// TestScannerPast2GiB scans a virtual input of a little over 2 GiB: a
// first message whose body is mostly NUL bytes, then a second. Offsets
// past 2^31 must be exact, the Content-Length of a body over 2^31 must be
// honoured, and memory must stay flat.
func TestScannerPast2GiB(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 2 GiB (from memory): skipped with -short")
	}
	const bodyLen = 1<<31 + 12345
	head := fromA + hdr("Subject: huge", fmt.Sprintf("Content-Length: %d", bodyLen+1))
	// The body ends with an unescaped From_ line, which Content-Length steps over.
	bodyTail := "\n" + fromBody + "body line\n"
	m2 := fromB + hdr("Subject: after") + "b\n"
	in := &sparseInput{head: []byte(head), n: bodyLen - int64(len(bodyTail)), tail: []byte(bodyTail + "\n" + m2)}
	wantOff := int64(len(head)) + bodyLen + 1
	size := in.size()
	if size != wantOff+int64(len(m2)) {
		t.Fatalf("input of %d bytes", size)
	}
	for _, rk := range []struct {
		name string
		r    io.Reader
	}{
		{"seekable", io.NewSectionReader(in, 0, size)},
		{"stream", streamOnly{io.NewSectionReader(in, 0, size)}},
	} {
		t.Run(rk.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			res := scanSpans(t, rk.r, 1000)
			runtime.ReadMemStats(&after)
			if res.err != nil {
				t.Fatal(res.err)
			}
			if len(res.msgs) != 2 || res.msgs[1].Offset != wantOff || res.msgs[0].Length != wantOff ||
				res.msgs[1].Length != int64(len(m2)) || res.offset != size {
				t.Fatalf("offsets %v, first length %d, Offset() %d; want [0 %d], %d, %d",
					offsets(res.msgs), res.msgs[0].Length, res.offset, wantOff, wantOff, size)
			}
			if res.msgs[1].Header.Subject != "after" { // (Glued: see TestScannerGluedContentLength)
				t.Errorf("second message %+v", res.msgs[1])
			}
			checkProblems(t, res.problems, nil)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
				t.Errorf("allocated %d MiB to scan a 2 GiB message", alloc>>20)
			}
		})
	}
}

// TestScannerProgress: Progress reports every input byte once, so a
// progress bar ends at 100%, even when a lying Content-Length makes the
// scanner go back and read again.
func TestScannerProgress(t *testing.T) {
	plain := []byte(fromA + hdr("Subject: a") + filler(2_500_000) + "\n" + fromB + "b\n")
	body := filler(1_500_000)
	lie := []byte(fromA + hdr(fmt.Sprintf("Content-Length: %d", len(body)+1_500_000)) + body + "\n" +
		fromB + hdr("Subject: b") + filler(2_000_000))
	for _, tc := range []struct {
		name string
		data []byte
	}{{"plain", plain}, {"lying Content-Length", lie}} {
		for _, rk := range readerKinds {
			t.Run(tc.name+"/"+rk.name, func(t *testing.T) {
				sc := NewScanner(rk.open(t, tc.data), "p")
				defer sc.Close()
				var total int64
				sc.Progress = func(n int64) { total += n }
				for {
					if _, err := sc.Next(); err != nil {
						break
					}
				}
				if total != int64(len(tc.data)) {
					if total > int64(len(tc.data)) && tc.name != "plain" {
						t.Fatalf("Progress reported %d bytes of %d: re-read bytes counted twice after going back", total, len(tc.data))
					}
					t.Errorf("Progress reported %d bytes of %d", total, len(tc.data))
				}
			})
		}
	}
}

// readSeekerOnly hides ReadAt, so the scanner takes its single-reader path
// but may still go back with Seek.
type readSeekerOnly struct{ rs io.ReadSeeker }

func (r readSeekerOnly) Read(p []byte) (int, error) { return r.rs.Read(p) }
func (r readSeekerOnly) Seek(off int64, whence int) (int64, error) {
	return r.rs.Seek(off, whence)
}

// TestScannerReaderNotAtStart: a seekable reader handed over part-way
// (after a prefix the caller consumed) is scanned from where it stands,
// with offsets counted from there, also when a lying Content-Length makes
// the scanner go back.
func TestScannerReaderNotAtStart(t *testing.T) {
	prefix := "X-Prefix: consumed by the caller\n" + strings.Repeat("p", 3000) + "\n"
	body := filler(1_500_000)
	spans := []string{
		fromA + hdr(fmt.Sprintf("Content-Length: %d", len(body)+1_500_000)) + body + "\n",
		fromB + hdr("Subject: b") + filler(1_000_000) + "\n",
		fromC + hdr("Subject: c") + filler(1_000_000),
	}
	data := []byte(prefix + strings.Join(spans, ""))
	p := filepath.Join(t.TempDir(), "mbox")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"os.File", "ReadSeeker"} {
		t.Run(kind, func(t *testing.T) {
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Seek(int64(len(prefix)), io.SeekStart); err != nil {
				t.Fatal(err)
			}
			var r io.Reader = f
			if kind == "ReadSeeker" {
				r = readSeekerOnly{f}
			}
			res := scanSpans(t, r, len(data))
			if res.err != nil {
				t.Fatal(res.err)
			}
			var lengths, wantLengths []int64
			for i, m := range res.msgs {
				lengths = append(lengths, m.Length)
				wantLengths = append(wantLengths, int64(len(spans[min(i, len(spans)-1)])))
			}
			if res.leading != 0 || !slices.Equal(offsets(res.msgs), spanOffsets(spans)) || !slices.Equal(lengths, wantLengths) {
				t.Fatalf("reader positioned at %d: leading %d, offsets %v lengths %v; want 0, %v %v (offsets count from the start position, so going back must seek to start+offset)",
					len(prefix), res.leading, offsets(res.msgs), lengths, spanOffsets(spans), wantLengths)
			}
			checkTiling(t, data[len(prefix):], res)
		})
	}
}
