package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mailkeep/mailkeep/mboxscan"
)

// notifyServer is a go-smtp server on 127.0.0.1 that keeps what it gets.
type notifyServer struct {
	addr   string
	caFile string
	mu     sync.Mutex
	got    []notifyMail
	reject string
}

type notifyMail struct {
	from string
	to   []string
	data []byte
	tls  bool
}

type notifySession struct {
	s      *notifyServer
	c      *smtp.Conn
	authed bool
	m      notifyMail
}

func (ss *notifySession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (ss *notifySession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "mk" || pass != "pw" {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}
func (ss *notifySession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.caFile != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.m.from = from
	return nil
}
func (ss *notifySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.s.reject != "" && strings.HasPrefix(to, ss.s.reject) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	ss.m.to = append(ss.m.to, to)
	return nil
}
func (ss *notifySession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.m.data = b
	_, ss.m.tls = ss.c.TLSConnectionState()
	ss.s.mu.Lock()
	ss.s.got = append(ss.s.got, ss.m)
	ss.s.mu.Unlock()
	return nil
}
func (ss *notifySession) Reset()        { ss.m = notifyMail{} }
func (ss *notifySession) Logout() error { return nil }

// startNotifyServer starts the server; with secure, it offers STARTTLS
// with a self-signed certificate (written to caFile) and requires AUTH.
func startNotifyServer(t *testing.T, secure bool, reject string) *notifyServer {
	t.Helper()
	ns := &notifyServer{reject: reject}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &notifySession{s: ns, c: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	if secure {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(7), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
		ns.caFile = filepath.Join(t.TempDir(), "ca.pem")
		os.WriteFile(ns.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ns.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return ns
}

func (ns *notifyServer) mails() []notifyMail {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return append([]notifyMail(nil), ns.got...)
}

// notifySpool makes /…/vmail/DOMAIN/USER/mbox files: alice with old mail,
// bob with only new mail, carol over a 30000-byte limit.
func notifySpool(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(user string, msgs ...string) {
		p := filepath.Join(dir, "example.org", user, "mbox")
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(strings.Join(msgs, "")), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	msg := func(date, subject string, pad int) string {
		return "From someone@example.com " + date + "\nFrom: Someone <someone@example.com>\nSubject: " + subject +
			"\n\n" + strings.Repeat("z", pad) + "\n\n"
	}
	write("alice",
		msg("Mon Jan  6 10:00:00 2020", "=?ISO-2022-JP?B?GyRCMnE1RDtxTkEbKEI=?=", 3000), // 会議資料
		msg("Tue Feb  4 10:00:00 2020", "old two", 1000),
		msg("Sat Mar  1 10:00:00 2025", "recent", 100))
	write("bob", msg("Sat Mar  1 10:00:00 2025", "new", 100))
	write("carol", msg("Sat Mar  1 10:00:00 2025", "huge", 40000))
	return dir
}

func notifyRun(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := run(ctx, &globalOptions{}, append([]string{"notify"}, args...), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

func TestNotifySMTP(t *testing.T) {
	ns := startNotifyServer(t, true, "")
	dir := notifySpool(t)
	t.Setenv("MAILKEEP_SMTP_PASSWORD", "pw")
	r := notifyRun(t, "--smtp", ns.addr, "--smtp-user", "mk", "--smtp-ca", ns.caFile,
		"--path-pattern", dir+"/{domain}/{user}", "--to", "{{.User}}@{{.Domain}}",
		"--older-than", "1y", "--now", "2025-03-04T00:00:00Z", "--limit", "30000",
		"--admin", "postmaster@example.org", "--host", "mx.example.org", "--rate", "100/s", dir)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "notify: 2 notices sent, 1 to postmaster@example.org instead (over the limit: carol), 1 owner with nothing to report") {
		t.Errorf("summary:\n%s", r.stderr)
	}
	got := ns.mails()
	if len(got) != 2 {
		t.Fatalf("server got %d messages", len(got))
	}
	for i, want := range []struct{ to, subject, body string }{
		{"alice@example.org", "Old mail will be removed from your mailbox on mx.example.org",
			"removes 2 messages (4.1 KiB),\n  dated 2020-01-06 to 2020-02-04"},
		{"postmaster@example.org", "[for carol] Your mailbox on mx.example.org is full",
			"This notice is for carol <carol@example.org>."},
	} {
		m := got[i]
		if !m.tls || m.from != "postmaster@example.org" || len(m.to) != 1 || m.to[0] != want.to {
			t.Errorf("message %d: tls %v envelope %s → %v", i, m.tls, m.from, m.to)
		}
		mr, err := mail.CreateReader(bytes.NewReader(m.data))
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := mr.Header.Subject(); s != want.subject {
			t.Errorf("message %d: Subject %q", i, s)
		}
		if mr.Header.Get("Auto-Submitted") != "auto-generated" {
			t.Errorf("message %d: no Auto-Submitted", i)
		}
		p, err := mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(p.Body)
		text := strings.ReplaceAll(string(body), "\r\n", "\n")
		if !strings.Contains(text, want.body) {
			t.Errorf("message %d lacks %q:\n%s", i, want.body, text)
		}
		if i == 0 && !strings.Contains(text, "会議資料 (to be removed)") {
			t.Errorf("the ISO-2022-JP subject is not listed decoded:\n%s", text)
		}
	}
}

func TestNotifyFailures(t *testing.T) {
	dir := notifySpool(t)
	common := []string{"--path-pattern", dir + "/{domain}/{user}", "--to", "{{.User}}@example.org", "--older-than", "1y", "--now", "2025-03-04T00:00:00Z",
		"--all", "--rate", "1000/s", "--admin", "postmaster@example.org"}

	// One recipient refused: the others are sent, exit 1.
	ns := startNotifyServer(t, false, "bob@")
	r := notifyRun(t, append(common, "--smtp", ns.addr, dir)...)
	if r.code != 1 || !strings.Contains(r.stderr, "notice for bob@example.org <bob@example.org> failed") ||
		!strings.Contains(r.stderr, "notify: 2 notices sent, 1 failed") || len(ns.mails()) != 2 {
		t.Errorf("a refused recipient: exit %d, %d sent\n%s", r.code, len(ns.mails()), r.stderr)
	}

	// The server is down: give up after --max-failures in a row.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	down := l.Addr().String()
	l.Close()
	r = notifyRun(t, append(common, "--smtp", down, "--max-failures", "2", dir)...)
	if r.code != 1 || !strings.Contains(r.stderr, "gave up after 2 failed notices in a row; 1 not attempted") ||
		!strings.Contains(r.stderr, "connection refused") {
		t.Errorf("server down: exit %d\n%s", r.code, r.stderr)
	}

	// An owner without an address is a failure too; the rest are sent.
	mapFile := filepath.Join(t.TempDir(), "map")
	os.WriteFile(mapFile, []byte("alice alice@example.org\n"), 0o644)
	ns = startNotifyServer(t, false, "")
	r = notifyRun(t, "--path-pattern", dir+"/{domain}/{user}", "--map", mapFile, "--limit", "30000", "--older-than", "1y", "--now", "2025-03-04T00:00:00Z", "--rate", "1000/s",
		"--admin", "postmaster@example.org", "--smtp", ns.addr, dir)
	if r.code != 1 || len(ns.mails()) != 1 || !strings.Contains(r.stderr, "no address") {
		t.Errorf("no address: exit %d, %d sent\n%s", r.code, len(ns.mails()), r.stderr)
	}
}

func TestNotifyDryRunAndOut(t *testing.T) {
	dir := notifySpool(t)
	args := []string{"--to", "{{.User}}@example.org", "--older-than", "1y", "--now", "2025-03-04T00:00:00Z",
		"--lang", "ja", "--admin", "postmaster@example.org", "--path-pattern", dir + "/{domain}/{user}"}
	r := notifyRun(t, append(args, "--dry-run", dir)...)
	if r.code != 0 {
		t.Fatalf("dry run: exit %d\n%s", r.code, r.stderr)
	}
	// The output is an mbox: the scanner reads it back, one message per notice.
	sc := mboxscan.NewScanner(strings.NewReader(r.stdout), "stdout")
	var subjects []string
	for {
		m, err := sc.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		subjects = append(subjects, m.Header.Subject)
	}
	if len(subjects) != 1 || !strings.HasPrefix(subjects[0], "=?utf-8?q?") {
		t.Errorf("dry-run subjects %q\n%s", subjects, r.stdout)
	}

	out := filepath.Join(t.TempDir(), "out")
	r = notifyRun(t, append(args, "--out", out, "--all", dir)...)
	if r.code != 0 || !strings.Contains(r.stderr, "3 notices written to "+out) {
		t.Fatalf("--out: exit %d\n%s", r.code, r.stderr)
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != 3 || !strings.HasPrefix(ents[0].Name(), "001-") || !strings.HasSuffix(ents[0].Name(), ".eml") {
		t.Errorf("files %v", ents)
	}
}

func TestNotifyUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{dir}, "no way to address the owners"},
		{[]string{"--to", "{{.User}}@x.org", "--older-than", "1y", "--before", "2024-01-01", dir}, "both set a cutoff"},
		{[]string{"--to", "{{.User}}@x.org", "--larger-than", "1MB", dir}, "--larger-than needs a cutoff"},
		{[]string{"--to", "{{.User}}@x.org", "--lang", "fr", dir}, "no built-in notice template"},
		{[]string{"--to", "{{.User}}@x.org", "--rate", "fast", dir}, "--rate"},
		{[]string{"--to", "{{.User}}@x.org", "--smtp", "nohost", dir}, "--smtp"},
		{[]string{"--to", "{{.User}}@x.org", "--smtp", "127.0.0.1:25", "--smtp-user", "u", dir}, "MAILKEEP_SMTP_PASSWORD"},
		{[]string{"--to", "{{.User", dir}, "--to"},
		{[]string{"--to", "{{.User}}@x.org", "--path-pattern", "/var/{domain}", dir}, "no {user}"},
		{[]string{"--to", "{{.User}}@x.org", "--admin", "not an address", dir}, "--admin"},
		{[]string{"--to", "{{.User}}@x.org", "--dry-run", "--smtp", "127.0.0.1:25", dir}, "send nothing"},
	} {
		os.Unsetenv("MAILKEEP_SMTP_PASSWORD")
		r := notifyRun(t, tt.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("notify %q: exit %d, want 2 and %q\n%s", tt.args, r.code, tt.want, r.stderr)
		}
	}
	var stdout, stderr bytes.Buffer
	run(context.Background(), &globalOptions{}, []string{"notify", "--help"}, &stdout, &stderr)
	for _, want := range []string{".Largest", "MAILKEEP_SMTP_PASSWORD", "EXIT STATUS", "Auto-Submitted"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestScanPrometheus(t *testing.T) {
	dir := notifySpool(t)
	textfile := filepath.Join(t.TempDir(), "mailkeep.prom")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), &globalOptions{}, []string{"scan", "--format", "prometheus", "--textfile", textfile, dir}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(&stdout)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(fams["mailkeep_mailbox_size_bytes"].GetMetric()); n != 3 {
		t.Errorf("%d mailboxes in the metrics", n)
	}
	last := fams["mailkeep_last_success_timestamp_seconds"].GetMetric()[0].GetGauge().GetValue()
	if time.Since(time.Unix(int64(last), 0)) > time.Minute {
		t.Errorf("last success %v", last)
	}
	f, err := os.Open(textfile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := p.TextToMetricFamilies(f); err != nil {
		t.Errorf("textfile: %v", err)
	}

	// A failed scan keeps the last success of the file it replaces.
	stdout.Reset()
	code = run(context.Background(), &globalOptions{}, []string{"scan", "--textfile", textfile, "--format", "json", dir, filepath.Join(dir, "missing")}, &stdout, &stderr)
	if code != 1 {
		t.Errorf("scan with a missing root: exit %d", code)
	}
	b, _ := os.ReadFile(textfile)
	fams, err = p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	// Carried over to the microsecond.
	if got := fams["mailkeep_last_success_timestamp_seconds"].GetMetric()[0].GetGauge().GetValue(); got < last-1e-3 || got > last+1e-3 {
		t.Errorf("last success after a failure = %v, want %v", got, last)
	}
	if got := fams["mailkeep_scan_success"].GetMetric()[0].GetGauge().GetValue(); got != 0 {
		t.Errorf("scan_success = %v", got)
	}
}
