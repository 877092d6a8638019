package retention

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mailkeep/mailkeep/retention/mboxlock"
)

// rescueFiles returns the rescue files beside the mailbox inbox in dir.
func rescueFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, ".inbox.mailkeep-rescue.*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// pruneWithOldFile prunes a mixedCase mailbox by rename with act called
// on the replaced file (opened before the prune) once the prune has
// unlocked, before the carry-over looks at it.
func pruneWithOldFile(t *testing.T, act func(old *os.File)) (dir string, c *mboxCase, old []byte, res *Result, err error) {
	t.Helper()
	c = mixedCase("\n")
	dir = t.TempDir()
	path := filepath.Join(dir, "inbox")
	writeFile(t, path, c.all.Bytes())
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	testHook = func(p string) {
		if p == "after-unlock" {
			act(f)
		}
	}
	defer func() { testHook = nil }()
	opts := testOpts()
	opts.Rewrite = RewriteRename
	opts.Lock.Timeout = 500 * time.Millisecond
	res, err = PruneMbox(context.Background(), path, opts)
	old, rerr := io.ReadAll(io.NewSectionReader(f, 0, 1<<40))
	if rerr != nil {
		t.Fatal(rerr)
	}
	return dir, c, old, res, err
}

func appendTo(t *testing.T, f *os.File, b []byte) {
	t.Helper()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, st.Size()); err != nil {
		t.Fatal(err)
	}
}

// TestCarryOver: what a writer appends to the replaced file after the
// rename follows the kept messages in the mailbox.
func TestCarryOver(t *testing.T) {
	late := testMessage(youngDate, "late@test", "", "appended to the old file\n", "\n")
	dir, c, _, res, err := pruneWithOldFile(t, func(old *os.File) { appendTo(t, old, []byte(late)) })
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "inbox"))
	if want := c.kept.String() + late; string(got) != want {
		t.Errorf("mailbox: %d bytes, want %d: the kept messages and the late one", len(got), len(want))
	}
	if !strings.Contains(strings.Join(res.Notes, "\n"), fmt.Sprintf("carried %d bytes", len(late))) {
		t.Errorf("notes %q", res.Notes)
	}
	if r := rescueFiles(t, dir); len(r) != 0 {
		t.Errorf("rescue files: %v", r)
	}
}

// TestCarryRefusesChangedPrefix: a writer that rewrote the replaced file
// before the point it was read to (as Dovecot does when it updates a
// header and moves the mail behind it) and then appended gets nothing
// appended to the mailbox, which would double mail; what the file holds
// from the first changed slot on goes to a rescue file, and the error says
// where.
func TestCarryRefusesChangedPrefix(t *testing.T) {
	late := testMessage(youngDate, "late@test", "", "appended to the old file\n", "\n")
	for _, tc := range []struct {
		name   string
		at     int64 // offset of the changed byte
		rescue int64 // where the rescue starts: the changed slot's
	}{
		{"first-slot", 10, 0},
		{"third-slot", 2*prefixPiece + 12345, 2 * prefixPiece},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, c, old, res, err := pruneWithOldFile(t, func(old *os.File) {
				if _, err := old.WriteAt([]byte{'#'}, tc.at); err != nil {
					t.Fatal(err)
				}
				appendTo(t, old, []byte(late))
			})
			if !errors.Is(err, ErrReplacedChanged) {
				t.Fatalf("err = %v, want ErrReplacedChanged", err)
			}
			got, _ := os.ReadFile(filepath.Join(dir, "inbox"))
			if !bytes.Equal(got, c.kept.Bytes()) {
				t.Errorf("mailbox: %d bytes, want the %d kept ones and nothing appended", len(got), c.kept.Len())
			}
			if res.MessagesRemoved != c.removed {
				t.Errorf("removed %d, want %d: the mailbox was replaced", res.MessagesRemoved, c.removed)
			}
			r := rescueFiles(t, dir)
			if len(r) != 1 {
				t.Fatalf("rescue files: %v", r)
			}
			saved, _ := os.ReadFile(r[0])
			if !bytes.Equal(saved, old[tc.rescue:]) || !bytes.HasSuffix(saved, []byte(late)) {
				t.Errorf("rescue file: %d bytes, want the replaced file's %d from byte %d on", len(saved), int64(len(old))-tc.rescue, tc.rescue)
			}
			if !strings.Contains(err.Error(), r[0]) || !strings.Contains(err.Error(), fmt.Sprintf("from byte %d on", tc.rescue)) {
				t.Errorf("error does not say where the bytes went: %v", err)
			}
		})
	}
}

// TestCarryWriterStuck: a writer that holds the replaced file's fcntl lock
// past the lock timeout (a dovecot-lda looping on the old file) does not
// hold up the prune for longer; what it wrote is saved, and the error
// says who held it.
func TestCarryWriterStuck(t *testing.T) {
	late := testMessage(youngDate, "late@test", "", "appended to the old file\n", "\n")
	start := time.Now()
	dir, c, old, _, err := pruneWithOldFile(t, func(old *os.File) {
		appendTo(t, old, []byte(late))
		// A classic (process) lock conflicts with the prune's OFD lock
		// even in this process; it goes when the test closes the file.
		lk := unix.Flock_t{Type: unix.F_WRLCK}
		if err := unix.FcntlFlock(old.Fd(), unix.F_SETLK, &lk); err != nil {
			t.Fatal(err)
		}
	})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the prune took %v with a 500ms lock timeout", took)
	}
	if !errors.Is(err, ErrReplacedBusy) {
		t.Fatalf("err = %v, want ErrReplacedBusy", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("error does not name the holder: %v", err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "inbox"))
	if !bytes.Equal(got, c.kept.Bytes()) {
		t.Errorf("mailbox: %d bytes, want the %d kept ones", len(got), c.kept.Len())
	}
	r := rescueFiles(t, dir)
	if len(r) != 1 {
		t.Fatalf("rescue files: %v", r)
	}
	saved, _ := os.ReadFile(r[0])
	if !bytes.Equal(saved, []byte(late)) || !bytes.HasSuffix(old, saved) {
		t.Errorf("rescue file holds %q, want the late message", saved)
	}
}

// TestCarryAppendFailsHalfWay: when the append of what a writer added to
// the replaced file fails after part of it was written (a full disk, a
// quota), the mailbox is cut back to the kept messages: the bytes are in
// the rescue file, and a half message in the mailbox would both double
// them and glue the next delivery onto it.
func TestCarryAppendFailsHalfWay(t *testing.T) {
	late := testMessage(youngDate, "late@test", "", strings.Repeat("appended to the old file\n", 200), "\n")
	var saved unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &saved); err != nil {
		t.Fatal(err)
	}
	restore := func() {
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &saved); err != nil {
			t.Fatal(err)
		}
	}
	defer restore()
	var limit int64
	dir, c, _, _, err := pruneWithOldFile(t, func(old *os.File) {
		appendTo(t, old, []byte(late))
		// The file size limit stands in for a full disk: the new mailbox
		// may grow by half the late message, no more (EFBIG).
		st, err := os.Stat(filepath.Join(filepath.Dir(old.Name()), "inbox"))
		if err != nil {
			t.Fatal(err)
		}
		limit = st.Size() + int64(len(late)/2)
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: uint64(limit), Max: saved.Max}); err != nil {
			t.Fatal(err)
		}
	})
	restore()
	if limit == 0 {
		t.Fatal("the writer never ran")
	}
	if err == nil {
		t.Fatal("the append past the file size limit did not fail")
	}
	got, _ := os.ReadFile(filepath.Join(dir, "inbox"))
	if !bytes.Equal(got, c.kept.Bytes()) {
		t.Errorf("mailbox: %d bytes, want the %d kept ones and no part of the late message: %v", len(got), c.kept.Len(), err)
	}
	r := rescueFiles(t, dir)
	if len(r) != 1 {
		t.Fatalf("rescue files: %v (%v)", r, err)
	}
	if b, _ := os.ReadFile(r[0]); string(b) != late {
		t.Errorf("rescue file: %d bytes, want the late message's %d", len(b), len(late))
	}
}

// TestRescueLongName: a mailbox whose name is near NAME_MAX still gets its
// rescue file; an ENAMETOOLONG there would leave the bytes only in the
// replaced file, which is gone when the run exits.
func TestRescueLongName(t *testing.T) {
	dir := t.TempDir()
	name := strings.Repeat("m", 250)
	data := []byte(testMessage(youngDate, "late@test", "", "to be rescued\n", "\n"))
	writeFile(t, filepath.Join(dir, name), data)
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dirfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dirfd)
	p := &mboxPruner{path: filepath.Join(dir, name), dir: dir + "/", name: name, dirfd: dirfd, f: f}
	if err := unix.Fstat(int(f.Fd()), &p.st); err != nil {
		t.Fatal(err)
	}
	rescue, err := p.rescue(0, int64(len(data)))
	if err != nil {
		t.Fatalf("rescue: %v", err)
	}
	if b, _ := os.ReadFile(rescue); !bytes.Equal(b, data) {
		t.Errorf("rescue file %s: %d bytes, want %d", rescue, len(b), len(data))
	}
	if base := filepath.Base(rescue); !strings.HasPrefix(base, ".mmm") || !strings.Contains(base, ".mailkeep-rescue.") {
		t.Errorf("rescue file name %q", base)
	}
}

// TestCarryAfterLostDotlock: when the unlock after the rename fails
// (another process removed our dotlock), the carry-over still runs: a
// writer waiting on the replaced file's fcntl lock appends there once it
// is let go, and without the carry-over that mail would be in a deleted
// file only.
func TestCarryAfterLostDotlock(t *testing.T) {
	late := testMessage(youngDate, "late@test", "", "appended to the old file\n", "\n")
	c := mixedCase("\n")
	dir := t.TempDir()
	path := filepath.Join(dir, "inbox")
	writeFile(t, path, c.all.Bytes())
	old, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	testHook = func(p string) {
		if p == "after-dirsync" {
			appendTo(t, old, []byte(late))
			if err := os.Remove(path + ".lock"); err != nil {
				t.Error(err)
			}
		}
	}
	defer func() { testHook = nil }()
	opts := testOpts()
	opts.Rewrite = RewriteRename
	opts.Lock.Timeout = 500 * time.Millisecond
	_, err = PruneMbox(context.Background(), path, opts)
	if !errors.Is(err, mboxlock.ErrLockLost) {
		t.Errorf("err = %v, want the lost dotlock reported", err)
	}
	got, _ := os.ReadFile(path)
	if want := c.kept.String() + late; string(got) != want {
		t.Errorf("mailbox: %d bytes, want %d: the kept messages and the late one", len(got), len(want))
	}
}

// TestRescueFailsLeavesNoPartialFile: when the rescue file cannot be
// written whole, it is removed again: a file named like a rescue holding
// part of the mail would pass for the saved copy, while the error says
// the bytes are only in the replaced file.
func TestRescueFailsLeavesNoPartialFile(t *testing.T) {
	late := testMessage(youngDate, "late@test", "", strings.Repeat("appended to the old file\n", 200), "\n")
	var saved unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &saved); err != nil {
		t.Fatal(err)
	}
	restore := func() {
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &saved); err != nil {
			t.Fatal(err)
		}
	}
	defer restore()
	dir, c, _, _, err := pruneWithOldFile(t, func(old *os.File) {
		appendTo(t, old, []byte(late))
		// Neither the mailbox nor a rescue file may grow past half the
		// late message.
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: uint64(len(late) / 2), Max: saved.Max}); err != nil {
			t.Fatal(err)
		}
	})
	restore()
	if err == nil || !strings.Contains(err.Error(), "open by this process only") {
		t.Fatalf("err = %v, want the failed rescue reported", err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "inbox"))
	if !bytes.Equal(got, c.kept.Bytes()) {
		t.Errorf("mailbox: %d bytes, want the %d kept ones", len(got), c.kept.Len())
	}
	if r := rescueFiles(t, dir); len(r) != 0 {
		t.Errorf("partial rescue files left: %v", r)
	}
}
