package mboxscan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// corpus is the shared real-world mail corpus, reached from the package
// directory.
const corpus = "../../shared/corpus"

func corpusDir(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(corpus, rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("corpus folder %s absent (%v): skipping", p, err)
	}
	return p
}

// writeFile creates path (and its directories) with data and the given
// mtime (atime one hour earlier, so a read under relatime would bump it).
func writeFile(t testing.TB, path, data string, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(path, mtime.Add(-time.Hour), mtime); err != nil {
			t.Fatal(err)
		}
	}
}

// makeMaildir creates an empty Maildir (cur, new, tmp) at dir.
func makeMaildir(t testing.TB, dir string) {
	t.Helper()
	for _, s := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func message(headers ...string) string {
	return strings.Join(headers, "\n") + "\n\nbody line\n"
}

func TestParseMaildirName(t *testing.T) {
	tests := []struct {
		name    string
		stamp   int64
		size    int64
		hasSize bool
		flags   string
	}{
		{"1379857166.25979_1.host", 1379857166, 0, false, ""},
		{"1379857166.25979_1.host:2,", 1379857166, 0, false, ""},
		{"1035478339.27041_118.foo.org,S=1000,W=1020:2,FS", 1035478339, 1000, true, "FS"},
		{"1035478339.M1P2.foo,W=1020,S=998:2,RS", 1035478339, 998, true, "RS"},
		{"1220863087.12663_15.mindcrime!2,PS", 1220863087, 0, false, "PS"},
		{"1252168370_3.14675.cthulhu!2,S", 1252168370, 0, false, "S"},
		{"special!2,Sabc", 0, 0, false, "Sabc"},
		{"1", 0, 0, false, ""},               // a counter, not a time
		{"12345.host:2,S", 0, 0, false, "S"}, // too short to be a time
		{"1463868505.38518452d49213cb409aa1db32f53184%3A2%2CS", 1463868505, 0, false, ""},
		{"1379857166.x:1,experimental", 1379857166, 0, false, ""},
		{"1379857166.x,S=abc:2,S", 1379857166, 0, false, "S"},
		{"12345678901.x", 0, 0, false, ""}, // 11 digits: not a plausible time
	}
	for _, tt := range tests {
		got := parseMaildirName(tt.name)
		want := maildirName{stamp: tt.stamp, size: tt.size, hasSize: tt.hasSize, flags: tt.flags}
		if got != want {
			t.Errorf("parseMaildirName(%q) = %+v, want %+v", tt.name, got, want)
		}
	}
}

func TestParseMaildirHeader(t *testing.T) {
	in := "From someone@example.org Mon Jan  1 00:00:00 2024\r\n" + // kept by some tools: not a field
		"Return-Path: <>\r\n" +
		"Subject : first\r\n" +
		"\tsecond  \r\n" +
		"subject: ignored, the first wins\r\n" +
		"X-Keywords: $Junk\r\n" +
		"Content-Type: multipart/report;\r\n" +
		" report-type=delivery-status; boundary=x\r\n" +
		"MESSAGE-ID: <a@b>\r\n" +
		"\r\n" +
		"Date: in the body\r\n"
	var h Header
	seen := parseHeader([]byte(in), &h, '\n')
	want := Header{
		ReturnPath:  "<>",
		Subject:     "first second",
		XKeywords:   "$Junk",
		ContentType: "multipart/report; report-type=delivery-status; boundary=x",
		MessageID:   "<a@b>",
	}
	if h != want {
		t.Errorf("got  %+v\nwant %+v", h, want)
	}
	if seen&returnPathBit == 0 {
		t.Error("Return-Path not marked as seen")
	}

	h = Header{}
	if seen := parseHeader([]byte("Return-Path:\nFrom: x\n"), &h, '\n'); seen&returnPathBit == 0 || h.From != "x" {
		t.Errorf("empty Return-Path: seen %b, header %+v", seen, h)
	}
}

func TestReadHeaderBlock(t *testing.T) {
	dir := t.TempDir()
	long := "X-Filler: " + strings.Repeat("a", 200) + "\n"
	tests := []struct {
		name         string
		data         string
		wantComplete bool
		wantSubject  string
	}{
		{"short", message("Subject: s"), true, "s"},
		{"no body", "Subject: s\n", true, "s"},
		{"empty", "", true, ""},
		// The header ends past the first 16 KiB read.
		{"20k header", strings.Repeat(long, 100) + "Subject: late\n\nbody\n", true, "late"},
		// The blank line falls exactly across the 16 KiB boundary.
		{"straddle", strings.Repeat("X", maildirHeaderFirstRead-12) + "\nSubject: b\n\nbody", true, "b"},
		{"endless header", "Subject: s\n" + strings.Repeat(long, 400), false, "s"},
	}
	r := newMaildirReader()
	d, err := openDirNoatime(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "1700000000." + string(rune('a'+i)) + ".host"
			writeFile(t, filepath.Join(dir, name), tt.data, time.Time{})
			var m Message
			if err := r.read(int(d.Fd()), dir, name, &m); err != nil {
				t.Fatal(err)
			}
			if m.HeaderTruncated == tt.wantComplete {
				t.Errorf("HeaderTruncated = %v, want %v", m.HeaderTruncated, !tt.wantComplete)
			}
			if m.Header.Subject != tt.wantSubject {
				t.Errorf("Subject = %q, want %q", m.Header.Subject, tt.wantSubject)
			}
			if m.Length != int64(len(tt.data)) {
				t.Errorf("Length = %d, want %d", m.Length, len(tt.data))
			}
		})
	}
}

func TestReadMaildirFolder(t *testing.T) {
	dir := t.TempDir()
	makeMaildir(t, dir)
	mtime := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	files := map[string]string{
		"cur/1379857166.25979_1.host,S=5000:2,FS": message("Subject: one", "Date: Mon, 2 Jan 2023 10:00:00 +0000", "Return-Path: <alice@example.org>"),
		"cur/1379857200.2_2.host!2,S":             message("Subject: two", "Return-Path: <MAILER-DAEMON@example.org>"),
		"new/1379857300.3_3.host":                 message("Subject: three"),
		"cur/.gitkeep":                            "",
		"new/.dotfile":                            "x",
		"tmp/1379857400.4_4.host":                 message("Subject: in delivery"),
	}
	for name, data := range files {
		writeFile(t, filepath.Join(dir, name), data, mtime)
	}

	var got []*Message
	err := ReadMaildirFolder(context.Background(), dir, func(m *Message) error {
		got = append(got, m)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// new/ first, then cur/ in name order.
	wantPaths := []string{
		dir + "/new/1379857300.3_3.host",
		dir + "/cur/1379857166.25979_1.host,S=5000:2,FS",
		dir + "/cur/1379857200.2_2.host!2,S",
	}
	var paths []string
	for _, m := range got {
		paths = append(paths, m.Path)
	}
	if !slices.Equal(paths, wantPaths) {
		t.Fatalf("paths:\n got %q\nwant %q", paths, wantPaths)
	}

	one, two, three := got[1], got[2], got[0]
	if one.Flags != "FS" || !one.Flagged() || !one.Seen() {
		t.Errorf("one: flags %q, flagged %v, seen %v", one.Flags, one.Flagged(), one.Seen())
	}
	if one.Length != 5000 {
		t.Errorf("one: Length %d, want 5000 from ,S=", one.Length)
	}
	if !one.Received.Equal(mtime) {
		t.Errorf("one: Received %v, want the mtime %v", one.Received, mtime)
	}
	if want := time.Unix(1379857166, 0); !one.Saved.Equal(want) {
		t.Errorf("one: Saved %v, want the name's stamp %v", one.Saved, want)
	}
	if sent, ok := one.Sent(); !ok || !sent.Equal(time.Date(2023, 1, 2, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("one: Sent %v %v", sent, ok)
	}
	if !one.HasEnvelope || one.Sender != "alice@example.org" || one.Bounce() {
		t.Errorf("one: envelope %v %q, bounce %v", one.HasEnvelope, one.Sender, one.Bounce())
	}
	if two.Flags != "S" || two.Flagged() || !two.Seen() || !two.Bounce() {
		t.Errorf("two: flags %q, flagged %v, seen %v, bounce %v", two.Flags, two.Flagged(), two.Seen(), two.Bounce())
	}
	if two.Length != int64(len(files["cur/1379857200.2_2.host!2,S"])) {
		t.Errorf("two: Length %d, want the file size", two.Length)
	}
	if three.Flags != "" || three.Seen() || three.HasEnvelope || three.Header.Subject != "three" {
		t.Errorf("three: %+v", three)
	}

	// An error from fn stops the walk and comes back as is.
	stop := errors.New("stop")
	n := 0
	err = ReadMaildirFolder(context.Background(), dir, func(*Message) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("fn error: got %v after %d calls", err, n)
	}
}

func TestScanMaildirFolder(t *testing.T) {
	dir := t.TempDir()
	makeMaildir(t, dir)
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	mid := time.Date(2022, 6, 1, 0, 0, 0, 0, time.UTC)
	recent := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	big := message("Subject: big") + strings.Repeat("x", 3000)
	writeFile(t, dir+"/cur/1500000000.1.h:2,S", message("Subject: a"), mid)
	writeFile(t, dir+"/cur/1500000001.2.h,S=2000000:2,", message("Subject: sized"), old)
	writeFile(t, dir+"/new/1500000002.3.h", big, recent)
	writeFile(t, dir+"/new/1500000003.4.h", message("Return-Path: <>", "Subject: bounce"), mid)
	writeFile(t, dir+"/cur/1500000004.5.h:2,S", message("Content-Type: multipart/report; report-type=\"delivery-status\"; boundary=b"), mid)
	writeFile(t, dir+"/cur/.gitkeep", "", time.Time{})
	writeFile(t, dir+"/tmp/1500000005.6.h", message("Subject: tmp"), mid)
	if err := os.Symlink("/etc/passwd", dir+"/cur/1500000006.7.h:2,S"); err != nil {
		t.Fatal(err)
	}

	var progBytes atomic.Int64 // Progress is called from any goroutine
	opts := Options{Large: 2500, Progress: func(b int64, n int) {
		if n != 0 {
			t.Errorf("ScanMaildirFolder reported mailboxes=%d", n)
		}
		progBytes.Add(b)
	}}
	mb, err := ScanMaildirFolder(context.Background(), dir, "", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	wantBytes := int64(len(message("Subject: a"))) + 2000000 + int64(len(big)) +
		int64(len(message("Return-Path: <>", "Subject: bounce"))) +
		int64(len(message("Content-Type: multipart/report; report-type=\"delivery-status\"; boundary=b")))
	if mb.Messages != 5 || mb.Bytes != wantBytes || progBytes.Load() != wantBytes {
		t.Errorf("messages %d bytes %d progress %d, want 5 %d", mb.Messages, mb.Bytes, progBytes.Load(), wantBytes)
	}
	if !mb.Oldest.Equal(old) || !mb.Newest.Equal(recent) || mb.Undated != 0 {
		t.Errorf("oldest %v newest %v undated %d", mb.Oldest, mb.Newest, mb.Undated)
	}
	if mb.LargestBytes != 2000000 || mb.LargeMessages != 2 || mb.Bounces != 2 {
		t.Errorf("largest %d large %d bounces %d", mb.LargestBytes, mb.LargeMessages, mb.Bounces)
	}
	if mb.Path != dir || mb.Store != dir || mb.Folder != "" || mb.Format != FormatMaildir || mb.Owner == "" {
		t.Errorf("identity: %+v", mb)
	}
	if mb.ModTime.IsZero() {
		t.Error("ModTime not set")
	}
	if len(mb.Problems) != 1 || !strings.Contains(mb.Problems[0], "symlink, not followed") {
		t.Errorf("problems: %q", mb.Problems)
	}
}

// A folder large enough to be read by several goroutines gives the same
// figures as one goroutine.
func TestScanMaildirFolderParallel(t *testing.T) {
	dir := t.TempDir()
	makeMaildir(t, dir)
	base := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	var wantBytes int64
	wantBounces := 0
	const n = 3*maildirBatch + 7 // several batches, for several readers
	for i := range n {
		data := message("Subject: m", "Return-Path: <x@y>") + strings.Repeat("y", i)
		if i%100 == 0 {
			data = message("Return-Path: <>")
			wantBounces++
		}
		wantBytes += int64(len(data))
		sub := "cur"
		if i%3 == 0 {
			sub = "new"
		}
		name := fmt.Sprintf("%d.%d_%d.host:2,S", 1600000000+i, os.Getpid(), i)
		if sub == "new" {
			name = strings.TrimSuffix(name, ":2,S")
		}
		writeFile(t, filepath.Join(dir, sub, name), data, base.Add(time.Duration(i)*time.Minute))
	}
	for _, jobs := range []int{1, 4} {
		var prog atomic.Int64
		mb, err := ScanMaildirFolder(context.Background(), dir, "", "", Options{Jobs: jobs, Progress: func(b int64, _ int) { prog.Add(b) }})
		if err != nil {
			t.Fatal(err)
		}
		if mb.Messages != n || mb.Bytes != wantBytes || prog.Load() != wantBytes || mb.Bounces != wantBounces {
			t.Errorf("jobs %d: messages %d bytes %d progress %d bounces %d", jobs, mb.Messages, mb.Bytes, prog.Load(), mb.Bounces)
		}
		if !mb.Oldest.Equal(base) || !mb.Newest.Equal(base.Add((n-1)*time.Minute)) {
			t.Errorf("jobs %d: oldest %v newest %v", jobs, mb.Oldest, mb.Newest)
		}
	}
}

func TestScanMaildirFolderVanished(t *testing.T) {
	dir := t.TempDir()
	makeMaildir(t, dir)
	writeFile(t, dir+"/cur/1500000000.1.h:2,S", message("Subject: stays"), time.Time{})
	writeFile(t, dir+"/new/1500000001.2.h", message("Subject: goes"), time.Time{})
	testHookAfterList = func(string) {
		if err := os.Remove(dir + "/new/1500000001.2.h"); err != nil {
			t.Error(err)
		}
	}
	defer func() { testHookAfterList = nil }()
	mb, err := ScanMaildirFolder(context.Background(), dir, "", "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if mb.Messages != 1 {
		t.Errorf("messages %d, want 1", mb.Messages)
	}
	if len(mb.Problems) != 1 || !strings.Contains(mb.Problems[0], "1 message files vanished") {
		t.Errorf("problems %q", mb.Problems)
	}
}

func TestScanMaildirFolderErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ScanMaildirFolder(context.Background(), dir+"/missing", "", "", Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing folder: %v", err)
	}
	// A folder without cur/ and new/ is empty, with a problem.
	if err := os.Mkdir(dir+"/.Empty", 0o755); err != nil {
		t.Fatal(err)
	}
	mb, err := ScanMaildirFolder(context.Background(), dir+"/.Empty", dir, ".Empty", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if mb.Messages != 0 || len(mb.Problems) != 1 || mb.Store != dir || mb.Folder != ".Empty" {
		t.Errorf("empty folder: %+v", mb)
	}
	// A symlinked new/ is not followed; cur/ is still read.
	makeMaildir(t, dir+"/linked")
	writeFile(t, dir+"/linked/cur/1500000000.1.h:2,S", message("Subject: x"), time.Time{})
	if err := os.Remove(dir + "/linked/new"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir+"/.Empty", dir+"/linked/new"); err != nil {
		t.Fatal(err)
	}
	mb, err = ScanMaildirFolder(context.Background(), dir+"/linked", "", "", Options{})
	if err != nil || mb.Messages != 1 || !slices.Equal(mb.Problems, []string{"new: symlink, not followed"}) {
		t.Errorf("symlinked new/: %v %+v", err, mb)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	makeMaildir(t, dir+"/md")
	writeFile(t, dir+"/md/cur/1500000000.1.h:2,S", message("Subject: x"), time.Time{})
	if _, err := ScanMaildirFolder(ctx, dir+"/md", "", "", Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestParseMaildirsize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Quota
		err  bool
	}{
		{"both", "1000000S,1000C\n500 2\n-200 -1\n", &Quota{LimitBytes: 1000000, LimitMessages: 1000, UsedBytes: 300, UsedMessages: 1}, false},
		{"bytes only", "1000S\n10 1\n", &Quota{LimitBytes: 1000, UsedBytes: 10, UsedMessages: 1}, false},
		{"count only", "50C\n", &Quota{LimitMessages: 50}, false},
		{"no limits", "\n10 1\n", &Quota{UsedBytes: 10, UsedMessages: 1}, false},
		{"definition without newline", "1000S,5C", &Quota{LimitBytes: 1000, LimitMessages: 5}, false},
		{"append in progress", "1000S\n10 1\n20", &Quota{LimitBytes: 1000, UsedBytes: 10, UsedMessages: 1}, false},
		{"blank lines", "1000S\n\n10 1\n\n", &Quota{LimitBytes: 1000, UsedBytes: 10, UsedMessages: 1}, false},
		{"empty file", "", &Quota{}, false},
		{"bad unit", "1000X\n", nil, true},
		{"bad number", "abcS\n", nil, true},
		{"bad use line", "1000S\n10 one\n", nil, true},
		{"three fields", "1000S\n10 1 2\n", nil, true},
		{"too large", "1000S\n" + strings.Repeat("1 1\n", maildirsizeMax/4+1), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := ParseMaildirsize(strings.NewReader(tt.in))
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if tt.want != nil && *q != *tt.want {
				t.Errorf("got %+v, want %+v", *q, *tt.want)
			}
		})
	}
}

func TestReadQuota(t *testing.T) {
	dir := t.TempDir()
	if q, err := ReadQuota(dir); q != nil || err != nil {
		t.Errorf("no maildirsize: %v %v", q, err)
	}
	writeFile(t, dir+"/maildirsize", "0S\n100 1\n", time.Time{})
	if q, err := ReadQuota(dir); q != nil || err != nil {
		t.Errorf("no limit set: %v %v", q, err)
	}
	writeFile(t, dir+"/maildirsize", "2048S\n100 1\n", time.Time{})
	if q, err := ReadQuota(dir); err != nil || q == nil || q.LimitBytes != 2048 || q.UsedBytes != 100 {
		t.Errorf("limit: %+v %v", q, err)
	}
	writeFile(t, dir+"/maildirsize", "junk\n", time.Time{})
	if _, err := ReadQuota(dir); err == nil || !strings.Contains(err.Error(), dir+"/maildirsize") {
		t.Errorf("junk: %v", err)
	}
}

func TestMaildirCorpus(t *testing.T) {
	tests := []struct {
		dir       string
		messages  int
		withFlags int // messages whose name carries ":2," or "!2,"
	}{
		{"Email-Folder/t/testmaildir", 10, 0},
		{"mu/testdata/testdir", 19, 15},
		{"staktrace-maildir/testdata/maildir", 2, 0}, // names percent-encoded upstream
		{"mox/testdata/importtest.maildir", 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			dir := corpusDir(t, tt.dir)
			mb, err := ScanMaildirFolder(context.Background(), dir, "", "", Options{})
			if err != nil {
				t.Fatal(err)
			}
			if mb.Messages != tt.messages || mb.Undated != 0 || len(mb.Problems) != 0 {
				t.Errorf("messages %d (want %d), undated %d, problems %q", mb.Messages, tt.messages, mb.Undated, mb.Problems)
			}
			n, flagged := 0, 0
			err = ReadMaildirFolder(context.Background(), dir, func(m *Message) error {
				n++
				if strings.Contains(m.Path, ":2,") || strings.Contains(m.Path, "!2,") {
					flagged++
				}
				if m.Header.Subject == "" && m.Header.From == "" {
					t.Errorf("%s: no header read", m.Path)
				}
				return nil
			})
			if err != nil || n != tt.messages || flagged != tt.withFlags {
				t.Errorf("ReadMaildirFolder: %d messages, %d with flags, err %v", n, flagged, err)
			}
		})
	}
}

func TestMaildirCorpusFlags(t *testing.T) {
	dir := corpusDir(t, "mu/testdata/testdir")
	flags := map[string]string{}
	err := ReadMaildirFolder(context.Background(), dir, func(m *Message) error {
		flags[filepath.Base(m.Path)] = m.Flags
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"special!2,Sabc": "Sabc", "multimime!2,FS": "FS", "1305664394.2171_402.cthulhu!2,": ""} {
		if got, ok := flags[name]; !ok || got != want {
			t.Errorf("%s: flags %q (found %v), want %q", name, got, ok, want)
		}
	}
}
