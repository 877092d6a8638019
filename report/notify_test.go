package report

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"golang.org/x/text/encoding/japanese"

	"github.com/mailkeep/mailkeep/mboxscan"
)

// notifyUpdating reports whether -update was given. The flag is defined
// by report_test.go; looking it up keeps these tests independent of it.
func notifyUpdating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

func notifyGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("..", "testdata", "golden", "notify", name)
	if notifyUpdating() {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./report -run Notice -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test ./report -update rewrites it)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

var noticeNow = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func noticeDay(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 9, 0, 0, 0, time.UTC) }

// sampleNotice is a notice as PlanNotices makes it: a Maildir near its
// quota with old mail to go.
func sampleNotice() *Notice {
	return &Notice{
		User: "taro", UID: 1001, Domain: "example.jp",
		Address: "taro@example.jp", To: "taro@example.jp", Admin: "postmaster@example.jp",
		Host: "mail.example.jp", Now: noticeNow,
		Level: mboxscan.LevelWarn,
		Stores: []NoticeStore{{Path: "/var/vmail/example.jp/taro/Maildir", Bytes: 900 << 20, LimitBytes: 1 << 30,
			UsedRatio: 900.0 / 1024, Level: mboxscan.LevelWarn, Quota: true,
			// 124 MiB to go at 8 MiB a day.
			Growing: true, GrowthBytesPerDay: 8 << 20, FullInDays: 15, FullAt: noticeNow.Add(15*24*time.Hour + 12*time.Hour)}},
		Mailboxes: []NoticeMailbox{
			{Path: "/var/vmail/example.jp/taro/Maildir", Name: "INBOX", Format: mboxscan.FormatMaildir,
				Messages: 4000, Bytes: 700 << 20, Oldest: noticeDay(2019, 4, 1), Newest: noticeDay(2025, 3, 3),
				Remove: NoticeRemoval{Messages: 1200, Bytes: 300 << 20, Oldest: noticeDay(2019, 4, 1), Newest: noticeDay(2023, 3, 1)}},
			{Path: "/var/vmail/example.jp/taro/Maildir/.Trash", Name: "Trash", Format: mboxscan.FormatMaildir, Folder: ".Trash",
				Messages: 300, Bytes: 200 << 20, Oldest: noticeDay(2024, 1, 1), Newest: noticeDay(2025, 3, 1)},
		},
		Messages: 4300, Bytes: 900 << 20,
		HasPolicy: true, Policy: "received older than 2y, flagged kept", Cutoff: noticeDay(2023, 3, 4),
		DateKind: mboxscan.DateReceived, KeepsFlagged: true,
		Remove: NoticeRemoval{Messages: 1200, Bytes: 300 << 20, Oldest: noticeDay(2019, 4, 1), Newest: noticeDay(2023, 3, 1)},
		// run's notice period: seven days.
		RemoveAfter: noticeNow.AddDate(0, 0, 7),
		Largest: []NoticeMessage{
			{Mailbox: "INBOX", Date: noticeDay(2020, 5, 6), From: "山田花子", Subject: "会議の資料（最終版）", Bytes: 25 << 20, Remove: true},
			{Mailbox: "Trash", Date: noticeDay(2024, 12, 24), From: "photos@example.com", Subject: "Holiday photos", Bytes: 12 << 20},
		},
	}
}

func TestNoticeGolden(t *testing.T) {
	for _, lang := range NoticeLangs {
		t.Run(lang, func(t *testing.T) {
			tmpl, err := BuiltinNoticeTemplate(lang)
			if err != nil {
				t.Fatal(err)
			}
			subject, body, err := tmpl.Render(sampleNotice())
			if err != nil {
				t.Fatal(err)
			}
			notifyGolden(t, "notice_"+lang+".txt", []byte("Subject: "+subject+"\n\n"+body))

			// The redirected notice of an owner over the limit.
			n := sampleNotice()
			n.Level, n.OverLimit, n.Redirected, n.To = mboxscan.LevelCrit, true, true, n.Admin
			n.Stores[0].Bytes, n.Stores[0].UsedRatio, n.Stores[0].Level, n.Stores[0].OverLimit = 1<<30, 1, mboxscan.LevelCrit, true
			subject, body, err = tmpl.Render(n)
			if err != nil {
				t.Fatal(err)
			}
			notifyGolden(t, "notice_"+lang+"_redirected.txt", []byte("Subject: "+subject+"\n\n"+body))
		})
	}
}

func TestNoticeMessageGolden(t *testing.T) {
	tmpl, err := BuiltinNoticeTemplate("ja")
	if err != nil {
		t.Fatal(err)
	}
	n := sampleNotice()
	n.Cc = []string{"Mail Admin <admin@example.jp>"}
	subject, body, err := tmpl.Render(n)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	err = WriteMessage(&b, n, subject, body, MessageOptions{From: "Postmaster <postmaster@example.jp>", MessageID: "fixed.1@example.jp", Date: noticeNow})
	if err != nil {
		t.Fatal(err)
	}
	notifyGolden(t, "notice_ja.eml", b.Bytes())
	for i, line := range strings.Split(b.String(), "\r\n") {
		if len(line) > 78 {
			t.Errorf("line %d is %d characters long: %q", i+1, len(line), line)
		}
	}

	// Parsed back, the message says what was rendered.
	m, err := gomail.CreateReader(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	h := m.Header
	if got, _ := h.Subject(); got != subject {
		t.Errorf("decoded Subject = %q, want %q", got, subject)
	}
	if raw := h.Get("Subject"); !strings.HasPrefix(raw, "=?utf-8?q?") {
		t.Errorf("Subject is not an encoded word: %q", raw)
	}
	for k, want := range map[string]string{
		"Auto-Submitted": "auto-generated", "Message-Id": "<fixed.1@example.jp>",
		"Date": "Tue, 04 Mar 2025 05:06:07 +0000", "Content-Transfer-Encoding": "quoted-printable",
		"Mime-Version": "1.0",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if ct, params, _ := h.ContentType(); ct != "text/plain" || params["charset"] != "utf-8" {
		t.Errorf("Content-Type = %s %v", ct, params)
	}
	to, _ := h.AddressList("To")
	cc, _ := h.AddressList("Cc")
	from, _ := h.AddressList("From")
	if len(to) != 1 || to[0].Address != "taro@example.jp" || len(cc) != 1 || cc[0].Address != "admin@example.jp" ||
		len(from) != 1 || from[0].Address != "postmaster@example.jp" || from[0].Name != "Postmaster" {
		t.Errorf("From %v To %v Cc %v", from, to, cc)
	}
	p, err := m.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(p.Body)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != strings.ReplaceAll(body, "\n", "\r\n") {
		t.Errorf("decoded body differs:\n%s\n--- want:\n%s", got, body)
	}
	for _, want := range []string{"1200 通（300 MiB）", "会議の資料（最終版）", "2019-04-01 から 2023-03-01", "87.9%"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("body lacks %q", want)
		}
	}
}

func TestNoticeTemplateErrors(t *testing.T) {
	if _, err := BuiltinNoticeTemplate("fr"); err == nil || !strings.Contains(err.Error(), "en, ja") {
		t.Errorf("BuiltinNoticeTemplate(fr) = %v", err)
	}
	if _, err := ParseNoticeTemplate("x", `{{define "subject"}}s{{end}}`); err == nil || !strings.Contains(err.Error(), `"body"`) {
		t.Errorf("template without body: %v", err)
	}
	tmpl, err := ParseNoticeTemplate("x", "{{define \"subject\"}}  Hi\n{{.User}} {{end}}{{define \"body\"}}{{.Nope}}{{end}}")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tmpl.Render(sampleNotice()); err == nil {
		t.Error("a template naming an unknown field rendered")
	}
	tmpl, _ = ParseNoticeTemplate("x", "{{define \"subject\"}}  Hi\n{{.User}} {{end}}{{define \"body\"}}{{size .Bytes}}{{end}}")
	s, b, err := tmpl.Render(sampleNotice())
	if err != nil || s != "Hi taro" || b != "900 MiB\n" {
		t.Errorf("Render = %q, %q, %v", s, b, err)
	}
}

func encodedWord(t *testing.T, cs string, enc interface{ Bytes([]byte) ([]byte, error) }, s string) string {
	t.Helper()
	b, err := enc.Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return "=?" + cs + "?B?" + base64.StdEncoding.EncodeToString(b) + "?="
}

func TestDecodeHeader(t *testing.T) {
	iso := encodedWord(t, "ISO-2022-JP", japanese.ISO2022JP.NewEncoder(), "会議の資料")
	sjis := encodedWord(t, "Shift_JIS", japanese.ShiftJIS.NewEncoder(), "請求書のご送付")
	tests := []struct{ raw, want string }{
		{"plain subject", "plain subject"},
		{iso, "会議の資料"},
		{"Re: " + sjis + " (2)", "Re: 請求書のご送付 (2)"},
		{"=?utf-8?q?caf=C3=A9?= =?utf-8?q?_au_lait?=", "café au lait"},
		{"=?iso-8859-1?q?=E9t=E9?=", "été"},
		{"=?x-unknown?q?abc?= ok", "=?x-unknown?q?abc?= ok"},
		{"evil\x1b[31m\r\n\tred", "evil [31m red"},
		{"raw \xff bytes", "raw \uFFFD bytes"},
		{"a\u202egnp.exe", "agnp.exe"},
	}
	for _, tt := range tests {
		if got := mboxscan.DecodeHeader(tt.raw); got != tt.want {
			t.Errorf("DecodeHeader(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
	if got := DisplayFrom(mboxscan.DecodeHeader(`=?utf-8?b?5bGx55Sw6Iqx5a2Q?= <hanako@example.jp>`)); got != "山田花子" {
		t.Errorf("DisplayFrom = %q", got)
	}
}

func TestPathPattern(t *testing.T) {
	p, err := ParsePathPattern("/var/vmail/{domain}/{user}/Maildir")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path, user, domain string
		ok                 bool
	}{
		{"/var/vmail/example.org/alice/Maildir", "alice", "example.org", true},
		{"/var/vmail/example.org/alice/Maildir/.Trash", "alice", "example.org", true},
		{"/var/vmail/example.org/alice/Maildirx", "", "", false},
		{"/var/mail/alice", "", "", false},
	} {
		u, d, ok := p.Match(tt.path)
		if u != tt.user || d != tt.domain || ok != tt.ok {
			t.Errorf("Match(%s) = %q %q %v", tt.path, u, d, ok)
		}
	}
	for _, bad := range []string{"/var/vmail/{domain}", "/{user}/{user}"} {
		if _, err := ParsePathPattern(bad); err == nil {
			t.Errorf("ParsePathPattern(%q) accepted", bad)
		}
	}
}

func TestAddressBooks(t *testing.T) {
	dir := t.TempDir()
	mapFile := filepath.Join(dir, "map")
	os.WriteFile(mapFile, []byte("# comment\nalice Alice Smith <alice@corp.example>\nbob@b.example\tbob@other.example\n\n"), 0o644)
	m, err := ReadAddressMap(mapFile)
	if err != nil {
		t.Fatal(err)
	}
	to, err := ParseToTemplate("{{.User}}@{{if .Domain}}{{.Domain}}{{else}}example.org{{end}}")
	if err != nil {
		t.Fatal(err)
	}
	books := AddressBooks{m, to}
	for _, tt := range []struct {
		o    Owner
		want string
	}{
		{Owner{User: "alice"}, "Alice Smith <alice@corp.example>"},
		{Owner{User: "bob", Domain: "b.example"}, "bob@other.example"},
		{Owner{User: "bob"}, "bob@example.org"},
		{Owner{User: "carol", Domain: "c.example"}, "carol@c.example"},
	} {
		if got, err := books.Address(tt.o); got != tt.want || err != nil {
			t.Errorf("Address(%v) = %q, %v; want %q", tt.o, got, err, tt.want)
		}
	}
	if _, err := m.Address(Owner{User: "nobody"}); !errors.Is(err, ErrNoAddress) {
		t.Errorf("unknown user: %v", err)
	}
	if _, err := ParseToTemplate("{{.User}}"); !errors.Is(err, ErrNoAddress) {
		t.Errorf("a template that makes no address: %v", err)
	}
	bad, _ := ParseToTemplate("{{.User}}@example.org")
	if _, err := bad.Address(Owner{User: "x\r\nBcc: evil@example.com"}); !errors.Is(err, ErrNoAddress) {
		t.Errorf("header injection through the user name: %v", err)
	}
	os.WriteFile(mapFile, []byte("alice\n"), 0o644)
	if _, err := ReadAddressMap(mapFile); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad map line: %v", err)
	}
}

// writeMbox writes an mbox of messages (From_ date, header Subject, size
// padding) and returns its path.
type testMsg struct {
	received time.Time
	subject  string
	from     string
	pad      int
	flagged  bool
}

func writeTestMbox(t *testing.T, path string, msgs []testMsg) {
	t.Helper()
	var b strings.Builder
	for _, m := range msgs {
		from := m.from
		if from == "" {
			from = "sender@example.com"
		}
		b.WriteString("From sender@example.com " + m.received.UTC().Format("Mon Jan _2 15:04:05 2006") + "\n")
		b.WriteString("From: " + from + "\nSubject: " + m.subject + "\nDate: " + m.received.Format(time.RFC1123Z) + "\n")
		if m.flagged {
			b.WriteString("X-Status: F\n")
		}
		b.WriteString("\n" + strings.Repeat("x", m.pad) + "\nbody\n\n")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// policyBefore is a stand-in for retention.Decide: received before cutoff
// goes, flagged stays.
func policyBefore(cutoff time.Time) *NoticePolicy {
	return &NoticePolicy{
		Description: "received before " + cutoff.Format(time.DateOnly), Cutoff: cutoff, KeepsFlagged: true,
		Decide: func(m *mboxscan.Message) (bool, bool) {
			d := m.Date(mboxscan.DateReceived)
			if d.IsZero() {
				return false, true
			}
			return d.Before(cutoff) && !m.Flagged(), false
		},
	}
}

func TestPlanNotices(t *testing.T) {
	dir := t.TempDir()
	iso := encodedWord(t, "ISO-2022-JP", japanese.ISO2022JP.NewEncoder(), "古い写真")
	writeTestMbox(t, filepath.Join(dir, "example.org", "alice", "mbox"), []testMsg{
		{received: noticeDay(2020, 1, 1), subject: iso, pad: 5000, from: "=?utf-8?b?5bGx55Sw?= <yamada@example.jp>"},
		{received: noticeDay(2020, 6, 1), subject: "flagged", pad: 100, flagged: true},
		{received: noticeDay(2024, 6, 1), subject: "recent big", pad: 9000},
		{received: noticeDay(2021, 1, 1), subject: "small old", pad: 10},
	})
	writeTestMbox(t, filepath.Join(dir, "example.org", "bob", "mbox"), []testMsg{
		{received: noticeDay(2025, 1, 1), subject: "new", pad: 10},
	})
	writeTestMbox(t, filepath.Join(dir, "example.org", "carol", "mbox"), []testMsg{
		{received: noticeDay(2025, 1, 1), subject: "huge", pad: 20000},
	})
	res, err := mboxscan.Scan(context.Background(), []string{dir}, mboxscan.Options{Limit: 20000, Warn: 80, Crit: 95, Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	pp, _ := ParsePathPattern(dir + "/{domain}/{user}")
	to, _ := ParseToTemplate("{{.User}}@{{.Domain}}")
	opts := NoticeOptions{
		Policy: policyBefore(noticeDay(2023, 1, 1)), Largest: 2, Addresses: to, PathPattern: pp,
		Admin: "postmaster@example.org", Cc: []string{"postmaster@example.org", "audit@example.org"}, Host: "mx", Now: noticeNow,
	}
	plan, err := PlanNotices(context.Background(), res, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Problems) != 0 || plan.Quiet != 1 || len(plan.Notices) != 2 {
		t.Fatalf("plan: %d notices, %d quiet, problems %v", len(plan.Notices), plan.Quiet, plan.Problems)
	}
	alice, carol := plan.Notices[0], plan.Notices[1]
	if alice.User != "alice" || alice.Domain != "example.org" || alice.To != "alice@example.org" || alice.Redirected {
		t.Errorf("alice: %+v", alice)
	}
	if r := alice.Remove; r.Messages != 2 || !r.Oldest.Equal(noticeDay(2020, 1, 1)) || !r.Newest.Equal(noticeDay(2021, 1, 1)) {
		t.Errorf("alice removes %+v", r)
	}
	if len(alice.Largest) != 2 || alice.Largest[0].Subject != "recent big" || alice.Largest[0].Remove ||
		alice.Largest[1].Subject != "古い写真" || alice.Largest[1].From != "山田" || !alice.Largest[1].Remove {
		t.Errorf("alice's largest: %+v", alice.Largest)
	}
	if alice.Level != mboxscan.LevelOK || len(alice.Cc) != 2 {
		t.Errorf("alice level %s cc %v", alice.Level, alice.Cc)
	}
	// carol is over the limit: her notice goes to the admin, who is then
	// not copied a second time.
	if !carol.OverLimit || !carol.Redirected || carol.To != "postmaster@example.org" || carol.Address != "carol@example.org" ||
		len(carol.Cc) != 1 || carol.Cc[0] != "audit@example.org" {
		t.Errorf("carol: to %s address %s redirected %v cc %v", carol.To, carol.Address, carol.Redirected, carol.Cc)
	}

	// Without an address, an owner with something to hear is a problem.
	opts.Addresses = AddressMap{"alice": "alice@example.org"}
	plan, err = PlanNotices(context.Background(), res, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Notices) != 1 || len(plan.Problems) != 1 || !errors.Is(plan.Problems[0].Err, ErrNoAddress) {
		t.Errorf("map without carol: %d notices, problems %v", len(plan.Notices), plan.Problems)
	}

	// --all: everyone; no policy: nothing to remove.
	opts.Addresses, opts.All, opts.Policy = to, true, nil
	plan, _ = PlanNotices(context.Background(), res, opts)
	if len(plan.Notices) != 3 || plan.Notices[0].HasPolicy || plan.Notices[0].Remove.Messages != 0 {
		t.Errorf("--all: %d notices", len(plan.Notices))
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := PlanNotices(ctx, res, opts); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestPlanMailboxMaildir(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(dir, s), 0o755)
	}
	write := func(name string, mtime time.Time, body string) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mtime, mtime)
	}
	sjis := encodedWord(t, "Shift_JIS", japanese.ShiftJIS.NewEncoder(), "見積書")
	// Names with ':' are made at run time (the module cannot hold them).
	write("cur/1500000000.1.host:2,S", noticeDay(2019, 1, 1), "Subject: "+sjis+"\n\n"+strings.Repeat("y", 3000))
	write("cur/1700000000.2.host:2,FS", noticeDay(2019, 1, 1), "Subject: flagged\n\nx")
	write("new/1740000000.3.host", noticeDay(2025, 3, 1), "Subject: new\n\nx")
	mb := &mboxscan.Mailbox{Path: dir, Format: mboxscan.FormatMaildir}
	rm, largest, err := PlanMailbox(context.Background(), mb, policyBefore(noticeDay(2024, 1, 1)), 1)
	if err != nil {
		t.Fatal(err)
	}
	if rm.Messages != 1 || len(largest) != 1 || largest[0].Subject != "見積書" || largest[0].Mailbox != "INBOX" || !largest[0].Remove {
		t.Errorf("removal %+v largest %+v", rm, largest)
	}
}

// The message a notice becomes is what go-message reads back, for every
// built-in language.
func TestNoticeRoundTrip(t *testing.T) {
	for _, lang := range NoticeLangs {
		tmpl, _ := BuiltinNoticeTemplate(lang)
		n := sampleNotice()
		subject, body, err := tmpl.Render(n)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := WriteMessage(&b, n, subject, body, MessageOptions{From: "postmaster@example.jp"}); err != nil {
			t.Fatal(err)
		}
		e, err := message.Read(&b)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(e.Body)
		if string(got) != strings.ReplaceAll(body, "\n", "\r\n") {
			t.Errorf("%s: body differs after the round trip", lang)
		}
		if id := e.Header.Get("Message-Id"); !strings.HasSuffix(id, "@example.jp>") {
			t.Errorf("%s: Message-Id %q", lang, id)
		}
		if d, err := time.Parse(time.RFC1123Z, e.Header.Get("Date")); err != nil || time.Since(d) > time.Minute {
			t.Errorf("%s: Date %q", lang, e.Header.Get("Date"))
		}
	}
}
