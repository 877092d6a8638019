package interop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// mailkeepBin is the mailkeep binary built by TestMain.
var mailkeepBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// MAILKEEP_INTEROP_BIN runs the tests against a binary built elsewhere
	// (another commit, an installed package).
	if bin := os.Getenv("MAILKEEP_INTEROP_BIN"); bin != "" {
		mailkeepBin = bin
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "mailkeep-interop-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The binary is built once, not per test: a build costs seconds of the
	// two shared cores.
	mailkeepBin = filepath.Join(dir, "mailkeep")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	build := exec.Command(gobin, "build", "-o", mailkeepBin, "github.com/mailkeep/mailkeep/cmd/mailkeep")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "interop: build mailkeep: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// need returns the path of a program, or skips the test naming it.
func need(t *testing.T, prog string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		t.Skipf("%s not installed (Debian: apt-get install procmail dovecot-core mutt): %v", prog, err)
	}
	return p
}

// needFile is need for a program outside PATH (dovecot-lda).
func needFile(t *testing.T, path string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s not installed (Debian: apt-get install dovecot-core): %v", path, err)
	}
	return path
}

var versions sync.Map // program name → version line

// logVersion logs the version line of a program, as the brief of issue 8
// asks, so that a test log says what was proven against what.
func logVersion(t *testing.T, prog string) {
	t.Helper()
	v, ok := versions.Load(prog)
	if !ok {
		var out []byte
		switch prog {
		case "procmail":
			out, _ = exec.Command("procmail", "-v").CombinedOutput()
		case "dovecot":
			out, _ = exec.Command("dovecot", "--version").CombinedOutput()
			if len(out) > 0 {
				out = append([]byte("dovecot "), out...)
			}
		case "mutt":
			out, _ = exec.Command("mutt", "-v").CombinedOutput()
		}
		line, _, _ := strings.Cut(string(out), "\n")
		v = strings.TrimSpace(line)
		versions.Store(prog, v)
	}
	t.Logf("version: %s", v)
}

// mailkeep runs the built binary and returns its stdout, stderr and exit
// status; a failure to start it fails the test.
func mailkeep(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(mailkeepBin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run mailkeep %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), code
}

// pruneJSON is the part of prune's JSON document the tests read.
type pruneJSON struct {
	DryRun    bool `json:"dry_run"`
	Mailboxes []struct {
		Path            string  `json:"path"`
		Format          string  `json:"format"`
		MessagesBefore  int     `json:"messages_before"`
		MessagesRemoved int     `json:"messages_removed"`
		BytesBefore     int64   `json:"bytes_before"`
		BytesRemoved    int64   `json:"bytes_removed"`
		Mode            string  `json:"mode"`
		Error           *string `json:"error"`
		Removed         []struct {
			MessageID string `json:"message_id"`
			Bytes     int64  `json:"bytes"`
		} `json:"removed"`
	} `json:"mailboxes"`
}

// scanJSON is the part of scan's JSON document the tests read.
type scanJSON struct {
	Mailboxes []struct {
		Path         string `json:"path"`
		Format       string `json:"format"`
		Messages     int    `json:"messages"`
		Bytes        int64  `json:"bytes"`
		LargestBytes int64  `json:"largest_bytes"`
	} `json:"mailboxes"`
	Skipped []struct {
		Path   string `json:"path"`
		Reason string `json:"reason"`
	} `json:"skipped"`
}

// tryPrune runs mailkeep prune with --format json and returns its document
// and stderr (notes such as carried appends); the error says why the run
// did not exit 0 with one mailbox and no error. Unless args name one, the
// state directory (in-place journals) is a new temporary one, never the
// real default.
func tryPrune(t *testing.T, args ...string) (pruneJSON, string, error) {
	t.Helper()
	if !slices.Contains(args, "--state-dir") {
		args = append([]string{"--state-dir", t.TempDir()}, args...)
	}
	out, errOut, code := mailkeep(t, append([]string{"prune", "--format", "json"}, args...)...)
	var doc pruneJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return doc, errOut, fmt.Errorf("prune %v: exit %d, bad JSON %w\nstdout: %s\nstderr: %s", args, code, err, out, errOut)
	}
	if code != 0 || len(doc.Mailboxes) != 1 || doc.Mailboxes[0].Error != nil {
		return doc, errOut, fmt.Errorf("prune %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return doc, errOut, nil
}

// prune is tryPrune that fails the test on an error.
func prune(t *testing.T, args ...string) pruneJSON {
	t.Helper()
	doc, _, err := tryPrune(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// skipUnlessRewrite skips a test of an mbox rewrite mode mailkeep does not
// offer yet (--rewrite inplace while it is being written).
func skipUnlessRewrite(t *testing.T, mode string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "probe")
	msg := "From a@example.org Mon Jan  2 15:04:05 2006\nSubject: probe\n\nx\n\n"
	if err := os.WriteFile(path, []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := mailkeep(t, "prune", "--rewrite", mode, "--state-dir", dir, "--older-than", "1y", path)
	if code != 0 {
		if strings.Contains(errOut, "not yet supported") {
			t.Skipf("mailkeep prune --rewrite %s: %s", mode, strings.TrimSpace(errOut))
		}
		t.Fatalf("probe --rewrite %s: exit %d: %s", mode, code, errOut)
	}
}

// mailUser is who Dovecot runs as: nobody when the tests run as root
// (Dovecot refuses mail access as root), else the current user.
type mailUser struct {
	name, group string
	uid, gid    int
	root        bool // the test runs as root and switches to uid/gid
}

func dovecotUser(t *testing.T) mailUser {
	t.Helper()
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return mailUser{name: u.Username, group: g.Name, uid: uid, gid: gid}
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody to run Dovecot as: %v", err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Skipf("no group for nobody: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return mailUser{name: u.Username, group: g.Name, uid: uid, gid: gid, root: true}
}

// worldDir returns a new temporary directory that the mail user can reach:
// the testing package makes its directories 0700.
func worldDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// chownTree gives everything under dir to the mail user.
func (u mailUser) chownTree(t *testing.T, dir string) {
	t.Helper()
	if !u.root {
		return
	}
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, u.uid, u.gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// command returns cmd set up to run as the mail user with a minimal
// environment (Dovecot reads USER and HOME).
func (u mailUser) command(home, prog string, args ...string) *exec.Cmd {
	cmd := exec.Command(prog, args...)
	cmd.Env = []string{"USER=" + u.name, "HOME=" + home, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if u.root {
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid)},
		}
	}
	cmd.Dir = home
	return cmd
}

// dovecot is a daemonless Dovecot setup in a temporary directory, as in
// /work/shared/design/interop-notes.md.
type dovecot struct {
	dir  string // base: run/, state/, idx/, mail/ or Maildir/
	conf string
	home string
	user mailUser
	lda  string
}

// inbox returns the mbox INBOX path or the Maildir root.
func (d *dovecot) inbox(maildir bool) string {
	if maildir {
		return filepath.Join(d.dir, "Maildir")
	}
	return filepath.Join(d.dir, "mail", "inbox")
}

// newDovecot writes the configuration. The caller creates the mailbox at
// d.inbox and calls d.own before the first Dovecot command.
func newDovecot(t *testing.T, maildir bool) *dovecot {
	t.Helper()
	need(t, "doveadm")
	need(t, "dovecot")
	logVersion(t, "dovecot")
	d := &dovecot{dir: worldDir(t), user: dovecotUser(t)}
	d.home = filepath.Join(d.dir, "mail")
	for _, sub := range []string{"run", "state", "idx", "mail"} {
		if err := os.Mkdir(filepath.Join(d.dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	loc := fmt.Sprintf("mbox:%[1]s/mail:INBOX=%[1]s/mail/inbox:INDEX=%[1]s/idx", d.dir)
	if maildir {
		loc = fmt.Sprintf("maildir:%[1]s/Maildir:INDEX=%[1]s/idx", d.dir)
	}
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = /dev/stderr
ssl = no
mail_uid = %[2]s
mail_gid = %[3]s
first_valid_uid = 0
mail_location = %[4]s
`, d.dir, d.user.name, d.user.group, loc)
	d.conf = filepath.Join(d.dir, "dovecot.conf")
	if err := os.WriteFile(d.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d.lda = "/usr/lib/dovecot/dovecot-lda"
	return d
}

// own gives the whole setup to the mail user.
func (d *dovecot) own(t *testing.T) { d.user.chownTree(t, d.dir) }

// doveadm runs a doveadm command and returns stdout and stderr; a failure
// fails the test.
func (d *dovecot) doveadm(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	cmd := d.user.command(d.home, "doveadm", append([]string{"-c", d.conf}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("doveadm %s: %v\n%s%s", strings.Join(args, " "), err, o.String(), e.String())
	}
	return o.String(), e.String()
}

// ldaCommand returns a dovecot-lda delivery into INBOX.
func (d *dovecot) ldaCommand(sender string) *exec.Cmd {
	return d.user.command(d.home, d.lda, "-c", d.conf, "-f", sender)
}

// fetched is one message as doveadm fetch shows it.
type fetched struct {
	UID       int
	Flags     string
	MessageID string
	Physical  int64
	Virtual   int64
}

// fetchAll lists every message of INBOX with its UID, flags, Message-ID
// and sizes; it returns doveadm's stderr too.
func (d *dovecot) fetchAll(t *testing.T) ([]fetched, string) {
	t.Helper()
	out, errOut := d.doveadm(t, "-f", "tab", "fetch", "uid flags size.physical size.virtual hdr.message-id", "mailbox", "INBOX", "all")
	var msgs []fetched
	for i, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if i == 0 || line == "" { // header row
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			t.Fatalf("doveadm fetch: unexpected row %q", line)
		}
		var m fetched
		m.UID, _ = strconv.Atoi(f[0])
		m.Flags = normFlags(f[1])
		m.Physical, _ = strconv.ParseInt(f[2], 10, 64)
		m.Virtual, _ = strconv.ParseInt(f[3], 10, 64)
		m.MessageID = strings.TrimSpace(f[4])
		msgs = append(msgs, m)
	}
	return msgs, errOut
}

// normFlags drops \Recent, which is a session property rather than a stored
// flag: a first reader after any change may see it differently.
func normFlags(s string) string {
	var keep []string
	for _, f := range strings.Fields(s) {
		if f != `\Recent` {
			keep = append(keep, f)
		}
	}
	return strings.Join(keep, " ")
}

// status returns doveadm mailbox status fields of INBOX.
func (d *dovecot) status(t *testing.T, fields string) (map[string]int64, string) {
	t.Helper()
	out, errOut := d.doveadm(t, "mailbox", "status", fields, "INBOX")
	st := map[string]int64{}
	for _, kv := range strings.Fields(out) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil {
			st[k] = n
		}
	}
	return st, errOut
}

// dovecotTrouble returns the lines of a Dovecot log that say it found the
// mailbox or its index broken: what a reader must never need after prune.
func dovecotTrouble(log string) []string {
	var bad []string
	for _, line := range strings.Split(log, "\n") {
		l := strings.ToLower(line)
		for _, w := range []string{"rebuild", "corrupt", "resync", "uidvalidity", "warning", "error", "panic", "fatal", "expunged message reappeared", "broken"} {
			if strings.Contains(l, w) {
				bad = append(bad, line)
				break
			}
		}
	}
	return bad
}

// elapsedStats summarises a set of durations for the logs.
type elapsedStats struct {
	n             int
	max, sum, p50 time.Duration
	over1s        int // how many took longer than a second
}

func statsOf(ds []time.Duration) elapsedStats {
	s := elapsedStats{n: len(ds)}
	if len(ds) == 0 {
		return s
	}
	sorted := append([]time.Duration(nil), ds...)
	for i := 1; i < len(sorted); i++ { // insertion sort: a few hundred values
		for j := i; j > 0 && sorted[j] < sorted[j-1]; j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	for _, d := range ds {
		s.sum += d
		if d > time.Second {
			s.over1s++
		}
	}
	s.max = sorted[len(sorted)-1]
	s.p50 = sorted[len(sorted)/2]
	return s
}

func (s elapsedStats) String() string {
	return fmt.Sprintf("n=%d median=%v max=%v (%d over 1s)", s.n, s.p50.Round(time.Millisecond), s.max.Round(time.Millisecond), s.over1s)
}
