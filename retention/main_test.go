package retention

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mailkeep/mailkeep/retention/mboxlock"
)

// The test binary doubles as the helper processes of the crash and
// concurrency tests: with MAILKEEP_RETENTION_HELPER set it does that job
// and exits instead of running the tests.
func TestMain(m *testing.M) {
	switch os.Getenv("MAILKEEP_RETENTION_HELPER") {
	case "":
		os.Exit(runTests(m))
	case "prune":
		os.Exit(helperPrune())
	case "append":
		os.Exit(helperAppend())
	default:
		fmt.Fprintln(os.Stderr, "unknown helper")
		os.Exit(3)
	}
}

// testStateDir is the state directory of testOpts: auto rewrites mailboxes
// that hold X-IMAPbase in place, and their journals must not go to the
// real default (/var/lib/mailkeep when the tests run as root).
var testStateDir string

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mailkeep-retention-state-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	testStateDir = dir
	return m.Run()
}

// helperPrune prunes MAILKEEP_PATH with the cutoff MAILKEEP_BEFORE (unix
// seconds); exit 0 on success, 1 on error.
func helperPrune() int {
	before, _ := strconv.ParseInt(os.Getenv("MAILKEEP_BEFORE"), 10, 64)
	opts := Options{Policy: Policy{Before: time.Unix(before, 0)},
		Lock: mboxlock.Options{Timeout: 20 * time.Second,
			// A dotlock left by a killed helper names a dead PID, but
			// mboxlock waits 5 s before trusting that: skip the wait.
			Now: func() time.Time { return time.Now().Add(6 * time.Second) }}}
	// Issue 6: archive, rewrite mode and state directory.
	opts.Archive = ArchiveOptions{Dir: os.Getenv("MAILKEEP_ARCHIVE"), Compress: Compression(os.Getenv("MAILKEEP_COMPRESS"))}
	opts.Rewrite = RewriteMode(os.Getenv("MAILKEEP_REWRITE"))
	opts.StateDir = os.Getenv("MAILKEEP_STATE")
	var (
		res *Result
		err error
	)
	if md := os.Getenv("MAILKEEP_MAILDIR"); md != "" {
		res, err = PruneMaildir(context.Background(), md, "", opts)
	} else {
		res, err = PruneMbox(context.Background(), os.Getenv("MAILKEEP_PATH"), opts)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("removed %d archived %d mode %s\n", res.MessagesRemoved, res.MessagesArchived, res.Mode)
	for _, n := range res.Notes {
		fmt.Println("note:", n)
	}
	return 0
}

// helperAppend appends MAILKEEP_COUNT messages to MAILKEEP_PATH, each with
// a Message-ID <MAILKEEP_TAG-N@test>, locking as MAILKEEP_LOCK says:
//
//	dotlock+fcntl  <path>.lock by O_EXCL, then a classic fcntl lock (F_SETLKW)
//	fcntl          a classic fcntl lock only, not checking the inode after
//	flock          flock only
//
// like a naive delivery agent: open, lock, append, unlock, close. It writes
// a line "started" to stdout after the first message.
func helperAppend() int {
	path := os.Getenv("MAILKEEP_PATH")
	tag := os.Getenv("MAILKEEP_TAG")
	kind := os.Getenv("MAILKEEP_LOCK")
	n, _ := strconv.Atoi(os.Getenv("MAILKEEP_COUNT"))
	for i := 0; i < n; i++ {
		msg := testMessage(time.Now(), fmt.Sprintf("%s-%d@test", tag, i), "", "appended\n", "\n")
		if err := appendLocked(path, kind, []byte(msg)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if i == 0 {
			fmt.Println("started")
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 0
}

func appendLocked(path, kind string, msg []byte) error {
	if strings.Contains(kind, "dotlock") {
		lock := path + ".lock"
		for {
			fd, err := unix.Open(lock, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o644)
			if err == nil {
				fmt.Fprintf(os.NewFile(uintptr(fd), lock), "%d\n", os.Getpid())
				unix.Close(fd)
				break
			}
			if err != unix.EEXIST {
				return err
			}
			time.Sleep(3 * time.Millisecond)
		}
		defer os.Remove(lock)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fd := f.Fd()
	if strings.Contains(kind, "fcntl") {
		lk := unix.Flock_t{Type: unix.F_WRLCK}
		if err := unix.FcntlFlock(fd, unix.F_SETLKW, &lk); err != nil {
			return err
		}
	}
	if kind == "flock" {
		if err := unix.Flock(int(fd), unix.LOCK_EX); err != nil {
			return err
		}
	}
	_, err = f.Write(msg)
	return err
}

// testMessage is one mbox message: From_ line, header, body, and the
// blank separator line.
func testMessage(date time.Time, id, extra, body, eol string) string {
	var b strings.Builder
	b.WriteString("From sender@example.org " + date.UTC().Format("Mon Jan _2 15:04:05 2006") + eol)
	b.WriteString("From: Sender <sender@example.org>" + eol)
	b.WriteString("Message-ID: <" + id + ">" + eol)
	b.WriteString("Subject: test " + id + eol)
	b.WriteString("Date: " + date.UTC().Format(time.RFC1123Z) + eol)
	b.WriteString(strings.ReplaceAll(extra, "\n", eol))
	b.WriteString(eol)
	b.WriteString(strings.ReplaceAll(body, "\n", eol))
	b.WriteString(eol)
	return b.String()
}

// helperCmd returns a command running this test binary as a helper.
func helperCmd(t *testing.T, mode string, env ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "MAILKEEP_RETENTION_HELPER="+mode)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// tempFiles lists the mailkeep temporary files in dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.Contains(e.Name(), tmpInfix) {
			out = append(out, e.Name())
		}
	}
	return out
}

func dirNames(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, e := range ents {
		b.WriteString(e.Name() + "\n")
	}
	return b.String()
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
