package report

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// testCert makes a self-signed certificate for 127.0.0.1 and localhost,
// returning the server's TLS config, a pool trusting it, and its PEM.
func testCert(t *testing.T) (*tls.Config, *x509.CertPool, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mailkeep test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool, pemBytes
}

type received struct {
	from   string
	to     []string
	data   []byte
	tls    bool
	authed string
}

// testServer is a go-smtp server on 127.0.0.1 that keeps what it gets.
type testServer struct {
	Addr   string
	Pool   *x509.CertPool
	PEM    []byte
	mu     sync.Mutex
	msgs   []received
	reject map[string]bool // RCPT addresses refused with 550
	user   string          // AUTH PLAIN required when set
	pass   string
	conns  int // TCP connections accepted
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	ts *testServer
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.ts.mu.Lock()
		l.ts.conns++
		l.ts.mu.Unlock()
	}
	return c, err
}

type serverOptions struct {
	tls        bool
	user, pass string
	reject     []string
}

func startServer(t *testing.T, o serverOptions) *testServer {
	t.Helper()
	ts := &testServer{reject: map[string]bool{}, user: o.user, pass: o.pass}
	for _, r := range o.reject {
		ts.reject[r] = true
	}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &testSession{ts: ts, c: c}, nil
	}))
	s.Domain = "localhost"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	s.MaxMessageBytes = 1 << 20
	if o.tls {
		var cfg *tls.Config
		cfg, ts.Pool, ts.PEM = testCert(t)
		s.TLSConfig = cfg
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.Addr = l.Addr().String()
	go s.Serve(countingListener{l, ts})
	t.Cleanup(func() { s.Close() })
	return ts
}

func (ts *testServer) connections() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.conns
}

func (ts *testServer) received() []received {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]received(nil), ts.msgs...)
}

type testSession struct {
	ts     *testServer
	c      *smtp.Conn
	from   string
	to     []string
	authed string
}

func (s *testSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *testSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != s.ts.user || pass != s.ts.pass {
			return errors.New("invalid credentials")
		}
		s.authed = user
		return nil
	}), nil
}

func (s *testSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.ts.user != "" && s.authed == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *testSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.ts.reject[to] {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *testSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.c.TLSConnectionState()
	s.ts.mu.Lock()
	s.ts.msgs = append(s.ts.msgs, received{from: s.from, to: s.to, data: b, tls: isTLS, authed: s.authed})
	s.ts.mu.Unlock()
	return nil
}

func (s *testSession) Reset()        { s.from, s.to = "", nil }
func (s *testSession) Logout() error { return nil }

// outgoing renders the sample notice for each of users, as notify does.
func outgoing(t *testing.T, lang string, users ...string) []Outgoing {
	t.Helper()
	tmpl, err := BuiltinNoticeTemplate(lang)
	if err != nil {
		t.Fatal(err)
	}
	var out []Outgoing
	for i, u := range users {
		n := sampleNotice()
		n.User, n.Address, n.To = u, u+"@example.jp", u+"@example.jp"
		n.Remove.Messages += i // tell them apart
		subject, body, err := tmpl.Render(n)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := WriteMessage(&b, n, subject, body, MessageOptions{From: "postmaster@example.jp"}); err != nil {
			t.Fatal(err)
		}
		out = append(out, Outgoing{Envelope: Envelope{From: "postmaster@example.jp", To: []string{n.To}}, Msg: b.Bytes(), Label: u})
	}
	return out
}

// checkReceived parses a received notice back and checks its header and
// numbers.
func checkReceived(t *testing.T, r received, user string, removed int) {
	t.Helper()
	m, err := gomail.CreateReader(bytes.NewReader(r.data))
	if err != nil {
		t.Fatal(err)
	}
	h := m.Header
	if h.Get("Auto-Submitted") != "auto-generated" || h.Get("Message-Id") == "" {
		t.Errorf("%s: Auto-Submitted %q Message-Id %q", user, h.Get("Auto-Submitted"), h.Get("Message-Id"))
	}
	if d, err := h.Date(); err != nil || time.Since(d) > time.Minute {
		t.Errorf("%s: Date %q", user, h.Get("Date"))
	}
	to, _ := h.AddressList("To")
	from, _ := h.AddressList("From")
	if len(to) != 1 || to[0].Address != user+"@example.jp" || len(from) != 1 || from[0].Address != "postmaster@example.jp" {
		t.Errorf("%s: From %v To %v", user, from, to)
	}
	if r.from != "postmaster@example.jp" {
		t.Errorf("%s: envelope sender %q", user, r.from)
	}
	subject, err := h.Subject()
	if err != nil || subject == "" {
		t.Errorf("%s: Subject %q: %v", user, subject, err)
	}
	p, err := m.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(p.Body)
	want := fmt.Sprintf("removes %d messages (300 MiB)", removed)
	if !strings.Contains(string(body), want) || !strings.Contains(string(body), "Hello "+user+",") {
		t.Errorf("%s: body lacks %q:\n%s", user, want, body)
	}
}

func TestDeliverSMTPStartTLSAuth(t *testing.T) {
	ts := startServer(t, serverOptions{tls: true, user: "mailkeep", pass: "s3cret"})
	s := &SMTP{Addr: ts.Addr, TLSConfig: &tls.Config{RootCAs: ts.Pool}, User: "mailkeep", Password: "s3cret", Timeout: 10 * time.Second}
	msgs := outgoing(t, "en", "alice", "bob", "carol")
	sum, err := Deliver(context.Background(), s, msgs, DeliverOptions{Rate: Rate{Count: 100, Per: time.Second}})
	if err != nil || sum.Sent != 3 || sum.Failed != 0 {
		t.Fatalf("Deliver: %+v, %v", sum, err)
	}
	got := ts.received()
	if len(got) != 3 {
		t.Fatalf("server got %d messages", len(got))
	}
	for i, u := range []string{"alice", "bob", "carol"} {
		if !got[i].tls || got[i].authed != "mailkeep" {
			t.Errorf("%s: tls %v, authed %q", u, got[i].tls, got[i].authed)
		}
		checkReceived(t, got[i], u, 1200+i)
	}
	// One probe connection, one for the session: not one per message.
	if n := ts.connections(); n != 2 {
		t.Errorf("%d connections for 3 messages", n)
	}
}

func TestDeliverSMTPUntrustedCertificate(t *testing.T) {
	ts := startServer(t, serverOptions{tls: true})
	s := &SMTP{Addr: ts.Addr, Timeout: 10 * time.Second} // system roots: the test CA is unknown
	sum, err := Deliver(context.Background(), s, outgoing(t, "en", "alice"), DeliverOptions{})
	if err == nil || sum.Failed != 1 || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Deliver to an untrusted server: %+v, %v", sum, err)
	}
	if len(ts.received()) != 0 {
		t.Error("a message went over an unverified connection")
	}
}

func TestDeliverSMTPWrongPassword(t *testing.T) {
	ts := startServer(t, serverOptions{tls: true, user: "u", pass: "right"})
	s := &SMTP{Addr: ts.Addr, TLSConfig: &tls.Config{RootCAs: ts.Pool}, User: "u", Password: "wrong", Timeout: 10 * time.Second}
	_, err := Deliver(context.Background(), s, outgoing(t, "en", "alice"), DeliverOptions{})
	if err == nil || !strings.Contains(err.Error(), "auth as u") {
		t.Errorf("wrong password: %v", err)
	}
}

func TestDeliverRejectedRecipients(t *testing.T) {
	ts := startServer(t, serverOptions{reject: []string{"bob@example.jp", "dave@example.jp"}})
	s := &SMTP{Addr: ts.Addr, Timeout: 10 * time.Second}
	var seen []string
	opts := DeliverOptions{Rate: Rate{Count: 1000, Per: time.Second}, MaxConsecutiveFailures: 2,
		OnResult: func(r DeliveryResult) { seen = append(seen, r.Label) }}
	sum, err := Deliver(context.Background(), s, outgoing(t, "ja", "alice", "bob", "carol", "dave", "erin"), opts)
	if sum.Sent != 3 || sum.Failed != 2 || sum.Stopped || err == nil {
		t.Fatalf("Deliver: %+v, %v", sum, err)
	}
	if !strings.Contains(err.Error(), "bob: smtp") || !strings.Contains(err.Error(), "550") || !strings.Contains(err.Error(), "dave") {
		t.Errorf("error: %v", err)
	}
	if strings.Join(seen, " ") != "alice bob carol dave erin" {
		t.Errorf("results: %v", seen)
	}
	got := ts.received()
	if len(got) != 3 {
		t.Fatalf("server got %d", len(got))
	}
	for i, r := range got {
		if want := []string{"alice", "carol", "erin"}[i] + "@example.jp"; len(r.to) != 1 || r.to[0] != want {
			t.Errorf("message %d to %v, want %s", i, r.to, want)
		}
	}
	if n := ts.connections(); n != 1 {
		t.Errorf("a rejected recipient cost a connection: %d connections", n)
	}
}

func TestDeliverServerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now: connection refused
	s := &SMTP{Addr: addr, Timeout: 5 * time.Second}
	msgs := outgoing(t, "en", "a", "b", "c", "d", "e", "f", "g")
	start := time.Now()
	sum, err := Deliver(context.Background(), s, msgs, DeliverOptions{Rate: Rate{Count: 1000, Per: time.Second}, MaxConsecutiveFailures: 3})
	if !sum.Stopped || sum.Failed != 3 || sum.NotAttempted != 4 || sum.Sent != 0 || !errors.Is(err, ErrTooManyFailures) {
		t.Errorf("Deliver to a closed port: %+v, %v", sum, err)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error does not say why: %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %s", time.Since(start))
	}
}

// fakeSender records when each message was sent.
type fakeSender struct {
	times []time.Time
	fail  func(i int) error
}

func (f *fakeSender) Send(ctx context.Context, env Envelope, msg []byte) error {
	f.times = append(f.times, time.Now())
	if f.fail != nil {
		return f.fail(len(f.times) - 1)
	}
	return nil
}
func (f *fakeSender) Close() error { return nil }

func TestDeliverPacing(t *testing.T) {
	const n, perSecond = 5, 20
	f := &fakeSender{}
	msgs := make([]Outgoing, n)
	start := time.Now()
	sum, err := Deliver(context.Background(), f, msgs, DeliverOptions{Rate: Rate{Count: perSecond, Per: time.Second}})
	took := time.Since(start)
	if err != nil || sum.Sent != n {
		t.Fatal(sum, err)
	}
	min := time.Duration(n-1) * time.Second / perSecond
	if took < min-5*time.Millisecond || took > min+2*time.Second {
		t.Errorf("%d messages at %d/s took %s, want about %s", n, perSecond, took, min)
	}
	for i := 1; i < n; i++ {
		if since := f.times[i].Sub(f.times[0]); since < time.Duration(i)*time.Second/perSecond-5*time.Millisecond {
			t.Errorf("message %d went %s after the first", i, since)
		}
	}

	// A cancelled run stops at once and says so.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	f = &fakeSender{}
	sum, err = Deliver(ctx, f, make([]Outgoing, 100), DeliverOptions{Rate: Rate{Count: 10, Per: time.Second}})
	if !errors.Is(err, context.DeadlineExceeded) || sum.Sent+sum.NotAttempted != 100 || sum.Sent > 3 {
		t.Errorf("cancelled run: %+v, %v", sum, err)
	}
}

func TestDeliverConsecutiveFailuresReset(t *testing.T) {
	// Failures that are not in a row never stop the run.
	f := &fakeSender{fail: func(i int) error {
		if i%2 == 0 {
			return errors.New("nope")
		}
		return nil
	}}
	sum, err := Deliver(context.Background(), f, make([]Outgoing, 9), DeliverOptions{Rate: Rate{Count: 1000, Per: time.Second}, MaxConsecutiveFailures: 2})
	if sum.Stopped || sum.Failed != 5 || sum.Sent != 4 || err == nil {
		t.Errorf("%+v, %v", sum, err)
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]Rate{"2/s": {2, time.Second}, "120/m": {120, time.Minute}, "1000/h": {1000, time.Hour}, "5": {5, time.Second}} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "0/s", "-1", "2/d", "x/s"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) accepted", bad)
		}
	}
}

// The sendmail path through a real sendmail-compatible program: msmtp,
// pointed at the test server with STARTTLS and AUTH.
func TestDeliverSendmailMsmtp(t *testing.T) {
	msmtp, err := exec.LookPath("msmtp")
	if err != nil {
		t.Skip("msmtp is not installed (apt-get install msmtp): the sendmail path is not tested")
	}
	ts := startServer(t, serverOptions{tls: true, user: "mk", pass: "pw", reject: []string{"bob@example.jp"}})
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, ts.PEM, 0o644)
	host, port, _ := net.SplitHostPort(ts.Addr)
	conf := filepath.Join(dir, "msmtprc")
	err = os.WriteFile(conf, []byte(fmt.Sprintf(`defaults
account default
host %s
port %s
tls on
tls_starttls on
tls_trust_file %s
auth plain
user mk
password pw
`, host, port, ca)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	s := &Sendmail{Path: msmtp, Args: []string{"-C", conf}, Timeout: 30 * time.Second}
	sum, err := Deliver(context.Background(), s, outgoing(t, "en", "alice", "bob", "carol"), DeliverOptions{Rate: Rate{Count: 100, Per: time.Second}})
	if sum.Sent != 2 || sum.Failed != 1 || err == nil || !strings.Contains(err.Error(), "bob") {
		t.Fatalf("Deliver via msmtp: %+v, %v", sum, err)
	}
	got := ts.received()
	if len(got) != 2 {
		t.Fatalf("server got %d messages", len(got))
	}
	for i, u := range []string{"alice", "carol"} {
		if !got[i].tls || got[i].authed != "mk" {
			t.Errorf("%s: tls %v authed %q", u, got[i].tls, got[i].authed)
		}
		// -t: the recipients came from the To header.
		if len(got[i].to) != 1 || got[i].to[0] != u+"@example.jp" {
			t.Errorf("%s: RCPT %v", u, got[i].to)
		}
		checkReceived(t, got[i], u, 1200+2*i)
	}
}

func TestSendmailFailure(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "sendmail")
	os.WriteFile(script, []byte("#!/bin/sh\necho \"args: $*\" >&2\ncat > \""+dir+"/msg\"\nexit 75\n"), 0o755)
	s := &Sendmail{Path: script, Args: []string{"-X"}}
	err := s.Send(context.Background(), Envelope{From: "postmaster@example.org"}, []byte("Subject: x\r\n\r\nhi\r\n"))
	if err == nil || !strings.Contains(err.Error(), "exit status 75") || !strings.Contains(err.Error(), "args: -X -t -oi -f postmaster@example.org") {
		t.Errorf("Send: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "msg")); string(b) != "Subject: x\r\n\r\nhi\r\n" {
		t.Errorf("stdin: %q", b)
	}
}
