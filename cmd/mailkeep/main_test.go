package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/mboxscan"
)

// The real binary, built once by TestMain with release-style ldflags.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mailkeep-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "mailkeep")
	build := exec.Command("go", "build", "-o", binary,
		"-ldflags", "-X main.version=1.2.3 -X main.commit=abc123 -X main.date=2025-01-02T03:04:05Z", ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build mailkeep:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// mailkeep runs the binary with stdout and stderr as pipes (never TTYs).
func mailkeep(t *testing.T, args ...string) result {
	t.Helper()
	return runCmd(t, exec.Command(binary, args...))
}

// runCmd runs cmd with stdout and stderr as pipes and returns its output
// and exit code.
func runCmd(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, stdout.String(), stderr.String()}
}

func TestBinaryExitCodes(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	tests := []struct {
		args   []string
		code   int
		stdout string // regexp
		stderr string // regexp
	}{
		{[]string{"version"}, 0, `^mailkeep 1\.2\.3 \(commit abc123, built 2025-01-02T03:04:05Z\)\n$`, `^$`},
		{[]string{"--version"}, 0, `^mailkeep 1\.2\.3 \(commit abc123, built 2025-01-02T03:04:05Z\)\n$`, `^$`},
		{[]string{"help"}, 0, `EXIT STATUS`, `^$`},
		{[]string{"scan", "--help"}, 0, `(?s)10\^9.*EXIT STATUS`, `^$`},
		{[]string{"completion", "bash"}, 0, `bash completion`, `^$`},
		{[]string{"completion", "zsh"}, 0, `compdef`, `^$`},
		{[]string{"completion", "fish"}, 0, `complete -c mailkeep`, `^$`},
		{[]string{"completion", "powershell"}, 0, `Register-ArgumentCompleter`, `^$`},
		{[]string{"sacn"}, 2, `^$`, `^mailkeep: error: unknown command "sacn" for "mailkeep"\nmailkeep: hint: did you mean "scan"\?\n$`},
		{[]string{"version", "extra"}, 2, `^$`, `^mailkeep: error: .*\nmailkeep: hint: `},
		{[]string{"scan", "--bogus"}, 2, `^$`, `^mailkeep: error: unknown flag: --bogus\n`},
		{[]string{"scan", "--warn", "90", "--crit", "80"}, 2, `^$`, `^mailkeep: error: --warn 90 is not below --crit 80\nmailkeep: hint: `},
		{[]string{"scan", "--warn", "0"}, 2, `^$`, `--warn 0`},
		{[]string{"scan", "--crit", "101"}, 2, `^$`, `--crit 101`},
		{[]string{"scan", "--limit", "0"}, 2, `^$`, `--limit must be above 0`},
		{[]string{"scan", "--limit", "2XB"}, 2, `^$`, `invalid argument "2XB" for "--limit"`},
		{[]string{"scan", "--large", "0"}, 2, `^$`, `--large must be above 0`},
		{[]string{"scan", "--jobs", "-1"}, 2, `^$`, `--jobs -1`},
		{[]string{"scan", "--format", "xml"}, 2, `^$`, `must be one of table\|json\|csv\|prometheus`},
		{[]string{"check", "--bogus"}, 3, `^MAILKEEP UNKNOWN - unknown flag: --bogus\n$`, `^mailkeep: error: unknown flag: --bogus\n`},
		{[]string{"check", "--warn", "99"}, 3, `^MAILKEEP UNKNOWN - --warn 99 is not below --crit 95\n$`, `^mailkeep: error: `},
		{[]string{"check", missing}, 3, `^MAILKEEP UNKNOWN - scan failed: scan root: stat .*: no such file or directory; no mailboxes found; 1 skipped \| `, `^mailkeep: error: scan root: `},
		{[]string{"scan", missing}, 1, `^$`, `^mailkeep: warning: skipped .*/nope: no such file or directory\nmailkeep: error: scan root: stat .*/nope: no such file or directory\n$`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := mailkeep(t, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			if !regexp.MustCompile(tt.stdout).MatchString(r.stdout) {
				t.Errorf("stdout %q does not match %s", r.stdout, tt.stdout)
			}
			if !regexp.MustCompile(tt.stderr).MatchString(r.stderr) {
				t.Errorf("stderr %q does not match %s", r.stderr, tt.stderr)
			}
		})
	}
}

func TestBinaryMissingRootJSON(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	r := mailkeep(t, "scan", "--format", "json", missing)
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	var doc struct {
		Mailboxes []any
		Skipped   []struct{ Path, Reason string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
	}
	if doc.Mailboxes == nil || len(doc.Skipped) != 1 || doc.Skipped[0].Path != missing {
		t.Errorf("document = %+v", doc)
	}
	if strings.Contains(r.stderr, "{") || strings.Contains(r.stderr, "warning") {
		t.Errorf("JSON or warnings on stderr: %q", r.stderr)
	}
}

const fixtureMbox = "From alice@example.org Mon Jan  6 10:00:00 2025\n" +
	"From: alice@example.org\nSubject: one\nDate: Mon, 06 Jan 2025 10:00:00 +0000\n\nhello\n\n" +
	"From MAILER-DAEMON Tue Feb  4 11:30:00 2025\n" +
	"From: MAILER-DAEMON@example.org\nSubject: bounce\nDate: Tue, 04 Feb 2025 11:30:00 +0000\n\n" +
	">From the past\nbye\n\n"

// TestBinaryScanEndToEnd runs the real scanner; it skips while the scanner
// is a stub.
func TestBinaryScanEndToEnd(t *testing.T) {
	dir := t.TempDir()
	box := filepath.Join(dir, "bob")
	if err := os.WriteFile(box, []byte(fixtureMbox), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not mail\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2025, 2, 5, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(box, old, old); err != nil {
		t.Fatal(err)
	}

	r := mailkeep(t, "scan", "--format", "json", dir)
	if r.code == 1 && strings.Contains(r.stderr, "not implemented") {
		t.Skip("mboxscan.Scan is still a stub")
	}
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
	}
	boxes := doc["mailboxes"].([]any)
	if len(boxes) != 1 {
		t.Fatalf("mailboxes = %v", boxes)
	}
	m := boxes[0].(map[string]any)
	if m["path"] != box || m["format"] != "mbox" || m["messages"] != 2.0 || m["bytes"] != float64(len(fixtureMbox)) || m["level"] != "ok" {
		t.Errorf("mailbox = %v", m)
	}
	for _, k := range []string{"oldest", "newest"} {
		if _, err := time.Parse(time.RFC3339, fmt.Sprint(m[k])); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	if s := doc["skipped"].([]any); len(s) != 1 {
		t.Errorf("skipped = %v", s)
	}

	// Piped table: one TSV row, the skipped file as a warning.
	r = mailkeep(t, "scan", dir)
	if r.code != 0 || strings.Count(r.stdout, "\n") != 1 || strings.Count(r.stdout, "\t") != 11 {
		t.Errorf("table: exit %d, stdout %q", r.code, r.stdout)
	}
	if !strings.Contains(r.stderr, "mailkeep: warning: skipped "+filepath.Join(dir, "notes.txt")) {
		t.Errorf("table: stderr %q", r.stderr)
	}

	r = mailkeep(t, "scan", "--format", "csv", dir)
	rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if r.code != 0 || err != nil || len(rows) != 2 || rows[1][0] != box {
		t.Errorf("csv: exit %d, %v, %q", r.code, err, r.stdout)
	}

	// Warn/crit are information for scan, status for check.
	r = mailkeep(t, "scan", "--limit", fmt.Sprint(len(fixtureMbox)), dir)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "crit\t") {
		t.Errorf("scan over the limit: exit %d, stdout %q", r.code, r.stdout)
	}
	for _, tt := range []struct {
		limit string
		code  int
	}{{"1GiB", 0}, {fmt.Sprint(len(fixtureMbox) * 100 / 85), 1}, {fmt.Sprint(len(fixtureMbox)), 2}} {
		r = mailkeep(t, "check", "--limit", tt.limit, dir)
		if r.code != tt.code || !strings.HasPrefix(r.stdout, "MAILKEEP ") {
			t.Errorf("check --limit %s: exit %d, want %d; stdout %q stderr %q", tt.limit, r.code, tt.code, r.stdout, r.stderr)
		}
	}

	// Read-only: the mailbox is byte for byte and time for time the same.
	got, err := os.ReadFile(box)
	if err != nil || string(got) != fixtureMbox {
		t.Errorf("mailbox changed: %v", err)
	}
	if fi, err := os.Stat(box); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("mtime changed: %v %v", fi.ModTime(), err)
	}
}

// fakeScan returns canned results and records what it was called with.
type fakeScan struct {
	mu    sync.Mutex
	roots []string
	opts  mboxscan.Options
	res   *mboxscan.Result
	err   error
	// block, when set, waits for ctx to be cancelled.
	block bool
	// progress, when set, reports progress for this long first.
	progress time.Duration
}

func (f *fakeScan) scan(ctx context.Context, roots []string, opts mboxscan.Options) (*mboxscan.Result, error) {
	f.mu.Lock()
	f.roots, f.opts = roots, opts
	f.opts.Progress = nil // for comparison
	f.mu.Unlock()
	if f.block {
		<-ctx.Done()
		return nil, fmt.Errorf("scan %s: %w", roots[0], ctx.Err())
	}
	for end := time.Now().Add(f.progress); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if opts.Progress != nil {
			opts.Progress(1<<20, 1)
		}
	}
	return f.res, f.err
}

func runFake(t *testing.T, g *globalOptions, f *fakeScan, args ...string) result {
	t.Helper()
	g.scan = f.scan
	g.now = func() time.Time { return time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC) }
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), g, args, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

func sampleResult(dir string, levels ...mboxscan.Level) *mboxscan.Result {
	res := &mboxscan.Result{Skipped: []mboxscan.Skipped{{Path: filepath.Join(dir, "notes.txt"), Reason: "not a mailbox"}}}
	for i, l := range levels {
		p := filepath.Join(dir, fmt.Sprintf("user%d", i))
		res.Mailboxes = append(res.Mailboxes, mboxscan.Mailbox{
			Path: p, Store: p, Format: mboxscan.FormatMbox, Messages: 10, Bytes: int64(1000 * (i + 1)),
			StoreBytes: int64(1000 * (i + 1)), LimitBytes: 2 << 30, UsedRatio: float64(i+1) / 10, Level: l,
			Problems: []string{"truncated last message"},
		})
	}
	return res
}

func TestScanOptionsReachScanner(t *testing.T) {
	dir := t.TempDir()
	f := &fakeScan{res: sampleResult(dir, mboxscan.LevelOK)}
	r := runFake(t, &globalOptions{roots: []string{dir}}, f, "scan")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	want := mboxscan.Options{Large: 10_000_000, Jobs: runtime.NumCPU(), Limit: 2 << 30, Warn: 80, Crit: 95}
	if !reflect.DeepEqual(f.opts, want) || len(f.roots) != 1 || f.roots[0] != dir {
		t.Errorf("defaults: scanned %v with %+v, want %+v", f.roots, f.opts, want)
	}
	r = runFake(t, &globalOptions{}, f, "scan", "--limit", "1GiB", "--warn", "70", "--crit", "90.5", "--large", "5MB", "--jobs", "3", dir, dir)
	want = mboxscan.Options{Large: 5_000_000, Jobs: 3, Limit: 1 << 30, Warn: 70, Crit: 90.5}
	if r.code != 0 || !reflect.DeepEqual(f.opts, want) || len(f.roots) != 2 {
		t.Errorf("flags: exit %d, scanned %v with %+v, want %+v", r.code, f.roots, f.opts, want)
	}
	if got := (globalOptions{}).defaultRoots(); len(got) != 1 || got[0] != "/var/mail" {
		t.Errorf("default roots %v", got)
	}
}

func TestScanTTYAndPiped(t *testing.T) {
	dir := t.TempDir()
	for _, tty := range []bool{false, true} {
		t.Run(fmt.Sprint("tty=", tty), func(t *testing.T) {
			f := &fakeScan{res: sampleResult(dir, mboxscan.LevelOK, mboxscan.LevelCrit)}
			r := runFake(t, &globalOptions{stdoutTTY: tty}, f, "scan", dir)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
			if tty {
				if !strings.HasPrefix(lines[0], "LEVEL ") || !strings.HasPrefix(lines[1], "CRIT ") ||
					!strings.Contains(r.stdout, "skipped: ") || r.stderr != "" {
					t.Errorf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
				}
			} else {
				if len(lines) != 2 || !strings.HasPrefix(lines[0], "crit\t") {
					t.Errorf("stdout:\n%s", r.stdout)
				}
				wantErr := "mailkeep: warning: skipped " + filepath.Join(dir, "notes.txt") + ": not a mailbox\n"
				if !strings.HasPrefix(r.stderr, wantErr) || strings.Count(r.stderr, "truncated last message") != 2 {
					t.Errorf("stderr:\n%s", r.stderr)
				}
			}
		})
	}
}

func TestScanFailures(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "gone")

	// The scanner fails for part of the work: report what it has, exit 1.
	f := &fakeScan{res: sampleResult(dir, mboxscan.LevelOK), err: errors.New("read /x/y: input/output error")}
	r := runFake(t, &globalOptions{}, f, "scan", "--format", "json", dir, missing)
	if r.code != 1 || !strings.Contains(r.stdout, `"mailboxes"`) ||
		r.stderr != "mailkeep: error: scan root: stat "+missing+": no such file or directory\nmailkeep: error: read /x/y: input/output error\n" {
		t.Errorf("partial: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if len(f.roots) != 1 || f.roots[0] != dir {
		t.Errorf("scanned %v, want only the existing root", f.roots)
	}
	var doc struct{ Skipped []struct{ Path string } }
	json.Unmarshal([]byte(r.stdout), &doc)
	if len(doc.Skipped) != 2 || doc.Skipped[0].Path != missing {
		t.Errorf("skipped %+v, want the missing root first (by path)", doc.Skipped)
	}

	// The scanner fails outright: no output at all.
	f = &fakeScan{err: errors.New("walk: boom")}
	r = runFake(t, &globalOptions{}, f, "scan", "--format", "json", dir)
	if r.code != 1 || r.stdout != "" || r.stderr != "mailkeep: error: walk: boom\n" {
		t.Errorf("failed: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestInterrupted(t *testing.T) {
	dir := t.TempDir()
	for _, cmd := range []string{"scan", "check"} {
		ctx, cancel := context.WithCancel(context.Background())
		f := &fakeScan{block: true}
		g := &globalOptions{scan: f.scan}
		var stdout, stderr bytes.Buffer
		time.AfterFunc(50*time.Millisecond, cancel)
		code := run(ctx, g, []string{cmd, dir}, &stdout, &stderr)
		if code != 130 || stdout.Len() != 0 || stderr.String() != "mailkeep: interrupted\n" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", cmd, code, stdout.String(), stderr.String())
		}
	}
}

func TestProgressOnlyOnTTY(t *testing.T) {
	dir := t.TempDir()
	for _, tty := range []bool{false, true} {
		f := &fakeScan{res: sampleResult(dir, mboxscan.LevelOK), progress: 350 * time.Millisecond}
		r := runFake(t, &globalOptions{stderrTTY: tty}, f, "scan", "--format", "json", dir)
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if !tty {
			if r.stderr != "" {
				t.Errorf("no TTY: stderr %q", r.stderr)
			}
			continue
		}
		if !regexp.MustCompile(`\r\x1b\[Kscanning: \d+ mailboxes done, \d+ MiB read`).MatchString(r.stderr) ||
			!strings.HasSuffix(r.stderr, "\r\x1b[K") {
			t.Errorf("TTY: stderr %q", r.stderr)
		}
		if n := strings.Count(r.stderr, "scanning:"); n > 5 {
			t.Errorf("%d redraws in 350ms, want at most ~10/s", n)
		}
	}
}

func TestCheckStatus(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		res  *mboxscan.Result
		err  error
		code int
		line string
	}{
		{"ok", sampleResult(dir, mboxscan.LevelOK, mboxscan.LevelOK), nil, 0, "MAILKEEP OK - 2 mailboxes below 80%; "},
		{"warn", sampleResult(dir, mboxscan.LevelOK, mboxscan.LevelWarn), nil, 1, "MAILKEEP WARNING - 1 warn of 2 mailboxes; "},
		{"crit", sampleResult(dir, mboxscan.LevelWarn, mboxscan.LevelCrit), nil, 2, "MAILKEEP CRITICAL - 1 crit, 1 warn of 2 mailboxes; "},
		{"none", sampleResult(dir), nil, 3, "MAILKEEP UNKNOWN - no mailboxes found; 1 skipped | "},
		{"failed", nil, errors.New("walk: boom"), 3, "MAILKEEP UNKNOWN - scan failed: walk: boom; no mailboxes found | "},
		{"crit despite failure", sampleResult(dir, mboxscan.LevelCrit), errors.New("read x: eio"), 2, "MAILKEEP CRITICAL - scan failed: read x: eio; 1 crit, 0 warn of 1 mailbox; "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runFake(t, &globalOptions{}, &fakeScan{res: tt.res, err: tt.err}, "check", dir)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d", r.code, tt.code)
			}
			if !strings.HasPrefix(r.stdout, tt.line) || strings.Count(r.stdout, "\n") != 1 {
				t.Errorf("stdout %q, want it to start with %q", r.stdout, tt.line)
			}
			if (tt.err != nil) != strings.HasPrefix(r.stderr, "mailkeep: error: ") {
				t.Errorf("stderr %q", r.stderr)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	bg := context.Background()
	tests := []struct {
		ctx  context.Context
		err  error
		code int
	}{
		{bg, nil, 0},
		{bg, errors.New("x"), 1},
		{bg, fmt.Errorf("wrapped: %w", usageErrorf("bad")), 2},
		{bg, &exitStatus{code: 3}, 3},
		{bg, &exitStatus{code: 1, err: errors.New("x")}, 1},
		{bg, fmt.Errorf("scan: %w", context.Canceled), 130},
		{canceled, errors.New("read: bad file descriptor"), 130},
		{canceled, nil, 0},
	}
	for _, tt := range tests {
		if got := exitCode(tt.ctx, tt.err); got != tt.code {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.code)
		}
	}
}
