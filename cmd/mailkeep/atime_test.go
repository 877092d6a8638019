package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// asUser runs the mailkeep binary with the uid and gid given, as a
// monitoring user (nagios, in group mail) runs check.
func asUser(t *testing.T, uid, gid uint32, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	return runCmd(t, cmd)
}

func atimeOf(t *testing.T, path string) unix.Timespec {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Atim
}

// A reader that is neither the owner nor root can neither open with
// O_NOATIME nor put the access time back: mailkeep then leaves a mailbox
// with new mail unread, measures it by its size, and says so. A mailbox
// without new mail is read as usual.
func TestNonOwnerKeepsNewMailUnread(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run mailkeep as another user on another user's mailbox")
	}
	const owner, reader, mailGID = 40001, 40002, 40000
	// The binary and the spool must be reachable by the reader.
	for _, d := range []string{filepath.Dir(binary)} {
		os.Chmod(d, 0o755)
	}
	spool := t.TempDir()
	for d := spool; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	for _, p := range []string{binary, spool} {
		if d := unreachable(p); d != "" {
			t.Skipf("%s cannot be reached by another user (%s is not searchable by others): set TMPDIR to a directory they can reach", p, d)
		}
	}
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	data := []byte(pruneMessage(old, "a@x") + pruneMessage(old, "b@x"))
	write := func(name string, atime, mtime time.Time) string {
		p := filepath.Join(spool, name)
		if err := os.WriteFile(p, data, 0o660); err != nil {
			t.Fatal(err)
		}
		os.Chown(p, owner, mailGID)
		os.Chtimes(p, atime, mtime)
		return p
	}
	// Does this file system record access times at all?
	probe := write("probe", old, old.Add(time.Hour))
	os.ReadFile(probe)
	if atimeOf(t, probe).Sec == old.Unix() {
		t.Skip("the file system does not update access times (noatime): nothing to protect")
	}
	os.Remove(probe)

	fresh := write("fresh", old, old.Add(time.Hour)) // new mail: mtime after atime
	seen := write("seen", old.Add(2*time.Hour), old.Add(time.Hour))
	before := atimeOf(t, fresh)

	r := asUser(t, reader, mailGID, "scan", "--format", "json", spool)
	if r.code != 0 {
		t.Fatalf("scan as uid %d: exit %d\n%s", reader, r.code, r.stderr)
	}
	if got := atimeOf(t, fresh); got != before {
		t.Errorf("the scan made the new mail in %s look read: atime %v, was %v", fresh, got, before)
	}
	var doc struct {
		Mailboxes []struct {
			Path     string   `json:"path"`
			Messages int      `json:"messages"`
			Bytes    int64    `json:"bytes"`
			Problems []string `json:"problems"`
		} `json:"mailboxes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, r.stdout)
	}
	found := 0
	for _, mb := range doc.Mailboxes {
		switch mb.Path {
		case fresh:
			found++
			if mb.Bytes != int64(len(data)) || mb.Messages != 0 || len(mb.Problems) != 1 || !strings.Contains(mb.Problems[0], "new mail") {
				t.Errorf("%s: %+v; want its size, no messages counted, and why", mb.Path, mb)
			}
		case seen:
			found++
			if mb.Messages != 2 || len(mb.Problems) != 0 {
				t.Errorf("%s (no new mail) was not read as usual: %+v", mb.Path, mb)
			}
		}
	}
	if found != 2 {
		t.Fatalf("scan found %d of the 2 mailboxes:\n%s", found, r.stdout)
	}

	// check, the monitoring plugin, and a dry-run prune leave it too.
	if r := asUser(t, reader, mailGID, "check", spool); r.code != 0 || !strings.HasPrefix(r.stdout, "MAILKEEP OK") {
		t.Errorf("check: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	r = asUser(t, reader, mailGID, "prune", "--dry-run", "--older-than", "1y", "--format", "json", fresh)
	if r.code != 1 || !strings.Contains(r.stdout, "new mail") {
		t.Errorf("prune --dry-run: exit %d (want 1: this mailbox is refused), %q %q", r.code, r.stdout, r.stderr)
	}
	if got := atimeOf(t, fresh); got != before {
		t.Errorf("check or prune made the new mail look read: atime %v, was %v", got, before)
	}
	// Root reads it in full, and leaves no trace either.
	if r := mailkeep(t, "scan", "--format", "json", fresh); r.code != 0 || !strings.Contains(r.stdout, `"messages": 2`) {
		t.Errorf("scan as root: exit %d\n%s", r.code, r.stdout)
	}
	if got := atimeOf(t, fresh); got != before {
		t.Errorf("root's scan changed the atime: %v, was %v", got, before)
	}
}

// unreachable returns the first directory above path that others may not
// search, or "".
func unreachable(path string) string {
	for d := filepath.Dir(path); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return d
		}
		if d == "/" {
			return ""
		}
	}
}
