package mboxlock

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func openDir(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// A process killed between creating its temporary lock files and
// unlinking them leaves them; they are removed once, and only once, their
// maker is dead.
func TestRemoveLeftoverOfKilledProcess(t *testing.T) {
	dir := t.TempDir()
	mbox := filepath.Join(dir, "inbox")
	h := startHelper(t, "leftovers", mbox)
	var names []string
	for range 2 {
		names = append(names, filepath.Base(h.line()))
	}
	dirfd := openDir(t, dir)
	for _, n := range names {
		if !strings.HasPrefix(n, LeftoverPrefix("inbox")) {
			t.Fatalf("%s does not start with LeftoverPrefix %q", n, LeftoverPrefix("inbox"))
		}
		removed, err := RemoveLeftover(dirfd, n)
		if err != nil || removed {
			t.Fatalf("RemoveLeftover(%s) with its maker alive = %v, %v", n, removed, err)
		}
	}
	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-h.exit
	h.exit <- nil // for Cleanup
	for _, n := range names {
		removed, err := RemoveLeftover(dirfd, n)
		if err != nil || !removed {
			t.Errorf("RemoveLeftover(%s) after its maker was killed = %v, %v", n, removed, err)
		}
		if _, err := os.Lstat(filepath.Join(dir, n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there", n)
		}
	}
}

func TestRemoveLeftoverLeavesOthersAlone(t *testing.T) {
	dir := t.TempDir()
	dirfd := openDir(t, dir)
	dead := deadPID(t)
	mine := os.Getpid()
	old := time.Now().Add(-time.Hour)
	write := func(name string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, old, old)
		return name
	}
	prefix := LeftoverPrefix("inbox")
	name := func(kind, host string, pid int) string {
		return prefix + kind + "." + host + "." + itoa(pid) + ".00000000000000aa"
	}
	keep := []string{
		write(name("lock", "otherhost", dead)), // another host's: its PID says nothing here
		write(name("stale", hostTag(), mine)),  // a live maker
		write(name("other", hostTag(), dead)),  // not a kind this package makes
		write(prefix + "lock." + hostTag()),    // not of the form
		write(name("stale", hostTag(), 0)),     // no PID
		write("inbox"),                         // the mailbox itself
	}
	link := name("lock", hostTag(), dead) + "1"
	if err := os.Symlink("inbox", filepath.Join(dir, link)); err != nil {
		t.Fatal(err)
	}
	keep = append(keep, link)
	gone := []string{
		write(name("lock", hostTag(), dead)),
		write(name("stale", hostTag(), dead)),
		// A live PID does not save an old, unflocked lock temp: the PID
		// may have been reused.
		write(name("lock", hostTag(), mine)),
	}
	for _, n := range keep {
		if removed, err := RemoveLeftover(dirfd, n); err != nil || removed {
			t.Errorf("RemoveLeftover(%s) = %v, %v; want it kept", n, removed, err)
		}
	}
	for _, n := range gone {
		if removed, err := RemoveLeftover(dirfd, n); err != nil || !removed {
			t.Errorf("RemoveLeftover(%s) = %v, %v; want it removed", n, removed, err)
		}
	}
	for _, n := range keep {
		if _, err := os.Lstat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

// The prefix stays computable for names up to NAME_MAX, and every
// temporary name fits.
func TestTempPathFitsNameMax(t *testing.T) {
	long := strings.Repeat("x", 250)
	for _, kind := range []string{"lock", "stale"} {
		p := tempPath("/var/mail/"+long+".lock", kind)
		base := filepath.Base(p)
		if len(base) > 255 {
			t.Errorf("%s name is %d bytes", kind, len(base))
		}
		if !strings.HasPrefix(base, LeftoverPrefix(long)) {
			t.Errorf("%s does not start with LeftoverPrefix", base)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
