package retention

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mailkeep/mailkeep/mboxscan"
	"github.com/mailkeep/mailkeep/retention/mboxlock"
)

var (
	testNow    = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	testCutoff = testNow.AddDate(0, 0, -30)
	oldDate    = testNow.AddDate(-1, 0, 0)
	youngDate  = testNow.AddDate(0, 0, -2)
)

func testOpts() Options {
	return Options{Policy: Policy{OlderThan: Age{30, Days}}, Now: testNow,
		Lock:     mboxlock.Options{Timeout: 5 * time.Second},
		StateDir: testStateDir}
}

// mboxCase builds an mbox from messages marked old (to remove) or young
// and returns it with the expected result: the kept messages' bytes.
type mboxCase struct {
	all, kept bytes.Buffer
	gone      bytes.Buffer // the removed messages, in order (what an archive gets)
	removed   int
}

func (c *mboxCase) add(old bool, id, extra, body, eol string) {
	d := youngDate
	if old {
		d = oldDate
	}
	m := testMessage(d, id, extra, body, eol)
	c.all.WriteString(m)
	if old {
		c.removed++
		c.gone.WriteString(m)
	} else {
		c.kept.WriteString(m)
	}
}

func mixedCase(eol string) *mboxCase {
	c := &mboxCase{}
	for i := 0; i < 40; i++ {
		old := i%3 != 1
		body := fmt.Sprintf("line one of %d\n>From an escaped line\n\nlast line\n", i)
		if i%7 == 0 {
			body = strings.Repeat("long body line with some text in it\n", 20000) // ~700 KB: copy_file_range
		}
		c.add(old, fmt.Sprintf("m%d@test", i), "Status: RO\n", body, eol)
	}
	return c
}

func TestPruneMboxByteExact(t *testing.T) {
	for _, eol := range []string{"\n", "\r\n"} {
		t.Run(fmt.Sprintf("eol=%q", eol), func(t *testing.T) {
			c := mixedCase(eol)
			path := filepath.Join(t.TempDir(), "inbox")
			writeFile(t, path, c.all.Bytes())
			res, err := PruneMbox(context.Background(), path, testOpts())
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			if !bytes.Equal(got, c.kept.Bytes()) {
				t.Fatalf("result differs from the kept messages (%d bytes, want %d)", len(got), c.kept.Len())
			}
			if res.MessagesBefore != 40 || res.MessagesRemoved != c.removed ||
				res.BytesBefore != int64(c.all.Len()) || res.BytesRemoved != int64(c.all.Len()-c.kept.Len()) {
				t.Errorf("counts: %+v", res)
			}
			if tf := tempFiles(t, filepath.Dir(path)); len(tf) != 0 {
				t.Errorf("temporary files left: %v", tf)
			}
			if _, err := os.Stat(path + ".lock"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("dotlock left behind: %v", err)
			}
		})
	}
}

// TestRewriteHandSpans drives the rewrite engine with a plan built by hand:
// the output is the concatenation of the spans and literals.
func TestRewriteHandSpans(t *testing.T) {
	dir := t.TempDir()
	src := make([]byte, 3<<20)
	for i := range src {
		src[i] = byte(i*7 + i>>11)
	}
	path := filepath.Join(dir, "mbox")
	writeFile(t, path, src)
	spans := [][2]int64{{0, 10}, {10, 5}, {100, 1 << 20}, {(1 << 20) + 100, 3}, {2 << 20, 1<<20 - 1}}
	pl := &plan{}
	var want []byte
	for i, s := range spans {
		pl.keep(s[0], s[1])
		want = append(want, src[s[0]:s[0]+s[1]]...)
		if i == 2 {
			pl.literal([]byte("X-IMAPbase: 1 2\n"))
			want = append(want, "X-IMAPbase: 1 2\n"...)
		}
	}
	if len(pl.segs) != 5 { // {0,10}+{10,5} and {100,..}+{..+100,3} merge
		t.Errorf("plan has %d segments, want 5 (adjacent spans merged)", len(pl.segs))
	}
	p := &mboxPruner{ctx: context.Background(), path: path, dir: dir + "/", name: "mbox"}
	var err error
	if p.dirfd, err = unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p.dirfd)
	if err := p.open(); err != nil {
		t.Fatal(err)
	}
	defer p.f.Close()
	name, err := p.writeTemp(pl)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, name))
	if !bytes.Equal(got, want) {
		t.Fatalf("temp file differs: %d bytes, want %d", len(got), len(want))
	}
	if !strings.HasPrefix(name, ".mbox"+tmpInfix) {
		t.Errorf("temp name %q", name)
	}
}

func TestPruneMboxNothingToRemove(t *testing.T) {
	c := &mboxCase{}
	for i := 0; i < 5; i++ {
		c.add(false, fmt.Sprintf("y%d@test", i), "", "body\n", "\n")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "inbox")
	writeFile(t, path, c.all.Bytes())
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	os.Chtimes(path, old.Add(-time.Minute), old) // new mail: atime < mtime
	var before unix.Stat_t
	unix.Stat(path, &before)
	names := dirNames(t, dir)
	res, err := PruneMbox(context.Background(), path, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	if res.MessagesRemoved != 0 || res.MessagesBefore != 5 {
		t.Errorf("counts: %+v", res)
	}
	var after unix.Stat_t
	unix.Stat(path, &after)
	if after.Ino != before.Ino || after.Mtim != before.Mtim || after.Atim != before.Atim || after.Ctim != before.Ctim {
		t.Errorf("mailbox touched: before %+v after %+v", before, after)
	}
	if got := dirNames(t, dir); got != names {
		t.Errorf("directory changed: %q -> %q", names, got)
	}
}

func TestPruneMboxDryRunEqualsRun(t *testing.T) {
	c := mixedCase("\n")
	dir := t.TempDir()
	path := filepath.Join(dir, "inbox")
	writeFile(t, path, c.all.Bytes())
	var before unix.Stat_t
	unix.Stat(path, &before)
	names := dirNames(t, dir)

	opts := testOpts()
	opts.DryRun, opts.List = true, true
	// A lock held by someone else does not matter to a dry run: it takes none.
	other, _ := os.OpenFile(path, os.O_RDWR, 0)
	defer other.Close()
	held, err := mboxlock.Lock(context.Background(), path, other, mboxlock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dry, err := PruneMbox(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	held.Unlock()
	var after unix.Stat_t
	unix.Stat(path, &after)
	if got, _ := os.ReadFile(path); !bytes.Equal(got, c.all.Bytes()) {
		t.Fatal("dry run changed the mailbox")
	}
	if after.Mtim != before.Mtim || after.Atim != before.Atim || after.Ino != before.Ino {
		t.Error("dry run changed the mailbox's times")
	}
	if got := dirNames(t, dir); got != names {
		t.Errorf("dry run changed the directory: %q -> %q", names, got)
	}

	opts.DryRun = false
	real, err := PruneMbox(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if dry.MessagesBefore != real.MessagesBefore || dry.MessagesRemoved != real.MessagesRemoved ||
		dry.BytesBefore != real.BytesBefore || dry.BytesRemoved != real.BytesRemoved || len(dry.Removed) != len(real.Removed) {
		t.Errorf("dry run %+v differs from the real run %+v", dry, real)
	}
	if len(real.Removed) != c.removed || real.Removed[0].MessageID != "<m0@test>" ||
		real.Removed[0].Subject != "test m0@test" || !real.Removed[0].Date.Equal(oldDate) ||
		real.Removed[0].From != "Sender <sender@example.org>" {
		t.Errorf("removed list: %+v", real.Removed[:1])
	}
}

func TestPruneMboxLeadingGarbageAndPseudo(t *testing.T) {
	pseudo := testMessage(oldDate, "pseudo@test", "X-IMAP: 1234567890 0000000042\n", "This text is part of the internal format of your mail folder.\n", "\n")
	pseudo = strings.Replace(pseudo, "Subject: test pseudo@test", "Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA", 1)
	garbage := "this is not a message\n\n"
	c := &mboxCase{}
	c.all.WriteString(garbage + pseudo)
	c.kept.WriteString(garbage + pseudo)
	c.add(true, "a@test", "X-UID: 1\n", "old\n", "\n")
	c.add(false, "b@test", "X-UID: 2\n", "young\n", "\n")
	path := filepath.Join(t.TempDir(), "inbox")
	writeFile(t, path, c.all.Bytes())
	res, err := PruneMbox(context.Background(), path, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, c.kept.Bytes()) {
		t.Fatalf("got\n%s\nwant\n%s", got, c.kept.Bytes())
	}
	if res.MessagesBefore != 2 || res.MessagesRemoved != 1 {
		t.Errorf("counts (pseudo not counted): %+v", res)
	}
}

func TestPruneMboxMovesIMAPBase(t *testing.T) {
	for _, eol := range []string{"\n", "\r\n"} {
		t.Run(fmt.Sprintf("eol=%q", eol), func(t *testing.T) {
			c := &mboxCase{}
			c.add(true, "a@test", "X-IMAPbase: 1700000000 0000000010\nX-UID: 1\n", "old\n", eol)
			c.add(true, "b@test", "X-UID: 2\n", "old\n", eol)
			c.add(false, "c@test", "X-UID: 3\n", "young\n", eol)
			c.add(false, "d@test", "X-UID: 4\n", "young\n", eol)
			path := filepath.Join(t.TempDir(), "inbox")
			writeFile(t, path, c.all.Bytes())
			if _, err := PruneMbox(context.Background(), path, testOpts()); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			kept := c.kept.String()
			nl := strings.Index(kept, eol) + len(eol)
			want := kept[:nl] + "X-IMAPbase: 1700000000 0000000010" + eol + kept[nl:]
			if string(got) != want {
				t.Fatalf("got\n%q\nwant\n%q", got, want)
			}
		})
	}
}

func TestPruneMboxPreservesOwnerModeXattrs(t *testing.T) {
	c := mixedCase("\n")
	path := filepath.Join(t.TempDir(), "inbox")
	writeFile(t, path, c.all.Bytes())
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 {
		uid, gid = 65534, 65534
		if err := os.Chown(path, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	xattr := true
	if err := unix.Setxattr(path, "user.test", []byte("kept"), 0); err != nil {
		t.Logf("no user xattrs here (%v): not checked", err)
		xattr = false
	}
	opts := testOpts()
	opts.CheckOwner, opts.ExpectUID = true, uid
	if _, err := PruneMbox(context.Background(), path, opts); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o640 || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("mode %o owner %d:%d, want 640 %d:%d", st.Mode&0o7777, st.Uid, st.Gid, uid, gid)
	}
	if xattr {
		buf := make([]byte, 16)
		n, err := unix.Getxattr(path, "user.test", buf)
		if err != nil || string(buf[:n]) != "kept" {
			t.Errorf("user.test xattr: %q, %v", buf[:n], err)
		}
	}
}

func TestPruneMboxTimes(t *testing.T) {
	for _, newMail := range []bool{true, false} {
		t.Run(fmt.Sprintf("newmail=%v", newMail), func(t *testing.T) {
			c := mixedCase("\n")
			path := filepath.Join(t.TempDir(), "inbox")
			writeFile(t, path, c.all.Bytes())
			mtime := time.Now().Add(-time.Hour)
			atime := mtime.Add(time.Minute) // read after the last delivery
			if newMail {
				atime = mtime.Add(-time.Minute)
			}
			os.Chtimes(path, atime, mtime)
			start := time.Now()
			if _, err := PruneMbox(context.Background(), path, testOpts()); err != nil {
				t.Fatal(err)
			}
			var st unix.Stat_t
			unix.Stat(path, &st)
			m := time.Unix(st.Mtim.Unix())
			a := time.Unix(st.Atim.Unix())
			if m.Before(start.Add(-time.Second)) || m.After(time.Now().Add(time.Second)) {
				t.Errorf("mtime %v is not the time of the rewrite (%v)", m, start)
			}
			if newMail && !m.After(a) {
				t.Errorf("new-mail signal lost: mtime %v, atime %v", m, a)
			}
			if !newMail && a.Before(m) {
				t.Errorf("new-mail signal made up: mtime %v, atime %v", m, a)
			}
		})
	}
}

func TestPruneMboxRefusesUnsafe(t *testing.T) {
	c := mixedCase("\n")
	setup := func(t *testing.T) (dir, path string) {
		dir = t.TempDir()
		path = filepath.Join(dir, "inbox")
		writeFile(t, path, c.all.Bytes())
		return
	}
	check := func(t *testing.T, path, target string, err error) {
		t.Helper()
		if !errors.Is(err, ErrUnsafeMailbox) {
			t.Fatalf("err = %v, want ErrUnsafeMailbox", err)
		}
		if got, _ := os.ReadFile(target); !bytes.Equal(got, c.all.Bytes()) {
			t.Error("the target changed")
		}
		if tf := tempFiles(t, filepath.Dir(path)); len(tf) != 0 {
			t.Errorf("temporary files left: %v", tf)
		}
	}
	t.Run("symlink", func(t *testing.T) {
		dir, target := setup(t)
		link := filepath.Join(dir, "link")
		os.Symlink(target, link)
		_, err := PruneMbox(context.Background(), link, testOpts())
		check(t, link, target, err)
		if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
			t.Error("symlink replaced")
		}
	})
	t.Run("hardlink", func(t *testing.T) {
		dir, path := setup(t)
		os.Link(path, filepath.Join(dir, "other"))
		_, err := PruneMbox(context.Background(), path, testOpts())
		check(t, path, path, err)
	})
	t.Run("fifo", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "inbox")
		if err := unix.Mkfifo(path, 0o600); err != nil {
			t.Skip(err)
		}
		_, err := PruneMbox(context.Background(), path, testOpts())
		if !errors.Is(err, ErrUnsafeMailbox) {
			t.Fatalf("err = %v, want ErrUnsafeMailbox", err)
		}
	})
	t.Run("owner", func(t *testing.T) {
		_, path := setup(t)
		opts := testOpts()
		opts.CheckOwner, opts.ExpectUID = true, os.Getuid()+1
		_, err := PruneMbox(context.Background(), path, opts)
		check(t, path, path, err)
	})
	for _, point := range []string{"locked", "after-fsync"} {
		t.Run("swap-at-"+point, func(t *testing.T) {
			dir, path := setup(t)
			other := filepath.Join(dir, "other")
			writeFile(t, other, []byte("someone else's file\n"))
			testHook = func(p string) {
				if p == point {
					if err := os.Rename(other, path); err != nil {
						t.Error(err)
					}
				}
			}
			defer func() { testHook = nil }()
			_, err := PruneMbox(context.Background(), path, testOpts())
			if !errors.Is(err, ErrUnsafeMailbox) {
				t.Fatalf("err = %v, want ErrUnsafeMailbox", err)
			}
			if got, _ := os.ReadFile(path); string(got) != "someone else's file\n" {
				t.Errorf("the swapped-in file was replaced: %q", got)
			}
			if tf := tempFiles(t, dir); len(tf) != 0 {
				t.Errorf("temporary files left: %v", tf)
			}
		})
	}
}

func TestPruneMboxStaleTemps(t *testing.T) {
	c := mixedCase("\n")
	dir := t.TempDir()
	path := filepath.Join(dir, "inbox")
	writeFile(t, path, c.all.Bytes())
	stale := filepath.Join(dir, ".inbox"+tmpInfix+"99999.dead")
	busy := filepath.Join(dir, ".inbox"+tmpInfix+"99998.busy")
	otherBox := filepath.Join(dir, ".other"+tmpInfix+"99997.dead")
	// A dotlock temp of a run killed while locking (its PID is dead).
	deadLock := filepath.Join(dir, mboxlock.LeftoverPrefix("inbox")+"lock."+testHostTag()+"."+strconv.Itoa(deadPID(t))+".0000000000000001")
	for _, p := range []string{stale, busy, otherBox, deadLock} {
		writeFile(t, p, []byte("partial"))
	}
	bf, _ := os.Open(busy)
	defer bf.Close()
	if err := unix.Flock(int(bf.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	res, err := PruneMbox(context.Background(), path, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{stale, deadLock} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale temporary file %s not removed", filepath.Base(p))
		}
	}
	for _, p := range []string{busy, otherBox} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	if len(res.Notes) != 2 || !strings.Contains(res.Notes[0], "interrupted run") {
		t.Errorf("notes: %q", res.Notes)
	}
}

// A run killed while releasing the dotlock has done its work: the next
// run has nothing to remove, and still clears what the killed one left.
func TestPruneMboxStaleTempsNothingToRemove(t *testing.T) {
	c := mixedCase("\n")
	dir := t.TempDir()
	path := filepath.Join(dir, "inbox")
	writeFile(t, path, c.kept.Bytes())
	aside := filepath.Join(dir, mboxlock.LeftoverPrefix("inbox")+"stale."+testHostTag()+"."+strconv.Itoa(deadPID(t))+".0000000000000002")
	writeFile(t, aside, []byte("123\n"))
	res, err := PruneMbox(context.Background(), path, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	if res.MessagesRemoved != 0 {
		t.Fatalf("removed %d messages from a pruned mailbox", res.MessagesRemoved)
	}
	if _, err := os.Stat(aside); !errors.Is(err, os.ErrNotExist) {
		t.Error("the renamed-aside dotlock of a dead run was not removed")
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, c.kept.Bytes()) {
		t.Error("the mailbox changed")
	}
}

// testHostTag is the host as mboxlock writes it into temporary names.
func testHostTag() string {
	h, _ := os.Hostname()
	h = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, h)
	return h[:min(len(h), 32)]
}

// deadPID returns the PID of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestPruneMboxLockBusy(t *testing.T) {
	c := mixedCase("\n")
	path := filepath.Join(t.TempDir(), "inbox")
	writeFile(t, path, c.all.Bytes())
	if err := os.WriteFile(path+".lock", []byte(fmt.Sprint(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := testOpts()
	opts.Lock.Timeout = 100 * time.Millisecond
	_, err := PruneMbox(context.Background(), path, opts)
	if !errors.Is(err, mboxlock.ErrTimeout) {
		t.Fatalf("err = %v, want a lock timeout", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, c.all.Bytes()) {
		t.Error("mailbox changed without the lock")
	}
}

func TestPruneMboxCancelled(t *testing.T) {
	c := mixedCase("\n")
	path := filepath.Join(t.TempDir(), "inbox")
	writeFile(t, path, c.all.Bytes())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := PruneMbox(ctx, path, testOpts())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, c.all.Bytes()) {
		t.Error("mailbox changed")
	}
}

// TestPruneMboxENOSPC needs a small tmpfs, which only root can mount.
func TestPruneMboxENOSPC(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a 1 MiB tmpfs")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs (%v)", err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	c := &mboxCase{}
	for i := 0; i < 10; i++ {
		c.add(i%2 == 0, fmt.Sprintf("n%d@test", i), "", strings.Repeat("x", 70*1024)+"\n", "\n")
	}
	path := filepath.Join(dir, "inbox")
	writeFile(t, path, c.all.Bytes()) // 700 KB of 1 MiB: the kept 350 KB do not fit
	_, err := PruneMbox(context.Background(), path, testOpts())
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("err = %v, want ErrNoSpace", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, c.all.Bytes()) {
		t.Error("mailbox changed")
	}
	if tf := tempFiles(t, dir); len(tf) != 0 {
		t.Errorf("temporary files left: %v", tf)
	}
	// With the space check fooled, the write itself fails: same outcome.
	skipSpaceCheck = true
	defer func() { skipSpaceCheck = false }()
	_, err = PruneMbox(context.Background(), path, testOpts())
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("without the check: err = %v, want ErrNoSpace", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, c.all.Bytes()) {
		t.Error("mailbox changed")
	}
	if tf := tempFiles(t, dir); len(tf) != 0 {
		t.Errorf("temporary files left: %v", tf)
	}
}

// TestPruneMboxCorpus checks byte-exactness on real-world files: the result
// is the concatenation of the kept spans as an independent scan sees them.
func TestPruneMboxCorpus(t *testing.T) {
	root := "../../shared/corpus"
	if _, err := os.Stat(root); err != nil {
		t.Skip("corpus not found at ../../shared/corpus")
	}
	var files []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.Size() < 8<<20 {
			if head, err := os.ReadFile(p); err == nil && mboxscan.LooksLikeMbox(head[:min(len(head), 4096)]) {
				files = append(files, p)
			}
		}
		return nil
	})
	if len(files) == 0 {
		t.Skip("no mbox files in the corpus")
	}
	// A cutoff in the middle of each file's dates removes about half.
	for _, f := range files {
		data, _ := os.ReadFile(f)
		var dates []time.Time
		sc := mboxscan.NewScanner(bytes.NewReader(data), f)
		for {
			m, err := sc.Next()
			if err != nil {
				break
			}
			if d := m.Date(mboxscan.DateReceived); !d.IsZero() {
				dates = append(dates, d)
			}
		}
		sc.Close()
		if len(dates) < 2 {
			continue
		}
		cutoff := dates[len(dates)/2]
		opts := Options{Policy: Policy{Before: cutoff, IncludeFlagged: true}, Now: time.Now(),
			Lock: mboxlock.Options{Kinds: []mboxlock.Kind{mboxlock.Fcntl}}}
		want, removed := expectedKept(t, data, opts)
		path := filepath.Join(t.TempDir(), "mbox")
		writeFile(t, path, data)
		res, err := PruneMbox(context.Background(), path, opts)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		got, _ := os.ReadFile(path)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: result (%d bytes) differs from the kept spans (%d bytes)", f, len(got), len(want))
		}
		if res.MessagesRemoved != removed {
			t.Errorf("%s: removed %d, want %d", f, res.MessagesRemoved, removed)
		}
	}
}

// expectedKept scans data and concatenates the spans Decide keeps plus the
// bytes no message covers, with the X-IMAPbase line of a removed first
// message written after the From_ line of the first kept one.
func expectedKept(t *testing.T, data []byte, opts Options) ([]byte, int) {
	var out []byte
	var pos int64
	removed := 0
	first := true
	base := ""
	// A message and the Glued ones after it go (or stay) together.
	var msgs []*mboxscan.Message
	var rms []bool
	sc := mboxscan.NewScanner(bytes.NewReader(data), "x")
	defer sc.Close()
	for {
		m, err := sc.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rm, _ := Decide(m, opts.Policy, opts.now())
		msgs, rms = append(msgs, m), append(rms, rm && !m.Pseudo)
	}
	// A multipart message whose end lacks its closing delimiter goes with
	// the messages up to the first (within maxOpenGroup) whose end has it.
	tailHas := func(m *mboxscan.Message, delim []byte) bool {
		end := m.Offset + m.Length
		return bytes.Contains(data[max(m.Offset, end-tailWindow):end], delim)
	}
	for i := 0; i < len(msgs); {
		j := i
		for {
			if d := closingDelimiter(msgs[j].Header.ContentType); d != nil && !msgs[j].Pseudo && !tailHas(msgs[j], d) {
				k := j + 1
				for k < len(msgs) && k <= j+maxOpenGroup && !tailHas(msgs[k], d) {
					k++
				}
				if k < len(msgs) && k <= j+maxOpenGroup {
					j = k
					continue
				}
			}
			if j+1 < len(msgs) && !msgs[j].Pseudo && !msgs[j+1].Pseudo && msgs[j+1].Glued && msgs[j+1].Offset == msgs[j].Offset+msgs[j].Length {
				j++
				continue
			}
			break
		}
		all := true
		for k := i; k <= j; k++ {
			all = all && rms[k]
		}
		for k := i; k <= j; k++ {
			rms[k] = all
		}
		i = j + 1
	}
	for i, m := range msgs {
		out = append(out, data[pos:m.Offset]...)
		pos = m.Offset + m.Length
		rm := rms[i]
		if first && !m.Pseudo {
			first = false
			if rm {
				base = m.Header.XIMAPBase
			}
		} else if m.Pseudo {
			first = false
		}
		if rm {
			removed++
			continue
		}
		msg := data[m.Offset:pos]
		if base != "" && m.Header.XIMAPBase == "" {
			i := bytes.IndexByte(msg, '\n') + 1
			eol := "\n"
			if i > 1 && msg[i-2] == '\r' {
				eol = "\r\n"
			}
			out = append(out, msg[:i]...)
			out = append(out, "X-IMAPbase: "+strings.TrimSpace(base)+eol...)
			msg = msg[i:]
		}
		base = ""
		out = append(out, msg...)
	}
	return append(out, data[pos:]...), removed
}

var _ = syscall.SIGKILL

// With a Listings, a directory is listed once for all the prunes in it,
// and each prune still clears what killed runs left for its own mailbox.
func TestPruneMboxSharedListing(t *testing.T) {
	c := mixedCase("\n")
	dir := t.TempDir()
	var boxes []string
	for _, name := range []string{"alice", "bob", "carol"} {
		p := filepath.Join(dir, name)
		writeFile(t, p, c.all.Bytes())
		boxes = append(boxes, p)
	}
	// Left by killed runs: a rewrite's temporary file for bob, a
	// renamed-aside dotlock for carol.
	bobTemp := filepath.Join(dir, ".bob"+tmpInfix+"99999.dead")
	carolAside := filepath.Join(dir, mboxlock.LeftoverPrefix("carol")+"stale."+testHostTag()+"."+strconv.Itoa(deadPID(t))+".0000000000000003")
	writeFile(t, bobTemp, []byte("partial"))
	writeFile(t, carolAside, []byte("123\n"))
	opts := testOpts()
	opts.Listings = &Listings{}
	for _, p := range boxes {
		res, err := PruneMbox(context.Background(), p, opts)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(p); !bytes.Equal(got, c.kept.Bytes()) {
			t.Errorf("%s is not the intended result", p)
		}
		wantNotes := 0
		if p != boxes[0] {
			wantNotes = 1
		}
		if len(res.Notes) != wantNotes {
			t.Errorf("%s: notes %q, want %d", p, res.Notes, wantNotes)
		}
	}
	for _, p := range []string{bobTemp, carolAside} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s not removed", filepath.Base(p))
		}
	}
	if n := len(opts.Listings.dirs); n != 1 {
		t.Errorf("%d directories listed, want 1", n)
	}
}
